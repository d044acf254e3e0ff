"""Tests of dwcpkit.telemetry.exposition (Prometheus text / OpenMetrics) and its benchmark."""

from __future__ import annotations

import math
import random
import shutil
import subprocess

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwcpkit.bench import telemetry as bench
from dwcpkit.errors import ParameterError, ParseError, SchemaError, SourceError
from dwcpkit.telemetry import exposition as ex
from dwcpkit.telemetry.exposition import format_float, parse, read, write, write_file
from dwcpkit.telemetry.names import LATENCY_BUCKETS
from dwcpkit.telemetry.schema import CORE_COLUMNS, from_rows

TS = 1_700_000_000_000


def careful(text: str, **kw) -> pl.DataFrame:
    """The per-line reference parser on every sample line."""
    return ex._parse(text, path=kw.get("path"), default_timestamp_ms=kw.get("default_timestamp_ms"), careful=True)


def outcome(fn, text, **kw):
    try:
        return ("ok", fn(text, **kw))
    except ParseError as e:
        return ("error", e.line, str(e))


def same_outcome(a, b) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "ok":
        return a[1].equals(b[1])
    return a[1:] == b[1:]


# ---------------------------------------------------------------------------------------------
# golden examples

PROM_DOC = r"""# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# Finally a summary, which has a complex representation, too:
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.05"} 3272
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.9"} 9001
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"""


def _one(frame: pl.DataFrame, metric: str, **labels) -> dict:
    sel = frame.filter(pl.col("metric") == metric)
    for k, v in labels.items():
        sel = sel.filter(pl.col(k) == v)
    assert sel.height == 1, (metric, labels, sel)
    return sel.row(0, named=True)


def test_prometheus_docs_text_example():
    f = parse(PROM_DOC, default_timestamp_ms=TS)
    assert f.height == 20
    assert f.columns[:3] == list(CORE_COLUMNS)
    assert f.columns[3:] == sorted(f.columns[3:])
    r = _one(f, "http_requests_total", code="400")
    assert r["value"] == 3.0 and r["method"] == "post"
    assert r["timestamp"].timestamp() == 1395066363.0
    r = _one(f, "msdos_file_access_time_seconds")
    assert r["path"] == "C:\\DIR\\FILE.TXT"
    assert r["error"] == 'Cannot find file:\n"FILE.TXT"'
    assert r["value"] == 1.458255915e9
    r = _one(f, "something_weird")
    assert r["value"] == math.inf
    assert int(r["timestamp"].timestamp() * 1000) == -3982045
    assert _one(f, "metric_without_timestamp_and_labels")["timestamp"].timestamp() * 1000 == TS
    # le normalised the way Prometheus 3 does; +Inf kept
    les = f.filter(pl.col("metric") == "http_request_duration_seconds_bucket")["le"].to_list()
    assert sorted(les) == sorted(["0.05", "0.1", "0.2", "0.5", "1.0", "+Inf"])
    qs = f.filter(pl.col("metric") == "rpc_duration_seconds")["quantile"].to_list()
    assert sorted(qs) == ["0.01", "0.05", "0.5", "0.9", "0.99"]
    assert _one(f, "rpc_duration_seconds_sum")["value"] == 1.7560473e07
    assert f.equals(careful(PROM_DOC, default_timestamp_ms=TS))


OM_SUMMARY = """# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path="/api/v1",method="GET"} 9036.32
acme_http_router_request_seconds_count{path="/api/v1",method="GET"} 807283.0
acme_http_router_request_seconds_created{path="/api/v1",method="GET"} 1605281325.0
acme_http_router_request_seconds_sum{path="/api/v2",method="POST"} 479.3
acme_http_router_request_seconds_count{path="/api/v2",method="POST"} 34.0
acme_http_router_request_seconds_created{path="/api/v2",method="POST"} 1605281325.0
# TYPE go_goroutines gauge
# HELP go_goroutines Number of goroutines that currently exist.
go_goroutines 69
# TYPE process_cpu_seconds counter
# UNIT process_cpu_seconds seconds
# HELP process_cpu_seconds Total user and system CPU time spent in seconds.
process_cpu_seconds_total 4.20072246e+06
# EOF
"""


