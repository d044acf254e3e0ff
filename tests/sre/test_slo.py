"""Tests for dwcpkit.sre.slo.

Golden values marked "promqltest" come from Prometheus' own test files
(promql/promqltest/testdata/functions.test and histograms.test), which describe Prometheus 3.x;
the "2.42" values are derived by hand from the 2.x rules (closed window, zero floor before the
half-interval rule) and the arithmetic is written next to each.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwcpkit.errors import DataError, ParameterError, SchemaError
from dwcpkit.sre import slo
from dwcpkit.telemetry.schema import from_rows

MIN = 60_000


def expand(spec: str) -> list[float | None]:
    """promqltest series notation: '0+10x3 5 _ 1x2' -> [0, 10, 20, 30, 5, None, 1, 1, 1]."""
    out: list[float | None] = []
    for tok in spec.split():
        if tok == "_":
            out.append(None)
        elif "x" in tok:
            head, n = tok.split("x")
            if "+" in head[1:] or "-" in head[1:]:
                sign_at = max(head.rfind("+"), head.rfind("-"))
                a, d = float(head[:sign_at]), float(head[sign_at:])
            else:
                a, d = float(head), 0.0
            out.extend(a + d * i for i in range(int(n) + 1))
        else:
            out.append(float(tok))
    return out


def load(interval_ms: int, series: dict[tuple[str, tuple[tuple[str, str], ...]], str]) -> pl.DataFrame:
    rows = []
    for (name, labels), spec in series.items():
        for i, v in enumerate(expand(spec)):
            if v is not None:
                rows.append((i * interval_ms, name, v, dict(labels)))
    return from_rows(rows)


def values_by(frame: pl.DataFrame, label: str) -> dict[str, float]:
    return dict(zip(frame[label].to_list(), frame["value"].to_list()))


# ------------------------------------------------------------------------------------------
# durations, evaluation grid
# ------------------------------------------------------------------------------------------


def test_parse_duration_forms():
    assert slo.parse_duration("5m") == 300_000
    assert slo.parse_duration("1h30m") == 5_400_000
    assert slo.parse_duration("3d") == 3 * 86_400_000
    assert slo.parse_duration("1w") == 7 * 86_400_000
    assert slo.parse_duration("250ms") == 250
    assert slo.parse_duration(timedelta(minutes=2)) == 120_000
    assert slo.parse_duration(1.5) == 1500


@pytest.mark.parametrize("bad", ["", "5", "5 m", "m5", "-5m", "0s", 0, -1, "5mins", float("nan")])
def test_parse_duration_rejects(bad):
    with pytest.raises(ParameterError):
        slo.parse_duration(bad)


def test_eval_times_is_query_range_grid():
    assert slo.eval_times(0, 10 * MIN, "3m").tolist() == [0, 3 * MIN, 6 * MIN, 9 * MIN]
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    grid = slo.eval_times(t0, "2024-01-01T00:02:00Z", "1m")
    assert (grid - grid[0]).tolist() == [0, MIN, 2 * MIN]
    with pytest.raises(ParameterError):
        slo.eval_times(datetime(2024, 1, 1), t0, "1m")  # naive
    with pytest.raises(ParameterError):
        slo.eval_times(5, 0, "1m")


# ------------------------------------------------------------------------------------------
# rate / increase: Prometheus golden values
# ------------------------------------------------------------------------------------------

INCREASE_DATA = {
    ("http_requests_total", (("path", "/foo"),)): "0+10x10",
    ("http_requests_total", (("path", "/bar"),)): "0+18x5 0+18x5",
    ("http_requests_total", (("path", "/dings"),)): "10+10x10",
    ("http_requests_total", (("path", "/bumms"),)): "1+10x10",
}


@pytest.mark.parametrize(
    "compat, window, expected",
    [
        # promqltest, 3.x: the sample at t=0 is outside the left-open window (0, 50m].
        ("3", "50m", {"/foo": 100, "/bar": 160, "/dings": 100, "/bumms": 100}),
        # 2.42: [0, 50m] holds t=0, so /bar sees 0..90 then 0..72: 72 - 0 + 90 = 162, no extrapolation.
        ("2.42", "50m", {"/foo": 100, "/bar": 162, "/dings": 100, "/bumms": 100}),
        # promqltest, 3.x: /dings zero point 5m before t=0 > half interval 2m30s -> 2m30s: 100*3150/3000.
        ("3", "100m", {"/foo": 100, "/bar": 162, "/dings": 105, "/bumms": 101}),
        # 2.42: zero floor first: min(50m, 5m) = 5m < 1.1*5m, so it extrapolates 5m: 100*3300/3000 = 110.
        ("2.42", "100m", {"/foo": 100, "/bar": 162, "/dings": 110, "/bumms": 101}),
    ],
)
def test_increase_golden(compat, window, expected):
    f = load(5 * MIN, INCREASE_DATA)
    got = values_by(slo.increase(f, window, at=50 * MIN, compat=compat), "path")
    assert got == pytest.approx(expected, rel=1e-12)


def test_increase_counter_reset_counts_from_zero():
    # promqltest: "3 2" is a reset; read as 3 0 1 2 -> 7 (both versions).
    f = load(5 * MIN, {("x_total", ()): "0 1 2 3 2 3 4"})
    for compat in ("2.42", "3"):
        assert slo.increase(f, "30m", at=30 * MIN, compat=compat)["value"].to_list() == pytest.approx([7.0])


def test_rate_reset_in_middle():
    f = load(5 * MIN, {("c_total", ()): "0+27x4 0+27x5"})
    # promqltest (3.x): (135 - 27 + 108) over 45m, extrapolated 5m to the start -> 216*50/45/3000 = 0.08
    assert slo.rate(f, "50m", at=50 * MIN, compat="3")["value"][0] == pytest.approx(0.08)
    # 2.42: t=0 inside: 135 - 0 + 108 = 243 over exactly the window -> 243/3000
    assert slo.rate(f, "50m", at=50 * MIN, compat="2.42")["value"][0] == pytest.approx(0.081)


def test_rate_reset_at_end_and_too_few_samples():
    f = load(5 * MIN, {("c_total", ()): "0+10x9 0 10"})
    # 3.x: (45m, 50m] holds one sample -> no value. 2.42: [45m, 50m] holds 90 and 0 -> 0 - 90 + 90 = 0.
    assert slo.rate(f, "5m", at=50 * MIN, compat="3").height == 0
    assert slo.rate(f, "5m", at=50 * MIN, compat="2.42")["value"].to_list() == [0.0]
    for compat in ("2.42", "3"):
        assert slo.rate(f, "6m", at=50 * MIN, compat=compat)["value"].to_list() == [0.0]


def test_rate_per_second():
    f = load(5 * MIN, {("w_total", ()): "0+80x10"})
    for compat in ("2.42", "3"):
        assert slo.rate(f, "50m", at=50 * MIN, compat=compat)["value"][0] == pytest.approx(0.26666666666666666)


@pytest.mark.parametrize(
    "compat, at, expected",
    [
        # promqltest (3.x): zero cut-off until half an interval (2m), then half an interval.
        ("3", 10, [0.5, 0.55, 0.6, 0.6, 0.6, 0.6]),
        # 2.42: the zero point (start*1m before t=0) wins while < 1.1*4m = 4m24s:
        # (480 + z + 120)/480 * 480/1200 -> z=180s: 0.65, z=240s: 0.7, z=300s >= 264s: half interval -> 0.6
        ("2.42", 10, [0.5, 0.55, 0.6, 0.65, 0.7, 0.6]),
        ("3", 50, [0.6] * 6),
        ("2.42", 50, [0.6] * 6),
    ],
)
def test_rate_zero_cutoff(compat, at, expected):
    series = {
        ("zc_total", (("start", f"{i}m"),)): f"{60 * i}+240x10" for i in range(6)
    }
    f = load(4 * MIN, series)
    got = slo.rate(f, "20m", at=at * MIN, compat=compat)
    assert got["start"].to_list() == [f"{i}m" for i in range(6)]
    assert got["value"].to_list() == pytest.approx(expected, rel=1e-12)


def test_extrapolation_hand_computed():
    # Samples every 15 s at 10, 20, 30 (t = 15, 30, 45 s), window [0, 60 s] evaluated at 60 s.
    f = from_rows([(15_000 * (i + 1), "x_total", 10.0 * (i + 1), {}) for i in range(3)])
    # sampled 30 s, avg 15 s, threshold 16.5 s; start gap 15 s < 16.5 but zero point 15 s away too;
    # end gap 15 s -> extrapolated interval 60 s -> increase 20 * 60/30 = 40.
    assert slo.increase(f, "1m", at=60_000)["value"][0] == pytest.approx(40.0)
    # At 80 s the end gap is 35 s >= 16.5 s -> only half an interval (7.5 s) on the right;
    # the start is at 15 s - (80 s - 60 s) ... window [20 s, 80 s] holds t=30, 45 only.
    got = slo.increase(f, "1m", at=80_000)["value"][0]
    # samples 20@30s, 30@45s: sampled 15 s, avg 15 s, thr 16.5 s; start gap 10 s (zero point 30 s) -> 10 s;
    # end gap 35 s -> 7.5 s: 10 * (15 + 10 + 7.5)/15
    assert got == pytest.approx(10 * 32.5 / 15)


def test_window_not_covering_data_is_empty():
    f = load(MIN, {("x_total", ()): "0+1x10"})
    assert slo.rate(f, "5m", at=60 * MIN).height == 0  # all samples older than the window
    assert slo.rate(f, "5m", at=-10 * MIN).height == 0  # before the data


def test_delta_gauge_no_reset_handling():
    # promqltest: delta(http_requests[20m]) at 20m -> 200 / -200
    f = load(5 * MIN, {("g", (("path", "/foo"),)): "0 50 100 150 200", ("g", (("path", "/bar"),)): "200 150 100 50 0"})
    got = values_by(slo.delta(f, "20m", at=20 * MIN), "path")
    assert got == pytest.approx({"/foo": 200.0, "/bar": -200.0})


def test_rate_steps_match_instants_and_keep_labels():
    f = load(
        MIN,
        {
            ("ops_total", (("region", "eu"), ("version", "v3"))): "0+60x30",
            ("ops_total", (("region", "us"),)): "5+30x10 0+30x19",
        },
    )
    ranged = slo.rate(f, "5m", step="2m")
    assert ranged.columns == ["timestamp", "metric", "value", "region", "version"]
    assert ranged["timestamp"].dt.epoch("ms").min() >= 2 * MIN  # t=0 has a single sample
    for (t, region), value in zip(
        zip(ranged["timestamp"].dt.epoch("ms").to_list(), ranged["region"].to_list()), ranged["value"].to_list()
    ):
        inst = slo.rate(f, "5m", at=t).filter(pl.col("region") == region)
        assert inst["value"].to_list() == [value]
    eu = ranged.filter(pl.col("region") == "eu")
    # t=2m: window [-3m, 2m] holds 0, 60, 120; the zero floor stops extrapolation at t=0 -> 120/300 s
    assert eu["value"][:2].to_list() == pytest.approx([0.4, 0.8])
    assert eu["value"][2:].to_list() == pytest.approx([1.0] * (eu.height - 2))
    assert eu["version"].unique().to_list() == ["v3"]
    assert ranged.filter(pl.col("region") == "us")["version"].null_count() > 0


def test_rate_step_grid_with_explicit_start_end():
    f = load(MIN, {("x_total", ()): "0+60x30"})
    r = slo.rate(f, "5m", step="10m", start=5 * MIN, end=25 * MIN)
    assert r["timestamp"].dt.epoch("ms").to_list() == [5 * MIN, 15 * MIN, 25 * MIN]


def test_rate_default_is_instant_at_newest_sample():
    f = load(MIN, {("x_total", ()): "0+60x30"})
    r = slo.rate(f, "5m")
    assert r["timestamp"].dt.epoch("ms").to_list() == [30 * MIN]
    assert r["value"][0] == pytest.approx(1.0)


def test_rate_errors():
    f = load(MIN, {("x_total", ()): "0+60x3"})
    with pytest.raises(ParameterError):
        slo.rate(f, "5m", step="1m", at=0)
    with pytest.raises(ParameterError):
        slo.rate(f, "5m", start=0)
    with pytest.raises(ParameterError):
        slo.rate(f, "5m", compat="2.50")
    with pytest.raises(SchemaError):
        slo.rate(pl.DataFrame({"value": [1.0]}), "5m")
    dup = pl.concat([f, f.head(1)])
    with pytest.raises(DataError, match="two samples"):
        slo.rate(dup, "5m")
    with pytest.raises(DataError, match="no samples"):
        slo.rate(f.head(0), "5m")
    assert slo.rate(f.head(0), "5m", at=0).height == 0


def test_nan_and_null_values_are_missing_samples():
    f = from_rows([(i * MIN, "x_total", v, {}) for i, v in enumerate([0.0, 60.0, float("nan"), 180.0])])
    r = slo.increase(f, "3m", at=3 * MIN)
    assert r["value"].to_list() == pytest.approx([180.0])


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(0, 1e12, allow_nan=False), min_size=2, max_size=30),
    gaps=st.lists(st.integers(1, 120_000), min_size=29, max_size=29),
    window=st.integers(1_000, 3_600_000),
    compat=st.sampled_from(["2.42", "3"]),
)
def test_increase_never_negative(values, gaps, window, compat):
    ts = np.concatenate(([0], np.cumsum(gaps[: len(values) - 1])))
    f = from_rows([(int(t), "c_total", v, {}) for t, v in zip(ts, values)])
    r = slo.increase(f, f"{window}ms", step="30s", start=0, end=int(ts[-1]) + window, compat=compat)
    assert (r["value"].to_numpy() >= 0).all()


def _ref_extrapolated(ts, vs, at, window, is_counter, is_rate, compat):
    """Line-by-line port of Prometheus' extrapolatedRate for one series (test oracle)."""
    rs, re_ = at - window, at
    pts = [(t, v) for t, v in zip(ts, vs) if (rs <= t if compat == "2.42" else rs < t) and t <= re_]
    if len(pts) < 2:
        return None
    result = pts[-1][1] - pts[0][1]
    if is_counter:
        prev = pts[0][1]
        for _, v in pts[1:]:
            if v < prev:
                result += prev
            prev = v
    dts = (pts[0][0] - rs) / 1000
    dte = (re_ - pts[-1][0]) / 1000
    sampled = (pts[-1][0] - pts[0][0]) / 1000
    avg = sampled / (len(pts) - 1)
    thr = avg * 1.1
    if compat == "2.42":
        if is_counter and result > 0 and pts[0][1] >= 0:
            dts = min(dts, sampled * (pts[0][1] / result))
        ext = sampled + (dts if dts < thr else avg / 2)
    else:
        if dts >= thr:
            dts = avg / 2
        if is_counter and result > 0 and pts[0][1] >= 0:
            dts = min(dts, sampled * (pts[0][1] / result))
        ext = sampled + dts
    ext += dte if dte < thr else avg / 2
    factor = ext / sampled
    if is_rate:
        factor /= window / 1000
    return result * factor


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(-50, 1e6, allow_nan=False), min_size=1, max_size=25),
    gaps=st.lists(st.integers(1, 90_000), min_size=24, max_size=24),
    window=st.integers(1_000, 1_800_000),
    compat=st.sampled_from(["2.42", "3"]),
    fn=st.sampled_from(["rate", "increase", "delta"]),
)
def test_vectorised_matches_reference_port(values, gaps, window, compat, fn):
    ts = [0] + np.cumsum(gaps[: len(values) - 1]).tolist()
    f = from_rows([(t, "s", v, {}) for t, v in zip(ts, values)])
    step = 7_000
    got = getattr(slo, fn)(f, f"{window}ms", step=f"{step}ms", start=0, end=ts[-1] + window, compat=compat)
    got = dict(zip(got["timestamp"].dt.epoch("ms").to_list(), got["value"].to_list()))
    for at in range(0, ts[-1] + window + 1, step):
        ref = _ref_extrapolated(ts, values, at, window, fn != "delta", fn == "rate", compat)
        if ref is None:
            assert at not in got
        else:
            assert got[at] == ref  # bit-identical: same operations in the same order


