"""Tests of the synthetic fleet generator and of the committed sample files."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as papq
import pytest

from dwcpkit._paths import data_dir
from dwcpkit.errors import ParameterError, SourceError
from dwcpkit.telemetry import schema
from dwcpkit.telemetry.names import CATALOG, COMPONENTS, LATENCY_BUCKETS, REGIONS, VERSIONS
from dwcpkit.telemetry.synth import (
    DEFAULT_START,
    INCIDENT_KINDS,
    LE_LABELS,
    Incident,
    _cumulate,
    _cumulate_ref,
    default_incidents,
    generate,
    incidents_frame,
    node_ids,
    read_incidents,
    restarts,
    write_sample,
)

HIST = "dwcp_v3_migration_latency_seconds"
U = timezone.utc


@pytest.fixture(scope="module")
def sample() -> tuple[pl.DataFrame, pl.DataFrame]:
    return generate()


@pytest.fixture(scope="module")
def frame(sample) -> pl.DataFrame:
    return sample[0]


@pytest.fixture(scope="module")
def truth(sample) -> pl.DataFrame:
    return sample[1]


def counter_metrics() -> list[str]:
    out = []
    for fam in CATALOG.values():
        if fam.type == "counter":
            out.append(fam.name)
        elif fam.type == "histogram":
            out += [f"{fam.name}_bucket", f"{fam.name}_sum", f"{fam.name}_count"]
    return out


def series(frame: pl.DataFrame, metric: str, **labels: str) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps as datetime64[ms], values) of one series; asserts it is exactly one series."""
    f = frame.filter(pl.col("metric") == metric, *[pl.col(k) == v for k, v in labels.items()])
    assert f.height > 0, (metric, labels)
    assert f.select(schema.series_keys(f)).unique().height == 1, (metric, labels)
    return f["timestamp"].to_numpy(), f["value"].to_numpy()


def in_window(ts: np.ndarray, a: datetime, b: datetime) -> np.ndarray:
    a64 = np.datetime64(a.replace(tzinfo=None), "ms")
    b64 = np.datetime64(b.replace(tzinfo=None), "ms")
    return (ts >= a64) & (ts < b64)


def increase(ts, vals, a, b) -> float:
    """Counter increase over samples in [a, b), Prometheus-style (a drop is a reset to 0)."""
    v = vals[in_window(ts, a, b)]
    d = np.diff(v)
    return float(np.where(d >= 0, d, v[1:]).sum())


def total_increase(frame, metric, a, b, **labels) -> float:
    f = frame.filter(pl.col("metric") == metric, *[pl.col(k) == v for k, v in labels.items()])
    keys = schema.series_keys(f)
    tot = 0.0
    for _, g in f.group_by(keys, maintain_order=True):
        tot += increase(g["timestamp"].to_numpy(), g["value"].to_numpy(), a, b)
    return tot


def incident(truth: pl.DataFrame, kind: str) -> dict:
    rows = truth.filter(pl.col("kind") == kind).to_dicts()
    assert len(rows) == 1, kind
    return rows[0]


def quiet_before(inc: dict, hours: float = 2.0) -> tuple[datetime, datetime]:
    """A quiet window ending one hour before the incident starts."""
    b = inc["start"] - timedelta(hours=1)
    return b - timedelta(hours=hours), b


def error_ratio(frame, a, b, **labels) -> float:
    e = total_increase(frame, "dwcp_v3_component_errors_total", a, b, **labels)
    o = total_increase(frame, "dwcp_v3_component_operations_total", a, b, **labels)
    assert o > 0
    return e / o


# ------------------------------------------------------------------------------------------------
# determinism


def test_generate_is_deterministic():
    a, ta = generate(days=0.25, seed=3)
    b, tb = generate(days=0.25, seed=3)
    assert a.equals(b) and ta.equals(tb)
    c, _ = generate(days=0.25, seed=4)
    assert not a.equals(c)


