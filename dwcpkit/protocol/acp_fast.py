"""Fast path: numba engines for the fault-free normal case of Raft and PBFT.

The message-level simulators (:mod:`~dwcpkit.protocol.acp_raft`,
:mod:`~dwcpkit.protocol.acp_pbft`) run every protocol rule with Python objects, HMACs and
a ``heapq`` event loop; that caps them at thousands to tens of thousands of decisions per
second. These engines run the same *normal case* (a stable leader/primary, no elections or
view changes) as a discrete-event simulation over numpy arrays inside one ``@njit`` loop:

- the same network: FIFO links and the same keyed latency function
  (:func:`~dwcpkit.protocol.acp_net._delay_nb`), so a message's latency depends only on
  ``(seed, src, dst, k-th message on the link)``;
- the same messages in the same order: Raft AppendEntries (optimistic ``nextIndex``),
  per-follower heartbeats, acknowledgements, majority commit, replies; PBFT request
  broadcast, PRE-PREPARE, PREPARE, COMMIT with quorum ``q``, in-order execution, replies,
  CHECKPOINT broadcasts every 100 sequences, ``f + 1`` matching replies at the client;
- the same tie-breaking (event time, then insertion order).

So for the same seed the engines reproduce the message-level simulators' decisions and
latencies exactly (the tests compare them bit for bit), including with crashed followers
/ backups. What they leave out: MAC computation (authentication is exercised by the
message-level simulator; in the normal case every MAC verifies), elections, view changes,
partitions, loss and Byzantine behaviour. Use the message-level simulators for those.

Example
-------
>>> r = fast_raft(5, decisions=1000, seed=1)
>>> r.decisions, r.slots[:3].tolist()
(1000, [1, 2, 3])
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numba import njit

from dwcpkit.errors import ParameterError, ProtocolError
from dwcpkit.protocol.acp_net import LatencyModel, _delay_nb, _link_key
from dwcpkit.protocol.acp_pbft import PbftConfig, pbft_quorum
from dwcpkit.protocol.acp_raft import RaftConfig

__all__ = ["FastResult", "fast_raft", "fast_pbft"]

# event kinds
_K_CREQ, _K_AE, _K_AER, _K_RESP, _K_HB = 0, 1, 2, 3, 4
_K_REQ, _K_PP, _K_PREP, _K_COMMIT, _K_REPLY = 5, 6, 7, 8, 9

_OK = 0
_ERR_HEAP = 1
_ERR_DIVERGED = 2
_ERR_RING = 3
_ERR_STALLED = 4


# The event queue: a binary heap of (time, insertion counter, event id) over three arrays,
# and a pool of event payload rows ``pool[eid] = (kind, src, dst, a, b, c)`` with a free
# list. ``st`` holds [heap size, insertion counter, free count, overflow flag, messages].
_S_SIZE, _S_CTR, _S_FREE, _S_OVF, _S_SENT = 0, 1, 2, 3, 4


@njit("void(float64[:], int64[:], int64[:], int64[:, :], int64[:], int64[:], float64, int64, int64, int64, "
      "int64, int64, int64)", cache=True, nogil=True)
def _emit(ht, hc, hid, pool, free, st, t, k, s, d, a, b, c):  # pragma: no cover - compiled
    nfree = st[_S_FREE]
    ctr = st[_S_CTR]
    st[_S_CTR] = ctr + 1
    if nfree == 0:
        st[_S_OVF] = 1
        return
    eid = free[nfree - 1]
    st[_S_FREE] = nfree - 1
    pool[eid, 0] = k
    pool[eid, 1] = s
    pool[eid, 2] = d
    pool[eid, 3] = a
    pool[eid, 4] = b
    pool[eid, 5] = c
    i = st[_S_SIZE]
    st[_S_SIZE] = i + 1
    while i > 0:
        p = (i - 1) >> 1
        if ht[p] < t or (ht[p] == t and hc[p] < ctr):
            break
        ht[i] = ht[p]
        hc[i] = hc[p]
        hid[i] = hid[p]
        i = p
    ht[i] = t
    hc[i] = ctr
    hid[i] = eid


@njit("int64(float64[:], int64[:], int64[:], int64[:], int64[:])", cache=True, nogil=True)
def _take(ht, hc, hid, free, st):  # pragma: no cover - compiled
    """Pop the earliest event; returns its id (its pool row stays valid until the next emit)."""
    eid0 = hid[0]
    free[st[_S_FREE]] = eid0
    st[_S_FREE] += 1
    last = st[_S_SIZE] - 1
    st[_S_SIZE] = last
    t = ht[last]
    ctr = hc[last]
    e = hid[last]
    i = 0
    while True:
        l = 2 * i + 1
        if l >= last:
            break
        r = l + 1
        m = l
        if r < last and (ht[r] < ht[l] or (ht[r] == ht[l] and hc[r] < hc[l])):
            m = r
        if t < ht[m] or (t == ht[m] and ctr < hc[m]):
            break
        ht[i] = ht[m]
        hc[i] = hc[m]
        hid[i] = hid[m]
        i = m
    if last > 0:
        ht[i] = t
        hc[i] = ctr
        hid[i] = e
    return eid0


@njit("float64(int64[:, :], float64[:, :], uint64[:, :], float64[:, :], float64, float64, float64, int64, int64, "
      "int64[:])", cache=True, nogil=True)
def _send(cnt, lastd, keys, med, sigma, floor, now, s, d, st):  # pragma: no cover - compiled
    """Delivery time of a message sent now on FIFO link s -> d (advances the link counter)."""
    kk = cnt[s, d]
    cnt[s, d] = kk + 1
    st[_S_SENT] += 1
    t = now + _delay_nb(keys[s, d], kk, med[s, d], sigma, floor)
    if t < lastd[s, d]:
        t = lastd[s, d]
    else:
        lastd[s, d] = t
    return t


@njit(cache=True, nogil=True)
def _queue(cap, nn):  # pragma: no cover - compiled
    ht = np.empty(cap, np.float64)
    hc = np.empty(cap, np.int64)
    hid = np.empty(cap, np.int64)
    pool = np.empty((cap, 6), np.int64)
    free = np.arange(cap).astype(np.int64)
    st = np.zeros(5, np.int64)
    st[_S_FREE] = cap
    cnt = np.zeros((nn, nn), np.int64)
    lastd = np.zeros((nn, nn), np.float64)
    return ht, hc, hid, pool, free, st, cnt, lastd


@njit(cache=True, nogil=True)
def _raft_kernel(n, keys, med, sigma, floor, hb_ms, max_batch, decisions, crashed, cap):  # pragma: no cover
    client = n
    ht, hc, hid, pool, free, st, cnt, lastd = _queue(cap, n + 1)
    events = 0
    next_index = np.ones(n, np.int64)
    match = np.zeros(n, np.int64)
    hb_deadline = np.zeros(n, np.float64)
    last = 0
    commit = 0
    flog = np.zeros(n, np.int64)  # followers' last log index
    maj = n // 2 + 1
    epoch = n  # heartbeat tag base: leaderships (1) * n
    dec_start = np.empty(decisions, np.float64)
    dec_end = np.empty(decisions, np.float64)
    dec_slot = np.empty(decisions, np.int64)
    ndec = 0
    now = 0.0
    # bootstrap: the leader sends (empty) AppendEntries to each follower and arms its heartbeat
    for j in range(1, n):
        ni = next_index[j]
        nent = min(last - ni + 1, max_batch)
        t = _send(cnt, lastd, keys, med, sigma, floor, now, 0, j, st)
        _emit(ht, hc, hid, pool, free, st, t, _K_AE, 0, j, ni - 1, nent, commit)
        next_index[j] = ni + nent
        hb_deadline[j] = now + hb_ms
        _emit(ht, hc, hid, pool, free, st, hb_deadline[j], _K_HB, 0, 0, epoch + j, 0, 0)
    rid = 1
    sent_at = now
    t = _send(cnt, lastd, keys, med, sigma, floor, now, client, 0, st)
    _emit(ht, hc, hid, pool, free, st, t, _K_CREQ, client, 0, rid, 0, 0)
    status = _OK
    while st[_S_SIZE] > 0:
        if st[_S_OVF] != 0:
            status = _ERR_HEAP
            break
        now = ht[0]
        eid = _take(ht, hc, hid, free, st)
        kind = pool[eid, 0]
        src = pool[eid, 1]
        dst = pool[eid, 2]
        a = pool[eid, 3]
        b = pool[eid, 4]
        events += 1
        if kind == _K_HB:
            j = a - epoch
            if now >= hb_deadline[j]:
                ni = next_index[j]
                nent = min(last - ni + 1, max_batch)
                t = _send(cnt, lastd, keys, med, sigma, floor, now, 0, j, st)
                _emit(ht, hc, hid, pool, free, st, t, _K_AE, 0, j, ni - 1, nent, commit)
                next_index[j] = ni + nent
                hb_deadline[j] = now + hb_ms
            _emit(ht, hc, hid, pool, free, st, hb_deadline[j], _K_HB, 0, 0, a, 0, 0)
            continue
        if dst < n and crashed[dst]:
            continue
        if kind == _K_AE:
            j = dst
            if a != flog[j]:
                status = _ERR_DIVERGED
                break
            flog[j] = a + b
            t = _send(cnt, lastd, keys, med, sigma, floor, now, j, 0, st)
            _emit(ht, hc, hid, pool, free, st, t, _K_AER, j, 0, a + b, 0, 0)
        elif kind == _K_AER:
            j = src
            if a > match[j]:
                match[j] = a
                if a + 1 > next_index[j]:
                    next_index[j] = a + 1
                nc = commit
                while True:
                    votes = 0
                    for q in range(n):
                        if match[q] > nc:
                            votes += 1
                    if votes < maj:
                        break
                    nc += 1
                if nc > commit:
                    for idx in range(commit + 1, nc + 1):
                        t = _send(cnt, lastd, keys, med, sigma, floor, now, 0, client, st)
                        _emit(ht, hc, hid, pool, free, st, t, _K_RESP, 0, client, idx, idx, 0)
                    commit = nc
        elif kind == _K_CREQ:
            last += 1
            match[0] = last
            for j in range(1, n):
                ni = next_index[j]
                nent = min(last - ni + 1, max_batch)
                t = _send(cnt, lastd, keys, med, sigma, floor, now, 0, j, st)
                _emit(ht, hc, hid, pool, free, st, t, _K_AE, 0, j, ni - 1, nent, commit)
                next_index[j] = ni + nent
                hb_deadline[j] = now + hb_ms
        elif kind == _K_RESP:
            if a == rid:
                dec_start[ndec] = sent_at
                dec_end[ndec] = now
                dec_slot[ndec] = b
                ndec += 1
                if rid >= decisions:
                    break
                rid += 1
                sent_at = now
                t = _send(cnt, lastd, keys, med, sigma, floor, now, client, 0, st)
                _emit(ht, hc, hid, pool, free, st, t, _K_CREQ, client, 0, rid, 0, 0)
    if status == _OK and ndec < decisions:
        status = _ERR_STALLED
    return dec_start[:ndec], dec_end[:ndec], dec_slot[:ndec], events, st[_S_SENT], status


@njit(cache=True, nogil=True)
def _pbft_kernel(n, q, f, keys, med, sigma, floor, ckpt_every, decisions, crashed, cap, ring):  # pragma: no cover
    client = n
    ht, hc, hid, pool, free, st, cnt, lastd = _queue(cap, n + 2)  # replicas, client, colluding client
    events = 0
    slot_seq = np.full(ring, -1, np.int64)
    have_pp = np.zeros((n, ring), np.bool_)
    prepared = np.zeros((n, ring), np.bool_)
    committed = np.zeros((n, ring), np.bool_)
    prep_cnt = np.zeros((n, ring), np.int64)
    comm_cnt = np.zeros((n, ring), np.int64)
    last_exec = np.zeros(n, np.int64)
    next_seq = 1
    dec_start = np.empty(decisions, np.float64)
    dec_end = np.empty(decisions, np.float64)
    dec_slot = np.empty(decisions, np.int64)
    ndec = 0
    cur_t = 1
    replies = 0
    sent_at = 0.0
    now = 0.0
    status = _OK
    # the client broadcasts request 1; only the primary's copy causes anything in the normal case
    for j in range(n):
        t = _send(cnt, lastd, keys, med, sigma, floor, now, client, j, st)
        if j == 0:
            _emit(ht, hc, hid, pool, free, st, t, _K_REQ, client, 0, cur_t, 0, 0)
    while st[_S_SIZE] > 0:
        if st[_S_OVF] != 0:
            status = _ERR_HEAP
            break
        now = ht[0]
        eid = _take(ht, hc, hid, free, st)
        kind = pool[eid, 0]
        dst = pool[eid, 2]
        a = pool[eid, 3]
        b = pool[eid, 4]
        events += 1
        if dst < n and crashed[dst]:
            continue
        if kind == _K_REQ:
            s = next_seq
            next_seq += 1
            sl = s % ring
            old = slot_seq[sl]
            if old >= 0:
                for k in range(n):
                    if not crashed[k] and last_exec[k] < old:
                        status = _ERR_RING
                if status != _OK:
                    break
            slot_seq[sl] = s
            for k in range(n):
                have_pp[k, sl] = False
                prepared[k, sl] = False
                committed[k, sl] = False
                prep_cnt[k, sl] = 0
                comm_cnt[k, sl] = 0
            have_pp[0, sl] = True
            for j in range(1, n):
                t = _send(cnt, lastd, keys, med, sigma, floor, now, 0, j, st)
                _emit(ht, hc, hid, pool, free, st, t, _K_PP, 0, j, s, 0, 0)
            continue
        if kind == _K_REPLY:
            if a == cur_t:
                replies += 1
                if replies == f + 1:
                    dec_start[ndec] = sent_at
                    dec_end[ndec] = now
                    dec_slot[ndec] = b
                    ndec += 1
                    if cur_t >= decisions:
                        break
                    cur_t += 1
                    replies = 0
                    sent_at = now
                    for j in range(n):
                        t = _send(cnt, lastd, keys, med, sigma, floor, now, client, j, st)
                        if j == 0:
                            _emit(ht, hc, hid, pool, free, st, t, _K_REQ, client, 0, cur_t, 0, 0)
            continue
        r = dst
        s = a
        sl = s % ring
        if slot_seq[sl] != s:
            continue
        check = False
        if kind == _K_PP:
            have_pp[r, sl] = True
            prep_cnt[r, sl] += 1  # own prepare
            for j in range(n):
                if j != r:
                    t = _send(cnt, lastd, keys, med, sigma, floor, now, r, j, st)
                    _emit(ht, hc, hid, pool, free, st, t, _K_PREP, r, j, s, 0, 0)
            check = True
        elif kind == _K_PREP:
            prep_cnt[r, sl] += 1
            check = True
        elif kind == _K_COMMIT:
            comm_cnt[r, sl] += 1
        if check and have_pp[r, sl] and not prepared[r, sl] and prep_cnt[r, sl] >= q - 1:
            prepared[r, sl] = True
            comm_cnt[r, sl] += 1  # own commit
            for j in range(n):
                if j != r:
                    t = _send(cnt, lastd, keys, med, sigma, floor, now, r, j, st)
                    _emit(ht, hc, hid, pool, free, st, t, _K_COMMIT, r, j, s, 0, 0)
        if prepared[r, sl] and not committed[r, sl] and s > last_exec[r] and comm_cnt[r, sl] >= q:
            committed[r, sl] = True
            while True:
                nx = last_exec[r] + 1
                nsl = nx % ring
                if slot_seq[nsl] != nx or not committed[r, nsl]:
                    break
                committed[r, nsl] = False
                last_exec[r] = nx
                t = _send(cnt, lastd, keys, med, sigma, floor, now, r, client, st)
                _emit(ht, hc, hid, pool, free, st, t, _K_REPLY, r, client, nx, nx, 0)
                if nx % ckpt_every == 0:  # CHECKPOINT broadcast: occupies the links, no effect here
                    for j in range(n):
                        if j != r:
                            _send(cnt, lastd, keys, med, sigma, floor, now, r, j, st)
                            st[_S_CTR] += 1
    if status == _OK and ndec < decisions:
        status = _ERR_STALLED
    return dec_start[:ndec], dec_end[:ndec], dec_slot[:ndec], events, st[_S_SENT], status


@dataclass
class FastResult:
    """Decisions of a fast-path run: ``slots`` (log index / sequence), ``start_ms``, ``end_ms``."""

    protocol: str
    n: int
    seed: int
    slots: np.ndarray
    start_ms: np.ndarray
    end_ms: np.ndarray
    events: int
    messages: int
    wall_s: float

    @property
    def decisions(self) -> int:
        return int(self.slots.size)

    def latencies_ms(self) -> np.ndarray:
        """Client-observed decision latencies (ms)."""
        return self.end_ms - self.start_ms

    @property
    def decisions_per_wall_s(self) -> float:
        return self.decisions / self.wall_s if self.wall_s > 0 else float("inf")


def _net_arrays(seed: int, nodes: int, latency: LatencyModel) -> tuple[np.ndarray, np.ndarray]:
    latency.validate(nodes)
    keys = np.array([[_link_key(seed, s, d) for d in range(nodes)] for s in range(nodes)], dtype=np.uint64)
    med = np.array([[latency.median_for(s, d) for d in range(nodes)] for s in range(nodes)], dtype=np.float64)
    return keys, med


def _crashed_mask(n: int, crashed: tuple[int, ...] | list[int], protected: int, limit: int, what: str) -> np.ndarray:
    mask = np.zeros(n, np.bool_)
    for c in crashed:
        if not 0 <= c < n:
            raise ParameterError(f"crashed node {c} outside 0..{n - 1}")
        if c == protected:
            raise ParameterError(f"node {protected} is the {what}; the fast path models a stable {what} "
                                 "(use the message-level simulator for leader failures)")
        mask[c] = True
    if mask.sum() > limit:
        raise ParameterError(f"{int(mask.sum())} crashed nodes exceed what the normal case tolerates ({limit}); "
                             "nothing would commit")
    return mask


def _raise_status(status: int, protocol: str) -> None:
    if status == _ERR_HEAP:
        raise ProtocolError(f"{protocol} fast path: event heap overflow; report this (or raise capacity)")
    if status == _ERR_DIVERGED:
        raise ProtocolError(f"{protocol} fast path left the normal case (log gap); use the message-level simulator")
    if status == _ERR_RING:
        raise ProtocolError(f"{protocol} fast path: a replica lags more than the ring window; use the "
                            "message-level simulator for this configuration")
    if status == _ERR_STALLED:
        raise ProtocolError(f"{protocol} fast path stalled before reaching the requested decisions")


def fast_raft(n: int = 5, *, decisions: int = 100_000, seed: int = 0, latency: LatencyModel | None = None,
              config: RaftConfig | None = None, crashed: tuple[int, ...] | list[int] = ()) -> FastResult:
    """Normal-case Raft (node 0 leader of term 1, one closed-loop client) in numba.

    Reproduces ``simulate_raft(n, decisions=..., seed=..., bootstrap_leader=0,
    faults=[Crash(c, 0.0) for c in crashed])`` exactly (same slots, same times).

    Parameters
    ----------
    n : int
        Raft servers; the client is node ``n``.
    decisions : int
        Client requests to commit.
    seed, latency, config
        As for :func:`~dwcpkit.protocol.acp_raft.simulate_raft` (heartbeat and batch size
        come from ``config``; election timeouts are irrelevant in the normal case).
    crashed : sequence of int
        Followers down from t = 0 (fewer than half).

    Examples
    --------
    >>> r = fast_raft(5, decisions=500, seed=2, crashed=[3, 4])
    >>> r.decisions, bool(r.latencies_ms().min() > 0)
    (500, True)
    """
    if n < 1 or decisions < 1:
        raise ParameterError(f"need n >= 1 and decisions >= 1, got n={n}, decisions={decisions}")
    cfg = config or RaftConfig()
    cfg.validate()
    lat = latency or LatencyModel()
    keys, med = _net_arrays(seed, n + 1, lat)
    mask = _crashed_mask(n, crashed, 0, (n - 1) // 2, "leader")
    cap = 64 * (n + 2) + 1024
    t0 = time.perf_counter()
    st, en, sl, ev, sent, status = _raft_kernel(n, keys, med, float(lat.sigma), float(lat.floor_ms),
                                                float(cfg.heartbeat_ms), int(cfg.max_batch), int(decisions),
                                                mask, cap)
    wall = time.perf_counter() - t0
    _raise_status(status, "Raft")
    return FastResult("raft", n, seed, sl, st, en, int(ev), int(sent), wall)


def fast_pbft(n: int = 4, *, decisions: int = 20_000, seed: int = 0, latency: LatencyModel | None = None,
              config: PbftConfig | None = None, crashed: tuple[int, ...] | list[int] = ()) -> FastResult:
    """Normal-case PBFT (view 0, primary 0, one closed-loop client) in numba.

    Reproduces ``simulate_pbft(n, decisions=..., seed=..., faults=[Crash(c, 0.0) for c in
    crashed])`` exactly while no view change happens (the default timeouts are far above
    the normal-case latency). Checkpoints are sent every ``config.checkpoint_interval``
    sequences as in the message-level simulator.

    Examples
    --------
    >>> r = fast_pbft(4, decisions=300, seed=1)
    >>> int(r.slots[-1]), r.messages // r.decisions   # 4 + 3 + 9 + 12 + 4 messages a decision
    (300, 32)
    """
    if n < 4 or decisions < 1:
        raise ParameterError(f"need n >= 4 and decisions >= 1, got n={n}, decisions={decisions}")
    cfg = config or PbftConfig()
    cfg.validate()
    lat = latency or LatencyModel()
    keys, med = _net_arrays(seed, n + 2, lat)
    mask = _crashed_mask(n, crashed, 0, n - pbft_quorum(n), "primary")
    cap = 16 * n * n + 4096
    t0 = time.perf_counter()
    st, en, sl, ev, sent, status = _pbft_kernel(n, pbft_quorum(n), (n - 1) // 3, keys, med, float(lat.sigma),
                                                float(lat.floor_ms), int(cfg.checkpoint_interval), int(decisions),
                                                mask, cap, 1024)
    wall = time.perf_counter() - t0
    _raise_status(status, "PBFT")
    return FastResult("pbft", n, seed, sl, st, en, int(ev), int(sent), wall)
