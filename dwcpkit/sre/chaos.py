"""RB-07 chaos experiment: safety gates, an injection plan, abort rules, and recovery time from telemetry.

The original (``scripts/production/production-chaos.sh``) had real safety gates and ssh/tc/stress-ng
injections but no abort logic, did not enforce its own hard limits, and called an experiment a
success when a health score was >= 95 thirty seconds after it. Here:

Scenarios (:data:`SCENARIOS`)
    The six the script implemented, as data: what is injected on the target node, how it is
    removed, the magnitude's unit and hard limit, and which signals it is expected to move.
Safety gates (:func:`safety_gates`, all must pass)
    magnitude and duration within the hard limits (enforced here; the script only declared them),
    blast radius <= 1 node in safe mode, a majority of the cluster left after taking the targets
    out (from ``dwcp_v3_peers_connected``), the RB-03 health score >= 95, no failure found by
    triage in the 15 minutes before, and in safe mode a load ratio <= 0.8. The load ratio is the
    region's migration rate over the highest rate of the previous ``load_peak_hours`` (24 h;
    the script divided by the peak of the last hour, which is ~1 whenever load is rising).
Injection plan (:func:`plan`)
    the commands (argv, no shell) that inject and remove the fault; a runbook records them as
    dry-run actions and runs them only with ``dry_run=False``.
Abort rules (:class:`AbortRules`, :func:`abort_check`, :func:`watch`)
    the report's doc-only conditions made real: error ratio above 0.5 %, P99 migration latency
    above ``p99_factor`` x its baseline (an absolute 150 ms means nothing for migrations of GBs),
    a component down, or fewer reachable peers than a majority, for ``consecutive`` evaluations.
    :func:`abort_check` replays them over a recorded experiment; :func:`watch` is the bounded live
    loop a runbook runs while an injection is active.
Recovery (:func:`recovery`)
    per signal, a baseline band from the ``baseline_minutes`` before the injection
    (5th-95th percentile, widened by ``tolerance`` x the baseline median); a signal is *disturbed*
    when it left the band for ``stable`` evaluations in a row during the injection, and *recovered*
    at the first evaluation after the injection's end from which it stays in the band for
    ``stable`` evaluations. Recovery time = that instant minus the injection's end; the
    experiment's is the slowest disturbed signal's. Resolution is one ``step``; rates and
    quantiles are over ``window`` (2 min), so a value can lag the system by up to one window.

:func:`evaluate` ties it together (:class:`ChaosReport`). Verdict: ``NOT RECOVERED`` (ACT) when a
disturbed signal had not recovered by the end of the observation; ``NO-GO`` (WARN) when a safety
gate failed; ``ABORTED`` (WARN) when an abort rule fired; ``SLOW RECOVERY`` (WARN) above
``recovery_target_s``; otherwise ``RECOVERED`` (OK), ``NO EFFECT`` (OK, nothing left its band) or
``GO`` (OK, gates only, no experiment window).

Example
-------
>>> p = plan("latency_injection", "us-east-3", 25, 60)
>>> p.steps[0].argv[-6:]
['dev', 'eth0', 'root', 'netem', 'delay', '25ms']
>>> plan("latency_injection", "us-east-3", 80, 60).violations
['magnitude 80 ms exceeds the hard limit 50 ms']
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import polars as pl

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import health, incidents, slo
from dwcpkit.sre.gates import Gate, gate_table
from dwcpkit.sre.playbooks import signal_series
from dwcpkit.telemetry import schema
from dwcpkit.telemetry.sources import load, load_incidents, resolve

__all__ = [
    "Scenario",
    "SCENARIOS",
    "MAX_DURATION_S",
    "RECOVERY_SIGNALS",
    "METRICS",
    "Step",
    "Plan",
    "plan",
    "Experiment",
    "experiment_window",
    "load_data",
    "load_ratio",
    "safety_gates",
    "AbortRules",
    "abort_check",
    "WatchResult",
    "watch",
    "latest_values",
    "live_poller",
    "SignalRecovery",
    "recovery",
    "ChaosReport",
    "evaluate",
]

#: Longest injection the hard limits allow (the script declared 300 s and never checked it).
MAX_DURATION_S = 300
#: Signals whose return to baseline is measured (keys of :data:`dwcpkit.sre.playbooks.SIGNALS`).
RECOVERY_SIGNALS: tuple[str, ...] = ("p50_latency_s", "error_pct", "throughput_gbps", "peers", "components_down")
_ABORT_SIGNALS: tuple[str, ...] = ("error_pct", "p99_latency_s", "components_down", "peers")
_COUNT = "dwcp_v3_migration_latency_seconds_count"


@dataclass(frozen=True)
class Scenario:
    """A fault the experiment can inject.

    ``inject``/``remove`` are argv templates run on the operator's machine; ``{node}``, ``{user}``,
    ``{iface}``, ``{magnitude}``, ``{duration}`` and ``{api}`` are filled in by :func:`plan`.
    ``remove`` is empty for faults that end by themselves. ``limit`` is the hard limit of the
    magnitude (``None``: the scenario takes none).
    """

    name: str
    description: str
    unit: str
    default: float | None
    limit: float | None
    inject: tuple[tuple[str, ...], ...]
    remove: tuple[tuple[str, ...], ...]
    expect: tuple[str, ...]
    original: str


def _ssh(*argv: str) -> tuple[str, ...]:
    return ("ssh", "{user}@{node}", *argv)


_CACHES = ("consensus", "network", "api", "scheduler")

#: The six scenarios the original script implemented (its disk_io_stress and connection_limit
#: were declared but never written).
SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("latency_injection", "add network delay on the target node", "ms", 25.0, 50.0,
             (_ssh("tc", "qdisc", "add", "dev", "{iface}", "root", "netem", "delay", "{magnitude}ms"),),
             (_ssh("tc", "qdisc", "del", "dev", "{iface}", "root", "netem"),),
             ("p50_latency_s", "p99_latency_s"), "tc netem delay over ssh; polled /ping every 5 s"),
    Scenario("packet_loss", "drop a share of the target node's packets", "%", 1.0, 1.0,
             (_ssh("tc", "qdisc", "add", "dev", "{iface}", "root", "netem", "loss", "{magnitude}%"),),
             (_ssh("tc", "qdisc", "del", "dev", "{iface}", "root", "netem"),),
             ("error_pct",), "tc netem loss over ssh; error counter delta"),
    Scenario("cpu_stress", "load every CPU of the target node to a share", "% of cores", 10.0, 15.0,
             (_ssh("stress-ng", "--cpu", "0", "--cpu-load", "{magnitude}", "--timeout", "{duration}s"),),
             (_ssh("pkill", "-x", "stress-ng"),),
             ("p50_latency_s", "throughput_gbps"), "stress-ng --cpu max(1, cores x pct / 100)"),
    Scenario("memory_stress", "allocate a share of the target node's RAM", "% of RAM", 5.0, 10.0,
             (_ssh("stress-ng", "--vm", "1", "--vm-bytes", "{magnitude}%", "--timeout", "{duration}s"),),
             (_ssh("pkill", "-x", "stress-ng"),),
             ("p50_latency_s",), "stress-ng --vm 10 % of RAM"),
    Scenario("cache_invalidation", "clear the consensus, network, api and scheduler caches", "", None, None,
             tuple(("curl", "-fsS", "-X", "POST", f"{{api}}/cache/{c}/clear") for c in _CACHES), (),
             ("p50_latency_s", "error_pct"), "POST /cache/<c>/clear; miss rate after 30 s"),
    Scenario("gc_pressure", "force garbage collection on the target node", "", None, None,
             (("curl", "-fsS", "-X", "POST", "{api}/nodes/{node}/gc/force"),), (),
             ("p50_latency_s",), "force GC; count cycles over 60 s"),
)}


# ---------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One command of the plan."""

    title: str
    argv: list[str]
    kind: str  # "inject" | "remove"

    @property
    def detail(self) -> str:
        """The command line, quoted for a shell (for display; it is run without one)."""
        import shlex

        return shlex.join(self.argv)


