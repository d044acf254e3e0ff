"""Canonical telemetry frames to and from parquet and CSV files.

Parquet keeps the frame's dtypes exactly (written with zstd). CSV has a header line with
``timestamp,metric,value`` and one column per label (any order; extra columns are labels).

CSV conventions
---------------
- ``timestamp``: ISO 8601 / RFC 3339 with ``Z`` or an offset (``2024-05-01T12:00:00.250Z``,
  ``2024-05-01 14:00:00+02:00``) or integer milliseconds since the epoch. A timestamp without
  an offset is refused (telemetry time is UTC; append ``Z``). Integer values that look like
  epoch *seconds* are refused too.
- ``value``: a number, or ``NaN``, ``+Inf``, ``-Inf``. An empty value is an error.
- labels: an empty cell is a missing label (null); a quoted empty cell (``""``) is an empty
  string. :func:`write_csv` writes them that way, so CSV round trips are exact.
- Blank lines are skipped.

Errors name the file and the 1-based line of the first bad row (the header is line 1).

Example
-------
>>> import tempfile, pathlib
>>> from dwcpkit.telemetry.schema import from_rows
>>> f = from_rows([(1_700_000_000_000, "up", 1.0, {"job": "a"})])
>>> p = pathlib.Path(tempfile.mkdtemp()) / "up.csv"
>>> _ = write_csv(f, p)
>>> p.read_text().splitlines()
['timestamp,metric,value,job', '2023-11-14T22:13:20.000Z,up,1.0,a']
>>> read_csv(p).equals(f)
True
"""

from __future__ import annotations

import csv
import os
from datetime import datetime
from pathlib import Path

import polars as pl

from dwcpkit.errors import DwcpkitError, ParseError, SchemaError, SourceError
from dwcpkit.telemetry.schema import CORE_COLUMNS, TIMESTAMP_DTYPE, normalize

__all__ = ["read_parquet", "read_csv", "write_parquet", "write_csv"]

PathLike = str | os.PathLike[str]
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.3fZ"
#: Integer timestamps whose maximum falls in [1e9, 1e11) are epoch seconds, not milliseconds.
_SECONDS_RANGE = (10**9, 10**11)


def _existing_file(path: PathLike, kind: str) -> Path:
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise SourceError(f"{p}: no such {kind} file; check the path (or the `source` parameter)")
    if not p.is_file():
        raise SourceError(f"{p}: not a file; give the path of a {kind} file")
    return p


def read_parquet(path: PathLike) -> pl.DataFrame:
    """Read a canonical telemetry frame from a parquet file.

    Raises
    ------
    SourceError
        The file is missing or is not readable parquet.
    SchemaError
        It is parquet but not a telemetry frame (missing/mistyped columns).

    Example
    -------
    >>> # read_parquet("data/telemetry.parquet").columns[:3]
    >>> # ['timestamp', 'metric', 'value']
    """
    p = _existing_file(path, "parquet")
    try:
        frame = pl.read_parquet(p)
    except Exception as e:  # polars/arrow raise many types for a corrupt file
        raise SourceError(
            f"{p}: cannot read as parquet ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            "is it a parquet file written by write_parquet or polars?"
        ) from None
    return normalize(frame, source=str(p))


def write_parquet(frame: pl.DataFrame, path: PathLike) -> Path:
    """Validate ``frame`` and write it to ``path`` as zstd-compressed parquet; returns the path.

    Parent folders are created. The file reads back equal (``read_parquet(p).equals(frame)``)
    for any canonical frame.

    >>> # write_parquet(frame, "out/telemetry.parquet")
    """
    p = Path(os.fspath(path)).expanduser()
    out = normalize(frame, source="frame to write")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        out.write_parquet(p, compression="zstd")
    except OSError as e:
        raise DwcpkitError(f"{p}: cannot write parquet ({e.strerror or e}); check the folder exists and is writable") from None
    return p


def write_csv(frame: pl.DataFrame, path: PathLike) -> Path:
    """Validate ``frame`` and write it to ``path`` as CSV (timestamps ISO 8601 UTC with ms).

    Null values cannot be written (CSV has no null *number*; use NaN for a missing sample).

    >>> # write_csv(frame, "out/telemetry.csv")
    """
    p = Path(os.fspath(path)).expanduser()
    out = normalize(frame, source="frame to write")
    nulls = out["value"].null_count()
    if nulls:
        raise SchemaError(
            f"frame to write has {nulls} null value(s); a sample has a value — use NaN for a "
            "missing one, or drop those rows"
        )
    out = out.with_columns(pl.col("timestamp").dt.to_string(_TS_FORMAT))
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        out.write_csv(p)
    except OSError as e:
        raise DwcpkitError(f"{p}: cannot write CSV ({e.strerror or e}); check the folder exists and is writable") from None
    return p


def _line_of_row(path: Path, row: int) -> int:
    """1-based line on which data row ``row`` (0-based, header excluded) starts."""
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        if next(reader, None) is None:
            return 1
        end = reader.line_num
        for i, _ in enumerate(reader):
            if i == row:
                return end + 1
            end = reader.line_num
    return row + 2


