"""Per-alert playbooks (RB-05): what fired, the evidence around it, the decision tree, next steps.

The six critical alerts share one structure, so one set of functions runs all of them; what
differs is data (``playbooks.yaml`` beside this module, loaded into :data:`PLAYBOOKS`):

``condition``
    ``signal <op> threshold`` held for ``for`` — Prometheus' pending → firing rule: a series is
    *pending* from the first evaluation at which the condition holds and *firing* once it has held
    for ``for`` at every evaluation since (a missing or failing evaluation resets it).
    :func:`evaluate_condition` replays it over the window before ``at``.
``evidence``
    signals charted around the alert (:data:`SIGNALS`: per-region series computed with
    :mod:`dwcpkit.sre.slo`, PromQL semantics) and evidence tables (:data:`TABLES`).
``tree``
    an ordered decision tree over *facts* (:data:`FACTS`, booleans with a human detail, computed
    at ``at`` for the regions that fire); the first branch whose facts all hold decides the
    verdict level, the next playbook and the steps.
``steps``
    checks (never change a system) and actions (``changes: true``: a runbook records them as
    dry-run actions through :mod:`dwcpkit.runbook.actions`; this module never executes anything).

:func:`run_playbook` ties it together and returns a :class:`PlaybookReport`. The verdict: the
tree's level while the alert fires at ``at``; ``WARN`` when it fired in the window but has
resolved by ``at``; ``OK`` when it never fired.

Example
-------
>>> from dwcpkit.telemetry.sources import load
>>> r = run_playbook(load("sample"), "error-rate", at="2026-11-02T23:10:00Z")   # doctest: +SKIP
>>> r.level, r.label                                                             # doctest: +SKIP
('ACT', 'spread')
"""

from __future__ import annotations

import math
import operator
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import polars as pl

from dwcpkit._yamlio import package_yaml
from dwcpkit.errors import DataError, ParameterError, SchemaError
from dwcpkit.sre import incidents, slo
from dwcpkit.telemetry import schema

__all__ = [
    "Signal",
    "SIGNALS",
    "FACTS",
    "TABLES",
    "Condition",
    "Branch",
    "Step",
    "Playbook",
    "PLAYBOOKS",
    "FACT_THRESHOLDS",
    "SLA",
    "get_playbook",
    "playbook_families",
    "signal_series",
    "evaluate_condition",
    "firing_intervals",
    "choose_branch",
    "PlaybookReport",
    "run_playbook",
    "load_playbook_data",
]

_ERRORS = "dwcp_v3_component_errors_total"
_OPS = "dwcp_v3_component_operations_total"
_LATENCY = "dwcp_v3_migration_latency_seconds"
_THROUGHPUT = "dwcp_v3_throughput_bytes_per_second"
_BYTES = "dwcp_v3_bytes_transferred_total"
_STREAMS = "dwcp_v3_active_streams"
_COMPRESSION = "dwcp_v3_compression_ratio"
_HEALTH = "dwcp_v3_component_health"
_PEERS = "dwcp_v3_peers_connected"
_BYZANTINE = "dwcp_v3_byzantine_detections_total"
_CONSENSUS = "dwcp_v3_consensus_failures_total"
_ROLLOUT = "dwcp_v3_rollout_percentage"
_STALENESS = timedelta(minutes=5)  # Prometheus' lookback delta for instant gauge values
_CONSENSUS_COMPONENTS = ("acp", "ass")


def _data() -> dict[str, Any]:
    return package_yaml("sre/playbooks.yaml")


#: Thresholds of the decision-tree facts (``playbooks.yaml`` ``facts``).
FACT_THRESHOLDS: dict[str, float] = {k: float(v) for k, v in _data()["facts"].items()}
#: Per-region SLA limits of the rollout NO-GO compliance (``playbooks.yaml`` ``sla``).
SLA: dict[str, float] = {k: float(v) for k, v in _data()["sla"].items()}


# ---------------------------------------------------------------------------------------------
# signals: per-region series on an evaluation grid
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    frame: pl.DataFrame
    grid: np.ndarray  # epoch ms
    step: str
    window: str
    version: str
    region: str | None

    @property
    def start(self) -> int:
        return int(self.grid[0])

    @property
    def end(self) -> int:
        return int(self.grid[-1])


@dataclass(frozen=True)
class Signal:
    """A chartable series: ``key``, chart ``title`` (unit included), the metric families it reads,
    its label columns, and the function computing it on an evaluation grid."""

    key: str
    title: str
    families: tuple[str, ...]
    labels: tuple[str, ...]
    compute: Callable[[_Ctx], pl.DataFrame] = field(repr=False)


def _select(ctx: _Ctx, metric: str, *, versioned: bool = True) -> pl.DataFrame:
    sel = ctx.frame.filter(pl.col("metric") == metric)
    if versioned and "version" in sel.columns:
        sel = sel.filter(pl.col("version") == ctx.version)
    if ctx.region is not None and "region" in sel.columns:
        sel = sel.filter(pl.col("region") == ctx.region)
    return sel


def _empty(labels: Sequence[str]) -> pl.DataFrame:
    return pl.DataFrame(schema={"timestamp": schema.TIMESTAMP_DTYPE, **{c: pl.String for c in labels},
                                "value": pl.Float64})


def _finish(frame: pl.DataFrame, labels: Sequence[str]) -> pl.DataFrame:
    for c in labels:
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    return frame.select("timestamp", *labels, pl.col("value").cast(pl.Float64)).sort(*labels, "timestamp")


def _rate(ctx: _Ctx, metric: str, by: Sequence[str], scale: float = 1.0, versioned: bool = True) -> pl.DataFrame:
    sel = _select(ctx, metric, versioned=versioned)
    if sel.height == 0:
        return _empty(by)
    r = slo.rate(sel, ctx.window, step=ctx.step, start=ctx.start, end=ctx.end)
    out = slo.sum_by(r, list(by)).with_columns(pl.col("value") * scale)
    return _finish(out, by)


def _gauge(ctx: _Ctx, metric: str, by: Sequence[str], agg: str = "mean", *, versioned: bool = True,
           scale: float = 1.0) -> pl.DataFrame:
    """Instant values on the grid (last sample within 5 min), aggregated by ``by``."""
    sel = _select(ctx, metric, versioned=versioned)
    if sel.height == 0:
        return _empty(by)
    keys = [c for c in schema.label_columns(sel) if sel[c].null_count() < sel.height]
    grid = pl.DataFrame({"timestamp": ctx.grid}).with_columns(pl.col("timestamp").cast(schema.TIMESTAMP_DTYPE))
    series = sel.select(keys).unique()
    left = grid.join(series, how="cross").sort("timestamp") if keys else grid
    right = sel.select("timestamp", *keys, "value").sort("timestamp")
    # both sides are sorted by timestamp, hence within every `by` group too
    joined = left.join_asof(right, on="timestamp", by=keys or None, strategy="backward", tolerance=_STALENESS,
                            check_sortedness=False).drop_nulls("value")
    expr = {"mean": pl.col("value").mean(), "min": pl.col("value").min(), "sum": pl.col("value").sum()}[agg]
    out = joined.group_by("timestamp", *by).agg(expr * scale) if by else joined.group_by("timestamp").agg(expr * scale)
    return _finish(out, by)


