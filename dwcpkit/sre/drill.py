"""RB-08 disaster-recovery drill: RTO and RPO measured from the drill's event timestamps, against targets.

The original has no DR script, only a report whose "measured" RTO/RPO contradict each other
(zero data loss next to 2.3 s and 4.1 min of loss; an "average RTO 24 s" over scenarios whose
mean is 18 s). Here every figure is a difference of two recorded timestamps.

Events (a CSV or YAML file; one row per event)
----------------------------------------------
Columns ``drill_id``, ``scenario``, ``timestamp`` (ISO-8601 UTC), ``event``, ``component``
(may be empty), ``detail`` (free text). Events with a meaning (:data:`EVENTS`):

``failure_injected``
    the failure starts: t0. Exactly one per drill.
``failure_detected``
    when monitoring noticed (detection time = timestamp - t0).
``component_recovered``
    the component serves again in the DR region: its RTO = timestamp - t0.
``first_successful_request``
    the first end-to-end request that succeeded after the failure: the *service* RTO.
``last_replicated_commit``
    the newest write of the component that had reached the DR side when the failure hit.
``last_primary_commit``
    the newest write the primary had accepted before the failure. With both commit events the
    RPO is the data-loss window ``last_primary_commit - last_replicated_commit`` (0 when
    everything had been replicated); with only the replicated one it is the upper bound
    ``t0 - last_replicated_commit`` and says so.

Any other event (``dr_promoted``, ``dns_switched``, ...) is kept for the timeline.

Targets
-------
:data:`ORIGINAL_TARGETS` is the original report's target table (the targets, not its claimed
results); a CSV/YAML with ``component``, ``rto_target_s``, ``rpo_target_s`` replaces it. The
``service`` row is the full-recovery RTO. A target with no measurement is *not measured* (WARN),
never a pass; a measurement beyond its target fails (ACT).

Example
-------
>>> ev = read_events(SAMPLE_EVENTS)
>>> r = evaluate(select_drill(ev), read_targets("original"))
>>> r.table.filter(pl.col("component") == "service")["measured_s"][0]
31.2
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from dwcpkit._paths import data_dir
from dwcpkit.errors import DataError, ParameterError, ParseError, SourceError
from dwcpkit.telemetry.schema import TIMESTAMP_DTYPE

__all__ = [
    "EVENTS",
    "COLUMNS",
    "SAMPLE_EVENTS",
    "ORIGINAL_TARGETS",
    "read_events",
    "select_drill",
    "read_targets",
    "DrillReport",
    "evaluate",
    "readiness_record",
    "readiness_writer",
]

#: Events with a meaning for the measurements (others are kept for the timeline).
EVENTS: dict[str, str] = {
    "failure_injected": "the failure starts (t0); exactly one per drill",
    "failure_detected": "monitoring noticed the failure",
    "component_recovered": "the component serves again in the DR region (its RTO)",
    "first_successful_request": "first successful end-to-end request after the failure (service RTO)",
    "last_replicated_commit": "newest write of the component on the DR side at t0",
    "last_primary_commit": "newest write the primary accepted before t0",
}
#: Columns of an events file.
COLUMNS: tuple[str, ...] = ("drill_id", "scenario", "timestamp", "event", "component", "detail")
#: The sample drill log (invented for the example, not a measurement of any system).
SAMPLE_EVENTS = data_dir() / "dr-drill-events.csv"

#: The original report's targets (DISASTER_RECOVERY_VALIDATION.md); ``None``: no target.
ORIGINAL_TARGETS: dict[str, tuple[float | None, float | None]] = {
    # component: (rto_target_s, rpo_target_s)
    "service": (30.0, None),
    "consensus": (30.0, 0.0),
    "database": (30.0, 5.0),
    "storage": (30.0, 300.0),
    "configuration": (None, 0.0),
    "metrics": (None, 60.0),
    "traffic": (30.0, None),
}

_TARGET_SCHEMA = {"component": pl.String, "rto_target_s": pl.Float64, "rpo_target_s": pl.Float64}


def _parse_ts(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        ts = value
    else:
        try:
            ts = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ParseError(f"timestamp {value!r} is not ISO-8601 (e.g. 2026-11-15T02:00:00.000Z)", path=where) \
                from None
    if ts.tzinfo is None:
        raise ParseError(f"timestamp {value!r} has no UTC offset; add 'Z' (drill times are UTC)", path=where)
    return ts


def _rows_from_file(path: Path, required: tuple[str, ...] = ("timestamp", "event"),
                    columns: tuple[str, ...] = COLUMNS) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise ParseError(f"missing column(s) {', '.join(missing)}; columns are {', '.join(columns)}",
                                 path=str(path), line=1)
            return [dict(r, _line=i + 2) for i, r in enumerate(reader)]
    if suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ParseError(f"not valid YAML: {exc}", path=str(path)) from None
        if isinstance(data, dict) and "events" in data:
            data = data["events"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ParseError("expected a list of event mappings (or {events: [...]})", path=str(path))
        return [dict(r, _line=None) for r in data]
    raise ParameterError(f"{path.name!r}: use a .csv or .yaml file (columns {', '.join(columns)})")


def read_events(path: str | Path = "sample") -> pl.DataFrame:
    """Read a drill events file (CSV or YAML) into a frame sorted by drill and time.

    ``"sample"`` reads :data:`SAMPLE_EVENTS`. Unknown event names are kept (timeline only).

    >>> read_events("sample")["drill_id"].unique().sort().to_list()
    ['DR-2026-11-08', 'DR-2026-11-15']
    """
    p = SAMPLE_EVENTS if str(path) == "sample" else Path(path)
    if not p.is_file():
        raise SourceError(f"drill events file {str(path)!r} not found; pass a .csv/.yaml path or 'sample'")
    rows = []
    for r in _rows_from_file(p):
        line = r.pop("_line")
        where = f"{p.name}:{line}" if line else p.name
        ev = str(r.get("event") or "").strip()
        if not ev:
            raise ParseError("empty 'event'", path=where)
        rows.append({
            "drill_id": str(r.get("drill_id") or "drill").strip(),
            "scenario": str(r.get("scenario") or "").strip() or None,
            "timestamp": _parse_ts(r.get("timestamp"), where),
            "event": ev,
            "component": str(r.get("component") or "").strip() or None,
            "detail": str(r.get("detail") or "").strip() or None,
        })
    if not rows:
        raise DataError(f"{p.name} holds no events")
    frame = pl.DataFrame(rows, schema={"drill_id": pl.String, "scenario": pl.String,
                                       "timestamp": pl.Datetime("us", "UTC"), "event": pl.String,
                                       "component": pl.String, "detail": pl.String})
    return frame.with_columns(pl.col("timestamp").cast(TIMESTAMP_DTYPE)).sort("drill_id", "timestamp")


def select_drill(events: pl.DataFrame, drill_id: str = "") -> pl.DataFrame:
    """The events of one drill: ``drill_id``, or the one whose failure came last when empty."""
    ids = events["drill_id"].unique().to_list()
    if drill_id:
        if drill_id not in ids:
            raise ParameterError(f"drill {drill_id!r} is not in the events; drills: {', '.join(sorted(ids))}")
        return events.filter(pl.col("drill_id") == drill_id)
    starts = events.filter(pl.col("event") == "failure_injected").sort("timestamp")
    chosen = starts["drill_id"][-1] if starts.height else sorted(ids)[-1]
    return events.filter(pl.col("drill_id") == chosen)


def read_targets(spec: str | Path = "original", *, rto_target_s: float | None = None,
                 rpo_target_s: float | None = None) -> pl.DataFrame:
    """Per-component targets: ``"original"`` (:data:`ORIGINAL_TARGETS`) or a CSV/YAML file.

    ``rto_target_s`` overrides the ``service`` RTO (full recovery) and ``rpo_target_s`` the
    ``database`` RPO, the two targets the runbook takes as parameters.

    >>> read_targets(rto_target_s=60).filter(pl.col("component") == "service")["rto_target_s"][0]
    60.0
    """
    if str(spec) == "original":
        rows = [{"component": c, "rto_target_s": a, "rpo_target_s": b} for c, (a, b) in ORIGINAL_TARGETS.items()]
    else:
        p = Path(spec)
        if not p.is_file():
            raise SourceError(f"targets file {str(spec)!r} not found; pass 'original' or a .csv/.yaml path")
        raw = _rows_from_file(p, ("component",), tuple(_TARGET_SCHEMA))
        rows = []
        for r in raw:
            r.pop("_line", None)
            comp = str(r.get("component") or "").strip()
            if not comp:
                raise ParseError("a target row has no component", path=p.name)

            def num(key: str) -> float | None:
                v = r.get(key)
                if v is None or str(v).strip() == "":
                    return None
                try:
                    return float(v)
                except ValueError:
                    raise ParseError(f"{key}={v!r} for {comp} is not a number of seconds", path=p.name) from None

            rows.append({"component": comp, "rto_target_s": num("rto_target_s"), "rpo_target_s": num("rpo_target_s")})
    for name, v in (("rto_target_s", rto_target_s), ("rpo_target_s", rpo_target_s)):
        if v is not None and (not math.isfinite(v) or v < 0):
            raise ParameterError(f"{name}={v!r}; give a non-negative number of seconds")
    t = pl.DataFrame(rows, schema=_TARGET_SCHEMA)
    if rto_target_s is not None:
        t = _set(t, "service", "rto_target_s", rto_target_s)
    if rpo_target_s is not None:
        t = _set(t, "database", "rpo_target_s", rpo_target_s)
    return t


def _set(t: pl.DataFrame, comp: str, col: str, value: float) -> pl.DataFrame:
    if comp not in t["component"].to_list():
        t = pl.concat([t, pl.DataFrame([{"component": comp}], schema={"component": pl.String})], how="diagonal")
    return t.with_columns(pl.when(pl.col("component") == comp).then(pl.lit(float(value))).otherwise(pl.col(col))
                          .alias(col))


@dataclass
class DrillReport:
    """Everything the dr-drill runbook shows."""

    drill_id: str
    scenario: str | None
    failed_at: datetime
    detection_s: float | None
    timeline: pl.DataFrame    # every event with seconds since t0
    table: pl.DataFrame       # kind, component, measured_s, target_s, status, how
    level: str
    label: str
    reasons: list[str]
    summary: str


def _secs(a: datetime, b: datetime) -> float:
    return round((a - b).total_seconds(), 3)


def _last(ev: pl.DataFrame, name: str, comp: str | None) -> datetime | None:
    sel = ev.filter(pl.col("event") == name)
    sel = sel.filter(pl.col("component").is_null()) if comp is None else sel.filter(pl.col("component") == comp)
    return sel["timestamp"].max() if sel.height else None


def _first(ev: pl.DataFrame, name: str, comp: str | None) -> datetime | None:
    sel = ev.filter(pl.col("event") == name)
    if comp is not None:
        sel = sel.filter(pl.col("component") == comp)
    return sel["timestamp"].min() if sel.height else None


def evaluate(events: pl.DataFrame, targets: pl.DataFrame) -> DrillReport:
    """Measure RTO per component and for the service, RPO per component, and judge them.

    ``events`` is one drill (:func:`select_drill`). Statuses: ``pass`` (within target),
    ``FAIL`` (beyond it), ``not measured`` (a target without the events to measure it),
    ``no target`` (measured, nothing to compare with). The drill's scope is the service plus the
    components its events name: a database-crash drill is not judged on storage targets.

    Raises :class:`~dwcpkit.errors.DataError` when the drill has no or several
    ``failure_injected`` events, or events before the failure other than commits.
    """
    if events["drill_id"].n_unique() != 1:
        raise DataError("evaluate takes one drill; pick one with select_drill(events, drill_id)")
    drill_id = events["drill_id"][0]
    starts = events.filter(pl.col("event") == "failure_injected")
    if starts.height != 1:
        raise DataError(f"drill {drill_id} has {starts.height} 'failure_injected' events; exactly one marks t0")
    t0 = starts["timestamp"][0]
    early = events.filter((pl.col("timestamp") < t0) & ~pl.col("event").is_in(["last_replicated_commit",
                                                                              "last_primary_commit"]))
    if early.height:
        raise DataError(f"drill {drill_id}: {early['event'][0]} at {early['timestamp'][0]:%H:%M:%S.%f} is before the "
                        f"failure was injected ({t0:%H:%M:%S.%f}); only commit events may precede t0")
    timeline = events.with_columns(((pl.col("timestamp") - t0).dt.total_milliseconds() / 1000).alias("t_plus_s"))
    detected = _first(events, "failure_detected", None)
    rows: list[dict[str, Any]] = []

    # the drill's scope: the components its events name (a database drill is not judged on storage)
    comps = sorted(set(events["component"].drop_nulls().to_list()))
    tmap = {r["component"]: r for r in targets.iter_rows(named=True)}

    def add(kind: str, comp: str, measured: float | None, how: str) -> None:
        target = tmap.get(comp, {}).get(f"{kind.lower()}_target_s")
        if measured is None:
            if target is None:
                return
            status = "not measured"
        elif target is None:
            status = "no target"
        else:
            status = "pass" if measured <= target + 1e-9 else "FAIL"
        rows.append({"kind": kind, "component": comp, "measured_s": measured, "target_s": target,
                     "status": status, "how": how})

    first_ok = _first(events, "first_successful_request", None)
    add("RTO", "service", None if first_ok is None else _secs(first_ok, t0),
        "first_successful_request - failure_injected" if first_ok else "no first_successful_request event")
    for comp in comps:
        if comp == "service":
            continue
        rec = _first(events, "component_recovered", comp)
        add("RTO", comp, None if rec is None else _secs(rec, t0),
            "component_recovered - failure_injected" if rec else "no component_recovered event")
        rep = _last(events, "last_replicated_commit", comp)
        prim = _last(events, "last_primary_commit", comp)
        if rep is None:
            add("RPO", comp, None, "no last_replicated_commit event")
        elif prim is not None:
            add("RPO", comp, max(0.0, _secs(prim, rep)), "last_primary_commit - last_replicated_commit (loss window)")
        else:
            add("RPO", comp, max(0.0, _secs(t0, rep)), "failure_injected - last_replicated_commit (upper bound)")
    table = pl.DataFrame(rows, schema={"kind": pl.String, "component": pl.String, "measured_s": pl.Float64,
                                       "target_s": pl.Float64, "status": pl.String, "how": pl.String})
    table = table.sort(pl.col("kind"), pl.col("component") != "service", pl.col("component"))

    fails = table.filter(pl.col("status") == "FAIL")
    missing = table.filter(pl.col("status") == "not measured")
    reasons = [f"{r['kind']} {r['component']}: {r['measured_s']:g} s > target {r['target_s']:g} s ({r['how']})"
               for r in fails.iter_rows(named=True)]
    reasons += [f"{r['kind']} {r['component']}: not measured ({r['how']}), target {r['target_s']:g} s"
                for r in missing.iter_rows(named=True)]
    passed = table.filter(pl.col("status") == "pass")
    if fails.height:
        level, label = "ACT", "TARGET MISSED"
    elif missing.height:
        level, label = "WARN", "INCOMPLETE"
    else:
        level, label = "OK", "TARGETS MET"
    reasons.append(f"{passed.height} of {table.filter(pl.col('target_s').is_not_null()).height} targets met")
    if detected is not None:
        reasons.append(f"failure detected {_secs(detected, t0):g} s after it was injected")
    svc = table.filter((pl.col("kind") == "RTO") & (pl.col("component") == "service"))["measured_s"]
    rpos = table.filter(pl.col("kind") == "RPO")["measured_s"].drop_nulls()
    summary = (f"drill {drill_id} ({events['scenario'][0] or 'scenario not named'}) at {t0:%Y-%m-%d %H:%M:%S} UTC: "
               f"service RTO {'not measured' if svc.len() == 0 or svc[0] is None else f'{svc[0]:g} s'}, "
               f"worst RPO {'not measured' if rpos.len() == 0 else f'{rpos.max():g} s'}: {label}")
    return DrillReport(drill_id, events["scenario"][0], t0, None if detected is None else _secs(detected, t0),
                       timeline, table, level, label, reasons, summary)


def readiness_record(report: DrillReport) -> dict[str, Any]:
    """The original's DR-readiness JSON fields that a drill can fill, from measurements only.

    >>> r = evaluate(select_drill(read_events()), read_targets())
    >>> readiness_record(r)["measured_rto_seconds"]
    31.2
    """
    t = report.table
    svc = t.filter((pl.col("kind") == "RTO") & (pl.col("component") == "service"))["measured_s"]
    rpos = t.filter(pl.col("kind") == "RPO")["measured_s"].drop_nulls()
    return {
        "last_dr_test": report.failed_at.isoformat().replace("+00:00", "Z"),
        "last_dr_test_id": report.drill_id,
        "last_dr_test_result": report.label,
        "measured_rto_seconds": None if svc.len() == 0 else svc[0],
        "measured_rpo_seconds": None if rpos.len() == 0 else float(rpos.max()),
        "detection_seconds": report.detection_s,
        "targets_missed": t.filter(pl.col("status") == "FAIL").select("kind", "component").rows(),
    }


def readiness_writer(record: dict[str, Any], path: str | Path):
    """A function that writes ``record`` as JSON to ``path`` (for a runbook's dry-run ``action``)."""
    import json

    def write() -> str:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        return f"wrote {p}"

    return write
