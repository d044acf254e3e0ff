"""Tests for dwcpkit.protocol.migration: closed forms, properties, link/compression inputs."""

from __future__ import annotations

import doctest
import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwcpkit.errors import ParameterError
from dwcpkit.protocol import migration
from dwcpkit.protocol.migration import (
    ORIGINAL_MODE_TARGETS,
    LinkSpec,
    best_streams,
    compare_v1_v3,
    comparison_table,
    hde_ratios,
    measure_ratio,
    simulate_precopy,
    throughput_for,
)

GB = 1e9


def test_no_dirtying_is_one_round_of_size_over_bandwidth():
    r = simulate_precopy(16 * GB, 0.0, 2 * GB)
    assert r.rounds == 1 and r.converged and r.reason == "fits-budget"
    assert r.total_time_s == pytest.approx(8.0)
    assert r.downtime_s == 0.0
    assert r.wire_bytes == pytest.approx(16 * GB) and r.raw_bytes == pytest.approx(16 * GB)
    assert not r.diverging
    # With per-round sync and switchover costs: one RTT for the round, RTT + switchover paused.
    r = simulate_precopy(16 * GB, 0.0, 2 * GB, rtt_s=0.05, switchover_s=0.02)
    assert r.total_time_s == pytest.approx(8.0 + 0.05 + 0.05 + 0.02)
    assert r.downtime_s == pytest.approx(0.07)


def test_geometric_series_closed_form():
    M, D, B, T = 8 * GB, 0.25 * GB, 1 * GB, 0.1
    rho = D / B
    # Live rounds n: smallest n with M·rho^n / B <= T.
    n = next(k for k in range(1, 100) if M * rho**k / B <= T)
    r = simulate_precopy(M, D, B, downtime_budget_s=T)
    assert r.rounds == n and r.converged
    assert r.total_time_s == pytest.approx(M / B * (1 - rho ** (n + 1)) / (1 - rho), rel=1e-12)
    assert r.downtime_s == pytest.approx(M * rho**n / B, rel=1e-12)
    t = r.table()
    assert t["phase"].to_list() == ["pre-copy"] * n + ["stop-and-copy"]
    np.testing.assert_allclose(t["raw_bytes"].to_numpy(), [M * rho**k for k in range(n + 1)], rtol=1e-12)
    assert t["seconds"].sum() == pytest.approx(r.total_time_s)


@pytest.mark.parametrize("factor", [1.0, 1.5, 4.0])
def test_dirty_rate_at_or_above_bandwidth_never_converges(factor):
    M, B = 4 * GB, 1 * GB
    r = simulate_precopy(M, factor * B, B, max_rounds=7)
    assert not r.converged and r.reason == "max-rounds" and r.diverging
    assert r.rounds == 7
    # Dirty set stays at the whole memory (capped by the working set): every round resends M.
    t = r.table()
    np.testing.assert_allclose(t["raw_bytes"].to_numpy(), [M] * 8)
    assert r.downtime_s == pytest.approx(M / B)
    assert r.total_time_s == pytest.approx(8 * M / B)
    assert r.downtime_s > r.downtime_budget_s


def test_working_set_caps_the_dirty_set():
    M, W, B = 8 * GB, 1 * GB, 1 * GB
    r = simulate_precopy(M, 10 * GB, B, working_set_bytes=W, max_rounds=4)
    assert not r.converged
    assert r.table()["raw_bytes"].to_list()[1:] == pytest.approx([W] * 4)
    s = simulate_precopy(M, 1 * GB, B, working_set_bytes=W, max_rounds=4, dirty_model="saturating")
    raw = s.table()["raw_bytes"].to_list()[1:]
    assert all(0 < x < W for x in raw)
    # Saturating never dirties more than linear for the same time.
    lin = simulate_precopy(M, 0.05 * GB, B, dirty_model="linear", max_rounds=3)
    sat = simulate_precopy(M, 0.05 * GB, B, dirty_model="saturating", max_rounds=3)
    assert sat.table()["dirtied_bytes"][0] < lin.table()["dirtied_bytes"][0]


def test_compression_ratios_and_encoder_cap():
    M, B = 8 * GB, 1 * GB
    r = simulate_precopy(M, 0.0, B, bulk_ratio=4.0)
    assert r.total_time_s == pytest.approx(2.0) and r.wire_bytes == pytest.approx(2 * GB)
    # Encoder at 2 GB/s raw caps the 4 GB/s the link could carry compressed.
    r = simulate_precopy(M, 0.0, B, bulk_ratio=4.0, bulk_encode_Bps=2 * GB)
    assert r.total_time_s == pytest.approx(4.0) and r.wire_bytes == pytest.approx(2 * GB)
    # Encoder slower than the link: sent raw, ratio 1 in the table.
    r = simulate_precopy(M, 0.0, B, bulk_ratio=4.0, bulk_encode_Bps=0.5 * GB)
    assert r.total_time_s == pytest.approx(8.0) and r.table()["ratio"][0] == 1.0
    # Delta ratio applies from the second round on.
    r = simulate_precopy(M, 0.1 * GB, B, delta_ratio=5.0, downtime_budget_s=0.01)
    t = r.table()
    assert t["ratio"].to_list() == [1.0] + [5.0] * (t.height - 1)
    assert t["wire_bytes"][1] == pytest.approx(t["raw_bytes"][1] / 5)
    calls = []
    r2 = simulate_precopy(M, 0.1 * GB, B, delta_ratio=lambda: calls.append(1) or 5.0, downtime_budget_s=0.01)
    assert calls == [1] and r2.total_time_s == pytest.approx(r.total_time_s)


