"""Tests of dwcpkit.sre.anomaly: detectors, the confusion matrix and event scoring on hand-made cases, the review."""

from __future__ import annotations

import doctest
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from dwcpkit import charts
from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import anomaly as A
from dwcpkit.telemetry.sources import load, load_incidents

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
B = timedelta(minutes=5)


def _t(h, m=0):
    return T0 + timedelta(hours=h, minutes=m)


@pytest.fixture(scope="module")
def sample_review():
    return A.review(load("sample", metrics=list(A.FEATURE_METRICS)), load_incidents("sample"))


def test_doctests():
    failures, tried = doctest.testmod(A)
    assert tried > 10 and failures == 0


# --- the confusion matrix and its rates ---------------------------------------------------------


def test_confusion_matrix_counts_and_rates():
    flags = [True, True, True, False, False, False, False, True]
    truth = [True, True, False, True, False, False, False, False]
    cm = A.confusion_matrix(flags, truth, ignore=[False] * 7 + [True])  # the last one is in a grace period
    assert (cm["tp"], cm["fp"], cm["fn"], cm["tn"]) == (2, 1, 1, 3)
    assert cm["precision"] == pytest.approx(2 / 3) and cm["recall"] == pytest.approx(2 / 3)
    assert cm["f1"] == pytest.approx(2 / 3) and cm["fpr"] == pytest.approx(1 / 4)


def test_confusion_matrix_edge_cases():
    none_flagged = A.confusion_matrix([False, False], [True, False])
    assert none_flagged["precision"] is None and none_flagged["recall"] == 0.0 and none_flagged["f1"] == 0.0
    no_positives = A.confusion_matrix([True, False], [False, False])
    assert no_positives["recall"] is None and no_positives["precision"] == 0.0 and no_positives["fpr"] == 0.5
    with pytest.raises(ParameterError):
        A.confusion_matrix([True], [True, False])


# --- alarm events and scoring against incidents -------------------------------------------------


def test_alarm_events_are_runs_per_region_split_by_gaps():
    ts = [_t(0, 5 * k) for k in range(1, 9)]
    f = pl.DataFrame({
        "region": ["a"] * 8 + ["b"] * 8,
        "timestamp": ts + ts,
        "flag": [1, 1, 0, 1, 0, 1, 1, 1] + [0, 1, 1, 1, 0, 0, 0, 0],
    }).with_columns(pl.col("flag").cast(pl.Boolean))
    ev = A.alarm_events(f)
    assert ev.select("region", "buckets").rows() == [("a", 2), ("b", 3), ("a", 1), ("a", 3)]
    first = ev.row(0, named=True)
    assert first["start"] == _t(0, 0) and first["end"] == _t(0, 10)  # start of first bucket, end of last
    gap = f.filter(pl.col("timestamp") != _t(0, 35))  # a missing bucket splits a run
    assert A.alarm_events(gap).filter(pl.col("region") == "a")["buckets"].to_list() == [2, 1, 1, 1]


def _scores(flagged: dict[str, list[datetime]], hours=4):
    ts = [_t(0, 5 * k) for k in range(1, hours * 12 + 1)]
    rows = []
    for region in ("a", "b"):
        hit = set(flagged.get(region, []))
        rows += [{"region": region, "timestamp": t, "score": 9.0 if t in hit else 1.0, "feature": "error_pct"}
                 for t in ts]
    return pl.DataFrame(rows)


INCIDENTS = pl.DataFrame({
    "incident_id": ["I1", "I2"], "kind": ["error_surge", "latency_spike"], "region": ["a", "b"],
    "start": [_t(1), _t(2)], "end": [_t(1, 30), _t(2, 10)],
})