def test_openmetrics_spec_example_drops_created():
    f = parse(OM_SUMMARY, default_timestamp_ms=TS)
    assert set(f["metric"]) == {
        "acme_http_router_request_seconds_sum",
        "acme_http_router_request_seconds_count",
        "go_goroutines",
        "process_cpu_seconds_total",
    }
    assert f.height == 6
    assert _one(f, "process_cpu_seconds_total")["value"] == 4.20072246e06
    assert _one(f, "acme_http_router_request_seconds_count", path="/api/v2")["value"] == 34.0
    assert f.equals(careful(OM_SUMMARY, default_timestamp_ms=TS))


OM_HISTOGRAM = """# TYPE foo histogram
foo_bucket{le="0.01"} 0 1520879607.789
foo_bucket{le="0.1"} 8 1520879607.789 # {} 0.054
foo_bucket{le="1"} 11 1520879607.789 # {trace_id="KOO5S4vxi0o"} 0.67
foo_bucket{le="10"} 17 1520879607.789 # {trace_id="oHg5SJYRHA0"} 9.8 1520879607.789
foo_bucket{le="+Inf"} 17 1520879607.789
foo_count 17 1520879607.789
foo_sum 324789.3 1520879607.789
foo_created 1520430000.123 1520879607.789
# TYPE bar counter
bar_total 17.0 1520879607 # {trace_id="KOO5S4vxi0o"} 0.67 1520879602
# EOF
"""


def test_openmetrics_histogram_exemplars_and_float_timestamps():
    f = parse(OM_HISTOGRAM)  # every sample has a timestamp: no default needed
    assert f.height == 8
    assert set(f["timestamp"].dt.epoch("ms")) == {1520879607789, 1520879607000}
    assert sorted(f.filter(pl.col("metric") == "foo_bucket")["le"]) == sorted(["0.01", "0.1", "1.0", "10.0", "+Inf"])
    assert "foo_created" not in set(f["metric"])
    assert "trace_id" not in f.columns  # exemplar labels are dropped
    assert _one(f, "bar_total")["value"] == 17.0
    assert f.equals(careful(OM_HISTOGRAM))


def test_openmetrics_canonical_numbers_and_other_types():
    text = (
        "# TYPE foo histogram\n"
        + "".join(f'foo_bucket{{le="{le}"}} {i}\n' for i, le in enumerate(
            ["0.0", "1e-05", "0.0001", "0.1", "1.0", "10.0", "100000.0", "1e+06", "1e+23", "1.1e+23", "+Inf"]))
        + "foo_count 17\nfoo_sum 324789.3\n"
        "# TYPE st stateset\n"
        'st{entity="controller",st="a"} 1.0\nst{entity="controller",st="bb"} 0.0\n'
        "# TYPE build info\n"
        'build_info{name="prettyname",version="8.2.7"} 1.0\n'
        "# TYPE temp gaugehistogram\n"
        'temp_bucket{le="1"} 3\ntemp_bucket{le="+Inf"} 4\ntemp_gcount 4\ntemp_gsum 2.5\n'
        "# TYPE thing unknown\nthing 7\n"
        "# EOF"
    )
    f = parse(text, default_timestamp_ms=0)
    les = f.filter(pl.col("metric") == "foo_bucket")["le"].to_list()
    # already canonical: unchanged by normalisation
    assert sorted(les) == sorted(["0.0", "1e-05", "0.0001", "0.1", "1.0", "10.0", "100000.0", "1e+06", "1e+23", "1.1e+23", "+Inf"])
    assert _one(f, "st", st="bb")["value"] == 0.0
    assert _one(f, "build_info")["version"] == "8.2.7"
    # Prometheus does not normalise gaugehistogram buckets
    assert sorted(f.filter(pl.col("metric") == "temp_bucket")["le"]) == ["+Inf", "1"]
    assert _one(f, "thing")["value"] == 7.0
    assert f.equals(careful(text, default_timestamp_ms=0))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "0.0"), (-0.0, "0.0"), (1, "1.0"), (-1, "-1.0"), (1e-05, "1e-05"), (0.0001, "0.0001"),
        (0.1, "0.1"), (10, "10.0"), (100000, "100000.0"), (123456, "123456.0"), (1e6, "1e+06"),
        (1234567, "1.234567e+06"), (1e23, "1e+23"), (1.1e23, "1.1e+23"), (2.5e-7, "2.5e-07"),
        (-0.25, "-0.25"), (1e100, "1e+100"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN"),
    ],
)
def test_format_float_matches_prometheus(value, expected):
    assert format_float(value) == expected