def _quantile(ctx: _Ctx, q: float) -> pl.DataFrame:
    sel = _select(ctx, f"{_LATENCY}_bucket")
    if sel.height == 0:
        return _empty(["region"])
    out = slo.latency_quantile(sel, _LATENCY, q, ctx.window, ["region"], step=ctx.step, start=ctx.start, end=ctx.end)
    return _finish(out.filter(pl.col("value").is_not_nan()), ["region"])


def _error_pct(ctx: _Ctx) -> pl.DataFrame:
    errors, ops = _select(ctx, _ERRORS), _select(ctx, _OPS)
    if ops.height == 0:
        return _empty(["region"])
    out = slo.error_ratio(errors, ops, ctx.window, ["region"], step=ctx.step, start=ctx.start, end=ctx.end)
    return _finish(out.filter(pl.col("value").is_finite()).with_columns(pl.col("value") * 100), ["region"])


def _components_down(ctx: _Ctx) -> pl.DataFrame:
    h = _gauge(ctx, _HEALTH, ["component", "region"], "min", versioned=False)
    if h.height == 0:
        return _empty(["region"])
    out = h.group_by("timestamp", "region").agg((pl.col("value") <= 0).sum().cast(pl.Float64).alias("value"))
    return _finish(out, ["region"])


def _avg_over_time(ctx: _Ctx, metric: str) -> pl.DataFrame:
    """``avg(avg_over_time(metric[window]))`` across the selected series, on the grid."""
    sel = _select(ctx, metric)
    if sel.height == 0:
        return _empty([])
    w = slo.parse_duration(ctx.window)
    keys = [c for c in schema.label_columns(sel) if sel[c].null_count() < sel.height]
    per_t: dict[int, list[float]] = {}
    for _, g in (sel.group_by(keys, maintain_order=True) if keys else [((), sel)]):
        g = g.sort("timestamp")
        t = g["timestamp"].dt.epoch("ms").to_numpy()
        c = np.concatenate([[0.0], np.cumsum(g["value"].to_numpy())])
        lo = np.searchsorted(t, ctx.grid - w, side="left")   # [t - w, t], as slo.rate (Prometheus 2.x)
        hi = np.searchsorted(t, ctx.grid, side="right")
        for k in np.flatnonzero(hi > lo):
            per_t.setdefault(int(ctx.grid[k]), []).append((c[hi[k]] - c[lo[k]]) / (hi[k] - lo[k]))
    if not per_t:
        return _empty([])
    out = pl.DataFrame({"timestamp": list(per_t), "value": [sum(v) / len(v) for v in per_t.values()]})
    return _finish(out.with_columns(pl.col("timestamp").cast(schema.TIMESTAMP_DTYPE)), [])


def _fleet_sla_values(ctx: _Ctx) -> dict[str, pl.DataFrame]:
    """The three fleet SLA measurements on the grid (``timestamp``, ``value``): ``p99_s``,
    ``throughput_gbps`` (avg of avg_over_time) and ``error_pct``; absent ones are empty."""
    out = {k: _empty([]) for k in ("p99_s", "throughput_gbps", "error_pct")}
    buckets = _select(ctx, f"{_LATENCY}_bucket")
    if buckets.height:
        p99 = slo.latency_quantile(buckets, _LATENCY, 0.99, ctx.window, step=ctx.step, start=ctx.start, end=ctx.end)
        out["p99_s"] = p99.filter(pl.col("value").is_not_nan()).select("timestamp", "value")
    out["throughput_gbps"] = _avg_over_time(ctx, _THROUGHPUT).with_columns(pl.col("value") * 1e-9)
    errors, ops = _select(ctx, _ERRORS), _select(ctx, _OPS)
    if ops.height:
        er = slo.error_ratio(errors, ops, ctx.window, step=ctx.step, start=ctx.start, end=ctx.end)
        out["error_pct"] = er.filter(pl.col("value").is_finite()).select("timestamp", pl.col("value") * 100)
    return out


def _sla_met(values: Mapping[str, pl.DataFrame]) -> list[pl.DataFrame]:
    return [values["p99_s"].with_columns(pl.col("value") <= SLA["p99_s"]),
            values["throughput_gbps"].with_columns(pl.col("value") >= SLA["throughput_gbps"]),
            values["error_pct"].with_columns(pl.col("value") <= SLA["error_pct"])]


def _sla_compliance(ctx: _Ctx) -> pl.DataFrame:
    """Fleet SLAs met (0-3) / 3, as the rules file's ``dwcp_v3:rollout_slas_met:5m`` / 3. A missing
    SLA counts as not met (no data to show it is met), as that file's ``bool`` comparisons."""
    parts = [p.select("timestamp", pl.col("value").cast(pl.Float64)) for p in _sla_met(_fleet_sla_values(ctx))]
    both = pl.concat(parts, how="vertical")
    if both.height == 0:
        return _empty([])
    return _finish(both.group_by("timestamp").agg(pl.col("value").sum() / 3.0), [])


def _sig(key: str, title: str, families: Sequence[str], labels: Sequence[str],
         fn: Callable[[_Ctx], pl.DataFrame]) -> Signal:
    return Signal(key, title, tuple(families), tuple(labels), fn)


_R = ("region",)
#: Every signal a playbook can use as its condition or evidence, by key.
SIGNALS: dict[str, Signal] = {s.key: s for s in (
    _sig("p99_latency_s", "P99 migration latency, 5 min (s)", [f"{_LATENCY}_bucket"], _R, lambda c: _quantile(c, 0.99)),
    _sig("p50_latency_s", "Median migration latency, 5 min (s)", [f"{_LATENCY}_bucket"], _R,
         lambda c: _quantile(c, 0.5)),
    _sig("error_pct", "Error ratio, 5 min (%)", [_ERRORS, _OPS], _R, _error_pct),
    _sig("throughput_gbps", "Throughput (GB/s)", [_THROUGHPUT], _R, lambda c: _gauge(c, _THROUGHPUT, _R, scale=1e-9)),
    _sig("bytes_gbps", "Bytes sent, 5-min rate (GB/s)", [_BYTES], _R, lambda c: _rate(c, _BYTES, _R, 1e-9)),
    _sig("active_streams", "Active AMST streams", [_STREAMS], _R, lambda c: _gauge(c, _STREAMS, _R, "sum")),
    _sig("compression_ratio", "HDE compression ratio", [_COMPRESSION], _R, lambda c: _gauge(c, _COMPRESSION, _R)),
    _sig("peers", "Reachable consensus peers", [_PEERS], _R, lambda c: _gauge(c, _PEERS, _R, "min", versioned=False)),
    _sig("component_health", "Component health (1 up, 0 down)", [_HEALTH], ("component", "region"),
         lambda c: _gauge(c, _HEALTH, ["component", "region"], "min", versioned=False)),
    _sig("components_down", "Components down", [_HEALTH], _R, _components_down),
    _sig("consensus_failures_per_min", "Failed consensus rounds per minute, 5 min", [_CONSENSUS], _R,
         lambda c: _rate(c, _CONSENSUS, _R, 60.0, versioned=False)),
    _sig("byzantine_per_min", "Byzantine detections per minute, 5 min", [_BYZANTINE], _R,
         lambda c: _rate(c, _BYZANTINE, _R, 60.0, versioned=False)),
    _sig("sla_compliance", "Fleet SLAs met (of 3) / 3", [f"{_LATENCY}_bucket", _THROUGHPUT, _ERRORS, _OPS],
         (), _sla_compliance),
    _sig("rollout_pct", "v3 rollout (%)", [_ROLLOUT], (), lambda c: _gauge(c, _ROLLOUT, [], versioned=False)),
)}


