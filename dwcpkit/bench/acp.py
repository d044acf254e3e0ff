"""Benchmark: simulated consensus decisions per second, message-level simulator vs numba fast path.

For Raft n=5 and PBFT n=4 and n=16, in one process and one core, each row times:

- the **message-level** simulator (:func:`dwcpkit.protocol.acp.simulate_raft` /
  :func:`~dwcpkit.protocol.acp.simulate_pbft`: every message HMAC-signed and verified,
  Python objects, ``heapq`` event loop; Raft starts with a bootstrapped leader so that both
  engines run the same normal case), and
- the **fast path** (:func:`~dwcpkit.protocol.acp.fast_raft` /
  :func:`~dwcpkit.protocol.acp.fast_pbft`: the same normal case in one ``@njit`` event loop
  over arrays),

on the same seed and network, and checks that the fast path reproduces the message-level
decisions exactly (same slots, same simulated times) on the decisions both ran. A decision
is a client request confirmed to the client (Raft: the leader's reply after a majority
commit; PBFT: ``f + 1`` matching replies), one client with one request outstanding, as in
``reference/performance.md`` §6.2. The targets (>= 100,000 decisions/s for Raft n=5,
>= 20,000 for PBFT n=4, on one core) are checked against the fast path; the message-level
rate is shown beside it.

Two rates are reported per row: wall-clock and process CPU time (``time.process_time``).
On an idle machine they agree; on a shared one the wall rate drops with the load while
the CPU rate still measures what one core does, so the target verdict uses the CPU rate
and the table footer prints the load average so a reader can judge the wall figures.

Example
-------
>>> from dwcpkit.bench.acp import run, format_table
>>> rows = run(quick=True)
>>> sorted({r["engine"] for r in rows})
['fast path (numba)', 'message-level']
>>> "dec/s CPU" in format_table(rows)
True
"""

from __future__ import annotations

import os
import time

import numpy as np

from dwcpkit.bench import render_table
from dwcpkit.errors import DataError
from dwcpkit.protocol.acp import (
    LatencyModel,
    PbftConfig,
    RaftConfig,
    fast_pbft,
    fast_raft,
    simulate_pbft,
    simulate_raft,
)

#: `dwcpkit warm` runs this benchmark in quick mode to fill the numba cache.
USES_NUMBA = True

__all__ = ["CASES", "TARGETS", "run", "format_table"]

# (protocol, n, network preset)
CASES = (
    ("raft", 5, "datacenter"),
    ("raft", 5, "wan"),
    ("pbft", 4, "datacenter"),
    ("pbft", 4, "wan"),
    ("pbft", 16, "wan"),
)
TARGETS = {("raft", 5): 100_000.0, ("pbft", 4): 20_000.0}

# decisions per engine: (message-level, fast path), full and quick
_SIZES = {
    ("raft", 5): ((20_000, 1_000_000), (300, 5_000)),
    ("pbft", 4): ((4_000, 400_000), (100, 3_000)),
    ("pbft", 16): ((300, 20_000), (20, 200)),
}


def _message_level(protocol: str, n: int, preset: str, decisions: int, seed: int):
    lat = LatencyModel.preset(preset)
    if protocol == "raft":
        return simulate_raft(n, decisions=decisions, seed=seed, latency=lat, config=RaftConfig.preset(preset),
                             bootstrap_leader=0)
    return simulate_pbft(n, decisions=decisions, seed=seed, latency=lat, config=PbftConfig.preset(preset))


def _fast(protocol: str, n: int, preset: str, decisions: int, seed: int):
    lat = LatencyModel.preset(preset)
    if protocol == "raft":
        return fast_raft(n, decisions=decisions, seed=seed, latency=lat, config=RaftConfig.preset(preset))
    return fast_pbft(n, decisions=decisions, seed=seed, latency=lat, config=PbftConfig.preset(preset))


