"""Tests for dwcpkit.telemetry.prometheus: API parsing and the urllib client against a local fake."""

from __future__ import annotations

import json
import logging
import math
import socket
import time
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from fakeprom import FakeHttpServer

from dwcpkit.errors import ParameterError, ParseError, PrometheusError, SourceError
from dwcpkit.telemetry.prometheus import (
    PrometheusClient,
    frame_from_api,
    parse_response,
    parse_step,
    parse_time,
    selector,
)
from dwcpkit.telemetry.schema import TIMESTAMP_DTYPE, from_rows

T0 = 1_700_000_000  # seconds


def ok(result_type, result, **extra):
    return {"status": "success", "data": {"resultType": result_type, "result": result}, **extra}


VECTOR = ok("vector", [
    {"metric": {"__name__": "up", "job": "node", "instance": "a:9100"}, "value": [T0 + 0.123, "1"]},
    {"metric": {"__name__": "up", "job": "prom"}, "value": [T0 + 0.123, "0"]},
])
MATRIX = ok("matrix", [
    {"metric": {"__name__": "x_total", "region": "eu"},
     "values": [[T0, "1"], [T0 + 15, "NaN"], [T0 + 30, "+Inf"], [T0 + 45, "-Inf"]]},
])
SCALAR = ok("scalar", [T0, "42.5"])
ERROR = {"status": "error", "errorType": "bad_data", "error": 'parse error at char 4: unexpected "}"'}


# --------------------------------------------------------------------------- parsing


def test_vector_to_canonical_frame():
    f = frame_from_api(VECTOR)
    expected = from_rows([
        (T0 * 1000 + 123, "up", 1.0, {"job": "node", "instance": "a:9100"}),
        (T0 * 1000 + 123, "up", 0.0, {"job": "prom"}),
    ])
    assert f.equals(expected)
    assert f.columns == ["timestamp", "metric", "value", "instance", "job"]
    assert f.schema["timestamp"] == TIMESTAMP_DTYPE


def test_matrix_special_values_and_ms_timestamps():
    f = frame_from_api(json.dumps(MATRIX).encode())
    assert f["timestamp"].dt.epoch("ms").to_list() == [T0 * 1000 + k * 15000 for k in range(4)]
    v = f["value"].to_list()
    assert v[0] == 1.0 and math.isnan(v[1]) and v[2] == math.inf and v[3] == -math.inf
    assert f["region"].to_list() == ["eu"] * 4


def test_scalar_and_string_results_use_name():
    f = frame_from_api(SCALAR, name="answer")
    assert f.columns == ["timestamp", "metric", "value"]
    assert f.row(0) == (datetime.fromtimestamp(T0, timezone.utc), "answer", 42.5)
    s = frame_from_api(ok("string", [T0, "7"]))
    assert s["metric"].to_list() == ["value"] and s["value"].to_list() == [7.0]
    with pytest.raises(PrometheusError, match="not numeric"):
        frame_from_api(ok("string", [T0, "hello"]))


def test_series_without_name_get_name_keyword_and_labels_union():
    body = ok("vector", [
        {"metric": {"job": "a"}, "value": [T0, "0.5"]},
        {"metric": {"code": "500"}, "value": [T0, "2"]},
    ])
    f = frame_from_api(body, name="rate_x")
    assert f["metric"].to_list() == ["rate_x", "rate_x"]
    assert f.select("code", "job").rows() == [("500", None), (None, "a")]
    assert frame_from_api(body)["metric"].unique().to_list() == ["value"]


def test_empty_result_is_empty_frame():
    f = frame_from_api(ok("matrix", []))
    assert f.height == 0 and f.columns == ["timestamp", "metric", "value"]


def test_error_body_quotes_type_and_message():
    with pytest.raises(PrometheusError) as e:
        frame_from_api(ERROR, source="http://x/api")
    assert "bad_data" in str(e.value) and "parse error at char 4" in str(e.value)
    assert isinstance(e.value, SourceError) and e.value.exit_code == 3


