"""SLO maths over the canonical telemetry frame: PromQL-exact rates and quantiles, budgets, burn rates.

Every function here is pure: frames in, frames (or numbers) out. A *series* is a group of rows
sharing :func:`dwcpkit.telemetry.schema.series_keys` (the metric name plus every label column).

PromQL semantics
----------------
:func:`rate`, :func:`increase` and :func:`delta` port Prometheus' ``extrapolatedRate``
(``promql/functions.go``): counter resets (a drop means the counter restarted from 0, so the
value before the drop is added back), extrapolation of the sampled interval to the window
boundaries when the first/last sample is within 1.1 x the average sample spacing of the
boundary (otherwise by half the average spacing only), and the zero floor for counters (never
extrapolate below the point where the counter would have been 0). Two Prometheus behaviours
are selectable with ``compat``:

``"2.42"`` (default; Debian 12's ``prometheus`` package, what the cross-check runs)
    window ``[t - w, t]`` closed on both ends; the zero floor is applied *before* the
    half-interval rule (Prometheus 2.x until PR #13725, 2024).
``"3"``
    window ``(t - w, t]`` left-open (Prometheus 3.0); zero floor applied *after* the
    half-interval rule, so it can only shorten the extrapolation (PR #13725).

A series needs at least two samples in a window to produce a value; with fewer it is absent
from the result, as in Prometheus. Null and NaN values are treated as missing samples.
Evaluation times are ``at`` (an instant query) or ``start + k * step`` up to ``end``
(a range query, like ``/api/v1/query_range``); ``start``/``end`` default to the first/last
sample of the frame.

:func:`histogram_quantile` ports ``bucketQuantile`` (``promql/quantile.go``) for classic
``*_bucket`` series with an ``le`` label.

Example
-------
>>> from dwcpkit.telemetry.schema import from_rows
>>> f = from_rows([(t * 15_000, "x_total", float(v), {}) for t, v in enumerate([0, 10, 20, 5, 15])])
>>> increase(f, "1m", at=60_000)["value"].to_list()   # 20 before the reset, 15 after it
[35.0]
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import polars as pl

from dwcpkit.errors import DataError, ParameterError, SchemaError
from dwcpkit.telemetry import schema

__all__ = [
    "Compat",
    "parse_duration",
    "eval_times",
    "rate",
    "increase",
    "delta",
    "sum_by",
    "histogram_quantile",
    "quantiles",
    "quantile_frame",
    "availability",
    "time_availability",
    "error_budget_remaining",
    "burn_rate",
    "BurnWindow",
    "DEFAULT_WINDOWS",
    "SLO_PERIOD",
    "burn_rate_alerts",
    "burn_rate_alerts_over_time",
    "error_ratio",
    "latency_quantile",
]

Compat = Literal["2.42", "3"]
TimeLike = int | datetime | str
DurationLike = str | timedelta | int | float

# --------------------------------------------------------------------------------------------
# durations and times
# --------------------------------------------------------------------------------------------

_DURATION_RE = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_DURATION_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)


def parse_duration(value: DurationLike) -> int:
    """Duration in milliseconds from a Prometheus duration string, a timedelta or seconds.

    Strings use Prometheus' syntax (``"5m"``, ``"1h30m"``, ``"3d"``, ``"500ms"``; ``y`` = 365 d);
    numbers are seconds. The duration must be positive.

    >>> parse_duration("1h30m")
    5400000
    >>> parse_duration(timedelta(seconds=30))
    30000
    """
    if isinstance(value, timedelta):
        ms = int(round(value.total_seconds() * 1000))
    elif isinstance(value, bool):
        raise ParameterError(f"duration {value!r}: use a string like '5m', a timedelta or seconds")
    elif isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ParameterError(f"duration {value!r} is not finite; use e.g. '5m' or 300")
        ms = int(round(value * 1000))
    elif isinstance(value, str):
        m = _DURATION_RE.match(value.strip())
        if not value.strip() or m is None:
            raise ParameterError(
                f"duration {value!r} is not a Prometheus duration; use e.g. '30s', '5m', '1h30m', '3d'"
            )
        ms = sum(int(g) * unit for g, unit in zip(m.groups(), _DURATION_MS) if g)
    else:
        raise ParameterError(
            f"duration {value!r} has type {type(value).__name__}; use a string like '5m', a timedelta or seconds"
        )
    if ms <= 0:
        raise ParameterError(f"duration {value!r} must be positive")
    return ms


def _time_ms(value: TimeLike, name: str) -> int:
    if isinstance(value, bool):
        raise ParameterError(f"{name}={value!r} is not a time")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ParameterError(f"{name}={value!r} is not an ISO-8601 time (e.g. '2024-05-01T12:00:00Z')") from exc
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ParameterError(
                f"{name}={value!r} is a naive datetime; telemetry time is UTC, pass tzinfo=timezone.utc"
            )
        return int(round(value.timestamp() * 1000))
    raise ParameterError(
        f"{name}={value!r} has type {type(value).__name__}; use an aware datetime, an ISO string or epoch ms"
    )


def eval_times(start: TimeLike, end: TimeLike, step: DurationLike) -> np.ndarray:
    """Evaluation instants (epoch ms) ``start + k * step`` for ``k = 0, 1, ...`` up to ``end``.

    The same grid Prometheus' ``query_range`` evaluates on.

    >>> eval_times(0, 60_000, "30s").tolist()
    [0, 30000, 60000]
    """
    s, e, st = _time_ms(start, "start"), _time_ms(end, "end"), parse_duration(step)
    if e < s:
        raise ParameterError(f"end ({e} ms) is before start ({s} ms)")
    return s + st * np.arange((e - s) // st + 1, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# series plumbing
# --------------------------------------------------------------------------------------------


def _frame(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    if not isinstance(frame, pl.DataFrame):
        raise SchemaError(
            f"{name}: expected a polars DataFrame (canonical telemetry frame), got {type(frame).__name__}"
        )
    return schema.normalize(frame, source=name)


def _series_bounds(frame: pl.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """Row indices where a new group of ``keys`` starts (frame sorted by keys), plus the end."""
    n = frame.height
    if n == 0:
        return np.array([0], dtype=np.int64)
    if not keys:
        return np.array([0, n], dtype=np.int64)
    new = frame.select(
        pl.any_horizontal([pl.col(k).ne_missing(pl.col(k).shift(1)) for k in keys]).alias("_new")
    )["_new"].to_numpy()
    new[0] = True
    return np.append(np.flatnonzero(new), n).astype(np.int64)


def _eval_grid(
    frames: Iterable[pl.DataFrame],
    step: DurationLike | None,
    at: TimeLike | None,
    start: TimeLike | None,
    end: TimeLike | None,
) -> np.ndarray:
    if step is not None and at is not None:
        raise ParameterError("pass either at= (one instant) or step= (a range of instants), not both")
    if step is None and (start is not None or end is not None):
        raise ParameterError("start=/end= need step=; for a single instant pass at=")
    frames = list(frames)
    nonempty = [f for f in frames if f.height]

    def data_bound(newest: bool) -> int:
        if not nonempty:
            raise DataError("no samples: cannot choose evaluation times from empty frames; pass at= or start=/end=")
        ms = [f["timestamp"].dt.epoch("ms") for f in nonempty]
        return int(max(m.max() for m in ms)) if newest else int(min(m.min() for m in ms))

    if step is None:
        t = data_bound(True) if at is None else _time_ms(at, "at")
        return np.array([t], dtype=np.int64)
    s = data_bound(False) if start is None else _time_ms(start, "start")
    e = data_bound(True) if end is None else _time_ms(end, "end")
    return eval_times(s, e, step)


def _extrapolated(
    t: np.ndarray,
    v: np.ndarray,
    evals: np.ndarray,
    window_ms: int,
    *,
    is_counter: bool,
    is_rate: bool,
    compat: Compat,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``extrapolatedRate`` for one series at every instant of ``evals``.

    Returns ``(ok, value)``: ``ok`` marks instants whose window holds >= 2 samples.
    """
    range_start = evals - window_ms
    side = "left" if compat == "2.42" else "right"  # closed [s, e] vs left-open (s, e]
    lo = np.searchsorted(t, range_start, side=side)
    hi = np.searchsorted(t, evals, side="right") - 1
    ok = (hi - lo) >= 1
    if not ok.any():
        return ok, np.empty(0)
    lo, hi, rs, re_ = lo[ok], hi[ok], range_start[ok], evals[ok]
    first_t, last_t, first_v, last_v = t[lo], t[hi], v[lo], v[hi]
    result = last_v - first_v
    if is_counter:
        # A drop at sample i adds back v[i-1]. Summed per window in Prometheus' order (no
        # running sums: a cumulative sum of huge counters would swallow later, smaller resets).
        resets = np.flatnonzero(v[1:] < v[:-1]) + 1
        if resets.size:
            a = np.searchsorted(resets, lo, side="right")
            b = np.searchsorted(resets, hi, side="right")
            for k in np.flatnonzero(b > a):
                acc = float(result[k])
                for r in resets[a[k]:b[k]]:
                    acc += float(v[r - 1])
                result[k] = acc
    dur_start = (first_t - rs) / 1000.0
    dur_end = (re_ - last_t) / 1000.0
    sampled = (last_t - first_t) / 1000.0
    avg = sampled / (hi - lo)
    threshold = avg * 1.1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # masked by np.where
        if is_counter:
            can_zero = (result > 0) & (first_v >= 0)
            to_zero = np.where(can_zero, sampled * (first_v / np.where(can_zero, result, 1.0)), np.inf)
        if compat == "2.42":
            if is_counter:
                dur_start = np.minimum(dur_start, to_zero)
            dur_start = np.where(dur_start < threshold, dur_start, avg / 2)
        else:
            dur_start = np.where(dur_start >= threshold, avg / 2, dur_start)
            if is_counter:
                dur_start = np.minimum(dur_start, to_zero)
        dur_end = np.where(dur_end < threshold, dur_end, avg / 2)
        factor = (sampled + dur_start + dur_end) / sampled
        if is_rate:
            factor = factor / (window_ms / 1000.0)
    return ok, result * factor


