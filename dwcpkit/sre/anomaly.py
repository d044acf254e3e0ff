"""Anomaly detectors over per-region telemetry features, scored against ground-truth incidents.

The original detector (``backend/core/ml/anomaly_detector.py``, digest §5.2) *asserted* its
quality: its false-positive rate was the constant 0.05, and the published TPR 96.8 % / FPR 3.2 %
/ precision 94.7 % came from no labels at all (40 / 1,247 is a false-discovery rate, not an FPR).
Here every figure comes from a confusion matrix against labelled incidents
(:func:`dwcpkit.telemetry.sources.load_incidents`), with the scoring rules written down.

Features (:func:`region_features`)
----------------------------------
Per region, one value per ``bucket`` (default 5 min); ``timestamp`` is the *end* of the bucket,
the moment its value is known. :data:`FEATURES` lists them with their direction (which way is
bad), transform (``log`` for scale-like quantities, so a halving counts as much as a doubling;
``anscombe`` — 2√(n + 3/8) of the events n in the bucket — for rare counts, whose Poisson noise
it makes unit-variance) and ``floor`` — the smallest scale a z-score divides by (in transformed
units), so a series that never moves (peers, health, counts that are usually 0) does not turn
every wobble into an infinite z.

Detectors (each returns a score in z units per region and bucket: the worst feature's)
---------------------------------------------------------------------------------------
``static_z``     the original's tertiary rule: per-feature mean and standard deviation over the
                 whole window (not robust, no daily cycle). Retrospective.
``robust_z``     rolling robust z: (x − median) / (1.4826 · MAD) over the previous ``window``
                 buckets, the current one excluded. Causal: usable online as it stands.
``seasonal``     residuals of a robust two-way decomposition x = day level + time-of-day profile
                 (medians over both days and ±``smooth`` of neighbouring slots, two passes), scaled
                 by the residuals' MAD. Retrospective (it sees the whole window).
``mahalanobis``  multivariate: Mahalanobis distance of the vector of ``seasonal`` residual
                 z-scores under a robust covariance (minimum-covariance-determinant C-steps on
                 75 % of the buckets, shrunk 10 % towards the identity), turned into z units with
                 the Wilson–Hilferty cube-root transform of χ²(p). Retrospective. Kept only if
                 it earns its place: the scores table shows whether it beats the univariate ones.

Scoring (:func:`evaluate`)
--------------------------
A bucket of region r is *positive* when it overlaps an incident of region r; a flagged bucket
in the ``grace`` after an incident's end is ignored (recovery transients are neither hits nor
false alarms); unscored buckets (warm-up, missing data) are ignored.

Point level
    the confusion matrix over (region, bucket): TP, FP, FN, TN → precision TP/(TP+FP), recall
    TP/(TP+FN), F1, false-positive rate FP/(FP+TN).
Event level
    an *alarm* is a run of consecutive flagged buckets in one region. An alarm is true when it
    overlaps [start, end + grace) of an incident of its region, false otherwise. An incident is
    *detected* when a flagged bucket of its region overlaps [start, end). Event precision = true
    alarms / alarms, event recall = detected incidents / incidents, false alarms per hour =
    false alarms / hours of the scored window (all regions together). Detection delay = end
    of the first flagged bucket (when the alarm could fire) − incident start.

Example
-------
>>> cm = confusion_matrix([True, True, False, False], [True, False, True, False])
>>> cm["tp"], cm["fp"], cm["fn"], cm["tn"], cm["precision"], cm["recall"]
(1, 1, 1, 1, 0.5, 0.5)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import polars as pl

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import slo
from dwcpkit.telemetry import schema

__all__ = [
    "Feature",
    "FEATURES",
    "FEATURE_METRICS",
    "DETECTORS",
    "CAUSAL",
    "Detector",
    "region_features",
    "robust_z",
    "static_z",
    "seasonal_residual_z",
    "robust_covariance",
    "mahalanobis_z",
    "detect",
    "confusion_matrix",
    "alarm_events",
    "Evaluation",
    "evaluate",
    "scores_table",
    "sweep",
    "operating_range",
    "AnomalyReview",
    "review",
    "figures",
]

Detector = Literal["static_z", "robust_z", "seasonal", "mahalanobis"]
DETECTORS: tuple[str, ...] = ("static_z", "robust_z", "seasonal", "mahalanobis")
#: Detectors that only use data up to the bucket they score (usable online as they stand).
CAUSAL: frozenset[str] = frozenset({"robust_z"})
_MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class Feature:
    """A per-region feature: title with unit, which way is bad, transform and minimum scale."""

    name: str
    title: str
    direction: Literal["up", "down", "both"]
    transform: Literal["none", "log", "anscombe"]
    floor: float


#: The features :func:`region_features` builds (v3 series where the metric has a version).
FEATURES: dict[str, Feature] = {f.name: f for f in (
    Feature("error_pct", "v3 error ratio (%)", "up", "none", 0.05),
    Feature("latency_p50_s", "v3 median migration latency (s)", "up", "log", 0.05),
    Feature("throughput_gbytes_s", "v3 transfer throughput (GB/s)", "down", "log", 0.03),
    Feature("migrations_per_min", "completed migrations, all versions (/min)", "down", "log", 0.05),
    Feature("peers", "reachable consensus peers (min)", "down", "none", 0.5),
    Feature("consensus_failures_per_min", "consensus failures (/min)", "up", "anscombe", 1.0),
    Feature("byzantine_per_min", "Byzantine detections (/min)", "up", "anscombe", 1.0),
    Feature("health_min", "lowest component health (1 healthy, 0 down)", "down", "none", 0.05),
)}

#: Metric families the features read.
FEATURE_METRICS: tuple[str, ...] = (
    "dwcp_v3_component_errors_total", "dwcp_v3_component_operations_total", "dwcp_v3_migration_latency_seconds",
    "dwcp_v3_throughput_bytes_per_second", "dwcp_v3_peers_connected", "dwcp_v3_consensus_failures_total",
    "dwcp_v3_byzantine_detections_total", "dwcp_v3_component_health",
)


# =================================================================================================
# features
# =================================================================================================


def _metric(frame: pl.DataFrame, name: str, version: str | None = None) -> pl.DataFrame:
    sel = frame.filter(pl.col("metric") == name)
    if version is not None and "version" in sel.columns:
        sel = sel.filter(pl.col("version") == version)
    return sel


def region_features(frame: pl.DataFrame, *, bucket: str = "5m", version: str = "v3") -> pl.DataFrame:
    """Wide frame ``region, timestamp, <feature>..., <feature>_se...`` on a regular ``bucket`` grid
    (nulls where a feature has no value). Counter rates and quantiles follow PromQL
    (:mod:`dwcpkit.sre.slo`); gauges are aggregated in polars over each bucket. Features whose
    metric is absent are left out.

    ``_se`` columns are the sampling standard error of a feature that is computed from a varying
    number of events, in the feature's transformed units: ``error_pct`` binomial under the
    region's median ratio, ``latency_p50_s`` 1.2533 σ / √n of log latency (σ from the region's
    pooled inter-quartile range, n the bucket's migrations), ``migrations_per_min`` Poisson
    1 / √count. The detectors never divide by less than it.

    Raises :class:`~dwcpkit.errors.DataError` when the frame has no region label or none of the
    :data:`FEATURE_METRICS`.

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> rows = [(t * 60_000, "dwcp_v3_peers_connected", 7.0, {"region": "eu"}) for t in range(11)]
    >>> region_features(from_rows(rows))["peers"].to_list()
    [7.0, 7.0]
    """
    b_ms = slo.parse_duration(bucket)
    frame = schema.normalize(frame, source="region_features")
    if frame.height == 0 or "region" not in frame.columns:
        raise DataError("region_features: the frame is empty or has no 'region' label; load the families in "
                        "FEATURE_METRICS from a per-region source")
    ts = frame["timestamp"].dt.epoch("ms")
    lo, hi = int(ts.min()), int(ts.max())
    start, end = (lo // b_ms + 1) * b_ms, -(-hi // b_ms) * b_ms
    grid_kw = {"step": bucket, "start": start, "end": end}
    parts: list[pl.DataFrame] = []

    def add(name: str, f: pl.DataFrame, *extra: str) -> None:
        if f.height:
            parts.append(f.select("region", "timestamp", pl.col("value").cast(pl.Float64).alias(name), *extra))

    b_s = b_ms / 1000

    def per_region(f: pl.DataFrame, name: str) -> pl.DataFrame:
        return slo.sum_by(f, ["region"]).select("region", "timestamp", pl.col("value").alias(name))

    ops = _metric(frame, "dwcp_v3_component_operations_total", version)
    if ops.height:
        err = _metric(frame, "dwcp_v3_component_errors_total", version)
        r = slo.error_ratio(err, ops, bucket, ["region"], **grid_kw)
        r = r.with_columns(pl.when(pl.col("value").is_finite()).then(pl.col("value")))
        n_ops = per_region(slo.rate(ops, bucket, **grid_kw), "_n").with_columns(pl.col("_n") * b_s)
        # binomial sampling error of the ratio under the region's typical ratio (percentage points)
        r = r.join(n_ops, on=["region", "timestamp"], how="left").with_columns(
            pl.col("value").median().over("region").alias("_p0"))
        r = r.with_columns((100 * (pl.col("_p0") * (1 - pl.col("_p0")) / pl.col("_n")).sqrt()).alias("error_pct_se"))
        add("error_pct", r.with_columns(pl.col("value") * 100), "error_pct_se")
    buckets = _metric(frame, "dwcp_v3_migration_latency_seconds_bucket", version)
    if buckets.height:
        base = "dwcp_v3_migration_latency_seconds"
        q = slo.latency_quantile(buckets, base, 0.5, bucket, ["region"], **grid_kw)
        q = q.with_columns(pl.when(pl.col("value").is_finite()).then(pl.col("value")))
        # sampling error of log(median) from n migrations: 1.2533 sigma / sqrt(n), sigma from the
        # region's pooled inter-quartile range of log latency over the whole window
        span = f"{max(hi - lo, b_ms)}ms"
        iqr = [slo.latency_quantile(buckets, base, qq, span, ["region"], at=hi).select("region", pl.col("value").alias(nm))
               for qq, nm in ((0.25, "_q1"), (0.75, "_q3"))]
        n_mig = per_region(slo.rate(_metric(frame, f"{base}_count", version), bucket, **grid_kw), "_n").with_columns(
            pl.col("_n") * b_s)
        q = (q.join(iqr[0], on="region", how="left").join(iqr[1], on="region", how="left")
             .join(n_mig, on=["region", "timestamp"], how="left")
             .with_columns((1.2533 * (pl.col("_q3").log() - pl.col("_q1").log()) / 1.349
                            / pl.col("_n").clip(lower_bound=1).sqrt()).alias("latency_p50_s_se")))
        add("latency_p50_s", q, "latency_p50_s_se")
    count = _metric(frame, "dwcp_v3_migration_latency_seconds_count")
    if count.height:
        r = slo.sum_by(slo.rate(count, bucket, **grid_kw), ["region"])
        # Poisson sampling error of log(count)
        r = r.with_columns((1 / (pl.col("value") * b_s).clip(lower_bound=1).sqrt()).alias("migrations_per_min_se"))
        add("migrations_per_min", r.with_columns(pl.col("value") * 60), "migrations_per_min_se")
    for name, metric in (("consensus_failures_per_min", "dwcp_v3_consensus_failures_total"),
                         ("byzantine_per_min", "dwcp_v3_byzantine_detections_total")):
        sel = _metric(frame, metric)
        if sel.height:
            add(name, slo.sum_by(slo.rate(sel, bucket, **grid_kw), ["region"]).with_columns(pl.col("value") * 60))

    def gauge(metric: str, ver: str | None, inner: str, outer: str, scale: float = 1.0) -> pl.DataFrame:
        sel = _metric(frame, metric, ver)
        if sel.height == 0:
            return sel
        keys = [c for c in schema.series_keys(sel) if c != "metric"]
        per_series = (sel.sort("timestamp")
                      .group_by_dynamic("timestamp", every=f"{b_ms}ms", closed="left", label="right", group_by=keys)
                      .agg(getattr(pl.col("value"), inner)()))
        return (per_series.group_by("region", "timestamp").agg(getattr(pl.col("value"), outer)() * scale)
                .filter(pl.col("timestamp") <= end))

    add("throughput_gbytes_s", gauge("dwcp_v3_throughput_bytes_per_second", version, "mean", "mean", 1e-9))
    add("peers", gauge("dwcp_v3_peers_connected", None, "min", "min"))
    add("health_min", gauge("dwcp_v3_component_health", None, "min", "min"))
    if not parts:
        raise DataError(f"region_features: none of {', '.join(FEATURE_METRICS)} is in the frame")
    regions = sorted({r for p in parts for r in p["region"].drop_nulls().unique().to_list()})
    grid = pl.DataFrame({"timestamp": slo.eval_times(start, end, bucket)}).with_columns(
        pl.col("timestamp").cast(schema.TIMESTAMP_DTYPE))
    out = pl.DataFrame({"region": regions}).join(grid, how="cross")
    for p in parts:
        p = p.with_columns(pl.col("timestamp").cast(schema.TIMESTAMP_DTYPE))
        out = out.join(p, on=["region", "timestamp"], how="left")
    cols = [c for c in FEATURES if c in out.columns]
    se = [f"{c}_se" for c in cols if f"{c}_se" in out.columns]
    return out.select("region", "timestamp", *cols, *se).sort("region", "timestamp")


def _transformed(x: np.ndarray, feat: Feature, bucket_minutes: float = 1.0) -> np.ndarray:
    if feat.transform == "anscombe":  # a rate per minute -> events per bucket -> 2 sqrt(n + 3/8), variance ~1
        return 2.0 * np.sqrt(np.maximum(x, 0.0) * bucket_minutes + 0.375)
    if feat.transform == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)
    return x.astype(np.float64)


def _directed(z: np.ndarray, feat: Feature) -> np.ndarray:
    if feat.direction == "up":
        return np.maximum(z, 0.0)
    if feat.direction == "down":
        return np.maximum(-z, 0.0)
    return np.abs(z)


# =================================================================================================
# univariate detectors (one series; z units, signed)
# =================================================================================================


def robust_z(x: Sequence[float] | np.ndarray, window: int, *, floor: float | np.ndarray = 0.0,
             min_periods: int | None = None) -> np.ndarray:
    """Signed rolling robust z-score: (x[t] − median) / max(1.4826 · MAD, floor) over the previous
    ``window`` values (x[t] itself excluded; NaNs skipped). NaN while fewer than ``min_periods``
    (default ``window // 2``) earlier values exist, and where x[t] is NaN.

    >>> z = robust_z([1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 10.0], 6, floor=0.1)
    >>> round(float(z[-1]), 1)
    11.5
    """
    x = np.asarray(x, dtype=np.float64)
    window = int(window)
    if window < 2:
        raise ParameterError(f"window must be at least 2 buckets, got {window}")
    min_periods = max(1, window // 2 if min_periods is None else int(min_periods))
    n = x.size
    if n == 0:
        return np.empty(0)
    prev = np.concatenate([np.full(window, np.nan), x[:-1]])  # prev[i : i + window] = x[i - window : i]
    win = np.lib.stride_tricks.sliding_window_view(prev, window)[:n]
    counts = np.sum(np.isfinite(win), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN, masked below
        med = np.nanmedian(win, axis=1)
        mad = np.nanmedian(np.abs(win - med[:, None]), axis=1)
    z = _scaled(x - med, np.maximum(_MAD_TO_SD * mad, floor), counts >= min_periods)
    return z


def static_z(x: Sequence[float] | np.ndarray, *, floor: float | np.ndarray = 0.0) -> np.ndarray:
    """Signed z-score against the mean and standard deviation of the whole series (the original's
    "mean ± 3σ" rule; not robust: the anomalies themselves inflate σ). ``floor`` (a number or one
    per value) is the smallest scale divided by.

    >>> [round(v, 3) for v in static_z([1.0, 2.0, 3.0]).tolist()]
    [-1.225, 0.0, 1.225]
    """
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    if not ok.any():
        return np.full(x.size, np.nan)
    mu, sd = float(np.mean(x[ok])), float(np.std(x[ok]))
    return _scaled(x - mu, np.maximum(sd, floor), ok)


def _scaled(dev: np.ndarray, scale: np.ndarray | float, ok: np.ndarray) -> np.ndarray:
    """dev / scale where ok; a zero scale gives 0 for no deviation and ±inf otherwise."""
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), dev.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, dev / np.where(scale > 0, scale, 1.0), np.where(dev == 0, 0.0, np.sign(dev) * np.inf))
    return np.where(ok & np.isfinite(dev), z, np.nan)


def seasonal_residual_z(
    x: Sequence[float] | np.ndarray,
    slot: Sequence[int] | np.ndarray,
    day: Sequence[int] | np.ndarray,
    *,
    slots_per_day: int,
    smooth: int = 6,
    floor: float | np.ndarray = 0.0,
    passes: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Robust two-way decomposition x[d, s] ≈ level[d] + season[s]; returns (signed residual z, expected).

    ``season[s]`` is the median of x − level over every day and the slots within ±``smooth`` of s
    (circular), so one incident on one day barely moves it; ``level[d]`` is the median of
    x − season over day d. ``passes`` alternations. The residual is scaled by
    max(1.4826 · MAD of all residuals, ``floor``).

    >>> import numpy as np
    >>> s = np.tile(np.arange(4), 3); d = np.repeat(np.arange(3), 4)
    >>> x = np.array([0, 5, 0, 5] * 3, dtype=float); x[6] = 50
    >>> z, _ = seasonal_residual_z(x, s, d, slots_per_day=4, smooth=0, floor=1.0)
    >>> int(np.argmax(z)), float(np.round(z[0], 6))
    (6, 0.0)
    """
    x = np.asarray(x, dtype=np.float64)
    slot = np.asarray(slot, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    m = int(slots_per_day)
    if np.any((slot < 0) | (slot >= m)):
        raise ParameterError(f"slot values must be in [0, {m})")
    days = np.unique(day)
    d_idx = np.searchsorted(days, day)
    grid = np.full((days.size, m), np.nan)
    grid[d_idx, slot] = x
    level = np.zeros(days.size)
    season = np.zeros(m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if np.all(np.isnan(grid)):
            return np.full(x.size, np.nan), np.full(x.size, np.nan)
        level = np.nanmedian(grid, axis=1)
        level = np.where(np.isfinite(level), level, 0.0)
        offsets = np.arange(-smooth, smooth + 1)
        for _ in range(max(int(passes), 1)):
            dev = grid - level[:, None]
            cols = (np.arange(m)[:, None] + offsets[None, :]) % m  # (m, 2w+1)
            stack = dev[:, cols]  # (days, m, 2w+1)
            season = np.nanmedian(stack.transpose(1, 0, 2).reshape(m, -1), axis=1)
            season = np.where(np.isfinite(season), season, 0.0)
            season -= np.median(season)
            level = np.nanmedian(grid - season[None, :], axis=1)
            level = np.where(np.isfinite(level), level, 0.0)
        expected_grid = level[:, None] + season[None, :]
        resid = grid - expected_grid
        r = resid[np.isfinite(resid)]
        mad = float(np.median(np.abs(r - np.median(r)))) if r.size else 0.0
    expected = expected_grid[d_idx, slot]
    return _scaled(x - expected, np.maximum(_MAD_TO_SD * mad, floor), np.isfinite(x)), expected


# =================================================================================================
# multivariate
# =================================================================================================


def robust_covariance(
    Z: np.ndarray, *, support: float = 0.75, shrink: float = 0.1, max_iter: int = 20, dof: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Location and covariance of the ``support`` share of rows with the smallest Mahalanobis
    distances, by concentration steps (the C-steps of FAST-MCD, one deterministic start at the
    coordinate-wise median), shrunk ``shrink`` towards the identity, then scaled so that the median
    squared distance is the χ²(``dof``) median (consistency; ``dof`` defaults to the number of
    columns). Returns (mean, covariance).

    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((400, 2)); Z[:20] += 50
    >>> mu, S = robust_covariance(Z)
    >>> bool(np.all(np.abs(mu) < 0.3)), bool(np.all(np.diag(S) < 2))
    (True, True)
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] < Z.shape[1] + 2:
        raise DataError(f"robust_covariance needs a 2-D array with more rows than columns + 1, got shape {Z.shape}")
    if not (0.5 <= support <= 1.0):
        raise ParameterError(f"support must be in [0.5, 1], got {support!r}")
    if not (0.0 <= shrink < 1.0):
        raise ParameterError(f"shrink must be in [0, 1), got {shrink!r}")
    n, p = Z.shape
    h = max(p + 1, int(math.ceil(support * n)))
    eye = np.eye(p)
    d0 = np.sum((Z - np.median(Z, axis=0)) ** 2, axis=1)
    idx = np.sort(np.argsort(d0, kind="stable")[:h])
    for _ in range(max_iter):
        mu = Z[idx].mean(axis=0)
        S = (1 - shrink) * np.cov(Z[idx], rowvar=False).reshape(p, p) + shrink * eye
        d2 = _mahal2(Z, mu, S)
        new = np.sort(np.argsort(d2, kind="stable")[:h])
        if np.array_equal(new, idx):
            break
        idx = new
    # consistency: the h-subset is the central part of the data, so its covariance is too small;
    # rescale so that the median squared distance is the chi-square(p) median (Rousseeuw & Van Driessen)
    med = float(np.median(_mahal2(Z, mu, S)))
    k = p if dof is None else max(1, int(dof))
    chi2_median = k * (1 - 2 / (9 * k)) ** 3
    if med > 0:
        S = S * (med / chi2_median)
    return mu, S


def _mahal2(Z: np.ndarray, mu: np.ndarray, S: np.ndarray) -> np.ndarray:
    D = Z - mu
    return np.einsum("ij,ij->i", D @ np.linalg.pinv(S), D)


def mahalanobis_z(Z: np.ndarray, *, support: float = 0.75, shrink: float = 0.1) -> np.ndarray:
    """Robust Mahalanobis distance of each row of ``Z``, in z units (Wilson–Hilferty: d² ~ χ²(p)
    → ((d²/p)^(1/3) − 1 + 2/(9p)) / √(2/(9p)) ≈ N(0, 1) for rows from the bulk), p the number of
    columns that vary in the bulk (MAD > 0). Non-finite entries count as 0 (the bulk's centre for
    residual z-scores).

    >>> Z = np.zeros((50, 2)); Z[::2, 0] = 1; Z[1::2, 1] = 1; Z[-1] = [30, -30]
    >>> int(np.argmax(mahalanobis_z(Z)))
    49
    """
    Z = np.where(np.isfinite(Z), Z, 0.0)
    # columns that are constant in the bulk (MAD 0: peers, health, counts that are usually 0) add
    # nothing to a typical row's distance, so the reference distribution has fewer degrees of freedom
    mad = np.median(np.abs(Z - np.median(Z, axis=0)), axis=0)
    p = max(1, int(np.sum(mad > 0)))
    mu, S = robust_covariance(Z, support=support, shrink=shrink, dof=p)
    d2 = _mahal2(Z, mu, S)
    c = 2.0 / (9.0 * p)
    return (np.cbrt(np.maximum(d2, 0.0) / p) - (1.0 - c)) / math.sqrt(c)


# =================================================================================================
# detectors over the feature frame
# =================================================================================================


def _slots(ts: pl.Series, bucket_ms: int) -> tuple[np.ndarray, np.ndarray, int]:
    start_ms = ts.dt.epoch("ms").to_numpy() - bucket_ms  # a bucket belongs to the day it starts in
    day = start_ms // 86_400_000
    slot = (start_ms % 86_400_000) // bucket_ms
    return slot, day, int(86_400_000 // bucket_ms)


def detect(
    features: pl.DataFrame,
    detector: Detector,
    *,
    bucket: str = "5m",
    window: str = "2h",
    smooth: str = "30m",
    feature_specs: Mapping[str, Feature] | None = None,
) -> pl.DataFrame:
    """Run one detector over :func:`region_features` output.

    Returns ``region, timestamp, score, feature`` — ``score`` in z units (≥ 0, the worst feature
    in its bad direction; null where no feature could be scored), ``feature`` the one responsible.
    ``window`` is the ``robust_z`` look-back, ``smooth`` the ``seasonal`` slot smoothing (±).
    A column ``<feature>_se`` (sampling standard error, transformed units) raises that bucket's
    scale to at least its value, so a ratio or quantile computed from few events is not over-trusted.

    Example
    -------
    >>> from datetime import datetime, timedelta, timezone
    >>> t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    >>> f = pl.DataFrame({"region": "eu", "timestamp": [t0 + timedelta(minutes=5 * k) for k in range(1, 41)],
    ...                   "error_pct": [0.2] * 39 + [5.0]})
    >>> detect(f, "robust_z")["feature"][-1]
    'error_pct'
    """
    if detector not in DETECTORS:
        raise ParameterError(f"detector={detector!r}; use one of {', '.join(DETECTORS)}")
    specs = dict(feature_specs or FEATURES)
    cols = [c for c in features.columns if c in specs]
    if not cols:
        raise DataError(f"detect: no known feature columns in {features.columns}; expected some of {list(specs)}")
    b_ms = slo.parse_duration(bucket)
    w = max(2, slo.parse_duration(window) // b_ms)
    sm = slo.parse_duration(smooth) // b_ms
    out = []
    for (region,), g in features.sort("region", "timestamp").group_by(["region"], maintain_order=True):
        slot, day, m = _slots(g["timestamp"], b_ms)
        zs = []
        resid = []
        for c in cols:
            feat = specs[c]
            x = _transformed(g[c].cast(pl.Float64).fill_null(np.nan).to_numpy(), feat, b_ms / 60_000)
            floor: float | np.ndarray = feat.floor
            if f"{c}_se" in g.columns:
                se = g[f"{c}_se"].cast(pl.Float64).fill_null(np.nan).to_numpy()
                floor = np.fmax(feat.floor, se)
            if detector == "static_z":
                z = static_z(x, floor=floor)
            elif detector == "robust_z":
                z = robust_z(x, w, floor=floor)
            else:
                z, _ = seasonal_residual_z(x, slot, day, slots_per_day=m, smooth=sm, floor=floor)
            resid.append(z)
            zs.append(_directed(z, feat))
        Zs = np.column_stack(zs)
        if detector == "mahalanobis":
            R = np.column_stack(resid)
            R = np.clip(R, -1e6, 1e6)
            score = mahalanobis_z(R)
            score = np.where(np.all(~np.isfinite(np.column_stack(resid)), axis=1), np.nan, np.maximum(score, 0.0))
            with np.errstate(invalid="ignore"):
                contrib = np.where(np.isfinite(R), np.abs(R), -1.0)
            top = np.argmax(contrib, axis=1)
        else:
            finite = np.isfinite(Zs) | np.isinf(Zs)
            filled = np.where(finite, Zs, -1.0)
            top = np.argmax(filled, axis=1)
            score = np.where(finite.any(axis=1), filled[np.arange(len(top)), top], np.nan)
            score = np.where(np.isinf(score), 1e9, score)
        out.append(pl.DataFrame({
            "region": region, "timestamp": g["timestamp"], "score": score,
            "feature": [cols[i] if np.isfinite(s) else None for i, s in zip(top, score)],
        }).with_columns(pl.col("score").fill_nan(None)))
    return pl.concat(out)


# =================================================================================================
# scoring
# =================================================================================================


def confusion_matrix(flags: Sequence[bool], truth: Sequence[bool], ignore: Sequence[bool] | None = None) -> dict[str, Any]:
    """Point-level confusion matrix and the rates derived from it (``None`` where undefined).

    ``ignore`` marks items scored as neither (grace after an incident, unscored buckets).

    >>> confusion_matrix([True, False, True], [True, True, False], ignore=[False, False, True])["recall"]
    0.5
    """
    f = np.asarray(flags, dtype=bool)
    t = np.asarray(truth, dtype=bool)
    if f.shape != t.shape:
        raise ParameterError(f"flags and truth differ in length ({f.size} vs {t.size})")
    keep = np.ones_like(f) if ignore is None else ~np.asarray(ignore, dtype=bool)
    f, t = f[keep], t[keep]
    tp, fp = int(np.sum(f & t)), int(np.sum(f & ~t))
    fn, tn = int(np.sum(~f & t)), int(np.sum(~f & ~t))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (2 * precision * recall / (precision + recall) if precision and recall else
          (0.0 if recall == 0 or (precision is not None and recall is not None) else None))
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": precision, "recall": recall, "f1": f1,
            "fpr": fp / (fp + tn) if fp + tn else None}


def alarm_events(flagged: pl.DataFrame, *, bucket: str = "5m") -> pl.DataFrame:
    """Runs of consecutive flagged buckets per region: ``region, start, end, buckets, peak, feature``.

    ``flagged`` has ``region, timestamp`` (bucket end), ``flag`` and optionally ``score`` and
    ``feature``. ``start`` is the start of the first bucket, ``end`` the end of the last.

    >>> from datetime import datetime, timedelta, timezone
    >>> t = [datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(minutes=5 * k) for k in range(1, 7)]
    >>> f = pl.DataFrame({"region": "eu", "timestamp": t, "flag": [False, True, True, False, True, False]})
    >>> alarm_events(f)["buckets"].to_list()
    [2, 1]
    """
    b = timedelta(milliseconds=slo.parse_duration(bucket))
    df = flagged.sort("region", "timestamp")
    if "score" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.Float64).alias("score"))
    if "feature" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("feature"))
    df = df.with_columns(pl.col("flag").fill_null(False))
    df = df.with_columns(
        ((pl.col("flag") != pl.col("flag").shift(1).over("region")).fill_null(True)
         | (pl.col("timestamp") - pl.col("timestamp").shift(1).over("region") != b).fill_null(True))
        .cum_sum().over("region").alias("_run"))
    ev = (df.filter(pl.col("flag")).group_by("region", "_run", maintain_order=True)
          .agg((pl.col("timestamp").min() - b).alias("start"), pl.col("timestamp").max().alias("end"),
               pl.len().alias("buckets"), pl.col("score").max().alias("peak"),
               pl.col("feature").sort_by("score", descending=True, nulls_last=True).first().alias("feature")))
    return ev.drop("_run").sort("start", "region")


def _incidents(incidents: pl.DataFrame) -> pl.DataFrame:
    need = {"incident_id", "region", "start", "end"}
    if not need <= set(incidents.columns):
        raise DataError(f"the incident table needs columns {sorted(need)}, got {incidents.columns}")
    inc = incidents.with_columns(pl.col("start").cast(schema.TIMESTAMP_DTYPE), pl.col("end").cast(schema.TIMESTAMP_DTYPE))
    return inc.with_columns(pl.col("end").fill_null(pl.lit(datetime(9999, 1, 1)).cast(schema.TIMESTAMP_DTYPE)))


@dataclass
class Evaluation:
    """How one detector did at one threshold (see the module docstring for the definitions)."""

    detector: str
    threshold: float
    point: dict[str, Any]
    alarms: pl.DataFrame
    incidents: pl.DataFrame
    hours: float
    metrics: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """One row of the scores table."""
        return {"detector": self.detector, "causal": self.detector in CAUSAL, "threshold": self.threshold,
                **self.metrics}


def _pct(v: float | None) -> float | None:
    return None if v is None else 100.0 * v


def evaluate(
    scores: pl.DataFrame,
    incidents: pl.DataFrame,
    *,
    threshold: float = 5.0,
    bucket: str = "5m",
    grace: str = "10m",
    detector: str = "",
) -> Evaluation:
    """Score ``scores`` (from :func:`detect`) against ``incidents`` at ``threshold`` (z units).

    Returns an :class:`Evaluation` with the point-level confusion matrix, the alarm events (each
    marked true/false with its incident), the incidents (detected, first alarm, delay) and
    ``metrics``: point_precision/recall/f1/fpr (%), event_precision/recall/f1 (%), alarms,
    false_alarms, false_alarms_per_hour, delay_median_min, delay_max_min, tp/fp/fn/tn.
    """
    if not (isinstance(threshold, (int, float)) and threshold > 0):
        raise ParameterError(f"threshold must be a positive z value, got {threshold!r}")
    b = timedelta(milliseconds=slo.parse_duration(bucket))
    g = timedelta(milliseconds=slo.parse_duration(grace))
    inc = _incidents(incidents)
    s = scores.with_columns(pl.col("timestamp").cast(schema.TIMESTAMP_DTYPE),
                            (pl.col("score") >= threshold).fill_null(False).alias("flag"),
                            pl.col("score").is_null().alias("_unscored"))
    # label every bucket: positive when (t - b, t] overlaps [start, end) of an incident of its region
    lab = s.join(inc.select("region", pl.col("start").alias("_s"), pl.col("end").alias("_e")), on="region", how="left")
    lab = lab.with_columns(
        ((pl.col("timestamp") - b < pl.col("_e")) & (pl.col("timestamp") > pl.col("_s"))).fill_null(False).alias("_pos"),
        ((pl.col("timestamp") - b < pl.col("_e") + g) & (pl.col("timestamp") > pl.col("_e"))).fill_null(False).alias("_grace"),
    ).group_by("region", "timestamp", maintain_order=True).agg(
        pl.col("flag").first(), pl.col("_unscored").first(), pl.col("_pos").any(), pl.col("_grace").any())
    ignore = (lab["_unscored"] | (lab["_grace"] & ~lab["_pos"])).to_numpy()
    cm = confusion_matrix(lab["flag"].to_numpy(), lab["_pos"].to_numpy(), ignore)

    alarms = alarm_events(s.select("region", "timestamp", "flag", "score", "feature"), bucket=bucket)
    # each alarm: true when it overlaps [start, end + grace) of an incident of its region
    aj = alarms.with_row_index("_a").join(
        inc.select("region", "incident_id", pl.col("start").alias("_s"), pl.col("end").alias("_e")), on="region",
        how="left")
    aj = aj.with_columns(((pl.col("start") < pl.col("_e") + g) & (pl.col("end") > pl.col("_s"))).fill_null(False)
                         .alias("_hit"))
    alarm_truth = aj.group_by("_a", maintain_order=True).agg(
        pl.col("_hit").any().alias("true_alarm"),
        pl.col("incident_id").filter(pl.col("_hit")).first().alias("incident_id"))
    alarms = alarms.with_row_index("_a").join(alarm_truth, on="_a", how="left").drop("_a")

    # each incident: first flagged bucket of its region overlapping [start, end)
    flagged = s.filter(pl.col("flag")).select("region", "timestamp", "feature")
    ij = inc.join(flagged, on="region", how="left").filter(
        (pl.col("timestamp") - b < pl.col("end")) & (pl.col("timestamp") > pl.col("start")))
    first = ij.sort("timestamp").group_by("incident_id", maintain_order=True).agg(
        pl.col("timestamp").first().alias("first_alarm"), pl.col("feature").first().alias("feature"))
    cols = [c for c in ("incident_id", "kind", "region", "start", "end") if c in inc.columns]
    incs = inc.select(cols).join(first, on="incident_id", how="left").with_columns(
        pl.col("first_alarm").is_not_null().alias("detected"),
        ((pl.col("first_alarm") - pl.col("start")).dt.total_seconds() / 60).alias("delay_min"))

    scored = s.filter(~pl.col("_unscored"))
    hours = 0.0
    if scored.height:
        span = scored.group_by("region").agg((pl.col("timestamp").max() - pl.col("timestamp").min()).alias("d"))
        hours = float(span["d"].max().total_seconds() / 3600 + b.total_seconds() / 3600)
    n_alarms = alarms.height
    n_false = int((~alarms["true_alarm"]).sum()) if n_alarms else 0
    n_inc = incs.height
    n_det = int(incs["detected"].sum()) if n_inc else 0
    ev_p = (n_alarms - n_false) / n_alarms if n_alarms else None
    ev_r = n_det / n_inc if n_inc else None
    ev_f1 = (2 * ev_p * ev_r / (ev_p + ev_r) if ev_p and ev_r else
             (0.0 if ev_r == 0 or (ev_p is not None and ev_r is not None) else None))
    delays = incs["delay_min"].drop_nulls()
    metrics = {
        "event_precision_pct": _pct(ev_p), "event_recall_pct": _pct(ev_r), "event_f1_pct": _pct(ev_f1),
        "point_precision_pct": _pct(cm["precision"]), "point_recall_pct": _pct(cm["recall"]),
        "point_f1_pct": _pct(cm["f1"]), "point_fpr_pct": _pct(cm["fpr"]),
        "alarms": n_alarms, "false_alarms": n_false,
        "false_alarms_per_hour": n_false / hours if hours else None,
        "incidents_detected": n_det, "incidents": n_inc,
        "delay_median_min": float(delays.median()) if delays.len() else None,
        "delay_max_min": float(delays.max()) if delays.len() else None,
        "tp": cm["tp"], "fp": cm["fp"], "fn": cm["fn"], "tn": cm["tn"],
    }
    return Evaluation(detector, float(threshold), cm, alarms, incs, hours, metrics)


def scores_table(evaluations: Sequence[Evaluation]) -> pl.DataFrame:
    """One row per evaluation: the metrics of :func:`evaluate`, rounded for reading."""
    df = pl.DataFrame([e.row() for e in evaluations])
    return df.with_columns([pl.col(c).round(1) for c, t in df.schema.items() if t == pl.Float64 and c != "false_alarms_per_hour"]
                           + [pl.col("false_alarms_per_hour").round(3)])


def sweep(
    scores: Mapping[str, pl.DataFrame],
    incidents: pl.DataFrame,
    thresholds: Sequence[float],
    *,
    bucket: str = "5m",
    grace: str = "10m",
) -> pl.DataFrame:
    """Metrics of every detector at every threshold (for precision/recall-vs-threshold charts).

    >>> # sweep({"robust_z": s}, incidents, [3, 5, 8])  -> detector, threshold, event_f1_pct, ...
    """
    rows = []
    for name, sc in scores.items():
        for t in thresholds:
            rows.append(evaluate(sc, incidents, threshold=float(t), bucket=bucket, grace=grace, detector=name).row())
    return pl.DataFrame(rows)


def operating_range(sw: pl.DataFrame) -> pl.DataFrame:
    """Per detector, the thresholds of a :func:`sweep` at which it finds every incident with no
    false alarm (``clean_from``/``clean_to``, null when none), and the highest threshold at
    which it still finds every incident (``full_recall_to``). A wide clean range means the
    incidents stand far above the detector's noise; a narrow one, that the threshold is fragile.

    >>> sw = pl.DataFrame({"detector": ["a"] * 3, "threshold": [2.0, 4.0, 8.0],
    ...                    "event_recall_pct": [100.0, 100.0, 50.0], "false_alarms": [3, 0, 0]})
    >>> operating_range(sw).row(0)
    ('a', 4.0, 4.0, 4.0)
    """
    full = pl.col("event_recall_pct") >= 100.0
    clean = full & (pl.col("false_alarms") == 0)
    return sw.group_by("detector", maintain_order=True).agg(
        pl.col("threshold").filter(clean).min().alias("clean_from"),
        pl.col("threshold").filter(clean).max().alias("clean_to"),
        pl.col("threshold").filter(full).max().alias("full_recall_to"),
    )


# =================================================================================================
# the whole review
# =================================================================================================


@dataclass
class AnomalyReview:
    """Everything :func:`review` computed; the anomaly-review notebook shows these."""

    features: pl.DataFrame
    scores: dict[str, pl.DataFrame]
    evaluations: dict[str, Evaluation]
    table: pl.DataFrame
    sweep: pl.DataFrame
    incidents: pl.DataFrame
    best: str | None
    scoring: str
    threshold: float
    target_recall_pct: float
    target_precision_pct: float
    bucket: str
    verdict_level: str
    reasons: list[str]
    summary: str

    def multivariate_note(self, detector: str = "mahalanobis") -> str:
        """Does the multivariate detector earn its place? Compared with the best univariate one on
        the chosen scoring's F1, at the chosen threshold and across the sweep."""
        if detector not in self.evaluations or self.sweep.height == 0:
            return f"{detector} was not run"
        f1 = f"{self.scoring}_f1_pct"
        uni = [d for d in self.evaluations if d != detector]
        if not uni:
            return f"{detector} is the only detector run: nothing to compare with"
        sw = self.sweep.with_columns(pl.col(f1).fill_null(0.0))
        best_uni = sw.filter(pl.col("detector").is_in(uni)).group_by("threshold").agg(pl.col(f1).max().alias("_u"))
        mv = sw.filter(pl.col("detector") == detector).join(best_uni, on="threshold")
        better, worse = int((mv[f1] > mv["_u"]).sum()), int((mv[f1] < mv["_u"]).sum())
        at = self.table.filter(pl.col("detector") == detector)[f1][0]
        at_u = self.table.filter(pl.col("detector").is_in(uni))[f1].max()
        ratio = pl.col("clean_to") / pl.col("clean_from")
        rng = self.table.select("detector", "clean_from", "clean_to", ratio.alias("_w"))
        mine = rng.filter(pl.col("detector") == detector).row(0, named=True)
        others = rng.filter(pl.col("detector").is_in(uni) & pl.col("_w").is_not_null()).sort("_w", descending=True)
        widest = others.row(0, named=True) if others.height else None

        def span(row: dict | None) -> str:
            return "none" if row is None or row["clean_from"] is None else f"{row['clean_from']:g}-{row['clean_to']:g}"

        wider = mine["_w"] is not None and (widest is None or mine["_w"] > widest["_w"])
        earns = (at or 0) >= (at_u or 0) and (better > worse or wider)
        return (f"{detector}: {self.scoring} F1 {_fmt(at)} % vs best univariate {_fmt(at_u)} % at threshold "
                f"{self.threshold:g}; over the sweep better at {better} threshold(s), worse at {worse}; clean range "
                f"(every incident, no false alarm) {span(mine)} vs widest univariate {span(widest)}"
                + (f" ({widest['detector']})" if widest else "") + ". Rule: it earns its place when its F1 at the "
                "chosen threshold is at least the best univariate one and it is better at more thresholds than "
                "worse or has the wider clean range (ratio of its ends): "
                + ("it earns its place on this data." if earns else "it does not earn its place on this data."))

    def delays(self) -> pl.DataFrame:
        """Per incident, each detector's detection delay in minutes (null: missed)."""
        out = self.incidents.select("incident_id", "kind", "region", "start")
        for name, ev in self.evaluations.items():
            out = out.join(ev.incidents.select("incident_id", pl.col("delay_min").alias(name)), on="incident_id",
                           how="left")
        return out


def _best(table: pl.DataFrame, scoring: str) -> str | None:
    f1 = f"{scoring}_f1_pct"
    other = "point_f1_pct" if scoring == "event" else "event_f1_pct"
    ranked = table.filter(pl.col(f1).is_not_null()).sort(
        [f1, "false_alarms_per_hour", "delay_median_min", other], descending=[True, False, False, True],
        nulls_last=True)
    return ranked["detector"][0] if ranked.height else None


def review(
    frame: pl.DataFrame,
    incidents: pl.DataFrame,
    *,
    detectors: Sequence[str] = DETECTORS,
    threshold: float = 5.0,
    bucket: str = "5m",
    window: str = "2h",
    smooth: str = "30m",
    grace: str = "10m",
    scoring: Literal["event", "point"] = "event",
    target_recall_pct: float = 80.0,
    target_precision_pct: float = 80.0,
    sweep_thresholds: Sequence[float] = (2, 3, 4, 5, 6, 8, 10, 15, 20, 30),
) -> AnomalyReview:
    """Features, every detector's scores, their evaluation against ``incidents``, a threshold
    sweep, the best detector (highest ``scoring``-level F1, then fewest false alarms per hour, then
    shortest median delay) and the verdict: OK when the best detector reaches both targets
    (``scoring`` level), WARN otherwise, and WARN when there is no ground truth to score against.
    """
    if scoring not in ("event", "point"):
        raise ParameterError(f"scoring={scoring!r}; use 'event' or 'point'")
    for d in detectors:
        if d not in DETECTORS:
            raise ParameterError(f"unknown detector {d!r}; use some of {', '.join(DETECTORS)}")
    if not detectors:
        raise ParameterError("no detectors selected")
    feats = region_features(frame, bucket=bucket)
    scores = {d: detect(feats, d, bucket=bucket, window=window, smooth=smooth) for d in detectors}
    inc = _incidents(incidents) if incidents.height else incidents
    if incidents.height == 0:
        return AnomalyReview(feats, scores, {}, pl.DataFrame(), pl.DataFrame(), incidents, None, scoring, threshold,
                             target_recall_pct, target_precision_pct, bucket, "WARN",
                             ["no ground-truth incidents for this source: detectors ran but cannot be scored "
                              "(only the sample data carries labels)"],
                             "detectors not evaluated: no labelled incidents")
    t0, t1 = feats["timestamp"].min(), feats["timestamp"].max()
    inc = inc.filter((pl.col("start") < t1) & (pl.col("end") > t0 - timedelta(milliseconds=slo.parse_duration(bucket))))
    evals = {d: evaluate(scores[d], inc, threshold=threshold, bucket=bucket, grace=grace, detector=d) for d in detectors}
    sw = sweep(scores, inc, sorted(set(float(t) for t in sweep_thresholds) | {float(threshold)}), bucket=bucket,
               grace=grace)
    table = scores_table(list(evals.values())).join(operating_range(sw), on="detector", how="left")
    best = _best(table, scoring)
    level, reasons = "WARN", []
    if best is None:
        reasons.append("no detector could be scored")
        summary = "no detector could be scored"
    else:
        row = table.filter(pl.col("detector") == best).row(0, named=True)
        rec, prec = row[f"{scoring}_recall_pct"], row[f"{scoring}_precision_pct"]
        ok_r = rec is not None and rec >= target_recall_pct
        ok_p = prec is not None and prec >= target_precision_pct
        level = "OK" if ok_r and ok_p else "WARN"
        reasons.append(f"best detector {best} ({scoring} level, threshold {threshold:g}): recall "
                       f"{_fmt(rec)} % (target {target_recall_pct:g} %), precision {_fmt(prec)} % "
                       f"(target {target_precision_pct:g} %)")
        if not ok_r:
            reasons.append(f"{best} misses the recall target: {row['incidents'] - row['incidents_detected']} of "
                           f"{row['incidents']} incidents undetected" if scoring == "event" else
                           f"{best} misses the recall target")
        if not ok_p:
            reasons.append(f"{best} misses the precision target: {row['false_alarms']} false alarms "
                           f"({row['false_alarms_per_hour']:.3f} per hour)" if scoring == "event" else
                           f"{best} misses the precision target")
        reasons.append(f"{best}: {row['false_alarms_per_hour']:.3f} false alarms per hour, median detection delay "
                       f"{_fmt(row['delay_median_min'])} min")
        summary = (f"{best} detects {row['incidents_detected']}/{row['incidents']} incidents with "
                   f"{row['false_alarms']} false alarm(s) in {evals[best].hours:.0f} h")
    return AnomalyReview(feats, scores, evals, table, sw, inc, best, scoring, float(threshold), target_recall_pct,
                         target_precision_pct, bucket, level, reasons, summary)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f}"


