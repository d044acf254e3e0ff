"""v1 vs v3 comparison: per-minute extraction, the block bootstrap, verdicts, claims beside measurements."""

import doctest
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from dwcpkit import charts
from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import compare, slo
from dwcpkit.sre.claims import load_claims
from dwcpkit.telemetry import schema
from dwcpkit.telemetry.names import COMPONENTS
from dwcpkit.telemetry.sources import load

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
LE = ("0.5", "1", "2", "+Inf")
REGIONS = ("a", "b")
N = 131  # samples 0..130; rollout 10 % for minutes 0-9, 50 % for 10-130
STAGE = (T0 + timedelta(minutes=10), T0 + timedelta(minutes=131))


def _inc(version: str) -> dict:
    """Per-minute increments per region (arrays of length N), before any anomaly."""
    per_bucket = {"v1": [0, 5, 5, 0], "v3": [6, 4, 0, 0]}[version]  # non-cumulative counts per bucket
    cum = np.cumsum(per_bucket)
    d = {"buckets": np.tile(cum, (N, 1)).astype(float), "mig": np.full(N, float(cum[-1]))}
    d["ops"] = {c: np.full(N, 100.0) for c in COMPONENTS}
    d["err"] = np.full(N, {"v1": 2.0, "v3": 1.0}[version])
    d["bytes"] = np.full(N, {"v1": 3e9, "v3": 1e9}[version])
    d["gauge"] = np.full(N, {"v1": 1e9, "v3": 2e9}[version])
    return d


def fleet(*, identical: bool = False, anomalies: bool = True, reset_at: int | None = None) -> tuple[pl.DataFrame, dict]:
    """Canonical frame of a two-region, two-version fleet with known per-minute counts."""
    incs = {(v, r): _inc("v1" if identical else v) for v in ("v1", "v3") for r in REGIONS}
    if anomalies and not identical:
        incs[("v3", "b")]["ops"]["hde"][30:40] = 0.0  # hde down 10 min in region b: 10 bad region-minutes
        incs[("v1", "a")]["err"][50:55] = 10.0  # 10 / 600 = 1.7 % errors: 5 bad region-minutes
    ts = pl.Series([T0 + timedelta(minutes=i) for i in range(N)]).cast(schema.TIMESTAMP_DTYPE)
    parts = []

    def add(metric, values, counter=True, **labels):
        vals = np.cumsum(values) if counter else values
        if counter and reset_at is not None and labels.get("version") == "v3" and labels.get("region") == "a":
            vals = vals.copy()
            vals[reset_at:] -= vals[reset_at - 1]  # restart: the counter starts again from 0
        parts.append(pl.DataFrame({"timestamp": ts, "metric": metric, "value": vals.astype(float),
                                   **{k: [v] * N for k, v in labels.items()}}))

    for (v, r), d in incs.items():
        for j, le in enumerate(LE):
            add("dwcp_v3_migration_latency_seconds_bucket", d["buckets"][:, j], le=le, region=r, version=v)
        add("dwcp_v3_migration_latency_seconds_count", d["mig"], region=r, version=v)
        for c in COMPONENTS:
            add("dwcp_v3_component_operations_total", d["ops"][c], component=c, region=r, version=v)
        add("dwcp_v3_component_errors_total", d["err"], component="amst", error_type="timeout", region=r, version=v)
        add("dwcp_v3_bytes_transferred_total", d["bytes"], region=r, version=v)
        add("dwcp_v3_throughput_bytes_per_second", d["gauge"], counter=False, region=r, version=v)
    add("dwcp_v3_rollout_percentage", np.where(np.arange(N) < 10, 10.0, 50.0), counter=False)
    frame = schema.normalize(pl.concat(parts, how="diagonal"), source="test")
    return frame, incs