def test_write_sample_bytes_are_identical(tmp_path):
    p1, c1 = write_sample(tmp_path / "a", days=0.5, seed=11)
    p2, c2 = write_sample(tmp_path / "b", days=0.5, seed=11)
    assert p1.read_bytes() == p2.read_bytes()
    assert c1.read_bytes() == c2.read_bytes()
    meta = papq.ParquetFile(p1).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert set(meta.metadata) == {b"ARROW:schema"}  # no write time or host in the key-value metadata


# ------------------------------------------------------------------------------------------------
# schema and shape


def test_frame_is_canonical(frame):
    assert frame.equals(schema.normalize(frame))
    assert frame.schema["timestamp"] == schema.TIMESTAMP_DTYPE
    assert frame.columns == ["timestamp", "metric", "value", "component", "error_type", "le", "node_id",
                             "region", "version"]
    assert frame["value"].null_count() == 0 and frame["value"].is_nan().sum() == 0


def test_every_family_with_exactly_its_labels(frame):
    expected = set()
    for fam in CATALOG.values():
        if fam.type == "histogram":
            expected |= {(f"{fam.name}_bucket", tuple(sorted(fam.labels + ("le",)))),
                         (f"{fam.name}_sum", tuple(sorted(fam.labels))),
                         (f"{fam.name}_count", tuple(sorted(fam.labels)))}
        else:
            expected.add((fam.name, tuple(sorted(fam.labels))))
    labels = schema.label_columns(frame)
    got = set()
    for (metric,), g in frame.group_by(["metric"]):
        present = tuple(c for c in labels if g[c].null_count() == 0)
        absent = [c for c in labels if c not in present]
        assert all(g[c].null_count() == g.height for c in absent), metric
        got.add((metric, present))
    assert got == expected


def test_label_values_and_grid(frame):
    n = 2880
    assert set(frame["region"].drop_nulls().unique()) == set(REGIONS)
    assert set(frame["version"].drop_nulls().unique()) == set(VERSIONS)
    assert set(frame["component"].drop_nulls().unique()) == set(COMPONENTS)
    assert set(frame["error_type"].drop_nulls().unique()) == {"timeout", "protocol"}
    assert set(frame["node_id"].drop_nulls().unique()) == {n_ for r in REGIONS for n_ in node_ids(r)}
    byz = frame.filter(pl.col("metric") == "dwcp_v3_byzantine_detections_total")
    assert (byz["node_id"].str.starts_with(byz["region"])).all()
    assert sorted(frame["le"].drop_nulls().unique()) == sorted(LE_LABELS)
    assert LE_LABELS[:-1] == tuple(f"{b:g}" for b in LATENCY_BUCKETS)
    per_series = frame.group_by(schema.series_keys(frame)).agg(
        pl.len(), pl.col("timestamp").min().alias("t0"), pl.col("timestamp").max().alias("t1"))
    assert per_series.height == 256
    assert (per_series["len"] == n).all()
    assert per_series["t0"].unique().to_list() == [DEFAULT_START]
    assert per_series["t1"].unique().to_list() == [DEFAULT_START + timedelta(minutes=n - 1)]


# ------------------------------------------------------------------------------------------------
# counters and histograms


def test_counters_monotone_except_documented_resets(frame):
    rs = restarts()
    assert any(r.reason == "random" for r in rs) and any(r.reason == "after component_down" for r in rs)
    allowed = {(np.datetime64(r.time.replace(tzinfo=None), "ms"), r.region, r.version) for r in rs}
    f = frame.filter(pl.col("metric").is_in(counter_metrics()))
    keys = schema.series_keys(f)
    seen_resets = set()
    for key, g in f.group_by(keys, maintain_order=True):
        lab = dict(zip(keys, key))
        ts, v = g["timestamp"].to_numpy(), g["value"].to_numpy()
        assert (v >= 0).all()
        drops = np.flatnonzero(np.diff(v) < 0) + 1
        for k in drops:
            version = lab["version"] or "v3"  # version-less counters live in the v3 service
            assert (ts[k], lab["region"], version) in allowed, (lab, ts[k])
            assert v[k] == 0.0  # a reset goes to 0
            seen_resets.add((ts[k], lab["region"], version))
    assert seen_resets == allowed  # and every documented restart shows


