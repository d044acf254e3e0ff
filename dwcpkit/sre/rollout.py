"""The RB-01 rollout gate over telemetry: v3 in the stage's dwell window against the v1 baseline.

:func:`evaluate_rollout` computes, from a canonical frame holding the v3 collector families
(``version`` label ``v1``/``v3``):

* **gates** — v3 error ratio under an absolute limit (the phase-1 script's 1 %), v3 error ratio
  at most 1.5x v1's and not significantly worse (RolloutErrorRateSpike; two-proportion test),
  v3 P99 migration latency under an absolute cap and at most 1.3x v1's
  (RolloutLatencyRegression), v3 throughput at least 0.8x v1's (RolloutThroughputRegression,
  a HOLD, not a rollback, as in the original), and every v3 component healthy;
* **checks** — the phase-1 health loop: one check per ``check_interval`` over the dwell window,
  each failing condition a trigger, in ``cumulative`` (original) or ``consecutive`` mode;
* the **decision** GO / HOLD / ROLLBACK from :func:`dwcpkit.sre.gates.rollout_decision`.

The baseline is v1 over ``baseline`` before the evaluation time; when v1 carried no traffic
there (after the 100 % stage) it is the last ``baseline`` window in which v1 did, and the report
says so.

Example
-------
>>> from dwcpkit.telemetry.sources import load
>>> report = evaluate_rollout(load("sample"), stage_percent=50)   # doctest: +SKIP
>>> report.decision.label                                          # doctest: +SKIP
'GO'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

from dwcpkit.errors import DataError
from dwcpkit.sre import slo
from dwcpkit.sre.gates import Decision, Gate, TriggerResult, compare_ratio, evaluate_triggers, gate_table, \
    rollout_decision
from dwcpkit.sre.window import load_window, parse_at
from dwcpkit.telemetry.sources import load, resolve

__all__ = ["RolloutThresholds", "RolloutReport", "METRICS", "load_rollout_data", "stage_end", "evaluate_rollout",
           "flag_command", "planned_commands"]

ERRORS = "dwcp_v3_component_errors_total"
OPS = "dwcp_v3_component_operations_total"
LATENCY = "dwcp_v3_migration_latency_seconds"
THROUGHPUT = "dwcp_v3_throughput_bytes_per_second"
HEALTH = "dwcp_v3_component_health"
ROLLOUT = "dwcp_v3_rollout_percentage"
#: Families the rollout gate reads.
METRICS = (ERRORS, OPS, LATENCY, THROUGHPUT, HEALTH, ROLLOUT)


@dataclass(frozen=True)
class RolloutThresholds:
    """Gate limits. Defaults: phase-1 script (1 % errors) and the rollout rules of the alert file
    Prometheus loaded (1.5x errors, 1.3x P99, 0.8x throughput vs v1); ``p99_max_s`` is dwcpkit's
    (the original's 0.5 s SLA is below what moving GBs of memory over a WAN takes)."""

    error_max_pct: float = 1.0
    error_rel_max: float = 1.5
    p99_max_s: float = 5.0
    p99_rel_max: float = 1.3
    throughput_rel_min: float = 0.8
    alpha: float = 0.05


@dataclass
class RolloutReport:
    """Everything the rollout-gate runbook shows."""

    at: datetime
    window: tuple[datetime, datetime]
    baseline_window: tuple[datetime, datetime]
    baseline_note: str
    gates: list[Gate]
    table: pl.DataFrame
    checks: pl.DataFrame
    triggers: TriggerResult
    decision: Decision
    series: dict[str, pl.DataFrame] = field(default_factory=dict)


def load_rollout_data(source: str, *, at: str = "stage-end", dwell_minutes: int = 10,
                      baseline_minutes: int = 60) -> pl.DataFrame:
    """Load what :func:`evaluate_rollout` needs from ``source``.

    Files and the sample data are read whole (the stage or the v1 baseline may lie anywhere in
    them). A Prometheus source is queried for the baseline and dwell windows plus an hour before
    ``at`` (``"stage-end"`` and ``"end"`` meaning now, i.e. the stage being rolled out).
    """
    if resolve(source).kind != "prometheus":
        return load(source, metrics=list(METRICS))
    span = timedelta(minutes=max(dwell_minutes, baseline_minutes)) + timedelta(hours=1)
    return load_window(source, METRICS, at="end" if at == "stage-end" else at, lookback=span)


def stage_end(frame: pl.DataFrame, stage_percent: int) -> datetime:
    """Last time ``dwcp_v3_rollout_percentage`` equalled ``stage_percent``."""
    sel = frame.filter((pl.col("metric") == ROLLOUT) & (pl.col("value") == float(stage_percent)))
    if sel.height == 0:
        seen = sorted(frame.filter(pl.col("metric") == ROLLOUT)["value"].unique().to_list())
        raise DataError(
            f"the data never shows rollout stage {stage_percent} %; stages seen: {seen or 'none'} "
            f"(metric {ROLLOUT}). Pass at=<ISO time> or another stage_percent."
        )
    return sel["timestamp"].max()


def _version(frame: pl.DataFrame, metric: str, version: str) -> pl.DataFrame:
    return frame.filter((pl.col("metric").str.starts_with(metric)) & (pl.col("version") == version))


def _total(frame: pl.DataFrame, window: str, at: datetime) -> float:
    inc = slo.increase(frame, window, at=at) if frame.height else frame
    return float(inc["value"].sum()) if inc.height else 0.0


def _p99(frame: pl.DataFrame, window: str, at: datetime) -> float | None:
    buckets = frame.filter(pl.col("metric") == f"{LATENCY}_bucket")
    if buckets.height == 0:
        return None
    q = slo.histogram_quantile(0.99, slo.sum_by(slo.increase(buckets, window, at=at), ["le"]))
    value = q["value"][0] if q.height else None
    return None if value is None or math.isnan(value) else float(value)


def _mean(frame: pl.DataFrame, lo: datetime, hi: datetime) -> float | None:
    sel = frame.filter(pl.col("timestamp").is_between(lo, hi))
    return float(sel["value"].mean()) if sel.height else None


def _baseline_end(frame: pl.DataFrame, at: datetime, window: timedelta) -> tuple[datetime, str]:
    """End of the v1 baseline window: ``at`` if v1 had traffic in it, else the last time it did."""
    ops = _version(frame, OPS, "v1").filter(pl.col("timestamp") <= at)
    if ops.height == 0:
        raise DataError("no v1 operations in the data: the rollout gate needs the v1 baseline")
    per_t = ops.group_by("timestamp").agg(pl.col("value").sum()).sort("timestamp")
    moving = per_t.filter(pl.col("value").diff() > 0)
    if moving.height == 0:
        raise DataError("v1 operation counters never increase: no v1 traffic to compare against")
    last = moving["timestamp"].max()
    if last >= at - window / 2:
        return at, "v1 in the same window as v3"
    return last, (f"v1 carried no traffic in the evaluation window; baseline is the last {window} "
                  f"in which it did (ending {last:%Y-%m-%d %H:%M} UTC)")


def _fmt_window(minutes: int) -> str:
    return f"{int(minutes)}m"


def evaluate_rollout(
    frame: pl.DataFrame,
    *,
    stage_percent: int = 50,
    at: str = "stage-end",
    dwell_minutes: int = 10,
    check_interval_s: int = 60,
    rate_window_minutes: int = 5,
    baseline_minutes: int = 60,
    thresholds: RolloutThresholds = RolloutThresholds(),
    trigger_mode: Literal["cumulative", "consecutive"] = "consecutive",
    max_triggers: int = 3,
) -> RolloutReport:
    """Gate the rollout stage ``stage_percent`` at time ``at``.

    ``at`` is ``"stage-end"`` (the last sample of that stage), ``"end"`` (newest sample) or an
    ISO-8601 UTC time. The dwell window is ``[at - dwell_minutes, at]``.
    """
    if at == "stage-end":
        t_at = stage_end(frame, stage_percent)
    else:
        t_at = parse_at(at) or frame["timestamp"].max()
    dwell = timedelta(minutes=dwell_minutes)
    win = _fmt_window(dwell_minutes)
    base_td = timedelta(minutes=baseline_minutes)
    base_at, base_note = _baseline_end(frame, t_at, base_td)
    base_win = _fmt_window(baseline_minutes)

    v3_err, v3_ops = _version(frame, ERRORS, "v3"), _version(frame, OPS, "v3")
    v1_err, v1_ops = _version(frame, ERRORS, "v1"), _version(frame, OPS, "v1")
    e3, n3 = _total(v3_err, win, t_at), _total(v3_ops, win, t_at)
    e1, n1 = _total(v1_err, base_win, base_at), _total(v1_ops, base_win, base_at)
    if n3 <= 0:
        raise DataError(f"no v3 operations in the {win} before {t_at:%Y-%m-%d %H:%M} UTC: nothing to gate")
    err3 = 100 * e3 / n3
    err1 = 100 * e1 / n1 if n1 > 0 else None
    p99_3 = _p99(_version(frame, LATENCY, "v3"), win, t_at)
    p99_1 = _p99(_version(frame, LATENCY, "v1"), base_win, base_at)
    thr3 = _mean(_version(frame, THROUGHPUT, "v3"), t_at - dwell, t_at)
    thr1 = _mean(_version(frame, THROUGHPUT, "v1").filter(pl.col("value") > 0), base_at - base_td, base_at)
    health = frame.filter((pl.col("metric") == HEALTH) & pl.col("timestamp").is_between(t_at - dwell, t_at))
    health_min = float(health["value"].min()) if health.height else None
    down = sorted(set(health.filter(pl.col("value") < 1).select(
        pl.concat_str([pl.col("component"), pl.col("region")], separator="@"))
        .to_series().to_list())) if health.height else []

    t = thresholds
    cmp = compare_ratio(e3, n3, e1, n1, alpha=t.alpha)
    gates = [
        Gate("v3 error ratio (%)", err1, err3, t.error_max_pct, "<=", unit="%"),
        Gate("v3/v1 error ratio", err1, err3, t.error_rel_max, "relative", unit="%"),
        cmp.to_gate("v3 error ratio significantly worse than v1", on_fail="WARN"),
        Gate("v3 P99 migration latency (s)", p99_1, p99_3, t.p99_max_s, "<=", unit="s"),
        Gate("v3/v1 P99 migration latency", p99_1, p99_3, t.p99_rel_max, "relative", unit="s"),
        Gate("v3/v1 throughput", thr1, thr3, t.throughput_rel_min, "relative>=", on_fail="WARN", unit="B/s"),
        Gate("v3 components healthy (min health)", 1.0, health_min, 1.0, ">=",
             note=("down: " + ", ".join(down)) if down else ""),
    ]

    step = f"{int(check_interval_s)}s"
    rwin = _fmt_window(rate_window_minutes)
    start = t_at - dwell
    err_series = slo.error_ratio(v3_err, v3_ops, rwin, step=step, start=start, end=t_at)
    p99_series = slo.latency_quantile(_version(frame, LATENCY, "v3"), LATENCY, 0.99, rwin, step=step,
                                      start=start, end=t_at)
    checks = (
        err_series.select("timestamp", (100 * pl.col("value")).alias("error_pct"))
        .join(p99_series.select("timestamp", pl.col("value").alias("p99_s")), on="timestamp", how="full",
              coalesce=True)
        .sort("timestamp")
    )
    triggers = evaluate_triggers(checks, {"error_pct": t.error_max_pct, "p99_s": t.p99_max_s},
                                 trigger_mode, max_triggers)
    decision = rollout_decision(gates, triggers)

    # series for charts: both versions over baseline + dwell, per rate window
    span_start = min(base_at - base_td, start)
    chart_step = f"{max(int(check_interval_s), 60)}s"
    series = {
        "error_pct": slo.error_ratio(_version_any(frame, ERRORS), _version_any(frame, OPS), rwin, ["version"],
                                     step=chart_step, start=span_start, end=t_at)
        .with_columns(pl.col("value") * 100),
        "p99_s": slo.latency_quantile(frame.filter(pl.col("metric") == f"{LATENCY}_bucket"), LATENCY, 0.99, rwin,
                                      ["version"], step=chart_step, start=span_start, end=t_at),
    }
    return RolloutReport(t_at, (start, t_at), (base_at - base_td, base_at), base_note, gates, gate_table(gates),
                         checks, triggers, decision, series)


def _version_any(frame: pl.DataFrame, metric: str) -> pl.DataFrame:
    return frame.filter(pl.col("metric") == metric)


def flag_command(backend: Literal["configmap", "env"], namespace: str, percent: int) -> list[str]:
    """``kubectl`` argv that sets the v3 rollout flag to ``percent`` (RB-01's two flag backends).

    >>> flag_command("env", "production", 0)[-1]
    'FEATURE_FLAG_ROLLOUT=0'
    """
    if backend == "configmap":
        patch = '{"data":{"FEATURE_FLAG_V3_ROLLOUT":"%d"}}' % percent
        return ["kubectl", "-n", namespace, "patch", "configmap", "dwcp-v3-config", "--type", "merge", "-p", patch]
    return ["kubectl", "-n", namespace, "set", "env", "deployment/dwcp-v3", f"FEATURE_FLAG_ROLLOUT={percent}"]


def planned_commands(label: str, *, next_percent: int, backend: Literal["configmap", "env"] = "configmap",
                     namespace: str = "production") -> list[tuple[str, list[str]]]:
    """``(title, argv)`` of what the decision ``label`` calls for: promote on GO, flag to 0 and
    restart on ROLLBACK, nothing on HOLD (stay and re-gate after another dwell window).

    >>> [t for t, _ in planned_commands("ROLLBACK", next_percent=100)]
    ['Set the v3 rollout flag to 0', 'Restart dwcp-v3']
    >>> planned_commands("HOLD", next_percent=100)
    []
    """
    if label == "GO":
        return [(f"Promote rollout to {next_percent} %", flag_command(backend, namespace, next_percent))]
    if label == "ROLLBACK":
        return [("Set the v3 rollout flag to 0", flag_command(backend, namespace, 0)),
                ("Restart dwcp-v3", ["kubectl", "-n", namespace, "rollout", "restart", "deployment/dwcp-v3"])]
    return []
