"""v1 baseline vs v3, measured side by side, with block-bootstrap confidence intervals.

:func:`compare_versions` takes telemetry covering a period in which *both* versions served
traffic (by default the 50 % rollout stage, found from ``dwcp_v3_rollout_percentage``) and
measures, per version:

==================  ======  ==========================================================================
metric              better  definition over the window
==================  ======  ==========================================================================
p50/p95/p99         lower   ``histogram_quantile`` of the migration-latency histogram, all regions
latency (s)                 summed (:func:`dwcpkit.sre.slo.histogram_quantile` on the bucket increases)
error ratio (%)     lower   Σ errors / Σ operations, every component, region and error type
throughput (GB/s)   higher  transfer rate of migrations in progress (the ``throughput_bytes_per_second``
                            gauge), averaged over region-minutes weighted by migrations completed
availability (%)    higher  share of good region-minutes; a region-minute of a version is *bad* when
                            its error ratio is >= ``max_error_ratio`` (default 1 %, the completion
                            report's own success criterion) or when a component handled no
                            operation while the version completed migrations (every migration
                            uses every component, so that component was down)
bandwidth (GB per   lower   Σ bytes sent over the WAN / Σ migrations completed
migration)
==================  ======  ==========================================================================

Per-minute counts come from :func:`dwcpkit.sre.slo.increase` over one-minute windows (``step``),
so counter resets are handled the PromQL way. The availability definition has a known blind
spot: a version that completes nothing in a minute (e.g. its transfer layer is down) is only
caught by its error ratio; without demand data, "no migrations" cannot be told from "no demand".

Confidence intervals: a paired, non-overlapping block bootstrap
-----------------------------------------------------------------
The resampling unit is the *minute* (one slot of per-minute histogram counts, error and
operation counts, bytes, migrations, good/total region-minutes), grouped into contiguous blocks
of ``block_minutes`` (default 30; the last block may be shorter). A replicate draws as many
blocks as the window holds, with replacement, and adds their per-minute totals up; each
statistic is then computed from the replicate's totals exactly as from the data (ratios of
sums, histogram quantiles of summed bucket counts). Blocks keep minute-to-minute dependence
(load swings, a 35-minute incident) inside a replicate instead of pretending minutes are
independent. Both versions use the *same* block draw in a replicate (they served the same
minutes), so the interval of the ratio v3/v1 reflects the pairing. Intervals are percentile
intervals at ``confidence``; point estimates are the full-window values. Everything is
vectorised: replicate totals are one matrix product ``W @ S`` of the (replicates x blocks)
draw-count matrix with the (blocks x values) block sums. Seeded (``numpy.random.default_rng``).
Caveats: the interval covers sampling variation only, not the interpolation inside a histogram
bucket (buckets are coarse above 1 s); with few blocks (< ~20) intervals are too narrow.

Verdict: a metric is ``better`` / ``worse`` when the interval of the ratio v3/v1 lies entirely on
that side of 1, else ``no clear difference``. v3 *meets* v1 on a metric unless it is ``worse``;
the verdict is OK when v3 meets v1 on every metric, else WARN.

Example
-------
>>> from dwcpkit.telemetry.sources import load
>>> frame = load("sample", metrics=list(METRICS), start="2026-11-01T16:00:00Z", end="2026-11-01T19:00:00Z")
>>> c = compare_versions(frame, start="2026-11-01T16:00:00Z", end="2026-11-01T19:00:00Z", n_boot=200)
>>> c.table.filter(metric="p50_latency")["assessment"][0]
'better'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import polars as pl

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import slo
from dwcpkit.telemetry import schema

__all__ = [
    "LATENCY",
    "OPS",
    "ERRORS",
    "BYTES",
    "THROUGHPUT",
    "ROLLOUT",
    "METRICS",
    "MEASURES",
    "Measure",
    "Comparison",
    "stage_window",
    "load_data",
    "bootstrap_weights",
    "block_sums",
    "minute_data",
    "compare_versions",
    "side_by_side",
    "figures",
]

LATENCY = "dwcp_v3_migration_latency_seconds"
OPS = "dwcp_v3_component_operations_total"
ERRORS = "dwcp_v3_component_errors_total"
BYTES = "dwcp_v3_bytes_transferred_total"
THROUGHPUT = "dwcp_v3_throughput_bytes_per_second"
ROLLOUT = "dwcp_v3_rollout_percentage"
#: Metric families a comparison reads.
METRICS: tuple[str, ...] = (LATENCY, OPS, ERRORS, BYTES, THROUGHPUT, ROLLOUT)


@dataclass(frozen=True)
class Measure:
    """One compared metric: key, label, display unit, scale from raw units, and which way is better."""

    key: str
    label: str
    unit: str
    scale: float
    better: str  # "lower" | "higher"


MEASURES: tuple[Measure, ...] = (
    Measure("p50_latency", "P50 migration latency", "s", 1.0, "lower"),
    Measure("p95_latency", "P95 migration latency", "s", 1.0, "lower"),
    Measure("p99_latency", "P99 migration latency", "s", 1.0, "lower"),
    Measure("error_rate", "Error ratio", "%", 100.0, "lower"),
    Measure("throughput", "Throughput (transfer rate)", "GB/s", 1e-9, "higher"),
    Measure("availability", "Availability (good region-minutes)", "%", 100.0, "higher"),
    Measure("bandwidth", "WAN bytes per migration", "GB", 1e-9, "lower"),
)
_QUANTILES = {"p50_latency": 0.5, "p95_latency": 0.95, "p99_latency": 0.99}


# --------------------------------------------------------------------------------------------
# window and data
# --------------------------------------------------------------------------------------------


def _to_dt(value: str | datetime, name: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ParameterError(f"{name}={value!r} is naive; telemetry time is UTC, pass tzinfo=timezone.utc")
        return value.astimezone(timezone.utc)
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ParameterError(f"{name}={value!r} is not an ISO-8601 time such as '2026-11-01T16:00:00Z'") from None
    if dt.tzinfo is None:
        raise ParameterError(f"{name}={value!r} has no UTC offset; add 'Z' (times are UTC)")
    return dt.astimezone(timezone.utc)


def stage_window(frame: pl.DataFrame, stage_percent: float = 50) -> tuple[datetime, datetime]:
    """``[start, end)`` of the rollout stage: first sample of ``dwcp_v3_rollout_percentage == stage_percent``
    to one sample interval after its last.

    >>> from dwcpkit.telemetry.sources import load
    >>> s, e = stage_window(load("sample", metrics=[ROLLOUT]), 50)
    >>> s.isoformat(), e.isoformat()
    ('2026-11-01T16:00:00+00:00', '2026-11-02T08:00:00+00:00')
    """
    g = frame.filter(pl.col("metric") == ROLLOUT).sort("timestamp")
    sel = g.filter(pl.col("value") == float(stage_percent))
    if sel.height == 0:
        seen = sorted(g["value"].unique().to_list())
        raise DataError(f"the data never shows rollout stage {stage_percent} % (metric {ROLLOUT}); stages seen: "
                        f"{seen or 'none'}. Pass start= and end= to compare over an explicit window.")
    ts = g["timestamp"].unique().sort()
    step = ts.diff().drop_nulls().median() if ts.len() > 1 else timedelta(minutes=1)
    return sel["timestamp"].min(), sel["timestamp"].max() + step


def load_data(source: str, start: str | datetime | None = None, end: str | datetime | None = None, *,
              lookback_hours: float = 48.0, step: str = "60s") -> pl.DataFrame:
    """The families a comparison needs (:data:`METRICS`) from any source.

    Files and the sample are read whole (then cut to ``[start − 5 min, end]`` when both are
    given); a Prometheus source is queried for ``[start − 5 min, end]``, by default the
    ``lookback_hours`` before now.
    """
    from dwcpkit.telemetry.sources import load, resolve

    lo = None if start in (None, "") else _to_dt(start, "start") - timedelta(minutes=5)  # type: ignore[arg-type]
    hi = None if end in (None, "") else _to_dt(end, "end")  # type: ignore[arg-type]
    if resolve(source).kind == "prometheus":
        hi = hi or datetime.now(timezone.utc)
        lo = lo or hi - timedelta(hours=lookback_hours)
    return load(source, metrics=list(METRICS), start=lo, end=hi, step=step)


@dataclass(frozen=True)
class _Version:
    """Per-minute arrays of one version (rows = minute slots)."""

    buckets: np.ndarray  # (n, k) cumulative bucket counts
    migrations: np.ndarray
    errors: np.ndarray
    ops: np.ndarray
    bytes: np.ndarray
    tput_num: np.ndarray
    tput_den: np.ndarray
    good: np.ndarray
    slots: np.ndarray

    def columns(self) -> np.ndarray:
        """All per-minute values side by side, (n, k + 8)."""
        rest = np.column_stack([self.migrations, self.errors, self.ops, self.bytes, self.tput_num, self.tput_den,
                                self.good, self.slots])
        return np.hstack([self.buckets, rest])


@dataclass(frozen=True)
class MinuteData:
    """Per-minute data of both versions on one grid, from :func:`minute_data`."""

    minutes: np.ndarray  # epoch ms of each slot's end (the slot is (t − step, t])
    le: tuple[str, ...]
    versions: dict[str, _Version]
    dropped_minutes: int


def _slot_sum(frame: pl.DataFrame, name: str, by: list[str], grid: np.ndarray, step_ms: int) -> pl.DataFrame:
    sel = frame.filter(pl.col("metric") == name)
    if sel.height == 0:
        raise DataError(f"no samples of {name!r} in the window; the comparison needs {', '.join(METRICS)}")
    w = f"{step_ms}ms"
    inc = slo.increase(sel, w, step=w, start=int(grid[0]), end=int(grid[-1]))
    return slo.sum_by(inc, by).with_columns(pl.col("timestamp").dt.epoch("ms").alias("t")).drop("timestamp", "metric")


def _dense(df: pl.DataFrame, grid: np.ndarray, versions: Sequence[str], cols: str | None = None) -> dict[str, np.ndarray]:
    """``{version: (n,) or (n, len(cols values))}`` aligned on ``grid``; missing slots are NaN."""
    out = {}
    g = pl.DataFrame({"t": grid})
    for v in versions:
        part = df.filter(pl.col("version") == v)
        if cols is None:
            out[v] = g.join(part.select("t", "value"), on="t", how="left")["value"].to_numpy().astype(float)
        else:
            wide = part.pivot(on=cols, index="t", values="value")
            out[v] = g.join(wide, on="t", how="left")
    return out


def minute_data(frame: pl.DataFrame, start: datetime, end: datetime, *, versions: Sequence[str] = ("v1", "v3"),
                step: str = "1m", max_error_ratio: float = 0.01) -> MinuteData:
    """Per-minute counts of every version on the slot grid ``start, start + step, ..., end − step``.

    Slot ``t`` is the counter increase from the sample one ``step`` before ``t`` to the sample at
    ``t`` (:func:`dwcpkit.sre.slo.increase` over a ``step`` window), i.e. what the sample at ``t``
    added; gauges are read at ``t``. Minutes in which either version lacks histogram or operation
    data are dropped for both (``dropped_minutes``). See the module doc for the availability rule.
    """
    step_ms = slo.parse_duration(step)
    s_ms, e_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    if e_ms - s_ms < step_ms:
        raise ParameterError(f"window {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} is shorter than one step ({step})")
    grid = np.arange(s_ms, e_ms, step_ms, dtype=np.int64)
    if "version" not in frame.columns:
        raise DataError("the telemetry has no 'version' label: nothing tells v1 from v3 series")
    have = set(frame["version"].drop_nulls().unique().to_list())
    missing = [v for v in versions if v not in have]
    if missing:
        raise DataError(f"no series of version {missing} in the data (versions present: {sorted(have)}); "
                        "pick a window in which both versions served traffic")
    frame = frame.filter(pl.col("version").is_in(list(versions)))

    bk = _slot_sum(frame, f"{LATENCY}_bucket", ["version", "le"], grid, step_ms)
    le_map = {s: float(s) for s in bk["le"].unique().to_list()}
    le = tuple(sorted(le_map, key=le_map.get))  # type: ignore[arg-type]
    if not le or not math.isinf(le_map[le[-1]]):
        raise DataError(f"{LATENCY}_bucket has no +Inf bucket; cannot compute quantiles")
    mig_r = _slot_sum(frame, f"{LATENCY}_count", ["version", "region"], grid, step_ms)
    err_r = _slot_sum(frame, ERRORS, ["version", "region"], grid, step_ms)
    ops_c = _slot_sum(frame, OPS, ["version", "region", "component"], grid, step_ms)
    byt = _slot_sum(frame, BYTES, ["version"], grid, step_ms)

    # region-minute slots: error ratio and idle components (those active for the version/region)
    active = ops_c.group_by("version", "region", "component").agg(pl.col("value").sum()).filter(pl.col("value") > 0)
    slots_grid = pl.DataFrame({"t": grid}).join(active.drop("value"), how="cross")
    ops_full = slots_grid.join(ops_c, on=["t", "version", "region", "component"], how="left")
    per_slot = ops_full.group_by("t", "version", "region").agg(
        pl.col("value").sum().alias("ops"), pl.col("value").fill_null(0.0).min().alias("min_comp"),
        pl.col("value").is_null().all().alias("absent"))
    per_slot = (per_slot.join(err_r.rename({"value": "err"}), on=["t", "version", "region"], how="left")
                .join(mig_r.rename({"value": "mig"}), on=["t", "version", "region"], how="left")
                .with_columns(pl.col("err").fill_null(0.0), pl.col("mig").fill_null(0.0)))
    ratio_bad = pl.when(pl.col("ops") > 0).then(pl.col("err") / pl.col("ops") >= max_error_ratio).otherwise(pl.col("err") > 0)
    idle = (pl.col("min_comp") <= 0) & (pl.col("mig") > 0)
    per_slot = per_slot.filter(~pl.col("absent")).with_columns((~(ratio_bad | idle)).cast(pl.Float64).alias("good"))
    avail = per_slot.group_by("t", "version").agg(pl.col("good").sum(), pl.len().cast(pl.Float64).alias("slots"))

    # throughput gauge, weighted by the region-minute's completed migrations
    gauge = (frame.filter(pl.col("metric") == THROUGHPUT)
             .with_columns(pl.col("timestamp").dt.epoch("ms").alias("t"))
             .select("t", "version", "region", pl.col("value").alias("gauge")))
    tp = (mig_r.rename({"value": "mig"}).join(gauge, on=["t", "version", "region"], how="inner")
          .group_by("t", "version").agg((pl.col("gauge") * pl.col("mig")).sum().alias("num"), pl.col("mig").sum().alias("den")))

    mig = _dense(mig_r.group_by("t", "version").agg(pl.col("value").sum()), grid, versions)
    out: dict[str, _Version] = {}
    ok = np.ones(grid.size, dtype=bool)
    dense_b = _dense(bk, grid, versions, cols="le")
    for v in versions:
        b = dense_b[v]
        buckets = np.column_stack([b[c].to_numpy().astype(float) if c in b.columns else np.full(grid.size, np.nan) for c in le])
        errs = _dense(err_r.group_by("t", "version").agg(pl.col("value").sum()), grid, [v])[v]
        ops = _dense(ops_c.group_by("t", "version").agg(pl.col("value").sum()), grid, [v])[v]
        ok &= np.isfinite(buckets).all(axis=1) & np.isfinite(ops)
        a = _dense(avail.select("t", "version", pl.col("good").alias("value")), grid, [v])[v]
        sl = _dense(avail.select("t", "version", pl.col("slots").alias("value")), grid, [v])[v]
        num = _dense(tp.select("t", "version", pl.col("num").alias("value")), grid, [v])[v]
        den = _dense(tp.select("t", "version", pl.col("den").alias("value")), grid, [v])[v]
        out[v] = _Version(buckets, mig[v], np.nan_to_num(errs), ops, np.nan_to_num(_dense(byt, grid, [v])[v]),
                          np.nan_to_num(num), np.nan_to_num(den), np.nan_to_num(a), np.nan_to_num(sl))
    if not ok.any():
        raise DataError("no minute in the window has histogram and operation data for every version")
    out = {v: _Version(*(np.nan_to_num(getattr(d, f)[ok]) for f in d.__dataclass_fields__)) for v, d in out.items()}
    return MinuteData(grid[ok], le, out, int((~ok).sum()))


# --------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------


def bootstrap_weights(n_blocks: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each block is drawn in each replicate: an ``(n_boot, n_blocks)`` int matrix, rows sum to ``n_blocks``.

    Row ``r`` is ``bincount`` of ``n_blocks`` draws with replacement (seeded ``default_rng``).

    >>> w = bootstrap_weights(4, 3, seed=1)
    >>> w.shape, w.sum(axis=1).tolist()
    ((3, 4), [4, 4, 4])
    """
    if n_blocks < 1 or n_boot < 1:
        raise ParameterError(f"need n_blocks >= 1 and n_boot >= 1 (got {n_blocks}, {n_boot})")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_blocks, size=(n_boot, n_blocks))
    flat = (idx + n_blocks * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n_blocks).reshape(n_boot, n_blocks)


