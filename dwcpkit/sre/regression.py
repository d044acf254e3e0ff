"""RB-10 regression detection: a baseline window against a current window, as distributions.

The original (``regression-detector.sh``) compared two single numbers per metric, and its
"current" numbers were constants, so baseline and current were always identical; its report's
+25 % error-rate change broke its own 5 % rule and was marked acceptable; a zero baseline divided
by zero. Here each window is the minute-by-minute telemetry of one version in one region (or all),
and every metric is compared three ways:

* **relative change** (the original's rule, thresholds as parameters) and the **absolute change**,
  both of the whole-window statistic: P95 latency = ``histogram_quantile`` of the window's summed
  bucket counts; error ratio = errors / operations; throughput = the transfer-rate gauge weighted
  by completed migrations (:func:`dwcpkit.sre.compare.minute_data`);
* a **block bootstrap** interval of the change: minutes are resampled in blocks of
  ``block_minutes`` *independently* in each window (they are different minutes), the statistic is
  recomputed from each replicate's totals, and the percentile interval of ``current - baseline``
  (and of the relative change when the baseline is positive in every replicate) is reported;
* a one-sided **Mann-Whitney U** test on the per-minute values (normal approximation with tie
  and continuity corrections; per-minute values are autocorrelated, so its p-value is optimistic —
  the bootstrap's blocks are the guard against that).

Decision per metric (``method`` picks the test): **regression** when the relative change is beyond
the regression threshold in the worse direction *and* the change is significant (bootstrap:
the interval of the difference excludes 0; Mann-Whitney: p < alpha); **warning** when it is beyond
the warning threshold, or beyond the regression threshold without significance; **ok** otherwise;
**no data** when a window lacks the metric. Zero baselines: 0 -> 0 is no change, 0 -> x > 0 is
``+inf`` % (a regression if significant); nothing divides by zero.

Verdict: ACT (REGRESSION) if any metric regressed, WARN (WARNING) on warnings or missing data,
else OK (NO REGRESSION). CPU and memory rules of the original are kept as data but the DWCP
telemetry has no such families, so they show as *not in the data*.

Example
-------
>>> relative_change(0.0, 0.0), relative_change(0.0, 0.2), relative_change(2.0, 2.5)
(0.0, inf, 25.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from statistics import NormalDist
from typing import Literal

import numpy as np
import polars as pl

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import compare, slo
from dwcpkit.telemetry import schema
from dwcpkit.telemetry.sources import load, resolve

__all__ = [
    "Rule",
    "ORIGINAL_RULES",
    "Window",
    "relative_change",
    "rankdata",
    "mann_whitney",
    "load_data",
    "RegressionReport",
    "compare_windows",
]


@dataclass(frozen=True)
class Rule:
    """A metric's regression rule: which way is worse and the relative-change thresholds (percent).

    ``warning_pct=None``: no warning tier (the original's error-rate rule). ``source=None``: the
    telemetry has no such family (kept to show the original's rule).
    """

    key: str
    label: str
    unit: str
    worse: Literal["higher", "lower"]
    regression_pct: float | None
    warning_pct: float | None
    source: str | None = "telemetry"

    def __post_init__(self) -> None:
        for name in ("regression_pct", "warning_pct"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not math.isfinite(v) or v < 0):
                raise ParameterError(f"rule {self.key}: {name}={v!r}; give a non-negative percentage or None")
        if self.worse not in ("higher", "lower"):
            raise ParameterError(f"rule {self.key}: worse={self.worse!r}; use 'higher' or 'lower'")


#: The original script's rules (latency P95 +10/+5 %, throughput drop 10/5 %, error rate +5 % with
#: no warning tier, CPU and memory +15/+10 %), plus P50/P99 shown for context (no thresholds).
ORIGINAL_RULES: tuple[Rule, ...] = (
    Rule("p95_latency", "P95 migration latency", "s", "higher", 10.0, 5.0),
    Rule("throughput", "throughput (GB/s)", "GB/s", "lower", 10.0, 5.0),
    Rule("error_ratio", "error ratio (%)", "%", "higher", 5.0, None),
    Rule("p50_latency", "P50 migration latency", "s", "higher", None, None),
    Rule("p99_latency", "P99 migration latency", "s", "higher", None, None),
    Rule("cpu", "CPU usage (%)", "%", "higher", 15.0, 10.0, source=None),
    Rule("memory", "memory usage", "MB", "higher", 15.0, 10.0, source=None),
)
_QUANTILE = {"p50_latency": 0.5, "p95_latency": 0.95, "p99_latency": 0.99}


@dataclass(frozen=True)
class Window:
    """One side of the comparison: ``[start, end)`` of ``version`` in ``region`` (``None``: all regions)."""

    start: datetime
    end: datetime
    version: str = "v3"
    region: str | None = None

    @classmethod
    def parse(cls, start: str | datetime, end: str | datetime, version: str = "v3",
              region: str | None = None) -> Window:
        """From ISO-8601 strings; ``region`` ``"all"``/``""`` means every region.

        >>> Window.parse("2026-11-02T21:55:00Z", "2026-11-02T22:55:00Z", region="all").region is None
        True
        """
        def ts(v: str | datetime, name: str) -> datetime:
            if isinstance(v, str):
                try:
                    v = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
                except ValueError:
                    raise ParameterError(f"{name}={v!r} is not ISO-8601 (e.g. '2026-11-02T21:55:00Z')") from None
            if v.tzinfo is None:
                raise ParameterError(f"{name}={v!r} has no UTC offset; add 'Z'")
            return v.astimezone(timezone.utc)

        s, e = ts(start, "start"), ts(end, "end")
        if e - s < timedelta(minutes=5):
            raise ParameterError(f"window {s:%Y-%m-%d %H:%M}-{e:%H:%M} is shorter than 5 minutes: too few minutes "
                                 "to compare distributions")
        return cls(s, e, version, None if region in (None, "", "all") else region)

    def describe(self) -> str:
        """E.g. ``v3 us-east 2026-11-02 21:55-22:55 UTC``."""
        end = f"{self.end:%H:%M}" if self.end.date() == self.start.date() else f"{self.end:%Y-%m-%d %H:%M}"
        return f"{self.version} {self.region or 'all regions'} {self.start:%Y-%m-%d %H:%M}-{end} UTC"


def relative_change(baseline: float, current: float) -> float:
    """``(current - baseline) / |baseline| * 100``; 0 -> 0 is 0.0 and 0 -> x is ±inf (never a ZeroDivisionError).

    >>> relative_change(100.0, 90.0)
    -10.0
    """
    if baseline is None or current is None or math.isnan(baseline) or math.isnan(current):
        return math.nan
    d = current - baseline
    if baseline == 0:
        return 0.0 if d == 0 else math.copysign(math.inf, d)
    return 100.0 * d / abs(baseline)


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as ``scipy.stats.rankdata``).

    >>> rankdata(np.array([10.0, 20.0, 20.0, 5.0])).tolist()
    [2.0, 3.5, 3.5, 1.0]
    """
    v = np.asarray(values, dtype=float)
    order = np.argsort(v, kind="mergesort")
    sv = v[order]
    new = np.r_[True, sv[1:] != sv[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], sv.size]
    avg = (starts + ends + 1) / 2.0  # average of 1-based ranks starts+1 .. ends
    ranks = np.empty(v.size)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def mann_whitney(x: Sequence[float], y: Sequence[float], alternative: Literal["greater", "less", "two-sided"]
                 = "greater") -> tuple[float, float]:
    """Mann-Whitney U of ``x`` against ``y`` and its p-value (normal approximation, tie and continuity corrected).

    ``alternative="greater"``: ``x`` tends to be larger than ``y``. Same as
    ``scipy.stats.mannwhitneyu(x, y, alternative=..., method="asymptotic")``. All values tied:
    p = 1 (no evidence either way). NaNs are dropped; either side empty is a DataError.

    >>> u, p = mann_whitney([5, 6, 7, 8, 9], [1, 2, 3, 4, 5])
    >>> u, round(p, 4)
    (24.5, 0.008)
    """
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0:
        raise DataError("mann_whitney: a sample is empty (after dropping NaN)")
    ranks = rankdata(np.concatenate([a, b]))
    u1 = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    n = n1 + n2
    _, counts = np.unique(np.concatenate([a, b]), return_counts=True)
    tie = float((counts ** 3 - counts).sum())
    var = n1 * n2 / 12.0 * ((n + 1) - tie / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return u1, 1.0
    mu = n1 * n2 / 2.0
    sd = math.sqrt(var)
    nd = NormalDist()
    if alternative == "greater":
        p = 1.0 - nd.cdf((u1 - mu - 0.5) / sd)
    elif alternative == "less":
        p = nd.cdf((u1 - mu + 0.5) / sd)
    elif alternative == "two-sided":
        z = (abs(u1 - mu) - 0.5) / sd
        p = min(1.0, 2.0 * (1.0 - nd.cdf(z)))
    else:
        raise ParameterError(f"alternative={alternative!r}; use 'greater', 'less' or 'two-sided'")
    return u1, float(min(1.0, max(0.0, p)))


def load_data(source: str, windows: Sequence[Window]) -> pl.DataFrame:
    """The families a comparison needs, for the span of ``windows`` (files and the sample whole)."""
    fams = list(compare.METRICS)
    if resolve(source).kind != "prometheus":
        return load(source, metrics=fams)
    lo = min(w.start for w in windows) - timedelta(minutes=10)
    hi = max(w.end for w in windows)
    return load(source, metrics=fams, start=lo, end=hi, step="60s")


# ---------------------------------------------------------------------------------------------
# per-window data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    minutes: np.ndarray
    le: tuple[str, ...]
    buckets: np.ndarray   # (n, k) per-minute bucket increments
    errors: np.ndarray
    ops: np.ndarray
    tput_num: np.ndarray
    tput_den: np.ndarray


def _window_data(frame: pl.DataFrame, w: Window) -> _Data:
    sel = frame.filter(pl.col("timestamp").is_between(w.start - timedelta(minutes=10), w.end))
    if w.region is not None:
        if "region" not in sel.columns or w.region not in sel["region"].drop_nulls().unique().to_list():
            regions = sorted(frame["region"].drop_nulls().unique().to_list()) if "region" in frame.columns else []
            raise DataError(f"region {w.region!r} has no data in {w.describe()}; regions: {', '.join(regions)}")
        sel = sel.filter(pl.col("region") == w.region)
    try:
        md = compare.minute_data(sel, w.start, w.end, versions=(w.version,))
    except DataError as exc:
        raise DataError(f"{w.describe()}: {exc}") from None
    v = md.versions[w.version]
    return _Data(md.minutes, md.le, v.buckets, v.errors, v.ops, v.tput_num, v.tput_den)


def _hist_q(totals: np.ndarray, le: Sequence[str], q: float) -> np.ndarray:
    """``histogram_quantile(q)`` of each row of bucket totals, by :func:`dwcpkit.sre.slo.histogram_quantile`."""
    r, k = totals.shape
    buckets = pl.DataFrame({
        "timestamp": pl.Series(np.repeat(np.arange(r, dtype=np.int64), k)).cast(schema.TIMESTAMP_DTYPE),
        "metric": pl.Series(["b_bucket"] * (r * k), dtype=pl.String),
        "value": totals.ravel(),
        "le": pl.Series(np.tile(np.asarray(le, dtype=object), r), dtype=pl.String),
    })
    out = np.full(r, np.nan)
    res = slo.histogram_quantile(q, buckets)
    if res.height:
        idx = res["timestamp"].dt.epoch("ms").to_numpy()
        out[idx] = res["value"].to_numpy()
    return out


def _stat(key: str, d: _Data, w: np.ndarray | None = None) -> np.ndarray:
    """The statistic ``key`` of the window (``w`` None: one value) or of each replicate (rows of weights)."""
    cols = np.column_stack([d.buckets, d.errors, d.ops, d.tput_num, d.tput_den])
    totals = cols.sum(axis=0, keepdims=True) if w is None else w @ cols
    k = d.buckets.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if key in _QUANTILE:
            # cumulative buckets: a zero +Inf total means no migration -> NaN, not 0
            res = _hist_q(totals[:, :k], d.le, _QUANTILE[key])
            return np.where(totals[:, k - 1] > 0, res, np.nan)
        err, ops, num, den = (totals[:, k + i] for i in range(4))
        if key == "error_ratio":
            return np.where(ops > 0, 100.0 * err / ops, np.nan)
        if key == "throughput":
            return np.where(den > 0, num / den / 1e9, np.nan)
    raise ParameterError(f"unknown metric {key!r}")


def _per_minute(key: str, d: _Data) -> np.ndarray:
    n = d.minutes.size
    return _stat(key, d, np.eye(n)) if n else np.empty(0)


def _block_weights(n: int, block: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) weights per minute: blocks of ``block`` minutes drawn with replacement."""
    n_blocks = int(math.ceil(n / block))
    wb = compare.bootstrap_weights(n_blocks, n_boot, seed)
    block_of = np.arange(n) // block
    return wb[:, block_of].astype(float)


# ---------------------------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------------------------


@dataclass
class RegressionReport:
    """Everything the regression-compare runbook shows."""

    baseline: Window
    current: Window
    table: pl.DataFrame          # one row per rule
    per_minute: pl.DataFrame     # timestamp, window, metric, value (for charts)
    method: str
    level: str
    label: str
    reasons: list[str]
    summary: str
    params: dict = field(default_factory=dict)


def _worse_sign(rule: Rule) -> float:
    return 1.0 if rule.worse == "higher" else -1.0


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else (
        f"{x:+.1f} %" if math.isfinite(x) else ("+inf %" if x > 0 else "-inf %"))


def compare_windows(frame: pl.DataFrame, baseline: Window, current: Window, *,
                    rules: Sequence[Rule] = ORIGINAL_RULES, method: Literal["bootstrap", "mann-whitney"] = "bootstrap",
                    alpha: float = 0.05, n_boot: int = 2000, block_minutes: int = 5, seed: int = 0) -> RegressionReport:
    """Compare ``current`` with ``baseline`` under ``rules`` (module docstring).

    Example
    -------
    >>> from dwcpkit.telemetry.sources import load
    >>> b = Window.parse("2026-11-02T21:55:00Z", "2026-11-02T22:55:00Z", region="us-east")
    >>> c = Window.parse("2026-11-02T22:55:00Z", "2026-11-02T23:30:00Z", region="us-east")
    >>> r = compare_windows(load("sample"), b, c, n_boot=200)   # doctest: +SKIP
    >>> r.label                                                 # doctest: +SKIP
    'REGRESSION'
    """
    if method not in ("bootstrap", "mann-whitney"):
        raise ParameterError(f"method={method!r}; use 'bootstrap' or 'mann-whitney'")
    if not 0 < alpha < 1:
        raise ParameterError(f"alpha={alpha!r}; give a significance level in (0, 1), e.g. 0.05")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise ParameterError(f"n_boot={n_boot!r}; use at least 100 bootstrap replicates (2000 is typical)")
    if isinstance(block_minutes, bool) or not isinstance(block_minutes, int) or block_minutes < 1:
        raise ParameterError(f"block_minutes={block_minutes!r}; give a positive number of minutes")
    db, dc = _window_data(frame, baseline), _window_data(frame, current)
    if db.le != dc.le:
        raise DataError(f"the windows' latency histograms have different buckets ({db.le} vs {dc.le})")
    wb = _block_weights(db.minutes.size, block_minutes, n_boot, seed)
    wc = _block_weights(dc.minutes.size, block_minutes, n_boot, seed + 1)
    conf = 1 - alpha

    rows, series = [], []
    for rule in rules:
        row = {"metric": rule.label, "key": rule.key, "unit": rule.unit, "worse": rule.worse,
               "baseline": None, "current": None, "abs_change": None, "rel_change_pct": None,
               "diff_ci_low": None, "diff_ci_high": None, "rel_ci_low_pct": None, "rel_ci_high_pct": None,
               "p_value": None, "regression_pct": rule.regression_pct, "warning_pct": rule.warning_pct,
               "significant": None, "status": "not in the data", "note": ""}
        if rule.source is None:
            rows.append(row)
            continue
        b, c = float(_stat(rule.key, db)[0]), float(_stat(rule.key, dc)[0])
        mb, mc = _per_minute(rule.key, db), _per_minute(rule.key, dc)
        for wname, d, vals in (("baseline", db, mb), ("current", dc, mc)):
            series.append(pl.DataFrame({"timestamp": d.minutes, "window": wname, "metric": rule.key, "value": vals}))
        if math.isnan(b) or math.isnan(c):
            row.update(baseline=None if math.isnan(b) else b, current=None if math.isnan(c) else c, status="no data")
            rows.append(row)
            continue
        bb, bc = _stat(rule.key, db, wb), _stat(rule.key, dc, wc)
        diff = bc - bb
        ok = ~np.isnan(diff)
        lo, hi = (np.quantile(diff[ok], [alpha / 2, 1 - alpha / 2]) if ok.sum() >= 10 else (np.nan, np.nan))
        rel_lo = rel_hi = math.nan
        if ok.sum() >= 10 and (bb[ok] > 0).all():
            rel = 100.0 * diff[ok] / bb[ok]
            rel_lo, rel_hi = (float(x) for x in np.quantile(rel, [alpha / 2, 1 - alpha / 2]))
        sign = _worse_sign(rule)
        alt = "greater" if rule.worse == "higher" else "less"
        xm, ym = mc[~np.isnan(mc)], mb[~np.isnan(mb)]
        p = mann_whitney(xm, ym, alt)[1] if xm.size and ym.size else math.nan
        if method == "bootstrap":
            sig = bool(not math.isnan(lo) and (lo > 0 if sign > 0 else hi < 0))
        else:
            sig = bool(not math.isnan(p) and p < alpha)
        relc = relative_change(b, c)
        worse_pct = sign * relc if not math.isnan(relc) else math.nan
        status, note = "ok", ""
        if rule.regression_pct is None and rule.warning_pct is None:
            status = "info"
        elif rule.regression_pct is not None and worse_pct > rule.regression_pct:
            status = "regression" if sig else "warning"
            note = (f"beyond the {rule.regression_pct:g} % regression threshold"
                    + (", significant" if sig else " but not significant"))
        elif rule.warning_pct is not None and worse_pct > rule.warning_pct:
            status, note = "warning", f"beyond the {rule.warning_pct:g} % warning threshold"
        row.update(baseline=b, current=c, abs_change=c - b, rel_change_pct=relc, diff_ci_low=float(lo),
                   diff_ci_high=float(hi), rel_ci_low_pct=rel_lo, rel_ci_high_pct=rel_hi, p_value=p,
                   significant=sig, status=status, note=note)
        rows.append(row)

    schema_ = {"metric": pl.String, "key": pl.String, "unit": pl.String, "worse": pl.String, "baseline": pl.Float64,
               "current": pl.Float64, "abs_change": pl.Float64, "rel_change_pct": pl.Float64,
               "diff_ci_low": pl.Float64, "diff_ci_high": pl.Float64, "rel_ci_low_pct": pl.Float64,
               "rel_ci_high_pct": pl.Float64, "p_value": pl.Float64, "regression_pct": pl.Float64,
               "warning_pct": pl.Float64, "significant": pl.Boolean, "status": pl.String, "note": pl.String}
    table = pl.DataFrame(rows, schema=schema_).with_columns(pl.col(pl.Float64).fill_nan(None))
    per_minute = (pl.concat(series) if series else pl.DataFrame(schema={"timestamp": pl.Int64, "window": pl.String,
                                                                        "metric": pl.String, "value": pl.Float64}))
    per_minute = per_minute.with_columns(pl.col("timestamp").cast(schema.TIMESTAMP_DTYPE),
                                         pl.col("value").fill_nan(None))

    test = ("bootstrap interval of the difference excludes 0" if method == "bootstrap"
            else f"Mann-Whitney p < {alpha:g}")
    reasons = []
    for r in table.iter_rows(named=True):
        if r["status"] in ("regression", "warning"):
            reasons.append(f"{r['metric']}: {r['baseline']:.4g} -> {r['current']:.4g} {r['unit']} "
                           f"({_pct(r['rel_change_pct'])}, {r['abs_change']:+.4g} {r['unit']}), {r['note']}"
                           + (f" ({test})" if r["status"] == "regression" else "") + f": {r['status'].upper()}")
    nodata = table.filter(pl.col("status") == "no data")["metric"].to_list()
    missing = table.filter(pl.col("status") == "not in the data")["metric"].to_list()
    if nodata:
        reasons.append(f"no data in a window for: {', '.join(nodata)}")
    statuses = table["status"].to_list()
    if "regression" in statuses:
        level, label = "ACT", "REGRESSION"
    elif "warning" in statuses or nodata:
        level, label = "WARN", "WARNING"
    else:
        level, label = "OK", "NO REGRESSION"
        checked = table.filter(pl.col("status") == "ok")["metric"].to_list()
        reasons.append(f"within thresholds: {', '.join(checked)}")
    if missing:
        reasons.append(f"not in the DWCP telemetry (the original's rules kept, not evaluated): {', '.join(missing)}")
    summary = f"{current.describe()} vs baseline {baseline.describe()}: {label}"
    return RegressionReport(baseline, current, table, per_minute, method, level, label, reasons, summary,
                            {"alpha": alpha, "n_boot": n_boot, "block_minutes": block_minutes, "seed": seed,
                             "baseline_minutes": int(db.minutes.size), "current_minutes": int(dc.minutes.size)})


def with_thresholds(rules: Sequence[Rule] = ORIGINAL_RULES, **pct: float | None) -> tuple[Rule, ...]:
    """``rules`` with thresholds replaced, e.g. ``with_thresholds(p95_latency_regression=20)``.

    Keyword names are ``<rule key>_regression`` / ``<rule key>_warning``.

    >>> with_thresholds(error_ratio_regression=50)[2].regression_pct
    50.0
    """
    out = []
    keys = {r.key for r in rules}
    for name in pct:
        k, _, tier = name.rpartition("_")
        if k not in keys or tier not in ("regression", "warning"):
            raise ParameterError(f"unknown threshold {name!r}; use <metric>_regression or <metric>_warning with "
                                 f"metric in {', '.join(sorted(keys))}")
    for r in rules:
        kw = {}
        for tier in ("regression", "warning"):
            name = f"{r.key}_{tier}"
            if name in pct:
                v = pct[name]
                kw[f"{tier}_pct"] = None if v is None else float(v)
        out.append(replace(r, **kw) if kw else r)
    return tuple(out)


__all__.append("with_thresholds")