def _first_bad_line(path: Path, width: int) -> tuple[int, int] | None:
    """(line, fields) of the first row whose field count differs from the header's."""
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        end = reader.line_num
        for row in reader:
            if row and len(row) != width:
                return end + 1, len(row)
            end = reader.line_num
    return None


def _parse_timestamps(col: pl.Series) -> tuple[pl.Series, int | None, str]:
    """Parse a string column of ISO 8601 (with offset) or integer-ms timestamps.

    Returns ``(ms Int64 series, index of first bad row or None, reason)``. Nulls stay null and
    are not reported as bad (callers decide whether a null is allowed).
    """
    text = col.str.strip_chars()
    ints = text.str.to_integer(strict=False)
    iso = text.str.to_datetime(format="%+", time_unit="ms", time_zone="UTC", strict=False).dt.epoch("ms")
    ms = pl.select(pl.coalesce(ints, iso)).to_series()
    todo = (ms.is_null() & text.is_not_null()).arg_true()
    if len(todo):
        values = ms.to_list()
        raw = text.to_list()
        for i in todo.to_list():
            try:
                dt = datetime.fromisoformat(raw[i])
            except ValueError:
                return ms, i, f"timestamp {raw[i]!r} is neither ISO 8601 nor integer milliseconds"
            if dt.tzinfo is None:
                return ms, i, f"timestamp {raw[i]!r} has no UTC offset; append 'Z' (UTC) or an offset like '+02:00'"
            values[i] = int(round(dt.timestamp() * 1000))
        ms = pl.Series(col.name, values, dtype=pl.Int64)
    if ints.null_count() < len(ints):
        top = ints.max()
        if top is not None and _SECONDS_RANGE[0] <= top < _SECONDS_RANGE[1]:
            i = (ints == top).arg_true()[0]
            return ms, i, (f"integer timestamp {top} looks like epoch seconds; integer timestamps "
                           "are milliseconds (multiply by 1000) — or write ISO 8601")
    return ms.rename(col.name), None, ""


def _read_csv_strings(p: Path, required: tuple[str, ...], what: str) -> pl.DataFrame:
    """Read every column of ``p`` as strings, with errors naming file and line."""
    try:
        raw = pl.read_csv(p, infer_schema=False, encoding="utf8")
    except pl.exceptions.NoDataError:
        raise ParseError(f"empty file; a {what} CSV starts with a header line {','.join(required)},...",
                         path=str(p), line=1) from None
    except Exception as e:
        with p.open(newline="", encoding="utf-8", errors="replace") as fh:
            header = next(csv.reader(fh), [])
        bad = _first_bad_line(p, len(header))
        if bad is not None:
            raise ParseError(f"{bad[1]} fields where the header has {len(header)}; quote values that contain commas",
                             path=str(p), line=bad[0]) from None
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ParseError(f"cannot read as CSV: {msg}", path=str(p)) from None
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise ParseError(
            f"missing column(s) {missing} in the header {raw.columns}; a {what} CSV needs {list(required)}",
            path=str(p), line=1,
        )
    blank = raw.select(pl.all_horizontal(pl.all().is_null())).to_series()
    return raw.with_row_index("__row").filter(~blank)


def _bad(p: Path, rows: pl.Series, mask: pl.Series, message) -> None:
    hit = mask.arg_true()
    if len(hit):
        i = hit[0]
        raise ParseError(message(i), path=str(p), line=_line_of_row(p, int(rows[i])))


def read_csv(path: PathLike) -> pl.DataFrame:
    """Read a canonical telemetry frame from CSV (see the module docstring for the format).

    Raises
    ------
    SourceError
        The file is missing.
    ParseError
        Missing required columns (line 1), or a row with an unparseable timestamp or value, an
        empty metric name, or the wrong number of fields (its line is given).

    Example
    -------
    >>> # read_csv("incident-export.csv").height
    """
    p = _existing_file(path, "CSV")
    raw = _read_csv_strings(p, CORE_COLUMNS, "telemetry")
    rows = raw["__row"]
    ms, bad, why = _parse_timestamps(raw["timestamp"])
    if bad is not None:
        raise ParseError(why, path=str(p), line=_line_of_row(p, int(rows[bad])))
    _bad(p, rows, ms.is_null(), lambda i: "empty timestamp")
    metric = raw["metric"].str.strip_chars()
    _bad(p, rows, metric.is_null() | (metric == ""), lambda i: "empty metric name")
    text = raw["value"].str.strip_chars()
    value = text.cast(pl.Float64, strict=False)
    _bad(p, rows, value.is_null(),
         lambda i: (f"value {text[i]!r} is not a number (write NaN, +Inf or -Inf for special values)"
                    if text[i] else "empty value (write NaN for a missing sample)"))
    labels = [c for c in raw.columns if c not in CORE_COLUMNS and c != "__row"]
    frame = raw.select(labels).with_columns(
        ms.cast(TIMESTAMP_DTYPE).alias("timestamp"), metric.alias("metric"), value.alias("value")
    )
    return normalize(frame, source=str(p))