def expected(incs: dict, version: str, lo: int = 10, hi: int = N) -> dict:
    """The metrics computed straight from the increments, without compare's machinery."""
    ds = [incs[(version, r)] for r in REGIONS]
    buckets = sum(d["buckets"][lo:hi].sum(axis=0) for d in ds)
    frame = schema.from_rows([(0, "lat_bucket", float(c), {"le": le}) for le, c in zip(LE, buckets)])
    out = {k: slo.histogram_quantile(q, frame)["value"][0] for k, q in (("p50_latency", .5), ("p95_latency", .95),
                                                                          ("p99_latency", .99))}
    ops = sum(sum(d["ops"][c][lo:hi].sum() for c in COMPONENTS) for d in ds)
    out["error_rate"] = 100 * sum(d["err"][lo:hi].sum() for d in ds) / ops
    mig = sum(d["mig"][lo:hi].sum() for d in ds)
    out["bandwidth"] = sum(d["bytes"][lo:hi].sum() for d in ds) / mig / 1e9
    out["throughput"] = sum((d["gauge"][lo:hi] * d["mig"][lo:hi]).sum() for d in ds) / mig / 1e9
    good = 0
    for d in ds:
        total_ops = sum(d["ops"][c][lo:hi] for c in COMPONENTS)
        idle = np.min([d["ops"][c][lo:hi] for c in COMPONENTS], axis=0) == 0
        good += np.sum((d["err"][lo:hi] / total_ops < 0.01) & ~idle)
    out["availability"] = 100 * good / (len(REGIONS) * (hi - lo))
    return out


@pytest.fixture(scope="module")
def synthetic():
    return fleet()


@pytest.fixture(scope="module")
def result(synthetic):
    return compare.compare_versions(synthetic[0], n_boot=300, block_minutes=10, seed=3)


# ------------------------------------------------------------------ point estimates


def test_stage_window_from_the_rollout_gauge(synthetic):
    assert compare.stage_window(synthetic[0], 50) == STAGE
    with pytest.raises(DataError, match="stages seen: \\[10.0, 50.0\\]"):
        compare.stage_window(synthetic[0], 100)


def test_point_estimates_match_a_direct_computation(synthetic, result):
    frame, incs = synthetic
    t = {r["metric"]: r for r in result.table.iter_rows(named=True)}
    for version, col in (("v1", "baseline"), ("v3", "candidate")):
        for metric, value in expected(incs, version).items():
            assert t[metric][col] == pytest.approx(value, rel=1e-9), (version, metric)
    assert t["availability"]["candidate"] == pytest.approx(100 * (242 - 10) / 242)  # 121 minutes x 2 regions
    assert t["availability"]["baseline"] == pytest.approx(100 * (242 - 5) / 242)
    assert result.minutes == 121 and result.dropped_minutes == 0 and result.blocks == 13
    assert result.migrations == {"v1": 2 * 121 * 10.0, "v3": 2 * 121 * 10.0}


def test_counter_resets_do_not_change_the_result(synthetic, result):
    reset, _ = fleet(reset_at=60)
    again = compare.compare_versions(reset, n_boot=300, block_minutes=10, seed=3)
    assert again.table.select("baseline", "candidate", "ratio").equals(result.table.select("baseline", "candidate", "ratio"))


def test_explicit_window_overrides_the_stage(synthetic):
    frame, incs = synthetic
    c = compare.compare_versions(frame, start=T0 + timedelta(minutes=60), end=T0 + timedelta(minutes=100), n_boot=50,
                                 block_minutes=5)
    assert c.minutes == 40
    assert c.table.filter(metric="availability")["candidate"][0] == pytest.approx(100.0)  # hde outage is before it
    assert c.table.filter(metric="error_rate")["baseline"][0] == pytest.approx(expected(incs, "v1", 60, 100)["error_rate"])


# ------------------------------------------------------------------ bootstrap


def test_bootstrap_weights_are_block_draw_counts():
    w = compare.bootstrap_weights(7, 500, seed=11)
    assert w.shape == (500, 7) and (w.sum(axis=1) == 7).all() and w.dtype.kind == "i"
    assert np.array_equal(w, compare.bootstrap_weights(7, 500, seed=11))
    assert not np.array_equal(w, compare.bootstrap_weights(7, 500, seed=12))
    assert abs(w.mean() - 1.0) < 0.05  # each block drawn once per replicate on average


