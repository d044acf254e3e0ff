"""Tests for dwcpkit.telemetry.sources: resolving `source`, filtering, and the incident table."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl
import pytest
from fakeprom import FakeProm

from dwcpkit.errors import ParameterError, ParseError, PrometheusError, SourceError
from dwcpkit.telemetry import sources
from dwcpkit.telemetry.files import write_csv, write_parquet
from dwcpkit.telemetry.schema import TIMESTAMP_DTYPE, empty_frame, from_rows

T = 1_714_521_600_000  # 2024-05-01T00:00:00Z
MIN = 60_000
HIST = "dwcp_v3_migration_latency_seconds"


def _frame() -> pl.DataFrame:
    rows = []
    for k in range(10):
        t = T + k * MIN
        for region in ("eu-west", "us-east"):
            rows.append((t, "dwcp_v3_active_streams", float(k), {"region": region, "version": "v3"}))
            for le in ("0.5", "+Inf"):
                rows.append((t, HIST + "_bucket", float(k), {"le": le, "region": region, "version": "v3"}))
            rows.append((t, HIST + "_sum", k * 0.3, {"region": region, "version": "v3"}))
            rows.append((t, HIST + "_count", float(k), {"region": region, "version": "v3"}))
        rows.append((t, "dwcp_v3_byzantine_detections_total", 0.0, {"node_id": "n1", "region": "eu-west"}))
        rows.append((t, "custom_hist_bucket", 1.0, {"le": "+Inf"}))
        rows.append((t, "custom_hist_count", 1.0, {}))
        rows.append((t, "custom_hist_countless", 5.0, {}))
    return from_rows(rows)


@pytest.fixture
def frame() -> pl.DataFrame:
    return _frame()


@pytest.fixture
def home(tmp_path, monkeypatch, frame):
    """A DWCPKIT_HOME whose data/ holds a small telemetry.parquet and incidents.csv."""
    (tmp_path / "data").mkdir()
    write_parquet(frame, tmp_path / "data" / "telemetry.parquet")
    (tmp_path / "data" / "incidents.csv").write_text(
        "incident_id,kind,start,end,region,component,node_id,description\n"
        "INC-2,byzantine,2024-05-01T00:05:00Z,,eu-west,acp,n1,\"node n1 lies, twice\"\n"
        "INC-1,latency,2024-05-01T00:01:00Z,2024-05-01T00:03:00Z,us-east,amst,,slow WAN\n"
    )
    monkeypatch.setenv("DWCPKIT_HOME", str(tmp_path))
    return tmp_path


# --------------------------------------------------------------------------- resolve


def test_resolve_kinds(tmp_path):
    assert sources.resolve("sample").kind == "sample"
    assert sources.resolve(" SAMPLE ").kind == "sample"
    assert sources.resolve("https://prom.example/prom/").target == "https://prom.example/prom"
    assert sources.resolve(tmp_path / "x.PARQUET").kind == "parquet"
    assert [sources.resolve(f"a{s}").kind for s in (".csv", ".prom", ".txt", ".om")] == [
        "csv", "exposition", "exposition", "exposition"]


@pytest.mark.parametrize("bad", ["data.xlsx", "ftp://host/x", "", "metrics", 42])
def test_unknown_source_lists_accepted_forms(bad):
    with pytest.raises(SourceError) as e:
        sources.load(bad)
    msg = str(e.value)
    assert "'sample'" in msg and ".parquet" in msg and "http://127.0.0.1:9090" in msg


def test_host_port_without_scheme_gets_a_hint():
    with pytest.raises(SourceError, match=r"did you mean http://localhost:9090\?"):
        sources.load("localhost:9090")


# --------------------------------------------------------------------------- files and sample


def test_sample_equals_written_frame(home, frame):
    assert sources.load("sample").equals(frame)


def test_sample_missing_is_source_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DWCPKIT_HOME", str(tmp_path))
    with pytest.raises(SourceError, match="sample-data"):
        sources.load("sample")


def test_csv_and_parquet_sources_round_trip(tmp_path, frame):
    write_csv(frame, tmp_path / "t.csv")
    write_parquet(frame, tmp_path / "t.parquet")
    assert sources.load(str(tmp_path / "t.csv")).equals(frame)
    assert sources.load(tmp_path / "t.parquet").equals(frame)


def test_missing_file_source(tmp_path):
    for name in ("nope.csv", "nope.parquet", "nope.prom"):
        with pytest.raises(SourceError, match="no such") as e:
            sources.load(str(tmp_path / name))
        assert name in str(e.value)


def test_metric_filter_is_exact_and_expands_histograms(home, frame):
    f = sources.load("sample", metrics=[HIST, "dwcp_v3_active_streams"])
    assert set(f["metric"].unique()) == {HIST + "_bucket", HIST + "_sum", HIST + "_count", "dwcp_v3_active_streams"}
    expected = frame.filter(pl.col("metric").str.starts_with(HIST) | (pl.col("metric") == "dwcp_v3_active_streams"))
    expected = expected.drop("node_id")  # all null after filtering
    assert f.equals(expected)


def test_unknown_family_with_bucket_series_expands_but_prefix_does_not(home):
    f = sources.load("sample", metrics=["custom_hist"])
    assert sorted(f["metric"].unique()) == ["custom_hist_bucket", "custom_hist_count"]
    g = sources.load("sample", metrics="dwcp_v3_byzantine_detections_total")
    assert g["metric"].unique().to_list() == ["dwcp_v3_byzantine_detections_total"]
    assert g.columns == ["timestamp", "metric", "value", "node_id", "region"]


def test_window_is_inclusive_and_exact(home, frame):
    start, end = T + 2 * MIN, T + 5 * MIN
    f = sources.load("sample", start="2024-05-01T00:02:00Z", end=end / 1000)
    ts = f["timestamp"].dt.epoch("ms")
    assert ts.min() == start and ts.max() == end
    expected = frame.filter(pl.col("timestamp").dt.epoch("ms").is_between(start, end))
    assert f.equals(expected)
    assert sorted(ts.unique()) == [T + k * MIN for k in range(2, 6)]


def test_empty_selection_is_empty_frame_not_error(home):
    f = sources.load("sample", metrics=["no_such_metric"])
    assert f.equals(empty_frame())
    g = sources.load("sample", start="2030-01-01T00:00:00Z")
    assert g.height == 0 and g.columns == ["timestamp", "metric", "value"]


def test_bad_window_parameters(home):
    with pytest.raises(ParameterError, match="before start"):
        sources.load("sample", start="2024-05-01T01:00:00Z", end="2024-05-01T00:00:00Z")
    with pytest.raises(ParameterError, match="offset"):
        sources.load("sample", start="2024-05-01T01:00:00")


def test_exposition_files_round_trip_and_untimed_scrapes_take_the_file_time(tmp_path, frame):
    import os

    from dwcpkit.telemetry import exposition

    timed = tmp_path / "timed.prom"
    exposition.write_file(frame, timed)
    assert sources.load(str(timed)).equals(frame)

    scrape = tmp_path / "scrape.prom"
    scrape.write_text('# TYPE dwcp_v3_active_streams gauge\ndwcp_v3_active_streams{region="eu"} 12\n')
    os.utime(scrape, (1_700_000_000, 1_700_000_000))
    f = sources.load(str(scrape))
    assert f["timestamp"].dt.epoch("ms").to_list() == [1_700_000_000_000]
    assert f["value"].to_list() == [12.0] and f["region"].to_list() == ["eu"]


def test_describe(home, tmp_path):
    assert sources.describe("sample") == "sample data (data/telemetry.parquet, 9 min, 14 series)"  # 2 regions x 5 + 1 + 3
    assert sources.describe("http://127.0.0.1:9090").startswith("Prometheus at http://127.0.0.1:9090")
    assert "missing" in sources.describe(str(tmp_path / "none.csv"))


# --------------------------------------------------------------------------- Prometheus


def test_prometheus_source_one_query_per_series_name(frame):
    with FakeProm(frame) as prom:
        f = sources.load(prom.url, metrics=[HIST, "dwcp_v3_active_streams"],
                         start="2024-05-01T00:00:00Z", end="2024-05-01T00:09:00Z", step="1m")
        queried = [q["query"] for q in prom.queries]
        steps = {q["step"] for q in prom.queries}
    assert queried == ['{__name__="%s"}' % n for n in
                       (HIST + "_bucket", HIST + "_sum", HIST + "_count", "dwcp_v3_active_streams")]
    assert steps == {"60"}
    expected = frame.filter(pl.col("metric").str.starts_with(HIST) | (pl.col("metric") == "dwcp_v3_active_streams"))
    assert f.equals(expected.drop("node_id"))


def test_prometheus_unknown_empty_name_tries_histogram_series(frame):
    with FakeProm(frame) as prom:
        f = sources.load(prom.url, metrics=["custom_hist"], start=T / 1000, end=T / 1000 + 600)
        queried = [q["query"] for q in prom.queries]
    assert queried == ['{__name__="custom_hist%s"}' % s for s in ("", "_bucket", "_sum", "_count")]
    assert sorted(f["metric"].unique()) == ["custom_hist_bucket", "custom_hist_count"]


def test_prometheus_default_window_is_last_6h(frame):
    with FakeProm(frame) as prom:
        before = time.time()
        f = sources.load(prom.url, metrics=["dwcp_v3_active_streams"])
        q = prom.queries[0]
    end, start = float(q["end"]), float(q["start"])
    assert end - start == 6 * 3600
    assert before - 2 <= end <= time.time() + 1
    assert f.equals(empty_frame())  # the fake's data is from 2024


def test_prometheus_unreachable_source():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(PrometheusError, match=f"is Prometheus running at http://127.0.0.1:{port}"):
        sources.load(f"http://127.0.0.1:{port}", metrics=["up"], timeout=1)


# --------------------------------------------------------------------------- incidents


def test_load_incidents_sample(home):
    inc = sources.load_incidents()
    assert inc.columns == list(sources.INCIDENT_COLUMNS)
    assert inc.schema["start"] == TIMESTAMP_DTYPE and inc.schema["end"] == TIMESTAMP_DTYPE
    assert inc["incident_id"].to_list() == ["INC-1", "INC-2"]  # sorted by start
    assert inc["start"].dt.epoch("ms").to_list() == [T + MIN, T + 5 * MIN]
    assert inc["end"].dt.epoch("ms").to_list() == [T + 3 * MIN, None]
    assert inc["description"].to_list() == ["slow WAN", "node n1 lies, twice"]
    assert inc["node_id"].to_list() == [None, "n1"]


def test_load_incidents_other_sources_are_empty(tmp_path):
    for src in ("http://127.0.0.1:9090", str(tmp_path / "x.parquet")):
        inc = sources.load_incidents(src)
        assert inc.height == 0 and inc.columns == list(sources.INCIDENT_COLUMNS)
        assert inc.schema["start"] == TIMESTAMP_DTYPE


def test_load_incidents_errors(home):
    p = home / "data" / "incidents.csv"
    p.write_text("incident_id,kind,start,end,region,component,node_id,description\n"
                 "INC-1,latency,2024-05-01T00:01:00Z,,us-east,amst,,x\n"
                 "INC-2,latency,soon,,us-east,amst,,x\n")
    with pytest.raises(ParseError, match="column start") as e:
        sources.load_incidents()
    assert e.value.line == 3
    p.write_text("incident_id,kind,start\nINC-1,latency,2024-05-01T00:01:00Z\n")
    with pytest.raises(ParseError, match="missing column") as e:
        sources.load_incidents()
    assert e.value.line == 1
    p.unlink()
    with pytest.raises(SourceError, match="incident table not found"):
        sources.load_incidents()



def test_prometheus_family_and_its_series_are_queried_once(frame):
    """Asking for a histogram family and one of its own series must not duplicate samples."""
    with FakeProm(frame) as prom:
        f = sources.load(prom.url, metrics=[HIST, HIST + "_bucket"], start="2024-05-01T00:00:00Z",
                         end="2024-05-01T00:09:00Z", step="1m")
        queried = [q["query"] for q in prom.queries]
    assert len(queried) == len(set(queried)) == 3
    assert f.height > 0 and f.unique(subset=["timestamp", *[c for c in f.columns if c != "value"]]).height == f.height
