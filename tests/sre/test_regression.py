"""Tests of dwcpkit.sre.regression: relative change with zero baselines, Mann-Whitney, window comparisons."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import compare, regression as R
from dwcpkit.telemetry.sources import load


@pytest.fixture(scope="module")
def sample():
    return load("sample", metrics=list(compare.METRICS))


def _row(report, key):
    return report.table.filter(pl.col("key") == key).row(0, named=True)


def W(a, b, version="v3", region="eu-west"):
    return R.Window.parse(a, b, version, region)


# --- arithmetic ------------------------------------------------------------------------------------


def test_relative_change_handles_zero_baselines():
    assert R.relative_change(0.0, 0.0) == 0.0
    assert R.relative_change(0.0, 0.3) == math.inf and R.relative_change(0.0, -1.0) == -math.inf
    assert R.relative_change(-2.0, -1.0) == 50.0
    assert math.isnan(R.relative_change(float("nan"), 1.0))


def test_rankdata_and_mann_whitney_match_scipy():
    stats = pytest.importorskip("scipy.stats", reason="scipy is the reference implementation")
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.integers(0, 8, rng.integers(3, 40)).astype(float)   # many ties
        y = rng.integers(0, 8, rng.integers(3, 40)).astype(float) + rng.choice([0, 1])
        np.testing.assert_allclose(R.rankdata(np.r_[x, y]), stats.rankdata(np.r_[x, y]))
        for alt in ("greater", "less", "two-sided"):
            u, p = R.mann_whitney(x, y, alt)
            ref = stats.mannwhitneyu(x, y, alternative=alt, method="asymptotic", use_continuity=True)
            assert u == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue, abs=1e-12)


def test_mann_whitney_edge_cases():
    assert R.mann_whitney([1, 1, 1], [1, 1]) == (3.0, 1.0)    # all tied: no evidence
    with pytest.raises(DataError):
        R.mann_whitney([float("nan")], [1.0])
    with pytest.raises(ParameterError):
        R.mann_whitney([1, 2], [3, 4], "bigger")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30), st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30))
def test_mann_whitney_u_is_symmetric(x, y):
    u1, p_greater = R.mann_whitney(x, y, "greater")
    u2, p_less = R.mann_whitney(y, x, "less")
    assert u1 + u2 == pytest.approx(len(x) * len(y))
    assert p_greater == pytest.approx(p_less)
    assert 0.0 <= p_greater <= 1.0


# --- windows ------------------------------------------------------------------------------------------


def test_latency_spike_is_a_significant_p95_regression(sample):
    r = R.compare_windows(sample, W("2026-11-01T08:00:00Z", "2026-11-01T09:00:00Z"),
                          W("2026-11-01T09:00:00Z", "2026-11-01T09:45:00Z"), n_boot=400)
    p95 = _row(r, "p95_latency")
    assert p95["status"] == "regression" and p95["significant"]
    assert p95["rel_change_pct"] > 100 and p95["diff_ci_low"] > 0 and p95["rel_ci_low_pct"] > 0
    assert p95["abs_change"] == pytest.approx(p95["current"] - p95["baseline"])
    assert _row(r, "error_ratio")["status"] == "ok"
    assert _row(r, "cpu")["status"] == "not in the data" and _row(r, "p50_latency")["status"] == "info"
    assert (r.level, r.label) == ("ACT", "REGRESSION")
    assert r.params["baseline_minutes"] == 60 and r.params["current_minutes"] == 45


def test_error_surge_with_both_methods(sample):
    b = W("2026-11-02T21:55:00Z", "2026-11-02T22:55:00Z", region="us-east")
    c = W("2026-11-02T22:55:00Z", "2026-11-02T23:30:00Z", region="us-east")
    for method in ("bootstrap", "mann-whitney"):
        r = R.compare_windows(sample, b, c, method=method, n_boot=300)
        err = _row(r, "error_ratio")
        assert err["status"] == "regression" and err["p_value"] < 1e-6, method
        assert _row(r, "throughput")["status"] == "ok"     # throughput rose: better, not worse
        assert "REGRESSION" in r.reasons[0] and method.split("-")[0].lower() in r.reasons[0].lower()


def test_a_window_against_itself_is_no_regression(sample):
    w = W("2026-11-01T16:00:00Z", "2026-11-01T17:00:00Z", region="all")
    r = R.compare_windows(sample, w, w, n_boot=200)
    for key in ("p95_latency", "throughput", "error_ratio"):
        row = _row(r, key)
        assert row["rel_change_pct"] == 0.0 and row["status"] == "ok" and not row["significant"]
    assert (r.level, r.label) == ("OK", "NO REGRESSION")


def test_v3_against_v1_at_the_50_percent_stage_is_better(sample):
    b = W("2026-11-01T18:00:00Z", "2026-11-01T20:00:00Z", "v1", "all")
    c = W("2026-11-01T18:00:00Z", "2026-11-01T20:00:00Z", "v3", "all")
    r = R.compare_windows(sample, b, c, n_boot=200)
    assert _row(r, "p95_latency")["rel_change_pct"] < -50 and r.label == "NO REGRESSION"


def test_thresholds_are_parameters(sample):
    rules = R.with_thresholds(p95_latency_regression=1000.0)
    r = R.compare_windows(sample, W("2026-11-01T08:00:00Z", "2026-11-01T09:00:00Z"),
                          W("2026-11-01T09:00:00Z", "2026-11-01T09:45:00Z"), rules=rules, n_boot=200)
    p95 = _row(r, "p95_latency")
    assert p95["status"] == "warning" and "5 % warning" in p95["note"] and r.label == "WARNING"
    with pytest.raises(ParameterError, match="unknown threshold"):
        R.with_thresholds(latency_regression=5)
    with pytest.raises(ParameterError):
        R.with_thresholds(p95_latency_regression=-1)


def test_zero_error_baseline_is_plus_infinity_not_a_crash(sample):
    split = datetime(2026, 11, 1, 17, 0, tzinfo=timezone.utc)
    errs = pl.col("metric") == compare.ERRORS
    # freeze every error counter before the split: the baseline window has no error at all
    first = sample.filter(errs & (pl.col("timestamp") >= datetime(2026, 11, 1, 15, 40, tzinfo=timezone.utc)))
    frozen = sample.with_columns(
        pl.when(errs & (pl.col("timestamp") < split)).then(pl.lit(0.0)).otherwise(pl.col("value")).alias("value"))
    assert first.height  # the frame has error counters to freeze
    b = W("2026-11-01T16:00:00Z", "2026-11-01T17:00:00Z", region="all")
    c = W("2026-11-01T17:05:00Z", "2026-11-01T18:00:00Z", region="all")
    r = R.compare_windows(frozen, b, c, n_boot=200)
    err = _row(r, "error_ratio")
    assert err["baseline"] == 0.0 and err["rel_change_pct"] == math.inf
    assert err["rel_ci_low_pct"] is None and err["diff_ci_low"] > 0 and err["status"] == "regression"
    both = frozen.with_columns(pl.when(errs).then(pl.lit(0.0)).otherwise(pl.col("value")).alias("value"))
    r0 = R.compare_windows(both, b, c, n_boot=200)
    e0 = _row(r0, "error_ratio")
    assert (e0["baseline"], e0["current"], e0["rel_change_pct"], e0["status"]) == (0.0, 0.0, 0.0, "ok")


def test_window_and_parameter_errors(sample):
    with pytest.raises(ParameterError, match="shorter than 5 minutes"):
        R.Window.parse("2026-11-01T08:00:00Z", "2026-11-01T08:03:00Z")
    with pytest.raises(ParameterError, match="UTC offset"):
        R.Window.parse("2026-11-01T08:00:00", "2026-11-01T09:00:00Z")
    w = W("2026-11-01T08:00:00Z", "2026-11-01T09:00:00Z")
    with pytest.raises(ParameterError, match="method"):
        R.compare_windows(sample, w, w, method="t-test")
    with pytest.raises(ParameterError, match="n_boot"):
        R.compare_windows(sample, w, w, n_boot=10)
    with pytest.raises(DataError, match="region 'mars'"):
        R.compare_windows(sample, W("2026-11-01T08:00:00Z", "2026-11-01T09:00:00Z", region="mars"), w)
    with pytest.raises(DataError, match="v9"):
        R.compare_windows(sample, W("2026-11-01T08:00:00Z", "2026-11-01T09:00:00Z", "v9"), w)
