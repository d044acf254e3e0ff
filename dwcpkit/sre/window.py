"""Evaluation time and the data window a runbook looks at.

Runbooks take an ``at`` parameter: ``"end"`` (the newest sample — "now" on a live source), an
ISO-8601 UTC time, or a runbook-specific keyword resolved by the runbook itself.
:func:`load_window` loads just the families and the span a runbook needs, from any source.

Example
-------
>>> from dwcpkit.telemetry.schema import from_rows
>>> f = from_rows([(0, "up", 1.0, {}), (60_000, "up", 1.0, {})])
>>> resolve_at(f, "end").isoformat()
'1970-01-01T00:01:00+00:00'
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import polars as pl

from dwcpkit.errors import DataError, ParameterError, SourceError
from dwcpkit.telemetry.sources import load, resolve

__all__ = ["parse_at", "resolve_at", "load_window"]


def parse_at(at: str) -> datetime | None:
    """``None`` for ``"end"``, else the aware UTC datetime of an ISO-8601 string."""
    if at in ("end", "now", ""):
        return None
    try:
        value = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise ParameterError(
            f"at={at!r} is neither 'end' nor an ISO-8601 time; use e.g. '2026-11-02T23:30:00Z'"
        ) from None
    if value.tzinfo is None:
        raise ParameterError(f"at={at!r} has no UTC offset; add 'Z' (times are UTC)")
    return value.astimezone(timezone.utc)


def resolve_at(frame: pl.DataFrame, at: str) -> datetime:
    """The evaluation time: ``at`` parsed, or the newest timestamp of ``frame`` for ``"end"``."""
    parsed = parse_at(at)
    if parsed is not None:
        return parsed
    if frame.height == 0:
        raise DataError("no samples in the data window, so 'end' has no meaning; check the source and metrics")
    return frame["timestamp"].max()


def load_window(
    source: str,
    metrics: Sequence[str],
    *,
    at: str = "end",
    lookback: timedelta,
    step: str = "60s",
) -> pl.DataFrame:
    """Load ``metrics`` for the ``lookback`` before ``at`` (plus the samples a 5-minute rate needs).

    Files and the sample data are read whole and cut after ``at`` is known; a Prometheus source
    is queried for exactly ``[at - lookback, at]`` (``at="end"`` meaning now). Raises SourceError
    when the window holds no samples of any requested metric.
    """
    parsed = parse_at(at)
    margin = timedelta(minutes=10)
    if resolve(source).kind == "prometheus":
        end = parsed or datetime.now(timezone.utc)
        frame = load(source, metrics=list(metrics), start=end - lookback - margin, end=end, step=step)
    else:
        frame = load(source, metrics=list(metrics))
        if frame.height:
            end = parsed or frame["timestamp"].max()
            frame = frame.filter(pl.col("timestamp").is_between(end - lookback - margin, end))
    if frame.height == 0:
        raise SourceError(
            f"no samples of {', '.join(metrics)} from {source!r} in the {lookback} before {at!r}; "
            "check the source, the metric names and the time"
        )
    return frame