def test_malformed_bodies():
    with pytest.raises(ParseError, match="not JSON") as e:
        frame_from_api('{"status": "success",\n "data": [', source="resp.json")
    assert e.value.path == "resp.json" and e.value.line == 2
    with pytest.raises(ParseError, match="JSON object"):
        frame_from_api("[1, 2]")
    with pytest.raises(PrometheusError, match="status"):
        frame_from_api({"data": {}})
    with pytest.raises(PrometheusError, match="resultType"):
        frame_from_api(ok("streams", []))
    with pytest.raises(PrometheusError, match="data.result"):
        frame_from_api({"status": "success", "data": {"resultType": "vector"}})
    with pytest.raises(PrometheusError, match="not a number"):
        frame_from_api(ok("vector", [{"metric": {}, "value": [T0, "abc"]}]))
    with pytest.raises(PrometheusError, match="pair"):
        frame_from_api(ok("matrix", [{"metric": {}, "values": [[T0]]}]))
    with pytest.raises(PrometheusError, match="native-histogram"):
        frame_from_api(ok("vector", [{"metric": {}, "histogram": [T0, {}]}]))
    with pytest.raises(PrometheusError, match="collides"):
        frame_from_api(ok("vector", [{"metric": {"value": "x"}, "value": [T0, "1"]}]))


def test_warnings_returned_and_logged(caplog):
    body = ok("scalar", [T0, "1"], warnings=["remote read failed"], infos=["info 1"])
    r = parse_response(body)
    assert r.result_type == "scalar" and r.warnings == ("remote read failed",) and r.infos == ("info 1",)
    with caplog.at_level(logging.WARNING, logger="dwcpkit.telemetry.prometheus"):
        frame_from_api(body, source="src")
    assert "remote read failed" in caplog.text


def test_parse_time_forms():
    expect = 1_704_067_200_000
    assert parse_time("2024-01-01T00:00:00Z") == expect
    assert parse_time("2024-01-01T02:00:00+02:00") == expect
    assert parse_time(datetime(2024, 1, 1, tzinfo=timezone.utc)) == expect
    assert parse_time(1_704_067_200) == expect
    assert parse_time("1704067200.25") == expect + 250
    for bad, msg in [(datetime(2024, 1, 1), "naive"), ("2024-01-01T00:00:00", "offset"),
                     ("yesterday", "not a time"), (1_704_067_200_000, "milliseconds"), (True, "not a time")]:
        with pytest.raises(ParameterError, match=msg):
            parse_time(bad)


def test_parse_step_forms():
    assert parse_step("15s") == 15_000
    assert parse_step("1m") == 60_000
    assert parse_step("1h30m") == 5_400_000
    assert parse_step(0.5) == 500
    assert parse_step("60") == 60_000
    assert parse_step(timedelta(minutes=2)) == 120_000
    for bad in ["1x", "m", "", 0, -5, "1m junk", None]:
        with pytest.raises(ParameterError):
            parse_step(bad)


def test_selector_validates_names():
    assert selector("dwcp_v3_active_streams") == '{__name__="dwcp_v3_active_streams"}'
    with pytest.raises(ParameterError, match="metric name"):
        selector('x"} or vector(1')


# --------------------------------------------------------------------------- fake server


class FakePrometheus(FakeHttpServer):
    """A tiny Prometheus lookalike on 127.0.0.1 with an ephemeral port.

    ``query_range`` serves series ``x{job="a"}`` with value = evaluation time (s), and refuses
    more than ``limit`` points like Prometheus does; ``overlap`` makes it also return the point
    one step before ``start`` (so chunk boundaries overlap and must be deduplicated).
    """

    def __init__(self, limit=11_000, overlap=False):
        super().__init__()
        self.limit = limit
        self.overlap = overlap
        self.ready_status = 200
        self.warnings: list[str] = []

    def route(self, path, params):
        js = "application/json"
        if path == "/-/ready":
            return self.ready_status, b"Prometheus Server is Ready.\n", "text/plain"
        q = params.get("query", "")
        if path == "/api/v1/query":
            if q == "error":
                return 400, ERROR, js
            if q == "scalar":
                return 200, SCALAR, js
            if q.startswith("long"):
                return 200, ok("scalar", [T0, str(len(q))]), js
            return 200, VECTOR, js
        if path == "/api/v1/query_range":
            start, end, step = float(params["start"]), float(params["end"]), float(params["step"])
            if (end - start) / step > self.limit:
                return 400, {"status": "error", "errorType": "bad_data",
                             "error": "exceeded maximum resolution of 11,000 points per timeseries"}, js
            n = int(round((end - start) / step)) + 1
            first = -1 if self.overlap and start - step >= 0 else 0
            values = [[start + k * step, repr(start + k * step)] for k in range(first, n)]
            return 200, ok("matrix", [{"metric": {"__name__": "x", "job": "a"}, "values": values}],
                           **({"warnings": self.warnings} if self.warnings else {})), js
        if path == "/html/api/v1/query":
            return 200, b"<html>hello</html>", "text/html"
        return 404, b"404 page not found\n", "text/plain"

