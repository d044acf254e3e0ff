"""Tests of dwcpkit.sre.chaos: plan and hard limits, safety gates, abort rules, live watch loop, recovery."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import chaos
from dwcpkit.telemetry.schema import from_rows

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def sample():
    return chaos.load_data("sample", None)


def _ts(n):
    return [T0 + timedelta(minutes=m) for m in range(n)]


# --- plan -------------------------------------------------------------------------------------


def test_plan_fills_the_commands_and_lists_hard_limit_breaches():
    p = chaos.plan("latency_injection", "us-east-3", 25, 60)
    assert [s.kind for s in p.steps] == ["inject", "remove"]
    assert p.steps[0].argv == ["ssh", "root@us-east-3", "tc", "qdisc", "add", "dev", "eth0", "root", "netem",
                               "delay", "25ms"]
    assert "tc qdisc del dev eth0 root netem" in p.steps[1].detail
    assert p.violations == []
    over = chaos.plan("packet_loss", "n1", 5, 400)
    assert over.violations == ["magnitude 5 % exceeds the hard limit 1 %", "duration 400 s exceeds the hard limit 300 s"]


def test_plan_per_node_steps_api_scenarios_and_defaults():
    p = chaos.plan("cpu_stress", "a, b,a", None, 30)
    assert p.targets == ("a", "b") and p.magnitude == 10.0
    assert [s.title for s in p.inject] == ["Inject cpu_stress on a", "Inject cpu_stress on b"]
    assert p.inject[0].argv[-4:] == ["--cpu-load", "10", "--timeout", "30s"]
    cache = chaos.plan("cache_invalidation", "n1", 99, 60, api="http://api:8080/api/v3/")
    assert cache.magnitude is None and cache.remove == []
    assert [s.argv[-1] for s in cache.inject] == [f"http://api:8080/api/v3/cache/{c}/clear"
                                                  for c in ("consensus", "network", "api", "scheduler")]
    gc = chaos.plan("gc_pressure", "n7", None, 60)
    assert gc.inject[0].argv[-1].endswith("/nodes/n7/gc/force")


@pytest.mark.parametrize("kwargs, match", [
    ({"scenario": "disk_io_stress"}, "unknown chaos scenario"),
    ({"target_node": " , "}, "target_node is empty"),
    ({"magnitude": -1}, "positive number"),
    ({"magnitude": float("nan")}, "positive number"),
    ({"duration_s": 0}, "duration_s"),
])
def test_plan_rejects_nonsense(kwargs, match):
    args = {"scenario": "packet_loss", "target_node": "n1", "magnitude": 1.0, "duration_s": 60, **kwargs}
    with pytest.raises(ParameterError, match=match):
        chaos.plan(**args)


# --- safety gates -------------------------------------------------------------------------------


def test_gates_pass_before_the_error_surge(sample):
    at = datetime(2026, 11, 2, 22, 54, tzinfo=timezone.utc)
    gates = chaos.safety_gates(sample, chaos.plan("packet_loss", "us-east-3", 1, 60), region="us-east", at=at)
    names = [g.metric for g in gates]
    assert all(g.passed for g in gates), [g.reason for g in gates if not g.passed]
    assert len(names) == 7 and names[-1].startswith("load ratio")
    left = next(g for g in gates if g.metric.startswith("nodes left"))
    assert (left.baseline, left.current, left.threshold) == (7.0, 6.0, 4.0)


def test_gates_fail_on_limits_blast_radius_load_and_an_active_failure(sample):
    at = datetime(2026, 11, 2, 22, 54, tzinfo=timezone.utc)
    gates = chaos.safety_gates(sample, chaos.plan("packet_loss", "a,b", 5, 600), region="us-east", at=at)
    failing = {g.metric.split(" (")[0] for g in gates if not g.passed}
    assert failing == {"magnitude", "duration", "blast radius"}
    unsafe = chaos.safety_gates(sample, chaos.plan("packet_loss", "a,b", 1, 60), region="us-east", at=at,
                                safe_mode=False)
    assert all(g.passed for g in unsafe) and not any("load" in g.metric or "blast" in g.metric for g in unsafe)
    # 09:00 on day 1: load is rising, the region is near its peak so far
    rising = chaos.safety_gates(sample, chaos.plan("latency_injection", "n1", 10, 60), region="eu-west",
                                at=datetime(2026, 11, 1, 8, 59, tzinfo=timezone.utc))
    assert [g.metric for g in rising if not g.passed] == ["load ratio (migrations/min vs 24 h peak, safe mode)"]
    # during INC-003 (hde down in eu-west) health and triage both object
    down = chaos.safety_gates(sample, chaos.plan("latency_injection", "n1", 10, 60), region="eu-west",
                              at=datetime(2026, 11, 1, 19, 45, tzinfo=timezone.utc), safe_mode=False)
    bad = {g.metric for g in down if not g.passed}
    assert "RB-03 health score" in bad and any(m.startswith("failures found by triage") for m in bad)


def test_load_ratio_is_current_over_peak():
    # 10 migrations a minute for an hour, then 5 a minute
    total, rows = 0.0, []
    for t in range(120):
        total += 10.0 if t < 60 else 5.0
        rows.append((t * 60_000, "dwcp_v3_migration_latency_seconds_count", total, {"region": "r", "version": "v3"}))
    f = from_rows(rows)
    at = datetime.fromtimestamp(119 * 60, tz=timezone.utc)
    ratio, current = chaos.load_ratio(f, "r", at, peak_hours=2)
    assert current == pytest.approx(5.0) and ratio == pytest.approx(0.5)
    assert chaos.load_ratio(f, "other", at) == (None, None)


# --- abort rules ---------------------------------------------------------------------------------


def test_abort_needs_consecutive_breaches_and_ignores_missing_values():
    s = pl.DataFrame({"timestamp": _ts(6), "error_pct": [0.9, 0.1, 0.9, None, 0.9, 0.9],
                      "p99_latency_s": [1.0] * 6, "components_down": [0.0] * 6, "peers": [7.0] * 6})
    table, first = chaos.abort_check(s, chaos.AbortRules(), baseline_p99=1.0)
    assert table["streak"].to_list() == [1, 0, 1, 0, 1, 2]
    assert first == T0 + timedelta(minutes=5)
    one = chaos.abort_check(s, chaos.AbortRules(consecutive=1), baseline_p99=1.0)[1]
    assert one == T0


def test_abort_rule_breaches_in_words():
    r = chaos.AbortRules(error_pct=0.5, p99_factor=2.0, cluster_size=7)
    assert r.quorum == 4
    got = r.breaches({"error_pct": 0.6, "p99_latency_s": 5.0, "components_down": 1.0, "peers": 3.0}, 2.0)
    assert len(got) == 4 and got[1] == "P99 5 s > 2 x baseline 2 s"
    assert r.breaches({"p99_latency_s": 5.0}, None) == []      # no baseline, no P99 rule
    assert r.breaches({"error_pct": float("nan")}, None) == []
    with pytest.raises(ParameterError):
        chaos.AbortRules(error_pct=-1)
    with pytest.raises(ParameterError):
        chaos.AbortRules(consecutive=0)


def _clock(step):
    t = iter(range(0, 10_000, step))
    return lambda: next(t)


def test_watch_aborts_early_and_is_bounded():
    vals = iter([{"error_pct": 0.1}, {"error_pct": 2.0}, {"error_pct": 3.0}] + [{"error_pct": 0.1}] * 50)
    sleeps = []
    r = chaos.watch(lambda: next(vals), chaos.AbortRules(), duration_s=60, interval_s=15, sleep=sleeps.append,
                    clock=_clock(15))
    assert r.aborted and r.checks == 3 and r.breaches == ["error ratio 3 % > 0.5 %"]
    calm = chaos.watch(lambda: {"error_pct": 0.1}, chaos.AbortRules(), duration_s=60, interval_s=15,
                       sleep=lambda s: None, clock=_clock(15))
    assert not calm.aborted and calm.checks <= 5


def test_watch_treats_a_failing_poll_as_a_breach():
    def boom():
        raise RuntimeError("prometheus down")

    r = chaos.watch(boom, chaos.AbortRules(consecutive=2), duration_s=60, interval_s=10, sleep=lambda s: None,
                    clock=_clock(10))
    assert r.aborted and "poll failed: RuntimeError: prometheus down" in r.breaches[0]


def test_live_poller_refuses_a_file_source():
    with pytest.raises(ParameterError, match="live Prometheus source"):
        chaos.live_poller("sample", "us-east")


# --- recovery --------------------------------------------------------------------------------------


def _series(values):
    return pl.DataFrame({"timestamp": _ts(len(values)), "value": values})


def test_recovery_time_is_first_stable_return_to_the_band():
    v = [1.0, 1.1, 0.9, 1.0] * 5 + [5.0] * 10 + [3.0, 1.0, 4.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    s = _series(v)
    ts = s["timestamp"]
    r = chaos.recovery(s, "x", start=ts[20], end=ts[29], baseline=(ts[0], ts[19]))
    assert r.disturbed and r.band == pytest.approx((0.9 - 0.1, 1.1 + 0.1))
    # 30: 3.0 out, 31: in, 32: 4.0 out (a single in-band point is not recovery), 33..35 in for 3 in a row
    assert r.recovered_at == ts[33] and r.recovery_s == 240.0
    assert r.during == 5.0 and r.worst == 5.0


def test_recovery_not_disturbed_not_recovered_and_not_measured():
    base = [1.0] * 20
    ts = _ts(40)
    calm = chaos.recovery(_series(base + [1.05] * 20), "x", start=ts[20], end=ts[29], baseline=(ts[0], ts[19]))
    assert not calm.disturbed and calm.recovery_s == 0.0
    stuck = chaos.recovery(_series(base + [9.0] * 20), "x", start=ts[20], end=ts[29], baseline=(ts[0], ts[19]))
    assert stuck.disturbed and stuck.recovery_s is None and "not back" in stuck.note
    blip = chaos.recovery(_series(base + [9.0, 9.0] + [1.0] * 18), "x", start=ts[20], end=ts[29],
                          baseline=(ts[0], ts[19]), stable=3)
    assert not blip.disturbed      # two points out of band are noise when stable=3
    few = chaos.recovery(_series([1.0, 1.0] + [9.0] * 10), "x", start=ts[2], end=ts[5], baseline=(ts[0], ts[1]))
    assert few.band is None and few.note.startswith("not measured")
    with pytest.raises(ParameterError):
        chaos.recovery(_series(base), "x", start=ts[5], end=ts[6], baseline=(ts[0], ts[4]), stable=0)


# --- the whole experiment ---------------------------------------------------------------------------


def test_evaluate_the_sample_error_surge(sample):
    exp = chaos.experiment_window("sample", "INC-006")
    r = chaos.evaluate(sample, chaos.plan("packet_loss", "us-east-3", 1, 60), exp)
    assert r.go and r.level == "WARN" and r.label == "ABORTED"
    assert r.abort_at == datetime(2026, 11, 2, 22, 56, tzinfo=timezone.utc)
    assert r.recovery_s == 60.0
    disturbed = r.recovery_table.filter(pl.col("disturbed"))["signal"].to_list()
    assert disturbed == ["error_pct"]
    assert r.phases.filter(pl.col("signal") == "error_pct")["during"][0] > 5.0
    assert any(x.startswith("recovery time 60 s") for x in r.reasons)


def test_evaluate_latency_spike_is_no_go_and_not_recovered_with_a_tiny_window(sample):
    exp = chaos.experiment_window("sample", "INC-001")
    r = chaos.evaluate(sample, chaos.plan("latency_injection", "eu-west-1", 20, 60), exp, observe_minutes=1)
    assert r.label == "NOT RECOVERED" and r.level == "ACT"
    assert any("load ratio" in x for x in r.reasons)


def test_preflight_and_experiment_window_errors(sample):
    pre = chaos.evaluate(sample, chaos.plan("packet_loss", "ap-south-1", 0.5, 60), None, region="ap-south",
                         safe_mode=False)
    assert pre.label == "GO" and pre.recoveries == [] and pre.baseline_p99 is not None
    with pytest.raises(ParameterError, match="region is required"):
        chaos.evaluate(sample, chaos.plan("packet_loss", "n", 1, 60), None)
    with pytest.raises(DataError, match="not in the data"):
        chaos.evaluate(sample, chaos.plan("packet_loss", "n", 1, 60), None, region="mars")
    with pytest.raises(ParameterError, match="INC-001"):
        chaos.experiment_window("sample", "INC-999")
    assert chaos.experiment_window("sample") is None
    e = chaos.experiment_window("sample", start="2026-11-02T10:00:00Z", end="2026-11-02T10:05:00Z", region="us-east")
    assert e.end - e.start == timedelta(minutes=5)
    with pytest.raises(ParameterError, match="not after"):
        chaos.experiment_window("sample", start="2026-11-02T10:05:00Z", end="2026-11-02T10:00:00Z", region="r")
    with pytest.raises(ParameterError, match="region is required"):
        chaos.experiment_window("sample", start="2026-11-02T10:00:00Z", end="2026-11-02T10:05:00Z")
    with pytest.raises(ParameterError, match="both"):
        chaos.experiment_window("sample", start="2026-11-02T10:00:00Z")
