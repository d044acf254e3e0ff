"""Tests for dwcpkit.sre.studies: the PBA backtest study on telemetry frames, and the study figures."""

from __future__ import annotations

import doctest
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.protocol import itp, pba, sweeps
from dwcpkit.sre import studies

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _frame(series: dict[str, np.ndarray]) -> pl.DataFrame:
    parts = []
    for region, y in series.items():
        parts.append(pl.DataFrame({"timestamp": [T0 + timedelta(minutes=i) for i in range(y.size)],
                                   "metric": "m", "value": y, "region": region}))
    return pl.concat(parts).with_columns(pl.col("timestamp").cast(pl.Datetime("ms", "UTC")))


@pytest.fixture(scope="module")
def walk():
    rng = np.random.default_rng(7)
    a = 1e9 + 1e7 * np.cumsum(rng.normal(size=500))
    b = np.concatenate([5e8 + 1e7 * np.cumsum(rng.normal(size=300)), np.zeros(200)])  # retired at the end
    return {"eu": a, "us": b}


@pytest.fixture(scope="module")
def study(walk):
    return studies.bandwidth_study(_frame(walk), horizon=3, warmup=60, synthetic=1, synthetic_samples=500,
                                   chart_hours=2.0, target_pct=5.0)


def test_load_throughput_from_the_sample_and_a_missing_metric():
    f = studies.load_throughput("sample")
    assert f["metric"].unique().to_list() == [studies.THROUGHPUT_METRIC]
    assert f.select("region", "version").unique().height == 6
    with pytest.raises(DataError, match="no samples"):
        studies.load_throughput("sample", metric="dwcp_v3_no_such_metric")


def test_study_tables_agree_with_pba(study, walk):
    assert study.summary["label"].unique(maintain_order=True).to_list() == ["sample", "synthetic"]
    direct = pba.summarize(pba.backtest(walk, pba.default_predictors(horizon=3), horizon=3, warmup=60,
                                        label="sample"))
    mine = study.summary.filter(pl.col("label") == "sample")
    assert mine["mae"].to_list() == pytest.approx(direct["mae"].to_list())
    assert study.traces == {"region=eu": 500, "region=us": 500, "synthetic-0": 500}
    # by-horizon pooling: h = 1 equals the summary's mae_h1; the fallback's improvement is 0
    bh = study.by_horizon
    h1 = bh.filter((pl.col("label") == "sample") & (pl.col("horizon") == 1)).sort("predictor")
    assert h1["mae"].to_list() == pytest.approx(mine.sort("predictor")["mae_h1"].to_list())
    assert bh.filter(pl.col("predictor") == "fallback")["vs_fallback_pct"].to_list() == pytest.approx([0.0] * 6)
    last1 = h1.filter(pl.col("predictor") == "last").row(0, named=True)
    assert last1["vs_fallback_pct"] == pytest.approx(100 * mine.filter(pl.col("predictor") == "last")["vs_fallback_h1"][0])


