"""RB-16 post-deployment checklist: every item the telemetry can answer, pulled from data, pass/fail, sign-off.

The original checklist (``docs/phase6/POST_DEPLOYMENT_CHECKLIST.md``) is a document of boxes to
tick. Here each item the DWCP v3 telemetry can answer is measured over a window after the rollout
(:data:`ITEMS`) and gets a status:

``pass``      meets its target;
``warn``      misses its target but not its rollback trigger (the checklist's 2-hour triggers);
``fail``      crosses the rollback trigger, or a critical condition is false;
``no data``   the item is measurable but the window holds no data for it (never a pass).

Items the telemetry cannot answer (host CPU and memory, database pool and replication lag, cache
hit rate, queue lag, smoke tests, user reports, security scan, data corruption...) are listed as
``manual`` with where to check them (:data:`MANUAL`); some have their own dwcpkit runbook.

Sign-off: **NO** (ACT) when an item fails, **PARTIAL** (WARN) on a warning or missing data, **YES**
(OK) otherwise; manual items are listed for a human to confirm and do not change it.

Latency: the checklist's P50/P95/P99 < 100/200/500 ms are for API requests, which the DWCP collector
does not export; the items here are about *migration* latency, with dwcpkit's defaults
(:class:`Thresholds`) as parameters. The error-ratio target (< 0.1 %) and trigger (> 1 %) are the
checklist's own.

Example
-------
>>> from dwcpkit.telemetry.sources import load
>>> r = evaluate(load("sample"), at="rollout-complete")   # doctest: +SKIP
>>> r.sign_off                                            # doctest: +SKIP
'PARTIAL'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import polars as pl

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import incidents, slo
from dwcpkit.sre.window import parse_at
from dwcpkit.telemetry import schema
from dwcpkit.telemetry.sources import load, resolve

__all__ = [
    "Thresholds",
    "ITEMS",
    "MANUAL",
    "METRICS",
    "load_data",
    "resolve_window",
    "counter_resets",
    "ChecklistReport",
    "evaluate",
]

_LATENCY = "dwcp_v3_migration_latency_seconds"
_ERRORS = "dwcp_v3_component_errors_total"
_OPS = "dwcp_v3_component_operations_total"
_HEALTH = "dwcp_v3_component_health"
_PEERS = "dwcp_v3_peers_connected"
_BYZ = "dwcp_v3_byzantine_detections_total"
_ROLLOUT = "dwcp_v3_rollout_percentage"
#: Families the checklist reads (plus triage's).
METRICS: tuple[str, ...] = tuple(sorted({f"{_LATENCY}_bucket", f"{_LATENCY}_count", _ERRORS, _OPS, _HEALTH, _PEERS,
                                         _BYZ, _ROLLOUT} | set(incidents.DETECTION_METRICS)))


@dataclass(frozen=True)
class Thresholds:
    """Targets (pass) and rollback triggers (fail) of the measured items."""

    p50_target_s: float = 1.0
    p95_target_s: float = 2.5
    p95_trigger_s: float = 5.0
    p99_target_s: float = 5.0
    error_target_pct: float = 0.1
    error_trigger_pct: float = 1.0
    expected_peers: int = 7

    def __post_init__(self) -> None:
        for k, v in self.__dict__.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ParameterError(f"threshold {k}={v!r}; give a non-negative number")
        if self.p95_trigger_s < self.p95_target_s:
            raise ParameterError(f"p95_trigger_s ({self.p95_trigger_s}) is below p95_target_s ({self.p95_target_s})")
        if self.error_trigger_pct < self.error_target_pct:
            raise ParameterError(f"error_trigger_pct ({self.error_trigger_pct}) is below error_target_pct "
                                 f"({self.error_target_pct})")


#: Measured items: id -> (section, item, the original checklist's wording).
ITEMS: dict[str, tuple[str, str, str]] = {
    "rollout": ("rollout", "rollout at 100 %", "5% -> 25% -> 50% -> 100%"),
    "health": ("immediate validation", "every v3 component healthy", "health endpoint 200"),
    "p50": ("immediate validation", "P50 migration latency (s)", "p50 < 100 ms (API)"),
    "p95": ("immediate validation", "P95 migration latency (s)", "p95 < 200 ms (API); rollback if > 1000 ms"),
    "p99": ("immediate validation", "P99 migration latency (s)", "p99 < 500 ms (API)"),
    "errors": ("immediate validation", "v3 error ratio (%)", "error < 0.1 %; rollback if > 1 %"),
    "restarts": ("rollout", "no v3 service restarts", "no restarts"),
    "peers": ("regional checks", "every consensus peer reachable", "regional health"),
    "byzantine": ("regional checks", "no Byzantine detections", "(dwcpkit: consensus safety)"),
    "triage": ("user impact", "no failure found by triage", "0 reported issues"),
    "rollback_ready": ("rollback readiness", "v1 still running (rollback target)", "rollback readiness"),
}

#: Checklist items no telemetry here can answer: (section, item, where to check).
MANUAL: tuple[tuple[str, str, str], ...] = (
    ("pre-deploy gates", "unit coverage > 80 %", "CI report"),
    ("pre-deploy gates", "security scan: no HIGH/CRITICAL", "the security-posture runbook (audit report)"),
    ("immediate validation", "CPU 40-70 %, memory 50-75 %", "host dashboards (not in the DWCP collector)"),
    ("database", "connection pool < 80 %, replication lag < 1 s", "database monitoring"),
    ("cache and queues", "cache hit > 80 %, queue lag < 1000", "cache / queue monitoring"),
    ("extended validation", "smoke tests, integrations, dashboards, logs", "the synthetic-probe runbook; dashboards"),
    ("user impact", "user-facing error < 0.1 %, 0 user-reported issues", "support queue, status page"),
    ("rollback triggers", "no data corruption", "the data-integrity runbook"),
    ("rollback triggers", "no critical feature broken, < 5 user-reported incidents", "support queue"),
    ("day 1-3", "checks at 08:00 / 14:00 / 20:00, Day 2-3 review", "re-run this checklist at those times"),
)


def resolve_window(frame: pl.DataFrame, at: str, window_minutes: int) -> tuple[datetime, datetime]:
    """``(start, end)`` of the checked window.

    ``"rollout-complete"``: from the first sample at which the rollout reached 100 % to
    ``window_minutes`` later; ``"end"``: the ``window_minutes`` before the newest sample; an ISO
    time: the ``window_minutes`` before it.
    """
    if isinstance(window_minutes, bool) or not isinstance(window_minutes, int) or window_minutes < 5:
        raise ParameterError(f"window_minutes={window_minutes!r}; give at least 5 minutes")
    span = timedelta(minutes=window_minutes)
    if at == "rollout-complete":
        r = frame.filter((pl.col("metric") == _ROLLOUT) & (pl.col("value") >= 100))
        if r.height == 0:
            seen = sorted(frame.filter(pl.col("metric") == _ROLLOUT)["value"].unique().to_list())
            raise DataError(f"the rollout never reached 100 % in the data (stages seen: {seen or 'none'}); "
                            "pass at='end' or an ISO time to check a window anyway")
        start = r["timestamp"].min()
        return start, start + span
    end = parse_at(at)
    if end is None:
        if frame.height == 0:
            raise DataError("no samples: nothing to check")
        end = frame["timestamp"].max()
    return end - span, end


def load_data(source: str, at: str = "rollout-complete", window_minutes: int = 60, *,
              search_days: int = 7) -> pl.DataFrame:
    """The families :func:`evaluate` needs. Files and the sample are read whole; from Prometheus,
    ``rollout-complete`` is found on a 5-minute grid over the last ``search_days`` (so to within
    5 minutes), then the window (plus 15 minutes for rates) is loaded at a 60 s step."""
    if resolve(source).kind != "prometheus":
        return load(source, metrics=list(METRICS))
    now = datetime.now(timezone.utc)
    if at == "rollout-complete":
        ro = load(source, metrics=[_ROLLOUT], start=now - timedelta(days=search_days), end=now, step="5m")
        start, end = resolve_window(ro, at, window_minutes)
    else:
        end = parse_at(at) or now
        start = end - timedelta(minutes=window_minutes)
    return load(source, metrics=list(METRICS), start=start - timedelta(minutes=15), end=min(end, now), step="60s")


def counter_resets(frame: pl.DataFrame, start: datetime, end: datetime, *, version: str = "v3") -> pl.DataFrame:
    """Counter resets (a service restart) of ``version`` in ``(start, end]``: region, first reset time, series count.

    A reset is a sample lower than the one before it, in any ``*_total`` / ``*_count`` series.
    """
    sel = frame.filter((pl.col("metric").str.ends_with("_total") | pl.col("metric").str.ends_with("_count"))
                       & (pl.col("version") == version)
                       & pl.col("timestamp").is_between(start - timedelta(minutes=5), end))
    out_schema = {"region": pl.String, "first_reset": schema.TIMESTAMP_DTYPE, "series": pl.UInt32}
    if sel.height == 0:
        return pl.DataFrame(schema=out_schema)
    keys = schema.series_keys(sel)
    drops = (sel.sort([*keys, "timestamp"])
             .with_columns((pl.col("value") < pl.col("value").shift(1).over(keys)).alias("reset"))
             .filter(pl.col("reset") & (pl.col("timestamp") > start)))
    if drops.height == 0:
        return pl.DataFrame(schema=out_schema)
    return drops.group_by("region").agg(pl.col("timestamp").min().alias("first_reset"), pl.len().alias("series")) \
        .sort("region").cast(out_schema)


@dataclass
class ChecklistReport:
    """Everything the post-deploy-checklist runbook shows."""

    start: datetime
    end: datetime
    table: pl.DataFrame     # section, item, value, target, trigger, status, evidence, original
    manual: pl.DataFrame    # section, item, where
    sign_off: str           # YES | PARTIAL | NO
    level: str
    reasons: list[str]
    summary: str


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}g}"


def _graded(value: float | None, target: float, trigger: float | None, higher_is_worse: bool = True) -> str:
    if value is None or math.isnan(value):
        return "no data"
    worse = (lambda a, b: a > b) if higher_is_worse else (lambda a, b: a < b)
    if trigger is not None and worse(value, trigger):
        return "fail"
    return "warn" if worse(value, target) else "pass"


def evaluate(frame: pl.DataFrame, *, at: str = "rollout-complete", window_minutes: int = 60,
             thresholds: Thresholds = Thresholds(), version: str = "v3", baseline_version: str = "v1") -> ChecklistReport:
    """Measure every item of :data:`ITEMS` over the window (:func:`resolve_window`) and sign off."""
    t = thresholds
    start, end = resolve_window(frame, at, window_minutes)
    win = f"{window_minutes}m"
    in_win = pl.col("timestamp").is_between(start, end)
    v3 = pl.col("version") == version
    rows: list[dict[str, Any]] = []

    def add(key: str, value: float | None, target: str, trigger: str, status: str, evidence: str) -> None:
        section, item, original = ITEMS[key]
        rows.append({"section": section, "item": item, "value": value, "target": target, "trigger": trigger,
                     "status": status, "evidence": evidence, "original": original})

    # rollout at 100 %
    ro = frame.filter((pl.col("metric") == _ROLLOUT) & (pl.col("timestamp") <= end)).sort("timestamp")
    pct = float(ro["value"][-1]) if ro.height else None
    add("rollout", pct, "100", "< 100", "no data" if pct is None else ("pass" if pct >= 100 else "fail"),
        f"rollout {_fmt(pct)} % at {end:%Y-%m-%d %H:%M} UTC" if pct is not None else "no rollout gauge")

    # component health
    h = frame.filter((pl.col("metric") == _HEALTH) & in_win)
    if h.height:
        down = h.filter(pl.col("value") < 1).select(pl.format("{}@{}", "component", "region")).unique().to_series()
        hv = float(h["value"].min())
        add("health", hv, "1 (all up)", "any down", "fail" if down.len() else "pass",
            f"min health {hv:g} over {h.select('component', 'region').n_unique()} component-regions"
            + (f"; down: {', '.join(sorted(down.to_list()))}" if down.len() else ""))
    else:
        add("health", None, "1 (all up)", "any down", "no data", "no component_health samples in the window")

    # latency quantiles over the whole window
    buckets = frame.filter((pl.col("metric") == f"{_LATENCY}_bucket") & v3)
    qv: dict[str, float | None] = {}
    for key, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        val = None
        if buckets.height:
            r = slo.latency_quantile(buckets, _LATENCY, q, win, at=end)
            val = float(r["value"][0]) if r.height and not math.isnan(r["value"][0]) else None
        qv[key] = val
    add("p50", qv["p50"], f"<= {t.p50_target_s:g}", "-", _graded(qv["p50"], t.p50_target_s, None),
        f"P50 over the window, all regions: {_fmt(qv['p50'])} s")
    add("p95", qv["p95"], f"<= {t.p95_target_s:g}", f"> {t.p95_trigger_s:g}",
        _graded(qv["p95"], t.p95_target_s, t.p95_trigger_s), f"P95 over the window, all regions: {_fmt(qv['p95'])} s")
    add("p99", qv["p99"], f"<= {t.p99_target_s:g}", "-", _graded(qv["p99"], t.p99_target_s, None),
        f"P99 over the window, all regions: {_fmt(qv['p99'])} s")

    # error ratio
    err, ops = frame.filter((pl.col("metric") == _ERRORS) & v3), frame.filter((pl.col("metric") == _OPS) & v3)
    e_pct = None
    if ops.height:
        er = slo.error_ratio(err, ops, win, at=end)
        e_pct = float(er["value"][0]) * 100 if er.height and math.isfinite(er["value"][0]) else None
    add("errors", e_pct, f"< {t.error_target_pct:g}", f"> {t.error_trigger_pct:g}",
        _graded(e_pct, t.error_target_pct, t.error_trigger_pct), f"errors / operations over the window: {_fmt(e_pct)} %")

    # restarts
    resets = counter_resets(frame, start, end, version=version)
    counters = frame.filter(v3 & in_win & pl.col("metric").str.ends_with("_total"))
    if counters.height == 0:
        add("restarts", None, "0", "-", "no data", f"no {version} counters in the window")
    else:
        ev = "; ".join(f"{r['region']} at {r['first_reset']:%H:%M} UTC ({r['series']} series reset)"
                       for r in resets.iter_rows(named=True))
        add("restarts", float(resets.height), "0", "-", "warn" if resets.height else "pass",
            f"counter resets: {ev}" if resets.height else f"no {version} counter reset in the window")

    # peers
    peers = frame.filter((pl.col("metric") == _PEERS) & in_win)
    if peers.height:
        worst = peers.group_by("region").agg(pl.col("value").min()).sort("value", "region")
        low = float(worst["value"][0])
        maj = t.expected_peers // 2 + 1
        status = "fail" if low < maj else ("warn" if low < t.expected_peers else "pass")
        add("peers", low, f"= {t.expected_peers}", f"< {maj} (no majority)", status,
            "lowest reachable peers: " + ", ".join(f"{r['region']} {r['value']:g}" for r in worst.iter_rows(named=True)))
    else:
        add("peers", None, f"= {t.expected_peers}", "no majority", "no data", "no peers_connected samples")

    # byzantine detections
    byz = frame.filter(pl.col("metric") == _BYZ)
    if byz.height:
        inc = slo.increase(byz, win, at=end)
        nodes = sorted(inc.filter(pl.col("value") > 0)["node_id"].to_list())
        add("byzantine", float(len(nodes)), "0 nodes", "-", "warn" if nodes else "pass",
            f"nodes with detections: {', '.join(nodes)}" if nodes else "no detection in the window")
    else:
        add("byzantine", None, "0 nodes", "-", "no data", "no byzantine_detections series")

    # triage
    tri = incidents.triage(frame, at=end, lookback=win, thresholds=incidents.FLEET_THRESHOLDS)
    sev = tri.severity
    status = "pass" if sev is None else ("fail" if sev.rank <= 2 else "warn")
    add("triage", float(tri.detections.height), "0 failures", "SEV1/SEV2", status, tri.summary)

    # rollback readiness: the previous version still reports
    prev = frame.filter((pl.col("metric") == _OPS) & (pl.col("version") == baseline_version) & in_win)
    add("rollback_ready", float(prev.select("region").n_unique()) if prev.height else 0.0, "reporting", "-",
        "pass" if prev.height else "warn",
        f"{baseline_version} reports in {prev.select('region').n_unique()} region(s)" if prev.height
        else f"no {baseline_version} series in the window: is the rollback target still deployed?")

    table = pl.DataFrame(rows, schema={"section": pl.String, "item": pl.String, "value": pl.Float64,
                                       "target": pl.String, "trigger": pl.String, "status": pl.String,
                                       "evidence": pl.String, "original": pl.String})
    manual = pl.DataFrame([{"section": s, "item": i, "where": w} for s, i, w in MANUAL])
    st = table["status"].to_list()
    if "fail" in st:
        sign, level = "NO", "ACT"
    elif "warn" in st or "no data" in st:
        sign, level = "PARTIAL", "WARN"
    else:
        sign, level = "YES", "OK"
    reasons = [f"{r['item']}: {r['status'].upper()} ({r['evidence']}; target {r['target']}, trigger {r['trigger']})"
               for r in table.filter(pl.col("status").is_in(["fail", "warn", "no data"])).iter_rows(named=True)]
    n_pass = st.count("pass")
    reasons.append(f"{n_pass} of {len(st)} measured items pass")
    reasons.append(f"{manual.height} manual items (not in the telemetry) to confirm before signing: "
                   + "; ".join(manual["item"].head(3).to_list()) + " ...")
    summary = (f"window {start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC ({window_minutes} min"
               + (" after the rollout reached 100 %)" if at == "rollout-complete" else ")") + f": sign-off {sign}")
    return ChecklistReport(start, end, table, manual, sign, level, reasons, summary)
