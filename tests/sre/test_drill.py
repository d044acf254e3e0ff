"""Tests of dwcpkit.sre.drill: RTO/RPO from event timestamps, scope, targets, file formats, errors."""

from __future__ import annotations

import json

import polars as pl
import pytest

from dwcpkit.errors import DataError, ParameterError, ParseError, SourceError
from dwcpkit.sre import drill

HEADER = "drill_id,scenario,timestamp,event,component,detail\n"


def _csv(tmp_path, body, name="ev.csv"):
    p = tmp_path / name
    p.write_text(HEADER + body)
    return p


def _row(table, kind, comp):
    r = table.filter((pl.col("kind") == kind) & (pl.col("component") == comp))
    assert r.height == 1, (kind, comp)
    return r.row(0, named=True)


def test_sample_region_failure_measured_from_timestamps():
    r = drill.evaluate(drill.select_drill(drill.read_events("sample")), drill.read_targets())
    t = r.table
    assert r.drill_id == "DR-2026-11-15" and r.detection_s == 7.4
    svc = _row(t, "RTO", "service")
    assert (svc["measured_s"], svc["target_s"], svc["status"]) == (31.2, 30.0, "FAIL")
    db = _row(t, "RPO", "database")
    assert db["measured_s"] == 2.25 and "loss window" in db["how"]
    metrics = _row(t, "RPO", "metrics")
    assert metrics["measured_s"] == 48.0 and "upper bound" in metrics["how"]
    assert _row(t, "RPO", "storage")["measured_s"] == 244.0
    assert _row(t, "RPO", "consensus")["measured_s"] == 0.0
    assert (r.level, r.label) == ("ACT", "TARGET MISSED")
    assert r.reasons[0].startswith("RTO service: 31.2 s > target 30 s")
    assert "9 of 10 targets met" in r.reasons


def test_targets_as_parameters_change_the_outcome():
    ev = drill.select_drill(drill.read_events())
    ok = drill.evaluate(ev, drill.read_targets(rto_target_s=35))
    assert ok.label == "TARGETS MET" and ok.level == "OK"
    tight = drill.evaluate(ev, drill.read_targets(rto_target_s=35, rpo_target_s=1))
    assert _row(tight.table, "RPO", "database")["status"] == "FAIL"
    with pytest.raises(ParameterError):
        drill.read_targets(rto_target_s=-1)


def test_a_drill_is_judged_only_on_its_scope():
    r = drill.evaluate(drill.select_drill(drill.read_events(), "DR-2026-11-08"), drill.read_targets())
    assert sorted(r.table["component"].to_list()) == ["database", "database", "service"]
    assert r.label == "TARGETS MET"
    assert _row(r.table, "RPO", "database")["measured_s"] == 0.05


def test_missing_measurements_are_not_passes(tmp_path):
    p = _csv(tmp_path, "d,x,2026-01-01T00:00:00Z,failure_injected,database,\n"
                       "d,x,2026-01-01T00:00:05Z,component_recovered,database,\n")
    r = drill.evaluate(drill.select_drill(drill.read_events(p)), drill.read_targets())
    svc = _row(r.table, "RTO", "service")
    assert svc["status"] == "not measured" and svc["measured_s"] is None
    assert _row(r.table, "RPO", "database")["status"] == "not measured"
    assert (r.level, r.label) == ("WARN", "INCOMPLETE")


def test_commits_after_the_failure_clamp_to_zero_and_bad_drills_raise(tmp_path):
    p = _csv(tmp_path, "d,x,2026-01-01T00:00:00Z,failure_injected,,\n"
                       "d,x,2026-01-01T00:00:01Z,last_replicated_commit,database,\n"
                       "d,x,2026-01-01T00:00:09Z,first_successful_request,,\n")
    r = drill.evaluate(drill.read_events(p), drill.read_targets())
    assert _row(r.table, "RPO", "database")["measured_s"] == 0.0
    two = _csv(tmp_path, "d,x,2026-01-01T00:00:00Z,failure_injected,,\nd,x,2026-01-01T00:01:00Z,failure_injected,,\n",
               "two.csv")
    with pytest.raises(DataError, match="2 'failure_injected'"):
        drill.evaluate(drill.read_events(two), drill.read_targets())
    early = _csv(tmp_path, "d,x,2026-01-01T00:00:00Z,failure_injected,,\n"
                           "d,x,2025-12-31T23:59:00Z,dns_switched,traffic,\n", "early.csv")
    with pytest.raises(DataError, match="before the failure"):
        drill.evaluate(drill.read_events(early), drill.read_targets())
    with pytest.raises(DataError, match="one drill"):
        drill.evaluate(drill.read_events(), drill.read_targets())


def test_select_drill_picks_the_latest_or_the_named_one():
    ev = drill.read_events()
    assert drill.select_drill(ev)["drill_id"].unique().to_list() == ["DR-2026-11-15"]
    with pytest.raises(ParameterError, match="DR-2026-11-08"):
        drill.select_drill(ev, "DR-1999")


def test_yaml_events_and_targets_files(tmp_path):
    y = tmp_path / "ev.yaml"
    y.write_text("events:\n"
                 "  - {drill_id: y, timestamp: '2026-01-01T00:00:00Z', event: failure_injected}\n"
                 "  - {drill_id: y, timestamp: '2026-01-01T00:00:20Z', event: first_successful_request}\n")
    t = tmp_path / "targets.csv"
    t.write_text("component,rto_target_s,rpo_target_s\nservice,10,\n")
    r = drill.evaluate(drill.read_events(y), drill.read_targets(t))
    assert _row(r.table, "RTO", "service")["status"] == "FAIL"
    bad = tmp_path / "bad.csv"
    bad.write_text("component,rto_target_s\nservice,fast\n")
    with pytest.raises(ParseError, match="not a number"):
        drill.read_targets(bad)


@pytest.mark.parametrize("body, match", [
    ("d,x,yesterday,failure_injected,,\n", "not ISO-8601"),
    ("d,x,2026-01-01T00:00:00,failure_injected,,\n", "no UTC offset"),
    ("d,x,2026-01-01T00:00:00Z,,,\n", "empty 'event'"),
])
def test_malformed_events_name_the_line(tmp_path, body, match):
    with pytest.raises(ParseError, match=match) as e:
        drill.read_events(_csv(tmp_path, body))
    assert "ev.csv:2" in str(e.value)


def test_file_errors(tmp_path):
    with pytest.raises(SourceError):
        drill.read_events(tmp_path / "nope.csv")
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ParseError, match="missing column"):
        drill.read_events(p)
    q = tmp_path / "x.json"
    q.write_text("{}")
    with pytest.raises(ParameterError, match=".csv or .yaml"):
        drill.read_events(q)


def test_readiness_record_and_writer(tmp_path):
    r = drill.evaluate(drill.select_drill(drill.read_events()), drill.read_targets())
    rec = drill.readiness_record(r)
    assert rec["measured_rto_seconds"] == 31.2 and rec["measured_rpo_seconds"] == 244.0
    assert rec["targets_missed"] == [("RTO", "service")]
    out = tmp_path / "sub" / "ready.json"
    assert drill.readiness_writer(rec, out)().startswith("wrote")
    assert json.loads(out.read_text())["last_dr_test_result"] == "TARGET MISSED"
