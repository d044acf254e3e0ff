"""Parameter sweeps over the protocol models, for the protocol-study notebooks.

Pure protocol: every number here comes from a model in :mod:`dwcpkit.protocol` run on the
arguments given (seeded where random), tabulated as polars frames for the ``analyses/``
notebooks. Nothing is measured on a real system.

=========================  ====================================================================
migration                  :class:`MigrationScenario` (one WAN migration, human units),
                           :func:`migration_compare` (v1-like vs v3 on it),
                           :func:`migration_sweep` (vary one input at a time, both versions),
                           :func:`migration_table` (the sweep side by side),
                           :func:`migration_assessment` (v3 converges wherever v1 does?)
placement                  :func:`placement_quality` (solvers and packing terms on one batch),
                           :func:`placement_batch_sweep` (the same over batch sizes),
                           :func:`placement_gap` / :func:`summarize_gap` (heuristics vs the exact
                           optimum on tiny instances), :func:`placement_assessment` (does the
                           fixed packing term use fewer nodes than the original's?)
consensus                  :func:`consensus_run` / :func:`consensus_sweep` (Raft vs PBFT over n,
                           fault scenarios and seeds, message by message, with the simulators of
                           :mod:`dwcpkit.protocol.acp`), :func:`consensus_summary`,
                           :func:`consensus_assessment` (did safety hold in every run?)
=========================  ====================================================================

Each ``*_assessment`` returns an :class:`Assessment` (level ``OK`` / ``WARN`` / ``ACT``, label,
reasons, one-line summary, JSON-ready evidence) whose criterion is in its docstring; the
notebooks pass it to ``dwcpkit.runbook.verdict``.

Example
-------
>>> s = migration_sweep(MigrationScenario(), {"rtt_ms": [10.0, 100.0]})
>>> s.select("value", "version", "converged").rows()
[(10.0, 'v1', True), (10.0, 'v3', True), (100.0, 'v1', False), (100.0, 'v3', True)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from dwcpkit.errors import ParameterError
from dwcpkit.protocol import itp, migration

__all__ = [
    "Assessment",
    "MigrationScenario",
    "SWEEP_VARIABLES",
    "DEFAULT_GRIDS",
    "migration_compare",
    "migration_sweep",
    "migration_table",
    "migration_assessment",
    "PLACEMENT_RUNS",
    "GAP_RUNS",
    "run_name",
    "placement_quality",
    "placement_batch_sweep",
    "placement_gap",
    "summarize_gap",
    "placement_assessment",
    "FAULTS",
    "fault_tolerance",
    "consensus_run",
    "consensus_sweep",
    "consensus_summary",
    "consensus_assessment",
]

GIB = 1024**3
MB = 1e6


@dataclass(frozen=True)
class Assessment:
    """A study's conclusion: ``level`` (``OK``/``WARN``/``ACT``), a short ``label``, the reasons,
    a one-line ``summary`` and JSON-serialisable ``evidence``."""

    level: str
    label: str
    reasons: list[str]
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


# =================================================================================================
# migration
# =================================================================================================


@dataclass(frozen=True)
class MigrationScenario:
    """One pre-copy migration over a WAN path, in human units.

    Parameters
    ----------
    memory_gib : float
        Guest memory (GiB, 2^30 bytes).
    dirty_rate_mbps : float
        Distinct memory dirtied per second, MB/s (10^6 bytes/s).
    rtt_ms : float
        Path round-trip time (ms); also the per-round synchronisation cost.
    loss_pct : float
        Random packet loss, percent (0.01 = one packet in 10,000).
    capacity_gbps : float
        Bottleneck line rate, Gbit/s.
    model : str
        TCP throughput model of :mod:`dwcpkit.protocol.link` (``pftk``, ``mathis``, ``bbr``).
    v1_streams : int
        v1 AMST's fixed stream count (it starts at 16).
    v3_streams : int or None
        v3 stream count; ``None`` = auto (:func:`~dwcpkit.protocol.migration.best_streams`
        up to ``max_streams``).
    streams : int or None
        When set, both versions use this many streams (the ``streams`` sweep sets it).
    bulk_ratio, delta_ratio : float
        v3 compression (raw : wire) of the first pass and of re-sent pages; v1 sends raw.
        Defaults: :data:`~dwcpkit.protocol.migration.V3_DEFAULT_BULK_RATIO` /
        :data:`~dwcpkit.protocol.migration.V3_DEFAULT_DELTA_RATIO` (synthetic data).
    encode_mbps : float or None
        v3 encoder speed cap, MB/s of raw input (all cores); ``None`` = no cap.
    downtime_budget_s : float
        Largest acceptable pause.
    max_rounds : int
        Live pre-copy rounds before a forced stop-and-copy.

    Example
    -------
    >>> MigrationScenario(rtt_ms=100.0).link().rtt_s
    0.1
    """

    memory_gib: float = 8.0
    dirty_rate_mbps: float = 25.0
    rtt_ms: float = 50.0
    loss_pct: float = 0.01
    capacity_gbps: float = 1.0
    model: str = "pftk"
    v1_streams: int = 16
    v3_streams: int | None = None
    streams: int | None = None
    max_streams: int = 64
    bulk_ratio: float = migration.V3_DEFAULT_BULK_RATIO
    delta_ratio: float = migration.V3_DEFAULT_DELTA_RATIO
    encode_mbps: float | None = None
    downtime_budget_s: float = 1.0
    max_rounds: int = 30

    def __post_init__(self) -> None:
        for name in ("memory_gib", "rtt_ms", "capacity_gbps", "bulk_ratio", "delta_ratio"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ParameterError(f"{name} must be a finite number > 0, got {v!r}")
        for name in ("dirty_rate_mbps", "downtime_budget_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ParameterError(f"{name} must be a finite number >= 0, got {v!r}")
        if not (0.0 <= self.loss_pct < 100.0):
            raise ParameterError(f"loss_pct is a percentage in [0, 100), got {self.loss_pct!r}")
        for name in ("v1_streams", "v3_streams", "streams", "max_streams", "max_rounds"):
            v = getattr(self, name)
            if v is None and name in ("v3_streams", "streams"):
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"{name} must be an integer >= 1, got {v!r}")
        if self.encode_mbps is not None and not (math.isfinite(self.encode_mbps) and self.encode_mbps > 0):
            raise ParameterError(f"encode_mbps must be > 0 or None, got {self.encode_mbps!r}")

    def link(self) -> migration.LinkSpec:
        """The path as a :class:`~dwcpkit.protocol.migration.LinkSpec`."""
        return migration.LinkSpec(rtt_s=self.rtt_ms / 1000.0, loss=self.loss_pct / 100.0,
                                  capacity_bps=self.capacity_gbps * 1e9, model=self.model)

    def run(self) -> dict[str, migration.MigrationResult]:
        """``{"v1": ..., "v3": ...}`` from :func:`~dwcpkit.protocol.migration.compare_v1_v3`."""
        enc = None if self.encode_mbps is None else self.encode_mbps * MB
        v1_streams = self.streams or self.v1_streams
        v3_streams: int | str = self.streams or self.v3_streams or "auto"
        return migration.compare_v1_v3(
            self.memory_gib * GIB, self.dirty_rate_mbps * MB, self.link(), v1_streams=v1_streams,
            v3_streams=v3_streams, max_streams=self.max_streams, v3_bulk_ratio=self.bulk_ratio,
            v3_delta_ratio=self.delta_ratio, v3_bulk_encode_Bps=enc, v3_delta_encode_Bps=enc,
            downtime_budget_s=self.downtime_budget_s, max_rounds=self.max_rounds, rtt_s=self.rtt_ms / 1000.0)


#: Variables :func:`migration_sweep` can vary, with their units (for axis titles).
SWEEP_VARIABLES: dict[str, str] = {
    "memory_gib": "VM memory (GiB)",
    "dirty_rate_mbps": "dirty rate (MB/s)",
    "rtt_ms": "round-trip time (ms)",
    "loss_pct": "packet loss (%)",
    "streams": "TCP streams (both versions)",
    "bulk_ratio": "v3 first-pass compression (raw : wire)",
    "delta_ratio": "v3 delta compression of re-sent pages (raw : wire)",
}

#: Default grid per variable (log-spaced where the effect is multiplicative).
DEFAULT_GRIDS: dict[str, list[float]] = {
    "memory_gib": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
    "dirty_rate_mbps": [1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0],
    "rtt_ms": [1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0],
    "loss_pct": [0.0001, 0.001, 0.01, 0.1, 1.0],
    "streams": [1, 2, 4, 8, 16, 32, 64],
    "bulk_ratio": [1.0, 1.5, 2.36, 4.0, 8.0],
    "delta_ratio": [1.0, 2.0, 4.0, 7.3, 16.0],
}


def _row(name: str, r: migration.MigrationResult) -> dict[str, Any]:
    return {
        "version": name, "streams": r.streams, "throughput_MBps": r.throughput_Bps / MB,
        "total_time_s": r.total_time_s, "downtime_s": r.downtime_s, "rounds": r.rounds,
        "converged": r.converged, "diverging": r.diverging, "within_budget": r.downtime_s <= r.downtime_budget_s,
        "wire_GB": r.wire_bytes / 1e9,
    }


def migration_compare(scenario: MigrationScenario) -> pl.DataFrame:
    """v1-like vs v3 on one scenario: one row per version.

    Columns: ``version, streams, throughput_MBps, total_time_s, downtime_s, rounds, converged,
    diverging, within_budget, wire_GB``.

    Example
    -------
    >>> t = migration_compare(MigrationScenario())
    >>> t["version"].to_list(), t["converged"].to_list()
    (['v1', 'v3'], [True, True])
    """
    return pl.DataFrame([_row(k, v) for k, v in scenario.run().items()])


def migration_sweep(base: MigrationScenario, grids: Mapping[str, Sequence[float]] | None = None) -> pl.DataFrame:
    """Vary one input at a time around ``base``; both versions at every point.

    Parameters
    ----------
    base : MigrationScenario
    grids : mapping, optional
        Variable (a key of :data:`SWEEP_VARIABLES`) → values; default :data:`DEFAULT_GRIDS`.
        ``rtt_ms`` moves both the path RTT and the per-round synchronisation cost;
        ``streams`` gives both versions the same count; ``bulk_ratio`` / ``delta_ratio``
        change v3 only (v1 sends raw).

    Returns
    -------
    polars.DataFrame
        ``variable, value`` then the :func:`migration_compare` columns; one row per
        (variable, value, version), in grid order.

    Example
    -------
    >>> s = migration_sweep(MigrationScenario(), {"dirty_rate_mbps": [10.0, 200.0]})
    >>> s.filter(pl.col("version") == "v1")["converged"].to_list()
    [True, False]
    """
    grids = DEFAULT_GRIDS if grids is None else grids
    rows: list[dict[str, Any]] = []
    for var, values in grids.items():
        if var not in SWEEP_VARIABLES:
            raise ParameterError(f"unknown sweep variable {var!r}; choose from {', '.join(SWEEP_VARIABLES)}")
        values = list(values)
        if not values:
            raise ParameterError(f"the grid of {var!r} is empty")
        for v in values:
            kw: dict[str, Any] = {var: int(v) if var == "streams" else float(v)}
            scen = replace(base, **kw)
            for name, res in scen.run().items():
                rows.append({"variable": var, "value": float(v), **_row(name, res)})
    return pl.DataFrame(rows)


def migration_table(sweep: pl.DataFrame) -> pl.DataFrame:
    """:func:`migration_sweep` side by side: one row per sweep point.

    Columns ``variable, value``, then per version ``{v}_time_s, {v}_downtime_s, {v}_rounds,
    {v}_converged`` (v1 then v3), and ``v1_over_v3`` = v1's total time / v3's.

    Example
    -------
    >>> t = migration_table(migration_sweep(MigrationScenario(), {"rtt_ms": [100.0]}))
    >>> t.select("v1_converged", "v3_converged").row(0)
    (False, True)
    """
    c = pl.col
    out = sweep.pivot(on="version", index=["variable", "value"],
                      values=["total_time_s", "downtime_s", "rounds", "converged"])
    cols = []
    for v in ("v1", "v3"):
        cols += [c(f"total_time_s_{v}").alias(f"{v}_time_s"), c(f"downtime_s_{v}").alias(f"{v}_downtime_s"),
                 c(f"rounds_{v}").alias(f"{v}_rounds"), c(f"converged_{v}").alias(f"{v}_converged")]
    return out.select("variable", "value", *cols, (c("total_time_s_v1") / c("total_time_s_v3")).alias("v1_over_v3"))


def migration_assessment(sweep: pl.DataFrame, base: pl.DataFrame | None = None) -> Assessment:
    """OK when v3 converges at every sweep point where v1 converges, else WARN.

    Evidence counts the non-converging points per version and the range of v1/v3 total-time
    ratios; ``base`` (a :func:`migration_compare` table) adds the base scenario's times.

    Example
    -------
    >>> a = migration_assessment(migration_sweep(MigrationScenario(), {"rtt_ms": [10.0, 100.0]}))
    >>> a.level, a.label
    ('OK', 'v3 converges wherever v1 does')
    """
    if sweep.height == 0:
        raise ParameterError("the sweep is empty: nothing to assess")
    wide = (
        sweep.pivot(on="version", index=["variable", "value"], values=["converged", "total_time_s"])
        .with_columns(speedup=pl.col("total_time_s_v1") / pl.col("total_time_s_v3"))
    )
    worse = wide.filter(pl.col("converged_v1") & ~pl.col("converged_v3"))
    n_pts = wide.height
    nc = {v: int((~sweep.filter(pl.col("version") == v)["converged"]).sum()) for v in ("v1", "v3")}
    reasons = [f"{n_pts} sweep points: v1 does not converge at {nc['v1']}, v3 at {nc['v3']}"]
    if worse.height:
        level, label = "WARN", "v3 fails where v1 converges"
        reasons += [f"{r['variable']} = {r['value']:g}: v1 converges, v3 does not" for r in worse.iter_rows(named=True)]
    else:
        level, label = "OK", "v3 converges wherever v1 does"
    both = wide.filter(pl.col("converged_v1") & pl.col("converged_v3"))
    if both.height:
        reasons.append(f"where both converge, v1 takes {both['speedup'].min():.2f}x to {both['speedup'].max():.2f}x "
                       "as long as v3")
    evidence: dict[str, Any] = {"points": n_pts, "non_converging": nc,
                                "v3_fails_where_v1_converges": worse.height}
    summary = (f"{n_pts} sweep points of the pre-copy model: v1 fails to converge at {nc['v1']}, v3 at {nc['v3']}")
    if base is not None and base.height:
        t = dict(zip(base["version"].to_list(), base["total_time_s"].to_list()))
        d = dict(zip(base["version"].to_list(), base["downtime_s"].to_list()))
        evidence["base_total_time_s"] = {k: round(v, 3) for k, v in t.items()}
        evidence["base_downtime_s"] = {k: round(v, 4) for k, v in d.items()}
        summary += f"; base scenario: v1 {t['v1']:.1f} s, v3 {t['v3']:.1f} s"
    return Assessment(level, label, reasons, summary, evidence)


# =================================================================================================
# placement
# =================================================================================================

#: (solver, scorer, packing) runs of :func:`placement_quality`: the original's greedy with each
#: scorer, the DQN scorer with the original packing term, and the two classic baselines.
PLACEMENT_RUNS: tuple[tuple[str, str, str], ...] = (
    ("greedy", "hybrid", "fuller"),
    ("greedy", "dqn", "fuller"),
    ("greedy", "dqn", "original"),
    ("greedy", "geographic", "fuller"),
    ("first-fit", "hybrid", "fuller"),
    ("best-fit", "hybrid", "fuller"),
)

#: Heuristics compared with the exact solver by :func:`placement_gap`.
GAP_RUNS: tuple[tuple[str, str, str], ...] = (
    ("greedy", "dqn", "fuller"),
    ("greedy", "dqn", "original"),
    ("greedy", "hybrid", "fuller"),
    ("first-fit", "hybrid", "fuller"),
    ("best-fit", "hybrid", "fuller"),
)


def run_name(solver: str, scorer: str, packing: str) -> str:
    """Display name of a run: ``"greedy dqn (original packing)"``, ``"first-fit"``.

    >>> run_name("greedy", "dqn", "original"), run_name("best-fit", "hybrid", "fuller")
    ('greedy dqn (original packing)', 'best-fit')
    """
    name = f"greedy {scorer}" if solver == "greedy" else solver
    return name + " (original packing)" if packing == "original" else name


def _quality_row(vms: Sequence[itp.VM], nodes: itp.Nodes, regions: Any, solver: str, scorer: str,
                 packing: str) -> dict[str, Any]:
    p = itp.place(vms, nodes, regions, solver=solver, scorer=scorer, packing=packing)
    problems = itp.validate_placement(vms, nodes, p, regions)
    return {"run": run_name(solver, scorer, packing), "solver": solver, "scorer": scorer, "packing": packing,
            "vms": len(vms), "placed": p.placed, "unplaced": len(vms) - p.placed, "nodes_used": p.nodes_used,
            "vms_per_node": p.placed / p.nodes_used if p.nodes_used else float("nan"),
            "utilisation": p.utilisation, "cluster_utilisation": p.cluster_utilisation,
            "score_total": p.score_total, "violations": len(problems)}


def placement_quality(vms: Sequence[itp.VM], nodes: itp.Nodes, regions: Any = None,
                      runs: Sequence[tuple[str, str, str]] = PLACEMENT_RUNS) -> pl.DataFrame:
    """Place one batch with each (solver, scorer, packing) run and tabulate the packing.

    Columns: ``run, solver, scorer, packing, vms, placed, unplaced, nodes_used, vms_per_node,
    utilisation`` (mean used fraction of the nodes in use after placement),
    ``cluster_utilisation`` (over every node not in maintenance), ``score_total`` and
    ``violations`` (constraints broken, by :func:`~dwcpkit.protocol.itp.validate_placement`:
    always 0 unless a solver has a bug). Deterministic (no score noise).

    Example
    -------
    >>> nodes = itp.synthetic_fleet(100, seed=1)
    >>> t = placement_quality(itp.synthetic_vms(20, seed=2), nodes, itp.DEFAULT_REGIONS)
    >>> t.height, int(t["violations"].sum())
    (6, 0)
    """
    if not runs:
        raise ParameterError("no placement runs given")
    return pl.DataFrame([_quality_row(vms, nodes, regions, *r) for r in runs])


def placement_batch_sweep(vms: Sequence[itp.VM], nodes: itp.Nodes, regions: Any = None, *,
                          sizes: Sequence[int] = (25, 50, 100, 200, 400),
                          runs: Sequence[tuple[str, str, str]] = PLACEMENT_RUNS) -> pl.DataFrame:
    """:func:`placement_quality` of the first ``k`` VMs of ``vms`` for each ``k`` in ``sizes``.

    Returns the same columns plus ``batch`` (= k), one row per (batch, run).

    Example
    -------
    >>> nodes = itp.synthetic_fleet(100, seed=1)
    >>> s = placement_batch_sweep(itp.synthetic_vms(20, seed=2), nodes, sizes=[10, 20])
    >>> s["batch"].unique().sort().to_list()
    [10, 20]
    """
    vms = list(vms)
    bad = [k for k in sizes if not (isinstance(k, (int, np.integer)) and 1 <= k <= len(vms))]
    if bad or not sizes:
        raise ParameterError(f"batch sizes must be integers in [1, {len(vms)}] (the VMs given), got {list(sizes)}")
    return pl.concat([placement_quality(vms[: int(k)], nodes, regions, runs).with_columns(batch=pl.lit(int(k)))
                      for k in sizes])


def placement_gap(instances: Sequence[tuple[Sequence[itp.VM], itp.Nodes, Any]],
                  runs: Sequence[tuple[str, str, str]] = GAP_RUNS) -> pl.DataFrame:
    """Each heuristic vs the exact optimum (fewest nodes, after most VMs placed) per instance.

    ``instances`` are ``(vms, nodes, regions)`` triples small enough for
    :func:`~dwcpkit.protocol.itp.exact_place` (≤ 16 VMs), e.g. from
    :func:`dwcpkit.bench.itp.tiny_instance`.

    Returns one row per (instance, run): ``instance, run, placed, exact_placed, nodes_used,
    exact_nodes, extra_nodes`` (heuristic − exact; only meaningful when both placed as many)
    and ``optimal`` (same VMs placed on as few nodes).

    Example
    -------
    >>> nodes = itp.Nodes(type=["cloud"] * 3, cpu_total=[4, 4, 8], mem_total=[8e9] * 3)
    >>> vms = [itp.VM("a", cpu=4, memory=1e9), itp.VM("b", cpu=4, memory=1e9)]
    >>> g = placement_gap([(vms, nodes, None)], runs=[("first-fit", "hybrid", "fuller")])
    >>> g.select("nodes_used", "exact_nodes", "optimal").row(0)
    (2, 1, False)
    """
    rows = []
    for k, (vms, nodes, regions) in enumerate(instances):
        ex = itp.exact_place(vms, nodes, regions, objective="nodes")
        for solver, scorer, packing in runs:
            h = itp.place(vms, nodes, regions, solver=solver, scorer=scorer, packing=packing)
            if h.objective("nodes") > ex.objective("nodes"):
                raise ParameterError(f"instance {k}: {solver}/{scorer} beat the exact solver; the instance breaks "
                                     "the exact solver's assumptions (report this as a bug)")
            rows.append({"instance": k, "run": run_name(solver, scorer, packing), "placed": h.placed,
                         "exact_placed": ex.placed, "nodes_used": h.nodes_used, "exact_nodes": ex.nodes_used,
                         "extra_nodes": h.nodes_used - ex.nodes_used,
                         "optimal": h.placed == ex.placed and h.nodes_used == ex.nodes_used})
    if not rows:
        raise ParameterError("no instances given")
    return pl.DataFrame(rows)


def summarize_gap(gap: pl.DataFrame) -> pl.DataFrame:
    """Per run: ``instances, optimal_share, fewer_placed`` (instances where it placed fewer VMs
    than possible), ``mean_extra_nodes`` and ``max_extra_nodes`` (over instances where it placed
    as many as the optimum), ``mean_rel_gap`` (extra nodes / optimal nodes, same instances).

    Example
    -------
    >>> g = pl.DataFrame({"instance": [0, 1], "run": ["x", "x"], "placed": [3, 3], "exact_placed": [3, 3],
    ...                   "nodes_used": [2, 3], "exact_nodes": [2, 2], "extra_nodes": [0, 1], "optimal": [True, False]})
    >>> summarize_gap(g).row(0)
    ('x', 2, 0.5, 0, 0.5, 1, 0.25)
    """
    c = pl.col
    same = c("placed") == c("exact_placed")
    return gap.group_by("run", maintain_order=True).agg(
        instances=pl.len(),
        optimal_share=c("optimal").mean(),
        fewer_placed=(c("placed") < c("exact_placed")).sum(),
        mean_extra_nodes=c("extra_nodes").filter(same).mean(),
        max_extra_nodes=c("extra_nodes").filter(same).max(),
        mean_rel_gap=(c("extra_nodes") / c("exact_nodes")).filter(same).mean(),
    )


def placement_assessment(quality: pl.DataFrame, sweep: pl.DataFrame | None = None,
                         gap: pl.DataFrame | None = None) -> Assessment:
    """OK when greedy DQN with the fixed packing term places at least as many VMs on fewer nodes
    than with the original term, on the main batch, and every placement is valid; else WARN.

    ``sweep`` (:func:`placement_batch_sweep`) and ``gap`` (:func:`summarize_gap`) add reasons
    and evidence (batch sizes where the fixed term is not better; optimal shares) without
    changing the level.

    Example
    -------
    >>> q = pl.DataFrame({"run": ["greedy dqn", "greedy dqn (original packing)"], "vms": [10, 10],
    ...                   "placed": [10, 10], "nodes_used": [4, 6], "violations": [0, 0], "utilisation": [0.8, 0.6]})
    >>> placement_assessment(q).level
    'OK'
    """
    fixed_name, orig_name = run_name("greedy", "dqn", "fuller"), run_name("greedy", "dqn", "original")
    runs = quality["run"].to_list()
    if fixed_name not in runs or orig_name not in runs:
        raise ParameterError(f"the quality table needs the runs {fixed_name!r} and {orig_name!r}, got {runs}")
    fx = quality.row(runs.index(fixed_name), named=True)
    og = quality.row(runs.index(orig_name), named=True)
    viol = int(quality["violations"].sum())
    reasons = [f"main batch: fixed packing {fx['placed']} VMs on {fx['nodes_used']} nodes "
               f"(utilisation {fx['utilisation']:.0%}), original term {og['placed']} VMs on {og['nodes_used']} nodes "
               f"(utilisation {og['utilisation']:.0%})"]
    better = fx["placed"] >= og["placed"] and fx["nodes_used"] < og["nodes_used"]
    if viol:
        reasons.append(f"{viol} constraint violation(s) in the placements: a solver bug")
    evidence: dict[str, Any] = {"fixed": {"placed": fx["placed"], "nodes_used": fx["nodes_used"]},
                                "original": {"placed": og["placed"], "nodes_used": og["nodes_used"]},
                                "violations": viol}
    if sweep is not None and sweep.height:
        w = sweep.filter(pl.col("run").is_in([fixed_name, orig_name])).pivot(
            on="run", index="batch", values="nodes_used").sort("batch")
        not_better = w.filter(pl.col(fixed_name) >= pl.col(orig_name))["batch"].to_list()
        reasons.append(f"batch sweep: fixed term uses fewer nodes at {w.height - len(not_better)} of {w.height} sizes"
                       + (f" (not at {', '.join(map(str, not_better))} VMs)" if not_better else ""))
        evidence["sweep_sizes_not_better"] = not_better
    if gap is not None and gap.height:
        share = dict(zip(gap["run"].to_list(), gap["optimal_share"].to_list()))
        reasons.append("share of tiny instances solved optimally (fewest nodes): "
                       + ", ".join(f"{k} {v:.0%}" for k, v in share.items()))
        evidence["optimal_share"] = {k: round(float(v), 4) for k, v in share.items()}
    level, label = ("OK", "fixed packing uses fewer nodes") if better and not viol else (
        "WARN", "fixed packing not better" if not better else "invalid placement")
    summary = (f"greedy DQN on {fx['vms']} VMs: {fx['nodes_used']} nodes with the fixed packing term vs "
               f"{og['nodes_used']} with the original's")
    return Assessment(level, label, reasons, summary, evidence)


# =================================================================================================
# consensus
# =================================================================================================

#: Fault scenarios of :func:`consensus_run` (``byzantine`` is PBFT only).
FAULTS: tuple[str, ...] = ("none", "crash", "partition", "byzantine", "beyond")
_PROTOCOLS = ("raft", "pbft")
_NETWORKS = ("datacenter", "hybrid", "wan")


def fault_tolerance(protocol: str, n: int) -> int:
    """Faulty nodes ``protocol`` tolerates among ``n``: Raft ``(n − 1) // 2`` crashes, PBFT
    ``f = (n − 1) // 3`` Byzantine replicas.

    >>> fault_tolerance("raft", 5), fault_tolerance("pbft", 7)
    (2, 2)
    """
    if protocol not in _PROTOCOLS:
        raise ParameterError(f"protocol must be 'raft' or 'pbft', got {protocol!r}")
    minimum = 3 if protocol == "raft" else 4
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ParameterError(f"{protocol} needs n >= {minimum} nodes to tolerate a fault, got {n!r}")
    return (int(n) - 1) // 2 if protocol == "raft" else (int(n) - 1) // 3


def _default_partition_ms(network: str) -> float:
    from dwcpkit.protocol import acp

    return 4.0 * max(acp.RaftConfig.preset(network).election_timeout_ms[1],
                     acp.PbftConfig.preset(network).view_change_timeout_ms)


def consensus_run(protocol: str, n: int, fault: str = "none", *, network: str = "wan", decisions: int = 40,
                  clients: int = 4, seed: int = 0, fault_at_ms: float = 0.0, partition_ms: float | None = None,
                  byzantine_behaviour: str = "equivocate") -> dict[str, Any]:
    """One message-level Raft or PBFT run (:mod:`dwcpkit.protocol.acp`), summarised as a row.

    Network and timing come from the ``network`` presets (``LatencyModel``, ``RaftConfig``,
    ``PbftConfig``: datacenter 0.25 ms, hybrid 10 ms, WAN 50 ms median one-way hops, with
    timeouts to match). Raft starts with node 0 as leader, PBFT with primary 0. With
    ``k`` = :func:`fault_tolerance`, at ``fault_at_ms``:

    * ``none`` — no fault;
    * ``crash`` — nodes ``0…k−1`` (the leader / primary first) crash for good;
    * ``partition`` — nodes ``0…k−1`` are cut off from the rest for ``partition_ms`` (default 4 x
      the larger of the preset's maximum election timeout and PBFT view-change timeout); clients
      reach everyone;
    * ``byzantine`` — PBFT replicas ``0…f−1`` run ``byzantine_behaviour`` (``equivocate``,
      ``silent`` or ``forge``) from the start; Raft tolerates crash faults only, so it refuses;
    * ``beyond`` — ``k + 1`` nodes crash for good: more than the protocol tolerates, so progress
      may stop (``expected_live`` is False) but safety must still hold.

    Returns
    -------
    dict
        ``protocol, n, fault, seed, network, faulty, tolerated, expected_live, decisions_target,
        decisions, completed, p50_ms, p99_ms, mean_ms`` (client-observed latency of the
        decisions made), ``throughput_per_s`` (decisions / (last confirmation − first request),
        simulated seconds), ``messages_per_decision, leader_changes`` (Raft elections / PBFT view
        changes), ``max_gap_ms`` (longest wait between consecutive confirmations),
        ``fault_at_ms, end_ms, safety_violations`` (count) and ``safe``.

    Example
    -------
    >>> r = consensus_run("pbft", 4, "byzantine", decisions=10, seed=1)
    >>> r["decisions"], r["safe"], r["faulty"]
    (10, True, 1)
    """
    from dwcpkit.protocol import acp

    k = fault_tolerance(protocol, n)
    if fault not in FAULTS:
        raise ParameterError(f"unknown fault scenario {fault!r}; choose from {', '.join(FAULTS)}")
    if network not in _NETWORKS:
        raise ParameterError(f"network must be one of {', '.join(_NETWORKS)}, got {network!r}")
    if fault == "byzantine" and protocol == "raft":
        raise ParameterError("Raft tolerates crash faults only: run the byzantine scenario with pbft")
    if byzantine_behaviour not in acp.BYZANTINE_BEHAVIOURS:
        raise ParameterError(f"byzantine_behaviour must be one of {', '.join(acp.BYZANTINE_BEHAVIOURS)}, "
                             f"got {byzantine_behaviour!r}")
    if decisions < 1 or clients < 1:
        raise ParameterError(f"decisions and clients must be >= 1, got {decisions} and {clients}")
    if not (math.isfinite(fault_at_ms) and fault_at_ms >= 0):
        raise ParameterError(f"fault_at_ms must be a finite number >= 0, got {fault_at_ms!r}")
    part = _default_partition_ms(network) if partition_ms is None else float(partition_ms)
    if not (math.isfinite(part) and part > 0):
        raise ParameterError(f"partition_ms must be > 0, got {partition_ms!r}")
    faults: list[Any] = []
    byzantine = None
    faulty = 0 if fault == "none" else k + 1 if fault == "beyond" else k
    if fault in ("crash", "beyond"):
        faults = [acp.Crash(i, at_ms=fault_at_ms) for i in range(faulty)]
    elif fault == "partition":
        faults = [acp.Partition.of(set(range(k)), set(range(k, n)), at_ms=fault_at_ms, until_ms=fault_at_ms + part)]
    elif fault == "byzantine":
        byzantine = {i: byzantine_behaviour for i in range(k)}
    latency = acp.LatencyModel.preset(network)
    if protocol == "raft":
        r = acp.simulate_raft(n, decisions=decisions, seed=seed, latency=latency,
                              config=acp.RaftConfig.preset(network), faults=faults, clients=clients,
                              bootstrap_leader=0)
        changes = r.elections
    else:
        r = acp.simulate_pbft(n, decisions=decisions, seed=seed, latency=latency,
                              config=acp.PbftConfig.preset(network), faults=faults, byzantine=byzantine,
                              clients=clients)
        changes = r.view_changes
    lat = r.latencies_ms()
    ends = np.sort(np.array([d.end_ms for d in r.decisions], dtype=np.float64))
    starts = np.array([d.start_ms for d in r.decisions], dtype=np.float64)
    done = len(r.decisions)
    span_s = (ends[-1] - starts.min()) / 1000.0 if done else 0.0
    violations = r.safety_violations()
    nan = float("nan")
    return {
        "protocol": protocol, "n": int(n), "fault": fault, "seed": int(seed), "network": network,
        "faulty": faulty, "tolerated": k, "expected_live": fault != "beyond",
        "decisions_target": int(decisions), "decisions": done, "completed": done >= decisions,
        "p50_ms": float(np.percentile(lat, 50)) if done else nan,
        "p99_ms": float(np.percentile(lat, 99)) if done else nan,
        "mean_ms": float(lat.mean()) if done else nan,
        "throughput_per_s": done / span_s if span_s > 0 else nan,
        "messages_per_decision": r.messages / done if done else nan,
        "leader_changes": int(changes),
        "max_gap_ms": float(np.diff(ends).max()) if done > 1 else nan,
        "fault_at_ms": float(fault_at_ms) if fault != "none" else nan, "end_ms": float(r.end_ms),
        "safety_violations": len(violations), "safe": not violations,
    }


def consensus_sweep(raft_sizes: Sequence[int] = (3, 5, 7, 9), pbft_sizes: Sequence[int] = (4, 7, 10, 13),
                    faults: Sequence[str] = FAULTS, *, network: str = "wan", decisions: int = 40, clients: int = 4,
                    seeds: Sequence[int] = (0, 1), fault_at: float = 0.3, partition_ms: float | None = None,
                    byzantine_behaviour: str = "equivocate") -> pl.DataFrame:
    """:func:`consensus_run` for every protocol, size, fault scenario and seed.

    The fault-free run of each (protocol, n, seed) always runs first; the faults of that
    configuration start at ``fault_at`` x its duration (so they hit mid-run whatever the
    network). ``byzantine`` runs for PBFT only. Deterministic: same arguments, same table.

    Example
    -------
    >>> t = consensus_sweep([3], [4], ["none", "crash"], decisions=10, seeds=[0])
    >>> t.select("protocol", "fault", "safe").rows()
    [('raft', 'none', True), ('raft', 'crash', True), ('pbft', 'none', True), ('pbft', 'crash', True)]
    """
    bad = [f for f in faults if f not in FAULTS]
    if bad:
        raise ParameterError(f"unknown fault scenario(s) {bad}; choose from {', '.join(FAULTS)}")
    if not (0.0 <= fault_at < 1.0):
        raise ParameterError(f"fault_at is a fraction of the fault-free run in [0, 1), got {fault_at!r}")
    if not seeds or (not raft_sizes and not pbft_sizes):
        raise ParameterError("give at least one seed and one cluster size")
    rows = []
    for protocol, sizes in (("raft", raft_sizes), ("pbft", pbft_sizes)):
        for n in sizes:
            for seed in seeds:
                kw = {"network": network, "decisions": decisions, "clients": clients, "seed": int(seed)}
                base = consensus_run(protocol, int(n), "none", **kw)
                at = round(fault_at * base["end_ms"], 3)
                if "none" in faults:
                    rows.append(base)
                for fault in faults:
                    if fault == "none" or (fault == "byzantine" and protocol == "raft"):
                        continue
                    rows.append(consensus_run(protocol, int(n), fault, fault_at_ms=at, partition_ms=partition_ms,
                                              byzantine_behaviour=byzantine_behaviour, **kw))
    if not rows:
        raise ParameterError("no runs: the fault list selects nothing for these protocols")
    order = {f: i for i, f in enumerate(FAULTS)}
    return (pl.DataFrame(rows).with_columns(pl.col("fault").replace_strict(order).alias("_o"))
            .sort(["protocol", "_o", "n", "seed"], descending=[True, False, False, False], maintain_order=True)
            .drop("_o"))


def consensus_summary(runs: pl.DataFrame) -> pl.DataFrame:
    """Per (protocol, fault, n), over seeds: ``runs, safe_runs, completed_runs, decisions`` (mean
    share of the target made), ``p50_ms`` (median of the runs' medians), ``p99_ms`` (worst run's),
    ``throughput_per_s`` and ``messages_per_decision`` (means), ``leader_changes`` (mean),
    ``max_gap_ms`` (worst).

    Example
    -------
    >>> s = consensus_summary(consensus_sweep([3], [4], ["none"], decisions=5, seeds=[0, 1]))
    >>> s.select("protocol", "n", "runs", "safe_runs").rows()
    [('raft', 3, 2, 2), ('pbft', 4, 2, 2)]
    """
    c = pl.col
    return runs.group_by(["protocol", "fault", "n"], maintain_order=True).agg(
        runs=pl.len(), safe_runs=c("safe").sum(), completed_runs=c("completed").sum(),
        decisions=(c("decisions") / c("decisions_target")).mean(),
        p50_ms=c("p50_ms").median(), p99_ms=c("p99_ms").max(), throughput_per_s=c("throughput_per_s").mean(),
        messages_per_decision=c("messages_per_decision").mean(), leader_changes=c("leader_changes").mean(),
        max_gap_ms=c("max_gap_ms").max(),
    )


def consensus_assessment(runs: pl.DataFrame) -> Assessment:
    """ACT when any run broke safety (two replicas committed different values at one slot, or a
    client saw a decision no replica holds); WARN when a run within the fault bound (every
    scenario but ``beyond``) did not make all its decisions; OK otherwise: safety held in every
    run and liveness wherever the protocol promises it.

    Example
    -------
    >>> consensus_assessment(consensus_sweep([3], [4], ["none"], decisions=5, seeds=[0])).level
    'OK'
    """
    if runs.height == 0:
        raise ParameterError("no consensus runs to assess")
    c = pl.col
    unsafe = runs.filter(~c("safe"))
    stalled = runs.filter(c("expected_live") & ~c("completed"))
    beyond = runs.filter(~c("expected_live"))

    def sizes(p: str) -> str:
        return ", ".join(str(x) for x in runs.filter(c("protocol") == p)["n"].unique().sort().to_list()) or "-"

    present = set(runs["fault"].to_list())
    reasons = [f"{runs.height} runs (Raft n = {sizes('raft')}; PBFT n = {sizes('pbft')}; faults: "
               f"{', '.join(f for f in FAULTS if f in present)}; "
               f"{runs['seed'].n_unique()} seed(s), {runs['network'][0]} network): safety held in "
               f"{runs.height - unsafe.height}"]
    reasons += [f"SAFETY VIOLATED: {r['protocol']} n={r['n']} {r['fault']} seed {r['seed']} "
                f"({r['safety_violations']} violation(s))" for r in unsafe.iter_rows(named=True)]
    reasons += [f"liveness lost within the fault bound: {r['protocol']} n={r['n']} {r['fault']} seed {r['seed']}: "
                f"{r['decisions']} of {r['decisions_target']} decisions" for r in stalled.iter_rows(named=True)]
    if beyond.height:
        reasons.append(f"beyond the fault bound (tolerance + 1 crashes): {int((~beyond['completed']).sum())} of "
                       f"{beyond.height} runs stopped making progress, as expected; safety held in "
                       f"{int(beyond['safe'].sum())}")
    free = runs.filter(c("fault") == "none")
    for p in ("raft", "pbft"):
        f = free.filter(c("protocol") == p).group_by("n").agg(c("p50_ms").median(), c("throughput_per_s").mean()).sort("n")
        if f.height:
            reasons.append(f"fault-free {p}: median latency " + ", ".join(
                f"{v:.1f} ms (n={n})" for n, v in zip(f["n"], f["p50_ms"])) + "; throughput " + ", ".join(
                f"{v:.1f}/s" for v in f["throughput_per_s"]))
    if unsafe.height:
        level, label = "ACT", "safety violated"
    elif stalled.height:
        level, label = "WARN", "liveness lost within the fault bound"
    else:
        level, label = "OK", "safety held in every run"
    summary = (f"{runs.height} message-level consensus runs: {unsafe.height} unsafe, {stalled.height} stalled "
               "within the fault bound")
    evidence = {"runs": runs.height, "unsafe_runs": unsafe.height, "stalled_within_bound": stalled.height,
                "beyond_bound_stalled": int((~beyond["completed"]).sum()) if beyond.height else 0}
    return Assessment(level, label, reasons, summary, evidence)