def test_measure_ratio_with_a_real_encoder():
    rng = np.random.default_rng(0)
    pages = np.zeros((64, 4096), dtype=np.uint8)
    pages[::4] = rng.integers(0, 256, size=(16, 4096), dtype=np.uint8)  # a quarter random
    ratio = measure_ratio(lambda a: zlib.compress(a.tobytes(), 1), pages)
    assert 3.0 < ratio < 4.2
    delta = measure_ratio(lambda new, old: zlib.compress(bytes(np.bitwise_xor(old, new)), 1),
                          pages, baseline=pages.copy())
    assert delta > 100  # identical pages: the XOR is all zeros
    assert measure_ratio(lambda b: 10, b"x" * 100) == 10.0
    with pytest.raises(ParameterError):
        measure_ratio(zlib.compress, b"")


def test_ratio_below_one_is_sent_raw():
    r = simulate_precopy(4 * GB, 0.0, 1 * GB, bulk_ratio=0.98)
    assert r.total_time_s == pytest.approx(4.0) and r.table()["ratio"][0] == 1.0


def test_hde_ratios_on_sample_pages_feed_the_model():
    rng = np.random.default_rng(1)
    pages = 512
    old = np.zeros(pages * 4096, np.uint8)
    old[: pages // 2 * 4096] = rng.integers(0, 256, pages // 2 * 4096, dtype=np.uint8)  # half random, half zero
    new = old.copy()
    dirty = rng.choice(pages, 51, replace=False)
    for p in dirty:  # 10 % of pages, four 32-byte writes each
        for off in rng.integers(0, 4064, 4):
            new[p * 4096 + off: p * 4096 + off + 32] = rng.integers(0, 256, 32, dtype=np.uint8)
    bulk, delta = hde_ratios(old, new)
    assert 1.6 < bulk < 2.2  # zero pages elided, random pages incompressible
    assert delta > 15  # ~130 changed bytes per dirty 4 KiB page
    # The same measurement through measure_ratio's delta form (whole image, clean pages included).
    from dwcpkit.protocol import hde

    assert measure_ratio(hde.encode, new, baseline=old) > delta
    # ... and as callables feeding a v1/v3 comparison.
    res = compare_v1_v3(8 * GB, 50e6, 125e6, v3_bulk_ratio=lambda: bulk, v3_delta_ratio=lambda: delta,
                        downtime_budget_s=0.5)
    assert res["v3"].table()["ratio"][1] == pytest.approx(delta)
    assert res["v3"].total_time_s < res["v1"].total_time_s
    with pytest.raises(ParameterError, match="identical"):
        hde_ratios(old, old)
    with pytest.raises(ParameterError, match="same size"):
        hde_ratios(old, new[:-1])
    # An injected encoder (anything with hde.encode's signature) is used as given.
    sizes = hde_ratios(old, new, encode=lambda t, b, **kw: b"x" * (1000 if b is None else 10))
    assert sizes == (new.size / 1000, len(dirty) * 4096 / 10)


def test_link_inputs():
    assert throughput_for(1e9, 4) == 1e9
    assert throughput_for(lambda n: 1e6 * n, 4) == 4e6
    spec = LinkSpec(rtt_s=0.1, loss=1e-4, capacity_bps=1e9, model="mathis")
    from dwcpkit.protocol import link

    assert spec.throughput_Bps(8) == pytest.approx(link.predict(8, 0.1, 1e-4, 1e9, model="mathis").throughput_bps / 8)
    assert spec.throughput_Bps(8) > spec.throughput_Bps(1)

    class Duck:  # any object with rtt_s / loss / capacity_bps is read like a LinkSpec
        rtt_s, loss, capacity_bps, model = 0.1, 1e-4, 1e9, "mathis"

    assert throughput_for(Duck(), 8) == pytest.approx(spec.throughput_Bps(8))
    n = best_streams(spec, 128)
    assert 1 < n <= 128
    assert spec.throughput_Bps(n) >= 0.95 * spec.throughput_Bps(128)
    assert spec.throughput_Bps(n - 1) < 0.95 * spec.throughput_Bps(128)
    r8 = simulate_precopy(4 * GB, 0.0, spec, streams=8)
    r64 = simulate_precopy(4 * GB, 0.0, spec, streams=64)
    assert r64.total_time_s < r8.total_time_s
    with pytest.raises(ParameterError, match="link must be"):
        throughput_for("fast", 1)
    with pytest.raises(ParameterError, match="streams"):
        throughput_for(1e9, 0)
    with pytest.raises(ParameterError, match="> 0"):
        throughput_for(lambda n: 0.0, 1)


@pytest.mark.parametrize("kwargs, match", [
    ({"memory_bytes": 0}, "memory_bytes"),
    ({"dirty_rate_Bps": -1}, "dirty_rate_Bps"),
    ({"max_rounds": 0}, "max_rounds"),
    ({"bulk_ratio": 0.0}, "bulk_ratio"),
    ({"delta_ratio": lambda: "x"}, "delta_ratio"),
    ({"dirty_model": "random"}, "dirty_model"),
    ({"working_set_bytes": 1e12}, "working_set_bytes"),
    ({"bulk_encode_Bps": 0}, "bulk_encode_Bps"),
    ({"downtime_budget_s": float("nan")}, "downtime_budget_s"),
])
def test_parameter_errors(kwargs, match):
    args = {"memory_bytes": 1e9, "dirty_rate_Bps": 1e6, "link": 1e8}
    args.update(kwargs)
    with pytest.raises(ParameterError, match=match):
        simulate_precopy(**args)


def test_v1_vs_v3_comparison():
    spec = LinkSpec(rtt_s=0.08, loss=1e-4, capacity_bps=1e9, model="pftk")
    res = compare_v1_v3(16 * GB, 20e6, spec, downtime_budget_s=0.5, rtt_s=0.08)
    v1, v3 = res["v1"], res["v3"]
    assert v1.streams == 16 and v3.streams == best_streams(spec, 64)
    assert set(v1.table()["ratio"].to_list()) == {1.0}
    assert v3.table()["ratio"][0] == migration.V3_DEFAULT_BULK_RATIO
    assert v3.total_time_s < v1.total_time_s and v3.wire_bytes < v1.wire_bytes
    table = comparison_table(res)
    assert table["name"].to_list() == ["v1", "v3"] and "downtime_s" in table.columns
    fixed = compare_v1_v3(4 * GB, 0.0, 1e9, v3_streams=4, v3_bulk_ratio=lambda: 2.0, v3_delta_ratio=1.0)
    assert fixed["v3"].streams == 4 and fixed["v3"].total_time_s == pytest.approx(2.0)
    with pytest.raises(ParameterError, match="v1_/v3_"):
        compare_v1_v3(4 * GB, 0.0, 1e9, streams=3)


def test_original_mode_targets_kept_as_written():
    assert ORIGINAL_MODE_TARGETS["datacenter"]["throughput_Bps"] == 10 * 1024**3
    assert ORIGINAL_MODE_TARGETS["internet"]["max_rounds"] == 10
    t = ORIGINAL_MODE_TARGETS["hybrid"]
    r = simulate_precopy(4 * 1024**3, 50e6, t["throughput_Bps"], downtime_budget_s=t["downtime_budget_s"],
                         max_rounds=int(t["max_rounds"]), bulk_ratio=t["compression_ratio"],
                         delta_ratio=t["compression_ratio"])
    assert r.converged and r.downtime_s <= 5.0


# Properties.

finite = dict(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    M=st.floats(1e8, 1e11, **finite), D=st.floats(0, 5e9, **finite), B=st.floats(1e7, 5e9, **finite),
    budget=st.floats(0.0, 5.0, **finite), rounds=st.integers(1, 40), rb=st.floats(1.0, 5.0, **finite),
    rd=st.floats(1.0, 10.0, **finite), rtt=st.floats(0.0, 0.2, **finite),
    model=st.sampled_from(["linear", "saturating"]), ws=st.floats(0.05, 1.0, **finite),
)
def test_properties(M, D, B, budget, rounds, rb, rd, rtt, model, ws):
    kw = dict(downtime_budget_s=budget, max_rounds=rounds, bulk_ratio=rb, delta_ratio=rd, rtt_s=rtt,
              dirty_model=model, working_set_bytes=ws * M)
    r = simulate_precopy(M, D, B, **kw)
    assert 1 <= r.rounds <= rounds
    if r.converged:
        assert r.downtime_s <= budget + 1e-12
    else:
        assert r.rounds == rounds
    assert r.wire_bytes <= r.raw_bytes * (1 + 1e-12)
    assert sum(row["seconds"] for row in r.rows) == pytest.approx(r.total_time_s)
    assert r.total_time_s >= M / (B * rb) - 1e-9  # never faster than the first pass
    assert all(row["raw_bytes"] <= max(M, 0) * (1 + 1e-12) for row in r.rows)
    faster = simulate_precopy(M, D, 2 * B, **kw)
    assert faster.total_time_s <= r.total_time_s * (1 + 1e-9)
    assert faster.downtime_s <= r.downtime_s * (1 + 1e-9) or faster.converged


def test_docstring_examples():
    failures, tried = doctest.testmod(migration)
    assert tried > 8 and failures == 0
    assert math.isfinite(simulate_precopy(1e9, 0, 1e9).total_time_s)