def block_sums(values: np.ndarray, block: int) -> np.ndarray:
    """Sums of consecutive rows of ``values`` in blocks of ``block`` (the last may be shorter).

    >>> block_sums(np.arange(5.0), 2).tolist()
    [1.0, 5.0, 4.0]
    """
    if block < 1:
        raise ParameterError(f"block={block} must be >= 1")
    v = np.asarray(values, dtype=float)
    return np.add.reduceat(v, np.arange(0, v.shape[0], block), axis=0)


def _quantiles(totals: np.ndarray, le: Sequence[str], q: float) -> np.ndarray:
    """``histogram_quantile(q)`` of each row of bucket totals (rows = replicates), via :mod:`slo`."""
    r, k = totals.shape
    buckets = pl.DataFrame({
        "timestamp": pl.Series(np.repeat(np.arange(r, dtype=np.int64), k)).cast(schema.TIMESTAMP_DTYPE),
        "metric": pl.Series(["latency_bucket"] * (r * k), dtype=pl.String),
        "value": totals.ravel(),
        "le": pl.Series(np.tile(np.asarray(le, dtype=object), r), dtype=pl.String),
    })
    res = slo.histogram_quantile(q, buckets).sort("timestamp")
    return res["value"].to_numpy()


def _statistics(totals: np.ndarray, le: Sequence[str]) -> dict[str, np.ndarray]:
    """Every metric (raw units) from rows of summed per-minute columns (layout of ``_Version.columns``)."""
    k = len(le)
    mig, err, ops, byt, num, den, good, slots = (totals[:, k + i] for i in range(8))
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = {key: _quantiles(totals[:, :k], le, q) for key, q in _QUANTILES.items()}
        stats["error_rate"] = np.where(ops > 0, err / ops, np.nan)
        stats["throughput"] = np.where(den > 0, num / den, np.nan)
        stats["availability"] = np.where(slots > 0, good / slots, np.nan)
        stats["bandwidth"] = np.where(mig > 0, byt / mig, np.nan)
    return stats


