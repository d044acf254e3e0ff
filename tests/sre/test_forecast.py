"""Tests of dwcpkit.sre.forecast: models and their intervals, backtests, future-only crossings, costs, the plan."""

from __future__ import annotations

import doctest
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import polars.testing
import pytest

from dwcpkit import charts
from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import forecast as F
from dwcpkit.telemetry.schema import from_rows
from dwcpkit.telemetry.sources import load

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _hours(n, start=T0):
    return [start + timedelta(hours=k) for k in range(n)]


@pytest.fixture(scope="module")
def sample_plan():
    return F.plan(load("sample", metrics=list(F.CAPACITY_METRICS)))


def test_doctests():
    failures, tried = doctest.testmod(F)
    assert tried > 10 and failures == 0


# --- one-series models -------------------------------------------------------------------------


@pytest.mark.parametrize("p, dof, expected", [(0.975, 10, 2.2281), (0.95, 30, 1.6973), (0.975, 5, 2.5706),
                                              (0.995, 20, 2.8453), (0.9, 4, 1.5332)])
def test_t_quantile_matches_the_table(p, dof, expected):
    assert F.t_quantile(p, dof) == pytest.approx(expected, rel=2e-3)
    assert F.t_quantile(1 - p, dof) == pytest.approx(-expected, rel=2e-3)


def test_t_quantile_tends_to_the_normal():
    assert F.t_quantile(0.975, float("inf")) == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(ParameterError):
        F.t_quantile(1.0, 5)


def test_vectorised_holt_winters_equals_the_component_form_reference():
    rng = np.random.default_rng(1)
    y = 50 + 10 * np.sin(np.arange(60) * 2 * np.pi / 12) + rng.normal(0, 2, 60)
    s0 = rng.normal(0, 3, 12)
    params = [(0.3, 0.1, 0.2, 0.9), (0.9, 0.0, 0.05, 1.0), (0.05, 0.2, 0.4, 0.8)]
    a, b, g, p = (np.array(v) for v in zip(*params))
    fitted, level, trend, season = F._hw_run(y, 12, a, b, g, p, 48.0, 0.1, s0)
    for k, (ak, bk, gk, pk) in enumerate(params):
        f_ref, l_ref, b_ref, s_ref = F._hw_run_ref(y, 12, ak, bk, gk, pk, 48.0, 0.1, s0)
        np.testing.assert_allclose(fitted[k], f_ref, rtol=1e-10, atol=1e-10)
        assert level[k] == pytest.approx(l_ref) and trend[k] == pytest.approx(b_ref)
        np.testing.assert_allclose(season[k], s_ref, rtol=1e-10, atol=1e-10)


def test_holt_winters_follows_a_clean_seasonal_trend_and_widens_its_interval():
    t = np.arange(96)
    y = 100 + 0.2 * t + 10 * np.sin(2 * np.pi * t / 24)
    f = F.holt_winters(y, 24, 24, damped=False)
    truth = 100 + 0.2 * np.arange(96, 120) + 10 * np.sin(2 * np.pi * np.arange(96, 120) / 24)
    assert np.max(np.abs(f.mean - truth)) < 1.0
    width = f.upper - f.lower
    assert np.all(np.diff(width) >= -1e-9) and width[-1] > width[0]
    assert 0 < f.params["alpha"] < 1 and f.params["phi"] == 1.0


def test_holt_winters_interval_coverage_on_a_simulated_ets_model():
    """ETS(A,N,A) data: the 90 % interval of the fitted model covers close to 90 % of the next period."""
    rng = np.random.default_rng(7)
    m, n, alpha, gamma = 6, 60, 0.3, 0.1
    season0 = np.array([5.0, 2.0, -1.0, -4.0, -3.0, 1.0])
    inside = total = 0
    for _ in range(150):
        level, season = 20.0, season0.copy()
        ys = []
        for t in range(n + m):
            e = rng.normal()
            ys.append(level + season[t % m] + e)
            level += alpha * e
            season[t % m] += gamma * e
        y = np.array(ys)
        f = F.holt_winters(y[:n], m, m, level=0.9, damped=False, betas=(0.0,))
        inside += int(np.sum((y[n:] >= f.lower) & (y[n:] <= f.upper)))
        total += m
    assert 0.82 <= inside / total <= 0.97


def test_linear_trend_interval_has_its_nominal_coverage():
    rng = np.random.default_rng(3)
    inside = 0
    for _ in range(300):
        y = 5 + 0.5 * np.arange(40) + rng.normal(0, 1, 40)
        f = F.linear_trend(y, 1, level=0.9)
        inside += int(f.lower[0] <= 5 + 0.5 * 40 + rng.normal() <= f.upper[0])
    assert 0.85 <= inside / 300 <= 0.95