@pytest.fixture
def fake():
    with FakePrometheus() as f:
        yield f


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------- client


def test_query_vector_and_scalar(fake):
    c = PrometheusClient(fake.url + "/", timeout=5)
    assert c.base_url == fake.url
    assert frame_from_api(VECTOR).equals(c.query("up", time="2023-11-14T22:13:20Z"))
    method, path, params, _ = fake.requests[-1]
    assert (method, path, params["query"], params["time"]) == ("GET", "/api/v1/query", "up", str(T0))
    assert c.query("scalar", name="s")["metric"].to_list() == ["s"]


def test_query_range_matrix_and_series_range(fake):
    c = PrometheusClient(fake.url, timeout=5)
    f = c.query_range("x", T0, T0 + 300, "1m")
    assert f["timestamp"].dt.epoch("ms").to_list() == [(T0 + 60 * k) * 1000 for k in range(6)]
    assert f["value"].to_list() == [float(T0 + 60 * k) for k in range(6)]
    assert fake.requests[-1][2]["step"] == "60"
    g = c.series_range("x", datetime.fromtimestamp(T0, timezone.utc), "2023-11-14T22:18:20Z", 60)
    assert g.equals(f)
    assert fake.requests[-1][2]["query"] == '{__name__="x"}'


def test_error_body_over_http(fake):
    c = PrometheusClient(fake.url, timeout=5)
    with pytest.raises(PrometheusError) as e:
        c.query("error")
    msg = str(e.value)
    assert "HTTP 400" in msg and "bad_data" in msg and "parse error at char 4" in msg


def test_http_error_without_json_and_non_json_answer(fake):
    with pytest.raises(PrometheusError, match="HTTP 404"):
        PrometheusClient(fake.url + "/nope", timeout=5).query("up")
    with pytest.raises(ParseError, match="not JSON"):
        PrometheusClient(fake.url + "/html", timeout=5).query("up")


def test_long_query_is_posted(fake):
    c = PrometheusClient(fake.url, timeout=5)
    expr = "long" + "x" * 5000
    f = c.query(expr)
    assert f["value"].to_list() == [float(len(expr))]
    assert fake.requests[-1][0] == "POST"


def test_headers_sent_but_not_shown(fake):
    c = PrometheusClient(fake.url, timeout=5, headers={"Authorization": "Bearer s3cret"})
    c.query("up")
    assert fake.requests[-1][3].get("Authorization") == "Bearer s3cret"
    assert "s3cret" not in repr(c)
    with pytest.raises(PrometheusError) as e:
        c.query("error")
    assert "s3cret" not in str(e.value)


def test_warnings_kept_on_client(fake, caplog):
    fake.warnings = ["partial result"]
    c = PrometheusClient(fake.url, timeout=5)
    with caplog.at_level(logging.WARNING, logger="dwcpkit.telemetry.prometheus"):
        c.query_range("x", T0, T0 + 60, 60)
    assert c.last_warnings == ("partial result",)
    assert "partial result" in caplog.text


def test_ready(fake):
    assert PrometheusClient(fake.url, timeout=5).ready() is True
    fake.ready_status = 503
    assert PrometheusClient(fake.url, timeout=5).ready() is False
    assert PrometheusClient(f"http://127.0.0.1:{_free_port()}", timeout=1).ready() is False