@given(st.floats(allow_nan=False))
def test_format_float_round_trips(x):
    assert float(format_float(x)) == x or (x == 0 and float(format_float(x)) == 0)


def test_le_normalisation_only_in_histograms_and_quantile_in_summaries():
    text = (
        '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'
        '# TYPE s summary\ns{quantile="1"} 2\n'
        'g{le="1",quantile="1"} 3\n'
    )
    f = parse(text, default_timestamp_ms=0)
    assert _one(f, "h_bucket", le="1.0")["value"] == 1.0
    assert _one(f, "s")["quantile"] == "1.0"
    g = _one(f, "g")
    assert (g["le"], g["quantile"]) == ("1", "1")


def test_label_values_with_separators_spaces_and_unicode():
    text = 'm{a="x,y}=z",b=" sp ace ",c="é#{}"} 1 5\n'
    f = parse(text)
    r = _one(f, "m")
    assert (r["a"], r["b"], r["c"]) == ("x,y}=z", " sp ace ", "é#{}")
    assert f.equals(careful(text))


def test_empty_label_value_is_no_label_and_unused_labels_get_no_column():
    f = parse('m{a="",b="x"} 1 5\nm{a="y"} 2 5\nn{z=""} 3 5\n')
    assert f.columns == ["timestamp", "metric", "value", "a", "b"]
    assert _one(f, "m", b="x")["a"] is None


def test_text_format_whitespace_trailing_comma_and_blank_lines():
    text = '  # a comment\n\nm { a = "1" , b="2", } \t 3 \t 7  \nn{} 4 8\n\tk 5\n#no space comment\n'
    f = parse(text, default_timestamp_ms=9)
    r = _one(f, "m")
    assert (r["a"], r["b"], r["value"]) == ("1", "2", 3.0)
    assert r["timestamp"].timestamp() * 1000 == 7
    assert _one(f, "n")["value"] == 4.0
    assert _one(f, "k")["timestamp"].timestamp() * 1000 == 9
    assert f.equals(careful(text, default_timestamp_ms=9))


def test_special_values_and_crlf():
    text = "a NaN 1\r\nb -Inf 1\r\nc +inf 1\r\nd 1e3 1\r\ne .5 1\r\nf -0 1\r\n"
    f = parse(text)
    vals = dict(zip(f["metric"], f["value"]))
    assert math.isnan(vals["a"]) and vals["b"] == -math.inf and vals["c"] == math.inf
    assert (vals["d"], vals["e"], vals["f"]) == (1000.0, 0.5, 0.0)


def test_empty_inputs():
    assert parse("").height == 0
    assert parse("# just a comment\n").height == 0
    assert parse("# EOF\n").height == 0
    assert parse("").equals(from_rows([]))


def test_bytes_input_and_reserved_words_as_label_names_are_fine():
    f = parse(b'm{val="1",ts="2",name="3"} 4 5\n')
    assert {"val", "ts", "name"} <= set(f.columns)


# ---------------------------------------------------------------------------------------------
# errors: the right line, and never a partial frame