def test_block_sums_and_weighted_totals_match_explicit_resampling():
    rng = np.random.default_rng(0)
    values = rng.poisson(5.0, size=(23, 3)).astype(float)
    block = 5
    sums = compare.block_sums(values, block)
    ref = np.array([values[i:i + block].sum(axis=0) for i in range(0, 23, block)])
    assert np.array_equal(sums, ref)
    n_blocks, n_boot, seed = sums.shape[0], 40, 9
    w = compare.bootstrap_weights(n_blocks, n_boot, seed)
    idx = np.random.default_rng(seed).integers(0, n_blocks, size=(n_boot, n_blocks))  # the same draws, by hand
    explicit = np.array([np.concatenate([values[b * block:(b + 1) * block] for b in row]).sum(axis=0) for row in idx])
    assert np.allclose(w @ sums, explicit)


def test_interval_coverage_on_independent_minutes():
    """Ratio-of-sums intervals from the same machinery cover the true ratio about 95 % of the time."""
    rng = np.random.default_rng(42)
    n_sets, minutes, block, boot, true = 300, 240, 4, 400, 0.02
    hits = 0
    w = compare.bootstrap_weights(minutes // block, boot, seed=1)
    for _ in range(n_sets):
        ops = rng.poisson(500, size=minutes).astype(float)
        err = rng.binomial(ops.astype(int), true).astype(float)
        tot = w @ compare.block_sums(np.column_stack([err, ops]), block)
        lo, hi = np.quantile(tot[:, 0] / tot[:, 1], [0.025, 0.975])
        hits += lo <= true <= hi
    assert 0.88 <= hits / n_sets <= 0.99


def test_seeded_and_paired(synthetic, result):
    same = compare.compare_versions(synthetic[0], n_boot=300, block_minutes=10, seed=3)
    assert same.table.equals(result.table)
    other = compare.compare_versions(synthetic[0], n_boot=300, block_minutes=10, seed=4)
    assert not other.table.select("candidate_lo", "candidate_hi").equals(result.table.select("candidate_lo", "candidate_hi"))
    twin, _ = fleet(identical=True)
    c = compare.compare_versions(twin, n_boot=200, block_minutes=10)
    assert (c.table["ratio_lo"] == 1.0).all() and (c.table["ratio_hi"] == 1.0).all()  # same draw for both versions
    assert set(c.table["assessment"]) == {"no clear difference"}
    assert c.verdict()[0] == "OK"


def test_intervals_contain_the_point_estimate(result):
    t = result.table
    for col in ("baseline", "candidate", "ratio"):
        assert ((t[f"{col}_lo"] <= t[col] + 1e-12) & (t[col] <= t[f"{col}_hi"] + 1e-12)).all(), col


# ------------------------------------------------------------------ verdicts


def test_assessments_and_verdict(result):
    a = dict(zip(result.table["metric"], result.table["assessment"]))
    assert a["p50_latency"] == "better" and a["bandwidth"] == "better" and a["throughput"] == "better"
    assert a["error_rate"] == "better"
    level, label, reasons = result.verdict()
    assert level == "OK" and label == "v3 meets v1" and len(reasons) == 7


def test_a_worse_candidate_warns(synthetic):
    c = compare.compare_versions(synthetic[0], baseline="v3", candidate="v1", n_boot=200, block_minutes=10)
    level, label, reasons = c.verdict()
    assert level == "WARN" and label.startswith("v1 worse on")
    assert reasons[0].endswith(": worse")
    assert c.table.filter(metric="p50_latency")["assessment"][0] == "worse"


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("kw, err, msg", [
    (dict(n_boot=5), ParameterError, "at least 10"),
    (dict(block_minutes=0), ParameterError, "block_minutes"),
    (dict(confidence=1.0), ParameterError, "confidence"),
    (dict(max_error_ratio=0), ParameterError, "max_error_ratio"),
    (dict(baseline="v3"), ParameterError, "both 'v3'"),
    (dict(candidate="v9"), DataError, "versions present"),
    (dict(block_minutes=60), DataError, "at least 4 blocks"),
    (dict(start="2026-01-01T01:00:00Z", end="2026-01-01T00:30:00Z"), ParameterError, "not after"),
    (dict(start="yesterday", end="2026-01-01T00:30:00Z"), ParameterError, "ISO-8601"),
])
def test_bad_arguments(synthetic, kw, err, msg):
    with pytest.raises(err, match=msg):
        compare.compare_versions(synthetic[0], **kw)


def test_missing_family_is_named(synthetic):
    frame = synthetic[0].filter(pl.col("metric") != "dwcp_v3_bytes_transferred_total")
    with pytest.raises(DataError, match="dwcp_v3_bytes_transferred_total"):
        compare.compare_versions(frame, n_boot=20, block_minutes=10)


# ------------------------------------------------------------------ sample data, claims, figures


@pytest.fixture(scope="module")
def sample():
    frame = compare.load_data("sample")
    return compare.compare_versions(frame, n_boot=300)


def test_sample_fifty_percent_stage(sample):
    assert (sample.start, sample.end) == (datetime(2026, 11, 1, 16, tzinfo=timezone.utc),
                                          datetime(2026, 11, 2, 8, tzinfo=timezone.utc))
    assert sample.minutes == 960 and sample.blocks == 32
    t = {r["metric"]: r for r in sample.table.iter_rows(named=True)}
    for m in ("p50_latency", "p95_latency", "p99_latency", "bandwidth", "throughput"):
        assert t[m]["assessment"] == "better", m
    assert t["availability"]["baseline"] == pytest.approx(100.0)
    assert t["availability"]["candidate"] < 99.5  # INC-003: v3 hde down in eu-west for 35 min
    assert sample.verdict()[0] == "OK"


def test_sample_agrees_with_promql_over_the_window(sample):
    frame = load("sample", metrics=[compare.LATENCY], start="2026-11-01T15:00:00Z", end="2026-11-02T08:00:00Z")
    b = frame.filter(pl.col("metric") == f"{compare.LATENCY}_bucket")
    # histogram_quantile(0.5, sum by (le, version) (increase(...[16h]))) at 07:59, window (15:59, 07:59]
    inc = slo.increase(b, "16h", at="2026-11-02T07:59:00Z")
    q = slo.histogram_quantile(0.5, slo.sum_by(inc, ["le", "version"])).sort("version")
    got = sample.table.filter(metric="p50_latency").select("baseline", "candidate").row(0)
    assert got == pytest.approx(tuple(q["value"].to_list()), rel=1e-6)


def test_side_by_side_marks_claims(sample):
    s = compare.side_by_side(sample, load_claims())
    assert s["metric"].to_list() == ["P99 latency", "Error rate", "Throughput", "Availability", "Bandwidth usage"]
    p99 = s.row(0, named=True)
    assert (p99["CLAIM v1"], p99["CLAIM v3"]) == (180.0, 43.0)
    assert p99["measured v1"] == pytest.approx(sample.table.filter(metric="p99_latency")["baseline"][0] * 1000)
    assert p99["measured unit"] == "ms"
    assert s.filter(metric="Throughput")["measured unit"][0] == "GB/s"  # not converted: different quantities


def test_figures_save(sample, tmp_path):
    figs = compare.figures(sample)
    assert set(figs) == {"ratio", "latency", "timeline"}
    paths = charts.save_all(figs, tmp_path, formats=("svg",))
    assert sorted(p.name for p in paths) == ["latency.svg", "ratio.svg", "timeline.svg"]
    assert "P99 migration latency" in (tmp_path / "ratio.svg").read_text()
    assert sample.timeline.height == 2 * 64  # 15-min points per version, aggregated before charting


def test_docstring_examples():
    assert doctest.testmod(compare).failed == 0