def test_forecast_frame_is_the_fallbacks_mean_of_five_at_the_target_time(study, walk):
    f = study.forecast
    assert study.config["chart_series"] == "region=eu"  # the highest mean over the drawn window, not the zero tail
    actual = f.filter(pl.col("line") == "actual")
    assert actual.height == 120 and actual["timestamp"].dtype == pl.Datetime("ms", "UTC")
    fb = f.filter((pl.col("line") == "fallback") & (pl.col("horizon") == "h = 1")).sort("timestamp")
    y = walk["eu"]
    i = int((fb["timestamp"][-1] - T0).total_seconds() // 60)  # target index of the last h = 1 forecast
    assert i == y.size - 1
    assert fb["value"][-1] == pytest.approx(y[i - 5: i].mean() / 1e6)
    assert set(f["line"].unique()) == {"actual", "fallback", study.best["sample"]}
    assert set(f["horizon"].unique()) == {"actual", "h = 1", "h = 3"}


def test_assessment_levels_follow_the_target(walk):
    ok = studies.bandwidth_study(_frame(walk), horizon=2, warmup=60, synthetic=0, target_pct=1.0)
    a = ok.assessment()
    assert (a.level, a.label) == ("OK", "target met")
    assert a.evidence["sample"]["vs_fallback_avg_pct"] >= 1.0
    warn = studies.bandwidth_study(_frame(walk), horizon=2, warmup=60, synthetic=0, target_pct=95.0).assessment()
    assert warn.level == "WARN" and "not met" in warn.summary
    assert "target met nowhere" in warn.reasons[0] or "h = 1 only" in warn.reasons[0]


def test_text_outputs_say_what_was_run(study):
    t = study.table()
    assert "MB/s" in t and "Mbit/s" in t and "fallback" in t
    w = study.what_was_run()
    assert "horizons 1-3" in w and "2 series x 500-500 samples" in w and "1 seeded traces x 500" in w


def test_synthetic_only_and_parameter_errors(walk):
    s = studies.bandwidth_study(None, horizon=2, warmup=50, synthetic=2, synthetic_samples=300)
    assert s.forecast.height == 0 and s.summary["label"].unique().to_list() == ["synthetic"]
    assert "forecast" not in studies.bandwidth_figures(s)
    with pytest.raises(ParameterError, match="synthetic"):
        studies.bandwidth_study(None, synthetic=-1)
    with pytest.raises(ParameterError, match="nothing to backtest"):
        studies.bandwidth_study(None, synthetic=0)
    with pytest.raises(ParameterError, match="target_pct"):
        studies.bandwidth_study(None, target_pct=0)
    with pytest.raises(ParameterError, match="fallback"):
        studies.bandwidth_study(None, predictors=[pba.LastValue()])
    with pytest.raises(ParameterError, match="chart_series"):
        studies.bandwidth_study(_frame(walk), horizon=2, warmup=60, synthetic=0, chart_series="region=mars")


def _rows(spec: dict) -> int:
    return sum(len(v) for v in spec.get("datasets", {}).values())


def test_bandwidth_figures_are_small_and_complete(study):
    figs = studies.bandwidth_figures(study)
    assert set(figs) == {"forecast", "improvement", "mae"}
    for chart in figs.values():
        spec = chart.to_dict()
        assert 0 < _rows(spec) < 5000
    assert "h = 3" in str(figs["forecast"].to_dict())


def test_migration_and_placement_figures():
    sweep = sweeps.migration_sweep(sweeps.MigrationScenario(), {"rtt_ms": [10.0, 200.0], "bulk_ratio": [1.0, 4.0]})
    figs = studies.migration_figures(sweep, downtime_budget_s=1.0)
    assert set(figs) == {"sweep_rtt_ms", "sweep_bulk_ratio"}
    spec = figs["sweep_rtt_ms"].to_dict()
    assert "did not converge" in str(spec) and _rows(spec) < 100
    nodes, vms = itp.synthetic_fleet(100, seed=1), itp.synthetic_vms(30, seed=2)
    q = sweeps.placement_quality(vms, nodes, itp.DEFAULT_REGIONS)
    s = sweeps.placement_batch_sweep(vms, nodes, itp.DEFAULT_REGIONS, sizes=[10, 30])
    assert set(studies.placement_figures(q)) == {"quality"}
    gap = pl.DataFrame({"run": ["first-fit"], "optimal_share": [0.5]})
    figs = studies.placement_figures(q, s, gap)
    assert set(figs) == {"quality", "batch", "gap"}
    assert all(_rows(f.to_dict()) < 200 for f in figs.values())


def test_consensus_figures_leave_out_runs_beyond_the_bound():
    runs = sweeps.consensus_sweep([3], [4], ["none", "crash", "beyond"], decisions=5, seeds=[0])
    figs = studies.consensus_figures(sweeps.consensus_summary(runs))
    assert set(figs) == {"latency", "throughput", "messages"}
    spec = str(figs["latency"].to_dict())
    assert "'crash'" in spec and "beyond" not in spec and "P99 (worst run)" in spec


def test_doctests():
    assert doctest.testmod(studies).failed == 0