ERRORS_TEXT = [
    ('ok 1 1\nfoo{a="1",a="2"} 1 1\n', 2, "duplicate label name 'a'"),
    ('ok 1 1\nfoo{a="b"}\n', 2, "missing sample value"),
    ("ok 1 1\nok 2 2\nfoo 1,5 1\n", 3, "invalid sample value '1,5'"),
    ("foo 1_000 1\n", 1, "invalid sample value"),
    ('ok 1 1\nfoo{a="b} 1 1\n', 2, "unclosed quote"),
    ('ok 1 1\nfoo{a="b" 1 1\n', 2, "unclosed '{'"),
    ('foo{a="b"\n', 1, "unclosed '{'"),
    ("ok 1 1\n1foo 1 1\n", 2, "invalid metric name"),
    ("foo-bar 1 1\n", 1, "unexpected '-' after 'foo'"),
    ('{a="b"} 1 1\n', 1, "missing metric name"),
    ('foo{1a="b"} 1 1\n', 1, "invalid label name"),
    ('foo{a=b} 1 1\n', 1, "must be a double-quoted string"),
    ('foo{a} 1 1\n', 1, "expected '=' after label name 'a'"),
    ("foo 1 1\n# TYPE foo gauge\n", 2, "TYPE line for foo comes after its samples (first sample on line 1)"),
    ('foo_bucket{le="1"} 1 1\n# TYPE foo histogram\n', 2, "after its samples"),
    ("# TYPE foo gauge\n# TYPE foo counter\nfoo 1 1\n", 2, "second TYPE line for foo"),
    ("# TYPE foo countr\nfoo 1 1\n", 1, "unknown metric type 'countr'"),
    ("# TYPE foo\nfoo 1 1\n", 1, "has no type"),
    ("# TYPE 9foo gauge\n", 1, "invalid metric name '9foo'"),
    ("# HELP foo a\n# HELP foo b\n", 2, "second HELP line"),
    ('foo{a="\\t"} 1 1\n', 1, "invalid escape sequence"),
    ("foo 1 1.5\n", 1, "invalid timestamp '1.5'"),
    ("foo 1 99999999999999999999\n", 1, "out of the 64-bit range"),
    ("foo 1 1 x\n", 1, "unexpected text after the timestamp"),
    ("foo 1e400 1\n", 1, "out of the range of a 64-bit float"),
    ('ok 1 1\nfoo{value="x"} 1 1\n', 2, "collides with the telemetry frame's 'value' column"),
    ('# TYPE h histogram\nh_bucket{le="1"} 1 1\nh_bucket{a="x"} 1 1\n', 3, "without an 'le' label"),
    ('# TYPE h histogram\nh_bucket{le="abc"} 1 1\n', 2, "le label value 'abc'"),
    ('# TYPE s summary\ns{quantile="half"} 1 1\n', 2, "quantile label value 'half'"),
    ("# TYPE h histogram\nh 1 1\n", 2, "does not fit the histogram family h"),
    ("# TYPE foo summary\n# TYPE foo_count gauge\n", 2, "foo_count is a sample of summary foo"),
    ("a 1 1\nb 2\nc 3\n", 2, "no timestamp: pass default_timestamp_ms"),
    # the first bad line wins, whichever check finds it
    ("foo 1 1\nbar{ 1 1\n# TYPE foo gauge\n", 2, "unclosed '{'"),
    ("foo 1 1\n# TYPE foo gauge\nok 1 1\nbar{ 1 1\n", 2, "after its samples"),
    ('ok 1 1\nfoo{a="1",a="2"} 1 1\nbar 1,5 1\n', 2, "duplicate label name"),
]

ERRORS_OM = [
    ("a 1\n\nb 2\n# EOF\n", 2, "blank line"),
    ("a 1\n# free comment\n# EOF\n", 2, "OpenMetrics allows only"),
    ("a 1\n# EOF\nb 2\n# EOF\n", 2, "'# EOF' before the end"),
    ("# TYPE foo gauge\n# UNIT foo seconds\nfoo 1\n# EOF\n", 2, "unit 'seconds' is not a suffix"),
    ("# TYPE foo counter\nfoo 1\n# EOF\n", 2, "does not fit the counter family foo: its samples are named foo_total, foo_created"),
    ("foo  1\n# EOF\n", 1, "missing sample value"),
    (" foo 1\n# EOF\n", 1, "must not start with whitespace"),
    ("foo 1 \n# EOF\n", 1, "invalid timestamp ''"),
    ("foo\t1\n# EOF\n", 1, "unexpected '\\t'"),
    ('foo_total 1 # {a="b"}\n# EOF\n', 1, "missing exemplar value"),
    ('foo_total 1 # {a="b"} x\n# EOF\n', 1, "invalid exemplar value 'x'"),
    ("foo 1 abc\n# EOF\n", 1, "invalid timestamp 'abc'"),
    ("foo 1 NaN\n# EOF\n", 1, "invalid timestamp 'NaN'"),
    ("foo 1\n# HELP foo late\n# EOF\n", 2, "metadata (# TYPE/# HELP/# UNIT) line for foo comes after its samples"),
    ("# TYPE foo untyped\n# EOF\n", 1, "unknown metric type 'untyped'"),
    ('foo{a="1", b="2"} 1\n# EOF\n', 1, "invalid label name"),
]


