"""Mode detection: the original's rule, unknown state, transitions, hysteresis, cooldown."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwcpkit.errors import ParameterError
from dwcpkit.protocol import amst
from dwcpkit.protocol.modes import (
    LinkSample,
    ModeDetector,
    NetworkMode,
    Thresholds,
    classify,
    measure_loopback,
    samples_from_transfer,
)

DC, INET, HYB, UNK = NetworkMode.DATACENTER, NetworkMode.INTERNET, NetworkMode.HYBRID, NetworkMode.UNKNOWN


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def feed(d: ModeDetector, rtt_ms: float, bandwidth_bps: float, times: int = 10):
    det = None
    for _ in range(times):
        det = d.observe(rtt_ms, bandwidth_bps)
    return det


def test_wire_values_are_the_originals():
    assert (int(DC), int(INET), int(HYB)) == (0, 1, 2)
    assert int(UNK) not in (0, 1, 2)


@pytest.mark.parametrize(("rtt", "bw", "mode"), [
    (5, 10e9, DC),
    (5, 500e6, INET),  # the digest's example: a 5 ms, 500 Mbit/s link is Internet
    (9.99, 1e9, DC),
    (10, 1e9, HYB),
    (30, 2e9, HYB),
    (50, 2e9, HYB),
    (50.01, 2e9, INET),
    (30, 0.99e9, INET),
])
def test_classify_is_the_original_rule(rtt, bw, mode):
    assert classify(rtt, bw) is mode


@settings(max_examples=150, deadline=None)
@given(st.floats(0, 1000), st.floats(0, 1e11))
def test_hybrid_only_between_the_latency_thresholds_at_high_bandwidth(rtt, bw):
    m = classify(rtt, bw)
    assert (m is HYB) == (10 <= rtt <= 50 and bw >= 1e9)
    assert (m is DC) == (rtt < 10 and bw >= 1e9)


def test_no_samples_is_unknown_not_datacenter():
    d = ModeDetector()
    det = d.evaluate()
    assert d.mode is UNK and det.mode is UNK
    assert det.mean_rtt_ms is None and det.mean_bandwidth_bps is None and det.samples == 0
    assert d.mean_rtt_ms is None


def test_min_samples_before_leaving_unknown():
    d = ModeDetector(min_samples=3, clock=FakeClock())
    assert d.observe(1, 10e9).held_by == "min_samples"
    assert d.observe(1, 10e9).mode is UNK
    det = d.observe(1, 10e9)
    assert det.mode is DC and det.changed


def test_window_is_a_ten_sample_mean():
    d = ModeDetector(clock=FakeClock())
    for i in range(25):
        d.observe(float(i), 2e9)
    assert len(d.samples) == 10
    assert d.mean_rtt_ms == pytest.approx(sum(range(15, 25)) / 10)


def test_transitions_datacenter_internet_hybrid():
    clock = FakeClock()
    d = ModeDetector(clock=clock)
    assert feed(d, 0.5, 10e9).mode is DC
    clock.t = 100
    assert feed(d, 120, 200e6).mode is INET
    clock.t = 200
    assert feed(d, 30, 5e9).mode is HYB
    clock.t = 300
    assert feed(d, 1, 10e9).mode is DC
    assert [(c.old, c.new) for c in d.history] == [(UNK, DC), (DC, INET), (INET, HYB), (HYB, DC)]
    assert [c.at_s for c in d.history] == [0, 100, 200, 300]


def test_hysteresis_dead_band_around_each_threshold():
    clock = FakeClock()
    d = ModeDetector(clock=clock, cooldown_s=0, min_agreement=0)
    feed(d, 9.0, 5e9)
    assert d.mode is DC
    assert feed(d, 10.9, 5e9).mode is DC  # past 10 ms but inside the 10 % band
    assert feed(d, 11.0, 5e9).mode is HYB  # 10 % past: switch
    assert feed(d, 9.5, 5e9).mode is HYB  # below 10 ms, not below 9 ms: stay
    assert feed(d, 8.9, 5e9).mode is DC
    # bandwidth side: 1 Gbit/s ± 10 %
    assert feed(d, 5, 0.95e9).mode is DC
    assert feed(d, 5, 0.89e9).mode is INET
    assert feed(d, 5, 1.05e9).mode is INET
    assert feed(d, 5, 1.1e9).mode is DC


def test_without_hysteresis_the_same_wobble_flaps():
    d = ModeDetector(clock=FakeClock(), hysteresis=0.0, cooldown_s=0, min_agreement=0)
    feed(d, 9.0, 5e9)
    assert feed(d, 10.5, 5e9).mode is HYB


def test_cooldown_holds_a_change_for_30_s():
    clock = FakeClock()
    d = ModeDetector(clock=clock)
    feed(d, 1, 10e9)  # DC at t = 0
    clock.t = 10
    det = feed(d, 200, 100e6)
    assert det.mode is DC and det.candidate is INET and det.held_by == "cooldown"
    clock.t = 29.9
    assert d.evaluate().mode is DC
    clock.t = 30.0
    det = d.evaluate()
    assert det.mode is INET and det.changed
    clock.t = 45  # a change back inside the next cooldown is held too
    assert feed(d, 1, 10e9).held_by == "cooldown"
    clock.t = 60
    assert d.evaluate().mode is DC


def test_agreement_stops_a_transient_hybrid():
    clock = FakeClock()
    d = ModeDetector(clock=clock, cooldown_s=0)
    feed(d, 1, 10e9)
    clock.t = 100
    seen = {feed(d, 100, 10e9, times=1).mode for _ in range(10)}
    assert seen == {DC, INET}  # the mean passed through 10–50 ms, no sample was hybrid
    d2 = ModeDetector(clock=FakeClock(), cooldown_s=0, min_agreement=0)
    feed(d2, 1, 10e9)
    assert HYB in {feed(d2, 100, 10e9, times=1).mode for _ in range(10)}


def test_force_holds_for_the_cooldown():
    clock = FakeClock()
    d = ModeDetector(clock=clock)
    d.force(INET)
    assert feed(d, 1, 40e9).mode is INET
    clock.t = 31
    assert d.evaluate().mode is DC
    with pytest.raises(ParameterError):
        d.force(UNK)
    d.reset()
    assert d.mode is UNK and not d.samples and not d.history


@pytest.mark.parametrize("bad", [(-1, 1e9), (float("nan"), 1e9), (1, float("inf")), (True, 1e9)])
def test_bad_samples_are_parameter_errors(bad):
    with pytest.raises(ParameterError):
        ModeDetector().observe(*bad)


def test_bad_settings_are_parameter_errors():
    with pytest.raises(ParameterError):
        Thresholds(datacenter_rtt_ms=60)
    with pytest.raises(ParameterError):
        ModeDetector(window=0)
    with pytest.raises(ParameterError):
        ModeDetector(hysteresis=1.5)
    with pytest.raises(ParameterError):
        ModeDetector(min_samples=11)
    with pytest.raises(ParameterError):
        ModeDetector().observe_many([])


def test_custom_thresholds():
    th = Thresholds(datacenter_rtt_ms=1, internet_rtt_ms=20, datacenter_bandwidth_bps=10e9,
                    internet_bandwidth_bps=100e6)
    assert classify(5, 5e9, th) is HYB
    assert classify(5, 5e9) is DC


def test_samples_from_a_real_loopback_transfer():
    r = amst.loopback_transfer(bytes(2 << 20), streams=4, chunk_bytes=64 * 1024)
    samples = samples_from_transfer(r.sent)
    assert len(samples) == 4
    assert all(s.rtt_ms > 0 for s in samples)
    assert all(s.bandwidth_bps == pytest.approx(r.sent.throughput_bps) for s in samples)
    d = ModeDetector()
    det = d.observe_many(samples)
    assert det.mode is classify(d.mean_rtt_ms, d.mean_bandwidth_bps)  # first mode: the plain rule
    with pytest.raises(ParameterError):
        samples_from_transfer(object())


def test_measure_loopback_feeds_the_detector():
    d = ModeDetector(clock=FakeClock())
    out = measure_loopback(d, payload_bytes=1 << 20, streams=2, transfers=2)
    assert out is d
    assert len(d.samples) == 4 and d.mode is not UNK
    assert all(isinstance(s, LinkSample) and s.bandwidth_bps > 0 for s in d.samples)