def test_linear_trend_fits_a_daily_profile():
    t = np.arange(72)
    y = 10 + 0.1 * t + 3 * np.cos(2 * np.pi * t / 24)
    f = F.linear_trend(y, 24, 24, harmonics=2)
    np.testing.assert_allclose(f.mean, 10 + 0.1 * np.arange(72, 96) + 3 * np.cos(2 * np.pi * np.arange(72, 96) / 24),
                               atol=1e-8)
    assert f.params["slope_per_step"] == pytest.approx(0.1)


def test_seasonal_naive_repeats_the_last_period_and_grows_per_period():
    f = F.seasonal_naive([1.0, 2.0, 3.0, 2.0, 3.0, 4.0], 6, 3, level=0.8)
    assert f.mean.tolist() == [2.0, 3.0, 4.0, 2.0, 3.0, 4.0]
    half = f.upper - f.mean
    assert half[3] == pytest.approx(half[0] * np.sqrt(2))


def test_log_transform_makes_growth_and_season_multiplicative():
    y = 10 * 1.1 ** np.arange(30)
    f = F.forecast(y, "linear", 3, 5, harmonics=0, transform="log")
    np.testing.assert_allclose(f.mean, 10 * 1.1 ** np.arange(30, 33), rtol=1e-9)
    with pytest.raises(DataError, match="positive"):
        F.forecast(np.r_[y, 0.0], "linear", 3, 5, transform="log")


@pytest.mark.parametrize("call, error", [
    (lambda: F.holt_winters(np.ones(20), 5, 24), DataError),
    (lambda: F.holt_winters([1.0, np.nan] * 20, 5, 4), DataError),
    (lambda: F.holt_winters(np.ones(40), 0, 4), ParameterError),
    (lambda: F.holt_winters(np.ones(40), 5, 4, level=90), ParameterError),
    (lambda: F.forecast(np.ones(40), "prophet", 5, 4), ParameterError),
    (lambda: F.linear_trend(np.ones(5), 2, 24, harmonics=3), DataError),
])
def test_bad_inputs_raise_errors_that_say_what_to_do(call, error):
    with pytest.raises(error) as exc:
        call()
    assert len(str(exc.value)) > 30


# --- backtest ----------------------------------------------------------------------------------


def test_backtest_never_uses_data_after_the_origin():
    rng = np.random.default_rng(0)
    y = 50 + 10 * np.sin(np.arange(60) * 2 * np.pi / 12) + rng.normal(0, 1, 60)
    changed = y.copy()
    changed[40:] += 1000  # the future changes completely
    a = F.backtest(pl.DataFrame({"value": y}), methods=["holt_winters", "linear"], horizon_steps=4, period=12)
    b = F.backtest(pl.DataFrame({"value": changed}), methods=["holt_winters", "linear"], horizon_steps=4, period=12)
    before = pl.col("origin") < 40  # origin = index of the last sample used
    pl.testing.assert_series_equal(a.filter(before)["mean"], b.filter(before)["mean"])
    row = a.filter((pl.col("origin") == 29) & (pl.col("method") == "linear") & (pl.col("h") == 2))
    direct = F.forecast(y[:30], "linear", 4, 12, floor=0.0)
    assert row["mean"][0] == pytest.approx(direct.mean[1]) and row["actual"][0] == y[31]


def test_backtest_summary_metrics_on_a_hand_made_case():
    bt = pl.DataFrame({
        "method": ["m", "m", "seasonal_naive", "seasonal_naive"],
        "actual": [10.0, 20.0, 10.0, 20.0], "mean": [12.0, 20.0, 14.0, 12.0],
        "lower": [9.0, 21.0, 0.0, 0.0], "upper": [13.0, 25.0, 30.0, 30.0],
    })
    s = F.backtest_summary(bt).filter(pl.col("method") == "m").row(0, named=True)
    assert s["n"] == 2 and s["mae"] == 1.0
    assert s["wape_pct"] == pytest.approx(2 / 30 * 100) and s["bias_pct"] == pytest.approx(2 / 30 * 100)
    assert s["coverage_pct"] == 50.0 and s["mae_vs_naive"] == pytest.approx(1.0 / 6.0)


# --- crossings, thresholds, costs ----------------------------------------------------------------


