"""Tests of dwcpkit.sre.checklist: items measured from the sample, statuses, sign-off, windows."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import checklist as C
from dwcpkit.telemetry.schema import from_rows
from dwcpkit.telemetry.sources import load


@pytest.fixture(scope="module")
def sample():
    return load("sample", metrics=list(C.METRICS))


def _status(report):
    return dict(zip(report.table["item"], report.table["status"]))


def test_hour_after_rollout_complete_is_partial(sample):
    r = C.evaluate(sample, at="rollout-complete")
    assert (r.start, r.end) == (datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc),
                                datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc))
    s = _status(r)
    assert s["v3 error ratio (%)"] == "warn" and s["no v3 service restarts"] == "warn"
    assert [k for k, v in s.items() if v != "pass"] == ["v3 error ratio (%)", "no v3 service restarts"]
    err = r.table.filter(pl.col("item") == "v3 error ratio (%)")["value"][0]
    assert 0.1 < err < 1.0
    assert "eu-west at 08:36 UTC" in r.table.filter(pl.col("item") == "no v3 service restarts")["evidence"][0]
    assert (r.sign_off, r.level) == ("PARTIAL", "WARN")
    assert r.manual.height == len(C.MANUAL) and "manual items" in r.reasons[-1]


def test_thresholds_and_window_decide_yes(sample):
    r = C.evaluate(sample, at="rollout-complete", window_minutes=30, thresholds=C.Thresholds(error_target_pct=0.2))
    assert set(_status(r).values()) == {"pass"} and (r.sign_off, r.level) == ("YES", "OK")


def test_end_of_data_with_the_error_surge_is_no(sample):
    r = C.evaluate(sample, at="end")
    s = _status(r)
    assert s["v3 error ratio (%)"] == "fail" and s["no failure found by triage"] == "fail"
    assert (r.sign_off, r.level) == ("NO", "ACT")
    assert r.reasons[0].startswith("v3 error ratio (%): FAIL")
    tight = C.evaluate(sample, at="2026-11-02T12:00:00Z", window_minutes=30,
                       thresholds=C.Thresholds(p95_target_s=0.5, p95_trigger_s=1.0))
    assert _status(tight)["P95 migration latency (s)"] == "fail"


def test_missing_families_are_no_data_never_pass(sample):
    no_latency = sample.filter(~pl.col("metric").str.starts_with("dwcp_v3_migration_latency"))
    r = C.evaluate(no_latency, at="rollout-complete", window_minutes=30, thresholds=C.Thresholds(error_target_pct=0.2))
    s = _status(r)
    assert s["P50 migration latency (s)"] == s["P95 migration latency (s)"] == "no data"
    assert r.sign_off == "PARTIAL"


def test_counter_resets_find_restarts():
    rows = [(t * 60_000, "x_total", float(v), {"region": "r", "version": "v3"})
            for t, v in enumerate([1, 2, 3, 0, 1, 2])]
    rows += [(t * 60_000, "x_total", float(t), {"region": "q", "version": "v3"}) for t in range(6)]
    f = from_rows(rows)
    out = C.counter_resets(f, datetime.fromtimestamp(0, tz=timezone.utc), datetime.fromtimestamp(360, tz=timezone.utc))
    assert out["region"].to_list() == ["r"] and out["first_reset"][0] == datetime.fromtimestamp(180, tz=timezone.utc)
    later = C.counter_resets(f, datetime.fromtimestamp(200, tz=timezone.utc), datetime.fromtimestamp(360, tz=timezone.utc))
    assert later.height == 0


def test_window_and_threshold_errors(sample):
    no_100 = sample.filter(~((pl.col("metric") == "dwcp_v3_rollout_percentage") & (pl.col("value") == 100)))
    with pytest.raises(DataError, match="never reached 100"):
        C.resolve_window(no_100, "rollout-complete", 60)
    with pytest.raises(ParameterError, match="window_minutes"):
        C.resolve_window(sample, "end", 2)
    with pytest.raises(ParameterError, match="ISO-8601"):
        C.resolve_window(sample, "yesterday", 60)
    with pytest.raises(ParameterError, match="below p95_target_s"):
        C.Thresholds(p95_target_s=3, p95_trigger_s=2)
    with pytest.raises(ParameterError):
        C.Thresholds(error_target_pct=-0.1)