def test_big_counter_small_reset_not_swallowed():
    # 1e17 is a reset value that a running sum would make 16-ulp coarse; Prometheus adds back
    # each reset per window, so a later reset of 5 must be counted exactly.
    vals = [0.0, 1e17, 0.0, 5.0, 0.0, 3.0]
    f = from_rows([(i * MIN, "b_total", v, {}) for i, v in enumerate(vals)])
    r = slo.increase(f, "2m", at=5 * MIN)  # window [3m, 5m]: 5, 0, 3 -> 3 - 5 + 5 = 3, no extrapolation
    assert r["value"].to_list() == [3.0]


# ------------------------------------------------------------------------------------------
# sum_by
# ------------------------------------------------------------------------------------------


def test_sum_by():
    f = from_rows(
        [
            (0, "r", 1.0, {"region": "eu", "version": "v1"}),
            (0, "r", 2.0, {"region": "eu", "version": "v3"}),
            (0, "r", 4.0, {"region": "us", "version": "v3"}),
            (0, "other", 8.0, {"region": "eu"}),
            (MIN, "r", 16.0, {"region": "eu", "version": "v1"}),
        ]
    )
    by_region = slo.sum_by(f, ["region"])
    assert by_region.columns == ["timestamp", "metric", "value", "region"]
    rows = {(m, r, t): v for t, m, v, r in by_region.iter_rows()}
    assert rows[("r", "eu", datetime(1970, 1, 1, tzinfo=timezone.utc))] == 3.0
    assert rows[("other", "eu", datetime(1970, 1, 1, tzinfo=timezone.utc))] == 8.0
    total = slo.sum_by(f, [], metric="all")
    assert total["value"].to_list() == [15.0, 16.0] and total["metric"].unique().to_list() == ["all"]
    absent = slo.sum_by(f, ["le"])
    assert absent["le"].null_count() == absent.height
    with pytest.raises(ParameterError):
        slo.sum_by(f, ["value"])