@dataclass(frozen=True)
class Plan:
    """What the experiment injects, on which nodes, and how it is undone."""

    scenario: Scenario
    targets: tuple[str, ...]
    magnitude: float | None
    duration_s: int
    steps: list[Step]
    violations: list[str]

    @property
    def inject(self) -> list[Step]:
        """Steps that start the fault."""
        return [s for s in self.steps if s.kind == "inject"]

    @property
    def remove(self) -> list[Step]:
        """Steps that end it (run on abort too)."""
        return [s for s in self.steps if s.kind == "remove"]

    def describe(self) -> str:
        """One line: scenario, magnitude, targets, duration."""
        mag = "" if self.magnitude is None else f" {self.magnitude:g} {self.scenario.unit}"
        return f"{self.scenario.name}{mag} on {', '.join(self.targets)} for {self.duration_s} s"


def _targets(target_node: str | Sequence[str]) -> tuple[str, ...]:
    items = target_node.split(",") if isinstance(target_node, str) else list(target_node)
    out = tuple(dict.fromkeys(t.strip() for t in items if t and t.strip()))
    if not out:
        raise ParameterError("target_node is empty; name the node(s) to inject into, e.g. 'us-east-3'")
    return out


def plan(scenario: str, target_node: str | Sequence[str], magnitude: float | None, duration_s: int, *,
         user: str = "root", iface: str = "eth0", api: str = "http://localhost:8080/api/v3") -> Plan:
    """The injection and removal commands of ``scenario`` on ``target_node`` (comma-separated list).

    ``magnitude`` is in the scenario's unit (ms, %, % of cores, % of RAM); ``None`` takes the
    scenario's default. Hard-limit breaches do not raise: they are listed in ``violations`` and
    fail the safety gates. Nonsense (unknown scenario, negative or non-finite numbers) raises
    :class:`~dwcpkit.errors.ParameterError`.

    >>> [s.kind for s in plan("packet_loss", "n1,n2", 0.5, 60).steps]
    ['inject', 'inject', 'remove', 'remove']
    """
    if scenario not in SCENARIOS:
        raise ParameterError(f"unknown chaos scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    sc = SCENARIOS[scenario]
    targets = _targets(target_node)
    if isinstance(duration_s, bool) or not isinstance(duration_s, (int, float)) or not duration_s > 0:
        raise ParameterError(f"duration_s={duration_s!r}; give a positive number of seconds")
    if sc.limit is None:
        magnitude = None
    else:
        magnitude = sc.default if magnitude is None else magnitude
        if isinstance(magnitude, bool) or not isinstance(magnitude, (int, float)) or not math.isfinite(magnitude) \
                or magnitude <= 0:
            raise ParameterError(f"magnitude={magnitude!r} for {scenario}; give a positive number of {sc.unit}")
    violations = []
    if magnitude is not None and sc.limit is not None and magnitude > sc.limit:
        violations.append(f"magnitude {magnitude:g} {sc.unit} exceeds the hard limit {sc.limit:g} {sc.unit}")
    if duration_s > MAX_DURATION_S:
        violations.append(f"duration {duration_s:g} s exceeds the hard limit {MAX_DURATION_S} s")
    fill = {"user": user, "iface": iface, "api": api.rstrip("/"), "duration": f"{int(duration_s)}",
            "magnitude": "" if magnitude is None else f"{magnitude:g}"}
    steps: list[Step] = []
    per_node = any("{node}" in a for argv in sc.inject for a in argv)
    nodes = targets if per_node else targets[:1]
    for kind, templates in (("inject", sc.inject), ("remove", sc.remove)):
        for node in nodes:
            for tpl in templates:
                argv = [a.format(node=node, **fill) for a in tpl]
                where = f" on {node}" if per_node else ""
                verb = "Inject" if kind == "inject" else "Remove"
                steps.append(Step(f"{verb} {scenario}{where}", argv, kind))
    return Plan(sc, targets, None if magnitude is None else float(magnitude), int(duration_s), steps, violations)


# ---------------------------------------------------------------------------------------------
# experiment window and data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Experiment:
    """The recorded injection to analyse: when it ran, where, and what it was."""

    start: datetime
    end: datetime
    region: str
    label: str


def _utc(value: datetime | str, name: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ParameterError(f"{name}={value!r} is not an ISO-8601 time; use e.g. '2026-11-02T22:55:00Z'") from None
    if not isinstance(value, datetime):
        raise ParameterError(f"{name}={value!r} must be an ISO-8601 string or an aware datetime")
    if value.tzinfo is None:
        raise ParameterError(f"{name}={value!r} has no UTC offset; add 'Z' (times are UTC)")
    return value.astimezone(timezone.utc)


def experiment_window(source: str, experiment: str = "", *, start: str = "", end: str = "",
                      region: str = "") -> Experiment | None:
    """The injection window to analyse, or ``None`` for a pre-flight check only.

    ``experiment`` names an incident of the source's ground truth (the sample's ``INC-00x``,
    :func:`~dwcpkit.telemetry.sources.load_incidents`): its start, end and region are used as the
    injection's. Otherwise ``start``/``end`` (ISO-8601 UTC) give the window and ``region`` is
    required. Both empty: ``None``.

    >>> experiment_window("sample", "INC-006").region
    'us-east'
    """
    if experiment:
        truth = load_incidents(source)
        row = truth.filter(pl.col("incident_id") == experiment)
        if row.height == 0:
            ids = ", ".join(truth["incident_id"].to_list()) or "none (only the sample has a ground-truth table)"
            raise ParameterError(f"experiment {experiment!r} is not in the ground truth of {source!r}; ids: {ids}. "
                                 "For a live experiment pass injection_start/injection_end instead")
        r = row.row(0, named=True)
        if r["end"] is None:
            raise DataError(f"{experiment} has no end yet: recovery cannot be measured while it runs")
        reg = region or r["region"]
        if not reg:
            raise ParameterError(f"{experiment} is not tied to a region; pass region=")
        return Experiment(r["start"], r["end"], reg, f"{experiment}: {r['description']}")
    if not start and not end:
        return None
    if not (start and end):
        raise ParameterError("give both injection_start and injection_end (ISO-8601 UTC), or neither")
    t0, t1 = _utc(start, "injection_start"), _utc(end, "injection_end")
    if t1 <= t0:
        raise ParameterError(f"injection_end {t1:%Y-%m-%d %H:%M:%S} is not after injection_start {t0:%Y-%m-%d %H:%M:%S}")
    if not region:
        raise ParameterError("region is required with injection_start/injection_end (e.g. region='us-east')")
    return Experiment(t0, t1, region, f"injection {t0:%Y-%m-%d %H:%M}-{t1:%H:%M} UTC in {region}")


def _families() -> list[str]:
    return sorted(set(health.METRICS) | {_COUNT, "dwcp_v3_migration_latency_seconds_bucket"}
                  | set(incidents.DETECTION_METRICS))


#: Families the chaos runbook reads.
METRICS: tuple[str, ...] = tuple(_families())


def load_data(source: str, exp: Experiment | None, *, baseline_minutes: int = 60, observe_minutes: int = 30,
              load_peak_hours: int = 24) -> pl.DataFrame:
    """The telemetry :func:`evaluate` needs: files and the sample whole, Prometheus for the span only."""
    fams = _families()
    if resolve(source).kind != "prometheus":
        return load(source, metrics=fams)
    now = datetime.now(timezone.utc)
    t0 = exp.start if exp else now
    t1 = min(exp.end + timedelta(minutes=observe_minutes), now) if exp else now
    lookback = timedelta(hours=load_peak_hours, minutes=baseline_minutes + 10)
    return load(source, metrics=fams, start=t0 - lookback, end=t1, step="60s")


# ---------------------------------------------------------------------------------------------
# safety gates
# ---------------------------------------------------------------------------------------------


def load_ratio(frame: pl.DataFrame, region: str, at: datetime, *, peak_hours: int = 24,
               window: str = "5m") -> tuple[float | None, float | None]:
    """``(ratio, current)``: the region's migration rate at ``at`` over its peak in the ``peak_hours`` before.

    Rates are completed migrations per minute, all versions, over ``window``; the peak is the
    highest per-minute value available in the span (the data may start later).
    """
    sel = frame.filter((pl.col("metric") == _COUNT) & (pl.col("region") == region))
    if sel.height == 0:
        return None, None
    r = slo.rate(sel, window, step="1m", start=at - timedelta(hours=peak_hours), end=at)
    per_t = slo.sum_by(r, []).sort("timestamp")
    if per_t.height == 0:
        return None, None
    cur = per_t.filter(pl.col("timestamp") == at)
    if cur.height == 0:
        return None, None
    peak = float(per_t["value"].max())
    current = float(cur["value"][0]) * 60
    return (current / (peak * 60) if peak > 0 else None), current


def safety_gates(frame: pl.DataFrame, pl_: Plan, *, region: str, at: datetime, safe_mode: bool = True,
                 cluster_size: int = 7, max_load_ratio: float = 0.8, min_health: float = 95.0,
                 load_peak_hours: int = 24, incident_lookback: str = "15m") -> list[Gate]:
    """The pre-injection gates at ``at`` (all must pass; a gate without data fails).

    Example
    -------
    >>> from dwcpkit.telemetry.sources import load
    >>> gs = safety_gates(load("sample"), plan("packet_loss", "us-east-3", 1, 60), region="us-east",
    ...                   at=datetime(2026, 11, 2, 22, 54, tzinfo=timezone.utc))   # doctest: +SKIP
    >>> all(g.passed for g in gs)                                                 # doctest: +SKIP
    True
    """
    if not isinstance(cluster_size, int) or isinstance(cluster_size, bool) or cluster_size < 1:
        raise ParameterError(f"cluster_size={cluster_size!r}; give the number of consensus nodes (e.g. 7)")
    sc = pl_.scenario
    gates: list[Gate] = []
    if sc.limit is not None:
        gates.append(Gate(f"magnitude ({sc.unit}, hard limit)", None, pl_.magnitude, sc.limit, "<=", unit=sc.unit))
    gates.append(Gate("duration (s, hard limit)", None, float(pl_.duration_s), float(MAX_DURATION_S), "<=", unit="s"))
    if safe_mode:
        gates.append(Gate("blast radius (nodes, safe mode)", None, float(len(pl_.targets)), 1.0, "<="))
    peers = signal_series(frame, "peers", at, at, region=region)
    reachable = float(peers["value"].min()) if peers.height else None
    quorum = cluster_size // 2 + 1
    left = None if reachable is None else reachable - len(pl_.targets)
    gates.append(Gate("nodes left after the injection (majority)", reachable, left, float(quorum), ">=",
                      note=f"reachable peers {reachable:g} - targets {len(pl_.targets)}" if reachable is not None else ""))
    try:
        hr = health.evaluate(frame, at=at, region=region, history_minutes=0)
        score = hr.overall["overall"][0]
    except DataError:
        score = None
    gates.append(Gate("RB-03 health score", None, score, min_health, ">="))
    tri = incidents.triage(frame, at=at, lookback=incident_lookback, thresholds=incidents.FLEET_THRESHOLDS)
    gates.append(Gate(f"failures found by triage in the {incident_lookback} before", None,
                      float(tri.detections.height), 0.0, "<=", note=tri.summary))
    if safe_mode:
        ratio, _ = load_ratio(frame, region, at, peak_hours=load_peak_hours)
        gates.append(Gate(f"load ratio (migrations/min vs {load_peak_hours} h peak, safe mode)", None, ratio,
                          max_load_ratio, "<="))
    return gates


# ---------------------------------------------------------------------------------------------
# abort rules
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AbortRules:
    """Conditions that stop an injection; each must hold ``consecutive`` evaluations in a row.

    ``error_pct`` and the component/peer rules are the report's (doc-only) abort conditions;
    ``p99_factor`` replaces its absolute 150 ms P99 with a multiple of the baseline P99.
    ``quorum`` is the least number of reachable peers (``None``: a majority of ``cluster_size``).
    """

    error_pct: float = 0.5
    p99_factor: float = 2.0
    components_down: float = 0.0
    cluster_size: int = 7
    consecutive: int = 2

    def __post_init__(self) -> None:
        for name in ("error_pct", "p99_factor", "components_down"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ParameterError(f"abort rule {name}={v!r}; give a non-negative number")
        if not isinstance(self.consecutive, int) or self.consecutive < 1:
            raise ParameterError(f"abort rule consecutive={self.consecutive!r}; give a positive integer")
        if not isinstance(self.cluster_size, int) or self.cluster_size < 1:
            raise ParameterError(f"abort rule cluster_size={self.cluster_size!r}; give a positive integer")

    @property
    def quorum(self) -> int:
        """Fewest reachable peers that still form a majority."""
        return self.cluster_size // 2 + 1

    def breaches(self, values: Mapping[str, float | None], baseline_p99: float | None) -> list[str]:
        """The rules ``values`` (signal key -> value) break, in words; missing values break nothing."""
        out = []

        def ok(k: str) -> bool:
            v = values.get(k)
            return v is not None and not (isinstance(v, float) and math.isnan(v))

        if ok("error_pct") and values["error_pct"] > self.error_pct:
            out.append(f"error ratio {values['error_pct']:.3g} % > {self.error_pct:g} %")
        if ok("p99_latency_s") and baseline_p99 and values["p99_latency_s"] > self.p99_factor * baseline_p99:
            out.append(f"P99 {values['p99_latency_s']:.3g} s > {self.p99_factor:g} x baseline {baseline_p99:.3g} s")
        if ok("components_down") and values["components_down"] > self.components_down:
            out.append(f"{values['components_down']:g} component(s) down")
        if ok("peers") and values["peers"] < self.quorum:
            out.append(f"{values['peers']:g} reachable peers < majority {self.quorum}")
        return out


def _wide(frame: pl.DataFrame, keys: Sequence[str], start: datetime, end: datetime, region: str, *,
          step: str, window: str) -> pl.DataFrame:
    grid = slo.eval_times(start, end, step)
    out = pl.DataFrame({"timestamp": grid}).with_columns(pl.col("timestamp").cast(schema.TIMESTAMP_DTYPE))
    # signal_series anchors its grid at `end`; keep `end` on the grid by passing the last grid point
    t_end = datetime.fromtimestamp(int(grid[-1]) / 1000, tz=timezone.utc)
    for k in keys:
        s = signal_series(frame, k, start, t_end, step=step, window=window, region=region)
        out = out.join(s.select("timestamp", pl.col("value").alias(k)), on="timestamp", how="left")
    return out


def abort_check(series: pl.DataFrame, rules: AbortRules, *, baseline_p99: float | None) -> tuple[pl.DataFrame, datetime | None]:
    """Replay the abort rules over the injection's evaluations.

    ``series`` has ``timestamp`` and the signal columns of :data:`_ABORT_SIGNALS` (nulls allowed).
    Returns the table with ``breaches`` (rules broken at that evaluation, ``"; "``-joined),
    ``streak`` (evaluations in a row with a breach) and ``abort`` (streak reached
    ``rules.consecutive``), and the first abort time (``None``: no abort).

    >>> t = [datetime(2026, 1, 1, 0, m, tzinfo=timezone.utc) for m in range(4)]
    >>> s = pl.DataFrame({"timestamp": t, "error_pct": [0.1, 0.9, 0.8, 0.2]})
    >>> abort_check(s, AbortRules(), baseline_p99=None)[1].minute
    2
    """
    rows, streak, first = [], 0, None
    for r in series.sort("timestamp").iter_rows(named=True):
        b = rules.breaches(r, baseline_p99)
        streak = streak + 1 if b else 0
        hit = streak >= rules.consecutive
        if hit and first is None:
            first = r["timestamp"]
        rows.append({"timestamp": r["timestamp"], "breaches": "; ".join(b), "streak": streak, "abort": hit})
    table = pl.DataFrame(rows, schema={"timestamp": schema.TIMESTAMP_DTYPE, "breaches": pl.String,
                                       "streak": pl.Int64, "abort": pl.Boolean})
    return table, first


@dataclass
class WatchResult:
    """What the live abort loop saw."""

    aborted: bool
    elapsed_s: float
    checks: int
    breaches: list[str]
    log: list[dict[str, Any]] = field(default_factory=list)


def watch(poll: Callable[[], Mapping[str, float | None]], rules: AbortRules, *, duration_s: float,
          interval_s: float = 15.0, baseline_p99: float | None = None,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> WatchResult:
    """Poll the signals every ``interval_s`` while an injection runs; stop early when the rules say abort.

    Bounded: at most ``ceil(duration_s / interval_s) + 1`` polls. A failing poll counts as a
    breach (an experiment must not continue blind). The caller removes the fault afterwards,
    whether or not it aborted.

    >>> vals = iter([{"error_pct": 0.1}, {"error_pct": 2.0}, {"error_pct": 3.0}, {"error_pct": 0.1}])
    >>> r = watch(lambda: next(vals), AbortRules(), duration_s=60, interval_s=15, sleep=lambda s: None,
    ...           clock=iter(range(0, 1000, 15)).__next__)
    >>> r.aborted, r.checks
    (True, 3)
    """
    if not duration_s > 0 or not interval_s > 0:
        raise ParameterError("watch: duration_s and interval_s must be positive")
    t0 = clock()
    max_checks = int(math.ceil(duration_s / interval_s)) + 1
    streak, log = 0, []
    for k in range(max_checks):
        try:
            values = dict(poll())
            b = rules.breaches(values, baseline_p99)
        except Exception as exc:  # noqa: BLE001 - a blind experiment is itself a reason to stop
            values, b = {}, [f"poll failed: {type(exc).__name__}: {exc}"]
        elapsed = clock() - t0
        streak = streak + 1 if b else 0
        log.append({"elapsed_s": elapsed, **values, "breaches": "; ".join(b)})
        if streak >= rules.consecutive:
            return WatchResult(True, elapsed, k + 1, b, log)
        if elapsed >= duration_s:
            break
        sleep(min(interval_s, max(0.0, duration_s - elapsed)))
    return WatchResult(False, clock() - t0, len(log), [], log)


def latest_values(frame: pl.DataFrame, region: str, *, window: str = "2m") -> dict[str, float | None]:
    """The abort signals' newest values for ``region`` in ``frame`` (``None`` where there is none)."""
    if frame.height == 0:
        raise DataError("no samples: cannot evaluate the abort rules")
    at = frame["timestamp"].max()
    out: dict[str, float | None] = {}
    for k in _ABORT_SIGNALS:
        s = signal_series(frame, k, at - timedelta(minutes=1), at, window=window, region=region)
        out[k] = float(s["value"][-1]) if s.height else None
    return out


def live_poller(source: str, region: str, *, window: str = "2m",
                lookback: timedelta = timedelta(minutes=15)) -> Callable[[], dict[str, float | None]]:
    """The poll function :func:`watch` calls during a live injection: the newest abort signals from Prometheus.

    Raises :class:`~dwcpkit.errors.ParameterError` for a file or the sample (they do not change
    while a fault is injected, so they cannot stop one): check this *before* injecting.
    """
    if resolve(source).kind != "prometheus":
        raise ParameterError(f"a live injection needs a live Prometheus source to watch the abort rules; {source!r} "
                             "is a file or the sample. Pass source=http://<prometheus>:9090 or keep dry_run=True")
    fams = [f for f in _families() if not f.endswith("_count")]

    def poll() -> dict[str, float | None]:
        now = datetime.now(timezone.utc)
        return latest_values(load(source, metrics=fams, start=now - lookback, end=now, step="15s"), region,
                             window=window)

    return poll


# ---------------------------------------------------------------------------------------------
# recovery
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalRecovery:
    """Band, effect and recovery of one signal."""

    signal: str
    baseline: float | None
    band: tuple[float, float] | None
    during: float | None       # median during the injection
    worst: float | None        # furthest from the baseline during the injection
    disturbed: bool
    recovered_at: datetime | None
    recovery_s: float | None   # None: disturbed and not recovered (or not disturbed: 0)
    note: str

    def row(self) -> dict[str, Any]:
        """As a table row."""
        return {"signal": self.signal, "baseline": self.baseline,
                "band_low": None if self.band is None else self.band[0],
                "band_high": None if self.band is None else self.band[1],
                "during_median": self.during, "worst": self.worst, "disturbed": self.disturbed,
                "recovered_at": self.recovered_at, "recovery_s": self.recovery_s, "note": self.note}


def _runs(flags: np.ndarray, n: int) -> np.ndarray:
    """Indices i where flags[i:i+n] are all True."""
    if flags.size < n:
        return np.empty(0, dtype=np.int64)
    c = np.convolve(flags.astype(np.int64), np.ones(n, dtype=np.int64), mode="valid")
    return np.flatnonzero(c == n)


def recovery(series: pl.DataFrame, signal: str, *, start: datetime, end: datetime,
             baseline: tuple[datetime, datetime], tolerance: float = 0.1, stable: int = 3) -> SignalRecovery:
    """Measure one signal's effect and return to its baseline band (module docstring).

    ``series`` has ``timestamp`` and ``value`` (one region, one evaluation per step) covering
    the baseline, the injection ``[start, end]`` and the observation after ``end``.

    >>> ts = [datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=m) for m in range(40)]
    >>> v = [1.0] * 20 + [5.0] * 10 + [3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    >>> r = recovery(pl.DataFrame({"timestamp": ts, "value": v}), "x", start=ts[20], end=ts[29],
    ...              baseline=(ts[0], ts[19]))
    >>> r.disturbed, r.recovery_s
    (True, 120.0)
    """
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ParameterError(f"tolerance={tolerance!r}; give a non-negative fraction (0.1 = 10 %)")
    if not isinstance(stable, int) or stable < 1:
        raise ParameterError(f"stable={stable!r}; give a positive number of evaluations")
    s = series.drop_nulls("value").filter(pl.col("value").is_not_nan()).sort("timestamp")
    base = s.filter(pl.col("timestamp").is_between(*baseline))["value"]
    if base.len() < 3:
        return SignalRecovery(signal, None, None, None, None, False, None, None,
                              "not measured: fewer than 3 baseline values")
    med = float(base.median())
    lo, hi = float(base.quantile(0.05, "linear")), float(base.quantile(0.95, "linear"))
    lo, hi = lo - tolerance * abs(med), hi + tolerance * abs(med)
    inside = pl.col("value").is_between(lo, hi)
    dur = s.filter(pl.col("timestamp").is_between(start, end))
    if dur.height == 0:
        return SignalRecovery(signal, med, (lo, hi), None, None, False, None, None,
                              "not measured: no values during the injection")
    dv = dur["value"].to_numpy()
    worst = float(dv[np.argmax(np.abs(dv - med))])
    out_during = ~dur.select(inside).to_series().to_numpy()
    disturbed = _runs(out_during, stable).size > 0
    if not disturbed:
        return SignalRecovery(signal, med, (lo, hi), float(np.median(dv)), worst, False, None, 0.0,
                              "stayed in its band")
    after = s.filter(pl.col("timestamp") >= end)
    ok = after.select(inside).to_series().to_numpy()
    idx = _runs(ok, stable)
    if idx.size == 0:
        last = after["timestamp"].max() if after.height else end
        return SignalRecovery(signal, med, (lo, hi), float(np.median(dv)), worst, True, None, None,
                              f"not back in its band by {last:%H:%M} UTC")
    t = after["timestamp"][int(idx[0])]
    return SignalRecovery(signal, med, (lo, hi), float(np.median(dv)), worst, True, t,
                          (t - end).total_seconds(), f"back in its band at {t:%H:%M} UTC")


# ---------------------------------------------------------------------------------------------
# the whole experiment
# ---------------------------------------------------------------------------------------------


@dataclass
class ChaosReport:
    """Everything the chaos-experiment runbook shows."""

    plan: Plan
    experiment: Experiment | None
    gate_time: datetime
    gates: list[Gate]
    gate_table: pl.DataFrame
    series: pl.DataFrame          # timestamp + one column per signal (region under test)
    aborts: pl.DataFrame          # abort replay over the injection
    abort_at: datetime | None
    baseline_p99: float | None
    recoveries: list[SignalRecovery]
    recovery_table: pl.DataFrame
    phases: pl.DataFrame          # signal x phase (baseline, during, after) medians
    recovery_s: float | None
    level: str
    label: str
    reasons: list[str]
    summary: str

    @property
    def go(self) -> bool:
        """Whether every safety gate passed."""
        return all(g.passed for g in self.gates)


def _baseline_p99(frame: pl.DataFrame, region: str, lo: datetime, hi: datetime, version: str = "v3") -> float | None:
    """P99 migration latency over the whole baseline window (one histogram quantile, not a median of noisy P99s)."""
    sel = frame.filter((pl.col("metric") == "dwcp_v3_migration_latency_seconds_bucket") & (pl.col("region") == region)
                       & (pl.col("version") == version))
    if sel.height == 0:
        return None
    win = max(int((hi - lo).total_seconds()), 120)
    q = slo.latency_quantile(sel, "dwcp_v3_migration_latency_seconds", 0.99, win, at=hi)
    v = q["value"][0] if q.height else None
    return None if v is None or math.isnan(v) else float(v)


def _median(s: pl.DataFrame, col: str, lo: datetime, hi: datetime) -> float | None:
    v = s.filter(pl.col("timestamp").is_between(lo, hi))[col].drop_nulls()
    v = v.filter(v.is_not_nan()) if v.len() else v
    return float(v.median()) if v.len() else None


def evaluate(frame: pl.DataFrame, pl_: Plan, exp: Experiment | None, *, region: str = "", safe_mode: bool = True,
             cluster_size: int = 7, max_load_ratio: float = 0.8, min_health: float = 95.0,
             load_peak_hours: int = 24, rules: AbortRules | None = None, baseline_minutes: int = 60,
             observe_minutes: int = 30, tolerance: float = 0.1, stable: int = 3, recovery_target_s: float = 300.0,
             step: str = "1m", window: str = "2m") -> ChaosReport:
    """Gates before the injection, abort replay during it, recovery after it (module docstring).

    Without ``exp`` only the gates are evaluated, at the newest sample (a pre-flight check).

    Example
    -------
    >>> from dwcpkit.telemetry.sources import load
    >>> r = evaluate(load("sample"), plan("packet_loss", "us-east-3", 1, 60),
    ...              experiment_window("sample", "INC-006"))   # doctest: +SKIP
    >>> r.label                                               # doctest: +SKIP
    'ABORTED'
    """
    rules = rules or AbortRules(cluster_size=cluster_size)
    if frame.height == 0:
        raise DataError("no telemetry: the safety gates cannot be evaluated (no data is not 'safe')")
    step_td = timedelta(milliseconds=slo.parse_duration(step))
    data_end = frame["timestamp"].max()
    reg = exp.region if exp else region
    if not reg:
        raise ParameterError("region is required for a pre-flight check (no experiment window)")
    if "region" not in frame.columns or reg not in frame["region"].drop_nulls().unique().to_list():
        regions = sorted(frame["region"].drop_nulls().unique().to_list()) if "region" in frame.columns else []
        raise DataError(f"region {reg!r} is not in the data; regions: {', '.join(regions) or 'none'}")
    gate_time = (exp.start - step_td) if exp else data_end
    margin = timedelta(minutes=15)
    gate_frame = frame.filter(pl.col("timestamp").is_between(
        gate_time - timedelta(hours=load_peak_hours) - margin, gate_time))
    gates = safety_gates(gate_frame, pl_, region=reg, at=gate_time, safe_mode=safe_mode, cluster_size=cluster_size,
                         max_load_ratio=max_load_ratio, min_health=min_health, load_peak_hours=load_peak_hours)
    failed = [g for g in gates if not g.passed]
    reasons = [g.reason for g in failed]
    empty = pl.DataFrame()
    if exp is None:
        p99 = _baseline_p99(frame.filter(pl.col("timestamp").is_between(
            gate_time - timedelta(minutes=baseline_minutes) - margin, gate_time)), reg,
            gate_time - timedelta(minutes=baseline_minutes), gate_time)
        level, label = ("WARN", "NO-GO") if failed else ("OK", "GO")
        if not failed:
            reasons = [f"all {len(gates)} safety gates pass at {gate_time:%Y-%m-%d %H:%M} UTC"]
        summary = f"pre-flight for {pl_.describe()} in {reg}: {label}"
        return ChaosReport(pl_, None, gate_time, gates, gate_table(gates), empty, empty, None, p99, [], empty,
                           empty, None, level, label, reasons, summary)

    if exp.start > data_end:
        raise DataError(f"the injection starts at {exp.start:%Y-%m-%d %H:%M} UTC, after the data ends "
                        f"({data_end:%Y-%m-%d %H:%M} UTC)")
    b0 = exp.start - timedelta(minutes=baseline_minutes)
    b1 = exp.start - step_td
    obs_end = min(exp.end + timedelta(minutes=observe_minutes), data_end)
    keys = sorted(set(RECOVERY_SIGNALS) | set(_ABORT_SIGNALS), key=(RECOVERY_SIGNALS + _ABORT_SIGNALS).index)
    frame = frame.filter(pl.col("timestamp").is_between(b0 - margin, obs_end)
                         & (pl.col("region").is_null() | (pl.col("region") == reg)))
    series = _wide(frame, keys, b0, obs_end, reg, step=step, window=window)
    baseline_p99 = _baseline_p99(frame, reg, b0, b1)
    during = series.filter(pl.col("timestamp").is_between(exp.start, exp.end))
    aborts, abort_at = abort_check(during, rules, baseline_p99=baseline_p99)
    recs = [recovery(series.select("timestamp", pl.col(k).alias("value")), k, start=exp.start, end=exp.end,
                     baseline=(b0, b1), tolerance=tolerance, stable=stable) for k in RECOVERY_SIGNALS]
    rec_table = pl.DataFrame([r.row() for r in recs], schema={
        "signal": pl.String, "baseline": pl.Float64, "band_low": pl.Float64, "band_high": pl.Float64,
        "during_median": pl.Float64, "worst": pl.Float64, "disturbed": pl.Boolean,
        "recovered_at": schema.TIMESTAMP_DTYPE, "recovery_s": pl.Float64, "note": pl.String})
    phases = pl.DataFrame([{"signal": k, "baseline": _median(series, k, b0, b1),
                            "during": _median(series, k, exp.start, exp.end),
                            "after": _median(series, k, exp.end + step_td, obs_end)} for k in keys])
    disturbed = [r for r in recs if r.disturbed]
    stuck = [r for r in disturbed if r.recovery_s is None]
    rec_s = None if stuck else max((r.recovery_s or 0.0 for r in disturbed), default=0.0)

    level, label = "OK", "RECOVERED"
    out: list[str] = []
    if stuck:
        level, label = "ACT", "NOT RECOVERED"
        out += [f"{r.signal} not back in its baseline band [{r.band[0]:.3g}, {r.band[1]:.3g}] "
                f"within {(obs_end - exp.end).total_seconds() / 60:.0f} min after the injection ended" for r in stuck]
    if failed:
        if level == "OK":
            level, label = "WARN", "NO-GO"
        out += [f"safety gate failed before the injection: {g.reason}" for g in failed]
    if abort_at is not None:
        first = aborts.filter(pl.col("abort"))["breaches"][0]
        if level == "OK":
            level, label = "WARN", "ABORTED"
        out.append(f"abort rule held {rules.consecutive} evaluations in a row at {abort_at:%H:%M} UTC "
                   f"({(abort_at - exp.start).total_seconds() / 60:.0f} min into the injection): {first}")
    if rec_s is not None and disturbed:
        slowest = max(disturbed, key=lambda r: r.recovery_s or 0.0)
        line = (f"recovery time {rec_s:.0f} s after the injection ended (slowest: {slowest.signal}, "
                f"target {recovery_target_s:g} s)")
        if rec_s > recovery_target_s and level == "OK":
            level, label = "WARN", "SLOW RECOVERY"
        out.append(line)
    elif not disturbed:
        if level == "OK":
            label = "NO EFFECT"
        out.append("no signal left its baseline band during the injection: no visible effect to recover from")
    if disturbed:
        out.append("disturbed: " + ", ".join(r.signal for r in disturbed))
    summary = (f"{exp.label.split(':')[0]} in {reg} ({exp.start:%Y-%m-%d %H:%M}-{exp.end:%H:%M} UTC): {label}"
               + (f", recovered in {rec_s:.0f} s" if rec_s is not None and disturbed else ""))
    return ChaosReport(pl_, exp, gate_time, gates, gate_table(gates), series, aborts, abort_at, baseline_p99,
                       recs, rec_table, phases, rec_s, level, label, out, summary)