def test_random_restart_resets_all_counters_of_that_service(frame):
    r = next(r for r in restarts() if r.reason == "random")
    at = frame.filter(pl.col("timestamp") == r.time, pl.col("metric").is_in(counter_metrics()),
                      pl.col("region") == r.region, pl.col("version") == r.version)
    assert at.height == 15 + 1 + 6 + 12  # histogram + bytes + ops + errors
    assert (at["value"] == 0).all()


def test_histogram_buckets_cumulative(frame):
    b = frame.filter(pl.col("metric") == f"{HIST}_bucket")
    order = {le: i for i, le in enumerate(LE_LABELS)}
    wide = b.with_columns(pl.col("le").replace_strict(order, return_dtype=pl.Int32).alias("i")).sort(
        "region", "version", "timestamp", "i")
    vals = wide["value"].to_numpy().reshape(-1, len(LE_LABELS))
    assert (np.diff(vals, axis=1) >= 0).all()
    count = frame.filter(pl.col("metric") == f"{HIST}_count").sort("region", "version", "timestamp")
    np.testing.assert_array_equal(vals[:, -1], count["value"].to_numpy())
    s = frame.filter(pl.col("metric") == f"{HIST}_sum").sort("region", "version", "timestamp")["value"].to_numpy()
    # every migration takes between 1 ms and 1800 s
    assert (s >= 0.001 * vals[:, -1] - 1e-6).all() and (s <= 1800 * vals[:, -1] + 1e-6).all()
    assert (vals[:, -1] > 0).any()


def test_cumulate_matches_reference():
    rng = np.random.default_rng(0)
    inc = rng.poisson(3.0, size=(4, 50)).astype(float)
    reset = rng.random((4, 50)) < 0.05
    offset = np.array([0.0, 10.0, 5.0, 100.0])
    got = _cumulate(inc, reset, offset)
    for i in range(4):
        np.testing.assert_array_equal(got[i], _cumulate_ref(inc[i], reset[i], offset[i]))


# ------------------------------------------------------------------------------------------------
# realism


def test_rollout_steps_and_v3_share(frame):
    ts, pct = series(frame, "dwcp_v3_rollout_percentage")
    assert list(dict.fromkeys(pct.tolist())) == [10.0, 50.0, 100.0]
    assert (np.diff(pct) >= 0).all()
    ts, v1 = series(frame, "dwcp_v3_throughput_bytes_per_second", region="us-east", version="v1")
    assert (v1[pct == 100] == 0).all() and (v1[pct < 100] > 0).all()
    # share of migrations going to v3 follows the rollout (quiet day-one window at 10 %)
    a, b = datetime(2026, 11, 1, 1, tzinfo=U), datetime(2026, 11, 1, 8, tzinfo=U)
    n3 = total_increase(frame, f"{HIST}_count", a, b, version="v3")
    n1 = total_increase(frame, f"{HIST}_count", a, b, version="v1")
    assert 0.07 < n3 / (n1 + n3) < 0.13


