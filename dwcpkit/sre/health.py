"""RB-03 health check: per-component deduction tables as data, scores, bands, self-heal plan.

The deduction tables live in ``health.yaml`` beside this module (loaded into :data:`COMPONENTS`):
the original script's eight components (consensus, network, storage, api, scheduler, vm,
security, system) with their checks, plus dwcpkit's ``dwcp`` component for the protocol itself,
the one thing the DWCP v3 telemetry measures. Each component starts at 100 and each breached
check deducts points (:func:`score_component`); bands: < 50 unhealthy, < 80 degraded, else
healthy (:func:`status_for`).

No data is not health. A check whose input has no measurement is *not checked*: it deducts
nothing and is listed as such; a component with no checked check has no score (status
``not checked``) and is left out of the overall score instead of counting as 100.

The overall score is the mean of the scored components' scores (:func:`overall`, as the Go
framework). The original script started its total at 100, added the eight component scores and
divided by 8, which is the mean plus 12.5 (:func:`original_overall` reproduces it, counting
unchecked components as 100 as the script did when an endpoint gave nothing).

Self-heal (:func:`heal_plan`): a component that has not been healthy for ``failure_threshold``
checks in a row gets a cache clear (30 <= score < 80), a service restart (score < 50) and a GC
(score < 80), as planned actions only; this module never executes them (:func:`heal_runner`
returns the callable a runbook's dry-run ``action`` may run).

Example
-------
>>> c = COMPONENTS["network"]
>>> s = score_component(c, {"missing_peers": 2, "partition": 0})
>>> s.score, s.status, s.checked, s.total
(80.0, 'healthy', 2, 4)
>>> overall({"network": 80.0, "consensus": 60.0, "storage": None})
70.0
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import polars as pl

from dwcpkit._yamlio import package_yaml
from dwcpkit.errors import DataError, ParameterError, SchemaError
from dwcpkit.sre import rollback, slo
from dwcpkit.sre.playbooks import signal_series
from dwcpkit.telemetry import schema

__all__ = [
    "Rule",
    "Check",
    "Component",
    "ComponentScore",
    "COMPONENTS",
    "ORIGINAL_COMPONENTS",
    "INPUTS",
    "BANDS",
    "FAILURE_THRESHOLD",
    "METRICS",
    "status_for",
    "score_component",
    "overall",
    "original_overall",
    "telemetry_inputs",
    "failure_counters",
    "HealAction",
    "heal_plan",
    "heal_runner",
    "HealthReport",
    "evaluate",
]

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}
_PEERS = "dwcp_v3_peers_connected"
_BYZANTINE = "dwcp_v3_byzantine_detections_total"
_HEALTH = "dwcp_v3_component_health"
#: Families :func:`telemetry_inputs` reads.
METRICS: tuple[str, ...] = (
    _PEERS, _BYZANTINE, _HEALTH, "dwcp_v3_component_errors_total", "dwcp_v3_component_operations_total",
    "dwcp_v3_migration_latency_seconds_bucket", "dwcp_v3_throughput_bytes_per_second",
    "dwcp_v3_consensus_failures_total",
)
_DWCP = ("amst", "hde", "pba", "acp", "ass", "itp")


def _data() -> dict[str, Any]:
    return package_yaml("sre/health.yaml")


@dataclass(frozen=True)
class Rule:
    """``input <op> value`` → subtract ``deduct``, ``deduct_per_unit × input``, or cap at ``score``."""

    op: str
    value: float
    deduct: float | None = None
    deduct_per_unit: float | None = None
    score: float | None = None

    def matches(self, x: float) -> bool:
        """Whether the measurement ``x`` matches this rule."""
        return bool(_OPS[self.op](x, self.value))

    def effect(self, x: float) -> tuple[float, float | None]:
        """``(points deducted, score cap or None)`` for a matching measurement ``x``."""
        if self.score is not None:
            return 0.0, self.score
        if self.deduct_per_unit is not None:
            return self.deduct_per_unit * x, None
        return float(self.deduct or 0.0), None


@dataclass(frozen=True)
class Check:
    """One check of a component: ``input`` against ``rules`` (first match applies)."""

    id: str
    text: str
    input: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Component:
    """A health-check component and its deduction table."""

    name: str
    original: bool
    service: str
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class ComponentScore:
    """:func:`score_component` result. ``score`` is ``None`` when no check had data."""

    component: str
    score: float | None
    status: str
    checked: int
    total: int
    deductions: tuple[str, ...]
    unchecked: tuple[str, ...]


def _parse() -> tuple[dict[str, Component], dict[str, Any]]:
    d = _data()
    comps: dict[str, Component] = {}
    inputs = d["inputs"]
    try:
        for name, c in d["components"].items():
            checks = []
            for ch in c["checks"]:
                rules = []
                for r in ch["rules"]:
                    if r["op"] not in _OPS:
                        raise SchemaError(f"health.yaml: {name}.{ch['id']}: op {r['op']!r} is not one of {list(_OPS)}")
                    effects = [k for k in ("deduct", "deduct_per_unit", "score") if k in r]
                    if len(effects) != 1:
                        raise SchemaError(f"health.yaml: {name}.{ch['id']}: a rule needs exactly one of deduct, "
                                          f"deduct_per_unit, score (got {effects})")
                    rules.append(Rule(r["op"], float(r["value"]), r.get("deduct"), r.get("deduct_per_unit"),
                                      r.get("score")))
                if ch["input"] not in inputs:
                    raise SchemaError(f"health.yaml: {name}.{ch['id']}: input {ch['input']!r} is not listed "
                                      "under inputs")
                checks.append(Check(ch["id"], ch["text"], ch["input"], tuple(rules)))
            comps[name] = Component(name, bool(c["original"]), c["service"], tuple(checks))
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(f"health.yaml is malformed ({type(exc).__name__}: {exc})") from exc
    return comps, inputs


#: Components and their deduction tables (``health.yaml``), in table order.
COMPONENTS: dict[str, Component]
#: Where each input comes from: ``{name: {"from": text or None, "unit": ..., "note": ...}}``.
INPUTS: dict[str, dict[str, Any]]
COMPONENTS, INPUTS = _parse()
#: The original script's eight components (the ones its overall score divided by 8).
ORIGINAL_COMPONENTS: tuple[str, ...] = tuple(n for n, c in COMPONENTS.items() if c.original)
#: Status bands: ``{"unhealthy_below": 50, "degraded_below": 80}``.
BANDS: dict[str, float] = {k: float(v) for k, v in _data()["bands"].items()}
#: Non-healthy checks in a row before self-heal.
FAILURE_THRESHOLD: int = int(_data()["failure_threshold"])
_EXPECTED_PEERS: int = int(_data()["expected_peers"])
_HEAL: dict[str, dict[str, float]] = _data()["self_heal"]


def status_for(score: float | None) -> str:
    """``unhealthy`` (< 50), ``degraded`` (< 80), ``healthy``, or ``not checked`` for ``None``.

    >>> [status_for(s) for s in (49.9, 50, 79, 80, None)]
    ['unhealthy', 'degraded', 'degraded', 'healthy', 'not checked']
    """
    if score is None:
        return "not checked"
    if score < BANDS["unhealthy_below"]:
        return "unhealthy"
    if score < BANDS["degraded_below"]:
        return "degraded"
    return "healthy"


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def score_component(component: Component | str, values: Mapping[str, float | None]) -> ComponentScore:
    """Score one component from its inputs' measurements (``None``/NaN/absent = no measurement).

    Start at 100, subtract every matching check's deduction (first matching rule per check),
    cap at any ``score`` rule that matched, clamp to [0, 100]. No checked check → score ``None``.

    >>> score_component("consensus", {"quorum_ok": 0, "byzantine_nodes": 1}).score
    30.0
    >>> score_component("storage", {}).status
    'not checked'
    """
    comp = COMPONENTS[component] if isinstance(component, str) else component
    total_deduct, cap = 0.0, 100.0
    deductions: list[str] = []
    unchecked: list[str] = []
    checked = 0
    for ch in comp.checks:
        x = values.get(ch.input)
        if _missing(x):
            unchecked.append(ch.id)
            continue
        checked += 1
        x = float(x)
        for rule in ch.rules:
            if rule.matches(x):
                pts, sc = rule.effect(x)
                total_deduct += pts
                if sc is not None:
                    cap = min(cap, sc)
                    deductions.append(f"{ch.text}: score -> {sc:g} ({ch.input} = {x:g})")
                else:
                    deductions.append(f"{ch.text}: -{pts:g} ({ch.input} = {x:g})")
                break
    if checked == 0:
        return ComponentScore(comp.name, None, "not checked", 0, len(comp.checks), (), tuple(unchecked))
    score = max(0.0, min(cap, 100.0 - total_deduct))
    return ComponentScore(comp.name, score, status_for(score), checked, len(comp.checks), tuple(deductions),
                          tuple(unchecked))


def overall(scores: Mapping[str, float | None]) -> float | None:
    """The overall score: the mean of the scored components (``None`` when none was scored).

    >>> overall({"a": 100.0, "b": 50.0, "c": None})
    75.0
    """
    vals = [float(v) for v in scores.values() if not _missing(v)]
    return sum(vals) / len(vals) if vals else None


def original_overall(scores: Mapping[str, float | None], components: Sequence[str] = ORIGINAL_COMPONENTS) -> float:
    """What ``health-checker.sh`` reported: ``(100 + sum of the component scores) / 8``.

    The script initialised the total at 100 before adding the eight scores, so this is the mean
    plus 12.5; a component it could not measure scored 100 (no deduction fired).

    >>> original_overall(dict.fromkeys(ORIGINAL_COMPONENTS, 50.0))
    62.5
    """
    vals = [100.0 if _missing(scores.get(c)) else float(scores[c]) for c in components]
    return (100.0 + sum(vals)) / len(vals)


# ---------------------------------------------------------------------------------------------
# inputs from telemetry
# ---------------------------------------------------------------------------------------------


def _majority(expected: int) -> int:
    return expected // 2 + 1


def telemetry_inputs(
    frame: pl.DataFrame,
    start: datetime | str,
    end: datetime | str,
    *,
    step: str = "1m",
    window: str = "5m",
    expected_peers: int = _EXPECTED_PEERS,
    version: str = "v3",
) -> pl.DataFrame:
    """The health inputs the telemetry can give, per region, on the grid ``end - k * step`` ≥ ``start``.

    Columns ``timestamp``, ``region`` and one Float64 column per input of :data:`INPUTS` that has
    a telemetry source (``from`` not null); a value is null where the data has no measurement.
    Inputs without a telemetry source are not columns at all.

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> f = from_rows([(t * 60_000, _PEERS, 5.0, {"region": "eu"}) for t in range(6)])
    >>> telemetry_inputs(f, 240_000, 300_000).select("missing_peers", "quorum_ok", "partition").row(0)
    (2.0, 1.0, 0.0)
    """
    if not isinstance(frame, pl.DataFrame):
        raise SchemaError(f"telemetry_inputs: expected a canonical telemetry frame, got {type(frame).__name__}")
    if not isinstance(expected_peers, int) or expected_peers < 1:
        raise ParameterError(f"expected_peers={expected_peers!r}; give a positive integer")
    frame = schema.normalize(frame, source="telemetry_inputs")
    kw = dict(step=step, window=window, version=version)
    peers = signal_series(frame, "peers", start, end, **kw)
    regions = sorted(frame["region"].drop_nulls().unique().to_list()) if "region" in frame.columns else []
    times = _grid_times(start, end, step)
    base = pl.DataFrame({"timestamp": times}).with_columns(pl.col("timestamp").cast(schema.TIMESTAMP_DTYPE)).join(
        pl.DataFrame({"region": regions}, schema={"region": pl.String}), how="cross")
    cols: list[pl.DataFrame] = []
    maj = _majority(expected_peers)
    if peers.height:
        cols.append(peers.select("timestamp", "region",
                                 (expected_peers - pl.col("value")).clip(lower_bound=0).alias("missing_peers"),
                                 (pl.col("value") >= maj).cast(pl.Float64).alias("quorum_ok"),
                                 (pl.col("value") < maj).cast(pl.Float64).alias("partition")))
    health = signal_series(frame, "component_health", start, end, **kw)
    if health.height:
        wide = health.filter(pl.col("component").is_in(list(_DWCP))).with_columns(
            ("health_" + pl.col("component")).alias("input")).pivot(on="input", index=["timestamp", "region"],
                                                                     values="value")
        cols.append(wide)
    for key, name in (("error_pct", "error_pct"), ("p50_latency_s", "median_latency_s"),
                      ("throughput_gbps", "throughput_gbps"),
                      ("consensus_failures_per_min", "consensus_failures_per_min")):
        s = signal_series(frame, key, start, end, **kw)
        if s.height:
            cols.append(s.select("timestamp", "region", pl.col("value").alias(name)))
    byz = frame.filter(pl.col("metric") == _BYZANTINE)
    if byz.height:
        inc = slo.increase(byz, window, step=step, start=times[0], end=times[-1])
        cols.append(inc.group_by("timestamp", "region").agg(
            (pl.col("value") > 0).sum().cast(pl.Float64).alias("byzantine_nodes")))
    out = base
    for c in cols:
        out = out.join(c, on=["timestamp", "region"], how="left")
    wanted = [k for k, v in INPUTS.items() if v.get("from")]
    for k in wanted:
        if k not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.Float64).alias(k))
    return out.select("timestamp", "region", *[pl.col(k).cast(pl.Float64) for k in wanted]).sort("region", "timestamp")


def _utc(value: datetime | str | int, name: str) -> datetime:
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ParameterError(f"{name}={value!r} is not an ISO-8601 time; use e.g. '2026-11-02T03:15:00Z'") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ParameterError(f"{name}={value!r} must be an aware UTC datetime or an ISO-8601 string with 'Z'")
    return value.astimezone(timezone.utc)


def _grid_times(start: datetime | str, end: datetime | str, step: str) -> list[datetime]:
    t0, t1 = _utc(start, "start"), _utc(end, "end")
    if t1 < t0:
        raise ParameterError(f"end ({t1}) is before start ({t0})")
    st = timedelta(milliseconds=slo.parse_duration(step))
    n = int((t1 - t0) / st)
    return [t1 - st * k for k in range(n, -1, -1)]


# ---------------------------------------------------------------------------------------------
# scoring over time, failure counters, self-heal
# ---------------------------------------------------------------------------------------------

_SCORE_SCHEMA = {"timestamp": schema.TIMESTAMP_DTYPE, "region": pl.String, "component": pl.String,
                 "score": pl.Float64, "status": pl.String, "checked": pl.Int64, "total": pl.Int64,
                 "deductions": pl.String}


def _score_rows(inputs: pl.DataFrame, observed: Mapping[str, float]) -> pl.DataFrame:
    rows = []
    for r in inputs.iter_rows(named=True):
        values = {**r, **observed}
        for comp in COMPONENTS.values():
            s = score_component(comp, values)
            rows.append({"timestamp": r["timestamp"], "region": r["region"], "component": comp.name,
                         "score": s.score, "status": s.status, "checked": s.checked, "total": s.total,
                         "deductions": "; ".join(s.deductions)})
    return pl.DataFrame(rows, schema=_SCORE_SCHEMA)


def failure_counters(scores: pl.DataFrame) -> pl.DataFrame:
    """Non-healthy checks in a row ending at each series' last check, per region and component.

    ``scores`` has ``timestamp, region, component, status``; the counter grows on ``degraded`` /
    ``unhealthy``, resets on ``healthy``, and stays 0 for ``not checked`` (nothing to heal).

    >>> from datetime import datetime, timezone
    >>> t = [datetime(2026, 1, 1, 0, m, tzinfo=timezone.utc) for m in range(4)]
    >>> s = pl.DataFrame({"timestamp": t, "region": ["eu"] * 4, "component": ["api"] * 4,
    ...                   "status": ["degraded", "healthy", "degraded", "unhealthy"]})
    >>> failure_counters(s)["failures"].to_list()
    [2]
    """
    rows = []
    for (region, comp), g in scores.sort("timestamp").group_by(["region", "component"], maintain_order=True):
        n = 0
        for st in g["status"].to_list():
            n = n + 1 if st in ("degraded", "unhealthy") else 0
        rows.append({"region": region, "component": comp, "failures": n})
    return pl.DataFrame(rows, schema={"region": pl.String, "component": pl.String, "failures": pl.Int64})


@dataclass(frozen=True)
class HealAction:
    """A planned self-heal step for one component in one region (never executed here)."""

    region: str
    component: str
    kind: str  # cache_clear | restart | gc
    title: str
    http: tuple[str, str] | None = None
    argv: tuple[str, ...] | None = None

    @property
    def detail(self) -> str:
        """What it would run."""
        if self.argv:
            return " ".join(self.argv)
        return f"{self.http[0]} {self.http[1]}" if self.http else "manual step"


def heal_plan(components: pl.DataFrame, *, failure_threshold: int = FAILURE_THRESHOLD) -> list[HealAction]:
    """Self-heal actions for components non-healthy for ``failure_threshold`` checks in a row.

    ``components`` has ``region, component, score, status, failures`` (the latest check). Per
    qualifying component: cache clear when 30 <= score < 80, restart of its service when
    score < 50, GC when score < 80 (``health.yaml`` ``self_heal``).

    >>> t = pl.DataFrame({"region": ["eu"], "component": ["network"], "score": [0.0],
    ...                   "status": ["unhealthy"], "failures": [5]})
    >>> [a.kind for a in heal_plan(t)]
    ['restart', 'gc']
    """
    if not isinstance(failure_threshold, int) or failure_threshold < 1:
        raise ParameterError(f"failure_threshold={failure_threshold!r}; give a positive integer")
    out: list[HealAction] = []
    cc, rs, gc = _HEAL["cache_clear"], _HEAL["restart"], _HEAL["gc"]
    for r in components.sort("region", "component").iter_rows(named=True):
        score = r["score"]
        if score is None or r["status"] not in ("degraded", "unhealthy") or r["failures"] < failure_threshold:
            continue
        c, reg = r["component"], r["region"]
        svc = COMPONENTS[c].service
        where = f"{c} in {reg} (score {score:g}, {r['failures']} non-healthy checks in a row)"
        if cc["min_score"] <= score < cc["below"]:
            out.append(HealAction(reg, c, "cache_clear", f"Clear the {c} cache: {where}",
                                  http=("POST", f"/cache/{c}/clear")))
        if score < rs["below"]:
            out.append(HealAction(reg, c, "restart", f"Restart {svc}, wait {rs['wait_s']:g} s: {where}",
                                  argv=("systemctl", "restart", svc)))
        if score < gc["below"]:
            out.append(HealAction(reg, c, "gc", f"Trigger GC of {c}: {where}", http=("POST", f"/gc/{c}")))
    return out


def heal_runner(heal: HealAction, *, api_base: str, timeout: float = 10.0) -> Callable[[], str] | None:
    """The callable executing ``heal`` (for a dry-run-by-default ``action``); ``None`` if manual."""
    step = rollback.RollbackStep(0, heal.title, 0, commands=(heal.argv,) if heal.argv else (), http=heal.http)
    return rollback.step_runner(step, api_base=api_base, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# the whole check
# ---------------------------------------------------------------------------------------------


@dataclass
class HealthReport:
    """Everything the health-check runbook shows."""

    at: datetime
    inputs: pl.DataFrame          # telemetry inputs over the history, per region
    scores: pl.DataFrame          # score per timestamp, region, component
    checks: pl.DataFrame          # every check at `at`: region, component, check, input, value, result, deduction
    components: pl.DataFrame      # region, component, score, status, checked, failures, deductions (at `at`)
    overall: pl.DataFrame         # region, overall, original_formula, original_mean, scored
    heal: list[HealAction]
    not_checked: pl.DataFrame     # inputs without data: input, used_by, source
    level: str
    label: str
    reasons: list[str]
    summary: str
    params: dict[str, Any] = field(default_factory=dict)

    def heatmap_frame(self) -> pl.DataFrame:
        """``region, component, score, label`` for a heat-map; ``label`` is the rounded score or
        ``n/c`` (not checked: no score, drawn blank)."""
        return self.components.select("region", "component", "score").with_columns(
            pl.when(pl.col("score").is_null()).then(pl.lit("n/c"))
            .otherwise(pl.col("score").round(0).cast(pl.Int64).cast(pl.String)).alias("label"))


def _check_rows(inputs_at: pl.DataFrame, observed: Mapping[str, float]) -> pl.DataFrame:
    rows = []
    for r in inputs_at.iter_rows(named=True):
        values = {**r, **observed}
        for comp in COMPONENTS.values():
            for ch in comp.checks:
                x = values.get(ch.input)
                if _missing(x):
                    result, pts = "not checked", None
                else:
                    result, pts = "pass", 0.0
                    for rule in ch.rules:
                        if rule.matches(float(x)):
                            d, cap = rule.effect(float(x))
                            result, pts = ("fail: score -> %g" % cap, None) if cap is not None else (f"fail: -{d:g}", d)
                            break
                rows.append({"region": r["region"], "component": comp.name, "check": ch.text, "input": ch.input,
                             "value": None if _missing(x) else float(x), "result": result, "deduction": pts})
    return pl.DataFrame(rows, schema={"region": pl.String, "component": pl.String, "check": pl.String,
                                      "input": pl.String, "value": pl.Float64, "result": pl.String,
                                      "deduction": pl.Float64})


def evaluate(
    frame: pl.DataFrame,
    *,
    at: datetime | str = "end",
    history_minutes: int = 30,
    step: str = "1m",
    window: str = "5m",
    expected_peers: int = _EXPECTED_PEERS,
    failure_threshold: int = FAILURE_THRESHOLD,
    observed: Mapping[str, float] | None = None,
    region: str | None = None,
) -> HealthReport:
    """Run the RB-03 health check at ``at`` on every region (or ``region``).

    Inputs come from the telemetry (:func:`telemetry_inputs`) every ``step`` over
    ``history_minutes`` before ``at`` (for the failure counters); ``observed`` adds measurements
    the telemetry lacks (e.g. ``{"disk_used_pct": 72}``, applied to every region).

    Verdict: ACT if any scored component is unhealthy, WARN if any is degraded, else OK; never
    OK on nothing (DataError when no component could be scored).

    Example
    -------
    >>> from dwcpkit.telemetry.sources import load
    >>> r = evaluate(load("sample"), at="2026-11-02T03:15:00Z")   # doctest: +SKIP
    >>> r.level, r.label                                          # doctest: +SKIP
    ('ACT', 'unhealthy')
    """
    if not isinstance(history_minutes, int) or isinstance(history_minutes, bool) or history_minutes < 0:
        raise ParameterError(f"history_minutes={history_minutes!r}; give a non-negative integer")
    observed = dict(observed or {})
    for k, v in observed.items():
        if k not in INPUTS:
            raise ParameterError(f"observed input {k!r} is unknown; inputs: {', '.join(INPUTS)}")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise ParameterError(f"observed {k}={v!r} must be a finite number")
    if frame.height == 0:
        raise DataError("no telemetry in the window: nothing to check (an empty source is not a healthy one)")
    t_at = frame["timestamp"].max() if at in ("end", "now", "", None) else _utc(at, "at")
    margin = timedelta(milliseconds=slo.parse_duration(window)) + timedelta(minutes=10)
    frame = frame.filter(pl.col("timestamp").is_between(t_at - timedelta(minutes=history_minutes) - margin, t_at))
    inputs = telemetry_inputs(frame, t_at - timedelta(minutes=history_minutes), t_at, step=step, window=window,
                              expected_peers=expected_peers)
    if region is not None:
        if region not in inputs["region"].unique().to_list():
            seen = ", ".join(inputs["region"].unique().sort())
            raise DataError(f"region {region!r} is not in the data; regions: {seen}")
        inputs = inputs.filter(pl.col("region") == region)
    if inputs.height == 0:
        raise DataError(f"no region has samples before {t_at:%Y-%m-%d %H:%M} UTC: nothing was measured, which is not "
                        "'healthy'. Check the source, the time and the metric names")
    scores = _score_rows(inputs, observed)
    now = scores.filter(pl.col("timestamp") == scores["timestamp"].max())
    counters = failure_counters(scores)
    comps = now.join(counters, on=["region", "component"], how="left").select(
        "region", "component", "score", "status", pl.format("{}/{}", "checked", "total").alias("checked"),
        "failures", "deductions")
    inputs_at = inputs.filter(pl.col("timestamp") == inputs["timestamp"].max())
    checks = _check_rows(inputs_at, observed)
    if comps.filter(pl.col("score").is_not_null()).height == 0:
        raise DataError(f"no health check had data at {t_at:%Y-%m-%d %H:%M} UTC: nothing was measured, which is not "
                        "'healthy'. Check the source, the time and the metric names")
    ov_rows = []
    for reg, g in comps.group_by("region", maintain_order=True):
        sc = dict(zip(g["component"].to_list(), g["score"].to_list()))
        orig = [sc.get(c) for c in ORIGINAL_COMPONENTS]
        ov_rows.append({"region": reg[0], "overall": overall(sc), "status": status_for(overall(sc)),
                        "original_formula": original_overall(sc),
                        "original_mean": sum(100.0 if _missing(v) else v for v in orig) / len(orig),
                        "scored": f"{sum(not _missing(v) for v in sc.values())}/{len(sc)}"})
    ov = pl.DataFrame(ov_rows, schema={"region": pl.String, "overall": pl.Float64, "status": pl.String,
                                       "original_formula": pl.Float64, "original_mean": pl.Float64,
                                       "scored": pl.String}).sort("region")
    heal = heal_plan(comps, failure_threshold=failure_threshold)
    nc = checks.filter(pl.col("result") == "not checked").group_by("input").agg(
        pl.col("component").unique().sort().str.join(", ").alias("used_by")).sort("input")
    nc = nc.with_columns(pl.col("input").map_elements(
        lambda i: INPUTS[i].get("note") or ("no source in the telemetry" if not INPUTS[i].get("from")
                                            else "no samples in the window"), return_dtype=pl.String).alias("why"))

    bad = comps.filter(pl.col("status").is_in(["unhealthy", "degraded"])).sort("score", "region", "component")
    level = "ACT" if (bad["status"] == "unhealthy").any() else ("WARN" if bad.height else "OK")
    label = {"ACT": "unhealthy", "WARN": "degraded", "OK": "healthy"}[level]
    reasons = [f"{r['region']} {r['component']} {r['score']:g} ({r['status']}): {r['deductions']}"
               for r in bad.iter_rows(named=True)]
    scored_line = "; ".join(
        f"{r['region']} {r['overall']:.1f} (the original script: {r['original_formula']:.1f} = "
        f"{r['original_mean']:.1f} + {100 / len(ORIGINAL_COMPONENTS):g}, unchecked counted as 100)"
        for r in ov.iter_rows(named=True))
    reasons.append(f"overall = mean of the scored components: {scored_line}")
    unscored = comps.filter(pl.col("score").is_null())["component"].unique().sort().to_list()
    if unscored:
        reasons.append(f"not checked (no data, not scored): {', '.join(unscored)}")
    partial = comps.filter(pl.col("score").is_not_null()).select("component", "checked").unique().sort("component")
    partial = [f"{r['component']} {r['checked']}" for r in partial.iter_rows(named=True)
               if r["checked"].split("/")[0] != r["checked"].split("/")[1]]
    if partial:
        reasons.append(f"partly checked: {', '.join(partial)} checks had data")
    if heal:
        reasons.append(f"self-heal planned (dry run): {len(heal)} action(s) for "
                       f"{', '.join(sorted({f'{h.component}@{h.region}' for h in heal}))}")
    worst = bad.row(0, named=True) if bad.height else None
    summary = (f"{worst['component']} in {worst['region']} {worst['status']} ({worst['score']:g})" if worst
               else "every scored component healthy") + f" at {t_at:%Y-%m-%d %H:%M} UTC"
    return HealthReport(t_at, inputs, scores, checks, comps, ov, heal, nc, level, label, reasons, summary,
                        {"history_minutes": history_minutes, "step": step, "window": window,
                         "expected_peers": expected_peers, "failure_threshold": failure_threshold})
