"""Tests for dwcpkit.sre.gates."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre.gates import (
    COMPARISONS,
    LABELS,
    Decision,
    Gate,
    compare_ratio,
    evaluate_triggers,
    gate_table,
    rollout_decision,
)

RB01 = {"error_pct": 1.0, "p99_ms": 100.0}


def checks(errors, p99=None, **extra):
    n = len(errors)
    t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
    data = {
        "timestamp": [t0 + timedelta(seconds=30 * i) for i in range(n)],
        "error_pct": errors,
        "p99_ms": p99 if p99 is not None else [50.0] * n,
    }
    data.update(extra)
    return pl.DataFrame(data)


# ------------------------------------------------------------------------------------------
# Gate
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "comparison, current, passed",
    [
        ("<=", 1.0, True), ("<=", 1.01, False),
        ("<", 1.0, False), ("<", 0.99, True),
        (">=", 1.0, True), (">=", 0.99, False),
        (">", 1.0, False), (">", 1.01, True),
    ],
)
def test_absolute_comparisons(comparison, current, passed):
    g = Gate("m", None, current, 1.0, comparison)
    assert g.passed is passed
    assert g.severity == (None if passed else "ACT")
    assert g.delta is None and g.delta_pct is None


def test_relative_and_delta_gates():
    # RolloutErrorRateSpike: v3 error ratio > 1.5 x v1 fails
    assert Gate("err", 0.002, 0.003, 1.5, "relative").passed
    assert not Gate("err", 0.002, 0.0031, 1.5, "relative").passed
    assert Gate("err", 0.002, 0.003, 1.5, "relative<=").limit == pytest.approx(0.003)
    # RolloutThroughputRegression: v3 < 0.8 x v1 fails
    assert Gate("tput", 100.0, 80.0, 0.8, "relative>=").passed
    assert not Gate("tput", 100.0, 79.9, 0.8, "relative>=").passed
    # RB-01 step 7: warn if p99 rose > 20 ms
    g = Gate("p99_ms", 80.0, 101.0, 20.0, "delta<=", on_fail="WARN")
    assert not g.passed and g.severity == "WARN" and g.delta == pytest.approx(21.0)
    assert Gate("p99_ms", 80.0, 100.0, 20.0, "delta<=").passed
    assert Gate("tput", 100.0, 95.0, -10.0, "delta>=").passed
    assert Gate("err", 0.0, 0.0005, 1.5, "relative", slack=0.001).passed
    assert "1.5 × baseline" in Gate("err", 0.002, 0.003, 1.5, "relative").rule


def test_delta_and_zero_baseline():
    g = Gate("p99_ms", 80.0, 120.0, 100.0)
    assert g.delta == 40.0 and g.delta_pct == pytest.approx(50.0)
    assert Gate("x", -50.0, -25.0, 0.0, ">=").delta_pct == pytest.approx(50.0)  # |baseline|
    # zero baseline: no ZeroDivisionError
    assert Gate("err", 0.0, 0.0, 1.0).delta_pct == 0.0
    assert Gate("err", 0.0, 0.01, 1.0).delta_pct == math.inf
    assert Gate("err", 0.0, -0.01, 1.0).delta_pct == -math.inf
    # a strict relative gate against a zero baseline only passes at zero
    assert Gate("err", 0.0, 0.0, 1.5, "relative").passed
    assert not Gate("err", 0.0, 1e-9, 1.5, "relative").passed


def test_missing_data_holds():
    for g in (Gate("m", 1.0, None, 1.0), Gate("m", 1.0, float("nan"), 1.0), Gate("m", None, 1.0, 1.5, "relative"),
              Gate("m", 0.1, 0.2, 0.05, "significance")):
        assert not g.has_data and not g.passed and g.severity == "WARN"
        assert "no data" in g.reason


def test_gate_validation():
    with pytest.raises(ParameterError):
        Gate("m", 1.0, 1.0, 1.0, "~=")
    with pytest.raises(ParameterError):
        Gate("m", 1.0, 1.0, 1.0, on_fail="PANIC")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        Gate("m", 1.0, 1.0, float("nan"))
    with pytest.raises(ParameterError):
        Gate("m", "high", 1.0, 1.0)  # type: ignore[arg-type]
    assert set(COMPARISONS) >= {"<=", ">=", "<", ">", "relative"}


def test_gate_table():
    t = gate_table([
        Gate("error_pct", 0.2, 0.3, 1.0),
        Gate("p99_ms", 80.0, 130.0, 100.0),
        Gate("errors v3/v1", 0.0, 0.01, 1.5, "relative", on_fail="WARN"),
        Gate("tput", 100.0, None, 0.8, "relative>="),
    ])
    assert t.columns == ["metric", "baseline", "current", "delta", "delta_pct", "threshold", "comparison",
                         "pass", "severity"]
    assert t["pass"].to_list() == [True, False, False, False]
    assert t["severity"].to_list() == [None, "ACT", "WARN", "WARN"]
    assert t["delta_pct"][2] == math.inf and t["delta_pct"][3] is None
    assert t["delta"][1] == pytest.approx(50.0)
    assert gate_table([]).height == 0 and gate_table([]).schema["pass"] == pl.Boolean


# ------------------------------------------------------------------------------------------
# triggers
# ------------------------------------------------------------------------------------------


def test_three_isolated_blips_cumulative_rolls_back_consecutive_does_not():
    # 20 checks (600 s / 30 s), three isolated error blips
    errs = [0.1] * 20
    for i in (3, 9, 15):
        errs[i] = 2.5
    c = checks(errs)
    cum = evaluate_triggers(c, RB01, "cumulative", 3)
    assert cum.fired and cum.fired_at == 15 and len(cum.triggers) == 3 and cum.count == 3
    assert rollout_decision([], cum)[:2] == ("ROLLBACK", "ACT")
    con = evaluate_triggers(c, RB01, "consecutive", 3)
    assert not con.fired and con.fired_at is None and con.longest_run == 1 and con.count == 0
    label, level, reasons = rollout_decision([], con)
    assert (label, level) == ("HOLD", "WARN")
    assert "below the rollback limit" in reasons[-1]


def test_consecutive_run_fires():
    errs = [0.1, 2.0, 2.0, 0.1, 2.0, 2.0, 2.0, 0.1]
    r = evaluate_triggers(checks(errs), RB01, "consecutive", 3)
    assert r.fired and r.fired_at == 6 and r.longest_run == 3
    assert r.table["counter"].to_list() == [0, 1, 2, 0, 1, 2, 3, 0]
    assert r.table["fired"].to_list() == [False] * 6 + [True, True]


def test_cumulative_counts_each_failing_condition():
    # one check failing on both error and p99 adds two triggers (as the original script did)
    c = checks([0.1, 3.0, 0.1, 0.1], p99=[50.0, 150.0, 50.0, 200.0])
    r = evaluate_triggers(c, RB01, "cumulative", 3)
    assert [t.metric for t in r.triggers] == ["error_pct", "p99_ms", "p99_ms"]
    assert r.fired and r.fired_at == 3
    assert r.table["failing"].to_list()[1] == ["error_pct", "p99_ms"]
    assert r.triggers[0].timestamp == c["timestamp"][1]
    assert "error_pct 3 > 1" in str(r.triggers[0])


def test_trigger_operators_and_missing():
    c = checks([0.1, 0.1, None], ready_fraction=[1.0, 0.5, 1.0])
    r = evaluate_triggers(c, {**RB01, "ready_fraction": ("<", 1.0)}, "cumulative", 5)
    assert [(t.check, t.metric, t.value) for t in r.triggers] == [(1, "ready_fraction", 0.5), (2, "error_pct", None)]
    ignored = evaluate_triggers(c, {**RB01, "ready_fraction": ("<", 1.0)}, "cumulative", 5, missing="ignore")
    assert [t.check for t in ignored.triggers] == [1]
    no_ts = evaluate_triggers(c.drop("timestamp"), RB01)
    assert "timestamp" not in no_ts.table.columns and no_ts.triggers[0].timestamp is None


def test_trigger_validation():
    c = checks([0.1])
    with pytest.raises(ParameterError, match="not in the checks frame"):
        evaluate_triggers(c, {"latency": 1.0})
    with pytest.raises(ParameterError):
        evaluate_triggers(c, RB01, "sometimes")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        evaluate_triggers(c, RB01, max_triggers=0)
    with pytest.raises(ParameterError):
        evaluate_triggers(c, {"error_pct": ("!=", 1.0)})
    with pytest.raises(ParameterError):
        evaluate_triggers(c, {})
    with pytest.raises(DataError):
        evaluate_triggers(c.with_columns(pl.lit("x").alias("error_pct")), RB01)


@settings(max_examples=100, deadline=None)
@given(fails=st.lists(st.booleans(), min_size=1, max_size=40), limit=st.integers(1, 5))
def test_consecutive_never_fires_before_cumulative(fails, limit):
    c = checks([2.0 if f else 0.1 for f in fails])
    cum = evaluate_triggers(c, RB01, "cumulative", limit)
    con = evaluate_triggers(c, RB01, "consecutive", limit)
    assert cum.fired == (sum(fails) >= limit)
    if con.fired:
        assert cum.fired and cum.fired_at <= con.fired_at


# ------------------------------------------------------------------------------------------
# decision
# ------------------------------------------------------------------------------------------


def test_all_compliant_is_go():
    gates = [Gate("error_pct", 0.2, 0.25, 1.0), Gate("p99_ms", 80.0, 84.0, 100.0),
             Gate("tput v3/v1", 100.0, 98.0, 0.8, "relative>=")]
    clean = evaluate_triggers(checks([0.1] * 20), RB01, "cumulative")
    d = rollout_decision(gates, clean)
    assert isinstance(d, Decision) and (d.label, d.level) == ("GO", "OK")
    assert d.reasons == ["all 3 gates pass", "no triggers in 20 checks"]
    assert rollout_decision(gates) == ("GO", "OK", ["all 3 gates pass"])
    assert LABELS == {"OK": "GO", "WARN": "HOLD", "ACT": "ROLLBACK"}


def test_decision_levels():
    ok = Gate("error_pct", 0.2, 0.25, 1.0)
    warn = Gate("p99 rise", 80.0, 110.0, 20.0, "delta<=", on_fail="WARN")
    act = Gate("error_pct", 0.2, 3.0, 1.0)
    assert rollout_decision([ok, warn])[:2] == ("HOLD", "WARN")
    label, level, reasons = rollout_decision([ok, warn, act])
    assert (label, level) == ("ROLLBACK", "ACT")
    assert reasons[0].startswith("error_pct") and "FAIL -> ACT" in reasons[0] and "FAIL -> WARN" in reasons[1]
    assert rollout_decision([ok, Gate("m", 1.0, None, 2.0)])[:2] == ("HOLD", "WARN")
    # nothing evaluated is not a GO
    assert rollout_decision([])[:2] == ("HOLD", "WARN")
    assert rollout_decision([], evaluate_triggers(checks([]), RB01))[:2] == ("HOLD", "WARN")
    fired = evaluate_triggers(checks([5.0] * 3), RB01, "consecutive")
    assert rollout_decision([ok], fired)[:2] == ("ROLLBACK", "ACT")
    with pytest.raises(ParameterError):
        rollout_decision([{"metric": "x"}])  # type: ignore[list-item]


# ------------------------------------------------------------------------------------------
# canary statistics
# ------------------------------------------------------------------------------------------


def test_compare_ratio_z_test_hand_computed():
    r = compare_ratio(30, 1000, 10, 1000)
    # pooled p = 0.02, se = sqrt(0.02 * 0.98 * (2/1000)), z = 0.02 / se
    z = 0.02 / math.sqrt(0.02 * 0.98 * 0.002)
    assert r.z == pytest.approx(z) and r.p_value == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))
    assert r.method.startswith("two-proportion z-test") and r.significantly_worse
    assert r.current_ratio == 0.03 and r.baseline_ratio == 0.01 and r.ratio == pytest.approx(3.0)
    # Wilson 95%: 30/1000 -> centre (0.03 + z^2/2000)/(1 + z^2/1000)
    zc = 1.959963984540054
    centre = (0.03 + zc**2 / 2000) / (1 + zc**2 / 1000)
    half = zc * math.sqrt(0.03 * 0.97 / 1000 + zc**2 / 4e6) / (1 + zc**2 / 1000)
    assert r.current_ci == pytest.approx((centre - half, centre + half))
    better = compare_ratio(10, 1000, 30, 1000)
    assert not better.significantly_worse and better.p_value > 0.99


def test_compare_ratio_fisher_small_counts():
    r = compare_ratio(3, 10, 0, 10)
    # P(X >= 3), X ~ Hypergeom(N=20, K=3, n=10) = C(17,7)/C(20,10)
    assert r.method.startswith("Fisher") and r.z is None
    assert r.p_value == pytest.approx(math.comb(17, 7) / math.comb(20, 10))
    assert not r.significantly_worse
    assert compare_ratio(0, 50, 0, 50).p_value == pytest.approx(1.0)
    assert compare_ratio(6, 10, 0, 10).significantly_worse


def test_compare_ratio_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    for counts in [(3, 10, 0, 10), (2, 500, 1, 800), (4, 40, 1, 45)]:
        e1, n1, e2, n2 = counts
        expected = stats.fisher_exact([[e1, n1 - e1], [e2, n2 - e2]], alternative="greater").pvalue
        assert compare_ratio(*counts).p_value == pytest.approx(expected, rel=1e-9)


def test_compare_ratio_edges_and_gate():
    none = compare_ratio(0, 0, 1, 100)
    assert none.method == "no data" and math.isnan(none.p_value) and not none.significantly_worse
    assert not none.to_gate().passed and none.to_gate().severity == "WARN"
    with pytest.raises(DataError):
        compare_ratio(11, 10, 0, 10)
    with pytest.raises(DataError):
        compare_ratio(-1, 10, 0, 10)
    with pytest.raises(ParameterError):
        compare_ratio(1, 10, 1, 10, alpha=5)
    frac = compare_ratio(12.4, 4000.2, 3.1, 3900.7)  # rates x window are not integers
    assert 0 <= frac.p_value <= 1
    worse = compare_ratio(60, 2000, 20, 2000).to_gate("error ratio v3 vs v1")
    assert not worse.passed and worse.severity == "ACT" and worse.comparison == "significance"
    assert gate_table([worse])["comparison"][0] == "p(worse) >= 0.05"
    assert compare_ratio(21, 2000, 20, 2000).to_gate().passed