def _grid(at: datetime, span: timedelta, step: str) -> np.ndarray:
    step_ms = slo.parse_duration(step)
    n = int(span.total_seconds() * 1000) // step_ms
    end = int(at.timestamp() * 1000)
    return end - step_ms * np.arange(n, -1, -1, dtype=np.int64)


def signal_series(frame: pl.DataFrame, key: str, start: datetime | str, end: datetime | str, *, step: str = "1m",
                  window: str = "5m", version: str = "v3", region: str | None = None) -> pl.DataFrame:
    """The signal ``key`` on the grid ``end - k * step`` back to ``start`` (``end`` always on the grid).

    Columns ``timestamp``, the signal's labels (usually ``region``), ``value``. Version-labelled
    families are filtered to ``version``; ``region`` (``None``: all) restricts the series.

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> f = from_rows([(t * 60_000, "dwcp_v3_peers_connected", 7.0 if t < 5 else 3.0, {"region": "eu"})
    ...                for t in range(10)])
    >>> signal_series(f, "peers", 0, 540_000, step="3m")["value"].to_list()
    [7.0, 7.0, 3.0, 3.0]
    """
    if key not in SIGNALS:
        raise ParameterError(f"unknown signal {key!r}; known: {', '.join(SIGNALS)}")
    t0 = _as_utc(start, "start")
    t1 = _as_utc(end, "end")
    if t1 < t0:
        raise ParameterError(f"end ({t1}) is before start ({t0})")
    ctx = _Ctx(schema.normalize(frame, source="signal_series"), _grid(t1, t1 - t0, step), step, window, version, region)
    return SIGNALS[key].compute(ctx)


def _as_utc(value: datetime | str | int, name: str) -> datetime:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ParameterError(f"{name}={value!r} is not an ISO-8601 time; use e.g. '2026-11-02T23:10:00Z'") from None
    if not isinstance(value, datetime):
        raise ParameterError(f"{name}={value!r} must be an aware datetime, an ISO-8601 string or epoch ms")
    if value.tzinfo is None:
        raise ParameterError(f"{name}={value!r} has no time zone; telemetry time is UTC "
                             "(add 'Z' or tzinfo=timezone.utc)")
    return value.astimezone(timezone.utc)


# ---------------------------------------------------------------------------------------------
# alert conditions: pending -> firing
# ---------------------------------------------------------------------------------------------

_OPS_FN: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}


@dataclass(frozen=True)
class Condition:
    """An alert condition: ``signal <op> threshold`` held for ``for_s`` seconds."""

    signal: str
    op: str
    threshold: float
    for_s: float
    original: str = ""
    promql: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.signal not in SIGNALS:
            raise ParameterError(f"condition signal {self.signal!r} is not one of {', '.join(SIGNALS)}")
        if self.op not in _OPS_FN:
            raise ParameterError(f"condition op {self.op!r} is not one of {', '.join(_OPS_FN)}")
        if not isinstance(self.threshold, (int, float)) or not math.isfinite(self.threshold):
            raise ParameterError(f"condition threshold {self.threshold!r} must be a finite number")
        if self.for_s < 0:
            raise ParameterError(f"condition for={self.for_s!r} s must be >= 0")

    @property
    def promql_text(self) -> str:
        """:attr:`promql` with ``{threshold}`` filled in."""
        return self.promql.replace("{threshold}", f"{self.threshold:g}")

    @property
    def text(self) -> str:
        """The condition in words, e.g. ``p99_latency_s > 5 for 2m``."""
        return f"{self.signal} {self.op} {self.threshold:g} for {_fmt_s(self.for_s)}"


def _fmt_s(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}m" if s and s % 60 == 0 else f"{s}s"


def evaluate_condition(series: pl.DataFrame, op: str, threshold: float, for_s: float, *,
                       step: str = "1m") -> pl.DataFrame:
    """Replay an alert rule over ``series`` (``timestamp``, label columns, ``value``).

    Per series (label combination), in time order: ``active`` is ``value <op> threshold`` (NaN is
    never active); ``active_since`` is the first evaluation of the current unbroken run of active
    evaluations (a gap of more than ``step`` between evaluations breaks the run, as an absent
    series resolves an alert); ``state`` is ``firing`` once ``timestamp - active_since >= for``,
    ``pending`` before, ``inactive`` otherwise. Returns the series with ``active``,
    ``active_since``, ``state``.

    Example
    -------
    >>> import polars as pl
    >>> s = pl.DataFrame({"timestamp": [0, 60_000, 120_000, 180_000], "value": [2.0, 2.0, 2.0, 0.0]})
    >>> evaluate_condition(s, ">", 1.0, 60)["state"].to_list()
    ['pending', 'firing', 'firing', 'inactive']
    """
    if op not in _OPS_FN:
        raise ParameterError(f"op {op!r} is not one of {', '.join(_OPS_FN)}")
    if for_s < 0:
        raise ParameterError(f"for={for_s!r} s must be >= 0")
    step_ms = slo.parse_duration(step)
    if "timestamp" not in series.columns or "value" not in series.columns:
        raise SchemaError("evaluate_condition: the series needs 'timestamp' and 'value' columns")
    labels = [c for c in series.columns if c not in ("timestamp", "value")]
    ts = pl.col("timestamp")
    ms = ts.dt.epoch("ms") if isinstance(series.schema["timestamp"], pl.Datetime) else ts.cast(pl.Int64)
    over = labels or None
    active = _OPS_FN[op](pl.col("value"), float(threshold)).fill_null(False) & pl.col("value").is_not_nan()
    out = series.sort(*labels, "timestamp").with_columns(active.alias("active"), ms.alias("_ms"))
    gap = (pl.col("_ms").diff().over(over) if over else pl.col("_ms").diff()).fill_null(step_ms + 1) > step_ms
    prev_active = (pl.col("active").shift(1).over(over) if over else pl.col("active").shift(1)).fill_null(False)
    new_run = pl.col("active") & (gap | ~prev_active)
    out = out.with_columns(new_run.alias("_new"))
    run = (pl.col("_new").cast(pl.Int64).cum_sum().over(over) if over else pl.col("_new").cast(pl.Int64).cum_sum())
    out = out.with_columns(run.alias("_run"))
    keys = [*labels, "_run"]
    since = pl.when(pl.col("active")).then(pl.col("timestamp").filter(pl.col("active")).min().over(keys))
    since_ms = pl.when(pl.col("active")).then(pl.col("_ms").filter(pl.col("active")).min().over(keys))
    out = out.with_columns(since.alias("active_since"), since_ms.alias("_since_ms"))
    state = (pl.when(~pl.col("active")).then(pl.lit("inactive"))
             .when(pl.col("_ms") - pl.col("_since_ms") >= int(round(for_s * 1000))).then(pl.lit("firing"))
             .otherwise(pl.lit("pending")))
    return out.with_columns(state.alias("state")).drop("_ms", "_new", "_run", "_since_ms")