def test_normal_levels(frame):
    a, b = datetime(2026, 11, 1, 21, tzinfo=U), datetime(2026, 11, 2, 2, tzinfo=U)  # 50 %, no incident
    for reg in REGIONS:
        for ver in VERSIONS:
            assert 0.001 <= error_ratio(frame, a, b, region=reg, version=ver) <= 0.003
    g = frame.filter(pl.col("timestamp") >= a, pl.col("timestamp") < b)
    med = g.group_by("metric", "version").agg(pl.col("value").median())
    m = {(r["metric"], r["version"]): r["value"] for r in med.to_dicts()}
    assert 2e9 < m[("dwcp_v3_throughput_bytes_per_second", "v3")] < 4e9
    assert 0.5e9 < m[("dwcp_v3_throughput_bytes_per_second", "v1")] < m[("dwcp_v3_throughput_bytes_per_second", "v3")]
    assert 2.0 <= m[("dwcp_v3_compression_ratio", "v3")] <= 4.0
    assert 1.0 <= m[("dwcp_v3_compression_ratio", "v1")] < 1.1
    assert 10 <= m[("dwcp_v3_active_streams", "v3")] < 100
    assert (g.filter(pl.col("metric") == "dwcp_v3_peers_connected")["value"] == 7).all()
    assert (g.filter(pl.col("metric") == "dwcp_v3_component_health")["value"] == 1).all()
    # latency: v3 median below 1 s, v1 median between 1 and 5 s (bucket counts)
    for ver, lo, hi in (("v3", "0.1", "1"), ("v1", "1", "5")):
        below = {le: total_increase(g, f"{HIST}_bucket", a, b, version=ver, le=le) for le in (lo, hi, "+Inf")}
        assert below[lo] < 0.5 * below["+Inf"] < below[hi]


def test_diurnal_load(frame):
    # us-east (UTC-5) on Monday: 14:00 local busier than 02:00 local
    peak = total_increase(frame, f"{HIST}_count", datetime(2026, 11, 2, 18, tzinfo=U),
                          datetime(2026, 11, 2, 19, tzinfo=U), region="us-east")
    trough = total_increase(frame, f"{HIST}_count", datetime(2026, 11, 2, 6, 30, tzinfo=U),
                            datetime(2026, 11, 2, 7, 30, tzinfo=U), region="us-east")
    assert peak > 2.5 * trough


# ------------------------------------------------------------------------------------------------
# incidents


def test_default_incident_list(truth):
    assert truth.columns == ["incident_id", "kind", "start", "end", "region", "component", "node_id",
                             "description"]
    assert truth["incident_id"].to_list() == [f"INC-{i:03d}" for i in range(1, 7)]
    assert sorted(truth["kind"]) == sorted(INCIDENT_KINDS)
    assert truth.schema["start"] == schema.TIMESTAMP_DTYPE and truth.schema["end"] == schema.TIMESTAMP_DTYPE
    starts, ends = truth["start"].to_list(), truth["end"].to_list()
    assert all(e <= s for e, s in zip(ends[:-1], starts[1:]))  # ordered, non-overlapping
    last = truth.row(-1, named=True)
    assert last["kind"] in ("error_surge", "latency_spike") and last["region"] == "us-east"
    assert timedelta(minutes=20) <= last["end"] - last["start"] <= timedelta(minutes=40)
    window_end = DEFAULT_START + timedelta(days=2)
    assert timedelta(minutes=25) <= window_end - last["end"] <= timedelta(minutes=35)
    spread = [(s - DEFAULT_START) / timedelta(days=2) for s in starts]
    assert spread[0] < 0.3 and spread[-1] > 0.9
    assert truth.equals(incidents_frame(default_incidents()))


def test_truth_matches_custom_incidents():
    t0 = DEFAULT_START
    incs = [
        Incident("network_partition", t0 + timedelta(hours=3), timedelta(minutes=10), "eu-west", magnitude=2),
        Incident("component_down", t0 + timedelta(hours=1), timedelta(minutes=15), "us-east", component="amst"),
    ]
    frame, truth = generate(days=0.25, incidents=incs)
    assert truth["kind"].to_list() == ["component_down", "network_partition"]
    assert truth["start"].to_list() == [incs[1].start, incs[0].start]
    assert truth["end"].to_list() == [incs[1].end, incs[0].end]
    assert truth["component"].to_list() == ["amst", None]
    assert truth["region"].to_list() == ["us-east", "eu-west"]
    # amst down: no v3 migration completes in us-east during the outage
    a, b = incs[1].start, incs[1].end
    assert total_increase(frame, f"{HIST}_count", a, b, region="us-east", version="v3") == 0
    assert total_increase(frame, f"{HIST}_count", a, b, region="eu-west", version="v3") > 0
    ts, peers = series(frame, "dwcp_v3_peers_connected", region="eu-west")
    m = in_window(ts, incs[0].start, incs[0].end)
    assert (peers[m] == 2).all() and (peers[~m] == 7).all()
    empty, none = generate(days=0.25, incidents=[])
    assert none.height == 0 and empty.height == frame.height