def _range_fn(
    frame: pl.DataFrame,
    window: DurationLike,
    *,
    step,
    at,
    start,
    end,
    compat: Compat,
    is_counter: bool,
    is_rate: bool,
    name: str,
) -> pl.DataFrame:
    if compat not in ("2.42", "3"):
        raise ParameterError(f"compat={compat!r}; use '2.42' (Prometheus 2.x) or '3' (Prometheus 3.x)")
    window_ms = parse_duration(window)
    frame = _frame(frame, name)
    evals = _eval_grid([frame], step, at, start, end)
    frame = frame.filter(pl.col("value").is_not_null() & pl.col("value").is_not_nan())
    labels = schema.label_columns(frame)
    if frame.height == 0:
        return schema.empty_frame(labels)
    keys = schema.series_keys(frame)
    bounds = _series_bounds(frame, keys)
    ts = frame["timestamp"].dt.epoch("ms").to_numpy()
    vals = frame["value"].to_numpy()
    rows: list[np.ndarray] = []
    out_t: list[np.ndarray] = []
    out_v: list[np.ndarray] = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        t = ts[a:b]
        if b - a > 1 and np.any(t[1:] == t[:-1]):
            dup = int(t[1:][t[1:] == t[:-1]][0])
            key = {k: frame[k][int(a)] for k in keys}
            raise DataError(
                f"{name}: series {key} has two samples at timestamp {dup} ms; a series holds one sample "
                "per timestamp (deduplicate, e.g. frame.unique(subset=['timestamp', *series_keys]))"
            )
        ok, value = _extrapolated(
            t, vals[a:b], evals, window_ms, is_counter=is_counter, is_rate=is_rate, compat=compat
        )
        if value.size:
            rows.append(np.full(value.size, a, dtype=np.int64))
            out_t.append(evals[ok])
            out_v.append(value)
    if not rows:
        return schema.empty_frame(labels)
    idx = np.concatenate(rows)
    out = frame.select(keys)[idx].with_columns(
        pl.Series("timestamp", np.concatenate(out_t)).cast(schema.TIMESTAMP_DTYPE),
        pl.Series("value", np.concatenate(out_v), dtype=pl.Float64),
    )
    return schema.normalize(out, source=name)


