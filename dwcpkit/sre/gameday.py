"""Game day: replay an injected incident of the sample data step by step, as an on-call would see it.

:func:`replay` triages the telemetry at a series of moments relative to an incident's start —
before it, as it begins, while it runs, after it ends — so a trainee can decide at each step
what they would do before seeing the next one, and compare with the ground truth at the end.

Example
-------
>>> from dwcpkit.telemetry.sources import load, load_incidents
>>> steps = replay(load("sample"), load_incidents().row(2, named=True))   # doctest: +SKIP
>>> steps.select("minute", "severity", "summary").row(0)                  # doctest: +SKIP
(-10, None, 'no failure detected in the 15m before 2026-11-01 19:20 UTC')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import polars as pl

from dwcpkit.errors import ParameterError
from dwcpkit.sre import incidents

__all__ = ["DEFAULT_MINUTES", "KIND_TO_FAILURE", "replay", "pick_incident", "score"]

#: Minutes after the incident start at which the replay looks (negative: before it).
DEFAULT_MINUTES: tuple[int, ...] = (-10, 2, 5, 15, 30, 60)
#: Injected incident kind -> the failure type triage should report for it.
KIND_TO_FAILURE = {
    "latency_spike": "performance",
    "error_surge": "error_rate",
    "component_down": "service",
    "network_partition": "partition",
    "bandwidth_degradation": "bandwidth",
    "byzantine_node": "byzantine",
}


def pick_incident(truth: pl.DataFrame, incident_id: str) -> dict[str, Any]:
    """The ground-truth row of ``incident_id`` (ParameterError listing the ids if absent)."""
    row = truth.filter(pl.col("incident_id") == incident_id)
    if row.height == 0:
        raise ParameterError(f"no incident {incident_id!r}; the data has {', '.join(truth['incident_id'])}")
    return row.row(0, named=True)


def replay(
    frame: pl.DataFrame,
    incident: Mapping[str, Any],
    *,
    minutes: Sequence[int] = DEFAULT_MINUTES,
    lookback: str = "15m",
    thresholds: incidents.DetectionThresholds = incidents.FLEET_THRESHOLDS,
) -> pl.DataFrame:
    """One row per moment: minute offset, time, severity, verdict, summary, top reason, detections."""
    rows = []
    for m in minutes:
        at = incident["start"] + timedelta(minutes=m)
        t = incidents.triage(frame, at=at, lookback=lookback, thresholds=thresholds)
        rows.append({
            "minute": m,
            "at": at,
            "severity": t.severity.name if t.severity else None,
            "verdict": t.verdict,
            "summary": t.summary,
            "top_reason": t.reasons[0] if t.reasons and t.severity else "",
            "detections": t.detections.height,
            "failure_types": sorted(set(t.detections["failure_type"].to_list())),
        })
    return pl.DataFrame(rows, schema_overrides={"at": pl.Datetime("ms", "UTC")})


def score(steps: pl.DataFrame, incident: Mapping[str, Any]) -> dict[str, Any]:
    """Did triage see the incident, how soon, and was it quiet before it started?"""
    expected = KIND_TO_FAILURE.get(incident["kind"])
    during = steps.filter(pl.col("minute") >= 0)
    hits = during.filter(pl.col("failure_types").list.contains(expected)) if expected else during.clear()
    before = steps.filter(pl.col("minute") < 0)
    return {
        "incident": incident["incident_id"],
        "kind": incident["kind"],
        "expected_failure_type": expected,
        "detected": hits.height > 0,
        "first_detected_minute": int(hits["minute"].min()) if hits.height else None,
        "quiet_before": bool((before["detections"] == 0).all()) if before.height else None,
    }