@pytest.mark.parametrize("overlap", [False, True])
def test_long_range_is_chunked_and_deduplicated(overlap):
    with FakePrometheus(limit=10, overlap=overlap) as fake:
        c = PrometheusClient(fake.url, timeout=5, max_points=10)
        # 36 evaluation steps: 4 chunks of at most 10 points on the grid T0 + 15 k.
        f = c.query_range("x", T0, T0 + 35 * 15, "15s")
        ranges = [(float(p["start"]), float(p["end"])) for _, path, p, _ in fake.requests
                  if path == "/api/v1/query_range"]
    assert len(ranges) == 4
    assert ranges[0] == (T0, T0 + 9 * 15) and ranges[1][0] == T0 + 10 * 15
    assert all((e - s) / 15 <= 10 for s, e in ranges)
    ts = f["timestamp"].dt.epoch("ms").to_list()
    assert ts == [(T0 + 15 * k) * 1000 for k in range(36)]
    assert f["value"].to_list() == [float(T0 + 15 * k) for k in range(36)]


def test_unchunked_range_over_limit_is_refused_by_server():
    # Proves the fake enforces the limit, so the chunking test above is meaningful.
    with FakePrometheus(limit=10) as fake:
        c = PrometheusClient(fake.url, timeout=5, max_points=100)
        with pytest.raises(PrometheusError, match="11,000 points"):
            c.query_range("x", T0, T0 + 35 * 15, "15s")


def test_bad_range_parameters(fake):
    c = PrometheusClient(fake.url, timeout=5)
    with pytest.raises(ParameterError, match="before start"):
        c.query_range("x", T0 + 60, T0, 60)
    with pytest.raises(ParameterError, match="raise the step"):
        c.query_range("x", 0, T0, "1ms")
    with pytest.raises(ParameterError):
        c.query("")


def test_bad_base_url():
    with pytest.raises(PrometheusError, match="base URL"):
        PrometheusClient("127.0.0.1:9090")
    assert PrometheusClient("http://h:9090/api/v1/").base_url == "http://h:9090"


def test_connection_refused_is_explained():
    url = f"http://127.0.0.1:{_free_port()}"
    c = PrometheusClient(url, timeout=2)
    with pytest.raises(PrometheusError) as e:
        c.query("up")
    msg = str(e.value)
    assert "connection refused" in msg and url in msg and "`source` parameter" in msg


def test_unresolvable_host_is_explained(monkeypatch):
    # No real DNS lookup: the resolver is replaced by one that fails like a missing host.
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    c = PrometheusClient("http://no-such-host.invalid:9090", timeout=2)
    with pytest.raises(PrometheusError, match="cannot resolve host 'no-such-host.invalid'"):
        c.query("up")


def test_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections into the backlog, never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        t0 = time.monotonic()
        with pytest.raises(PrometheusError, match=r"no answer within 0.5 s") as e:
            PrometheusClient(url, timeout=0.5).query("up")
        assert url in str(e.value)
        assert time.monotonic() - t0 < 5  # hang guard, not a speed check
    finally:
        listener.close()


def test_query_result_types_are_polars_frames(fake):
    f = PrometheusClient(fake.url, timeout=5).query("up")
    assert isinstance(f, pl.DataFrame) and f.height == 2


def test_fast_and_fallback_point_parsing_agree():
    # String values take the vectorised path; JSON numbers (not what Prometheus sends, but
    # accepted) take the per-point path. Both must give the same frame.
    strings = ok("matrix", [{"metric": {"__name__": "m"}, "values": [[T0 + 0.0005, "1.5"], [T0 + 1, "NaN"]]}])
    numbers = ok("matrix", [{"metric": {"__name__": "m"}, "values": [[T0 + 0.0005, 1.5], [T0 + 1, "NaN"]]}])
    a, b = frame_from_api(strings), frame_from_api(numbers)
    assert a.equals(b)
    assert a["timestamp"].dt.epoch("ms").to_list() == [T0 * 1000, T0 * 1000 + 1000]