# --------------------------------------------------------------------------------------------
# the comparison
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare_versions`: the measured table, the window and how it was measured."""

    table: pl.DataFrame
    start: datetime
    end: datetime
    baseline: str
    candidate: str
    minutes: int
    dropped_minutes: int
    blocks: int
    block_minutes: int
    n_boot: int
    confidence: float
    seed: int
    max_error_ratio: float
    migrations: dict[str, float]
    timeline: pl.DataFrame = field(repr=False)
    timeline_minutes: int = 15

    @property
    def method(self) -> str:
        """One paragraph: what was resampled and how."""
        return (f"{self.minutes} one-minute slots from {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC "
                f"({self.dropped_minutes} dropped for missing data), in {self.blocks} blocks of {self.block_minutes} min; "
                f"{self.n_boot} paired block-bootstrap replicates (seed {self.seed}), "
                f"{self.confidence:.0%} percentile intervals.")

    def display(self) -> pl.DataFrame:
        """The table as text: value [low, high] per version, the ratio and the assessment."""
        b, c = self.baseline, self.candidate

        def ci(v: str) -> pl.Expr:
            return pl.format("{} [{}, {}]", *(_fmt(pl.col(x)) for x in (v, f"{v}_lo", f"{v}_hi")))

        return self.table.select(
            pl.col("label").alias("metric"), "unit",
            ci("baseline").alias(f"{b} [{self.confidence:.0%} CI]"),
            ci("candidate").alias(f"{c} [{self.confidence:.0%} CI]"),
            pl.format("×{} [{}, {}]", *(_fmt(pl.col(x)) for x in ("ratio", "ratio_lo", "ratio_hi"))).alias(f"{c} / {b}"),
            "better", "assessment",
        )

    def verdict(self) -> tuple[str, str, list[str]]:
        """``(level, label, reasons)``: OK when the candidate is not worse on any metric, else WARN."""
        worse = self.table.filter(pl.col("assessment") == "worse")
        reasons = []
        for r in self.table.iter_rows(named=True):
            reasons.append(
                f"{r['label']}: {self.candidate} {_num(r['candidate'])} [{_num(r['candidate_lo'])}, {_num(r['candidate_hi'])}] "
                f"vs {self.baseline} {_num(r['baseline'])} [{_num(r['baseline_lo'])}, {_num(r['baseline_hi'])}] {r['unit']}: "
                f"{r['assessment']}")
        if worse.height:
            label = f"{self.candidate} worse on {worse.height} of {self.table.height}"
            reasons = [x for x in reasons if x.endswith(": worse")] + [x for x in reasons if not x.endswith(": worse")]
            return "WARN", label, reasons
        return "OK", f"{self.candidate} meets {self.baseline}", reasons


def _num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.4g}"


def _fmt(col: pl.Expr) -> pl.Expr:
    return col.map_elements(_num, return_dtype=pl.String)


def compare_versions(
    frame: pl.DataFrame,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    *,
    stage_percent: float = 50,
    baseline: str = "v1",
    candidate: str = "v3",
    n_boot: int = 1000,
    block_minutes: int = 30,
    confidence: float = 0.95,
    seed: int = 0,
    max_error_ratio: float = 0.01,
    step: str = "1m",
    timeline_minutes: int = 15,
) -> Comparison:
    """Measure ``baseline`` and ``candidate`` over one window, with paired block-bootstrap intervals.

    Parameters
    ----------
    frame
        Canonical telemetry holding :data:`METRICS` (from :func:`load_data`).
    start, end
        The window (ISO-8601 UTC or aware datetimes). Default: the rollout stage
        ``stage_percent`` (:func:`stage_window`).
    n_boot, block_minutes, confidence, seed
        Bootstrap replicates, block length, interval level and seed (module doc).
    max_error_ratio
        A region-minute with at least this error ratio counts as unavailable.
    step
        Slot length (the sample interval of the data).
    timeline_minutes
        Resolution of :attr:`Comparison.timeline` (P99 latency and error ratio per version).

    Returns
    -------
    Comparison
        ``table`` has one row per :data:`MEASURES` entry: ``metric, label, unit, better, baseline,
        baseline_lo, baseline_hi, candidate, candidate_lo, candidate_hi, ratio, ratio_lo,
        ratio_hi, change_pct, assessment`` (values in the display unit).
    """
    if not isinstance(n_boot, int) or n_boot < 10:
        raise ParameterError(f"n_boot={n_boot!r}: use at least 10 bootstrap replicates (1000 is usual)")
    if not isinstance(block_minutes, int) or block_minutes < 1:
        raise ParameterError(f"block_minutes={block_minutes!r} must be a whole number of minutes >= 1")
    if not 0.5 <= float(confidence) < 1:
        raise ParameterError(f"confidence={confidence!r} must be in [0.5, 1), e.g. 0.95")
    if not 0 < float(max_error_ratio) <= 1:
        raise ParameterError(f"max_error_ratio={max_error_ratio!r} must be a ratio in (0, 1] (0.01 = 1 %)")
    if baseline == candidate:
        raise ParameterError(f"baseline and candidate are both {baseline!r}; compare two different versions")
    frame = schema.normalize(frame, source="compare_versions")
    if start in (None, "") or end in (None, ""):
        s, e = stage_window(frame, stage_percent)
        start = s if start in (None, "") else start
        end = e if end in (None, "") else end
    s, e = _to_dt(start, "start"), _to_dt(end, "end")  # type: ignore[arg-type]
    if e <= s:
        raise ParameterError(f"end {e:%Y-%m-%d %H:%M} is not after start {s:%Y-%m-%d %H:%M}")
    data = minute_data(frame, s, e, versions=(baseline, candidate), step=step, max_error_ratio=max_error_ratio)
    step_min = slo.parse_duration(step) / 60_000
    block = max(1, int(round(block_minutes / step_min)))
    n = data.minutes.size
    n_blocks = math.ceil(n / block)
    if n_blocks < 4:
        raise DataError(f"the window holds {n} minutes = {n_blocks} blocks of {block_minutes} min; the bootstrap "
                        "needs at least 4 blocks (20+ for trustworthy intervals): widen the window or shorten the blocks")
    w = np.vstack([np.ones((1, n_blocks)), bootstrap_weights(n_blocks, n_boot, seed)])
    stats = {v: _statistics(w @ block_sums(d.columns(), block), data.le) for v, d in data.versions.items()}
    alpha = (1 - float(confidence)) / 2
    rows = []
    for m in MEASURES:
        b, c = stats[baseline][m.key], stats[candidate][m.key]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(b != 0, c / b, np.nan)
        lo_b, hi_b = _ci(b[1:], alpha)
        lo_c, hi_c = _ci(c[1:], alpha)
        lo_r, hi_r = _ci(ratio[1:], alpha)
        rows.append({
            "metric": m.key, "label": m.label, "unit": m.unit, "better": m.better,
            "baseline": b[0] * m.scale, "baseline_lo": lo_b * m.scale, "baseline_hi": hi_b * m.scale,
            "candidate": c[0] * m.scale, "candidate_lo": lo_c * m.scale, "candidate_hi": hi_c * m.scale,
            "ratio": ratio[0], "ratio_lo": lo_r, "ratio_hi": hi_r, "change_pct": (ratio[0] - 1) * 100,
            "assessment": _assess(lo_r, hi_r, m.better),
        })
    table = pl.DataFrame(rows)
    timeline = _timeline(data, max(1, int(round(timeline_minutes / step_min))), slo.parse_duration(step))
    return Comparison(table, s, e, baseline, candidate, n, data.dropped_minutes, n_blocks, block_minutes, n_boot,
                      float(confidence), seed, float(max_error_ratio),
                      {v: float(d.migrations.sum()) for v, d in data.versions.items()}, timeline, int(timeline_minutes))


def _ci(x: np.ndarray, alpha: float) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(x, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _assess(lo: float, hi: float, better: str) -> str:
    if math.isnan(lo) or math.isnan(hi):
        return "no data"
    if hi < 1:
        return "better" if better == "lower" else "worse"
    if lo > 1:
        return "worse" if better == "lower" else "better"
    return "no clear difference"


def _timeline(data: MinuteData, block: int, step_ms: int) -> pl.DataFrame:
    """P99 latency (s) and error ratio (%) per version per ``block`` slots (by the slots' start)."""
    parts = []
    starts = data.minutes[::block] - step_ms
    for v, d in data.versions.items():
        st = _statistics(block_sums(d.columns(), block), data.le)
        ts = pl.Series(starts).cast(schema.TIMESTAMP_DTYPE)
        parts.append(pl.DataFrame({"timestamp": ts, "version": v, "p99_latency_s": st["p99_latency"],
                                   "error_pct": st["error_rate"] * 100}))
    return pl.concat(parts)


# --------------------------------------------------------------------------------------------
# claims beside measurements, charts
# --------------------------------------------------------------------------------------------

#: headline-table metric -> (measured metric, factor from the display unit to the claim's unit, note)
_HEADLINE_MAP = {
    "p99_latency": ("p99_latency", 1000.0, "measured: migration latency (the claim's 'P99 latency' names no operation)"),
    "error_rate": ("error_rate", 1.0, "measured: component operations"),
    "throughput": ("throughput", None, "different quantities: the claim's unit is unstated ('/s'); measured GB/s per migration in progress"),
    "availability": ("availability", 1.0, "measured: share of good region-minutes in this window only"),
    "bandwidth": ("bandwidth", None, "claim is aggregate Gbps; measured bytes per migration (traffic-independent) — compare the changes"),
}


def side_by_side(comparison: Comparison, book: Any) -> pl.DataFrame:
    """The completion report's headline table (claims) beside the measured values.

    ``book`` is a :class:`dwcpkit.sre.claims.ClaimBook`. Columns: ``metric``, the claimed
    ``CLAIM v1``, ``CLAIM v3``, ``CLAIM change %``, ``claim unit``, then ``measured v1``,
    ``measured v3``, ``measured change % [CI]``, ``measured unit``, ``note``. Measured values are
    converted to the claim's unit where the two measure the same thing (ms, %); otherwise they stay
    in their own unit and only the changes compare.
    """
    from dwcpkit.sre.claims import headline_table

    head = headline_table(book)
    meas = {r["metric"]: r for r in comparison.table.iter_rows(named=True)}
    rows = []
    for h in head.iter_rows(named=True):
        key, factor, note = _HEADLINE_MAP.get(h["metric"], (None, None, "not measured"))
        r = meas.get(key) if key else None
        f = factor or 1.0
        unit = h["unit"] if factor else (r["unit"] if r else "")
        rows.append({
            "metric": h["label"],
            "CLAIM v1": h["baseline_claimed"], "CLAIM v3": h["v3_claimed"],
            "CLAIM change %": h["change_claimed_pct"], "claim unit": h["unit"],
            "measured v1": r["baseline"] * f if r else None, "measured v3": r["candidate"] * f if r else None,
            "measured change % [CI]": (f"{r['change_pct']:+.1f} [{(r['ratio_lo'] - 1) * 100:+.1f}, {(r['ratio_hi'] - 1) * 100:+.1f}]"
                                       if r else None),
            "measured unit": unit, "note": note, "claim source": h["source"],
        })
    return pl.DataFrame(rows)


def figures(comparison: Comparison) -> dict[str, Any]:
    """Charts by file name: ``ratio`` (v3/v1 with intervals), ``latency`` (quantiles per version),
    ``timeline`` (P99 latency and error ratio over the window). Save with :func:`dwcpkit.charts.save_all`."""
    from dwcpkit import charts

    t = comparison.table
    b, c, lvl = comparison.baseline, comparison.candidate, f"{comparison.confidence:.0%}"
    ratio = t.select(pl.col("label").alias("metric"), "ratio", "ratio_lo", "ratio_hi", "assessment")
    lat = pl.concat([
        t.filter(pl.col("unit") == "s").select(pl.col("label").alias("quantile"), pl.col(k).alias("value"),
                                               pl.col(f"{k}_lo").alias("lo"), pl.col(f"{k}_hi").alias("hi"),
                                               pl.lit(v).alias("version"))
        for k, v in (("baseline", b), ("candidate", c))
    ])
    tl = comparison.timeline
    return {
        "ratio": charts.interval_chart(ratio, y="metric", value="ratio", lo="ratio_lo", hi="ratio_hi", color="assessment",
                                       reference=1.0, log=True, title=f"{c} / {b} per metric, {lvl} bootstrap CI (ratio, log scale)",
                                       x_title=f"{c} / {b} (1 = equal)"),
        "latency": charts.interval_chart(lat, y="quantile", value="value", lo="lo", hi="hi", color="version", log=True,
                                         title=f"Migration latency quantiles, {lvl} CI (s, log scale)", x_title="latency (s)"),
        "timeline": charts.stack([
            charts.time_series(tl, y="p99_latency_s", color="version", height=140,
                               title=f"P99 migration latency per {comparison.timeline_minutes} min (s)"),
            charts.time_series(tl, y="error_pct", color="version", height=140,
                               title=f"Error ratio per {comparison.timeline_minutes} min (%)"),
        ]),
    }
