"""PBFT, message by message: normal case, checkpoints, view change, state transfer.

Castro & Liskov's Practical Byzantine Fault Tolerance (OSDI 1999; TOCS 2002) on top of
:class:`dwcpkit.protocol.acp_net.SimNet`, for ``n >= 3f + 1`` replicas with
``f = (n - 1) // 3``:

- **Normal case.** Clients broadcast signed requests. The primary of view ``v``
  (``v mod n``) assigns a sequence number inside the watermarks ``(h, h + L]`` and sends
  PRE-PREPARE; a backup that accepts it sends PREPARE. A replica is *prepared* with the
  pre-prepare plus ``2f`` matching PREPAREs from distinct backups, then sends COMMIT, and is
  *committed-local* with ``2f + 1`` matching COMMITs. Requests execute strictly in sequence
  order (null requests are no-ops); the client accepts a result on ``f + 1`` matching
  replies.
- **Checkpoints** every ``checkpoint_interval`` (100) executed sequences: a checkpoint
  is stable with ``q`` CHECKPOINT messages carrying the same state digest (a hash
  chain over executed ``(seq, digest)``), which moves the low watermark and garbage-collects
  the log. ``L = 2 * checkpoint_interval``.
- **View change.** A backup whose oldest pending request has not executed within the
  timeout sends VIEW-CHANGE (stable checkpoint + proof, prepared certificates); it joins a
  higher view on ``f + 1`` VIEW-CHANGEs for views above its own; the new primary sends
  NEW-VIEW with ``q`` VIEW-CHANGEs and the re-issued pre-prepares ``O`` (null requests
  fill gaps), which every backup recomputes and checks. Timeouts double per failed view
  and reset on progress; VIEW-CHANGE is retransmitted.
- **State transfer.** A replica behind a stable checkpoint fetches the executed entries
  from a peer and checks them against the certified hash-chain digest.

Every message is HMAC-authenticated (see :mod:`dwcpkit.protocol.acp_net`), so certificates
can be relayed and forged votes are rejected; PREPARE/COMMIT are checked against the
pre-prepare digest. Byzantine replicas (``byzantine={id: "equivocate" | "silent" |
"forge"}``) equivocate (conflicting pre-prepares / votes / checkpoints, tampered NEW-VIEW),
stay silent, or forge messages in other replicas' names.

Fixes relative to the original (``backend/core/network/dwcp/v3/consensus/pbft.go``): no
re-entrant locking (single-threaded handlers, so the prepare->commit deadlock cannot
happen), primary = ``view mod n`` instead of a hard-coded "node_0", a real view change,
MACs, digest matching, watermarks, in-order execution, compared checkpoint digests, and
latency measured to the client's ``f + 1``-th reply rather than to the pre-prepare send.

The replica lives here; clients, Byzantine replicas, the cluster and
:func:`~dwcpkit.protocol.acp_pbft_sim.simulate_pbft` live in
:mod:`dwcpkit.protocol.acp_pbft_sim`.

Example
-------
>>> pbft_quorum(4), pbft_quorum(5)
(3, 4)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from dwcpkit.errors import ParameterError
from dwcpkit.protocol.acp_net import Keyring, Msg, SimNet

__all__ = ["pbft_quorum", "request_digest", "PbftConfig", "PbftReplica", "BYZANTINE_BEHAVIOURS", "NULL_DIGEST"]

NULL_DIGEST = b"\x00" * 16
GENESIS = b"\x00" * 16
BYZANTINE_BEHAVIOURS = ("equivocate", "silent", "forge")
_DL = 0  # deadline timer tag
_TICK = 1  # periodic tick tag


def request_digest(req: tuple | None) -> bytes:
    """Digest of a client request ``(kind, client, (t, op, attempt), mac)`` (attempt excluded)."""
    if req is None:
        return NULL_DIGEST
    t, op, _attempt = req[2]
    return hashlib.sha256(repr((req[1], t, op)).encode()).digest()[:16]


def pbft_quorum(n: int) -> int:
    """Quorum size ``ceil((n + f + 1) / 2)`` with ``f = (n - 1) // 3``.

    Any two quorums share at least ``f + 1`` replicas (so an honest one), and ``n - f``
    replicas can always form one. For ``n = 3f + 1`` it is the textbook ``2f + 1``; for
    other ``n`` the fixed ``2f``/``2f + 1`` thresholds (the original's, which only warned
    when ``n != 3f + 1``) are unsafe: with ``n = 5``, two commit quorums of 3 can meet only
    in the Byzantine replica (the property test finds such runs).

    >>> [pbft_quorum(n) for n in (4, 5, 6, 7, 10, 16)]
    [3, 4, 4, 5, 7, 11]
    """
    f = (n - 1) // 3
    return (n + f + 2) // 2


def _chain(prev: bytes, seq: int, d: bytes) -> bytes:
    return hashlib.sha256(prev + seq.to_bytes(8, "big") + d).digest()[:16]


@dataclass(frozen=True)
class PbftConfig:
    """PBFT timing and log sizes.

    ``view_change_timeout_ms`` is the request timer (doubling per failed view, capped at
    ``max_view_change_timeout_ms`` so that a long partition does not leave replicas waiting
    minutes after it heals);
    ``checkpoint_interval`` the original's 100; ``log_window`` (L) the watermark window.
    ``quorum`` overrides :func:`pbft_quorum` — only to demonstrate unsafe quorums (e.g. the
    original's ``2f + 1`` at ``n = 5``); leave it ``None``.

    >>> PbftConfig.preset("wan").view_change_timeout_ms
    2000.0
    """

    view_change_timeout_ms: float = 500.0
    max_view_change_timeout_ms: float = 4000.0
    checkpoint_interval: int = 100
    log_window: int = 200
    client_retry_ms: float = 1500.0
    tick_ms: float = 250.0
    state_transfer_after_ms: float = 1000.0
    future_buffer: int = 20_000
    quorum: int | None = None

    @classmethod
    def preset(cls, name: str) -> "PbftConfig":
        """``datacenter`` (500 ms, the original's datacenter consensus timeout), ``hybrid`` or ``wan``."""
        table = {
            "datacenter": cls(),
            "hybrid": cls(1000.0, 8000.0, 100, 200, 3000.0, 500.0, 2000.0),
            "wan": cls(2000.0, 16000.0, 100, 200, 6000.0, 1000.0, 4000.0),
            "internet": cls(2000.0, 16000.0, 100, 200, 6000.0, 1000.0, 4000.0),
        }
        if name not in table:
            raise ParameterError(f"unknown PBFT preset {name!r}; choose one of {sorted(table)}")
        return table[name]

    def validate(self) -> None:
        if self.view_change_timeout_ms <= 0 or self.client_retry_ms <= 0 or self.tick_ms <= 0:
            raise ParameterError("PBFT timeouts must be > 0")
        if self.quorum is not None and self.quorum < 1:
            raise ParameterError(f"quorum must be >= 1, got {self.quorum}")
        if self.max_view_change_timeout_ms < self.view_change_timeout_ms:
            raise ParameterError("max_view_change_timeout_ms must be >= view_change_timeout_ms")
        if self.checkpoint_interval < 1 or self.log_window < self.checkpoint_interval:
            raise ParameterError(
                f"need checkpoint_interval >= 1 and log_window >= checkpoint_interval, got "
                f"{self.checkpoint_interval}, {self.log_window}"
            )


class PbftReplica:
    """An honest PBFT replica (single-threaded state machine; handlers never re-enter)."""

    def __init__(self, i: int, n: int, net: SimNet, kr: Keyring, cfg: PbftConfig, tap: Any = None):
        self.id, self.n, self.net, self.kr, self.cfg = i, n, net, kr, cfg
        self.f = (n - 1) // 3
        self.q = cfg.quorum if cfg.quorum is not None else pbft_quorum(n)
        self.tap = tap
        self._vc_ok: dict[tuple[int, bytes], bool] = {}
        self.crashed = False
        self.view = 0
        self.active = True
        self.h = 0
        self.stable_n = 0
        self.stable_d = GENESIS
        self.stable_proof: tuple = ()
        self.next_seq = 1
        self.pp: dict[tuple[int, int], Msg] = {}
        self.prep: dict[tuple[int, int, bytes], dict[int, Msg]] = {}
        self.comm: dict[tuple[int, int, bytes], set[int]] = {}
        self.prepared: dict[tuple[int, int], bytes] = {}
        self.pcert: dict[int, tuple] = {}
        self.committed: dict[int, tuple[bytes, Any]] = {}
        self.last_exec = 0
        self.chain: dict[int, bytes] = {0: GENESIS}
        self.exec_log: dict[int, tuple[bytes, Any]] = {}
        self.ckpt: dict[int, dict[bytes, dict[int, Msg]]] = {}
        self.pending: dict[tuple[int, int], tuple] = {}
        self.assigned: dict[tuple[int, int], int] = {}
        self.queue: list[tuple] = []
        self.last_t: dict[int, int] = {}
        self.first_seq: dict[tuple[int, int], int] = {}
        self.replies: dict[int, tuple[int, Msg]] = {}
        self.vcs: dict[int, dict[int, Msg]] = {}
        self.vc_latest: dict[int, int] = {}
        self.my_vc: Msg | None = None
        self.nv_sent: dict[int, Msg] = {}
        self.future: dict[int, list[tuple[int, Msg]]] = {}
        self.future_count = 0
        self.timeout = cfg.view_change_timeout_ms
        self.deadline: float | None = None
        self._armed: float | None = None
        self.st_target: tuple[int, bytes, tuple[int, ...]] | None = None
        self.st_since = 0.0
        self._st_rr = 0
        self._pp_time: dict[tuple[int, int], float] = {}
        # statistics
        self.rejected = 0
        self.view_changes = 0
        self.state_transfers = 0
        self.invalid_certificates = 0
        self._others = [j for j in range(n) if j != i]
        self._handlers = {
            "REQ": self._on_req, "PP": self._on_pp, "PREP": self._on_prep, "COMMIT": self._on_commit,
            "CKPT": self._on_ckpt, "VC": self._on_vc, "NV": self._on_nv, "SREQ": self._on_sreq,
            "SREP": self._on_srep,
        }

    # ------------------------------------------------------------------ helpers
    def primary(self, v: int | None = None) -> int:
        return (self.view if v is None else v) % self.n

    def _bcast(self, msg: Msg) -> None:
        send, me = self.net.send, self.id
        for j in self._others:
            send(me, j, msg)

    def _sign(self, kind: str, body: tuple) -> Msg:
        return self.kr.sign(self.id, kind, body)

    def start(self) -> None:
        self.net.timer(self.id, self.net.now + self.cfg.tick_ms, _TICK)

    def on_crash(self) -> None:
        pass

    def on_recover(self) -> None:
        self._armed = None
        if self.deadline is not None:
            self.deadline = self.net.now + self.timeout
            self._arm()
        self.net.timer(self.id, self.net.now + self.cfg.tick_ms, _TICK)

    # ------------------------------------------------------------------ timers
    def _set_deadline(self, t: float | None) -> None:
        self.deadline = t
        self._arm()

    def _arm(self) -> None:
        d = self.deadline
        if d is not None and (self._armed is None or d < self._armed):
            self._armed = d
            self.net.timer(self.id, d, _DL)

    def on_timer(self, tag: int) -> None:
        now = self.net.now
        if tag == _TICK:
            self._tick()
            self.net.timer(self.id, now + self.cfg.tick_ms, _TICK)
            return
        if self._armed is not None and now >= self._armed:
            self._armed = None
        d = self.deadline
        if d is None:
            return
        if now >= d:
            self.deadline = None
            self._expire()
        else:
            self._arm()

    def _expire(self) -> None:
        if self.active:
            if self.pending:
                self._start_view_change(self.view + 1)
        else:
            self.timeout = min(2 * self.timeout, self.cfg.max_view_change_timeout_ms)
            self._start_view_change(self.view + 1)

    def _tick(self) -> None:
        now = self.net.now
        if not self.active and self.my_vc is not None and self.my_vc.body[0] == self.view:
            self._bcast(self.my_vc)
        st = self.st_target
        if st is not None and self.last_exec < st[0] and now - self.st_since >= self.cfg.state_transfer_after_ms:
            peers = [p for p in st[2] if p != self.id] or self._others
            p = peers[self._st_rr % len(peers)]
            self._st_rr += 1
            self.st_since = now
            self.net.send(self.id, p, self._sign("SREQ", (self.last_exec, st[0])))

    # ------------------------------------------------------------------ dispatch
    def on_message(self, src: int, m: Any) -> None:
        if not self.kr.verify(m):
            self.rejected += 1
            if self.tap is not None:
                self.tap.invalid(self.id, src, m, self.net.now)
            return
        h = self._handlers.get(m.kind)
        if h is None:
            if self.tap is not None:
                self.tap.malformed(m.sender, m.kind, self.net.now)
            return
        if self.tap is not None and m.kind in ("PP", "PREP", "COMMIT"):
            self.tap.vote(self, m)
        h(m)

    def _phase_ok(self, m: Msg) -> bool:
        """Accept a normal-case message for the current active view; buffer future ones."""
        v = m.body[0]
        if v < self.view:
            return False
        if v > self.view or not self.active:
            if self.future_count < self.cfg.future_buffer:
                self.future.setdefault(v, []).append((m.sender, m))
                self.future_count += 1
            return False
        s = m.body[1]
        return self.h < s <= self.h + self.cfg.log_window

    # ------------------------------------------------------------------ requests
    def _valid_request(self, req: Any) -> bool:
        return (isinstance(req, tuple) and len(req) == 4 and req[0] == "REQ"
                and self.kr.verify(Msg(*req)) and len(req[2]) == 3)

    def _on_req(self, m: Msg) -> None:
        if len(m.body) != 3:
            return
        req = tuple(m)
        c = m.sender
        t, _op, attempt = m.body
        if t <= self.last_t.get(c, 0):
            if attempt > 0:
                cached = self.replies.get(c)
                if cached is not None and cached[0] == t:
                    self.net.send(self.id, c, cached[1])
            return
        key = (c, t)
        if key not in self.pending:
            self.pending[key] = req
        if self.active and self.primary() == self.id:
            self._propose(req)
        elif self.active and self.deadline is None:
            self._set_deadline(self.net.now + self.timeout)

    def _propose(self, req: tuple) -> None:
        key = (req[1], req[2][0])
        if key in self.assigned:
            return
        if self.next_seq > self.h + self.cfg.log_window:
            self.queue.append(req)
            return
        s = self.next_seq
        self.next_seq += 1
        self.assigned[key] = s
        d = request_digest(req)
        pp = self._sign("PP", (self.view, s, d, req))
        self.pp[(self.view, s)] = pp
        self._send_pp(pp)

    def _send_pp(self, pp: Msg) -> None:
        self._bcast(pp)

    def _drain_queue(self) -> None:
        q, self.queue = self.queue, []
        for req in q:
            if req[2][0] > self.last_t.get(req[1], 0):
                self._propose(req)

    # ------------------------------------------------------------------ normal case
    def _on_pp(self, m: Msg) -> None:
        if len(m.body) != 4:
            return
        v, s, d, req = m.body
        if m.sender != v % self.n or m.sender == self.id:
            if self.tap is not None:
                self.tap.malformed(m.sender, "PP", self.net.now)
            return
        if not self._phase_ok(m):
            return
        if req is None or not self._valid_request(req) or request_digest(req) != d:
            if self.tap is not None:
                self.tap.malformed(m.sender, "PP", self.net.now)
            return
        key = (v, s)
        old = self.pp.get(key)
        if old is not None:
            return
        self._accept_pp(m)

    def _accept_pp(self, m: Msg) -> None:
        v, s, d, req = m.body
        self.pp[(v, s)] = m
        self._pp_time[(v, s)] = self.net.now
        if req is not None:
            c, t = req[1], req[2][0]
            if t > self.last_t.get(c, 0) and (c, t) not in self.pending:
                self.pending[(c, t)] = req
                if self.active and self.deadline is None:
                    self._set_deadline(self.net.now + self.timeout)
        p = self._sign("PREP", (v, s, d))
        self.prep.setdefault((v, s, d), {})[self.id] = p
        self._send_prepare(p)
        self._check_prepared(v, s)

    def _send_prepare(self, p: Msg) -> None:
        self._bcast(p)

    def _on_prep(self, m: Msg) -> None:
        if len(m.body) != 3:
            return
        v, s, d = m.body
        if m.sender == v % self.n:
            if self.tap is not None:
                self.tap.malformed(m.sender, "PREP", self.net.now)
            return
        if not self._phase_ok(m):
            return
        self.prep.setdefault((v, s, d), {})[m.sender] = m
        if self.tap is not None:
            t0 = self._pp_time.get((v, s))
            if t0 is not None:
                self.tap.response(m.sender, self.net.now - t0, self.net.now)
        self._check_prepared(v, s)

    def _check_prepared(self, v: int, s: int) -> None:
        if (v, s) in self.prepared:
            return
        pp = self.pp.get((v, s))
        if pp is None:
            return
        d = pp.body[2]
        preps = self.prep.get((v, s, d))
        if preps is None or len(preps) < self.q - 1:
            return
        self.prepared[(v, s)] = d
        old = self.pcert.get(s)
        if old is None or old[0] <= v:
            self.pcert[s] = (v, pp, tuple(preps[k] for k in sorted(preps)))
        c = self._sign("COMMIT", (v, s, d))
        self.comm.setdefault((v, s, d), set()).add(self.id)
        self._send_commit(c)
        self._check_committed(v, s)

    def _send_commit(self, c: Msg) -> None:
        self._bcast(c)

    def _on_commit(self, m: Msg) -> None:
        if len(m.body) != 3:
            return
        if not self._phase_ok(m):
            return
        v, s, d = m.body
        self.comm.setdefault((v, s, d), set()).add(m.sender)
        self._check_committed(v, s)

    def _check_committed(self, v: int, s: int) -> None:
        d = self.prepared.get((v, s))
        if d is None or s <= self.last_exec or s in self.committed:
            return
        cs = self.comm.get((v, s, d))
        if cs is None or len(cs) < self.q:
            return
        self.committed[s] = (d, self.pp[(v, s)].body[3])
        self._try_execute()

    # ------------------------------------------------------------------ execution
    def _execute_one(self, s: int, d: bytes, req: Any, reply: bool) -> None:
        self.chain[s] = _chain(self.chain[s - 1], s, d)
        self.exec_log[s] = (d, req)
        self.last_exec = s
        if req is not None:
            c, t = req[1], req[2][0]
            self.pending.pop((c, t), None)
            if t > self.last_t.get(c, 0):
                self.last_t[c] = t
                self.first_seq[(c, t)] = s
                result = s
            else:
                result = self.first_seq.get((c, t), s)
            msg = self._sign("REPLY", (self.view, t, c, result))
            self.replies[c] = (t, msg)
            if reply:
                self._send_reply(c, msg)

    def _send_reply(self, c: int, msg: Msg) -> None:
        self.net.send(self.id, c, msg)

    def _try_execute(self) -> None:
        progressed = False
        k = self.cfg.checkpoint_interval
        while True:
            s = self.last_exec + 1
            entry = self.committed.pop(s, None)
            if entry is None:
                break
            d, req = entry
            self._execute_one(s, d, req, True)
            progressed = True
            if s % k == 0:
                self._make_checkpoint(s)
        if progressed and self.active:
            self.timeout = self.cfg.view_change_timeout_ms
            self._set_deadline(self.net.now + self.timeout if self.pending else None)

    def _make_checkpoint(self, s: int) -> None:
        msg = self._sign("CKPT", (s, self.chain[s]))
        self.ckpt.setdefault(s, {}).setdefault(self.chain[s], {})[self.id] = msg
        self._send_ckpt(msg)
        self._check_stable(s)

    def _send_ckpt(self, msg: Msg) -> None:
        self._bcast(msg)

    def _on_ckpt(self, m: Msg) -> None:
        if len(m.body) != 2:
            return
        s, dg = m.body
        if s <= self.stable_n:
            if s == self.stable_n and dg != self.stable_d and self.tap is not None:
                self.tap.checkpoint_bad(m.sender, self.net.now)
            return
        mine = self.chain.get(s)
        if mine is not None and dg != mine and self.tap is not None:
            self.tap.checkpoint_bad(m.sender, self.net.now)
        self.ckpt.setdefault(s, {}).setdefault(dg, {})[m.sender] = m
        self._check_stable(s)

    def _check_stable(self, s: int) -> None:
        if s <= self.stable_n:
            return
        for dg, msgs in self.ckpt.get(s, {}).items():
            if len(msgs) >= self.q:
                proof = tuple(msgs[k] for k in sorted(msgs))[: self.q]
                self._adopt_stable(s, dg, proof)
                return

    def _adopt_stable(self, s: int, dg: bytes, proof: tuple) -> None:
        if s <= self.stable_n:
            return
        self.stable_n, self.stable_d, self.stable_proof = s, dg, proof
        self.h = s
        for key in [k for k in self.pp if k[1] <= s]:
            del self.pp[key]
            self._pp_time.pop(key, None)
        for key in [k for k in self.prep if k[1] <= s]:
            del self.prep[key]
        for key in [k for k in self.comm if k[1] <= s]:
            del self.comm[key]
        for key in [k for k in self.prepared if k[1] <= s]:
            del self.prepared[key]
        for key in [k for k in self.pcert if k <= s]:
            del self.pcert[key]
        for key in [k for k in self.ckpt if k < s]:
            del self.ckpt[key]
        if self.last_exec < s:
            for key in [k for k in self.committed if k <= s]:
                del self.committed[key]
            if self.st_target is None or self.st_target[0] < s:
                self.st_target = (s, dg, tuple(m.sender for m in proof))
                self.st_since = self.net.now
        if self.active and self.primary() == self.id:
            self._drain_queue()

    # ------------------------------------------------------------------ state transfer
    def _on_sreq(self, m: Msg) -> None:
        lo, hi = m.body
        if self.last_exec < hi or lo < 0 or hi - lo > 100_000:
            return
        entries = tuple((s, *self.exec_log[s]) for s in range(lo + 1, hi + 1))
        self.net.send(self.id, m.sender, self._sign("SREP", (entries,)))

    def _on_srep(self, m: Msg) -> None:
        st = self.st_target
        if st is None or self.last_exec >= st[0]:
            return
        (entries,) = m.body
        target, dg = st[0], st[1]
        h = self.chain[self.last_exec]
        expect = self.last_exec + 1
        ok = []
        for s, d, req in entries:
            if s != expect or (req is not None and (not self._valid_request(req) or request_digest(req) != d)) \
                    or (req is None and d != NULL_DIGEST):
                break
            h = _chain(h, s, d)
            ok.append((s, d, req))
            expect += 1
            if s == target:
                break
        if not ok or ok[-1][0] != target or h != dg:
            if self.tap is not None:
                self.tap.checkpoint_bad(m.sender, self.net.now)
            return
        for s, d, req in ok:
            self.committed.pop(s, None)
            self._execute_one(s, d, req, False)
        self.state_transfers += 1
        self.st_target = None
        self._try_execute()

    # ------------------------------------------------------------------ view change
    def _start_view_change(self, u: int) -> None:
        if u <= self.view:
            return
        self.view = u
        self.active = False
        self.view_changes += 1
        self.assigned = {}
        self.queue = []
        s0 = self.stable_n
        certs = tuple((tuple(c[1]), tuple(tuple(p) for p in c[2]))
                      for s, c in sorted(self.pcert.items()) if s > s0)
        vc = self._sign("VC", (u, s0, tuple(tuple(p) for p in self.stable_proof), certs))
        self.my_vc = vc
        self.vcs.setdefault(u, {})[self.id] = vc
        self.vc_latest[self.id] = u
        self._set_deadline(None)
        self._send_vc(vc)
        self._after_vc(u)

    def _send_vc(self, vc: Msg) -> None:
        self._bcast(vc)

    def _valid_vc(self, m: Msg) -> bool:
        """Check a VIEW-CHANGE's certificates (its own MAC must already be verified).

        Results are cached by (sender, MAC): the MAC binds the content, so a retransmitted
        VIEW-CHANGE is not re-verified."""
        key = (m.sender, m.mac) if self.kr.enabled else m
        ok = self._vc_ok.get(key)
        if ok is None:
            ok = self._vc_ok[key] = self._check_vc(m)
        return ok

    def _check_vc(self, m: Msg) -> bool:
        try:
            u, s0, proof, certs = m.body
        except (TypeError, ValueError):
            return False
        if not isinstance(u, int) or u <= 0 or not isinstance(s0, int) or s0 < 0:
            return False
        q = self.q
        if s0 > 0:
            senders, dg = set(), None
            for raw in proof:
                c = Msg(*raw)
                if c.kind != "CKPT" or not self.kr.verify(c) or c.body[0] != s0:
                    return False
                if dg is None:
                    dg = c.body[1]
                elif c.body[1] != dg:
                    return False
                senders.add(c.sender)
            if len(senders) < q:
                return False
        elif proof:
            return False
        seen = set()
        for raw_pp, raw_preps in certs:
            pp = Msg(*raw_pp)
            if pp.kind != "PP" or not self.kr.verify(pp) or len(pp.body) != 4:
                return False
            pv, ps, pd, req = pp.body
            if pp.sender != pv % self.n or pv >= u or not s0 < ps <= s0 + self.cfg.log_window or ps in seen:
                return False
            if req is None:
                if pd != NULL_DIGEST:
                    return False
            elif not self._valid_request(req) or request_digest(req) != pd:
                return False
            seen.add(ps)
            senders = set()
            for raw in raw_preps:
                p = Msg(*raw)
                if p.kind != "PREP" or not self.kr.verify(p) or p.body != (pv, ps, pd) or p.sender == pp.sender:
                    return False
                senders.add(p.sender)
            if len(senders) < self.q - 1:
                return False
        return True

    def _on_vc(self, m: Msg) -> None:
        if not self._valid_vc(m):
            self.invalid_certificates += 1
            if self.tap is not None:
                self.tap.view_change_abuse(m.sender, self.net.now)
            return
        u = m.body[0]
        s = m.sender
        if u > self.vc_latest.get(s, -1):
            self.vc_latest[s] = u
        if u < self.view:
            return
        if u == self.view and self.active:
            nv = self.nv_sent.get(u)
            if nv is not None:
                self.net.send(self.id, s, nv)
            return
        self.vcs.setdefault(u, {})[s] = m
        views = sorted((w for j, w in self.vc_latest.items() if j != self.id and w > self.view), reverse=True)
        if len(views) >= self.f + 1:
            target = views[self.f]
            if target > self.view:
                self._start_view_change(target)
                return
        self._after_vc(u)

    def _after_vc(self, u: int) -> None:
        if self.active or u != self.view:
            return
        got = self.vcs.get(u, {})
        if len(got) >= self.q:
            if self.deadline is None:
                self._set_deadline(self.net.now + self.timeout)
            if self.primary(u) == self.id and u not in self.nv_sent and self.id in got:
                self._send_new_view(u)

    def _compute_o(self, u: int, vcs: list[Msg]) -> tuple[int, bytes, tuple, list[tuple[int, bytes, Any]]]:
        best_vc = max(vcs, key=lambda x: (x.body[1], -x.sender))
        min_s = best_vc.body[1]
        proof = best_vc.body[2]
        dg = Msg(*proof[0]).body[1] if proof else GENESIS
        best: dict[int, tuple[int, bytes, Any]] = {}
        for vc in vcs:
            for raw_pp, _ in vc.body[3]:
                pv, ps, pd, req = raw_pp[2]
                if ps <= min_s:
                    continue
                cur = best.get(ps)
                if cur is None or pv > cur[0] or (pv == cur[0] and pd < cur[1]):
                    best[ps] = (pv, pd, req)
        max_s = max(best, default=min_s)
        o = []
        for s in range(min_s + 1, max_s + 1):
            if s in best:
                o.append((s, best[s][1], best[s][2]))
            else:
                o.append((s, NULL_DIGEST, None))
        return min_s, dg, proof, o

    def _send_new_view(self, u: int) -> None:
        got = self.vcs[u]
        chosen = [got[self.id]] + [got[k] for k in sorted(got) if k != self.id][: self.q - 1]
        min_s, dg, proof, o = self._compute_o(u, chosen)
        o_msgs = tuple(tuple(self._sign("PP", (u, s, d, req))) for s, d, req in o)
        nv = self._sign("NV", (u, tuple(tuple(v) for v in chosen), o_msgs))
        nv = self._tamper_nv(nv)
        self.nv_sent[u] = nv
        self._bcast(nv)
        self._enter_view(u, min_s, dg, proof, [Msg(*x) for x in o_msgs])

    def _tamper_nv(self, nv: Msg) -> Msg:
        return nv

    def _on_nv(self, m: Msg) -> None:
        try:
            u, raw_vcs, raw_o = m.body
        except (TypeError, ValueError):
            return
        if m.sender != u % self.n or u < self.view or (u == self.view and self.active) or m.sender == self.id:
            return
        vcs, senders = [], set()
        for raw in raw_vcs:
            vc = Msg(*raw)
            if vc.kind != "VC" or vc.body[0] != u or not self.kr.verify(vc) or not self._valid_vc(vc) \
                    or vc.sender in senders:
                vcs = None
                break
            vcs.append(vc)
            senders.add(vc.sender)
        ok = vcs is not None and len(senders) >= self.q
        if ok:
            min_s, dg, proof, o = self._compute_o(u, vcs)
            o_msgs = [Msg(*x) for x in raw_o]
            ok = len(o_msgs) == len(o) and all(
                x.kind == "PP" and x.sender == m.sender and self.kr.verify(x) and x.body[0] == u
                and (x.body[1], x.body[2]) == (s, d) and (x.body[3] == req)
                for x, (s, d, req) in zip(o_msgs, o))
        if not ok:
            self.invalid_certificates += 1
            if self.tap is not None:
                self.tap.view_change_abuse(m.sender, self.net.now)
            return
        self._enter_view(u, min_s, dg, proof, o_msgs)

    def _enter_view(self, u: int, min_s: int, dg: bytes, proof: tuple, o_msgs: list[Msg]) -> None:
        self.view = u
        self.active = True
        self._set_deadline(None)
        self.my_vc = None
        for w in [w for w in self.vcs if w <= u]:
            del self.vcs[w]
        if min_s > self.stable_n:
            self._adopt_stable(min_s, dg, tuple(Msg(*x) for x in proof))
        primary = self.primary(u) == self.id
        self.assigned = {}
        max_s = min_s
        for pp in o_msgs:
            s = pp.body[1]
            max_s = max(max_s, s)
            req = pp.body[3]
            if req is not None:
                self.assigned[(req[1], req[2][0])] = s
            if s <= self.h:
                continue
            if primary:
                self.pp[(u, s)] = pp
                self._check_prepared(u, s)
            else:
                self._accept_pp(pp)
        if primary:
            self.next_seq = max(max_s, self.h) + 1
        # replay buffered messages of this view; drop older ones
        for w in [w for w in self.future if w <= u]:
            msgs = self.future.pop(w)
            self.future_count -= len(msgs)
            if w == u:
                for src, msg in msgs:
                    h = self._handlers[msg.kind]
                    h(msg)
        if primary:
            for key, req in list(self.pending.items()):
                if key not in self.assigned and key[1] > self.last_t.get(key[0], 0):
                    self._propose(req)
        if self.pending and self.deadline is None:
            self._set_deadline(self.net.now + self.timeout)