def test_first_crossing_searches_the_future_only():
    fc = pl.DataFrame({"timestamp": _hours(4), "mean": [99.0, 10.0, 10.0, 85.0]})
    assert F.first_crossing(fc, 80, after=T0) == T0 + timedelta(hours=3)  # the 99 at `after` is not future
    assert F.first_crossing(fc, 90, after=T0) is None


def _series_and_forecast(history, future, upper=None):
    hist = pl.DataFrame({"resource": "wan_gbps", "region": "eu", "timestamp": _hours(len(history)),
                         "value": [float(v) for v in history]})
    last = hist["timestamp"][-1]
    ts = [last + timedelta(hours=k) for k in range(1, len(future) + 1)]
    fc = pl.DataFrame({"resource": "wan_gbps", "region": "eu", "timestamp": ts, "mean": [float(v) for v in future],
                       "lower": [0.0] * len(future), "upper": [float(v) for v in (upper or future)]})
    return hist, fc


@pytest.mark.parametrize("history, future, upper, status", [
    ([10, 39, 10], [10] * 48, None, "already above"),        # 39 >= 38 (95 % of 40) in the last day
    ([10, 20, 10], [10] * 24 + [35] * 24, None, "within 7d"),  # crosses 34 (85 %) after a day
    ([10, 20, 10], [10] * 200 + [35], None, "later"),        # after the 7-day window
    ([10, 20, 10], [10] * 48, [10] * 10 + [36] * 38, "plausible"),
    ([10, 20, 10], [10] * 48, None, "not crossed"),
])
def test_crossing_status(history, future, upper, status):
    hist, fc = _series_and_forecast(history, future, upper)
    cx = F.crossings(hist, fc, F.RESOURCES, within="7d")
    warn = cx.filter(pl.col("threshold_name") == ("critical" if status == "already above" else "warn")).row(0, named=True)
    assert warn["status"] == status
    if status == "within 7d":
        assert warn["first_crossing"] == hist["timestamp"][-1] + timedelta(hours=25)
        assert warn["days_until"] == pytest.approx(25 / 24)
    if warn["first_crossing"] is not None:
        assert warn["first_crossing"] > hist["timestamp"][-1]  # never in the past, never negative
        assert warn["days_until"] > 0


def test_fractional_thresholds_are_refused():
    hist, fc = _series_and_forecast([1, 2, 3], [3] * 5)
    with pytest.raises(ParameterError, match="percent"):
        F.crossings(hist, fc, F.RESOURCES, warn_pct=0.85, critical_pct=0.95)
    with pytest.raises(ParameterError, match="swap"):
        F.crossings(hist, fc, F.RESOURCES, warn_pct=95, critical_pct=85)


def test_additions_round_up_to_whole_units_and_cost_them():
    fc = pl.DataFrame({"resource": ["wan_gbps"] * 2 + ["active_streams"], "region": ["eu", "eu", "eu"],
                       "mean": [30.0, 51.0, 20.0], "upper": [60.0, 70.0, 40.0]})
    add = F.additions(fc, F.RESOURCES, warn_pct=85)
    wan = add.filter(pl.col("resource") == "wan_gbps").row(0, named=True)
    # peak 51 Gbit/s / 0.85 = 60 needed; 40 installed -> 20 more = 2 links of 10 -> 2,000 a month
    assert wan["needed"] == pytest.approx(60.0) and wan["units"] == 2 and wan["monthly_cost"] == 2000.0
    assert add.filter(pl.col("resource") == "active_streams")["units"][0] == 0
    upper = F.additions(fc, F.RESOURCES, warn_pct=85, size_on="upper").filter(pl.col("resource") == "wan_gbps")
    assert upper["units"][0] == 5  # 70 / 0.85 = 82.4 -> 42.4 more -> 5 links


def test_resources_overrides_and_validation():
    r = F.resources(migrations_unit_cost=0.0, streams_capacity=256)
    assert r["migrations_per_min"].unit_cost == 0.0 and r["active_streams"].capacity == 256.0
    assert r["wan_gbps"] == F.RESOURCES["wan_gbps"]
    with pytest.raises(ParameterError):
        F.resources(wan_capacity_gbps=-1)


# --- telemetry -> series ----------------------------------------------------------------------


