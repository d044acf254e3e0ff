"""Tests of dwcpkit.sre.rollback: the sustained-degradation rule, checks from telemetry, plan, record."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwcpkit.errors import DataError, ParameterError, SchemaError
from dwcpkit.sre import rollback as R
from dwcpkit.telemetry.schema import from_rows
from dwcpkit.telemetry.sources import load

T0 = datetime(2026, 11, 2, 22, 50, tzinfo=timezone.utc)


def _checks(flags, start=T0, step=30, has_data=None):
    data = {"timestamp": [start + timedelta(seconds=step * k) for k in range(len(flags))], "degraded": list(flags)}
    if has_data is not None:
        data["has_data"] = list(has_data)
    return pl.DataFrame(data)


@pytest.fixture(scope="module")
def sample():
    return load("sample")


# --- the rule -----------------------------------------------------------------------------------


def test_three_of_four_degraded_rolls_back_and_two_does_not():
    # warm-up is 4 checks (120 s / 30 s); the round starts at index 4
    r = R.sustained_degradation(_checks([0, 0, 0, 0, 1, 1, 0, 1, 0, 0]), deployed_at=T0)
    assert r.rollback and r.rounds[0].degraded == 3 and r.rounds[0].fraction == 0.75
    assert r.decided_at == T0 + timedelta(seconds=30 * 7)
    r2 = R.sustained_degradation(_checks([0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0]), deployed_at=T0)
    assert not r2.rollback and r2.rounds[0].degraded == 2
    assert "keep monitoring" in r2.summary


def test_breaches_in_the_warm_up_are_ignored_and_the_boundary_counts():
    # breaches at 0..90 s are warm-up; at exactly 120 s a round starts
    r = R.sustained_degradation(_checks([1, 1, 1, 1, 1, 1, 1, 1]), deployed_at=T0)
    assert r.warmup_breaches == 4 and r.rounds[0].started_at == T0 + timedelta(seconds=120)
    assert r.table["phase"].to_list()[:5] == ["warm-up"] * 4 + ["breach"]
    only_warm = R.sustained_degradation(_checks([1, 1, 0, 0, 0, 0]), deployed_at=T0)
    assert not only_warm.rollback and not only_warm.rounds and "warm-up" in only_warm.summary
    assert R.decide(only_warm).label == "WATCH"


def test_monitoring_resumes_after_an_unsustained_round():
    flags = [0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0]
    r = R.sustained_degradation(_checks(flags), deployed_at=T0)
    assert [x.degraded for x in r.rounds] == [1, 3] and r.rollback
    assert r.rounds[1].started_at == T0 + timedelta(seconds=30 * 8)


def test_checks_before_the_deployment_are_ignored():
    r = R.sustained_degradation(_checks([1] * 6 + [0] * 8, start=T0 - timedelta(minutes=3)), deployed_at=T0)
    assert not r.rounds and r.first_breach is None and R.decide(r).label == "KEEP"


def test_missing_data_is_not_degraded():
    # the original turned a failed scrape into 0 % success (degraded); here it is unknown
    flags = [0, 0, 0, 0, 1, 0, 0, 1]
    r = R.sustained_degradation(_checks(flags, has_data=[1, 1, 1, 1, 1, 0, 0, 1]), deployed_at=T0)
    assert not r.rollback and r.rounds[0].no_data == 2 and "without data" in str(r.rounds[0])


def test_a_round_cut_by_the_end_of_the_data_is_in_progress():
    r = R.sustained_degradation(_checks([0, 0, 0, 0, 1, 1]), deployed_at=T0)
    assert not r.rollback and not r.rounds[0].complete and "in progress" in r.summary
    assert R.decide(r).label == "WATCH"


def test_irregular_checks_and_bad_parameters_are_errors():
    bad = _checks([0, 0, 0, 0, 1, 1, 1, 1, 1], step=45)
    with pytest.raises(DataError, match="30 s apart"):
        R.sustained_degradation(bad, deployed_at=T0)
    with pytest.raises(ParameterError, match="min_ratio"):
        R.sustained_degradation(_checks([0]), deployed_at=T0, min_ratio=1.5)
    with pytest.raises(ParameterError, match="samples"):
        R.sustained_degradation(_checks([0]), deployed_at=T0, samples=0)
    with pytest.raises(SchemaError, match="degraded"):
        R.sustained_degradation(pl.DataFrame({"timestamp": [T0]}), deployed_at=T0)
    with pytest.raises(ParameterError, match="time zone"):
        R.sustained_degradation(_checks([0]), deployed_at=datetime(2026, 1, 1))


def _reference(flags, wait_checks, n, ratio):
    """The auto-rollback loop, literally: index of the deciding sample, or None."""
    i = 0
    while i < len(flags):
        if flags[i] and i >= wait_checks:
            if i + n > len(flags):
                return None
            if sum(flags[i:i + n]) >= ratio * n:
                return i + n - 1
            i += n
        else:
            i += 1
    return None


@settings(max_examples=150, deadline=None)
@given(flags=st.lists(st.booleans(), min_size=1, max_size=40), n=st.integers(1, 6),
       ratio=st.sampled_from([0.25, 0.5, 0.75, 1.0]), wait=st.sampled_from([0, 60, 120, 300]))
def test_rule_matches_a_literal_reference(flags, n, ratio, wait):
    r = R.sustained_degradation(_checks(flags), deployed_at=T0, wait_s=wait, samples=n, min_ratio=ratio)
    ref = _reference(flags, wait // 30, n, ratio)
    assert r.rollback == (ref is not None)
    if ref is not None:
        assert r.decided_at == T0 + timedelta(seconds=30 * ref)


# --- checks from telemetry ----------------------------------------------------------------------


def _telemetry(err_per_min, ops_per_min=1000.0, minutes=12, region="us-east", buckets=True):
    rows = []
    for t in range(minutes + 1):
        ts = t * 60_000
        rows.append((ts, R._OPS, ops_per_min * t, {"version": "v3", "region": region, "component": "hde"}))
        rows.append((ts, R._ERRORS, err_per_min * t, {"version": "v3", "region": region, "component": "hde",
                                                       "error_type": "timeout"}))
        if buckets:
            for le, frac in (("1", 0.5), ("10", 0.995), ("+Inf", 1.0)):
                labels = {"version": "v3", "region": region, "le": le}
                rows.append((ts, f"{R._LATENCY}_bucket", 100.0 * frac * t, labels))
    return from_rows(rows)


def test_degradation_checks_compute_error_success_and_p99():
    c = R.degradation_checks(_telemetry(20.0), start=300_000, end=600_000)
    assert c.height == 11 and c["timestamp"].dt.epoch("ms").to_list()[1] == 330_000
    assert c["error_pct"].round(9).unique().to_list() == [2.0]
    assert (c["success_pct"] + c["error_pct"]).round(9).unique().to_list() == [100.0]
    # 99 % of migrations below the 10 s bucket: P99 interpolates to 1 + 9 * (0.99 - 0.5) / (0.995 - 0.5)
    assert c["p99_s"][0] == pytest.approx(1 + 9 * 0.49 / 0.495)
    assert c["degraded"].all()
    assert c["breaches"][0].to_list() == ["error_pct 2.0 > 1", "p99_s 9.909 > 5", "success_pct 98.0 < 99"]
    quiet = R.degradation_checks(_telemetry(1.0), start=300_000, end=600_000,
                                 thresholds=R.RollbackThresholds(p99_max_s=20))
    assert not quiet["degraded"].any() and quiet["breaches"].list.len().max() == 0


def test_degradation_checks_without_latency_or_region_data():
    c = R.degradation_checks(_telemetry(0.0, buckets=False), start=300_000, end=360_000)
    assert c["p99_s"].null_count() == c.height and c["has_data"].all()
    with pytest.raises(DataError, match="regions: us-east"):
        R.degradation_checks(_telemetry(0.0), start=300_000, end=360_000, region="mars")
    empty = R.degradation_checks(_telemetry(0.0).filter(pl.col("metric") == "other"), start=0, end=60_000)
    assert not empty["has_data"].any() and not empty["degraded"].any()


def test_thresholds_are_validated():
    with pytest.raises(ParameterError):
        R.RollbackThresholds(error_max_pct=-1)
    with pytest.raises(ParameterError, match="percentages"):
        R.RollbackThresholds(success_min_pct=150)
    assert R.ORIGINAL_THRESHOLDS.p99_max_s == 0.1


# --- decision, plan, record ---------------------------------------------------------------------


def test_decide_modes():
    r = R.sustained_degradation(_checks([0] * 8), deployed_at=T0)
    assert R.decide(r).level == "OK"
    with pytest.raises(ParameterError, match="reason"):
        R.decide(r, mode="manual")
    m = R.decide(r, mode="emergency", reason="corrupt state", at=T0)
    assert (m.level, m.label, m.decided_at) == ("ACT", "ROLLBACK", T0) and "validation skipped" in m.reasons[0]
    with pytest.raises(ParameterError, match="mode"):
        R.decide(r, mode="yolo")


def test_plan_has_the_documented_steps_and_timings():
    plan = R.rollback_plan("v1", "v3", validate=False)
    assert [s.n for s in plan] == list(range(1, 9))
    assert sum(s.seconds for s in plan) == 155  # 2 min 35 s
    assert ("systemctl", "start", "novacron-dwcp-v1") in plan[4].commands  # the previous version, not "v2"
    assert plan[5].poll == (12, 5.0) and not plan[5].changes_system
    assert len(R.rollback_plan()) == 9
    with pytest.raises(ParameterError, match="nothing to roll back"):
        R.rollback_plan("v3", "v3")
    with pytest.raises(ParameterError):
        R.rollback_plan("../etc", "v3")
    tl = R.plan_timeline(plan, T0)
    assert tl["start"].to_list()[1:] == tl["end"].to_list()[:-1]
    assert tl["end"].max() - T0 == timedelta(seconds=155)


def test_step_runner_executes_only_when_called(tmp_path):
    marker = tmp_path / "ran"
    step = R.RollbackStep(1, "touch", 1, commands=(("touch", str(marker)),))
    run = R.step_runner(step, api_base="http://127.0.0.1:9")
    assert not marker.exists()
    assert run() == "touch: ok" and marker.exists()
    failing = R.step_runner(R.RollbackStep(1, "false", 1, commands=(("false",),)), api_base="http://127.0.0.1:9")
    with pytest.raises(RuntimeError, match="exit 1"):
        failing()
    assert R.step_runner(R.RollbackStep(9, "manual", 1), api_base="http://127.0.0.1:9") is None
    with pytest.raises(ParameterError, match="http"):
        R.step_runner(step, api_base="localhost:8080")


class _Health(http.server.BaseHTTPRequestHandler):
    calls = 0

    def do_GET(self):  # noqa: N802
        type(self).calls += 1
        self.send_response(503 if type(self).calls < 3 else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_health_poll_retries_until_healthy_and_gives_up_on_a_dead_api():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        sleeps = []
        poll = R.step_runner(R.rollback_plan()[5], api_base=base, timeout=2, sleep=sleeps.append)
        assert "after 3 poll(s)" in poll() and sleeps == [5.0, 5.0]
    finally:
        server.shutdown()
        server.server_close()
    dead = R.step_runner(R.rollback_plan()[5], api_base=base, timeout=1, sleep=lambda s: None)
    with pytest.raises(RuntimeError, match="not healthy after 12 polls"):
        dead()


def test_evaluate_on_the_sample_error_surge(sample, tmp_path):
    r = R.evaluate(sample, deployed_at="2026-11-02T22:54:00Z")
    assert (r.decision.level, r.decision.label) == ("ACT", "ROLLBACK")
    assert r.decision.decided_at == datetime(2026, 11, 2, 22, 57, 30, tzinfo=timezone.utc)
    assert r.result.warmup_breaches == 2 and r.timeline["start"][0] == r.decision.decided_at
    assert r.checks["timestamp"].min() < r.deployed_at  # context for the charts
    rec = json.loads(json.dumps(r.record))
    assert rec["decision"] == "ROLLBACK" and rec["rounds"][0]["degraded"] == 4
    assert rec["metrics_snapshot"]["error_pct"] > 1
    path = tmp_path / "state" / "rollback-state.json"
    assert "wrote" in R.record_writer(r.record, str(path))()
    assert json.loads(path.read_text())["decided_at"] == "2026-11-02T22:57:30+00:00"


def test_evaluate_quiet_deployment_and_modes(sample):
    quiet = R.evaluate(sample, deployed_at="2026-11-02T22:10:00Z")
    assert quiet.decision.label == "KEEP" and not quiet.result.rounds
    # the surge is in us-east only; eu-west alone has a noisy 2-min P99 (a few hundred migrations)
    region = R.evaluate(sample, deployed_at="2026-11-02T22:54:00Z", region="eu-west",
                        thresholds=R.RollbackThresholds(p99_max_s=30))
    assert region.decision.label == "KEEP" and region.checks["error_pct"].max() < 1
    em = R.evaluate(sample, deployed_at="2026-11-02T22:10:00Z", mode="emergency", reason="operator call")
    assert em.decision.label == "ROLLBACK" and len(em.plan) == 8  # emergency skips the validation step
    with pytest.raises(DataError, match="before the deployment"):
        R.evaluate(sample, deployed_at="2027-01-01T00:00:00Z")


def test_same_decision_from_a_prometheus_api(sample):
    from fakeprom import FakeProm

    window = sample.filter(pl.col("timestamp").is_between(datetime(2026, 11, 2, 22, tzinfo=timezone.utc),
                                                          datetime(2026, 11, 2, 23, 30, tzinfo=timezone.utc)))
    with FakeProm(window) as api:
        frame = R.load_data(api.url, deployed_at="2026-11-02T22:54:00Z")
    assert {q["query"] for q in api.queries} == {f'{{__name__="{m}"}}' for m in R.METRICS}
    r = R.evaluate(frame, deployed_at="2026-11-02T22:54:00Z")
    assert r.decision.label == "ROLLBACK" and r.decision.decided_at.minute == 57