# ------------------------------------------------------------------------------------------
# histogram_quantile: Prometheus golden values (histograms.test)
# ------------------------------------------------------------------------------------------

TESTHISTOGRAM = {
    ("testhistogram_bucket", (("le", "0.1"), ("start", "positive"))): "0+5x10",
    ("testhistogram_bucket", (("le", ".2"), ("start", "positive"))): "0+7x10",
    ("testhistogram_bucket", (("le", "1e0"), ("start", "positive"))): "0+11x10",
    ("testhistogram_bucket", (("le", "+Inf"), ("start", "positive"))): "0+12x10",
    ("testhistogram_bucket", (("le", "-.2"), ("start", "negative"))): "0+1x10",
    ("testhistogram_bucket", (("le", "-0.1"), ("start", "negative"))): "0+2x10",
    ("testhistogram_bucket", (("le", "0.3"), ("start", "negative"))): "0+2x10",
    ("testhistogram_bucket", (("le", "+Inf"), ("start", "negative"))): "0+3x10",
}
TESTHISTOGRAM3 = {
    ("testhistogram3_bucket", (("le", "0"), ("start", "positive"))): "0+0x10",
    ("testhistogram3_bucket", (("le", "0.1"), ("start", "positive"))): "0+5x10",
    ("testhistogram3_bucket", (("le", ".2"), ("start", "positive"))): "0+7x10",
    ("testhistogram3_bucket", (("le", "1e0"), ("start", "positive"))): "0+11x10",
    ("testhistogram3_bucket", (("le", "+Inf"), ("start", "positive"))): "0+11x10",
    ("testhistogram3_bucket", (("le", "-.25"), ("start", "negative"))): "0+0x10",
    ("testhistogram3_bucket", (("le", "-.2"), ("start", "negative"))): "0+1x10",
    ("testhistogram3_bucket", (("le", "-0.1"), ("start", "negative"))): "0+2x10",
    ("testhistogram3_bucket", (("le", "0.3"), ("start", "negative"))): "0+2x10",
    ("testhistogram3_bucket", (("le", "+Inf"), ("start", "negative"))): "0+2x10",
}


