"""The canonical telemetry frame every loader returns and every ``sre`` function takes.

One row per sample. Columns, in this order:

``timestamp``  ``pl.Datetime("ms", "UTC")``
``metric``     ``pl.String``   (v3 collector names, ``dwcp_v3_*``; histograms keep
               Prometheus' ``*_bucket`` / ``*_sum`` / ``*_count`` shape, ``le`` is a label)
``value``      ``pl.Float64``
then one ``pl.String`` column per label name, sorted by name, null where a series lacks it.

Rows are sorted by metric, then label values, then timestamp, so two loaders that read the same
samples return frames that compare equal with :func:`polars.DataFrame.equals`.

Example
-------
>>> import polars as pl
>>> from dwcpkit.telemetry.schema import from_rows
>>> f = from_rows([(0, "up", 1.0, {"job": "a"})])
>>> f.columns
['timestamp', 'metric', 'value', 'job']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import polars as pl

from dwcpkit.errors import SchemaError

__all__ = [
    "CORE_COLUMNS",
    "TIMESTAMP_DTYPE",
    "empty_frame",
    "from_rows",
    "label_columns",
    "normalize",
    "series_keys",
    "concat",
]

TIMESTAMP_DTYPE = pl.Datetime("ms", "UTC")
CORE_COLUMNS = ("timestamp", "metric", "value")


def label_columns(frame: pl.DataFrame) -> list[str]:
    """Label column names of a canonical frame (everything but timestamp/metric/value)."""
    return [c for c in frame.columns if c not in CORE_COLUMNS]


def empty_frame(labels: Iterable[str] = ()) -> pl.DataFrame:
    """A canonical frame with no rows and the given label columns."""
    schema: dict[str, pl.DataType] = {
        "timestamp": TIMESTAMP_DTYPE,
        "metric": pl.String(),
        "value": pl.Float64(),
    }
    for name in sorted(set(labels)):
        schema[name] = pl.String()
    return pl.DataFrame(schema=schema)


def _to_ms(ts: int | float | datetime) -> int:
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise SchemaError(
                f"naive datetime {ts!r}: telemetry time is UTC; pass an aware datetime "
                "(datetime(..., tzinfo=timezone.utc))"
            )
        return int(round(ts.timestamp() * 1000))
    return int(ts)


def from_rows(
    rows: Iterable[tuple[int | float | datetime, str, float, Mapping[str, str]]],
) -> pl.DataFrame:
    """Build a canonical frame from ``(timestamp_ms_or_datetime, metric, value, labels)`` rows."""
    ts: list[int] = []
    metrics: list[str] = []
    values: list[float] = []
    label_rows: list[Mapping[str, str]] = []
    names: set[str] = set()
    for t, m, v, labels in rows:
        ts.append(_to_ms(t))
        metrics.append(m)
        values.append(float(v))
        label_rows.append(labels)
        names.update(labels)
    data: dict[str, list] = {"timestamp": ts, "metric": metrics, "value": values}
    for name in sorted(names):
        data[name] = [lr.get(name) for lr in label_rows]
    frame = pl.DataFrame(
        data,
        schema={
            "timestamp": pl.Int64,
            "metric": pl.String,
            "value": pl.Float64,
            **{n: pl.String for n in sorted(names)},
        },
    )
    return normalize(frame.with_columns(pl.col("timestamp").cast(TIMESTAMP_DTYPE)))


def normalize(frame: pl.DataFrame, *, source: str = "frame") -> pl.DataFrame:
    """Validate ``frame`` and return it in canonical column order, dtypes and row order.

    Accepts ``timestamp`` as Datetime (any unit; naive is taken as UTC) or as integer
    milliseconds since the epoch. Raises :class:`SchemaError` naming ``source`` when a
    required column is missing or has a type that cannot be converted.
    """
    missing = [c for c in CORE_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{source}: missing column(s) {missing}; a telemetry frame needs "
            f"{list(CORE_COLUMNS)} plus one string column per label"
        )
    ts = frame.schema["timestamp"]
    if isinstance(ts, pl.Datetime):
        tcol = pl.col("timestamp")
        if ts.time_zone is None:
            tcol = tcol.dt.replace_time_zone("UTC")
        tcol = tcol.dt.convert_time_zone("UTC").dt.cast_time_unit("ms")
    elif ts.is_integer():
        tcol = pl.col("timestamp").cast(pl.Int64).cast(TIMESTAMP_DTYPE)
    else:
        raise SchemaError(
            f"{source}: column 'timestamp' has type {ts}; use a Datetime or integer "
            "milliseconds since the epoch (UTC)"
        )
    if not (frame.schema["value"].is_numeric()):
        raise SchemaError(f"{source}: column 'value' has type {frame.schema['value']}; it must be numeric")
    if frame.schema["metric"] not in (pl.String, pl.Categorical, pl.Enum):
        raise SchemaError(f"{source}: column 'metric' has type {frame.schema['metric']}; it must be a string")
    labels = sorted(label_columns(frame))
    exprs = [
        tcol.alias("timestamp"),
        pl.col("metric").cast(pl.String),
        pl.col("value").cast(pl.Float64),
    ] + [pl.col(c).cast(pl.String) for c in labels]
    out = frame.select(exprs)
    if out["timestamp"].null_count() or out["metric"].null_count():
        raise SchemaError(f"{source}: null timestamp or metric name in {out.height} rows")
    return out.sort(["metric", *labels, "timestamp"], nulls_last=True, maintain_order=True)


def series_keys(frame: pl.DataFrame) -> list[str]:
    """Columns that identify a series: ``metric`` plus every label column."""
    return ["metric", *label_columns(frame)]


def concat(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Concatenate canonical frames whose label columns may differ (missing labels become null)."""
    frames = [f for f in frames]
    if not frames:
        return empty_frame()
    return normalize(pl.concat(frames, how="diagonal_relaxed"))