def rate(
    frame: pl.DataFrame,
    window: DurationLike = "5m",
    *,
    step: DurationLike | None = None,
    at: TimeLike | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    compat: Compat = "2.42",
) -> pl.DataFrame:
    """Per-second rate of every counter series, exactly as PromQL ``rate(x[window])``.

    Parameters
    ----------
    frame
        Canonical telemetry frame of counter samples (any number of series).
    window
        Range selector width: ``"5m"``, a ``timedelta`` or seconds.
    step, start, end
        Range evaluation at ``start + k * step`` up to ``end`` (defaults: first/last sample).
    at
        Instant evaluation time (aware datetime, ISO string or epoch ms). With neither ``at``
        nor ``step`` the frame's newest timestamp is used.
    compat
        ``"2.42"`` or ``"3"``: which Prometheus' window/zero-floor rules to follow (module doc).

    Returns
    -------
    polars.DataFrame
        Canonical frame: one row per (series, evaluation time) whose window holds >= 2
        samples; same metric and labels, ``value`` = rate, ``timestamp`` = evaluation time.

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> f = from_rows([(t * 60_000, "ops_total", 60.0 * t, {"region": "eu"}) for t in range(11)])
    >>> rate(f, "5m", at=600_000)["value"].to_list()
    [1.0]
    """
    return _range_fn(frame, window, step=step, at=at, start=start, end=end, compat=compat,
                     is_counter=True, is_rate=True, name="rate")


def increase(
    frame: pl.DataFrame,
    window: DurationLike = "5m",
    *,
    step: DurationLike | None = None,
    at: TimeLike | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    compat: Compat = "2.42",
) -> pl.DataFrame:
    """Increase of every counter series over ``window``, exactly as PromQL ``increase(x[window])``.

    Same parameters and result shape as :func:`rate`; the value is ``rate * window_seconds``
    (extrapolated, so usually not an integer even for integer counters).

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> f = from_rows([(t * 300_000, "x_total", v, {}) for t, v in enumerate([0, 1, 2, 3, 2, 3, 4])])
    >>> increase(f, "30m", at=1_800_000)["value"].to_list()   # 3 -> 2 is a reset
    [7.0]
    """
    return _range_fn(frame, window, step=step, at=at, start=start, end=end, compat=compat,
                     is_counter=True, is_rate=False, name="increase")


def delta(
    frame: pl.DataFrame,
    window: DurationLike = "5m",
    *,
    step: DurationLike | None = None,
    at: TimeLike | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    compat: Compat = "2.42",
) -> pl.DataFrame:
    """Change of every gauge series over ``window``, as PromQL ``delta(x[window])`` (no resets).

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> f = from_rows([(t * 300_000, "g", v, {}) for t, v in enumerate([200, 150, 100, 50, 0])])
    >>> delta(f, "20m", at=1_200_000)["value"].to_list()
    [-200.0]
    """
    return _range_fn(frame, window, step=step, at=at, start=start, end=end, compat=compat,
                     is_counter=False, is_rate=False, name="delta")