def firing_intervals(evaluations: pl.DataFrame, *, worst: str = "max") -> pl.DataFrame:
    """One row per firing episode of :func:`evaluate_condition` output.

    Columns: the label columns, ``pending_since``, ``start`` (first firing evaluation), ``end``
    (last firing evaluation), ``evaluations`` (firing ones), ``peak`` (``worst`` = ``max`` or
    ``min`` of the value while firing). Sorted by ``start``.
    """
    labels = [c for c in evaluations.columns if c not in ("timestamp", "value", "active", "active_since", "state")]
    firing = evaluations.filter(pl.col("state") == "firing")
    peak = pl.col("value").max() if worst == "max" else pl.col("value").min()
    tdt = evaluations.schema.get("timestamp", pl.Int64)
    cols = {**{c: pl.String for c in labels}, "pending_since": tdt, "start": tdt, "end": tdt,
            "evaluations": pl.UInt32, "peak": pl.Float64}
    if firing.height == 0:
        return pl.DataFrame(schema=cols)
    out = firing.group_by(*labels, "active_since").agg(
        pl.col("timestamp").min().alias("start"), pl.col("timestamp").max().alias("end"),
        pl.len().alias("evaluations"), peak.alias("peak"))
    return out.rename({"active_since": "pending_since"}).select(list(cols)).sort("start", *labels)


# ---------------------------------------------------------------------------------------------
# facts and decision trees
# ---------------------------------------------------------------------------------------------


@dataclass
class _FactCtx:
    at: datetime
    focus: list[str]          # regions the tree looks at
    all_regions: list[str]
    firing_regions: list[str]
    get: Callable[[str], pl.DataFrame]   # signal at the context grid, cached
    frame: pl.DataFrame
    sctx: _Ctx
    recent_deploy: bool
    hotfix_minutes: int
    th: Mapping[str, float]


def _now(ctx: _FactCtx, key: str, regions: Sequence[str] | None = None) -> pl.DataFrame:
    s = ctx.get(key)
    s = s.filter(pl.col("timestamp") == ctx.at)
    if regions is not None and "region" in s.columns:
        s = s.filter(pl.col("region").is_in(list(regions)))
    return s


def _fmt_region_values(df: pl.DataFrame, fmt: str) -> str:
    return ", ".join(f"{r['region']} {format(r['value'], fmt)}" for r in df.sort("region").iter_rows(named=True))


def _f_component_down(ctx: _FactCtx) -> tuple[bool, str]:
    h = _now(ctx, "component_health", ctx.focus).filter(pl.col("value") <= 0).sort("region", "component")
    names = [f"{r['component']}@{r['region']}" for r in h.iter_rows(named=True)]
    return bool(names), ", ".join(names) if names else "all components up"


def _f_consensus_down(ctx: _FactCtx) -> tuple[bool, str]:
    h = _now(ctx, "component_health", ctx.focus).filter(
        (pl.col("value") <= 0) & pl.col("component").is_in(list(_CONSENSUS_COMPONENTS))).sort("region", "component")
    names = [f"{r['component']}@{r['region']}" for r in h.iter_rows(named=True)]
    return bool(names), ", ".join(names) if names else "acp and ass up"


def _below(ctx: _FactCtx, key: str, limit: float, fmt: str, unit: str, above: bool = False) -> tuple[bool, str]:
    s = _now(ctx, key, ctx.focus)
    if s.height == 0:
        return False, "no data"
    hit = s.filter(pl.col("value") > limit) if above else s.filter(pl.col("value") < limit)
    word = ">" if above else "<"
    text = _fmt_region_values(s, fmt) + f" {unit}; {word} {limit:g} {unit} counts"
    return hit.height > 0, text


def _f_throughput_low(ctx: _FactCtx) -> tuple[bool, str]:
    return _below(ctx, "throughput_gbps", ctx.th["low_throughput_gbps"], ".2f", "GB/s")


def _f_latency_body(ctx: _FactCtx) -> tuple[bool, str]:
    ok, text = _below(ctx, "p50_latency_s", ctx.th["slow_median_s"], ".2f", "s", above=True)
    return ok, "median " + text


def _f_peers_low(ctx: _FactCtx) -> tuple[bool, str]:
    return _below(ctx, "peers", ctx.th["expected_peers"], "g", "peers")


def _f_quorum_lost(ctx: _FactCtx) -> tuple[bool, str]:
    majority = math.floor(ctx.th["expected_peers"] / 2) + 1
    ok, text = _below(ctx, "peers", majority, "g", "peers")
    return ok, f"{text} (majority of {ctx.th['expected_peers']:g})"


def _f_byzantine(ctx: _FactCtx) -> tuple[bool, str]:
    nodes = _byzantine_table(ctx.frame, ctx.at, ctx.focus)
    hit = nodes.filter(pl.col("detections") > 0)
    if hit.height == 0:
        return False, "no Byzantine detections in 10 min"
    return True, ", ".join(f"node {r['node_id']} ({r['detections']:.0f} in 10 min)" for r in hit.iter_rows(named=True))


def _f_fleet_wide(ctx: _FactCtx) -> tuple[bool, str]:
    n, total = len(ctx.firing_regions), len(ctx.all_regions)
    wide = total > 1 and n == total
    return wide, f"firing in {n} of {total} regions" + (f" ({', '.join(ctx.firing_regions)})" if n else "")


def _f_recent_change(ctx: _FactCtx) -> tuple[bool, str]:
    lookback = timedelta(minutes=ctx.th["change_lookback_min"])
    changes = _rollout_changes(ctx.frame, ctx.at - lookback, ctx.at)
    parts = []
    if changes.height:
        parts += [f"rollout {r['from']:g} -> {r['to']:g} % at {r['timestamp']:%H:%M}"
                  for r in changes.iter_rows(named=True)]
    if ctx.recent_deploy:
        parts.append("deployment reported by the operator (recent_deploy)")
    return bool(parts), "; ".join(parts) if parts else f"no rollout change or reported deployment in {lookback}"


