"""Tests for dwcpkit.telemetry.files: parquet/CSV round trips and errors that name file and line."""

from __future__ import annotations

import math

import polars as pl
import pytest

from dwcpkit.errors import ParseError, SchemaError, SourceError
from dwcpkit.telemetry.files import read_csv, read_parquet, write_csv, write_parquet
from dwcpkit.telemetry.schema import from_rows

T = 1_714_521_600_000  # 2024-05-01T00:00:00Z in ms

HEADER = "timestamp,metric,value,region\n"


@pytest.fixture
def frame() -> pl.DataFrame:
    rows = []
    for k in range(5):
        t = T + k * 60_000 + 7  # odd milliseconds survive both formats
        rows.append((t, "dwcp_v3_active_streams", float(k) / 3, {"region": "eu-west", "version": "v3"}))
        rows.append((t, "dwcp_v3_migration_latency_seconds_bucket", float(k), {"le": "+Inf", "region": "us-east"}))
        rows.append((t, "dwcp_v3_rollout_percentage", [math.nan, math.inf, -math.inf, 0.0, 1e-300][k], {}))
        rows.append((t, "labels_with_comma", 1.0, {"region": 'a,b "q"', "version": ""}))
    return from_rows(rows)


def test_parquet_round_trip_is_exact(frame, tmp_path):
    p = write_parquet(frame, tmp_path / "sub" / "t.parquet")
    assert p.exists()
    back = read_parquet(p)
    assert back.equals(frame)
    assert back.schema == frame.schema


def test_parquet_is_zstd(frame, tmp_path):
    import pyarrow.parquet as pq

    p = write_parquet(frame, tmp_path / "t.parquet")
    meta = pq.ParquetFile(p).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_csv_round_trip_is_exact(frame, tmp_path):
    p = write_csv(frame, tmp_path / "t.csv")
    back = read_csv(p)
    assert back.equals(frame)
    # null label -> empty cell, empty-string label -> quoted "" cell, both preserved
    assert back.filter(pl.col("metric") == "labels_with_comma")["version"].to_list() == [""] * 5
    assert back.filter(pl.col("metric") == "dwcp_v3_rollout_percentage")["region"].null_count() == 5
    first = p.read_text().splitlines()[1]
    assert first.startswith("2024-05-01T00:00:00.007Z,")


def test_csv_timestamp_forms(tmp_path):
    p = tmp_path / "forms.csv"
    p.write_text(
        HEADER
        + "2024-05-01T00:00:00Z,m,1,eu\n"
        + "2024-05-01T02:01:00+02:00,m,2,eu\n"
        + "2024-05-01 00:02:00.5Z,m,3,eu\n"
        + f"{T + 180_000},m,4,eu\n"
        + "2024-05-01T00:04:00+00,m,+Inf,eu\n"
    )
    f = read_csv(p)
    assert f["timestamp"].dt.epoch("ms").to_list() == [T, T + 60_000, T + 120_500, T + 180_000, T + 240_000]
    assert f["value"].to_list() == [1, 2, 3, 4, math.inf]
    assert f.columns == ["timestamp", "metric", "value", "region"]


def test_csv_column_order_and_blank_lines_do_not_matter(tmp_path):
    p = tmp_path / "o.csv"
    p.write_text("region,value,metric,timestamp\neu,1.5,m,2024-05-01T00:00:00Z\n\n,2,m,2024-05-01T00:01:00Z\n")
    f = read_csv(p)
    # canonical row order: metric, labels (nulls last), timestamp
    assert f.select("value", "region").rows() == [(1.5, "eu"), (2.0, None)]
    assert f.columns == ["timestamp", "metric", "value", "region"]


def test_missing_columns_is_line_1(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("time,metric,value\n2024-05-01T00:00:00Z,m,1\n")
    with pytest.raises(ParseError, match=r"missing column\(s\) \['timestamp'\]") as e:
        read_csv(p)
    assert e.value.path == str(p) and e.value.line == 1
    assert str(e.value).startswith(f"{p}:1: ")


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ("yesterday,m,1,eu", "neither ISO 8601 nor integer"),
        ("2024-05-01T00:03:00,m,1,eu", "no UTC offset"),
        ("2024-05-01T00:03:00Z,m,abc,eu", "value 'abc' is not a number"),
        ("2024-05-01T00:03:00Z,m,,eu", "empty value"),
        ("2024-05-01T00:03:00Z,,1,eu", "empty metric"),
        (",m,1,eu", "empty timestamp"),
        ("2024-05-01T00:03:00Z,m,1,eu,extra", "5 fields where the header has 4"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, bad_row, message):
    # Line 1 header, line 2 ok, line 3 blank, lines 4-5 one quoted label with a newline,
    # line 6 ok, line 7 the bad row, line 8 ok.
    p = tmp_path / "bad.csv"
    p.write_text(
        HEADER
        + "2024-05-01T00:00:00Z,m,1,eu\n"
        + "\n"
        + '2024-05-01T00:01:00Z,m,1,"two\nlines"\n'
        + "2024-05-01T00:02:00Z,m,1,eu\n"
        + bad_row + "\n"
        + "2024-05-01T00:04:00Z,m,1,eu\n"
    )
    with pytest.raises(ParseError, match=message) as e:
        read_csv(p)
    assert (e.value.path, e.value.line) == (str(p), 7)


def test_integer_seconds_are_refused(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text(HEADER + "1714521600,m,1,eu\n1714521660,m,1,eu\n")
    with pytest.raises(ParseError, match="looks like epoch seconds") as e:
        read_csv(p)
    assert e.value.line == 3


def test_empty_and_header_only_csv(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("")
    with pytest.raises(ParseError, match="empty file"):
        read_csv(p)
    p.write_text(HEADER)
    f = read_csv(p)
    assert f.height == 0 and f.columns == ["timestamp", "metric", "value", "region"]


def test_missing_files_are_source_errors(tmp_path):
    for reader in (read_csv, read_parquet):
        with pytest.raises(SourceError, match="no such") as e:
            reader(tmp_path / "nope.x")
        assert str(tmp_path / "nope.x") in str(e.value)
    with pytest.raises(SourceError, match="not a file"):
        read_parquet(tmp_path)


def test_corrupt_parquet_is_source_error(tmp_path):
    p = tmp_path / "c.parquet"
    p.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SourceError, match="cannot read as parquet") as e:
        read_parquet(p)
    assert str(p) in str(e.value)


def test_parquet_with_wrong_schema_is_schema_error(tmp_path):
    p = tmp_path / "w.parquet"
    pl.DataFrame({"ts": [1], "metric": ["m"], "value": [1.0]}).write_parquet(p)
    with pytest.raises(SchemaError, match="missing column") as e:
        read_parquet(p)
    assert str(p) in str(e.value)


def test_parquet_read_normalizes_order(tmp_path, frame):
    p = tmp_path / "shuffled.parquet"
    frame.sample(fraction=1.0, shuffle=True, seed=3).select(reversed(frame.columns)).write_parquet(p)
    assert read_parquet(p).equals(frame)


def test_write_csv_refuses_null_values(tmp_path):
    f = pl.DataFrame({"timestamp": [T], "metric": ["m"], "value": [None]}, schema_overrides={"value": pl.Float64})
    with pytest.raises(SchemaError, match="null value"):
        write_csv(f, tmp_path / "n.csv")
