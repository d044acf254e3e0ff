"""Raft, message by message: leader election, log replication, commit (deterministic, seeded).

Implements the algorithm of Ongaro & Ousterhout (USENIX ATC 2014), figure 2, on top of
:class:`dwcpkit.protocol.acp_net.SimNet`: randomised election timeouts, RequestVote with the
up-to-date-log restriction, AppendEntries with the log-matching check and conflict
truncation, commit only of current-term entries by majority ``matchIndex``, a no-op entry
at the start of each term, per-follower heartbeats, and clients that retry and follow
leader hints. Every message is HMAC-authenticated (:class:`~dwcpkit.protocol.acp_net.Keyring`).

Deviations from the original (``backend/core/network/dwcp/consensus/raft.go``), which had
only the two RPC handlers and no timers, loops or consumer of proposals: everything here
beyond the constants (election timeout U(150, 300) ms, heartbeat 50 ms) is new. Not
implemented: snapshots/log compaction, membership changes, PreVote, read leases.

Liveness needs Raft's timing requirement, broadcast time << election timeout: with the
original's 150–300 ms timeouts over 50 ms WAN hops (or heavy-tailed latency) followers keep
starting elections and nothing commits; use :meth:`RaftConfig.preset` ``"wan"`` there.

Optimistic replication (etcd style): after sending entries to a follower the leader
advances ``nextIndex`` at once, so heartbeats carry no duplicate entries; a rejection
(with the follower's last index as a hint) rewinds it.

Example
-------
>>> r = simulate_raft(5, decisions=20, seed=1)
>>> len(r.decisions), r.safety_violations()
(20, [])
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dwcpkit.errors import ParameterError, ProtocolError
from dwcpkit.protocol.acp_net import (
    Crash,
    Decision,
    Fault,
    Forge,
    Keyring,
    LatencyModel,
    Msg,
    SimNet,
    fault_end,
    history_conflicts,
)

__all__ = ["RaftConfig", "RaftNode", "RaftResult", "simulate_raft", "RaftCluster"]

FOLLOWER, CANDIDATE, LEADER = 0, 1, 2
_EL = -1  # election timer tag


@dataclass(frozen=True)
class RaftConfig:
    """Raft timing. Defaults are the original's: election U(150, 300) ms, heartbeat 50 ms.

    Over a WAN those constants cause spurious elections (a 50 ms median hop has a tail past
    150 ms); :meth:`preset` ``"wan"`` scales them (1–2 s, 100 ms).

    >>> RaftConfig.preset("wan").election_timeout_ms
    (1000.0, 2000.0)
    """

    election_timeout_ms: tuple[float, float] = (150.0, 300.0)
    heartbeat_ms: float = 50.0
    max_batch: int = 64
    client_timeout_ms: float = 1000.0

    @classmethod
    def preset(cls, name: str) -> "RaftConfig":
        """``datacenter`` (the original's constants), ``hybrid`` or ``wan``/``internet``."""
        table = {
            "datacenter": cls(),
            "hybrid": cls((400.0, 800.0), 50.0, 64, 1500.0),
            "wan": cls((1000.0, 2000.0), 100.0, 64, 3000.0),
            "internet": cls((1000.0, 2000.0), 100.0, 64, 3000.0),
        }
        if name not in table:
            raise ParameterError(f"unknown Raft preset {name!r}; choose one of {sorted(table)}")
        return table[name]

    def validate(self) -> None:
        lo, hi = self.election_timeout_ms
        if not 0 < lo <= hi:
            raise ParameterError(f"election_timeout_ms must be 0 < lo <= hi, got {self.election_timeout_ms}")
        if not 0 < self.heartbeat_ms < lo:
            raise ParameterError(
                f"heartbeat_ms ({self.heartbeat_ms}) must be > 0 and below the election timeout ({lo}), "
                "or followers start elections against a healthy leader"
            )
        if self.max_batch < 1 or self.client_timeout_ms <= 0:
            raise ParameterError("max_batch must be >= 1 and client_timeout_ms > 0")


class RaftNode:
    """One Raft server. Persistent: ``term``, ``voted_for``, ``log``; the rest is volatile.

    ``log[0]`` is a sentinel; an entry is ``(term, value, client, rid)`` (client ``-1`` for
    the leader's no-op). ``applied`` is the append-only history of applied entries, which
    the safety check compares across nodes.
    """

    def __init__(self, i: int, n: int, net: SimNet, kr: Keyring, cfg: RaftConfig, rng: random.Random,
                 on_invalid: Any = None):
        self.id, self.n, self.net, self.kr, self.cfg, self.rng = i, n, net, kr, cfg, rng
        self.on_invalid = on_invalid
        self.crashed = False
        self.term = 0
        self.voted_for: int | None = None
        self.log: list[tuple] = [(0, None, -1, 0)]
        self.commit = 0
        self.applied_upto = 0
        self.applied: list[tuple] = []
        self.role = FOLLOWER
        self.leader_id: int | None = None
        self.votes: set[int] = set()
        self.next_index = [1] * n
        self.match = [0] * n
        self.hb_deadline = [0.0] * n
        self.election_deadline = math.inf
        self._el_armed: float | None = None
        self._rid_index: dict[tuple[int, int], int] = {}
        self.leaderships = 0
        self.led_terms: list[int] = []
        self.elections = 0
        self.rejected = 0
        self.truncated_committed = 0
        self._others = [j for j in range(n) if j != i]
        self._handlers = {"RV": self._on_rv, "RVR": self._on_rvr, "AE": self._on_ae, "AER": self._on_aer,
                          "REQ": self._on_req}

    # ----------------------------------------------------------------- lifecycle
    def start(self, bootstrap_leader: int | None = None) -> None:
        if bootstrap_leader is None:
            self._reset_election()
        elif bootstrap_leader == self.id:
            self.term = 1
            self.voted_for = self.id
            self._become_leader(noop=False)
        else:
            self.term = 1
            self.voted_for = bootstrap_leader
            self.leader_id = bootstrap_leader
            self._reset_election()

    def on_crash(self) -> None:
        pass

    def on_recover(self) -> None:
        self.role = FOLLOWER
        self.leader_id = None
        self.votes = set()
        self._el_armed = None
        self._reset_election()

    # ----------------------------------------------------------------- timers
    def _reset_election(self) -> None:
        lo, hi = self.cfg.election_timeout_ms
        d = self.net.now + self.rng.uniform(lo, hi)
        self.election_deadline = d
        if self._el_armed is None or d < self._el_armed:
            self._el_armed = d
            self.net.timer(self.id, d, _EL)

    def on_timer(self, tag: int) -> None:
        now = self.net.now
        if tag == _EL:
            if self._el_armed is not None and now >= self._el_armed:
                self._el_armed = None
            if self.role == LEADER:
                return
            if now >= self.election_deadline:
                self._start_election()
            elif self._el_armed is None or self.election_deadline < self._el_armed:
                self._el_armed = self.election_deadline
                self.net.timer(self.id, self.election_deadline, _EL)
            return
        # heartbeat timer: tag = epoch * n + follower
        epoch, j = divmod(tag, self.n)
        if self.role != LEADER or epoch != self.leaderships:
            return
        if now >= self.hb_deadline[j]:
            self._send_append(j)
        self.net.timer(self.id, self.hb_deadline[j], tag)

    # ----------------------------------------------------------------- roles
    def _step_down(self, term: int) -> None:
        was = self.role
        if term > self.term:
            self.term = term
            self.voted_for = None
        self.role = FOLLOWER
        self.votes = set()
        if was != FOLLOWER:
            self._reset_election()

    def _start_election(self) -> None:
        self.role = CANDIDATE
        self.term += 1
        self.voted_for = self.id
        self.votes = {self.id}
        self.leader_id = None
        self.elections += 1
        self._reset_election()
        if len(self.votes) > self.n // 2:
            self._become_leader()
            return
        body = (self.term, len(self.log) - 1, self.log[-1][0])
        msg = self.kr.sign(self.id, "RV", body)
        for j in self._others:
            self.net.send(self.id, j, msg)

    def _become_leader(self, noop: bool = True) -> None:
        self.role = LEADER
        self.leader_id = self.id
        self.leaderships += 1
        self.led_terms.append(self.term)
        nxt = len(self.log)
        if noop:
            self.log.append((self.term, None, -1, 0))
        self.next_index = [nxt] * self.n
        self.match = [0] * self.n
        self.match[self.id] = len(self.log) - 1
        epoch = self.leaderships * self.n
        for j in self._others:
            self._send_append(j)
            self.net.timer(self.id, self.hb_deadline[j], epoch + j)
        if self.n == 1:
            self._advance_commit()

    def _send_append(self, j: int) -> None:
        log = self.log
        ni = self.next_index[j]
        prev = ni - 1
        entries = tuple(log[ni:ni + self.cfg.max_batch])
        msg = self.kr.sign(self.id, "AE", (self.term, prev, log[prev][0], entries, self.commit))
        self.net.send(self.id, j, msg)
        self.next_index[j] = ni + len(entries)
        self.hb_deadline[j] = self.net.now + self.cfg.heartbeat_ms

    # ----------------------------------------------------------------- messages
    def on_message(self, src: int, m: Any) -> None:
        if not self.kr.verify(m):
            self.rejected += 1
            if self.on_invalid is not None:
                self.on_invalid(self.id, src, m)
            return
        h = self._handlers.get(m.kind)
        if h is not None:
            h(m)

    def _on_rv(self, m: Msg) -> None:
        term, li, lt = m.body
        if term > self.term:
            self._step_down(term)
        grant = False
        if term == self.term and self.voted_for in (None, m.sender):
            my_lt = self.log[-1][0]
            if lt > my_lt or (lt == my_lt and li >= len(self.log) - 1):
                grant = True
                self.voted_for = m.sender
                self._reset_election()
        self.net.send(self.id, m.sender, self.kr.sign(self.id, "RVR", (self.term, grant)))

    def _on_rvr(self, m: Msg) -> None:
        term, granted = m.body
        if term > self.term:
            self._step_down(term)
            return
        if self.role == CANDIDATE and term == self.term and granted:
            self.votes.add(m.sender)
            if len(self.votes) > self.n // 2:
                self._become_leader()

    def _on_ae(self, m: Msg) -> None:
        term, prev, pt, entries, lc = m.body
        if term < self.term:
            self.net.send(self.id, m.sender, self.kr.sign(self.id, "AER", (self.term, False, 0)))
            return
        if term > self.term or self.role != FOLLOWER:
            self._step_down(term)
        self.leader_id = m.sender
        self._reset_election()
        log = self.log
        last = len(log) - 1
        if prev > last:
            self.net.send(self.id, m.sender, self.kr.sign(self.id, "AER", (self.term, False, last)))
            return
        if log[prev][0] != pt:
            self.net.send(self.id, m.sender, self.kr.sign(self.id, "AER", (self.term, False, prev - 1)))
            return
        idx = prev
        for e in entries:
            idx += 1
            if idx <= last:
                if log[idx][0] != e[0]:
                    if idx <= self.commit:
                        self.truncated_committed += 1
                    del log[idx:]
                    log.append(e)
                    last = idx
            else:
                log.append(e)
                last = idx
        match = prev + len(entries)
        if lc > self.commit:
            c = min(lc, match)
            if c > self.commit:
                self.commit = c
                self._apply()
        self.net.send(self.id, m.sender, self.kr.sign(self.id, "AER", (self.term, True, match)))

    def _on_aer(self, m: Msg) -> None:
        term, ok, idx = m.body
        if term > self.term:
            self._step_down(term)
            return
        if self.role != LEADER or term != self.term:
            return
        j = m.sender
        if ok:
            if idx > self.match[j]:
                self.match[j] = idx
                if idx + 1 > self.next_index[j]:
                    self.next_index[j] = idx + 1
                self._advance_commit()
        else:
            ni = max(self.match[j] + 1, idx + 1)
            if ni < self.next_index[j]:
                self.next_index[j] = ni
                self._send_append(j)

    def _advance_commit(self) -> None:
        m = sorted(self.match)
        n_ = m[self.n - (self.n // 2 + 1)]
        if n_ > self.commit and self.log[n_][0] == self.term:
            self.commit = n_
            self._apply()

    def _apply(self) -> None:
        log = self.log
        leader = self.role == LEADER
        while self.applied_upto < self.commit:
            self.applied_upto += 1
            t, v, c, rid = log[self.applied_upto]
            self.applied.append((self.applied_upto, t, v, c, rid))
            if leader and c >= 0:
                self.net.send(self.id, c, self.kr.sign(self.id, "RESP", (rid, True, self.id, self.applied_upto)))

    def _on_req(self, m: Msg) -> None:
        rid, value = m.body
        c = m.sender
        if self.role != LEADER:
            self.net.send(self.id, c, self.kr.sign(self.id, "RESP", (rid, False, self.leader_id, 0)))
            return
        idx = self._rid_index.get((c, rid))
        log = self.log
        if idx is not None and idx < len(log) and log[idx][2] == c and log[idx][3] == rid:
            if idx <= self.applied_upto:
                self.net.send(self.id, c, self.kr.sign(self.id, "RESP", (rid, True, self.id, idx)))
            return
        log.append((self.term, value, c, rid))
        idx = len(log) - 1
        self._rid_index[(c, rid)] = idx
        self.match[self.id] = idx
        for j in self._others:
            self._send_append(j)
        if self.n == 1:
            self._advance_commit()


class _Clients:
    """Book-keeping shared by the closed-loop clients: halts the network when all are done."""

    def __init__(self, net: SimNet, count: int):
        self.net = net
        self.left = count
        self.decisions: list[Decision] = []

    stop_after_ms: float | None = None

    def record(self, d: Decision) -> None:
        self.decisions.append(d)
        if self.stop_after_ms is not None and d.end_ms >= self.stop_after_ms:
            self.net.halt = True

    def finished(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.net.halt = True


class RaftClient:
    """Closed-loop client: one outstanding request, retried on timeout, follows leader hints
    (and, told "not the leader" with no hint, tries the next server after the minimum
    election timeout)."""

    def __init__(self, cid: int, n: int, net: SimNet, kr: Keyring, cfg: RaftConfig, requests: int,
                 book: _Clients, first_target: int = 0):
        self.id, self.n, self.net, self.kr, self.cfg = cid, n, net, kr, cfg
        self.requests, self.book = requests, book
        self.crashed = False
        self.target = first_target
        self.rid = 0
        self.sent_at = 0.0
        self.done = requests == 0
        self._tag = 0
        self.queue: list[Any] = []

    def start(self) -> None:
        if self.done:
            self.book.finished()
        else:
            self._next()

    def _next(self) -> None:
        if self.rid >= self.requests:
            self.done = True
            self.book.finished()
            return
        self.rid += 1
        self.sent_at = self.net.now
        self._send()

    def _value(self) -> Any:
        return self.queue[self.rid - 1] if self.rid - 1 < len(self.queue) else (self.id, self.rid)

    def _send(self) -> None:
        self.net.send(self.id, self.target, self.kr.sign(self.id, "REQ", (self.rid, self._value())))
        self._tag += 1
        self.net.timer(self.id, self.net.now + self.cfg.client_timeout_ms, self._tag)

    def _retry_soon(self) -> None:
        """No leader known: try the next server after the minimum election timeout."""
        self._tag += 1
        self.net.timer(self.id, self.net.now + self.cfg.election_timeout_ms[0], self._tag)

    def on_message(self, src: int, m: Any) -> None:
        if self.done or not self.kr.verify(m) or m.kind != "RESP":
            return
        rid, ok, hint, idx = m.body
        if rid != self.rid:
            return
        if ok:
            self.book.record(Decision(self.id, rid, idx, self.sent_at, self.net.now))
            self.target = m.sender
            self._next()
        elif hint is not None and hint != self.target:
            self.target = hint
            self._send()
        else:
            self._retry_soon()

    def on_timer(self, tag: int) -> None:
        if tag == self._tag and not self.done:
            self.target = (self.target + 1) % self.n
            self._send()


class _RaftIntruder:
    """Forges AppendEntries (huge term, fake entries) and vote grants in other nodes' names."""

    def __init__(self, aid: int, n: int, net: SimNet, kr: Keyring, forges: list[Forge], rng: random.Random):
        self.id, self.n, self.net, self.kr, self.forges, self.rng = aid, n, net, kr, forges, rng
        self.crashed = False
        self.sent = 0

    def start(self) -> None:
        for k, f in enumerate(self.forges):
            self.net.timer(self.id, f.at_ms, k)

    def on_message(self, src: int, m: Any) -> None:
        pass

    def on_timer(self, k: int) -> None:
        f = self.forges[k]
        now = self.net.now
        if now >= f.until_ms:
            return
        for target in range(self.n):
            claimed = self.rng.choice([j for j in range(self.n) if j != target]) if self.n > 1 else target
            fake = ((10**6, ("forged", self.sent), -1, 0),)
            ae = self.kr.forge(self.id, claimed, "AE", (10**6, 0, 0, fake, 1))
            rvr = self.kr.forge(self.id, claimed, "RVR", (10**6, True))
            self.net.send(self.id, target, ae)
            self.net.send(self.id, target, rvr)
            self.sent += 2
        self.net.timer(self.id, now + f.every_ms, k)


@dataclass
class RaftResult:
    """Outcome of :func:`simulate_raft`.

    ``decisions`` are client-observed commits; ``histories[i]`` is node ``i``'s applied
    entries ``(index, term, value, client, rid)`` in order.
    """

    n: int
    seed: int
    decisions: list[Decision]
    histories: list[list[tuple]]
    end_ms: float
    messages: int
    dropped: int
    rejected: int
    elections: int
    leaderships: int
    final_terms: list[int]
    final_leader: int | None
    truncated_committed: int
    events: int
    wall_s: float
    fault_end_ms: float = 0.0
    forged_sent: int = 0
    leaders_by_term: dict[int, list[int]] = field(default_factory=dict)

    def latencies_ms(self) -> np.ndarray:
        """Client-observed decision latencies (ms), in decision order."""
        return np.array([d.end_ms - d.start_ms for d in self.decisions], dtype=np.float64)

    def safety_violations(self) -> list[str]:
        """Indices where two nodes applied different entries, decisions that disagree with
        the log, and terms with two leaders (election safety).

        >>> simulate_raft(3, decisions=5, seed=2).safety_violations()
        []
        """
        hist = {i: {e[0]: e[1:] for e in h} for i, h in enumerate(self.histories)}
        out = history_conflicts(hist)
        merged: dict[int, tuple] = {}
        for h in hist.values():
            merged.update(h)
        for d in self.decisions:
            e = merged.get(d.slot)
            if e is not None and (e[2], e[3]) != (d.client, d.rid):
                out.append(f"decision {d} but index {d.slot} holds {e}")
        for term, ids in sorted(self.leaders_by_term.items()):
            if len(ids) > 1:
                out.append(f"term {term} had leaders {ids}")
        return out

    def check_safety(self) -> None:
        """Raise :class:`~dwcpkit.errors.ProtocolError` listing any safety violation."""
        v = self.safety_violations()
        if v:
            raise ProtocolError("Raft safety violated: " + "; ".join(v[:5]))

    def first_decision_after(self, t_ms: float) -> float | None:
        """End time of the first decision confirmed at or after ``t_ms`` (None if none)."""
        ends = [d.end_ms for d in self.decisions if d.end_ms >= t_ms]
        return min(ends) if ends else None

    @property
    def decisions_per_wall_s(self) -> float:
        return len(self.decisions) / self.wall_s if self.wall_s > 0 else math.inf


class RaftCluster:
    """A simulated Raft cluster you can drive step by step (what :func:`simulate_raft` runs).

    >>> c = RaftCluster(3, seed=4)
    >>> c.run(until_ms=2000.0)
    >>> c.leader() is not None
    True
    """

    def __init__(self, n: int = 5, *, seed: int = 0, latency: LatencyModel | None = None,
                 config: RaftConfig | None = None, faults: tuple[Fault, ...] | list[Fault] = (),
                 clients: int = 1, requests: int = 0, auth: bool = True,
                 bootstrap_leader: int | None = None, on_invalid: Any = None):
        if n < 1:
            raise ParameterError(f"a Raft cluster needs n >= 1 nodes, got {n}")
        if clients < 1:
            raise ParameterError(f"clients must be >= 1, got {clients}")
        if bootstrap_leader is not None and not 0 <= bootstrap_leader < n:
            raise ParameterError(f"bootstrap_leader {bootstrap_leader} outside 0..{n - 1}")
        cfg = config or RaftConfig()
        cfg.validate()
        faults = list(faults)
        forges = [f for f in faults if isinstance(f, Forge)]
        for f in faults:
            if isinstance(f, Crash) and f.node >= n:
                raise ParameterError(f"Crash node {f.node}: Raft nodes are 0..{n - 1} (clients cannot crash)")
        total = n + clients + (1 if forges else 0)
        self.n, self.seed, self.cfg = n, seed, cfg
        self.net = SimNet(total, seed=seed, latency=latency, faults=faults)
        self.kr = Keyring(total, seed, enabled=auth)
        self.book = _Clients(self.net, clients)
        self.nodes = [RaftNode(i, n, self.net, self.kr, cfg, random.Random(f"raft|{seed}|{i}"),
                               on_invalid) for i in range(n)]
        for i, node in enumerate(self.nodes):
            self.net.attach(i, node)
        self.clients = [RaftClient(n + c, n, self.net, self.kr, cfg, requests // clients + (c < requests % clients),
                                   self.book,
                                   first_target=(bootstrap_leader or 0)) for c in range(clients)]
        for c in self.clients:
            self.net.attach(c.id, c)
        self.intruder = None
        if forges:
            self.intruder = _RaftIntruder(total - 1, n, self.net, self.kr, forges, random.Random(f"intruder|{seed}"))
            self.net.attach(total - 1, self.intruder)
        self.fault_end_ms = max((fault_end(f) for f in faults), default=0.0)
        for node in self.nodes:
            node.start(bootstrap_leader)
        if self.intruder:
            self.intruder.start()
        self._started_clients = False
        self.events = 0

    def start_clients(self) -> None:
        if not self._started_clients:
            self._started_clients = True
            for c in self.clients:
                c.start()

    def run(self, until_ms: float = math.inf, max_events: int | None = None) -> None:
        self.events += self.net.run(until_ms, max_events)

    def leader(self) -> int | None:
        """The live leader with the highest term, if any."""
        best = None
        for nd in self.nodes:
            if nd.role == LEADER and not nd.crashed and (best is None or nd.term > self.nodes[best].term):
                best = nd.id
        return best

    def result(self, wall_s: float = 0.0) -> RaftResult:
        return RaftResult(
            n=self.n, seed=self.seed, decisions=list(self.book.decisions),
            histories=[list(nd.applied) for nd in self.nodes], end_ms=self.net.now,
            messages=self.net.sent, dropped=self.net.dropped,
            rejected=sum(nd.rejected for nd in self.nodes),
            elections=sum(nd.elections for nd in self.nodes),
            leaderships=sum(nd.leaderships for nd in self.nodes),
            final_terms=[nd.term for nd in self.nodes], final_leader=self.leader(),
            truncated_committed=sum(nd.truncated_committed for nd in self.nodes),
            events=self.events, wall_s=wall_s, fault_end_ms=self.fault_end_ms,
            forged_sent=self.intruder.sent if self.intruder else 0,
            leaders_by_term=self._leaders_by_term(),
        )

    def _leaders_by_term(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for nd in self.nodes:
            for t in nd.led_terms:
                out.setdefault(t, []).append(nd.id)
        return out


def simulate_raft(n: int = 5, *, decisions: int = 100, seed: int = 0, latency: LatencyModel | None = None,
                  config: RaftConfig | None = None, faults: tuple[Fault, ...] | list[Fault] = (),
                  clients: int = 1, until_ms: float | None = None, auth: bool = True,
                  bootstrap_leader: int | None = None, on_invalid: Any = None,
                  stop_after_ms: float | None = None) -> RaftResult:
    """Run a Raft cluster of ``n`` nodes until ``decisions`` client requests commit.

    Parameters
    ----------
    n : int
        Raft servers (ids ``0..n-1``); clients get ids ``n..n+clients-1``.
    decisions : int
        Requests to commit in total (split evenly over ``clients`` closed-loop clients,
        each with one outstanding request).
    seed : int
        Seeds latencies, election timeouts and keys: same seed, same run.
    latency, config : LatencyModel, RaftConfig
        Network and timing (defaults: 50 ms WAN hop, the original's datacenter timeouts).
    faults : sequence of Crash, Partition, Delay, Loss, Forge
        Fault schedule (times in simulated ms).
    until_ms : float, optional
        Stop at this simulated time even if not all decisions were made (default: no limit
        without faults; otherwise the last heal time plus 120 s).
    auth : bool
        HMAC-authenticate messages (turn off only to show what forgeries do).
    bootstrap_leader : int, optional
        Start with this node as leader of term 1 (skips the first election; used to compare
        with the :mod:`~dwcpkit.protocol.acp_fast` normal-case engine).
    on_invalid : callable, optional
        ``on_invalid(receiver, transport_src, msg)`` for every message failing the MAC check
        (e.g. feed a :class:`~dwcpkit.protocol.acp_trust.ByzantineDetector`).

    stop_after_ms : float, optional
        Stop at the first decision confirmed at or after this time (a liveness probe:
        run with a large ``decisions`` and ``stop_after_ms`` = the heal time).

    Returns
    -------
    RaftResult

    Examples
    --------
    >>> from dwcpkit.protocol.acp_net import Crash
    >>> r = simulate_raft(5, decisions=30, seed=3, faults=[Crash(0, at_ms=500.0, until_ms=3000.0)])
    >>> len(r.decisions), r.safety_violations()
    (30, [])
    """
    if decisions < 0:
        raise ParameterError(f"decisions must be >= 0, got {decisions}")
    c = RaftCluster(n, seed=seed, latency=latency, config=config, faults=faults, clients=clients,
                    requests=decisions, auth=auth, bootstrap_leader=bootstrap_leader, on_invalid=on_invalid)
    if until_ms is None:
        until_ms = math.inf if not faults else (c.fault_end_ms if c.fault_end_ms < math.inf else 0.0) + 120_000.0
    c.book.stop_after_ms = stop_after_ms
    t0 = time.perf_counter()
    c.start_clients()
    c.run(until_ms)
    return c.result(time.perf_counter() - t0)