@pytest.mark.parametrize(("text", "line", "message"), ERRORS_TEXT + ERRORS_OM)
def test_errors_name_the_first_bad_line(text, line, message):
    for fn in (parse, careful):
        with pytest.raises(ParseError) as info:
            fn(text, path="m.prom", default_timestamp_ms=None if "no timestamp" in message else 0)
        err = info.value
        assert err.line == line, (fn, str(err))
        assert message in str(err), str(err)
        assert str(err).startswith(f"m.prom:{line}: ")
        assert err.path == "m.prom"


def test_missing_timestamp_error_without_path_names_line():
    with pytest.raises(ParseError, match=r"^line 2: sample has no timestamp"):
        parse("a 1 1\nb 2\n")


def test_bad_default_timestamp_type():
    with pytest.raises(ParameterError, match="default_timestamp_ms must be an int"):
        parse("a 1\n", default_timestamp_ms=1.5)  # type: ignore[arg-type]


def test_read_files(tmp_path):
    p = tmp_path / "m.prom"
    p.write_text(PROM_DOC)
    assert read(p, default_timestamp_ms=TS).equals(parse(PROM_DOC, default_timestamp_ms=TS))
    om = tmp_path / "m.om"
    om.write_text("a 1 5\n")
    with pytest.raises(ParseError, match="must end with a '# EOF' line") as info:
        read(om)
    assert info.value.path == str(om)
    bad = tmp_path / "bad.prom"
    bad.write_bytes(b"a 1 1\nb{x=\"\xff\"} 1 1\n")
    with pytest.raises(ParseError, match="not UTF-8") as info:
        read(bad)
    assert info.value.line == 2
    with pytest.raises(SourceError, match="no such file"):
        read(tmp_path / "missing.prom")
    broken = tmp_path / "broken.prom"
    broken.write_text("a 1 1\nb{ 1 1\n")
    with pytest.raises(ParseError) as info:
        read(broken)
    assert str(info.value).startswith(f"{broken}:2: ")


# ---------------------------------------------------------------------------------------------
# writer

def _latency_frame() -> pl.DataFrame:
    rows = []
    for t in (0, 15_000):
        for region in ("us-east", "eu-west"):
            c = 0
            for b in [*LATENCY_BUCKETS, math.inf]:
                c += 1
                rows.append((TS + t, "dwcp_v3_migration_latency_seconds_bucket", c, {"region": region, "version": "v3", "le": format_float(b)}))
            rows.append((TS + t, "dwcp_v3_migration_latency_seconds_sum", c * 0.5, {"region": region, "version": "v3"}))
            rows.append((TS + t, "dwcp_v3_migration_latency_seconds_count", c, {"region": region, "version": "v3"}))
            rows.append((TS + t + 500, "dwcp_v3_component_operations_total", 10 + t, {"region": region, "version": "v3", "component": "hde"}))
    return from_rows(rows)


def test_write_text_catalog_types_help_and_bucket_order():
    f = _latency_frame()
    text = write(f)
    lines = text.splitlines()
    assert "# TYPE dwcp_v3_migration_latency_seconds histogram" in lines
    assert "# TYPE dwcp_v3_component_operations_total counter" in lines
    assert "# HELP dwcp_v3_migration_latency_seconds Time to complete one VM migration." in lines
    assert lines.index("# TYPE dwcp_v3_migration_latency_seconds histogram") < next(
        i for i, x in enumerate(lines) if x.startswith("dwcp_v3_migration_latency_seconds_bucket"))
    # buckets of one series at one time in numeric le order, +Inf last
    eu = [x for x in lines if x.startswith("dwcp_v3_migration_latency_seconds_bucket") and "eu-west" in x
          and x.endswith(f" {TS}")]
    les = [x.split('le="')[1].split('"')[0] for x in eu]
    assert les == [format_float(b) for b in LATENCY_BUCKETS] + ["+Inf"]
    assert parse(text).equals(f)