def sum_by(frame: pl.DataFrame, by: Sequence[str] = (), *, metric: str | None = None) -> pl.DataFrame:
    """Sum values per timestamp and ``by`` labels, like PromQL ``sum by (...)``.

    Series of different metric names are kept apart unless ``metric`` is given, in which case
    everything is summed across names and the result is called ``metric``. A ``by`` label that
    the frame lacks groups as empty (null), as in PromQL. All other labels are dropped.

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> f = from_rows([(0, "r", 1.0, {"region": "eu", "v": "v1"}), (0, "r", 2.0, {"region": "eu", "v": "v3"})])
    >>> sum_by(f, ["region"])["value"].to_list()
    [3.0]
    """
    if isinstance(by, str):
        by = [by]
    by = list(dict.fromkeys(by))
    for bad in (c for c in by if c in schema.CORE_COLUMNS):
        raise ParameterError(f"sum_by: {bad!r} is not a label; group by label names only")
    frame = _frame(frame, "sum_by")
    frame = frame.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in by if c not in frame.columns])
    if metric is not None:
        frame = frame.with_columns(pl.lit(metric).alias("metric"))
    out = frame.group_by(["timestamp", "metric", *by]).agg(pl.col("value").sum())
    return schema.normalize(out, source="sum_by")


# --------------------------------------------------------------------------------------------
# histogram_quantile
# --------------------------------------------------------------------------------------------


def _parse_le(values: Iterable[str | None]) -> dict[str, float]:
    table: dict[str, float] = {}
    bad: list[str | None] = []
    for s in values:
        if s is None:
            bad.append(s)
            continue
        try:
            table[s] = float(s.strip())
        except ValueError:
            bad.append(s)
    if bad:
        raise DataError(
            f"histogram_quantile: le label values {bad[:5]} are not numbers; pass only *_bucket series "
            "(every row needs le = an upper bound such as '0.5' or '+Inf')"
        )
    return table


def histogram_quantile(q: float, buckets: pl.DataFrame) -> pl.DataFrame:
    """The ``q``-quantile per histogram, exactly as PromQL ``histogram_quantile(q, buckets)``.

    ``buckets`` holds cumulative ``*_bucket`` samples (raw counters or, usually, their rates)
    with an ``le`` label. Buckets are grouped by timestamp, metric and every label but ``le``.
    Per group, as Prometheus' ``bucketQuantile``: buckets with equal bounds (``"1"``/``"1.0"``)
    are merged; decreasing counts are lifted to the running maximum (the monotonicity fix);
    the quantile is interpolated linearly within its bucket, from 0 in the lowest bucket when
    its upper bound is > 0 (if that bound is <= 0 the bound itself is returned); a quantile in
    the +Inf bucket returns the highest finite bound. ``q < 0`` gives -Inf and ``q > 1`` +Inf
    for every group; NaN when ``q`` is NaN, the +Inf bucket is missing, fewer than two distinct
    bounds exist, or the total count is 0.

    Returns a canonical frame, one row per group; ``metric`` loses its ``_bucket`` suffix and
    the ``le`` column is dropped.

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> counts = [("0", 0), ("2", 1), ("4", 2), ("6", 3), ("+Inf", 3)]
    >>> b = from_rows([(0, "lat_bucket", c, {"le": le}) for le, c in counts])
    >>> histogram_quantile(0.5, b)["value"].to_list()
    [3.0]
    """
    q = float(q)
    frame = _frame(buckets, "histogram_quantile")
    if "le" not in frame.columns:
        raise DataError("histogram_quantile: the frame has no 'le' label; pass *_bucket series of a histogram")
    others = [c for c in schema.label_columns(frame) if c != "le"]
    gkeys = ["timestamp", "metric", *others]
    if frame.height == 0:
        return schema.empty_frame(others)
    le_map = _parse_le(frame["le"].unique().to_list())
    work = (
        frame.with_columns(
            pl.col("metric").str.replace(r"_bucket$", ""),
            pl.col("le").replace_strict(le_map, return_dtype=pl.Float64).alias("_ub"),
        )
        .group_by([*gkeys, "_ub"])
        .agg(pl.col("value").sum())  # coalesceBuckets
        .sort([*gkeys, "_ub"], nulls_last=True)
        .with_columns(
            pl.col("value").is_nan().any().over(gkeys).alias("_nan"),
            # ensureMonotonic: the running maximum of the counts in each histogram
            pl.col("value").fill_nan(0.0).cum_max().over(gkeys),
        )
    )
    bounds = _series_bounds(work, gkeys)
    starts, ends = bounds[:-1], bounds[1:]
    heads = work.select(gkeys)[starts]
    ng = starts.size
    if math.isnan(q):
        res = np.full(ng, np.nan)
    elif q < 0:
        res = np.full(ng, -np.inf)
    elif q > 1:
        res = np.full(ng, np.inf)
    else:
        res = _bucket_quantile_vec(q, work["_ub"].to_numpy(), work["value"].to_numpy(), starts, ends)
        res = np.where(work["_nan"].to_numpy()[starts], np.nan, res)
    out = heads.with_columns(pl.Series("value", res, dtype=pl.Float64))
    return schema.normalize(out, source="histogram_quantile")


