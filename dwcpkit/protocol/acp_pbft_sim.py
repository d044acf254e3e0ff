"""PBFT simulation harness: clients, Byzantine replicas, an intruder, the cluster, results.

Builds on the honest replica in :mod:`dwcpkit.protocol.acp_pbft`. :func:`simulate_pbft`
runs ``n`` replicas (some of them :class:`ByzantineReplica`) and closed-loop clients over a
:class:`~dwcpkit.protocol.acp_net.SimNet` with a fault schedule, and returns a
:class:`PbftResult` whose :meth:`~PbftResult.safety_violations` compares what honest
replicas executed.

Example
-------
>>> r = simulate_pbft(4, decisions=20, seed=1)
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
from dwcpkit.protocol.acp_pbft import (
    BYZANTINE_BEHAVIOURS,
    PbftConfig,
    PbftReplica,
    request_digest,
)

__all__ = ["ByzantineReplica", "PbftClient", "PbftResult", "PbftCluster", "simulate_pbft"]


class ByzantineReplica(PbftReplica):
    """A faulty replica: ``equivocate``, ``silent`` or ``forge`` (see module docstring).

    It runs the honest logic so that it participates, but perturbs what it sends:

    - ``equivocate``: as primary, sends half the backups a pre-prepare for a conflicting
      request (signed by a colluding client) for the same sequence, and each half a COMMIT
      for what it was sent; as a backup, sends each
      half of the replicas PREPARE/COMMIT/CHECKPOINT with different digests; as new
      primary, sends a NEW-VIEW whose re-issued pre-prepares do not match its certificates.
    - ``silent``: sends nothing (crash-like, but forever).
    - ``forge``: behaves honestly and also sends PREPARE/COMMIT in other replicas' names,
      which carry its own MAC and are rejected.
    """

    def __init__(self, i: int, n: int, net: SimNet, kr: Keyring, cfg: PbftConfig, behaviour: str,
                 mallory: int, rng: random.Random):
        super().__init__(i, n, net, kr, cfg, None)
        if behaviour not in BYZANTINE_BEHAVIOURS:
            raise ParameterError(f"unknown Byzantine behaviour {behaviour!r}; choose from {BYZANTINE_BEHAVIOURS}")
        self.behaviour = behaviour
        self.mallory = mallory
        self.rng = rng
        self._evil_t = 0

    def on_message(self, src: int, m: Any) -> None:
        if self.behaviour == "silent":
            return
        super().on_message(src, m)

    def on_timer(self, tag: int) -> None:
        if self.behaviour == "silent":
            return
        super().on_timer(tag)

    def _halves(self) -> tuple[list[int], list[int]]:
        others = list(self._others)
        self.rng.shuffle(others)
        k = len(others) // 2
        return others[:k], others[k:]

    def _split_send(self, honest: Msg, kind: str, body_evil: tuple) -> None:
        a, b = self._halves()
        evil = self._sign(kind, body_evil)
        for j in a:
            self.net.send(self.id, j, honest)
        for j in b:
            self.net.send(self.id, j, evil)

    def _rand_digest(self) -> bytes:
        return self.rng.getrandbits(128).to_bytes(16, "big")

    def _send_pp(self, pp: Msg) -> None:
        if self.behaviour != "equivocate":
            return super()._send_pp(pp)
        v, s, d, req = pp.body
        self._evil_t += 1
        evil_req = tuple(self.kr.sign(self.mallory, "REQ", (self._evil_t, ("evil", self.id, s), 0)))
        d2 = request_digest(evil_req)
        a, b = self._halves()
        evil = self._sign("PP", (v, s, d2, evil_req))
        for j in a:
            self.net.send(self.id, j, pp)
        for j in b:
            self.net.send(self.id, j, evil)
        # vote for both at once, each half for what it was sent: the attack that splits
        # the replicas when quorums do not intersect in an honest replica
        c1, c2 = self._sign("COMMIT", (v, s, d)), self._sign("COMMIT", (v, s, d2))
        for j in a:
            self.net.send(self.id, j, c1)
        for j in b:
            self.net.send(self.id, j, c2)

    def _send_prepare(self, p: Msg) -> None:
        if self.behaviour == "equivocate":
            v, s, _ = p.body
            return self._split_send(p, "PREP", (v, s, self._rand_digest()))
        super()._send_prepare(p)
        if self.behaviour == "forge":
            self._forge(p)

    def _send_commit(self, c: Msg) -> None:
        if self.behaviour == "equivocate":
            v, s, _ = c.body
            return self._split_send(c, "COMMIT", (v, s, self._rand_digest()))
        super()._send_commit(c)
        if self.behaviour == "forge":
            self._forge(c)

    def _send_ckpt(self, msg: Msg) -> None:
        if self.behaviour == "equivocate":
            return self._split_send(msg, "CKPT", (msg.body[0], self._rand_digest()))
        super()._send_ckpt(msg)

    def _send_reply(self, c: int, msg: Msg) -> None:
        if self.behaviour == "equivocate":
            v, t, cl, _ = msg.body
            msg = self._sign("REPLY", (v, t, cl, -1))
        super()._send_reply(c, msg)

    def _tamper_nv(self, nv: Msg) -> Msg:
        if self.behaviour != "equivocate":
            return nv
        u, vcs, o = nv.body
        self._evil_t += 1
        evil_req = tuple(self.kr.sign(self.mallory, "REQ", (self._evil_t, ("evil-nv", self.id), 0)))
        s = (o[-1][2][1] + 1) if o else self.h + 1
        extra = tuple(self._sign("PP", (u, s, request_digest(evil_req), evil_req)))
        o2 = tuple(o) + (extra,)
        return self._sign("NV", (u, vcs, o2))

    def _forge(self, real: Msg) -> None:
        for j in self._others:
            claimed = self.rng.choice([k for k in range(self.n) if k not in (self.id, j)] or [j])
            v, s, _ = real.body
            fake = self.kr.forge(self.id, claimed, real.kind, (v, s, self._rand_digest()))
            self.net.send(self.id, j, fake)


class _Book:
    def __init__(self, net: SimNet, count: int):
        self.net, self.left = net, count
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


class PbftClient:
    """Closed-loop client: broadcasts each request, accepts ``f + 1`` matching replies."""

    def __init__(self, cid: int, n: int, net: SimNet, kr: Keyring, cfg: PbftConfig, requests: int, book: _Book):
        self.id, self.n, self.net, self.kr, self.cfg = cid, n, net, kr, cfg
        self.f = (n - 1) // 3
        self.requests, self.book = requests, book
        self.crashed = False
        self.t = 0
        self.attempt = 0
        self.sent_at = 0.0
        self.replies: dict[int, Any] = {}
        self.done = requests == 0
        self._tag = 0
        self.queue: list[Any] = []

    def start(self) -> None:
        if self.done:
            self.book.finished()
        else:
            self._next()

    def _next(self) -> None:
        if self.t >= self.requests:
            self.done = True
            self.book.finished()
            return
        self.t += 1
        self.attempt = 0
        self.replies = {}
        self.sent_at = self.net.now
        self._send()

    def _send(self) -> None:
        op = self.queue[self.t - 1] if self.t - 1 < len(self.queue) else ("op", self.id, self.t)
        req = self.kr.sign(self.id, "REQ", (self.t, op, self.attempt))
        for j in range(self.n):
            self.net.send(self.id, j, req)
        self._tag += 1
        self.net.timer(self.id, self.net.now + self.cfg.client_retry_ms, self._tag)

    def on_message(self, src: int, m: Any) -> None:
        if self.done or not self.kr.verify(m) or m.kind != "REPLY" or not 0 <= m.sender < self.n:
            return
        _v, t, c, result = m.body
        if t != self.t or c != self.id:
            return
        self.replies[m.sender] = result
        votes = sum(1 for r in self.replies.values() if r == result)
        if votes >= self.f + 1:
            self.book.record(Decision(self.id, t, result, self.sent_at, self.net.now))
            self._next()

    def on_timer(self, tag: int) -> None:
        if tag == self._tag and not self.done:
            self.attempt += 1
            self._send()


class _Sink:
    crashed = False

    def on_message(self, src: int, m: Any) -> None:
        pass

    def on_timer(self, tag: Any) -> None:
        pass


class _PbftIntruder:
    """Forges whole certificates in replicas' names: for each target replica a different
    PRE-PREPARE "from the primary" (with a forged client request) plus PREPAREs and COMMITs
    "from every other replica" for it. Authenticated, all of it is dropped; unauthenticated,
    each target executes a different request at the same sequence."""

    def __init__(self, aid: int, n: int, net: SimNet, kr: Keyring, forges: list[Forge], rng: random.Random,
                 client: int):
        self.id, self.n, self.net, self.kr, self.forges, self.rng = aid, n, net, kr, forges, rng
        self.client = client
        self.crashed = False
        self.sent = 0
        self._base = 1

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
        send, fg = self.net.send, self.kr.forge
        for s in range(self._base, self._base + 4):
            for target in range(self.n):
                req = tuple(fg(self.id, self.client, "REQ", (10**9 + s, ("forged", target, s), 0)))
                d = request_digest(req)
                send(self.id, target, fg(self.id, 0, "PP", (0, s, d, req)))
                self.sent += 1
                for kind in ("PREP", "COMMIT"):
                    for claimed in range(self.n):
                        if claimed != target and not (kind == "PREP" and claimed == 0):
                            send(self.id, target, fg(self.id, claimed, kind, (0, s, d)))
                            self.sent += 1
        self._base += 4
        self.net.timer(self.id, now + f.every_ms, k)


@dataclass
class PbftResult:
    """Outcome of :func:`simulate_pbft`.

    ``histories[i]`` maps sequence -> executed request digest for every *honest* replica;
    ``decisions`` are client-observed (``f + 1`` matching replies; ``slot`` = sequence).
    """

    n: int
    f: int
    seed: int
    byzantine: dict[int, str]
    decisions: list[Decision]
    histories: dict[int, dict[int, bytes]]
    end_ms: float
    messages: int
    dropped: int
    rejected: int
    view_changes: int
    final_views: dict[int, int]
    state_transfers: int
    invalid_certificates: int
    stable_checkpoints: dict[int, int]
    events: int
    wall_s: float
    fault_end_ms: float = 0.0
    forged_sent: int = 0
    extra: dict = field(default_factory=dict)

    def latencies_ms(self) -> np.ndarray:
        """Client-observed decision latencies (ms), in decision order."""
        return np.array([d.end_ms - d.start_ms for d in self.decisions], dtype=np.float64)

    def safety_violations(self) -> list[str]:
        """Sequences where honest replicas executed different requests (empty = safe).

        >>> simulate_pbft(4, decisions=5, seed=2).safety_violations()
        []
        """
        out = history_conflicts({r: {s: d.hex() for s, d in h.items()} for r, h in self.histories.items()})
        seen: dict[tuple[int, int], int] = {}
        for d in self.decisions:
            key = (d.client, d.rid)
            if key in seen and seen[key] != d.slot:
                out.append(f"request {key} confirmed at sequences {seen[key]} and {d.slot}")
            seen[key] = d.slot
        return out

    def check_safety(self) -> None:
        """Raise :class:`~dwcpkit.errors.ProtocolError` listing any safety violation."""
        v = self.safety_violations()
        if v:
            raise ProtocolError("PBFT safety violated: " + "; ".join(v[:5]))

    def first_decision_after(self, t_ms: float) -> float | None:
        """End time of the first decision confirmed at or after ``t_ms`` (None if none)."""
        ends = [d.end_ms for d in self.decisions if d.end_ms >= t_ms]
        return min(ends) if ends else None

    @property
    def decisions_per_wall_s(self) -> float:
        return len(self.decisions) / self.wall_s if self.wall_s > 0 else math.inf


class PbftCluster:
    """A simulated PBFT cluster you can drive step by step (what :func:`simulate_pbft` runs).

    >>> c = PbftCluster(4, seed=1, requests=3)
    >>> c.start_clients(); c.run()
    >>> [d.slot for d in c.book.decisions]
    [1, 2, 3]
    """

    def __init__(self, n: int = 4, *, seed: int = 0, latency: LatencyModel | None = None,
                 config: PbftConfig | None = None, faults: tuple[Fault, ...] | list[Fault] = (),
                 byzantine: dict[int, str] | None = None, clients: int = 1, requests: int = 0,
                 auth: bool = True, detector: Any = None):
        if n < 4:
            raise ParameterError(f"PBFT needs n >= 4 replicas (n >= 3f + 1 with f >= 1), got {n}")
        if clients < 1:
            raise ParameterError(f"clients must be >= 1, got {clients}")
        cfg = config or PbftConfig()
        cfg.validate()
        byzantine = dict(byzantine or {})
        f = (n - 1) // 3
        for b, beh in byzantine.items():
            if not 0 <= b < n:
                raise ParameterError(f"Byzantine replica {b} outside 0..{n - 1}")
            if beh not in BYZANTINE_BEHAVIOURS:
                raise ParameterError(f"unknown Byzantine behaviour {beh!r}; choose from {BYZANTINE_BEHAVIOURS}")
        faults = list(faults)
        for flt in faults:
            if isinstance(flt, Crash) and flt.node >= n:
                raise ParameterError(f"Crash node {flt.node}: replicas are 0..{n - 1} (clients cannot crash)")
        forges = [x for x in faults if isinstance(x, Forge)]
        mallory = n + clients
        total = mallory + 1 + (1 if forges else 0)
        self.n, self.f, self.seed, self.cfg, self.byzantine = n, f, seed, cfg, byzantine
        self.net = SimNet(total, seed=seed, latency=latency, faults=faults)
        self.kr = Keyring(total, seed, enabled=auth)
        self.book = _Book(self.net, clients)
        tap = _Tap(detector) if detector is not None else None
        self.replicas: list[PbftReplica] = []
        for i in range(n):
            if i in byzantine:
                r: PbftReplica = ByzantineReplica(i, n, self.net, self.kr, cfg, byzantine[i], mallory,
                                                  random.Random(f"byz|{seed}|{i}"))
            else:
                r = PbftReplica(i, n, self.net, self.kr, cfg, tap)
            self.replicas.append(r)
            self.net.attach(i, r)
        self.clients = [PbftClient(n + c, n, self.net, self.kr, cfg, requests // clients + (c < requests % clients),
                                   self.book) for c in range(clients)]
        for c in self.clients:
            self.net.attach(c.id, c)
        self.net.attach(mallory, _Sink())
        self.intruder = None
        if forges:
            self.intruder = _PbftIntruder(total - 1, n, self.net, self.kr, forges, random.Random(f"intr|{seed}"),
                                          n)
            self.net.attach(total - 1, self.intruder)
            self.intruder.start()
        self.fault_end_ms = max((fault_end(x) for x in faults), default=0.0)
        for r in self.replicas:
            r.start()
        self._started = False
        self.events = 0

    def start_clients(self) -> None:
        if not self._started:
            self._started = True
            for c in self.clients:
                c.start()

    def run(self, until_ms: float = math.inf, max_events: int | None = None) -> None:
        self.events += self.net.run(until_ms, max_events)

    def honest(self) -> list[PbftReplica]:
        return [r for r in self.replicas if r.id not in self.byzantine]

    def result(self, wall_s: float = 0.0) -> PbftResult:
        honest = self.honest()
        return PbftResult(
            n=self.n, f=self.f, seed=self.seed, byzantine=dict(self.byzantine),
            decisions=list(self.book.decisions),
            histories={r.id: {s: e[0] for s, e in r.exec_log.items()} for r in honest},
            end_ms=self.net.now, messages=self.net.sent, dropped=self.net.dropped,
            rejected=sum(r.rejected for r in honest),
            view_changes=sum(r.view_changes for r in honest),
            final_views={r.id: r.view for r in honest},
            state_transfers=sum(r.state_transfers for r in honest),
            invalid_certificates=sum(r.invalid_certificates for r in honest),
            stable_checkpoints={r.id: r.stable_n for r in honest},
            events=self.events, wall_s=wall_s, fault_end_ms=self.fault_end_ms,
            forged_sent=self.intruder.sent if self.intruder else 0,
        )


class _Tap:
    """Feeds what honest replicas see into a ByzantineDetector (an audit tap).

    Messages are authenticated, so two conflicting messages from one sender are proof.
    The detector's clock is in seconds; the simulation's in milliseconds.
    """

    def __init__(self, detector: Any):
        self.d = detector

    def vote(self, rep: PbftReplica, m: Msg) -> None:
        phase = {"PP": "pre-prepare", "PREP": "prepare", "COMMIT": "commit"}[m.kind]
        b = m.body
        if len(b) < 3:
            return
        self.d.record_vote(m.sender, b[0], b[1], b[2], phase, now=rep.net.now / 1000.0)

    def invalid(self, receiver: int, src: int, m: Any, now_ms: float) -> None:
        self.d.record_invalid_signature(src, now=now_ms / 1000.0)

    def malformed(self, node: int, kind: str, now_ms: float) -> None:
        self.d.record_malformed(node, kind, now=now_ms / 1000.0)

    def response(self, node: int, rt_ms: float, now_ms: float) -> None:
        self.d.record_response_time(node, rt_ms / 1000.0, now=now_ms / 1000.0)

    def checkpoint_bad(self, node: int, now_ms: float) -> None:
        self.d.record_violation(node, "checkpoint_manipulation", now=now_ms / 1000.0)

    def view_change_abuse(self, node: int, now_ms: float) -> None:
        self.d.record_violation(node, "view_change_abuse", now=now_ms / 1000.0)


def simulate_pbft(n: int = 4, *, decisions: int = 100, seed: int = 0, latency: LatencyModel | None = None,
                  config: PbftConfig | None = None, faults: tuple[Fault, ...] | list[Fault] = (),
                  byzantine: dict[int, str] | None = None, clients: int = 1, until_ms: float | None = None,
                  auth: bool = True, detector: Any = None, stop_after_ms: float | None = None) -> PbftResult:
    """Run PBFT with ``n`` replicas until ``decisions`` client requests are confirmed.

    Parameters
    ----------
    n : int
        Replicas (``>= 4``), ids ``0..n-1``; ``f = (n - 1) // 3``.
    decisions : int
        Requests in total, split over ``clients`` closed-loop clients.
    seed : int
        Seeds latencies, keys and Byzantine choices: same seed, same run.
    latency, config : LatencyModel, PbftConfig
        Network and timing.
    faults : sequence of Crash, Partition, Delay, Loss, Forge
        Fault schedule (simulated ms).
    byzantine : dict, optional
        ``{replica: "equivocate" | "silent" | "forge"}``; excluded from the safety check.
    until_ms : float, optional
        Stop here even if unfinished (default: none without faults/Byzantine replicas, else
        the last heal time plus 120 s).
    auth : bool
        HMAC-authenticate messages.
    detector : ByzantineDetector, optional
        Receives every authenticated vote, MAC failure, malformed message, bad checkpoint and
        invalid view change that honest replicas see.

    stop_after_ms : float, optional
        Stop at the first decision confirmed at or after this time (a liveness probe:
        run with a large ``decisions`` and ``stop_after_ms`` = the heal time).

    Returns
    -------
    PbftResult

    Examples
    --------
    >>> r = simulate_pbft(4, decisions=20, seed=5, byzantine={0: "equivocate"})
    >>> len(r.decisions) == 20, r.safety_violations(), r.view_changes > 0
    (True, [], True)
    """
    if decisions < 0:
        raise ParameterError(f"decisions must be >= 0, got {decisions}")
    c = PbftCluster(n, seed=seed, latency=latency, config=config, faults=faults, byzantine=byzantine,
                    clients=clients, requests=decisions, auth=auth, detector=detector)
    if until_ms is None:
        if not faults and not byzantine:
            until_ms = math.inf
        else:
            until_ms = (c.fault_end_ms if c.fault_end_ms < math.inf else 0.0) + 120_000.0
    c.book.stop_after_ms = stop_after_ms
    t0 = time.perf_counter()
    c.start_clients()
    c.run(until_ms)
    return c.result(time.perf_counter() - t0)