def test_write_openmetrics_for_promtool():
    f = _latency_frame()
    text = write(f, openmetrics=True)
    lines = text.splitlines()
    assert lines[-1] == "# EOF" and text.endswith("# EOF\n")
    assert "# TYPE dwcp_v3_component_operations counter" in lines
    assert "# UNIT dwcp_v3_migration_latency_seconds seconds" in lines
    samples = [x for x in lines if not x.startswith("#")]
    ts = {x.rsplit(" ", 1)[1] for x in samples}
    assert ts == {"1700000000", "1700000015", "1700000000.5", "1700000015.5"}
    # every series is time-sorted
    seen: dict[str, float] = {}
    for x in samples:
        series, t = x.rsplit(" ", 2)[0], float(x.rsplit(" ", 1)[1])
        assert t > seen.get(series, -math.inf)
        seen[series] = t
    assert parse(text).equals(f)


def test_write_infers_types_and_escapes():
    f = from_rows([
        (5, "req_total", 1, {"path": 'a"b\\c\nd'}),
        (5, "lat_bucket", 1, {"le": "0.5"}),
        (5, "lat_bucket", 2, {"le": "+Inf"}),
        (5, "lat_sum", 1.5, {}),
        (5, "lat_count", 2, {}),
        (5, "rpc", 3, {"quantile": "0.5"}),
        (5, "rpc_count", 3, {}),
        (5, "temp", -1.5, {}),
        (5, "odd_bucket", 1, {"le": "1"}),  # not canonical: left untyped so it reads back unchanged
    ])
    text = write(f, help={"temp": "a \\ help\nline"})
    assert "# TYPE req_total counter" in text
    assert "# TYPE lat histogram" in text
    assert "# TYPE rpc summary" in text
    assert "# TYPE temp untyped" in text
    assert "# TYPE odd_bucket untyped" in text
    assert "# HELP temp a \\\\ help\\nline" in text
    assert 'req_total{path="a\\"b\\\\c\\nd"} 1.0 5' in text
    assert parse(text).equals(f)
    om = write(f, openmetrics=True)
    assert "# TYPE req counter" in om and "# TYPE temp unknown" in om
    assert parse(om).equals(f)


def test_write_types_override_and_errors():
    f = from_rows([(5, "jobs", 1, {}), (5, "x_total", 2, {})])
    assert "# TYPE jobs gauge" in write(f, types={"jobs": "gauge"})
    assert "# TYPE x_total gauge" in write(f, types={"x_total": "gauge"})
    assert "# TYPE x counter" in write(f, openmetrics=True, types={"x_total": "counter"})
    with pytest.raises(ParameterError, match="not a metric type"):
        write(f, types={"jobs": "speedometer"})
    with pytest.raises(ParameterError, match="cannot be written"):
        write(f, types={"jobs": "histogram"})
    bad = pl.DataFrame({"timestamp": [0], "metric": ["m"], "value": [1.0], "a-b": ["x"]})
    with pytest.raises(SchemaError, match="not valid Prometheus label names"):
        write(bad)
    with pytest.raises(SchemaError, match="not valid Prometheus metric names"):
        write(from_rows([(0, "bad name", 1, {})]))
    with pytest.raises(SchemaError):
        write(pl.DataFrame({"metric": ["m"]}))


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_output(tmp_path):
    """Prometheus' own parsers: backfill the OpenMetrics file, lint the text file."""
    f = _latency_frame()
    om = write_file(f, tmp_path / "x.om")
    run = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(om), str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    listing = subprocess.run(["promtool", "tsdb", "list", str(tmp_path / "data")],
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert sum(int(line.split()[4]) for line in listing.stdout.splitlines()[1:]) == f.height
    text = write(f.filter(pl.col("timestamp") == pl.col("timestamp").min()))
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_write_empty_and_write_file(tmp_path):
    assert write(from_rows([])) == ""
    assert write(from_rows([]), openmetrics=True) == "# EOF\n"
    f = _latency_frame()
    p = write_file(f, tmp_path / "x.om")
    assert p.read_text().endswith("# EOF\n")
    assert read(p).equals(f)
    q = write_file(f, tmp_path / "x.prom")
    assert "# EOF" not in q.read_text()
    assert read(q).equals(f)


def test_parse_write_parse_is_stable_on_the_docs_example():
    f = parse(PROM_DOC, default_timestamp_ms=TS)
    for om in (False, True):
        assert parse(write(f, openmetrics=om)).equals(f)


# ---------------------------------------------------------------------------------------------
# properties: round trip, fast path == careful path

_base = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,6}", fullmatch=True)
METRICS = st.builds(lambda b, s: b + s, _base, st.sampled_from(["", "", "_bucket", "_sum", "_count", "_total"]))
LABELS = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,4}", fullmatch=True).filter(lambda s: s not in CORE_COLUMNS)
CHARS = st.one_of(st.sampled_from(list('ab ,}{="\\\n#\t\r:é')), st.characters(codec="utf-8"))
VALUES = st.text(CHARS, min_size=1, max_size=8)
CANON = st.one_of(st.floats(allow_nan=False), st.sampled_from([0.5, 1.0, 10.0, math.inf])).map(format_float)