def test_capacity_series_units_and_counter_resets():
    rows = []
    for t in range(121):  # 2 hours of 1-min samples
        b = 7.5e9 * t if t < 70 else 7.5e9 * (t - 69)  # 1 Gbit/s; restarted between minutes 69 and 70
        rows.append((t * 60_000, "dwcp_v3_bytes_transferred_total", b, {"region": "eu", "version": "v3"}))
        rows.append((t * 60_000, "dwcp_v3_active_streams", 30.0 + (t % 2), {"region": "eu", "version": "v3"}))
        rows.append((t * 60_000, "dwcp_v3_active_streams", 10.0, {"region": "eu", "version": "v1"}))
    s = F.capacity_series(from_rows(rows), step="1h")
    wan = s.filter(pl.col("resource") == "wan_gbps")["value"].to_list()
    assert wan == pytest.approx([1.0, 1.0])  # the reset does not show as a drop
    streams = s.filter(pl.col("resource") == "active_streams")["value"].to_list()
    assert streams == pytest.approx([40.5, 40.5])  # mean per version, summed over versions
    with pytest.raises(DataError, match="none of"):
        F.capacity_series(from_rows([(0, "x", 1.0, {"region": "eu"}), (60_000, "x", 1.0, {"region": "eu"})]))


def test_data_notes_are_honest_about_short_history():
    s = pl.DataFrame({"timestamp": _hours(48), "value": 1.0})
    notes = " ".join(F.data_notes(s, horizon="7d"))
    assert "weekly cycle" in notes and "extrapolation" in notes
    long = pl.DataFrame({"timestamp": _hours(24 * 60), "value": 1.0})
    assert not any("weekly" in n for n in F.data_notes(long, horizon="7d"))


# --- the plan on the sample ---------------------------------------------------------------------


def test_plan_on_the_sample(sample_plan):
    p = sample_plan
    assert p.series.group_by("resource", "region").len()["len"].to_list() == [48] * 9
    last = p.series["timestamp"].max()
    assert p.forecast["timestamp"].min() > last  # forecasts start after the history
    assert p.forecast.height == 9 * 7 * 24
    assert set(p.accuracy["method"]) == {"holt_winters", "linear", "seasonal_naive"}
    hw = p.accuracy.filter(pl.col("method") == "holt_winters").row(0, named=True)
    assert hw["mae_vs_naive"] < 1  # beats yesterday's value on the sample
    crossed = p.crossings.filter(pl.col("first_crossing").is_not_null())
    assert (crossed["first_crossing"] > last).all() and (crossed["days_until"] > 0).all()
    assert p.verdict_level in ("OK", "WARN", "ACT") and p.reasons
    assert any("weekly" in n for n in p.notes)


def test_plan_verdict_follows_the_capacity():
    frame = load("sample", metrics=list(F.CAPACITY_METRICS))
    roomy = F.plan(frame, res=F.resources(wan_capacity_gbps=1e4, migrations_capacity_per_min=1e4,
                                          streams_capacity=1e4))
    assert roomy.verdict_level == "OK" and roomy.monthly_cost == 0.0
    tight = F.plan(frame, res=F.resources(migrations_capacity_per_min=50))
    assert tight.verdict_level == "ACT"
    assert any("already above critical" in r for r in tight.reasons)
    assert tight.monthly_cost > 0 and tight.additions.filter(pl.col("units") > 0).height >= 1
    with pytest.raises(ParameterError, match="longer than"):
        F.plan(frame, horizon="3d", within="7d")


def test_figures_render_and_save(sample_plan, tmp_path):
    figs = F.figures(sample_plan)
    assert set(figs) == {"forecast-wan-gbps", "forecast-migrations-per-min", "forecast-active-streams", "backtest-error"}
    spec = figs["forecast-wan-gbps"].to_dict()
    assert spec["vconcat"][0]["layer"][1]["encoding"]["x"]["scale"]["type"] == "utc"
    assert "(Gbit/s)" in json.dumps(spec) and len(spec["vconcat"]) == 3  # unit in the title, a panel per region
    paths = charts.save(figs["backtest-error"], tmp_path / "figs", "backtest-error")
    assert [p.suffix for p in paths] == [".svg", ".png"]
    assert paths[0].read_text().lstrip().startswith("<svg") and paths[1].read_bytes()[:4] == b"\x89PNG"
    assert charts.save_all(figs, "") == []


def test_backtest_origin_spacing_and_minimum_history():
    s = pl.DataFrame({"value": np.tile([1.0, 5.0, 3.0, 2.0], 10)})
    every = F.backtest(s, methods=["seasonal_naive"], horizon_steps=1, period=4)
    sparse = F.backtest(s, methods=["seasonal_naive"], horizon_steps=1, period=4, origin_every=4)
    assert every.height == 40 - 8 and sparse.height == 8  # min_train = max(4 + 1, 4 + 4) = 8
    with pytest.raises(DataError, match="no origin"):
        F.backtest(s.head(8), methods=["seasonal_naive"], period=4)