def run(quick: bool = False, *, seed: int = 1) -> list[dict]:
    """Time both engines on every case in :data:`CASES`.

    Returns
    -------
    list of dict
        One row per (case, engine): ``protocol``, ``n``, ``network``, ``engine``,
        ``decisions``, ``wall_s``, ``decisions_per_s`` (wall clock), ``cpu_s``,
        ``decisions_per_cpu_s`` (process CPU time), ``events_per_decision`` (events
        processed; message-level counts timers too), ``messages_per_decision``,
        ``latency_ms_mean``, ``latency_ms_p99`` (simulated), ``x_message_level`` (CPU-rate
        ratio to the message-level row of the same case), ``identical`` (fast path only:
        decisions and times equal to the message-level run on the shared prefix),
        ``target`` and ``target_met`` (fast path rows of the target cases, on the CPU rate), and
        ``jit_s`` (first-call cost of the fast path in this process: compile or cache load).

    Raises
    ------
    DataError
        If the fast path disagrees with the message-level simulator.
    """
    rows: list[dict] = []
    jit_done: set[str] = set()
    for protocol, n, preset in CASES:
        (m_dec, f_dec), (qm, qf) = _SIZES[(protocol, n)]
        if quick:
            m_dec, f_dec = qm, qf
        c0 = time.process_time()
        ml = _message_level(protocol, n, preset, m_dec, seed)
        ml_cpu = time.process_time() - c0
        jit_s = None
        if protocol not in jit_done:
            t0 = time.perf_counter()
            _fast(protocol, n, preset, 5, seed)
            jit_s = time.perf_counter() - t0
            jit_done.add(protocol)
        c0 = time.process_time()
        fp = _fast(protocol, n, preset, f_dec, seed)
        fp_cpu = time.process_time() - c0
        k = min(len(ml.decisions), fp.decisions)
        ml_slots = np.array([d.slot for d in ml.decisions[:k]])
        ml_end = np.array([d.end_ms for d in ml.decisions[:k]])
        identical = bool(np.array_equal(ml_slots, fp.slots[:k]) and np.array_equal(ml_end, fp.end_ms[:k]))
        if not identical:
            raise DataError(f"fast path disagrees with the message-level simulator for {protocol} n={n} {preset}")
        ml_rate = len(ml.decisions) / ml.wall_s
        fp_rate = fp.decisions / fp.wall_s
        ml_cpu_rate = len(ml.decisions) / max(ml_cpu, 1e-9)
        fp_cpu_rate = fp.decisions / max(fp_cpu, 1e-9)
        base = dict(protocol=protocol, n=n, network=preset)
        ml_lat = ml.latencies_ms()
        fp_lat = fp.latencies_ms()
        rows.append(dict(
            base, engine="message-level", decisions=len(ml.decisions), wall_s=ml.wall_s, decisions_per_s=ml_rate,
            cpu_s=ml_cpu, decisions_per_cpu_s=ml_cpu_rate,
            events_per_decision=ml.events / len(ml.decisions), messages_per_decision=ml.messages / len(ml.decisions),
            latency_ms_mean=float(ml_lat.mean()), latency_ms_p99=float(np.percentile(ml_lat, 99)),
            x_message_level=1.0, identical=None, target=None, target_met=None, jit_s=None,
        ))
        target = TARGETS.get((protocol, n))
        rows.append(dict(
            base, engine="fast path (numba)", decisions=fp.decisions, wall_s=fp.wall_s, decisions_per_s=fp_rate,
            cpu_s=fp_cpu, decisions_per_cpu_s=fp_cpu_rate,
            events_per_decision=fp.events / fp.decisions, messages_per_decision=fp.messages / fp.decisions,
            latency_ms_mean=float(fp_lat.mean()), latency_ms_p99=float(np.percentile(fp_lat, 99)),
            x_message_level=fp_cpu_rate / ml_cpu_rate, identical=identical, target=target,
            target_met=None if target is None else fp_cpu_rate >= target, jit_s=jit_s,
        ))
    return rows


def format_table(rows: list[dict]) -> str:
    """Render :func:`run`'s rows as a plain-text table.

    >>> print(format_table([dict(protocol="raft", n=5, network="wan", engine="fast path (numba)", decisions=10,
    ...     wall_s=0.001, decisions_per_s=1e4, cpu_s=0.001, decisions_per_cpu_s=1e4, events_per_decision=10.0,
    ...     messages_per_decision=10.0, latency_ms_mean=200.0, latency_ms_p99=300.0, x_message_level=5.0,
    ...     identical=True, target=1e5, target_met=False, jit_s=None)]).splitlines()[1])
    raft n=5 wan  fast path (numba)         10      10,000     10,000          5.0        10.0      10.0        200.0       300.0  yes        100,000 MISSED
    """
    header = ("case", "engine", "decisions", "dec/s wall", "dec/s CPU", "x msg-level", "events/dec", "msgs/dec",
              "lat ms mean", "lat ms p99", "identical", "target (CPU rate)")
    body = []
    for r in rows:
        tgt = ""
        if r.get("target"):
            tgt = f"{r['target']:,.0f} {'met' if r['target_met'] else 'MISSED'}"
        ident = "" if r.get("identical") is None else ("yes" if r["identical"] else "NO")
        body.append((
            f"{r['protocol']} n={r['n']} {r['network']}", r["engine"], f"{r['decisions']:,}",
            f"{r['decisions_per_s']:,.0f}", f"{r['decisions_per_cpu_s']:,.0f}", f"{r['x_message_level']:.1f}",
            f"{r['events_per_decision']:.1f}", f"{r['messages_per_decision']:.1f}", f"{r['latency_ms_mean']:.1f}",
            f"{r['latency_ms_p99']:.1f}", ident, tgt,
        ))
    out = render_table(header, body, "ll" + "r" * 8 + "ll").splitlines()
    jit = [r for r in rows if r.get("jit_s") is not None]
    if jit:
        out.append("fast-path first call (JIT compile or cache load, wall): " +
                   ", ".join(f"{r['protocol']} {r['jit_s']:.2f} s" for r in jit))
    try:
        la = os.getloadavg()
        out.append(f"load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} on {os.cpu_count()} CPUs "
                   "(wall rates fall with load; CPU rates do not)")
    except OSError:  # pragma: no cover - platforms without getloadavg
        pass
    return "\n".join(out)