def test_evaluate_on_a_hand_made_case():
    # region a: incident 01:00-01:30, flagged buckets ending 01:10 and 01:15 (a true alarm, delay 10 min),
    # and 01:35 (in the 10-min grace: ignored at point level, a true alarm at event level);
    # region b: incident 02:00-02:10 missed, a false alarm at 00:30.
    sc = _scores({"a": [_t(1, 10), _t(1, 15), _t(1, 35)], "b": [_t(0, 30)]})
    ev = A.evaluate(sc, INCIDENTS, threshold=5.0, grace="10m")
    m = ev.metrics
    # point level: positives are a's 6 buckets ending 01:05..01:30 and b's 2 ending 02:05, 02:10
    assert (m["tp"], m["fp"], m["fn"]) == (2, 1, 6)
    ignored = 4  # the 2 buckets starting inside each incident's 10-min grace (a: 01:35, 01:40; b: 02:15, 02:20)
    assert m["tn"] == 2 * 48 - ignored - 2 - 1 - 6
    assert m["point_precision_pct"] == pytest.approx(200 / 3) and m["point_recall_pct"] == pytest.approx(25.0)
    # event level: alarms a[01:05-01:15] true, a[01:30-01:35] true (grace), b[00:25-00:30] false
    assert (m["alarms"], m["false_alarms"]) == (3, 1)
    assert m["event_precision_pct"] == pytest.approx(200 / 3) and m["event_recall_pct"] == pytest.approx(50.0)
    assert m["event_f1_pct"] == pytest.approx(100 * 2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert m["false_alarms_per_hour"] == pytest.approx(1 / 4)
    assert m["delay_median_min"] == 10.0 and m["delay_max_min"] == 10.0
    inc = ev.incidents.sort("incident_id")
    assert inc["detected"].to_list() == [True, False] and inc["first_alarm"][0] == _t(1, 10)


def test_a_bucket_straddling_the_start_counts_and_the_threshold_is_inclusive():
    inc = INCIDENTS.with_columns(pl.when(pl.col("incident_id") == "I1").then(_t(1, 2)).otherwise("start").alias("start"))
    sc = _scores({"a": [_t(1, 5)]}).with_columns(
        pl.when(pl.col("score") > 5).then(5.0).otherwise("score").alias("score"))
    ev = A.evaluate(sc, inc, threshold=5.0)
    assert ev.metrics["tp"] == 1 and ev.metrics["delay_median_min"] == 3.0
    assert A.evaluate(sc, inc, threshold=5.01).metrics["alarms"] == 0


def test_unscored_buckets_are_left_out():
    sc = _scores({}).with_columns(pl.when(pl.col("timestamp") <= _t(1, 30)).then(None).otherwise("score").alias("score"))
    m = A.evaluate(sc, INCIDENTS, threshold=5.0).metrics
    # 18 unscored buckets per region (a's incident among them), 2 grace buckets after each incident
    assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == 2 * 48 - 2 * 18 - 2 * 2
    assert m["fn"] == 2 and m["tp"] == 0  # only b's incident (2 buckets) is scored, and missed


def test_evaluate_refuses_a_bad_threshold_and_incident_table():
    with pytest.raises(ParameterError):
        A.evaluate(_scores({}), INCIDENTS, threshold=0)
    with pytest.raises(DataError, match="columns"):
        A.evaluate(_scores({}), INCIDENTS.drop("region"))


# --- univariate detectors --------------------------------------------------------------------------


def _robust_z_ref(x, window, floor, min_periods):
    out = []
    for i in range(len(x)):
        w = [v for v in x[max(0, i - window):i] if np.isfinite(v)]
        if len(w) < min_periods or not np.isfinite(x[i]):
            out.append(np.nan)
            continue
        med = float(np.median(w))
        scale = max(1.4826 * float(np.median(np.abs(np.array(w) - med))), floor)
        out.append((x[i] - med) / scale)
    return np.array(out)


def test_robust_z_matches_a_plain_reference_and_is_causal():
    rng = np.random.default_rng(5)
    x = rng.normal(10, 2, 200)
    x[[20, 77, 150]] = np.nan
    x[100] = 40
    z = A.robust_z(x, 24, floor=0.1)
    np.testing.assert_allclose(z, _robust_z_ref(x, 24, 0.1, 12), equal_nan=True)
    assert np.isnan(z[:12]).all() and np.nanargmax(z) == 100
    later = x.copy()
    later[101:] += 1000  # the future cannot change the past scores
    np.testing.assert_array_equal(A.robust_z(later, 24, floor=0.1)[:101], z[:101])


def test_robust_z_floor_and_constant_series():
    x = np.r_[np.full(30, 7.0), 3.0]
    assert A.robust_z(x, 10, floor=0.5)[-1] == pytest.approx(-8.0)
    assert A.robust_z(x, 10)[-1] == -np.inf and A.robust_z(x, 10)[-2] == 0.0


def test_static_z_is_inflated_by_the_anomalies_it_looks_for():
    base = np.tile([9.0, 11.0], 50)
    one = np.r_[base, 30.0]
    many = np.r_[base, np.full(20, 30.0)]
    assert A.static_z(one)[-1] > 8  # a lone outlier stands out
    assert A.static_z(many)[-1] < 3  # twenty of them raise sigma and hide themselves
    assert A.robust_z(many, 60)[len(base)] > 9  # the rolling median / MAD does not


def test_seasonal_residual_is_robust_to_an_incident_on_one_day():
    m = 48
    slot = np.tile(np.arange(m), 2)
    day = np.repeat([0, 1], m)
    profile = 10 * np.sin(2 * np.pi * np.arange(m) / m)
    rng = np.random.default_rng(2)
    x = np.r_[profile + 100, profile + 130] + rng.normal(0, 1, 2 * m)  # day 2 is 30 higher
    x_inc = x.copy()
    x_inc[20:26] += 50  # a 6-slot incident on day 1
    z, expected = A.seasonal_residual_z(x_inc, slot, day, slots_per_day=m, smooth=4)
    assert np.all(z[20:26] > 15)
    assert np.max(np.abs(z[m + 20:m + 26])) < 4  # the same slots on day 2 are not dragged along
    np.testing.assert_allclose(expected[m:] - expected[:m], 30, atol=1.5)  # the day levels
    with pytest.raises(ParameterError):
        A.seasonal_residual_z(x, slot + 100, day, slots_per_day=m)


# --- multivariate ----------------------------------------------------------------------------------


def test_robust_covariance_ignores_planted_outliers_and_mahalanobis_finds_them():
    rng = np.random.default_rng(11)
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    Z = rng.multivariate_normal([0, 0], cov, 500)
    Z[:25] = rng.multivariate_normal([0, 0], cov, 25) + np.array([3.0, -3.0])  # off the correlation axis
    mu, S = A.robust_covariance(Z, shrink=0.0)
    assert np.all(np.abs(mu) < 0.2)
    corr = S[0, 1] / np.sqrt(S[0, 0] * S[1, 1])
    assert corr > 0.7  # the outliers (negatively aligned) would drag it down
    z = A.mahalanobis_z(Z, shrink=0.0)
    assert set(np.argsort(z)[-25:]) >= set(range(20))  # at least 20 of the 25 planted rows are on top
    bulk = z[25:]
    assert abs(np.median(bulk)) < 0.3  # Wilson-Hilferty: the bulk is about N(0, 1)
    with pytest.raises(DataError):
        A.robust_covariance(np.zeros((2, 3)))


# --- detect over a feature frame ---------------------------------------------------------------------


def _frame(values: dict[str, list[float]], region="eu"):
    n = len(next(iter(values.values())))
    return pl.DataFrame({"region": region, "timestamp": [_t(0, 5 * k) for k in range(1, n + 1)], **values})


def test_detect_respects_direction_and_sampling_error():
    rng = np.random.default_rng(0)
    up = 0.2 + rng.normal(0, 0.005, 60)
    down = up.copy()
    up[50] = 5.0  # errors up: bad
    down[50] = 0.0  # errors down: not an anomaly for an "up" feature
    s_up = A.detect(_frame({"error_pct": up.tolist()}), "robust_z")
    s_down = A.detect(_frame({"error_pct": down.tolist()}), "robust_z")
    assert s_up["score"][50] > 50 and s_up["feature"][50] == "error_pct"
    assert s_down["score"][50] == 0.0
    noisy = A.detect(_frame({"error_pct": up.tolist(), "error_pct_se": [2.0] * 60}), "robust_z")
    assert noisy["score"][50] < 3  # a 4.8-point jump is within the sampling error of a tiny bucket


def test_detect_schema_and_errors():
    f = _frame({"error_pct": [0.2] * 40, "peers": [7.0] * 39 + [3.0]})
    for d in A.DETECTORS:
        out = A.detect(f, d)
        assert out.columns == ["region", "timestamp", "score", "feature"] and out.height == 40
        assert out["score"][-1] > 5, d
    with pytest.raises(ParameterError):
        A.detect(f, "isolation_forest")
    with pytest.raises(DataError):
        A.detect(f.select("region", "timestamp"), "robust_z")


def test_operating_range():
    sw = pl.DataFrame({"detector": ["a"] * 4 + ["b"] * 2, "threshold": [2.0, 4.0, 6.0, 8.0, 2.0, 4.0],
                       "event_recall_pct": [100.0, 100.0, 100.0, 50.0, 100.0, 0.0], "false_alarms": [2, 0, 0, 0, 5, 0]})
    r = A.operating_range(sw)
    assert r.rows() == [("a", 4.0, 6.0, 6.0), ("b", None, None, 2.0)]


# --- the review on the sample ----------------------------------------------------------------------


def test_review_of_the_sample(sample_review):
    r = sample_review
    assert r.incidents.height == 6 and set(r.scores) == set(A.DETECTORS)
    t = r.table
    assert (t["incidents_detected"] == 6).all()  # the sample's incidents are all large
    for row in t.iter_rows(named=True):  # the rates are the confusion matrix's
        assert row["point_precision_pct"] == pytest.approx(100 * row["tp"] / (row["tp"] + row["fp"]), abs=0.05)
        assert row["point_recall_pct"] == pytest.approx(100 * row["tp"] / (row["tp"] + row["fn"]), abs=0.05)
        assert row["tp"] + row["fp"] + row["fn"] + row["tn"] <= r.features.height
        assert row["delay_median_min"] == 5.0  # one bucket: the value is known when the bucket ends
    assert t.filter(pl.col("detector") == "robust_z")["causal"][0] and not t.filter(pl.col("detector") == "seasonal")["causal"][0]
    assert r.verdict_level == "OK" and r.best in A.DETECTORS
    assert "earn" in r.multivariate_note()
    assert r.delays().columns[-4:] == list(A.DETECTORS)
    features = r.features.select([c for c in r.features.columns if c in A.FEATURES])
    assert features.width == len(A.FEATURES) and features.null_count().sum_horizontal()[0] == 0


def test_review_targets_and_no_ground_truth():
    frame = load("sample", metrics=list(A.FEATURE_METRICS), start="2026-11-02T12:00:00Z")
    strict = A.review(frame, load_incidents("sample"), detectors=["robust_z"], target_precision_pct=100.0,
                      threshold=3.0, sweep_thresholds=(3,))
    assert strict.verdict_level == "WARN" and any("precision target" in x for x in strict.reasons)
    unlabelled = A.review(frame, load_incidents("http://127.0.0.1:9"), detectors=["robust_z"])
    assert unlabelled.verdict_level == "WARN" and "no ground-truth" in unlabelled.reasons[0]
    with pytest.raises(ParameterError):
        A.review(frame, load_incidents("sample"), scoring="bucket")


def test_figures_render_and_save(sample_review, tmp_path):
    figs = A.figures(sample_review)
    assert set(figs) == {"scores", "sweep", "timeline"}
    spec = figs["timeline"].to_dict()
    assert len(spec["vconcat"]) == 3
    paths = charts.save_all({"scores": figs["scores"]}, tmp_path, formats=("svg",))
    assert paths == [tmp_path / "scores.svg"] and "<svg" in paths[0].read_text()