def _at(frame: pl.DataFrame, minutes: int) -> pl.DataFrame:
    return frame.filter(pl.col("timestamp").dt.epoch("ms") == minutes * MIN)


@pytest.mark.parametrize(
    "q, positive, negative",
    [
        (0, 0, -0.2),
        (0.2, 0.048, -0.2),
        (0.5, 0.15, -0.15),
        (0.8, 0.72, 0.3),
        (1, 1, 0.3),
        (-0.1, -math.inf, -math.inf),
        (1.01, math.inf, math.inf),
    ],
)
def test_histogram_quantile_golden(q, positive, negative):
    h = load(5 * MIN, TESTHISTOGRAM)
    for buckets in (_at(h, 50), slo.rate(h, "10m", at=50 * MIN)):
        got = slo.histogram_quantile(q, buckets)
        assert got.columns == ["timestamp", "metric", "value", "start"]
        assert got["metric"].unique().to_list() == ["testhistogram"]
        assert values_by(got, "start") == pytest.approx({"positive": positive, "negative": negative})


def test_histogram_quantile_nan_q():
    got = slo.histogram_quantile(float("nan"), _at(load(5 * MIN, TESTHISTOGRAM), 50))
    assert got.height == 2 and got["value"].is_nan().all()


@pytest.mark.parametrize(
    "q, positive, negative",
    [(0, 0, -0.25), (0.25, 0.055, -0.225), (0.5, 0.125, -0.2), (0.75, 0.45, -0.15), (1, 1, -0.1)],
)
def test_histogram_quantile_golden_3(q, positive, negative):
    got = slo.histogram_quantile(q, _at(load(5 * MIN, TESTHISTOGRAM3), 50))
    assert values_by(got, "start") == pytest.approx({"positive": positive, "negative": negative})


def test_histogram_quantile_middle_of_bucket():
    h = load(5 * MIN, {("th2_bucket", (("le", le),)): spec for le, spec in
                       [("0", "0+0x10"), ("2", "0+1x10"), ("4", "0+2x10"), ("6", "0+3x10"), ("+Inf", "0+3x10")]})
    for q, want in [(1 / 6, 1.0), (0.5, 3.0), (5 / 6, 5.0)]:
        # values at 7m are the 5m sample (1 step), as the instant vector selector would see them
        assert slo.histogram_quantile(q, _at(h, 5))["value"][0] == pytest.approx(want)
        assert slo.histogram_quantile(q, slo.rate(h, "15m", at=47 * MIN))["value"][0] == pytest.approx(want)


REQUEST_DURATION = {
    ("request_duration_seconds_bucket", (("instance", i), ("job", j), ("le", le))): f"0+{c}x10"
    for (j, i), counts in {
        ("job1", "ins1"): (1, 3, 4),
        ("job1", "ins2"): (2, 5, 6),
        ("job2", "ins1"): (3, 4, 6),
        ("job2", "ins2"): (4, 7, 9),
    }.items()
    for le, c in zip(("0.1", "0.2", "+Inf"), counts)
}