@st.composite
def frames(draw, openmetrics: bool = False, min_rows: int = 0) -> pl.DataFrame:
    metrics = draw(st.lists(METRICS, min_size=1, max_size=4, unique=True))
    if openmetrics:
        metrics = [m for m in metrics if not m.endswith("_created")] or ["m"]
    names = draw(st.lists(st.one_of(LABELS, st.sampled_from(["le", "quantile"])), max_size=4, unique=True))
    rows = []
    for _ in range(draw(st.integers(min_rows, 20))):
        labels = {}
        for n in names:
            if draw(st.booleans()):
                canonical = n in ("le", "quantile") and draw(st.booleans())
                labels[n] = draw(CANON if canonical else VALUES)
        rows.append((
            draw(st.integers(-(2**41), 2**42)),
            draw(st.sampled_from(metrics)),
            draw(st.floats()),
            labels,
        ))
    return from_rows(rows)


PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(frames())
def test_round_trip_text(f):
    assert parse(write(f)).equals(f)


@PROPS
@given(frames(openmetrics=True))
def test_round_trip_openmetrics(f):
    assert parse(write(f, openmetrics=True)).equals(f)


_NOISE = list(' \t"\\{},=#\n\r0e.+-_aZ:') + ["# {", "+Inf", "NaN", '="', "\\n", " # {a=\"b\"} 1"]


@st.composite
def mutated(draw, openmetrics: bool) -> str:
    text = write(draw(frames(openmetrics=openmetrics, min_rows=1)), openmetrics=openmetrics)
    if not openmetrics and draw(st.booleans()):  # also exercise the tolerant text-format syntax
        text = text.replace(" ", draw(st.sampled_from([" ", "  ", "\t", " \t"])))
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, max(0, len(text) - 1)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(_NOISE))
        if kind == "insert":
            text = text[:pos] + piece + text[pos:]
        elif kind == "delete":
            text = text[:pos] + text[pos + 1:]
        else:
            text = text[:pos] + piece + text[pos + 1:]
    return text


@settings(PROPS, max_examples=80)
@given(st.data())
def test_fast_path_equals_careful_path(data):
    om = data.draw(st.booleans())
    text = data.draw(mutated(om))
    default = data.draw(st.sampled_from([None, 0]))
    fast = outcome(parse, text, default_timestamp_ms=default)
    slow = outcome(careful, text, default_timestamp_ms=default)
    assert same_outcome(fast, slow), (text, fast, slow)


def test_fast_path_generic_route_equals_careful(monkeypatch):
    """Force the generic (non-template) vectorised route and compare on varied input."""
    rng = random.Random(7)
    lines = []
    for i in range(300):
        labels = ",".join(f'k{j}="v{rng.randint(0, 5)}"' for j in rng.sample(range(5), rng.randint(0, 4)))
        lines.append(f"m{rng.randint(0, 3)}{{{labels}}} {rng.random()} {i}")
    text = "\n".join(lines) + "\n"
    expected = careful(text)
    assert parse(text).equals(expected)
    monkeypatch.setattr(ex, "_MAX_NAME_GROUPS", 0)
    assert parse(text).equals(expected)
    monkeypatch.setattr(ex, "_MAX_NAME_GROUPS", 1024)
    monkeypatch.setattr(ex, "_MAX_TEMPLATES", 1)
    assert parse(text).equals(expected)
    bad = text.replace('k1="v1"', 'k1="v1",k1="v2"', 1)
    if bad != text:
        monkeypatch.setattr(ex, "_MAX_NAME_GROUPS", 0)
        assert same_outcome(outcome(parse, bad), outcome(careful, bad))