def test_latency_spike_signature(frame, truth):
    inc = incident(truth, "latency_spike")
    lab = {"region": inc["region"], "version": "v3"}

    def mean_latency(a, b):
        return (total_increase(frame, f"{HIST}_sum", a, b, **lab)
                / total_increase(frame, f"{HIST}_count", a, b, **lab))

    during = mean_latency(inc["start"], inc["end"])
    quiet = mean_latency(*quiet_before(inc))
    assert during > 3 * quiet
    under_1s = total_increase(frame, f"{HIST}_bucket", inc["start"], inc["end"], le="1", **lab)
    assert under_1s < 0.5 * total_increase(frame, f"{HIST}_count", inc["start"], inc["end"], **lab)
    other = {"region": inc["region"], "version": "v1"}
    assert (total_increase(frame, f"{HIST}_sum", inc["start"], inc["end"], **other)
            / total_increase(frame, f"{HIST}_count", inc["start"], inc["end"], **other)) < 10


def test_error_surge_signature(frame, truth):
    inc = incident(truth, "error_surge")
    lab = {"region": inc["region"], "version": "v3"}
    during = error_ratio(frame, inc["start"], inc["end"], **lab)
    quiet = error_ratio(frame, *quiet_before(inc), **lab)
    assert during >= 5 * quiet and during > 0.03
    assert quiet < 0.003
    assert error_ratio(frame, inc["start"], inc["end"], region="eu-west", version="v3") < 0.003


def test_component_down_signature(frame, truth):
    inc = incident(truth, "component_down")
    reg, comp = inc["region"], inc["component"]
    ts, h = series(frame, "dwcp_v3_component_health", region=reg, component=comp)
    m = in_window(ts, inc["start"], inc["end"])
    assert (h[m] == 0).all() and (h[~m] == 1).all()
    assert (frame.filter(pl.col("metric") == "dwcp_v3_component_health", pl.col("value") == 0).height
            == m.sum())
    ts, ops = series(frame, "dwcp_v3_component_operations_total", region=reg, component=comp, version="v3")
    assert (np.diff(ops[m]) == 0).all()
    assert increase(ts, ops, *quiet_before(inc)) > 0
    k_end = np.flatnonzero(m)[-1] + 1
    assert ops[k_end] == 0 and ops[k_end - 1] > 0  # restart at the end resets the counter
    if comp == "hde":
        ts, ratio = series(frame, "dwcp_v3_compression_ratio", region=reg, version="v3")
        assert (ratio[m] == 1.0).all() and (ratio[~m] >= 2.0).all()


def test_network_partition_signature(frame, truth):
    inc = incident(truth, "network_partition")
    ts, peers = series(frame, "dwcp_v3_peers_connected", region=inc["region"])
    m = in_window(ts, inc["start"], inc["end"])
    assert (peers[m] < 7).all() and (peers[~m] == 7).all()
    ts, cf = series(frame, "dwcp_v3_consensus_failures_total", region=inc["region"])
    minutes = (inc["end"] - inc["start"]) / timedelta(minutes=1)
    during = increase(ts, cf, inc["start"], inc["end"]) / minutes
    quiet = increase(ts, cf, *quiet_before(inc, hours=6)) / 360
    assert during > 1.0 and during > 20 * quiet
    acp = error_ratio(frame, inc["start"], inc["end"], region=inc["region"], version="v3", component="acp")
    assert acp > 0.02