@pytest.mark.parametrize("compat", ["2.42", "3"])
def test_histogram_quantile_aggregations(compat):
    r = slo.rate(load(5 * MIN, REQUEST_DURATION), "10m", at=50 * MIN, compat=compat)
    hq = slo.histogram_quantile
    assert hq(0.3, slo.sum_by(r, ["le"]))["value"][0] == pytest.approx(0.075)
    assert hq(0.5, slo.sum_by(r, ["le"]))["value"][0] == pytest.approx(0.1277777777777778)
    assert values_by(hq(0.5, slo.sum_by(r, ["le", "instance"])), "instance") == pytest.approx(
        {"ins1": 0.1333333333, "ins2": 0.125}
    )
    assert values_by(hq(0.3, slo.sum_by(r, ["le", "job"])), "job") == pytest.approx(
        {"job1": 0.1, "job2": 0.0642857142857143}
    )
    assert values_by(hq(0.5, slo.sum_by(r, ["le", "job"])), "job") == pytest.approx({"job1": 0.14, "job2": 0.1125})
    unagg = hq(0.3, r)
    got = {(a, b): v for a, b, v in zip(unagg["job"], unagg["instance"], unagg["value"])}
    assert got == pytest.approx(
        {("job1", "ins1"): 0.11, ("job1", "ins2"): 0.09, ("job2", "ins1"): 0.06, ("job2", "ins2"): 0.0675}
    )


def test_histogram_quantile_nonmonotonic():
    h = load(5 * MIN, {("nm_bucket", (("le", le),)): f"0+{c}x10" for le, c in
                       [("0.1", 2), ("1", 1), ("10", 5), ("100", 4), ("1000", 9), ("+Inf", 8)]})
    b = _at(h, 50)
    for q, want in [(0.01, 0.0045), (0.5, 8.5), (0.99, 979.75)]:
        assert slo.histogram_quantile(q, b)["value"][0] == pytest.approx(want)


def test_histogram_quantile_mixed_le_and_degenerate():
    mixed = {
        ("mixed_bucket", (("instance", "ins1"), ("le", le))): spec
        for le, spec in [("0.1", "0+1x10"), ("0.2", "0+1x10"), ("2e-1", "0+1x10"), ("2.0e-1", "0+1x10"), ("+Inf", "0+4x10")]
    }
    mixed[("mixed_bucket", (("instance", "ins2"), ("le", "+inf")))] = "0+0x10"
    mixed[("mixed_bucket", (("instance", "ins2"), ("le", "+Inf")))] = "0+0x10"
    r = slo.rate(load(5 * MIN, mixed), "10m", at=50 * MIN)
    for q, want in [(0.5, 0.15), (0.75, 0.2), (1, 0.2)]:
        got = values_by(slo.histogram_quantile(q, r), "instance")
        assert got["ins1"] == pytest.approx(want) and math.isnan(got["ins2"])
    # zero observations -> NaN
    const = load(MIN, {("c_bucket", (("le", le),)): "1 1 1 1 1" for le in ("0.0", "1.0", "2.0", "+Inf")})
    r = slo.sum_by(slo.rate(const, "5m", at=5 * MIN), ["le"])
    assert math.isnan(slo.histogram_quantile(1.0, r)["value"][0])


def test_histogram_quantile_missing_inf_and_bad_input():
    b = from_rows([(0, "h_bucket", c, {"le": le}) for le, c in [("1", 1.0), ("2", 2.0)]])
    assert math.isnan(slo.histogram_quantile(0.5, b)["value"][0])
    with pytest.raises(DataError, match="no 'le'"):
        slo.histogram_quantile(0.5, from_rows([(0, "h_bucket", 1.0, {})]))
    with pytest.raises(DataError, match="not numbers"):
        slo.histogram_quantile(0.5, from_rows([(0, "h_bucket", 1.0, {"le": "big"})]))
    with pytest.raises(DataError, match="not numbers"):  # an _count row without le mixed in
        slo.histogram_quantile(0.5, from_rows([(0, "h_bucket", 1.0, {"le": "+Inf"}), (0, "h_count", 1.0, {})]))
    # NaN counts poison the group only
    nanb = from_rows(
        [(0, "h_bucket", c, {"le": le, "g": "a"}) for le, c in [("1", float("nan")), ("+Inf", 2.0)]]
        + [(0, "h_bucket", c, {"le": le, "g": "b"}) for le, c in [("1", 1.0), ("+Inf", 2.0)]]
    )
    got = values_by(slo.histogram_quantile(0.5, nanb), "g")
    assert math.isnan(got["a"]) and got["b"] == pytest.approx(1.0)