def _bucket_quantile_vec(q: float, ub: np.ndarray, cnt: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """bucketQuantile for many groups at once.

    ``ub`` sorted and distinct within each group ``[starts[i], ends[i])``; ``cnt`` already
    monotonic within each group.
    """
    n = ub.size
    gid = np.repeat(np.arange(starts.size), ends - starts)
    last = ends - 1
    obs = cnt[last]
    rank = q * obs
    idx = np.arange(n)
    cand = np.where((cnt >= rank[gid]) & (idx != last[gid]), idx, n)
    b = np.minimum.reduceat(cand, starts)
    b = np.where(b == n, last, b)
    bprev = np.maximum(b - 1, 0)
    first = b == starts
    start_bound = np.where(first, 0.0, ub[bprev])
    below = np.where(first, 0.0, cnt[bprev])
    with np.errstate(divide="ignore", invalid="ignore"):
        interp = start_bound + (ub[b] - start_bound) * ((rank - below) / (cnt[b] - below))
    res = np.where(first & (ub[b] <= 0), ub[b], interp)
    res = np.where(b == last, ub[np.maximum(last - 1, 0)], res)
    valid = np.isposinf(ub[last]) & ((ends - starts) >= 2) & (obs != 0)
    return np.where(valid, res, np.nan)


# --------------------------------------------------------------------------------------------
# quantiles of raw samples
# --------------------------------------------------------------------------------------------


def _check_qs(qs: Sequence[float]) -> list[float]:
    qs = [float(q) for q in ([qs] if isinstance(qs, (int, float)) else qs)]
    if not qs:
        raise ParameterError("quantiles: qs is empty; pass e.g. (0.5, 0.95, 0.99)")
    for q in qs:
        if not 0.0 <= q <= 1.0:
            raise ParameterError(f"quantile {q} is outside [0, 1]; write 0.99 for p99")
    return qs


def _qname(q: float) -> str:
    return f"p{q * 100:.10g}"


def quantiles(values, qs: Sequence[float] = (0.5, 0.95, 0.99)) -> dict[float, float]:
    """Quantiles of raw samples, by linear interpolation between order statistics.

    Method: numpy's ``"linear"`` (Hyndman & Fan type 7, ``rank = q * (n - 1)``), the same as
    PromQL's ``quantile`` and ``quantile_over_time``. NaN and null samples are dropped; no samples
    left is a :class:`~dwcpkit.errors.DataError`.

    >>> quantiles([1, 2, 3, 4, 5], (0.5, 0.9))
    {0.5: 3.0, 0.9: 4.6}
    """
    qs = _check_qs(qs)
    arr = np.asarray(values.to_numpy() if isinstance(values, pl.Series) else values, dtype=float).ravel()
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        raise DataError("quantiles: no samples (after dropping NaN); widen the time range or check the filter")
    res = np.quantile(arr, qs, method="linear")
    return {q: float(r) for q, r in zip(qs, res)}


def quantile_frame(
    frame: pl.DataFrame,
    qs: Sequence[float] = (0.5, 0.95, 0.99),
    *,
    by: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Quantiles of the ``value`` column per group (same method as :func:`quantiles`).

    ``by`` defaults to the series keys (metric and labels), i.e. quantiles over time of each
    series. Columns: ``by``, ``count`` (non-NaN samples), then one column per quantile named
    ``p50``, ``p95``, ``p99``, ``p99.9`` ...

    >>> from dwcpkit.telemetry.schema import from_rows
    >>> f = from_rows([(i, "lat", float(i), {}) for i in range(1, 6)])
    >>> quantile_frame(f, (0.5,))["p50"].to_list()
    [3.0]
    """
    qs = _check_qs(qs)
    frame = _frame(frame, "quantile_frame")
    by = schema.series_keys(frame) if by is None else list(by)
    missing = [c for c in by if c not in frame.columns]
    if missing:
        raise ParameterError(f"quantile_frame: by={missing} are not columns of the frame {frame.columns}")
    vals = pl.col("value").filter(pl.col("value").is_not_nan())
    aggs = [vals.count().alias("count")] + [
        vals.quantile(q, interpolation="linear").alias(_qname(q)) for q in qs
    ]
    if not by:
        return frame.select(aggs)
    return frame.group_by(by).agg(aggs).sort(by, nulls_last=True)


# --------------------------------------------------------------------------------------------
# availability, budgets and burn rates
# --------------------------------------------------------------------------------------------


def _scalar_or_array(x):
    if isinstance(x, pl.Series):
        x = x.to_numpy()
    arr = np.asarray(x, dtype=float)
    return arr


def _out(arr: np.ndarray):
    return float(arr) if arr.ndim == 0 else arr


def _check_slo(slo: float) -> float:
    slo = float(slo)
    if not 0.0 < slo < 1.0:
        raise ParameterError(f"slo={slo} must be a ratio strictly between 0 and 1 (write 0.999 for 99.9%)")
    return slo


def availability(good, total):
    """Ratio availability ``good / total`` (scalars or arrays). 0/0 is NaN (no traffic, no answer).

    >>> availability(999, 1000)
    0.999
    """
    g, t = _scalar_or_array(good), _scalar_or_array(total)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where(t == 0, np.nan, g / np.where(t == 0, 1.0, t)))


def time_availability(
    health: pl.DataFrame,
    *,
    up_threshold: float = 0.5,
    end: TimeLike | None = None,
    max_gap: DurationLike | None = None,
) -> pl.DataFrame:
    """Fraction of time each 0/1 health series was up.

    Each sample's state (up when ``value >= up_threshold``) holds until the next sample of its
    series; the last sample holds until ``end`` (default: that sample, so it adds no time).
    With ``max_gap``, the part of an interval longer than ``max_gap`` counts as *down*
    (no evidence of health is not health). Columns: series keys, ``up_s``, ``observed_s``,
    ``availability`` (NaN when ``observed_s`` is 0).

    >>> from dwcpkit.telemetry.schema import from_rows
    >>> f = from_rows([(t * 60_000, "up", v, {}) for t, v in enumerate([1, 1, 0, 1, 1])])
    >>> time_availability(f)["availability"].to_list()
    [0.75]
    """
    frame = _frame(health, "time_availability")
    frame = frame.filter(pl.col("value").is_not_null() & pl.col("value").is_not_nan())
    keys = schema.series_keys(frame)
    end_ms = None if end is None else _time_ms(end, "end")
    gap_ms = None if max_gap is None else parse_duration(max_gap)
    bounds = _series_bounds(frame, keys)
    ts = frame["timestamp"].dt.epoch("ms").to_numpy()
    up = frame["value"].to_numpy() >= up_threshold
    starts, up_s, obs_s = [], [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        t = ts[a:b]
        stop = t[-1] if end_ms is None else max(end_ms, int(t[-1]))
        dur = np.diff(np.append(t, stop)).astype(float)
        held = dur if gap_ms is None else np.minimum(dur, gap_ms)
        starts.append(a)
        up_s.append(float(held[up[a:b]].sum()) / 1000.0)
        obs_s.append(float(dur.sum()) / 1000.0)
    out = frame.select(keys)[np.asarray(starts, dtype=np.int64)].with_columns(
        pl.Series("up_s", up_s, dtype=pl.Float64),
        pl.Series("observed_s", obs_s, dtype=pl.Float64),
    )
    return out.with_columns(
        pl.when(pl.col("observed_s") > 0)
        .then(pl.col("up_s") / pl.col("observed_s"))
        .otherwise(float("nan"))
        .alias("availability")
    )


def error_budget_remaining(slo: float, good, total):
    """Fraction of the error budget left: ``1 - (total - good) / ((1 - slo) * total)``.

    1.0 = untouched, 0.0 = exactly spent, negative = overspent (-1.0 means twice the budget).
    With no traffic (total 0) nothing was spent and the result is 1.0.

    >>> round(error_budget_remaining(0.99, 995, 1000), 6)
    0.5
    """
    slo = _check_slo(slo)
    g, t = _scalar_or_array(good), _scalar_or_array(total)
    with np.errstate(divide="ignore", invalid="ignore"):
        spent = (t - g) / ((1.0 - slo) * np.where(t == 0, 1.0, t))
    return _out(np.where(t == 0, 1.0, 1.0 - spent))


def burn_rate(error_ratio, slo: float):
    """How fast the budget burns: ``error_ratio / (1 - slo)``; 1.0 spends it exactly over the SLO period.

    >>> round(burn_rate(0.0144, 0.999), 6)
    14.4
    """
    slo = _check_slo(slo)
    return _out(_scalar_or_array(error_ratio) / (1.0 - slo))


@dataclass(frozen=True)
class BurnWindow:
    """One multiwindow burn-rate alert: fire when both windows burn faster than ``factor``."""

    severity: str          # "page" | "ticket"
    long: str              # long window (Prometheus duration)
    short: str             # short window, 1/12 of the long one
    factor: float          # burn-rate threshold
    budget_consumed: float  # share of a 30-day budget spent when the long window first fires
    level: str             # dwcpkit verdict level: page -> ESCALATE, ticket -> WARN


#: Google SRE Workbook ch. 5, table 5-8 (30-day SLO period).
SLO_PERIOD = "30d"
DEFAULT_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow("page", "1h", "5m", 14.4, 0.02, "ESCALATE"),
    BurnWindow("page", "6h", "30m", 6.0, 0.05, "ESCALATE"),
    BurnWindow("ticket", "3d", "6h", 1.0, 0.10, "WARN"),
)


def _nan_to_zero_join(err: pl.DataFrame, ops: pl.DataFrame, keys: list[str], name: str) -> pl.DataFrame:
    joined = ops.rename({"value": "_ops"}).join(
        err.rename({"value": "_err"}).select([*keys, "_err"]), on=keys, how="left", nulls_equal=True
    )
    out = joined.with_columns(
        pl.lit(name).alias("metric"),
        (pl.col("_err").fill_null(0.0) / pl.col("_ops")).alias("value"),
    ).drop(["_ops", "_err"])
    return schema.normalize(out, source="error_ratio")


def error_ratio(
    errors: pl.DataFrame,
    ops: pl.DataFrame,
    window: DurationLike = "5m",
    by: Sequence[str] = (),
    *,
    step: DurationLike | None = None,
    at: TimeLike | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    compat: Compat = "2.42",
    name: str = "error_ratio",
) -> pl.DataFrame:
    """``sum by (by) (rate(errors[w])) / sum by (by) (rate(ops[w]))`` per evaluation time.

    Groups with operations but no error series count 0 errors (an error counter that never
    fired often does not exist), i.e. PromQL's ``(sum(rate(errors)) or 0 * sum(rate(ops))) /
    sum(rate(ops))``. No operations gives NaN (0/0) or +Inf. Evaluation times as :func:`rate`;
    when neither ``at`` nor ``step`` is given, the newest timestamp of either frame is used.

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> ops = from_rows([(t * 60_000, "ops_total", 100.0 * t, {}) for t in range(6)])
    >>> err = from_rows([(t * 60_000, "errors_total", 1.0 * t, {}) for t in range(6)])
    >>> error_ratio(err, ops, "5m", at=300_000)["value"].to_list()
    [0.01]
    """
    by = [by] if isinstance(by, str) else list(by)
    errors, ops = _frame(errors, "errors"), _frame(ops, "ops")
    evals = _eval_grid([errors, ops], step, at, start, end)
    kw = dict(compat=compat, step=None, at=None, start=None, end=None)
    if evals.size == 1:
        kw["at"] = int(evals[0])
    else:
        kw.update(step=f"{int(evals[1] - evals[0])}ms", start=int(evals[0]), end=int(evals[-1]))
    err = sum_by(rate(errors, window, **kw), by, metric=name)
    tot = sum_by(rate(ops, window, **kw), by, metric=name)
    keys = ["timestamp", "metric", *by]
    return _nan_to_zero_join(err, tot, keys, name)


def latency_quantile(
    frame: pl.DataFrame,
    metric: str,
    q: float,
    window: DurationLike = "5m",
    by: Sequence[str] = (),
    *,
    step: DurationLike | None = None,
    at: TimeLike | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    compat: Compat = "2.42",
) -> pl.DataFrame:
    """``histogram_quantile(q, sum by (le, by) (rate(<metric>_bucket[window])))``.

    ``metric`` is the histogram's base name (``dwcp_v3_migration_latency_seconds``) or its
    ``_bucket`` series name. Returns a canonical frame named after the base metric with the
    ``by`` labels. Raises :class:`~dwcpkit.errors.DataError` when the frame has no such buckets.

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> rows = [(t * 60_000, "lat_bucket", float(c * t), {"le": le}) for t in range(6)
    ...         for le, c in [("0.1", 50), ("0.5", 90), ("+Inf", 100)]]
    >>> round(latency_quantile(from_rows(rows), "lat", 0.5, "5m", at=300_000)["value"][0], 6)
    0.1
    """
    bucket_name = metric if metric.endswith("_bucket") else f"{metric}_bucket"
    frame = _frame(frame, "latency_quantile")
    sel = frame.filter(pl.col("metric") == bucket_name)
    if sel.height == 0:
        names = sorted(n for n in frame["metric"].unique().to_list() if n.endswith("_bucket"))
        raise DataError(f"latency_quantile: no samples of {bucket_name!r}; histograms in the frame: {names}")
    by = [by] if isinstance(by, str) else list(by)
    r = rate(sel, window, step=step, at=at, start=start, end=end, compat=compat)
    return histogram_quantile(q, sum_by(r, ["le", *by]))


def _burn_rows(
    errors: pl.DataFrame,
    total: pl.DataFrame,
    slo: float,
    windows: Sequence[BurnWindow],
    by: list[str],
    kw: dict,
) -> pl.DataFrame:
    cache: dict[str, pl.DataFrame] = {}

    def ratio(w: str) -> pl.DataFrame:
        if w not in cache:
            cache[w] = error_ratio(errors, total, w, by, **kw).select(["timestamp", *by, "value"])
        return cache[w]

    parts = []
    keys = ["timestamp", *by]
    for win in windows:
        long_ = ratio(win.long).rename({"value": "long_error_ratio"})
        short = ratio(win.short).rename({"value": "short_error_ratio"})
        both = long_.join(short, on=keys, how="full", coalesce=True, nulls_equal=True)
        if both.height == 0 and not by and kw.get("at") is not None:
            # an instant query always answers for every window pair, even without data
            both = pl.DataFrame(
                {"timestamp": [kw["at"]], "long_error_ratio": [None], "short_error_ratio": [None]},
                schema={"timestamp": pl.Int64, "long_error_ratio": pl.Float64, "short_error_ratio": pl.Float64},
            ).with_columns(pl.col("timestamp").cast(schema.TIMESTAMP_DTYPE))
        parts.append(
            both.with_columns(
                pl.lit(win.severity).alias("severity"),
                pl.lit(win.level).alias("level"),
                pl.lit(win.long).alias("long_window"),
                pl.lit(win.short).alias("short_window"),
                pl.lit(float(win.factor)).alias("threshold"),
                (pl.col("long_error_ratio") / (1.0 - slo)).alias("long_burn_rate"),
                (pl.col("short_error_ratio") / (1.0 - slo)).alias("short_burn_rate"),
            )
        )
    cols = ["timestamp", *by, "severity", "level", "long_window", "short_window", "threshold",
            "long_error_ratio", "short_error_ratio", "long_burn_rate", "short_burn_rate"]
    out = pl.concat([p.select(cols) for p in parts], how="vertical_relaxed")
    # polars orders NaN above every number, so NaN burn rates are excluded explicitly
    firing = (
        (pl.col("long_burn_rate") > pl.col("threshold"))
        & (pl.col("short_burn_rate") > pl.col("threshold"))
        & pl.col("long_burn_rate").is_not_nan()
        & pl.col("short_burn_rate").is_not_nan()
    ).fill_null(False)
    return out.with_columns(firing.alias("firing"))


def _check_windows(windows: Sequence[BurnWindow]) -> list[BurnWindow]:
    windows = list(windows)
    if not windows:
        raise ParameterError("burn-rate alerts need at least one BurnWindow (see DEFAULT_WINDOWS)")
    for w in windows:
        parse_duration(w.long), parse_duration(w.short)
    return windows


def burn_rate_alerts(
    errors: pl.DataFrame,
    total: pl.DataFrame,
    slo: float,
    *,
    at: TimeLike | None = None,
    windows: Sequence[BurnWindow] = DEFAULT_WINDOWS,
    by: Sequence[str] = (),
    compat: Compat = "2.42",
) -> pl.DataFrame:
    """Multiwindow, multi-burn-rate alerts (SRE Workbook ch. 5, table 5-8) at one instant.

    For each :class:`BurnWindow` the error ratio (:func:`error_ratio` of the two counter frames)
    over the long and the short window is turned into a burn rate ``ratio / (1 - slo)``; the
    pair fires when *both* exceed ``threshold`` (strictly, as the workbook's ``>``). One row per
    window pair (and ``by`` group): ``timestamp, [by], severity, level, long_window,
    short_window, threshold, long_error_ratio, short_error_ratio, long_burn_rate,
    short_burn_rate, firing``. A window without enough samples gives a null/NaN burn rate and
    does not fire (without ``by`` every pair always has its row). ``at`` defaults to the newest
    sample.

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> ops = from_rows([(t * 60_000, "ops", 1000.0 * t, {}) for t in range(121)])
    >>> err = from_rows([(t * 60_000, "err", 20.0 * t, {}) for t in range(121)])   # 2% errors
    >>> burn_rate_alerts(err, ops, 0.999)["firing"].to_list()   # burn rate 20
    [True, True, True]
    """
    slo = _check_slo(slo)
    windows = _check_windows(windows)
    errors, total = _frame(errors, "errors"), _frame(total, "total")
    t = _eval_grid([errors, total], None, at, None, None)
    by = [by] if isinstance(by, str) else list(by)
    return _burn_rows(errors, total, slo, windows, by, dict(at=int(t[0]), compat=compat))


def burn_rate_alerts_over_time(
    errors: pl.DataFrame,
    total: pl.DataFrame,
    slo: float,
    *,
    step: DurationLike,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    windows: Sequence[BurnWindow] = DEFAULT_WINDOWS,
    by: Sequence[str] = (),
    compat: Compat = "2.42",
) -> pl.DataFrame:
    """:func:`burn_rate_alerts` at every ``start + k * step`` (defaults: data range).

    Same columns, one row per (timestamp, window pair, ``by`` group), sorted by time. Instants
    at which neither window of a pair has a value (fewer than two samples) have no row.

    >>> from dwcpkit.telemetry.schema import from_rows
    >>> ops = from_rows([(t * 60_000, "ops", 1000.0 * t, {}) for t in range(121)])
    >>> err = from_rows([(t * 60_000, "err", 20.0 * t, {}) for t in range(121)])
    >>> a = burn_rate_alerts_over_time(err, ops, 0.999, step="1h")   # t = 0 has one sample only
    >>> a.select("timestamp", "long_window", "firing").height
    6
    """
    slo = _check_slo(slo)
    windows = _check_windows(windows)
    errors, total = _frame(errors, "errors"), _frame(total, "total")
    evals = _eval_grid([errors, total], step, None, start, end)
    by = [by] if isinstance(by, str) else list(by)
    kw = dict(step=step, start=int(evals[0]), end=int(evals[-1]), compat=compat)
    out = _burn_rows(errors, total, slo, windows, by, kw)
    order = {w.long + "/" + w.short: i for i, w in enumerate(windows)}
    return (
        out.with_columns(
            (pl.col("long_window") + "/" + pl.col("short_window"))
            .replace_strict(order, return_dtype=pl.Int64)
            .alias("_o")
        )
        .sort(["timestamp", *by, "_o"], nulls_last=True)
        .drop("_o")
    )