# =================================================================================================
# charts
# =================================================================================================


def figures(r: AnomalyReview, *, detector: str | None = None, clip: float = 4.0,
            max_points: int = 600) -> dict[str, Any]:
    """Charts by file name: ``scores`` (metrics per detector, %), ``sweep`` (event F1 vs threshold),
    ``timeline`` (``detector``'s score per region with the incidents shaded; default the best;
    scores clipped at ``clip`` × threshold for readability, and reduced to their maximum over
    coarser buckets when a region has more than ``max_points`` buckets).
    """
    from dwcpkit import charts

    out: dict[str, Any] = {}
    if r.table.height:
        cols = ["event_precision_pct", "event_recall_pct", "event_f1_pct", "point_precision_pct", "point_recall_pct",
                "point_f1_pct"]
        long = r.table.unpivot(index="detector", on=cols, variable_name="metric", value_name="pct").with_columns(
            pl.col("metric").str.replace("_pct$", ""))
        out["scores"] = charts.heatmap(long.fill_null(0.0), x="metric", y="detector", value="pct",
                                       title=f"Detector scores at threshold {r.threshold:g} (%)",
                                       domain=(0, 100)).properties(width=420, height=150)
    if r.sweep.height:
        out["sweep"] = charts.line(r.sweep.with_columns(pl.col("event_f1_pct").fill_null(0.0)), x="threshold",
                                   y="event_f1_pct", color="detector", title="Event-level F1 vs threshold (%)",
                                   x_title="threshold (z units)", y_title="event F1 (%)")
    name = detector or r.best or next(iter(r.scores), None)
    if name is not None:
        cap = clip * r.threshold
        sc = r.scores[name].with_columns(pl.col("score").clip(upper_bound=cap))
        per_region = sc.group_by("region").len()["len"].max() or 0
        if per_region > max_points:  # aggregate in polars before charting: max score per coarser bucket
            every = slo.parse_duration(r.bucket) * math.ceil(per_region / max_points)
            sc = (sc.sort("timestamp").group_by_dynamic("timestamp", every=f"{every}ms", closed="right", label="right",
                                                         group_by="region").agg(pl.col("score").max()))
        windows = r.incidents.select("region", "start", "end") if r.incidents.height else None
        panels = []
        for region in sorted(sc["region"].unique().to_list()):
            ch = charts.time_series(sc.filter(pl.col("region") == region).select("timestamp", "score"), y="score",
                                    title=f"{name} score, {region} (z units, clipped at {cap:g})",
                                    y_title="score (z)", height=110)
            ch = charts.with_threshold(ch, r.threshold, label=f"threshold {r.threshold:g}")
            if windows is not None:
                w = windows.filter(pl.col("region") == region)
                if w.height:
                    ch = charts.with_windows(ch, w)
            panels.append(ch)
        out["timeline"] = charts.stack(panels)
    return out