def _f_error_concentrated(ctx: _FactCtx) -> tuple[bool, str]:
    t = _errors_table(ctx.frame, ctx.at, ctx.focus)
    t = t.filter(pl.col("operations") > 0)
    if t.height < 2:
        return False, "not enough components with traffic"
    per = t.group_by("component").agg(pl.col("errors").sum(), pl.col("operations").sum()).with_columns(
        (100 * pl.col("errors") / pl.col("operations")).alias("pct")).sort("pct", "component", descending=[True, False])
    top = per.row(0, named=True)
    rest = per["pct"][1:].median() or 0.0
    factor, floor = ctx.th["concentration"], ctx.th["high_error_pct"]
    hit = top["pct"] > floor and top["pct"] >= factor * rest
    return bool(hit), (f"{top['component']} {top['pct']:.2f} % vs the others' median {rest:.2f} %; concentrated "
                       f"needs > {floor:g} % and >= {factor:g}x")


def _f_hotfix(ctx: _FactCtx) -> tuple[bool, str]:
    lim = ctx.th["hotfix_max_min"]
    if ctx.hotfix_minutes <= 0:
        return False, "no known low-risk fix: hotfix_minutes = 0"
    return ctx.hotfix_minutes <= lim, f"fix ready in {ctx.hotfix_minutes} min; hotfix if <= {lim:g} min"


def _f_cause(ctx: _FactCtx) -> tuple[bool, str]:
    found = []
    causes = ("component_down", "throughput_low", "peers_low", "byzantine", "error_concentrated", "latency_body_high")
    for key in causes:
        ok, _ = FACTS[key][1](ctx)
        if ok:
            found.append(key)
    return bool(found), ", ".join(found) if found else "none of the known causes holds"


#: Decision-tree facts: key -> (description, function(context) -> (holds, detail)).
FACTS: dict[str, tuple[str, Callable[[_FactCtx], tuple[bool, str]]]] = {
    "component_down": ("a protocol component's health is 0 in a firing region", _f_component_down),
    "consensus_component_down": ("acp or ass is down in a firing region", _f_consensus_down),
    "throughput_low": ("v3 throughput below facts.low_throughput_gbps", _f_throughput_low),
    "latency_body_high": ("5-min median migration latency above facts.slow_median_s", _f_latency_body),
    "peers_low": ("fewer reachable peers than facts.expected_peers", _f_peers_low),
    "quorum_lost": ("reachable peers below a majority of facts.expected_peers", _f_quorum_lost),
    "byzantine": ("Byzantine detections in the last 10 min", _f_byzantine),
    "fleet_wide": ("the alert fires in every region", _f_fleet_wide),
    "recent_change": ("rollout change in facts.change_lookback_min, or recent_deploy", _f_recent_change),
    "error_concentrated": ("one component's 10-min error ratio > facts.high_error_pct and >= facts.concentration x "
                           "the others' median", _f_error_concentrated),
    "hotfix_quick": ("a low-risk fix ships within facts.hotfix_max_min (hotfix_minutes)", _f_hotfix),
    "cause_identified": ("one of the known causes holds", _f_cause),
}


# ---------------------------------------------------------------------------------------------
# evidence tables
# ---------------------------------------------------------------------------------------------


def _errors_table(frame: pl.DataFrame, at: datetime, regions: Sequence[str], version: str = "v3") -> pl.DataFrame:
    cols = {"component": pl.String, "error_type": pl.String, "errors": pl.Float64, "operations": pl.Float64}
    sel = frame.filter(pl.col("metric").is_in([_ERRORS, _OPS]))
    if "version" in sel.columns:
        sel = sel.filter(pl.col("version") == version)
    sel = sel.filter(pl.col("region").is_in(list(regions)))
    if sel.filter(pl.col("metric") == _OPS).height == 0:
        return pl.DataFrame(schema=cols)
    inc = slo.increase(sel, "10m", at=at)
    ops = slo.sum_by(inc.filter(pl.col("metric") == _OPS), ["component"]).select(
        "component", pl.col("value").alias("operations"))
    errs = slo.sum_by(inc.filter(pl.col("metric") == _ERRORS), ["component", "error_type"]).select(
        "component", "error_type", pl.col("value").alias("errors"))
    out = ops.join(errs, on="component", how="left").with_columns(pl.col("errors").fill_null(0.0))
    return out.select(list(cols)).sort("component", "error_type", nulls_last=True)


def _byzantine_table(frame: pl.DataFrame, at: datetime, regions: Sequence[str]) -> pl.DataFrame:
    sel = frame.filter(pl.col("metric") == _BYZANTINE)
    cols = {"region": pl.String, "node_id": pl.String, "detections": pl.Float64}
    if sel.height == 0:
        return pl.DataFrame(schema=cols)
    sel = sel.filter(pl.col("region").is_in(list(regions)))
    inc = slo.increase(sel, "10m", at=at) if sel.height else sel
    if inc.height == 0:
        return pl.DataFrame(schema=cols)
    return inc.select("region", "node_id", pl.col("value").alias("detections")).sort("region", "node_id")


