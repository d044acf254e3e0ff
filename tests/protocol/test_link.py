"""WAN link models: performance.md §3.2's table, monotonicity, BBR model, auto-tuner."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwcpkit.errors import ParameterError
from dwcpkit.protocol import link
from dwcpkit.protocol.link import (
    AutoTuner,
    bbr_bps,
    choose_streams,
    mathis_bps,
    next_chunk_bytes,
    original_stream_count,
    pftk_bps,
    predict,
    streams_needed,
)

# performance.md §3.2, verbatim: RTT, loss, Mathis 1 stream, PFTK 1 stream, 4, 8, 16 streams
# (Mathis), streams for 1 Gb/s, for 10 Gb/s. Values are strings so the check can honour the
# number of digits printed.
TABLE = [
    ("20 ms", 1e-4, "71.5 Mb/s", "50.5 Mb/s", "286 Mb/s", "572 Mb/s", "1.14 Gb/s", 14, 140),
    ("50 ms", 1e-5, "90.5 Mb/s", "64.0 Mb/s", "362 Mb/s", "724 Mb/s", "1.45 Gb/s", 12, 111),
    ("50 ms", 1e-4, "28.6 Mb/s", "20.2 Mb/s", "114 Mb/s", "229 Mb/s", "458 Mb/s", 35, 350),
    ("50 ms", 1e-3, "9.0 Mb/s", "6.3 Mb/s", "36 Mb/s", "72 Mb/s", "145 Mb/s", 111, 1106),
    ("100 ms", 1e-5, "45.2 Mb/s", "32.0 Mb/s", "181 Mb/s", "362 Mb/s", "724 Mb/s", 23, 222),
    ("100 ms", 1e-4, "14.3 Mb/s", "10.1 Mb/s", "57 Mb/s", "114 Mb/s", "229 Mb/s", 70, 700),
    ("100 ms", 1e-3, "4.5 Mb/s", "3.2 Mb/s", "18 Mb/s", "36 Mb/s", "72 Mb/s", 222, 2211),
    ("100 ms", 1e-2, "1.4 Mb/s", "1.0 Mb/s", "5.7 Mb/s", "11 Mb/s", "23 Mb/s", 700, 6991),
    ("200 ms", 1e-4, "7.2 Mb/s", "5.1 Mb/s", "29 Mb/s", "57 Mb/s", "114 Mb/s", 140, 1399),
]


def _matches(value_bps: float, shown: str) -> bool:
    """``value_bps`` rounds to ``shown`` (e.g. '71.5 Mb/s') at the digits printed."""
    number, unit = shown.split()
    scale = {"Mb/s": 1e6, "Gb/s": 1e9}[unit]
    decimals = len(number.split(".")[1]) if "." in number else 0
    return abs(value_bps / scale - float(number)) <= 0.5 * 10**-decimals + 1e-9


@pytest.mark.parametrize("row", TABLE, ids=[f"{r[0]}-{r[1]:g}" for r in TABLE])
def test_one_stream_predictions_match_performance_md_table(row):
    rtt, loss, m1, p1, m4, m8, m16, n1g, n10g = row
    rtt_s = float(rtt.split()[0]) / 1000
    assert _matches(mathis_bps(rtt_s, loss), m1)
    assert _matches(pftk_bps(rtt_s, loss), p1)
    assert _matches(predict(1, rtt_s, loss, model="mathis").throughput_bps, m1)
    assert _matches(predict(1, rtt_s, loss, model="pftk").throughput_bps, p1)
    for n, shown in ((4, m4), (8, m8), (16, m16)):
        assert _matches(predict(n, rtt_s, loss, model="mathis").throughput_bps, shown)
    assert streams_needed(1e9, rtt_s, loss) == n1g
    assert streams_needed(10e9, rtt_s, loss) == n10g


def test_table_check_is_not_vacuous():
    assert not _matches(72.0e6, "71.5 Mb/s")
    assert _matches(71.49e6, "71.5 Mb/s")


def test_window_and_capacity_caps():
    # a 4 MiB window at 100 ms caps one stream at ~335 Mb/s (performance.md §3.2)
    p = predict(1, 0.1, 1e-7, model="mathis", window_bytes=4 * 1024 * 1024)
    assert p.limited_by == "window" and round(p.throughput_bps / 1e6) == 336
    p = predict(200, 0.02, 1e-4, capacity_bps=1e9, model="mathis")
    assert p.limited_by == "capacity" and p.throughput_bps == pytest.approx(1e9 * (1 - 1e-4))
    with pytest.raises(ParameterError, match="unbounded"):
        predict(1, 0.1, 0.0, model="pftk")
    assert predict(1, 0.1, 0.0, capacity_bps=1e9).limited_by == "capacity"


def test_bbr_model_ignores_moderate_loss_then_falls_off():
    cap = 10e9
    assert bbr_bps(0.1, 0.01, cap) == pytest.approx(9.9e9)
    # the maintainer's netperf point: 10 Gb/s, 100 ms, 1 % loss: BBR 9,150 Mb/s vs CUBIC 3.27 Mb/s
    assert bbr_bps(0.1, 0.01, cap) > 1000 * mathis_bps(0.1, 0.01)
    assert bbr_bps(0.1, 0.15, cap) == pytest.approx(8.5e9)
    assert bbr_bps(0.1, 0.16, cap) < 1e6  # past the tolerance: loss-based collapse
    one = predict(1, 0.1, 0.01, cap, model="bbr")
    many = predict(64, 0.1, 0.01, cap, model="bbr")
    assert one.throughput_bps == many.throughput_bps  # streams split BtlBw, they do not add
    assert predict(1, 0.1, 0.01, cap, model="bbr", window_bytes=1 << 20).limited_by == "window"
    with pytest.raises(ParameterError, match="finite capacity"):
        predict(1, 0.1, 0.01, model="bbr")


rtts = st.floats(1e-4, 1.0)
losses = st.floats(1e-7, 0.3)
caps = st.floats(1e6, 1e11)
models = st.sampled_from(["mathis", "pftk", "bbr"])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 600), rtts, losses, caps, models)
def test_more_streams_never_hurt_and_never_exceed_capacity(n, rtt, loss, cap, model):
    a = predict(n, rtt, loss, cap, model=model).throughput_bps
    b = predict(n + 1, rtt, loss, cap, model=model).throughput_bps
    assert b >= a * (1 - 1e-12)
    assert a <= cap * (1 - loss) * (1 + 1e-12)
    assert a > 0


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 64), rtts, rtts, losses, losses, caps, models)
def test_throughput_falls_with_rtt_and_loss(n, r1, r2, p1, p2, cap, model):
    lo_r, hi_r = sorted((r1, r2))
    lo_p, hi_p = sorted((p1, p2))
    assert predict(n, hi_r, lo_p, cap, model=model).throughput_bps <= (
        predict(n, lo_r, lo_p, cap, model=model).throughput_bps * (1 + 1e-12))
    assert predict(n, lo_r, hi_p, cap, model=model).throughput_bps <= (
        predict(n, lo_r, lo_p, cap, model=model).throughput_bps * (1 + 1e-12))


@settings(max_examples=100, deadline=None)
@given(rtts, losses)
def test_pftk_never_above_mathis(rtt, loss):
    assert pftk_bps(rtt, loss) < mathis_bps(rtt, loss)


@settings(max_examples=80, deadline=None)
@given(st.floats(1e6, 1e11), st.floats(1e6, 1e11), rtts, st.floats(1e-7, 0.1))
def test_streams_needed_is_monotone_and_sufficient(t1, t2, rtt, loss):
    lo, hi = sorted((t1, t2))
    n = streams_needed(hi, rtt, loss)
    assert streams_needed(lo, rtt, loss) <= n
    per = mathis_bps(rtt, loss)
    assert n * per >= hi * (1 - 1e-12)
    assert n == 1 or (n - 1) * per < hi


@settings(max_examples=80, deadline=None)
@given(rtts, rtts, st.floats(1e-7, 0.1), caps)
def test_chosen_streams_grow_with_rtt_and_stay_in_bounds(r1, r2, loss, cap):
    lo, hi = sorted((r1, r2))
    a = choose_streams(lo, loss, cap, model="mathis")
    b = choose_streams(hi, loss, cap, model="mathis")
    assert link.MIN_STREAMS <= a <= b <= link.MAX_STREAMS
    best = predict(link.MAX_STREAMS, hi, loss, cap, model="mathis").throughput_bps
    assert predict(b, hi, loss, cap, model="mathis").throughput_bps >= 0.95 * best * (1 - 1e-12)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 4 << 20), st.floats(0, 0.5), rtts)
def test_chunk_rule_stays_in_bounds_and_moves_the_right_way(cur, loss, rtt):
    new = next_chunk_bytes(cur, loss, rtt)
    assert link.MIN_CHUNK_BYTES <= new <= link.MAX_CHUNK_BYTES
    clamped = max(link.MIN_CHUNK_BYTES, min(link.MAX_CHUNK_BYTES, cur))
    if loss > 0.05:
        assert new <= clamped
    elif loss < 0.01 and rtt < 0.1:
        assert new >= clamped
    else:
        assert new == clamped


def test_chunk_rule_uses_the_original_factors():
    assert next_chunk_bytes(100_000, 0.06, 0.05) == 80_000
    assert next_chunk_bytes(100_000, 0.005, 0.05) == 120_000
    assert next_chunk_bytes(100_000, 0.005, 0.15) == 100_000  # RTT ≥ 100 ms: no growth
    assert next_chunk_bytes(100_000, 0.03, 0.05) == 100_000  # between 1 % and 5 %: hold
    assert next_chunk_bytes(17_000, 0.5, 0.05) == 16 * 1024
    assert next_chunk_bytes(500_000, 0.0, 0.01) == 512 * 1024


def test_auto_tuner_converges_and_reports_the_model():
    t = AutoTuner(model="mathis")
    sizes = [t.update(rtt_s=0.02, loss=0.0, capacity_bps=1e9).chunk_bytes for _ in range(6)]
    assert sizes[-1] == link.MAX_CHUNK_BYTES and sizes == sorted(sizes)
    shrink = [t.update(rtt_s=0.02, loss=0.1, capacity_bps=1e9) for _ in range(30)]
    assert shrink[-1].chunk_bytes == link.MIN_CHUNK_BYTES
    d = t.update(rtt_s=0.1, loss=1e-4, capacity_bps=1e9)
    assert d.streams == choose_streams(0.1, 1e-4, 1e9, model="mathis")
    assert d.predicted_bps == pytest.approx(predict(d.streams, 0.1, 1e-4, 1e9, model="mathis").throughput_bps)
    with pytest.raises(ParameterError):
        AutoTuner(chunk_bytes=1024)


def test_original_stream_rule_goes_the_wrong_way_with_latency():
    assert original_stream_count(1000, 10) > original_stream_count(1000, 100)
    assert original_stream_count(1000, 10, mode="datacenter") == 512  # clamped
    assert choose_streams(0.01, 1e-4, 1e9, model="mathis") < choose_streams(0.1, 1e-4, 1e9, model="mathis")


@pytest.mark.parametrize("bad", [dict(rtt_s=0), dict(rtt_s=float("nan")), dict(loss=1.0), dict(loss=-0.1)])
def test_bad_inputs_are_parameter_errors(bad):
    kw = dict(rtt_s=0.1, loss=0.01) | bad
    with pytest.raises(ParameterError):
        mathis_bps(**kw)
    with pytest.raises(ParameterError):
        predict(1, capacity_bps=1e9, **kw)


def test_predict_rejects_bad_stream_counts_and_models():
    with pytest.raises(ParameterError):
        predict(0, 0.1, 0.01, 1e9)
    with pytest.raises(ParameterError, match="model"):
        predict(1, 0.1, 0.01, 1e9, model="cubic")
    assert math.isinf(mathis_bps(0.1, 0.0))