def _ref_bucket_quantile(q, buckets):
    """Port of Prometheus 2.42 bucketQuantile (test oracle). buckets: list of (upper, count)."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for ub, c in buckets:
        if merged and merged[-1][0] == ub:
            merged[-1][1] += c
        else:
            merged.append([ub, c])
    mx = -math.inf
    for b in merged:
        if b[1] > mx:
            mx = b[1]
        elif b[1] < mx:
            b[1] = mx
    if len(merged) < 2:
        return math.nan
    obs = merged[-1][1]
    if obs == 0:
        return math.nan
    rank = q * obs
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    with np.errstate(all="ignore"):
        return float(np.float64(start) + (end - start) * (np.float64(rank) / np.float64(count)))


_BOUNDS = [-1.0, 0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, math.inf]


@settings(max_examples=120, deadline=None)
@given(
    hists=st.lists(
        st.lists(
            st.tuples(st.sampled_from(_BOUNDS), st.floats(0, 1e6, allow_nan=False)), min_size=1, max_size=8
        ),
        min_size=1,
        max_size=5,
    ),
    q=st.one_of(st.floats(-0.5, 1.5, allow_nan=False), st.sampled_from([0.0, 0.5, 1.0])),
)
def test_histogram_quantile_matches_reference(hists, q):
    rows = []
    for g, buckets in enumerate(hists):
        seen = set()
        for ub, c in buckets:
            le = "+Inf" if math.isinf(ub) else repr(ub)
            if le in seen:
                le = le + "0" if "e" not in le and "." in le else le + ".0" if "Inf" not in le else "+inf"
            if le in seen:
                continue
            seen.add(le)
            rows.append((0, "h_bucket", c, {"le": le, "g": str(g)}))
    frame = from_rows(rows)
    got = values_by(slo.histogram_quantile(q, frame), "g")
    for g in set(frame["g"].to_list()):
        sub = frame.filter(pl.col("g") == g)
        ref = _ref_bucket_quantile(q, [(float(le), v) for le, v in zip(sub["le"], sub["value"])])
        assert got[g] == pytest.approx(ref, nan_ok=True, rel=1e-12, abs=0)


@settings(max_examples=100, deadline=None)
@given(counts=st.lists(st.floats(0, 1e4, allow_nan=False), min_size=9, max_size=9),
       qs=st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=6))
def test_histogram_quantile_monotone_in_q(counts, qs):
    cum = np.cumsum(counts)
    frame = from_rows([(0, "h_bucket", float(c), {"le": "+Inf" if math.isinf(b) else repr(b)})
                       for b, c in zip(_BOUNDS[1:], cum)])
    if cum[-1] == 0:
        return
    vals = [slo.histogram_quantile(q, frame)["value"][0] for q in sorted(qs)]
    assert all(a <= b + 1e-12 for a, b in zip(vals, vals[1:]))


# ------------------------------------------------------------------------------------------
# raw quantiles
# ------------------------------------------------------------------------------------------


def test_quantiles_linear_method():
    assert slo.quantiles([1, 2, 3, 4, 5], (0.5, 0.9)) == {0.5: 3.0, 0.9: pytest.approx(4.6)}
    # rank = q*(n-1): p95 of 1..100 -> 1 + 0.95*99 = 95.05
    assert slo.quantiles(np.arange(1, 101), (0.95,))[0.95] == pytest.approx(95.05)
    assert slo.quantiles(pl.Series([3.0, float("nan"), 1.0]), (0.5,)) == {0.5: 2.0}
    with pytest.raises(DataError):
        slo.quantiles([float("nan")])
    with pytest.raises(ParameterError):
        slo.quantiles([1.0], (99,))


def test_quantile_frame_groups():
    f = from_rows(
        [(i, "lat", float(i), {"region": "eu"}) for i in range(1, 101)]
        + [(i, "lat", 10.0 * i, {"region": "us"}) for i in range(1, 11)]
    )
    got = slo.quantile_frame(f, (0.5, 0.99, 0.999), by=["region"])
    assert got.columns == ["region", "count", "p50", "p99", "p99.9"]
    eu = got.filter(pl.col("region") == "eu").row(0, named=True)
    assert eu["count"] == 100 and eu["p50"] == pytest.approx(50.5) and eu["p99"] == pytest.approx(99.01)
    us = got.filter(pl.col("region") == "us").row(0, named=True)
    assert us["p50"] == pytest.approx(np.quantile(np.arange(10, 101, 10), 0.5))
    assert slo.quantile_frame(f, (0.5,)).height == 2  # default: per series
    assert slo.quantile_frame(f, (0.5,), by=[])["p50"][0] == pytest.approx(np.quantile(f["value"].to_numpy(), 0.5))


# ------------------------------------------------------------------------------------------
# availability, budgets, burn rate
# ------------------------------------------------------------------------------------------


def test_availability_and_budget():
    assert slo.availability(999, 1000) == pytest.approx(0.999)
    assert math.isnan(slo.availability(0, 0))
    np.testing.assert_allclose(slo.availability([1, 2], [2, 4]), [0.5, 0.5])
    assert slo.error_budget_remaining(0.99, 1000, 1000) == 1.0
    assert slo.error_budget_remaining(0.99, 995, 1000) == pytest.approx(0.5)
    assert slo.error_budget_remaining(0.99, 990, 1000) == pytest.approx(0.0)
    assert slo.error_budget_remaining(0.99, 980, 1000) == pytest.approx(-1.0)
    assert slo.error_budget_remaining(0.99, 0, 0) == 1.0
    assert slo.burn_rate(0.001, 0.999) == pytest.approx(1.0)
    assert slo.burn_rate(0.0144, 0.999) == pytest.approx(14.4)
    for bad in (1.0, 0.0, 99.9, -0.5):
        with pytest.raises(ParameterError):
            slo.burn_rate(0.1, bad)


def test_time_availability():
    f = from_rows(
        [(t * MIN, "dwcp_v3_component_health", v, {"component": "amst"}) for t, v in enumerate([1, 1, 0, 1, 1])]
        + [(t * MIN, "dwcp_v3_component_health", v, {"component": "hde"}) for t, v in [(0, 1), (1, 1), (10, 1)]]
    )
    got = slo.time_availability(f)
    amst = got.filter(pl.col("component") == "amst").row(0, named=True)
    assert (amst["up_s"], amst["observed_s"], amst["availability"]) == (180.0, 240.0, 0.75)
    hde = got.filter(pl.col("component") == "hde").row(0, named=True)
    assert hde["availability"] == 1.0
    gapped = slo.time_availability(f, max_gap="2m").filter(pl.col("component") == "hde").row(0, named=True)
    assert gapped["up_s"] == 180.0 and gapped["availability"] == pytest.approx(180 / 600)
    held = slo.time_availability(f, end=6 * MIN).filter(pl.col("component") == "amst").row(0, named=True)
    assert held["availability"] == pytest.approx(300 / 360)


# ------------------------------------------------------------------------------------------
# error_ratio, latency_quantile
# ------------------------------------------------------------------------------------------


def test_error_ratio_by_and_missing_error_series():
    rows = []
    for t in range(11):
        for region, per_min in (("eu", 100), ("us", 200)):
            rows.append((t * MIN, "dwcp_v3_component_operations_total", float(per_min * t), {"region": region, "component": "amst"}))
            rows.append((t * MIN, "dwcp_v3_component_operations_total", float(per_min * t), {"region": region, "component": "hde"}))
        rows.append((t * MIN, "dwcp_v3_component_errors_total", float(2 * t), {"region": "eu", "component": "amst", "error_type": "timeout"}))
        rows.append((t * MIN, "dwcp_v3_component_errors_total", float(1 * t), {"region": "eu", "component": "hde", "error_type": "crc"}))
    f = from_rows(rows)
    ops = f.filter(pl.col("metric") == "dwcp_v3_component_operations_total")
    err = f.filter(pl.col("metric") == "dwcp_v3_component_errors_total")
    got = slo.error_ratio(err, ops, "5m", ["region"], at=10 * MIN)
    assert got.columns == ["timestamp", "metric", "value", "region"]
    assert values_by(got, "region") == pytest.approx({"eu": 3 / 200, "us": 0.0})
    overall = slo.error_ratio(err, ops, "5m", step="5m")
    assert overall["timestamp"].dt.epoch("ms").to_list() == [5 * MIN, 10 * MIN]
    assert overall["value"].to_list() == pytest.approx([3 / 600, 3 / 600])
    no_ops = slo.error_ratio(err, ops.with_columns(pl.lit(0.0).alias("value")), "5m", at=10 * MIN)
    assert math.isinf(no_ops["value"][0])


def test_latency_quantile():
    rows = []
    for t in range(11):
        for region, counts in (("eu", (50, 90, 100)), ("us", (10, 20, 100))):
            for le, c in zip(("0.1", "0.5", "+Inf"), counts):
                rows.append((t * MIN, "dwcp_v3_migration_latency_seconds_bucket", float(c * t), {"le": le, "region": region}))
    f = from_rows(rows)
    got = slo.latency_quantile(f, "dwcp_v3_migration_latency_seconds", 0.5, "5m", ["region"], at=10 * MIN)
    assert got["metric"].to_list() == ["dwcp_v3_migration_latency_seconds"] * 2
    # eu: rank 50 of 100 at the 0.1 bound exactly; us: rank 50 in (+Inf) -> highest finite bound 0.5
    assert values_by(got, "region") == pytest.approx({"eu": 0.1, "us": 0.5})
    all_ = slo.latency_quantile(f, "dwcp_v3_migration_latency_seconds_bucket", 0.5, "5m", at=10 * MIN)
    # summed: buckets 60, 110, 200 -> rank 100 in (0.1, 0.5]: 0.1 + 0.4 * 40/50
    assert all_["value"][0] == pytest.approx(0.1 + 0.4 * 40 / 50)
    with pytest.raises(DataError, match="no samples of"):
        slo.latency_quantile(f, "nope_seconds", 0.5)


# ------------------------------------------------------------------------------------------
# multiwindow multi-burn-rate alerts
# ------------------------------------------------------------------------------------------


def _counters(burn_of_minute, minutes: int, slo_target: float = 0.999, ops_per_min: float = 1000.0):
    """Error/ops counters at 1-minute resolution where minute m runs at burn rate burn_of_minute(m)."""
    budget = 1.0 - slo_target
    err, ops, e = [], [], 0.0
    for m in range(minutes + 1):
        err.append((m * MIN, "errors_total", e, {}))
        ops.append((m * MIN, "ops_total", ops_per_min * m, {}))
        e += ops_per_min * budget * burn_of_minute(m)
    return from_rows(err), from_rows(ops)


THREE_DAYS = 3 * 24 * 60 + 60


@pytest.mark.parametrize(
    "name, burn, expected",
    [
        ("fast burn last 1h", lambda m: 20.0 if m >= THREE_DAYS - 60 else 0.0, [True, False, False]),
        ("medium burn last 6h", lambda m: 8.0 if m >= THREE_DAYS - 360 else 0.0, [False, True, False]),
        ("slow burn for days", lambda m: 1.5, [False, False, True]),
        ("everything", lambda m: 30.0, [True, True, True]),
        ("within budget", lambda m: 0.9, [False, False, False]),
        # A 1h spike that ended 10 minutes ago: the long window still burns > 14.4, the short one is 0.
        ("ended spike", lambda m: 25.0 if THREE_DAYS - 70 <= m < THREE_DAYS - 10 else 0.0, [False, False, False]),
    ],
)
def test_burn_rate_alerts_fire_only_the_right_pairs(name, burn, expected):
    err, ops = _counters(burn, THREE_DAYS)
    got = slo.burn_rate_alerts(err, ops, 0.999)
    assert got["severity"].to_list() == ["page", "page", "ticket"]
    assert got["long_window"].to_list() == ["1h", "6h", "3d"]
    assert got["short_window"].to_list() == ["5m", "30m", "6h"]
    assert got["threshold"].to_list() == [14.4, 6.0, 1.0]
    assert got["level"].to_list() == ["ESCALATE", "ESCALATE", "WARN"]
    assert got["firing"].to_list() == expected, name
    if name == "ended spike":
        assert got["long_burn_rate"][0] > 14.4 and got["short_burn_rate"][0] == 0.0


def test_burn_rate_values_and_table():
    err, ops = _counters(lambda m: 2.0, 400)
    got = slo.burn_rate_alerts(err, ops, 0.999, windows=slo.DEFAULT_WINDOWS[:2])
    assert got["long_burn_rate"].to_list() == pytest.approx([2.0, 2.0])
    assert got["short_burn_rate"].to_list() == pytest.approx([2.0, 2.0])
    # table 5-8: factor = budget share x (30 d / long window)
    for w in slo.DEFAULT_WINDOWS:
        period_h = slo.parse_duration(slo.SLO_PERIOD) / 3_600_000
        assert w.factor == pytest.approx(w.budget_consumed * period_h / (slo.parse_duration(w.long) / 3_600_000))
        assert slo.parse_duration(w.long) == 12 * slo.parse_duration(w.short)


def test_burn_rate_alerts_by_and_no_data():
    rows_e, rows_o = [], []
    for m in range(121):
        for region, burn in (("eu", 20.0), ("us", 0.0)):
            rows_e.append((m * MIN, "errors_total", 1000 * 0.001 * burn * m, {"region": region}))
            rows_o.append((m * MIN, "ops_total", 1000.0 * m, {"region": region}))
    got = slo.burn_rate_alerts(from_rows(rows_e), from_rows(rows_o), 0.999, by=["region"], windows=slo.DEFAULT_WINDOWS[:1])
    assert dict(zip(got["region"], got["firing"])) == {"eu": True, "us": False}
    # evaluated where there is no data: no rows, nothing fires
    empty = slo.burn_rate_alerts(from_rows(rows_e), from_rows(rows_o), 0.999, at=10 * 24 * 60 * MIN)
    assert empty.height == 3 and not empty["firing"].any()
    assert empty["long_burn_rate"].null_count() == 3
    assert empty["timestamp"].dt.epoch("ms").to_list() == [10 * 24 * 60 * MIN] * 3


def test_burn_rate_alerts_over_time():
    start_burn = 200
    err, ops = _counters(lambda m: 20.0 if m >= start_burn else 0.0, 400)
    got = slo.burn_rate_alerts_over_time(err, ops, 0.999, step="10m", windows=slo.DEFAULT_WINDOWS[:1])
    fired = got.filter(pl.col("firing"))["timestamp"].dt.epoch("ms").to_numpy() // MIN
    # 1h window crosses 14.4 once 14.4/20 of it is inside the burn: ~ 43 min after the start
    assert fired.min() == 250 and fired.max() == 400
    assert got["timestamp"].is_sorted()


# ------------------------------------------------------------------------------------------
# cross-check against a real Prometheus (promtool's PromQL unit tests), when installed
# ------------------------------------------------------------------------------------------


def test_cross_check_with_promtool(tmp_path):
    """Our values, written as promtool expectations, must be bit-identical to Prometheus' own.

    Runs only where `promtool` is on PATH (Debian 12: `apt-get install prometheus`, 2.42).
    """
    import random
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    version = subprocess.run([promtool, "--version"], capture_output=True, text=True, timeout=30)
    compat = "2.42" if " 2." in (version.stdout + version.stderr) else "3"
    rng = random.Random(7)
    interval, n = 15_000, 60
    series: dict[str, list[float | None]] = {}
    rows = []
    for s in range(8):
        vals, v = [], rng.choice([0.0, rng.uniform(0, 1e4)])
        for _ in range(n):
            r = rng.random()
            if r < 0.08:
                vals.append(None)
                continue
            v = rng.choice([0.0, rng.uniform(0, 50)]) if r < 0.14 else v + rng.choice([0, rng.randint(0, 100), rng.uniform(0, 10)])
            vals.append(round(v, 3))
        series[f'x_total{{s="s{s}"}}'] = vals
        rows += [(i * interval, "x_total", x, {"s": f"s{s}"}) for i, x in enumerate(vals) if x is not None]
    for inst in ("a", "b"):
        cum = [0.0] * 4
        per = {le: [] for le in ("0.1", "1", "5", "+Inf")}
        for _ in range(n):
            acc = 0
            for j, le in enumerate(per):
                acc += rng.randint(0, 5)
                cum[j] += acc
                per[le].append(cum[j])
        for le, vals in per.items():
            series[f'h_bucket{{inst="{inst}",le="{le}"}}'] = vals
            rows += [(i * interval, "h_bucket", x, {"inst": inst, "le": le}) for i, x in enumerate(vals)]
    frame = from_rows(rows)
    counters, hist = frame.filter(pl.col("metric") == "x_total"), frame.filter(pl.col("metric") == "h_bucket")
    lines = ["rule_files: []", "evaluation_interval: 15s", "tests:", "  - interval: 15s", "    input_series:"]
    for name, vals in series.items():
        lines += [f"      - series: '{name}'",
                  "        values: '" + " ".join("_" if x is None else repr(float(x)) for x in vals) + "'"]
    lines.append("    promql_expr_test:")
    compared = 0

    def expect(expr: str, at_s: int, got: pl.DataFrame, labels: list[str]) -> None:
        nonlocal compared
        lines.extend([f"      - expr: '{expr}'", f"        eval_time: {at_s}s", "        exp_samples:"])
        for row in got.iter_rows(named=True):
            lab = ",".join(f'{k}="{row[k]}"' for k in labels)
            lines.extend([f"          - labels: '{{{lab}}}'", f"            value: {row['value']!r}"])
            compared += 1
        if got.height == 0:
            lines[-1] = "        exp_samples: []"

    for fn in ("rate", "increase", "delta"):
        for window in ("1m", "2m30s", "5m"):
            for at_s in (40, 200, 451, 885):
                expect(f"{fn}(x_total[{window}])", at_s,
                       getattr(slo, fn)(counters, window, at=at_s * 1000, compat=compat), ["s"])
    for q in (0.5, 0.99):
        for by in ([], ["inst"]):
            got = slo.histogram_quantile(q, slo.sum_by(slo.rate(hist, "5m", at=800_000, compat=compat), ["le", *by]))
            expect(f"histogram_quantile({q}, sum by ({','.join(['le', *by])}) (rate(h_bucket[5m])))", 800, got, by)
    (tmp_path / "t.yml").write_text("\n".join(lines) + "\n")
    res = subprocess.run([promtool, "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert compared > 200
    assert res.returncode == 0, (res.stdout + res.stderr)[-2000:]