def _rollout_changes(frame: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    cols = {"timestamp": schema.TIMESTAMP_DTYPE, "from": pl.Float64, "to": pl.Float64}
    r = frame.filter((pl.col("metric") == _ROLLOUT) & (pl.col("timestamp") <= end)).sort("timestamp")
    if r.height == 0:
        return pl.DataFrame(schema=cols)
    r = r.group_by("timestamp").agg(pl.col("value").max()).sort("timestamp")
    ch = r.with_columns(pl.col("value").shift(1).alias("from")).filter(
        pl.col("from").is_not_null() & (pl.col("from") != pl.col("value")) & (pl.col("timestamp") >= start))
    return ch.select("timestamp", "from", pl.col("value").alias("to"))


def _signals_at(ctx: _FactCtx, keys: Sequence[str]) -> pl.DataFrame:
    rows: dict[str, dict[str, Any]] = {r: {"region": r} for r in ctx.all_regions}
    for key in keys:
        if SIGNALS[key].labels != _R:
            continue
        for r in _now(ctx, key).iter_rows(named=True):
            if r["region"] in rows:
                rows[r["region"]][key] = r["value"]
    schema_ = {"region": pl.String, **{k: pl.Float64 for k in keys if SIGNALS[k].labels == _R}}
    return pl.DataFrame(list(rows.values()), schema=schema_)


def _t_signals_at(ctx: _FactCtx, pb: Playbook) -> pl.DataFrame:
    keys = list(dict.fromkeys([pb.condition.signal, *pb.evidence]))
    keys = [k for k in keys if SIGNALS[k].labels == _R]
    return _signals_at(ctx, keys)


def _t_sla(ctx: _FactCtx, pb: Playbook) -> pl.DataFrame:
    """The three SLAs at ``at``: the fleet (what the alert evaluates), then each region."""
    names = ("p99_s", "throughput_gbps", "error_pct")
    oks = ("latency_ok", "throughput_ok", "error_ok")
    rows = []
    for where in [None, *ctx.all_regions]:
        one = _Ctx(ctx.frame, np.array([int(ctx.at.timestamp() * 1000)]), ctx.sctx.step, ctx.sctx.window,
                   ctx.sctx.version, where if where is not None else ctx.sctx.region)
        vals = _fleet_sla_values(one)
        row: dict[str, Any] = {"scope": where or "fleet"}
        for n, ok, met in zip(names, oks, _sla_met(vals)):
            row[n] = vals[n]["value"][0] if vals[n].height else None
            row[ok] = bool(met["value"][0]) if met.height else False
        row["slas_met"] = sum(row[o] for o in oks)
        rows.append(row)
    return pl.DataFrame(rows, schema={"scope": pl.String, **{n: pl.Float64 for n in names},
                                      **{o: pl.Boolean for o in oks}, "slas_met": pl.Int64})


def _t_down(ctx: _FactCtx, pb: Playbook) -> pl.DataFrame:
    h = ctx.get("component_health")
    down = h.filter(pl.col("value") <= 0)
    if down.height == 0:
        return pl.DataFrame(schema={"component": pl.String, "region": pl.String, "down_since": schema.TIMESTAMP_DTYPE,
                                    "last_down": schema.TIMESTAMP_DTYPE, "down_at_at": pl.Boolean})
    return down.group_by("component", "region").agg(
        pl.col("timestamp").min().alias("down_since"), pl.col("timestamp").max().alias("last_down"),
        (pl.col("timestamp").max() == ctx.at).alias("down_at_at")).sort("down_since", "component", "region")


#: Evidence tables a playbook can list, by key: function(context, playbook) -> frame.
TABLES: dict[str, Callable[[_FactCtx, Any], pl.DataFrame]] = {
    "signals_at": _t_signals_at,
    "errors_by_component": lambda ctx, pb: _errors_table(ctx.frame, ctx.at, ctx.focus).with_columns(
        (100 * pl.col("errors") / pl.col("operations")).alias("error_pct_of_component_ops")),
    "byzantine_nodes": lambda ctx, pb: _byzantine_table(ctx.frame, ctx.at, ctx.all_regions),
    "rollout_changes": lambda ctx, pb: _rollout_changes(ctx.frame, ctx.frame["timestamp"].min(), ctx.at),
    "sla_breakdown": _t_sla,
    "down_components": _t_down,
}


# ---------------------------------------------------------------------------------------------
# playbook data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """A playbook step; ``changes`` steps are recorded as dry-run actions by a runbook."""

    id: str
    text: str
    changes: bool
    argv: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Branch:
    """A decision-tree branch: taken when every fact of ``when`` holds (``!fact``: does not hold)."""

    id: str
    when: tuple[str, ...]
    level: str
    decision: str
    next: str | None
    steps: tuple[str, ...]

    def holds(self, facts: Mapping[str, bool]) -> bool:
        """Whether every condition of ``when`` holds for ``facts``."""
        for cond in self.when:
            neg = cond.startswith("!")
            name = cond[1:] if neg else cond
            if facts[name] == neg:
                return False
        return True


@dataclass(frozen=True)
class Playbook:
    """One alert playbook (an entry of ``playbooks.yaml``)."""

    name: str
    alert: str
    runbook: str
    title: str
    severity: str
    owner: tuple[str, str]
    condition: Condition
    evidence: tuple[str, ...]
    tables: tuple[str, ...]
    investigate: tuple[str, ...]
    first: tuple[str, ...]
    tree: tuple[Branch, ...]
    steps: dict[str, Step]
    close: str

    @property
    def team(self) -> str:
        """The owning team (:func:`dwcpkit.sre.incidents.team_for`)."""
        return incidents.team_for(*self.owner)

    def tree_table(self) -> pl.DataFrame:
        """The decision tree as a table: branch, when, level, decision, next, steps."""
        return pl.DataFrame(
            [{"branch": b.id, "when": " and ".join(b.when) or "(otherwise)", "level": b.level, "decision": b.decision,
              "next": b.next, "steps": ", ".join(b.steps)} for b in self.tree],
            schema={"branch": pl.String, "when": pl.String, "level": pl.String, "decision": pl.String,
                    "next": pl.String, "steps": pl.String}, orient="row")


_LEVELS = ("OK", "WARN", "ACT", "ESCALATE")


def _parse_playbook(name: str, d: Mapping[str, Any]) -> Playbook:
    try:
        c = d["condition"]
        cond = Condition(c["signal"], str(c["op"]), float(c["threshold"]), slo.parse_duration(str(c["for"])) / 1000,
                         c.get("original", ""), c.get("promql", ""), c.get("note", ""))
        steps = {k: Step(k, v["text"], bool(v["changes"]), tuple(v["argv"]) if v.get("argv") else None)
                 for k, v in d["steps"].items()}
        tree = tuple(Branch(b["id"], tuple(b.get("when") or ()), b["level"], b["decision"], b.get("next"),
                            tuple(b.get("steps") or ())) for b in d["tree"])
        pb = Playbook(name, d["alert"], d["runbook"], d["title"], d["severity"],
                      (d["owner"]["component"], d["owner"]["failure_type"]), cond,
                      tuple(d["evidence"]["signals"]), tuple(d["evidence"].get("tables") or ()),
                      tuple(d.get("investigate") or ()), tuple(d.get("first") or ()), tree, steps, d["close"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(f"playbooks.yaml: playbook {name!r} is malformed ({type(exc).__name__}: {exc})") from exc
    _check_playbook(pb)
    return pb


def _check_playbook(pb: Playbook) -> None:
    where = f"playbooks.yaml: playbook {pb.name!r}"
    for key in pb.evidence:
        if key not in SIGNALS:
            raise SchemaError(f"{where}: evidence signal {key!r} is not one of {', '.join(SIGNALS)}")
    for key in pb.tables:
        if key not in TABLES:
            raise SchemaError(f"{where}: evidence table {key!r} is not one of {', '.join(TABLES)}")
    for sid in (*pb.investigate, *pb.first, *(s for b in pb.tree for s in b.steps)):
        if sid not in pb.steps:
            raise SchemaError(f"{where}: step {sid!r} is used but not defined under steps")
    for b in pb.tree:
        if b.level not in _LEVELS:
            raise SchemaError(f"{where}: branch {b.id!r} level {b.level!r} is not one of {_LEVELS}")
        for cond in b.when:
            if cond.lstrip("!") not in FACTS:
                raise SchemaError(f"{where}: branch {b.id!r} uses unknown fact {cond!r}; facts: {', '.join(FACTS)}")
        for fld in string.Formatter().parse(b.decision):
            if fld[1] and fld[1] not in FACTS:
                raise SchemaError(f"{where}: branch {b.id!r} decision names unknown fact {{{fld[1]}}}")
    if not pb.tree or pb.tree[-1].when:
        raise SchemaError(f"{where}: the last branch of the tree must have an empty `when` (the otherwise branch)")
    incidents.get_severity(pb.severity)
    incidents.team_for(*pb.owner)


#: The six critical-alert playbooks by short name (``latency-p99`` ... ``consensus-failure``).
PLAYBOOKS: dict[str, Playbook] = {k: _parse_playbook(k, v) for k, v in _data()["playbooks"].items()}


def get_playbook(name: str) -> Playbook:
    """A playbook by short name (``latency-p99``) or runbook name (``playbook-latency-p99``).

    >>> get_playbook("playbook-error-rate").alert
    'DWCPv3ErrorRateCritical'
    """
    key = name.removeprefix("playbook-")
    if key not in PLAYBOOKS:
        raise ParameterError(f"no playbook {name!r}; playbooks: {', '.join(PLAYBOOKS)}")
    return PLAYBOOKS[key]


def playbook_families(name: str) -> list[str]:
    """Metric families :func:`run_playbook` reads for ``name`` (condition, evidence and facts)."""
    pb = get_playbook(name)
    keys = {pb.condition.signal, *pb.evidence, "component_health", "p50_latency_s", "throughput_gbps", "peers",
            "rollout_pct"}
    fams = {f for k in keys for f in SIGNALS[k].families}
    fams |= {_ERRORS, _OPS, _BYZANTINE}
    return sorted(fams)


def choose_branch(tree: Sequence[Branch], facts: Mapping[str, bool]) -> Branch:
    """The first branch of ``tree`` whose facts hold (the last branch is the otherwise branch).

    >>> pb = get_playbook("consensus-failure")
    >>> facts = dict.fromkeys(FACTS, False) | {"byzantine": True}
    >>> choose_branch(pb.tree, facts).id
    'byzantine'
    """
    missing = sorted({c.lstrip("!") for b in tree for c in b.when} - set(facts))
    if missing:
        raise ParameterError(f"facts missing for the decision tree: {', '.join(missing)}")
    for b in tree:
        if b.holds(facts):
            return b
    raise ParameterError("no branch of the decision tree holds; the last branch must have an empty `when`")


# ---------------------------------------------------------------------------------------------
# running a playbook
# ---------------------------------------------------------------------------------------------


@dataclass
class PlaybookReport:
    """Everything a playbook notebook shows. ``level``/``label``/``reasons``/``summary`` feed the verdict."""

    playbook: Playbook
    condition: Condition
    at: datetime
    window: tuple[datetime, datetime]
    evaluations: pl.DataFrame
    firing: pl.DataFrame
    firing_now: pl.DataFrame
    state: str                    # firing | resolved | quiet
    focus: list[str]
    facts: pl.DataFrame
    branch: Branch | None
    tree: pl.DataFrame
    steps: list[Step]
    level: str
    label: str
    reasons: list[str]
    summary: str
    escalation: pl.DataFrame
    series: dict[str, pl.DataFrame]
    tables: dict[str, pl.DataFrame]
    context: dict[str, str]       # values for step placeholders
    firing_context: pl.DataFrame  # firing episodes over the whole chart span (for shading)

    def step_text(self, step: Step) -> str:
        """The step text with ``{region}``, ``{component}``, ``{node}``, ``{namespace}`` filled in."""
        return step.text.format_map(_Blank(self.context))

    def step_argv(self, step: Step) -> list[str] | None:
        """The step's command with placeholders filled in, or ``None`` for a manual step."""
        return None if step.argv is None else [a.format_map(_Blank(self.context)) for a in step.argv]

    def chart_frame(self, key: str) -> pl.DataFrame:
        """Signal ``key`` ready for a chart: ``timestamp``, ``series`` (region, ``component@region``
        or ``fleet``), ``value``. For a multi-label condition signal only the series that were ever
        active in the window are kept (all of them when none was)."""
        s = self.series[key]
        labels = [c for c in s.columns if c not in ("timestamp", "value")]
        if not labels:
            name = pl.lit("fleet")
        elif labels == ["region"]:
            name = pl.col("region")
        else:
            name = pl.concat_str([pl.col(c) for c in labels], separator="@")
        out = s.with_columns(name.alias("series")).select("timestamp", "series", "value")
        if key == self.condition.signal and len(labels) > 1:
            active = self.evaluations.filter(pl.col("active")).select(name.alias("series"))["series"].unique()
            if active.len():
                out = out.filter(pl.col("series").is_in(active.to_list()))
        return out


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return f"<{key}>"


def load_playbook_data(source: str, name: str, *, at: str = "end", context_hours: float = 3.0) -> pl.DataFrame:
    """Load what :func:`run_playbook` needs for ``name``: its families over ``context_hours`` before ``at``."""
    from dwcpkit.sre.window import load_window

    if not 0 < context_hours <= 48:
        raise ParameterError(f"context_hours={context_hours!r}; give 0 < hours <= 48")
    return load_window(source, playbook_families(name), at=at, lookback=timedelta(hours=context_hours))


def run_playbook(
    frame: pl.DataFrame,
    name: str,
    *,
    at: datetime | str = "end",
    region: str = "all",
    threshold: float | None = None,
    for_minutes: float | None = None,
    window_minutes: int = 60,
    context_hours: float = 3.0,
    step: str = "1m",
    recent_deploy: bool = False,
    hotfix_minutes: int = 0,
    namespace: str = "production",
    version: str = "v3",
) -> PlaybookReport:
    """Run playbook ``name`` at ``at``: evaluate its alert, gather evidence, walk its decision tree.

    Parameters
    ----------
    frame
        Canonical telemetry frame (see :func:`load_playbook_data`).
    name
        ``latency-p99``, ``throughput-low``, ``error-rate``, ``rollout-nogo``, ``component-down``,
        ``consensus-failure`` (or the runbook name ``playbook-...``).
    at
        Evaluation time (``"end"``: the newest sample; aware datetime or ISO-8601 UTC).
    region
        ``"all"`` or one region: restricts the alert's series and the facts.
    threshold, for_minutes
        Override the condition's threshold and ``for`` (``None``: the playbook's).
    window_minutes
        How far before ``at`` the alert is replayed ("what fired").
    context_hours
        Span of the evidence charts (>= the window).
    step
        Evaluation interval of the alert and the charts.
    recent_deploy, hotfix_minutes
        Operator facts: a deployment in the last hour that the data cannot show; minutes until a
        known low-risk fix ships (0: none).
    namespace
        Kubernetes namespace filled into step commands.
    version
        Protocol version whose series are evaluated (v3).

    Raises
    ------
    DataError
        When the window holds no sample of the alert's signal (nothing could be evaluated, which
        is not the same as "not firing").

    Example
    -------
    >>> from dwcpkit.telemetry.sources import load
    >>> r = run_playbook(load("sample"), "consensus-failure", at="2026-11-02T03:15:00Z")  # doctest: +SKIP
    >>> r.state, r.branch.id                                                                 # doctest: +SKIP
    ('firing', 'partition')
    """
    pb = get_playbook(name)
    if not isinstance(frame, pl.DataFrame):
        raise SchemaError(f"run_playbook: expected a canonical telemetry frame (polars), got {type(frame).__name__}")
    if frame.height == 0:
        raise DataError("run_playbook: the frame is empty; load telemetry first (load_playbook_data)")
    if "timestamp" not in frame.columns:
        raise SchemaError("run_playbook: the frame has no 'timestamp' column; pass a canonical telemetry frame")
    if not isinstance(window_minutes, int) or isinstance(window_minutes, bool) or window_minutes < 1:
        raise ParameterError(f"window_minutes={window_minutes!r}; give a positive integer")
    if hotfix_minutes < 0:
        raise ParameterError(f"hotfix_minutes={hotfix_minutes!r}; give 0 (no fix known) or the minutes to ship it")
    t_at = frame["timestamp"].max() if at in ("end", "now", "", None) else _as_utc(at, "at")
    cond = pb.condition
    cond = Condition(cond.signal, cond.op, cond.threshold if threshold is None else float(threshold),
                     cond.for_s if for_minutes is None else float(for_minutes) * 60, cond.original,
                     cond.promql, cond.note)
    context = max(timedelta(hours=context_hours), timedelta(minutes=window_minutes))
    # everything reads at most a 10-min range (or a 5-min gauge lookback) before the first evaluation
    frame = schema.normalize(frame.filter(pl.col("timestamp").is_between(t_at - context - timedelta(minutes=15), t_at)),
                             source="run_playbook")
    regions_all = sorted(frame["region"].drop_nulls().unique().to_list()) if "region" in frame.columns else []
    if region != "all" and region not in regions_all:
        raise DataError(f"region {region!r} is not in the data; regions: {', '.join(regions_all) or 'none'}")
    scope = None if region == "all" else region
    regions = regions_all if scope is None else [scope]
    grid = _grid(t_at, context, step)
    ctx = _Ctx(frame, grid, step, "5m", version, scope)
    cache: dict[str, pl.DataFrame] = {}

    def get(key: str) -> pl.DataFrame:
        if key not in cache:
            cache[key] = SIGNALS[key].compute(ctx)
        return cache[key]

    w_start = t_at - timedelta(minutes=window_minutes)
    cseries = get(cond.signal)
    win = cseries.filter(pl.col("timestamp") >= w_start)
    if win.height == 0:
        fams = ", ".join(SIGNALS[cond.signal].families)
        raise DataError(f"{pb.runbook}: no {cond.signal} values between {w_start:%Y-%m-%d %H:%M} and {t_at:%H:%M} UTC "
                        f"(needs {fams}); pass an `at` inside the data or another source")
    evals = evaluate_condition(cseries, cond.op, cond.threshold, cond.for_s, step=step)
    evals_w = evals.filter(pl.col("timestamp") >= w_start)
    worst = "min" if cond.op in ("<", "<=", "==") else "max"
    firing = firing_intervals(evals_w, worst=worst)
    firing_all = firing_intervals(evals, worst=worst)
    now = evals.filter((pl.col("timestamp") == t_at) & (pl.col("state") == "firing"))
    state = "firing" if now.height else ("resolved" if firing.height else "quiet")
    firing_regions = sorted(set(now["region"].to_list())) if "region" in now.columns else []
    fired_regions = sorted(set(firing["region"].to_list())) if "region" in firing.columns else []
    focus = firing_regions or fired_regions or regions

    fctx = _FactCtx(t_at, focus, regions, firing_regions, get, frame, ctx, recent_deploy, int(hotfix_minutes),
                    FACT_THRESHOLDS)
    facts, details, fact_table = _evaluate_facts(fctx)

    branch = choose_branch(pb.tree, facts) if state == "firing" else None
    tree = pb.tree_table().with_columns(pl.col("branch").eq(branch.id if branch else "").alias("taken"))
    severity = incidents.get_severity(pb.severity)
    if state == "firing":
        started = now["active_since"].min() if "active_since" in now.columns else t_at
        start_fire = firing_all.filter(pl.col("end") == t_at)["start"].min() or t_at
        where = ", ".join(firing_regions) or "fleet"
        step_ids = [*pb.investigate, *pb.first, *branch.steps]
        level, label = branch.level, branch.id
        decision = branch.decision.format_map(_Blank(details))
        reasons = [f"{pb.alert} firing in {where} since {start_fire:%Y-%m-%d %H:%M} UTC (pending since "
                   f"{started:%H:%M}): {cond.text}; now {_fmt_now(now)}",
                   f"decision ({branch.id}): {decision}"]
        if branch.next:
            reasons.append(f"next: open {branch.next}")
        summary = f"{pb.alert} firing in {where}: {branch.id}"
        escalation = incidents.escalation_clock(severity, start_fire, t_at, team=pb.team)
    else:
        step_ids = list(pb.investigate)
        escalation = incidents.escalation_clock(severity, t_at, t_at, team=pb.team).clear()
        if state == "resolved":
            last = firing["end"].max()
            level, label = "WARN", "resolved"
            reasons = [f"{pb.alert} fired {firing.height} time(s) in the {window_minutes} min before "
                       f"{t_at:%Y-%m-%d %H:%M} UTC, last at {last:%H:%M}, and is not firing now ({cond.text})",
                       f"close rule: {pb.close}"]
            summary = f"{pb.alert} resolved (last firing {last:%H:%M} UTC)"
        else:
            level, label = "OK", "not firing"
            reasons = [f"{pb.alert} did not fire in the {window_minutes} min before {t_at:%Y-%m-%d %H:%M} UTC "
                       f"({cond.text})"]
            summary = f"{pb.alert} not firing"
    steps = [pb.steps[s] for s in dict.fromkeys(step_ids)]

    context_values = _placeholders(fctx, namespace)
    series = {k: get(k) for k in dict.fromkeys([cond.signal, *pb.evidence])}
    tables = {k: TABLES[k](fctx, pb) for k in pb.tables}
    return PlaybookReport(pb, cond, t_at, (w_start, t_at), evals_w, firing, now, state, focus, fact_table, branch,
                          tree, steps, level, label, reasons, summary, escalation, series, tables, context_values,
                          firing_all)


def _evaluate_facts(fctx: _FactCtx) -> tuple[dict[str, bool], dict[str, str], pl.DataFrame]:
    facts: dict[str, bool] = {}
    details: dict[str, str] = {}
    rows = []
    for key, (desc, fn) in FACTS.items():
        ok, detail = fn(fctx)
        facts[key], details[key] = ok, detail
        rows.append({"fact": key, "holds": ok, "detail": detail, "meaning": desc})
    table = pl.DataFrame(rows, schema={"fact": pl.String, "holds": pl.Boolean, "detail": pl.String,
                                       "meaning": pl.String}, orient="row")
    return facts, details, table


def _placeholders(fctx: _FactCtx, namespace: str) -> dict[str, str]:
    """Values for step placeholders: the focus regions, the first down component, the most accused node."""
    out = {"region": ", ".join(fctx.focus), "namespace": namespace}
    down = _now(fctx, "component_health", fctx.focus).filter(pl.col("value") <= 0).sort("region", "component")
    if down.height:
        out["component"] = down["component"][0]
    byz = _byzantine_table(fctx.frame, fctx.at, fctx.focus).filter(pl.col("detections") > 0).sort(
        ["detections", "node_id"], descending=[True, False])
    if byz.height:
        out["node"] = byz["node_id"][0]
    return out


def _fmt_now(now: pl.DataFrame) -> str:
    labels = [c for c in now.columns if c not in ("timestamp", "value", "active", "active_since", "state")]
    parts = []
    for r in (now.sort(labels) if labels else now).iter_rows(named=True):
        where = "/".join(str(r[c]) for c in labels if r[c] is not None)
        parts.append(f"{where} {r['value']:.3g}" if where else f"{r['value']:.3g}")
    return ", ".join(parts)