def _sample_set(frame: pl.DataFrame) -> list:
    labels = [c for c in frame.columns if c not in CORE_COLUMNS]
    rows = []
    for r in frame.iter_rows(named=True):
        v = r["value"]
        rows.append((r["metric"], tuple(sorted((k, r[k]) for k in labels if r[k] is not None)),
                     "NaN" if math.isnan(v) else v))
    return sorted(rows, key=repr)


def _client_set(text: str, openmetrics: bool) -> list:
    if openmetrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    rows = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if openmetrics and s.name.endswith("_created"):
                continue
            v = s.value
            rows.append((s.name, tuple(sorted((k, x) for k, x in s.labels.items() if x != "")),
                         "NaN" if math.isnan(v) else v))
    return sorted(rows, key=repr)


def test_agrees_with_prometheus_client_on_the_benchmark_exposition():
    text = bench.make_exposition(3_000)
    assert _sample_set(parse(text, default_timestamp_ms=0)) == _client_set(text, False)


@settings(PROPS, max_examples=25)
@given(st.data())
def test_agrees_with_prometheus_client_on_written_frames(data):
    """An independent parser reads what write() writes as parse() does (values, labels)."""
    om = data.draw(st.booleans())
    f = data.draw(frames(openmetrics=om, min_rows=1))
    # prometheus_client mis-orders negative OpenMetrics timestamps and rejects repeated samples
    f = f.filter(pl.col("timestamp").dt.epoch("ms") >= 0)
    f = f.unique(subset=[c for c in f.columns if c != "value"], keep="first", maintain_order=True)
    text = write(f, openmetrics=om)
    try:
        expected = _client_set(text, om)
    except ValueError:  # its own semantic checks (e.g. negative summary quantile values)
        return
    assert _sample_set(parse(text)) == expected


def test_inferred_types_are_valid_openmetrics():
    f = from_rows([
        (0, "neg_total", -1, {}),
        (0, "ok_total", 1, {}),
        (0, "q", 1, {"quantile": "1.5"}),
        (0, "p", 1, {"quantile": "0.5"}),
        (0, "p", 2, {}),
    ])
    om = write(f, openmetrics=True)
    assert "# TYPE neg_total unknown" in om and "# TYPE ok counter" in om
    assert "# TYPE q unknown" in om and "# TYPE p unknown" in om
    assert parse(om).equals(f)


def test_vectorised_pass_handles_most_lines():
    """The benchmark exposition is read without the careful parser."""
    text = bench.make_exposition(2_000)
    lines = pl.DataFrame({"#line": pl.Series(text.splitlines())}).with_row_index("#n", offset=1)
    samples = lines.filter(~pl.col("#line").str.starts_with("#")).with_columns(pl.col("#n").cast(pl.Int64))
    frame, left = ex._fast(samples, False)
    assert left == [] and frame.height == samples.height


# ---------------------------------------------------------------------------------------------
# benchmark

def test_bench_run_and_table():
    rows = bench.run(lines=3_000, repeat=1, include_careful=True)
    assert [r["name"] for r in rows] == [
        "dwcpkit.telemetry.exposition.parse",
        "dwcpkit careful per-line path",
        "prometheus_client text_string_to_metric_families",
    ]
    assert len({r["samples"] for r in rows}) == 1 and rows[0]["samples"] > 2_900
    assert rows[-1]["ratio_vs_prometheus_client"] == pytest.approx(1.0)
    for r in rows:
        assert r["seconds"] > 0 and r["lines_per_s"] == pytest.approx(3_000 / r["seconds"])
    table = bench.format_table(rows)
    assert "prometheus_client" in table and "lines/s" in table


def test_bench_exposition_is_deterministic_and_sized():
    a = bench.make_exposition(1_000)
    assert a == bench.make_exposition(1_000)
    assert a.count("\n") == 1_000
    assert 'le="+Inf"' in a and "requests_total{" in a
    with pytest.raises(ParameterError):
        bench.make_exposition(3)
    with pytest.raises(ParameterError):
        bench.run(lines=100, repeat=0)