def test_bandwidth_degradation_signature(frame, truth):
    inc = incident(truth, "bandwidth_degradation")
    lab = {"region": inc["region"], "version": "v3"}
    ts, thr = series(frame, "dwcp_v3_throughput_bytes_per_second", **lab)
    m = in_window(ts, inc["start"], inc["end"])
    around = in_window(ts, inc["start"] - timedelta(hours=1), inc["end"] + timedelta(hours=1)) & ~m
    assert thr[m].mean() < 0.5 * thr[around].mean()
    ts, by = series(frame, "dwcp_v3_bytes_transferred_total", **lab)
    hour = timedelta(hours=1)
    rate_during = increase(ts, by, inc["start"], inc["end"])
    rate_around = (increase(ts, by, inc["start"] - hour, inc["start"]) + increase(ts, by, inc["end"], inc["end"] + hour)) / 2
    dur = (inc["end"] - inc["start"]) / hour
    assert rate_during / dur < 0.8 * rate_around


def test_byzantine_node_signature(frame, truth):
    inc = incident(truth, "byzantine_node")
    byz = frame.filter(pl.col("metric") == "dwcp_v3_byzantine_detections_total")
    for (node,), g in byz.group_by(["node_id"]):
        ts, v = g["timestamp"].to_numpy(), g["value"].to_numpy()
        m = in_window(ts, inc["start"], inc["end"])
        grew = np.flatnonzero(np.diff(v) > 0) + 1
        if node == inc["node_id"]:
            assert increase(ts, v, inc["start"], inc["end"]) >= 20
            assert m[grew].all()  # it grows only during the incident
        else:
            assert grew.size == 0


# ------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"start": datetime(2026, 11, 1)}, "naive"),
        ({"days": 0}, "days"),
        ({"days": 0.01}, "at least"),
        ({"step_s": 0}, "step_s"),
        ({"seed": -1}, "seed"),
        ({"incidents": [Incident("meteor", DEFAULT_START, timedelta(minutes=5), "us-east")]}, "unknown kind"),
        ({"incidents": [Incident("error_surge", DEFAULT_START, timedelta(minutes=5), "mars")]}, "unknown region"),
        ({"incidents": [Incident("component_down", DEFAULT_START, timedelta(minutes=5), "us-east")]}, "component"),
        ({"incidents": [Incident("byzantine_node", DEFAULT_START, timedelta(minutes=5), "us-east",
                                 node_id="eu-west-1")]}, "node_id"),
        ({"incidents": [Incident("error_surge", DEFAULT_START + timedelta(days=3), timedelta(minutes=5),
                                 "us-east")]}, "outside the window"),
    ],
)
def test_bad_arguments_raise_parameter_error(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        generate(**{"days": 0.25, **kwargs})


def test_read_incidents_missing_file(tmp_path):
    with pytest.raises(SourceError, match="sample-data"):
        read_incidents(tmp_path / "nope.csv")


# ------------------------------------------------------------------------------------------------
# the committed sample


COMMITTED = data_dir()


def test_committed_sample_equals_fresh_generation(sample, tmp_path):
    pq, csv = COMMITTED / "telemetry.parquet", COMMITTED / "incidents.csv"
    assert pq.is_file() and csv.is_file(), "run `dwcpkit sample-data` (synth.write_sample()) to create them"
    frame, truth = sample
    assert pl.read_parquet(pq).equals(frame)
    assert read_incidents(csv).equals(truth)
    fresh_pq, fresh_csv = write_sample(tmp_path)
    assert fresh_csv.read_bytes() == csv.read_bytes()
    writer = papq.ParquetFile(pq).metadata.created_by
    if writer != papq.ParquetFile(fresh_pq).metadata.created_by:
        pytest.skip(f"data/telemetry.parquet was written by {writer!r}; byte equality needs that writer")
    assert fresh_pq.read_bytes() == pq.read_bytes()


def test_committed_sample_size():
    assert (COMMITTED / "telemetry.parquet").stat().st_size <= 6 * 1024 * 1024
