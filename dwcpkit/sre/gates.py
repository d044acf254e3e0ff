"""Rollout gates, the GO / HOLD / ROLLBACK decision, and canary-vs-baseline statistics.

A :class:`Gate` compares one metric of the candidate (``current``, e.g. v3) with a threshold,
optionally relative to a ``baseline`` (e.g. v1 or the pre-rollout value). :func:`gate_table`
renders gates as the RB-01 table; :func:`evaluate_triggers` replays the phase-1 rollout
script's health loop (reference/dwcp-operations.md RB-01 steps 5-7) in its original
*cumulative* mode or the fixed *consecutive* mode; :func:`rollout_decision` folds both into one
label and level:

=========  =====  ==========================================================
label      level  when
=========  =====  ==========================================================
GO         OK     every gate passes and no check triggered
HOLD       WARN   a WARN gate failed, a gate had no data, or triggers stayed
                  below the rollback limit
ROLLBACK   ACT    an ACT gate failed or the trigger limit was reached
=========  =====  ==========================================================

Levels are plain strings (``"OK"``, ``"WARN"``, ``"ACT"``, ``"ESCALATE"``), the runbook verdict
levels; this module does not import :mod:`dwcpkit.runbook`.

Example
-------
>>> gates = [Gate("error_pct", 0.20, 0.25, 1.0), Gate("p99_ms", 80.0, 84.0, 100.0)]
>>> rollout_decision(gates).label
'GO'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal, NamedTuple

import numpy as np
import polars as pl

from dwcpkit.errors import DataError, ParameterError

__all__ = [
    "LEVELS",
    "LABELS",
    "COMPARISONS",
    "Gate",
    "gate_table",
    "Trigger",
    "TriggerResult",
    "evaluate_triggers",
    "Decision",
    "rollout_decision",
    "RatioComparison",
    "compare_ratio",
]

#: Verdict levels, least to most severe.
LEVELS: tuple[str, ...] = ("OK", "WARN", "ACT", "ESCALATE")
#: Rollout label of each level a rollout decision can take.
LABELS: dict[str, str] = {"OK": "GO", "WARN": "HOLD", "ACT": "ROLLBACK"}

#: Gate comparisons and what passes:
#: ``"<=" "<" ">=" ">"``: ``current <op> threshold``;
#: ``"relative"`` (= ``"relative<="``): ``current <= threshold * baseline + slack``;
#: ``"relative>="``: ``current >= threshold * baseline - slack``;
#: ``"delta<="`` / ``"delta>="``: ``current - baseline <= / >= threshold``;
#: ``"significance"``: ``p_value >= threshold`` (``threshold`` is alpha; see :func:`compare_ratio`).
COMPARISONS: tuple[str, ...] = (
    "<=", "<", ">=", ">", "relative", "relative<=", "relative>=", "delta<=", "delta>=", "significance",
)
_NEEDS_BASELINE = ("relative", "relative<=", "relative>=", "delta<=", "delta>=")


def _missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _num(x: Any, name: str) -> float | None:
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"Gate {name}={x!r} is not a number") from exc


@dataclass(frozen=True)
class Gate:
    """One rollout gate: ``metric``'s ``current`` value against ``threshold``.

    Parameters
    ----------
    metric
        Name shown in the gate table (e.g. ``"error_pct"``, ``"p99_ms v3 vs v1"``).
    baseline
        Reference value (v1, or before the rollout); required by relative/delta comparisons,
        informative otherwise. ``None`` when there is none.
    current
        Candidate value. ``None``/NaN means *no data*: the gate fails with severity ``WARN``
        (hold; never roll back or go ahead on missing numbers).
    threshold
        Limit, factor (relative), allowed change (delta) or alpha (significance).
    comparison
        One of :data:`COMPARISONS`.
    on_fail
        Severity when the gate fails on data: ``"ACT"`` (roll back) or ``"WARN"`` (hold).
    p_value
        For ``"significance"`` gates: the one-sided p-value that ``current`` is worse.
    slack
        Absolute allowance added to relative limits, so a zero baseline does not force
        ``current <= 0`` (default 0: strict).
    unit, note
        Free text for the table and reasons.

    Notes
    -----
    ``delta = current - baseline``; ``delta_pct = 100 * delta / |baseline|``. With a zero
    baseline ``delta_pct`` is ``0.0`` when current is also 0 and ``+inf``/``-inf`` otherwise;
    it is ``None`` when either value is missing. Nothing here divides by zero.

    Example
    -------
    >>> g = Gate("error_ratio v3/v1", baseline=0.002, current=0.004, threshold=1.5, comparison="relative")
    >>> g.passed, g.severity, g.delta_pct
    (False, 'ACT', 100.0)
    """

    metric: str
    baseline: float | None
    current: float | None
    threshold: float
    comparison: str = "<="
    on_fail: Literal["WARN", "ACT"] = "ACT"
    p_value: float | None = None
    slack: float = 0.0
    unit: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.comparison not in COMPARISONS:
            raise ParameterError(f"Gate {self.metric!r}: comparison {self.comparison!r} is not one of {COMPARISONS}")
        if self.on_fail not in ("WARN", "ACT"):
            raise ParameterError(
                f"Gate {self.metric!r}: on_fail={self.on_fail!r}; use 'WARN' (hold) or 'ACT' (roll back)"
            )
        object.__setattr__(self, "baseline", _num(self.baseline, "baseline"))
        object.__setattr__(self, "current", _num(self.current, "current"))
        object.__setattr__(self, "p_value", _num(self.p_value, "p_value"))
        thr = _num(self.threshold, "threshold")
        if thr is None or math.isnan(thr):
            raise ParameterError(f"Gate {self.metric!r}: threshold must be a number, got {self.threshold!r}")
        object.__setattr__(self, "threshold", thr)

    # -- derived values ------------------------------------------------------------------
    @property
    def delta(self) -> float | None:
        """``current - baseline`` or ``None`` when either is missing."""
        if _missing(self.current) or _missing(self.baseline):
            return None
        return self.current - self.baseline  # type: ignore[operator]

    @property
    def delta_pct(self) -> float | None:
        """Relative change in percent; ±inf against a zero baseline, ``None`` when missing."""
        d = self.delta
        if d is None:
            return None
        if self.baseline == 0:
            return 0.0 if d == 0 else math.copysign(math.inf, d)
        return 100.0 * d / abs(self.baseline)  # type: ignore[arg-type]

    @property
    def limit(self) -> float | None:
        """The bound ``current`` is held to (``None`` for significance gates or missing baseline)."""
        c = self.comparison
        if c in ("<=", "<", ">=", ">"):
            return self.threshold
        if c == "significance" or _missing(self.baseline):
            return None
        if c in ("relative", "relative<="):
            return self.threshold * self.baseline + self.slack  # type: ignore[operator]
        if c == "relative>=":
            return self.threshold * self.baseline - self.slack  # type: ignore[operator]
        return self.baseline + self.threshold  # type: ignore[operator]  # delta<= / delta>=

    @property
    def has_data(self) -> bool:
        """False when a value the comparison needs is missing (None/NaN)."""
        if _missing(self.current):
            return False
        if self.comparison == "significance":
            return not _missing(self.p_value)
        if self.comparison in _NEEDS_BASELINE:
            return not _missing(self.baseline)
        return True

    @property
    def passed(self) -> bool:
        """Whether the gate passes (always False without data)."""
        if not self.has_data:
            return False
        c, cur = self.comparison, self.current
        if c == "significance":
            return self.p_value >= self.threshold  # type: ignore[operator]
        lim = self.limit
        if c in ("<=", "relative", "relative<=", "delta<="):
            return cur <= lim  # type: ignore[operator]
        if c == "<":
            return cur < lim  # type: ignore[operator]
        if c == ">":
            return cur > lim  # type: ignore[operator]
        return cur >= lim  # type: ignore[operator]  # >=, relative>=, delta>=

    @property
    def severity(self) -> str | None:
        """``None`` when passing, ``"WARN"`` without data, else ``on_fail``."""
        if self.passed:
            return None
        return "WARN" if not self.has_data else self.on_fail

    @property
    def rule(self) -> str:
        """The pass condition in words, e.g. ``"current <= 1.5 × baseline"``."""
        c, t = self.comparison, f"{self.threshold:g}"
        s = f" + {self.slack:g}" if self.slack else ""
        if c in ("relative", "relative<="):
            return f"current <= {t} × baseline{s}"
        if c == "relative>=":
            return f"current >= {t} × baseline" + (f" - {self.slack:g}" if self.slack else "")
        if c in ("delta<=", "delta>="):
            return f"current - baseline {c[5:]} {t}"
        if c == "significance":
            return f"p(worse) >= {t}"
        return f"current {c} {t}"

    @property
    def reason(self) -> str:
        """One line for a verdict: what was measured against what."""
        unit = f" {self.unit}" if self.unit else ""
        if not self.has_data:
            return f"{self.metric}: no data ({self.rule}) -> hold"
        cur = f"{self.current:.6g}{unit}"
        base = "" if _missing(self.baseline) else f" (baseline {self.baseline:.6g}{unit})"
        extra = f", p={self.p_value:.3g}" if self.comparison == "significance" else ""
        verdict = "pass" if self.passed else f"FAIL -> {self.severity}"
        return f"{self.metric}: {cur}{base}{extra}; rule {self.rule}: {verdict}"

    def row(self) -> dict[str, Any]:
        """The gate as a :func:`gate_table` row."""
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "current": self.current,
            "delta": self.delta,
            "delta_pct": self.delta_pct,
            "threshold": self.threshold,
            "comparison": self.rule,
            "pass": self.passed,
            "severity": self.severity,
        }


_TABLE_SCHEMA = {
    "metric": pl.String,
    "baseline": pl.Float64,
    "current": pl.Float64,
    "delta": pl.Float64,
    "delta_pct": pl.Float64,
    "threshold": pl.Float64,
    "comparison": pl.String,
    "pass": pl.Boolean,
    "severity": pl.String,
}


def gate_table(gates: Sequence[Gate]) -> pl.DataFrame:
    """The RB-01 gate table: metric, baseline, current, delta, delta_pct, threshold, pass.

    Two more columns follow ``pass``: ``comparison`` (the rule in words) is placed after
    ``threshold`` and ``severity`` (null when passing) last. ``delta_pct`` is null when a value
    is missing and ±inf against a zero baseline.

    >>> gate_table([Gate("p99_ms", 80.0, 120.0, 100.0)]).row(0)
    ('p99_ms', 80.0, 120.0, 40.0, 50.0, 100.0, 'current <= 100', False, 'ACT')
    """
    return pl.DataFrame([g.row() for g in gates], schema=_TABLE_SCHEMA, orient="row")


# --------------------------------------------------------------------------------------------
# the phase-1 script's trigger loop
# --------------------------------------------------------------------------------------------

_OPS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}


@dataclass(frozen=True)
class Trigger:
    """One failed condition in one health check."""

    check: int              # 0-based check number
    timestamp: Any          # the check's timestamp column value, if any
    metric: str
    value: float | None     # None: no measurement
    op: str                 # the trigger condition: value <op> threshold
    threshold: float

    def __str__(self) -> str:
        if self.value is None:
            return f"check {self.check}: {self.metric} no data"
        return f"check {self.check}: {self.metric} {self.value:g} {self.op} {self.threshold:g}"


@dataclass(frozen=True, eq=False)
class TriggerResult:
    """Outcome of :func:`evaluate_triggers`.

    ``count`` is the final counter (cumulative: triggers so far; consecutive: current run of
    failing checks); ``fired_at`` is the first check at which it reached ``max_triggers``.
    ``table`` has one row per check: ``check``, ``timestamp`` (when given), ``failing``
    (list of metrics), ``triggers``, ``counter``, ``fired``.
    """

    mode: str
    max_triggers: int
    checks: int
    triggers: tuple[Trigger, ...]
    count: int
    longest_run: int
    fired: bool
    fired_at: int | None
    table: pl.DataFrame = field(repr=False)

    @property
    def summary(self) -> str:
        """One line for reasons and reports."""
        what = "triggers" if self.mode == "cumulative" else "consecutive failing checks"
        if self.fired:
            return (f"rollback limit reached at check {self.fired_at}: {self.max_triggers} {what} "
                    f"({len(self.triggers)} triggers in {self.checks} checks, mode {self.mode})")
        if self.triggers:
            return (f"{len(self.triggers)} trigger(s) in {self.checks} checks stayed below the rollback limit "
                    f"({self.max_triggers} {what}, mode {self.mode}; longest run {self.longest_run})")
        return f"no triggers in {self.checks} checks"


def evaluate_triggers(
    samples: pl.DataFrame,
    thresholds: Mapping[str, float | tuple[str, float]],
    mode: Literal["cumulative", "consecutive"] = "cumulative",
    max_triggers: int = 3,
    *,
    missing: Literal["trigger", "ignore"] = "trigger",
) -> TriggerResult:
    """Replay the rollout health loop: one row of ``samples`` per check, in time order.

    Each condition that fails in a check appends a trigger (RB-01 step 5). ``thresholds`` maps a
    column to the value above which it triggers (``{"error_pct": 1.0, "p99_ms": 100}``), or to
    ``(op, value)`` for another direction (``{"ready_fraction": ("<", 1.0)}``). A null/NaN
    measurement triggers when ``missing="trigger"`` (default: an unreadable check is not a
    healthy one) and is skipped with ``"ignore"``.

    Modes:

    ``"cumulative"`` — the original script: triggers are never cleared and the rollout rolls back
    once ``max_triggers`` triggers (one per failing condition) have accumulated, so three isolated
    blips in ten minutes roll back.

    ``"consecutive"`` — only a run of ``max_triggers`` consecutive failing checks rolls back; a
    clean check resets the run.

    Example
    -------
    >>> checks = pl.DataFrame({"error_pct": [2.0, 0.1, 0.1, 2.0, 0.1, 0.1, 2.0], "p99_ms": [50.0] * 7})
    >>> evaluate_triggers(checks, {"error_pct": 1.0, "p99_ms": 100}, "cumulative").fired
    True
    >>> evaluate_triggers(checks, {"error_pct": 1.0, "p99_ms": 100}, "consecutive").fired
    False
    """
    if mode not in ("cumulative", "consecutive"):
        raise ParameterError(f"trigger mode {mode!r}; use 'cumulative' (original script) or 'consecutive'")
    if missing not in ("trigger", "ignore"):
        raise ParameterError(f"missing={missing!r}; use 'trigger' or 'ignore'")
    if isinstance(max_triggers, bool) or not isinstance(max_triggers, (int, np.integer)) or max_triggers < 1:
        raise ParameterError(f"max_triggers={max_triggers!r} must be a positive integer")
    if not isinstance(samples, pl.DataFrame):
        raise ParameterError(f"samples must be a polars DataFrame with one row per check, got {type(samples).__name__}")
    if not thresholds:
        raise ParameterError("thresholds is empty; give at least one column, e.g. {'error_pct': 1.0}")
    conds: list[tuple[str, str, float]] = []
    for col, spec in thresholds.items():
        op, thr = (">", spec) if not isinstance(spec, (tuple, list)) else tuple(spec)
        if op not in _OPS:
            raise ParameterError(f"threshold for {col!r}: operator {op!r} is not one of {sorted(_OPS)}")
        if col not in samples.columns:
            raise ParameterError(f"threshold column {col!r} is not in the checks frame; columns: {samples.columns}")
        if not samples.schema[col].is_numeric() and samples.schema[col] not in (pl.Boolean, pl.Null):
            raise DataError(f"check column {col!r} has type {samples.schema[col]}; it must be numeric")
        conds.append((col, op, float(thr)))
    n = samples.height
    stamps = samples["timestamp"].to_list() if "timestamp" in samples.columns else [None] * n
    per_check: list[list[Trigger]] = [[] for _ in range(n)]
    for col, op, thr in conds:
        vals = samples[col].cast(pl.Float64).to_numpy()
        nan = np.isnan(vals)
        with np.errstate(invalid="ignore"):
            bad = _OPS[op](np.where(nan, 0.0, vals), thr) & ~nan
        if missing == "trigger":
            bad |= nan
        for i in np.flatnonzero(bad):
            per_check[i].append(Trigger(int(i), stamps[i], col, None if nan[i] else float(vals[i]), op, thr))
    triggers: list[Trigger] = []
    counter = run = longest = 0
    fired_at: int | None = None
    rows = []
    for i, found in enumerate(per_check):
        triggers.extend(found)
        run = run + 1 if found else 0
        longest = max(longest, run)
        counter = len(triggers) if mode == "cumulative" else run
        if fired_at is None and counter >= max_triggers:
            fired_at = i
        rows.append({"check": i, "timestamp": stamps[i], "failing": [t.metric for t in found],
                     "triggers": len(found), "counter": counter, "fired": fired_at is not None})
    table = pl.DataFrame(
        rows,
        schema={"check": pl.Int64, "timestamp": samples.schema.get("timestamp", pl.Null),
                "failing": pl.List(pl.String), "triggers": pl.Int64, "counter": pl.Int64, "fired": pl.Boolean},
        orient="row",
    )
    if "timestamp" not in samples.columns:
        table = table.drop("timestamp")
    return TriggerResult(mode, int(max_triggers), n, tuple(triggers), counter, longest,
                         fired_at is not None, fired_at, table)


# --------------------------------------------------------------------------------------------
# decision
# --------------------------------------------------------------------------------------------


class Decision(NamedTuple):
    """``(label, level, reasons)``: GO/HOLD/ROLLBACK, OK/WARN/ACT and why."""

    label: str
    level: str
    reasons: list[str]


def rollout_decision(gates: Sequence[Gate], trigger_result: TriggerResult | None = None) -> Decision:
    """Fold gates and the trigger loop into GO (OK), HOLD (WARN) or ROLLBACK (ACT).

    ROLLBACK when an ``ACT`` gate fails or the trigger limit was reached; HOLD when a ``WARN``
    gate fails, a gate has no data, triggers occurred below the limit, or nothing at all was
    evaluated; GO otherwise — so all-compliant renders GO (the Phase 6 dashboard's GO/NO-GO
    expression could not). Reasons list failing gates first, then the trigger summary.

    Example
    -------
    >>> rollout_decision([Gate("error_pct", 0.2, 3.0, 1.0)])
    Decision(label='ROLLBACK', level='ACT', reasons=['error_pct: 3 (baseline 0.2); rule current <= 1: FAIL -> ACT'])
    """
    gates = list(gates)
    for g in gates:
        if not isinstance(g, Gate):
            raise ParameterError(f"rollout_decision takes Gate objects, got {type(g).__name__}")
    failing = [g for g in gates if not g.passed]
    reasons = [g.reason for g in failing if g.severity == "ACT"] + [g.reason for g in failing if g.severity == "WARN"]
    level = "OK"
    if any(g.severity == "ACT" for g in failing):
        level = "ACT"
    elif failing:
        level = "WARN"
    if trigger_result is not None:
        if trigger_result.fired:
            level = "ACT"
            reasons.append(trigger_result.summary)
            reasons.extend(str(t) for t in trigger_result.triggers[:10])
        elif trigger_result.triggers:
            level = max(level, "WARN", key=LEVELS.index)
            reasons.append(trigger_result.summary)
    evaluated = bool(gates) or (trigger_result is not None and trigger_result.checks > 0)
    if not evaluated:
        return Decision("HOLD", "WARN", ["nothing evaluated: no gates and no health checks"])
    if level == "OK":
        reasons = [f"all {len(gates)} gates pass"] if gates else []
        if trigger_result is not None:
            reasons.append(trigger_result.summary)
    return Decision(LABELS[level], level, reasons)


# --------------------------------------------------------------------------------------------
# canary vs baseline
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatioComparison:
    """Whether the candidate's error ratio is significantly worse than the baseline's.

    ``current_ci``/``baseline_ci`` are two-sided Wilson score intervals at ``1 - alpha``;
    ``p_value`` is one-sided (H1: current ratio > baseline ratio); ``method`` names the test.
    """

    current_ratio: float
    baseline_ratio: float
    current_ci: tuple[float, float]
    baseline_ci: tuple[float, float]
    difference: float
    ratio: float
    z: float | None
    p_value: float
    alpha: float
    method: str
    significantly_worse: bool

    def to_gate(self, metric: str = "error ratio vs baseline", on_fail: Literal["WARN", "ACT"] = "ACT") -> Gate:
        """A ``"significance"`` gate that fails when the candidate is significantly worse."""
        return Gate(metric, self.baseline_ratio, self.current_ratio, self.alpha, "significance",
                    on_fail=on_fail, p_value=self.p_value, note=self.method)


def _wilson(k: float, n: float, z: float) -> tuple[float, float]:
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _fisher_greater(a: int, n1: int, c: int, n2: int) -> float:
    """One-sided Fisher exact p = P(X >= a), X ~ Hypergeometric(N = n1 + n2, K = a + c, draws n1)."""
    big_n, big_k = n1 + n2, a + c
    lo, hi = max(0, n1 - (big_n - big_k)), min(big_k, n1)
    ks = np.arange(max(a, lo), hi + 1)
    if ks.size == 0:
        return 0.0
    denom = _log_comb(big_n, n1)
    logp = np.array([_log_comb(big_k, int(k)) + _log_comb(big_n - big_k, n1 - int(k)) - denom for k in ks])
    m = logp.max()
    return float(min(1.0, math.exp(m) * np.exp(logp - m).sum()))


def compare_ratio(
    current_errors: float,
    current_total: float,
    base_errors: float,
    base_total: float,
    *,
    alpha: float = 0.05,
) -> RatioComparison:
    """Is the candidate's error ratio significantly worse than the baseline's?

    Method: the one-sided pooled two-proportion z-test (H0: equal ratios, H1: candidate worse)
    when every expected cell count (pooled ratio × total, for errors and successes of both
    groups) is at least 5; otherwise Fisher's exact test, one-sided, on counts rounded to whole
    numbers. Each ratio also gets a Wilson score interval at confidence ``1 - alpha``.
    Counts may be fractional (e.g. ``increase()`` results). A side with no traffic gives NaN
    ratios, p-value NaN, and ``significantly_worse=False`` (method ``"no data"``).

    Example
    -------
    >>> r = compare_ratio(30, 1000, 10, 1000)
    >>> r.method, r.significantly_worse, round(r.p_value, 4)
    ('two-proportion z-test (pooled, one-sided)', True, 0.0007)
    """
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ParameterError(f"alpha={alpha} must be between 0 and 1 (e.g. 0.05)")
    vals = {"current_errors": current_errors, "current_total": current_total,
            "base_errors": base_errors, "base_total": base_total}
    for k, v in vals.items():
        if v is None or not math.isfinite(float(v)) or float(v) < 0:
            raise DataError(f"compare_ratio: {k}={v!r} must be a finite count >= 0")
    e1, n1, e2, n2 = (float(v) for v in vals.values())
    if e1 > n1 or e2 > n2:
        raise DataError(f"compare_ratio: more errors than operations ({e1:g}/{n1:g} vs {e2:g}/{n2:g}); "
                        "pass error and total counts over the same window")
    zc = NormalDist().inv_cdf(1 - alpha / 2)
    p1 = e1 / n1 if n1 > 0 else math.nan
    p2 = e2 / n2 if n2 > 0 else math.nan
    ci1, ci2 = _wilson(e1, n1, zc), _wilson(e2, n2, zc)
    if n1 <= 0 or n2 <= 0:
        return RatioComparison(p1, p2, ci1, ci2, math.nan, math.nan, None, math.nan, alpha, "no data", False)
    diff = p1 - p2
    ratio = p1 / p2 if p2 > 0 else (math.nan if p1 == 0 else math.inf)
    pooled = (e1 + e2) / (n1 + n2)
    expected = [pooled * n1, (1 - pooled) * n1, pooled * n2, (1 - pooled) * n2]
    if min(expected) >= 5:
        se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = diff / se
        p_value = NormalDist().cdf(-z)
        method = "two-proportion z-test (pooled, one-sided)"
    else:
        z = None
        p_value = _fisher_greater(round(e1), round(n1), round(e2), round(n2))
        method = "Fisher exact test (one-sided)"
    return RatioComparison(p1, p2, ci1, ci2, diff, ratio, z, p_value, alpha, method, p_value < alpha)
