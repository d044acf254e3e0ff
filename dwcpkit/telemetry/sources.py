"""Resolve a runbook's ``source`` parameter to a canonical telemetry frame.

A source is one of:

- ``"sample"``: the embedded sample data, ``data/telemetry.parquet`` (see :mod:`dwcpkit._paths`);
- a file path ending in ``.parquet``, ``.csv`` (:mod:`dwcpkit.telemetry.files`) or ``.prom``,
  ``.txt``, ``.om`` (Prometheus text / OpenMetrics exposition, :mod:`dwcpkit.telemetry.exposition`);
- a Prometheus base URL, ``http://host:port`` or ``https://...`` (:mod:`dwcpkit.telemetry.prometheus`).

:func:`load` returns the same frame shape for all of them, filtered to the requested metric
families and time window. Label columns that are null in every returned row are dropped, so the
same samples give equal frames whichever source they came from.

Example
-------
>>> # load("sample", metrics=["dwcp_v3_migration_latency_seconds"],
>>> #      start="2024-05-01T00:00:00Z", end="2024-05-01T06:00:00Z")
>>> describe("http://127.0.0.1:9090")
'Prometheus at http://127.0.0.1:9090 (HTTP API, one query_range per metric)'
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import polars as pl

from dwcpkit import _paths
from dwcpkit.errors import ParameterError, ParseError, SourceError
from dwcpkit.telemetry import files
from dwcpkit.telemetry.names import CATALOG
from dwcpkit.telemetry.prometheus import PrometheusClient, parse_time
from dwcpkit.telemetry.schema import TIMESTAMP_DTYPE, concat, empty_frame, label_columns, normalize

__all__ = [
    "ACCEPTED_FORMS",
    "INCIDENT_COLUMNS",
    "SourceSpec",
    "resolve",
    "load",
    "describe",
    "load_incidents",
    "DEFAULT_LOOKBACK",
]

ACCEPTED_FORMS = (
    "'sample' (the embedded sample data), a file path ending in .parquet, .csv, .prom, .txt or .om, "
    "or a Prometheus base URL such as http://127.0.0.1:9090"
)
#: Prometheus window when ``start``/``end`` are not given: the last 6 hours.
DEFAULT_LOOKBACK = timedelta(hours=6)
INCIDENT_COLUMNS = ("incident_id", "kind", "start", "end", "region", "component", "node_id", "description")

_SUFFIX_KIND = {".parquet": "parquet", ".csv": "csv", ".prom": "exposition", ".txt": "exposition", ".om": "exposition"}
_HIST_SUFFIXES = ("_bucket", "_sum", "_count")
TimeLike = datetime | int | float | str


class SourceSpec(NamedTuple):
    """A resolved source: ``kind`` (``sample``, ``parquet``, ``csv``, ``exposition`` or
    ``prometheus``) and ``target`` (a :class:`~pathlib.Path`, or the URL string)."""

    kind: str
    target: Path | str


def resolve(source: str | os.PathLike[str]) -> SourceSpec:
    """Classify ``source`` without reading it.

    Raises :class:`~dwcpkit.errors.SourceError` listing the accepted forms when it is none of them.

    >>> resolve("http://127.0.0.1:9090")
    SourceSpec(kind='prometheus', target='http://127.0.0.1:9090')
    >>> resolve("exports/fleet.csv").kind
    'csv'
    """
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source.strip():
        raise SourceError(f"source={source!r} is not a telemetry source; use {ACCEPTED_FORMS}")
    text = source.strip()
    if text.lower() == "sample":
        return SourceSpec("sample", _paths.data_dir() / "telemetry.parquet")
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        return SourceSpec("prometheus", text.rstrip("/"))
    if "://" in text:
        raise SourceError(f"source={source!r}: unsupported URL scheme; use {ACCEPTED_FORMS}")
    path = Path(text).expanduser()
    kind = _SUFFIX_KIND.get(path.suffix.lower())
    if kind is None:
        hint = ""
        host = text.split("/")[0]
        if ":" in host and host.rsplit(":", 1)[-1].isdigit():
            hint = f" (did you mean http://{text}?)"
        raise SourceError(f"source={source!r} is not a known kind of source{hint}; use {ACCEPTED_FORMS}")
    return SourceSpec(kind, path)


def _read_exposition(path: Path) -> pl.DataFrame:
    from dwcpkit.telemetry import exposition

    # A scrape saved to a file usually carries no timestamps: its samples were taken when the
    # file was written, so the file's modification time stands in for the scrape time.
    try:
        mtime_ms = int(path.stat().st_mtime * 1000)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    return normalize(exposition.read(path, default_timestamp_ms=mtime_ms), source=str(path))


def _read_file(spec: SourceSpec) -> pl.DataFrame:
    path = Path(spec.target)
    if spec.kind == "sample":
        if not path.is_file():
            raise SourceError(
                f"sample data not found at {path}; generate it with `dwcpkit sample-data`, "
                "or set DWCPKIT_HOME to a checkout that has data/telemetry.parquet"
            )
        return files.read_parquet(path)
    if spec.kind == "parquet":
        return files.read_parquet(path)
    if spec.kind == "csv":
        return files.read_csv(path)
    if not path.is_file():
        raise SourceError(f"{path}: no such exposition file; check the path (or the `source` parameter)")
    return _read_exposition(path)


def _metric_list(metrics: Sequence[str] | str | None) -> list[str] | None:
    if metrics is None:
        return None
    if isinstance(metrics, str):
        metrics = [metrics]
    out = []
    for m in metrics:
        if not isinstance(m, str) or not m:
            raise ParameterError(f"metrics must be metric family names (strings), got {m!r}")
        if m not in out:
            out.append(m)
    return out


def _is_histogram(name: str) -> bool:
    fam = CATALOG.get(name)
    return fam is not None and fam.type == "histogram"


def _expand(names: list[str], present: set[str]) -> set[str]:
    """Series names selected by family ``names``: a histogram family adds its three series."""
    out: set[str] = set()
    for m in names:
        out.add(m)
        if _is_histogram(m) or f"{m}_bucket" in present:
            out.update(m + s for s in _HIST_SUFFIXES)
    return out


def _window(start: TimeLike | None, end: TimeLike | None) -> tuple[int | None, int | None]:
    lo = None if start is None else parse_time(start, what="start")
    hi = None if end is None else parse_time(end, what="end")
    if lo is not None and hi is not None and hi < lo:
        raise ParameterError(f"end={end!r} is before start={start!r}; swap them")
    return lo, hi


def _select(frame: pl.DataFrame, names: list[str] | None, lo: int | None, hi: int | None) -> pl.DataFrame:
    cond = pl.lit(True)
    if names is not None:
        present = set(frame["metric"].unique().to_list())
        cond = cond & pl.col("metric").is_in(sorted(_expand(names, present)))
    ts = pl.col("timestamp").dt.epoch("ms")
    if lo is not None:
        cond = cond & (ts >= lo)
    if hi is not None:
        cond = cond & (ts <= hi)
    return _drop_empty_labels(frame.filter(cond))


def _drop_empty_labels(frame: pl.DataFrame) -> pl.DataFrame:
    if frame.height == 0:
        return empty_frame()
    empty = [c for c in label_columns(frame) if frame[c].null_count() == frame.height]
    return frame.drop(empty) if empty else frame


def _load_prometheus(
    url: str, names: list[str] | None, lo: int | None, hi: int | None, step, timeout: float
) -> pl.DataFrame:
    client = PrometheusClient(url, timeout=timeout)
    if hi is None:
        hi = int(time.time()) * 1000
    if lo is None:
        lo = hi - int(DEFAULT_LOOKBACK.total_seconds() * 1000)
    if names is None:
        names = list(CATALOG)
    start, end = lo / 1000, hi / 1000
    frames = []
    queried: set[str] = set()  # a family and its own series may both be asked for: query each once
    for fam in names:
        if _is_histogram(fam):
            series = [fam + s for s in _HIST_SUFFIXES]
        else:
            series = [fam]
        series = [s for s in series if s not in queried]
        queried.update(series)
        got = [client.series_range(s, start, end, step) for s in series]
        if fam not in CATALOG and not fam.endswith(_HIST_SUFFIXES) and all(g.height == 0 for g in got):
            # An unknown name with no series of its own may be a histogram family.
            got = [client.series_range(fam + s, start, end, step) for s in _HIST_SUFFIXES]
        frames.extend(g for g in got if g.height)
    frame = concat(frames) if frames else empty_frame()
    return _select(frame, None, lo, hi)


def load(
    source: str | os.PathLike[str] = "sample",
    *,
    metrics: Sequence[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    step: int | float | str | timedelta = "60s",
    timeout: float = 10.0,
) -> pl.DataFrame:
    """Load telemetry from ``source`` as a canonical frame.

    Parameters
    ----------
    source
        ``"sample"``, a ``.parquet`` / ``.csv`` / ``.prom`` / ``.txt`` / ``.om`` path, or a
        Prometheus base URL (``http://127.0.0.1:9090``).
    metrics
        Metric family names to keep (exact; ``None`` keeps all). A histogram family ``x`` also
        selects ``x_bucket``, ``x_sum`` and ``x_count`` (known from the catalogue, or because the
        source has ``x_bucket``). For Prometheus, ``None`` means every family in
        :data:`dwcpkit.telemetry.names.CATALOG`.
    start, end
        Inclusive time window: aware datetimes, epoch seconds or RFC 3339 strings. ``None`` is
        unbounded for files; for Prometheus ``end`` defaults to now and ``start`` to ``end - 6h``.
    step
        Prometheus only: evaluation step (seconds or ``"15s"``, ``"1m"``...). Files keep their
        own sample times. Note that Prometheus returns values evaluated on this grid (with its
        5-minute lookback), not raw samples.
    timeout
        Prometheus only: seconds per HTTP request.

    Returns
    -------
    polars.DataFrame
        The canonical frame; empty (no rows, no label columns) when nothing matches — that is
        not an error here. Label columns that are null in every row are dropped.

    Raises
    ------
    SourceError
        Unknown kind of source (the message lists the accepted forms), missing file, unreadable
        sample data; :class:`~dwcpkit.errors.ParseError`, :class:`~dwcpkit.errors.SchemaError` and
        :class:`~dwcpkit.errors.PrometheusError` (all ``SourceError``) from the readers.
    ParameterError
        Bad ``start``/``end``/``step``/``metrics``.

    Examples
    --------
    >>> # load("sample", metrics=["dwcp_v3_active_streams"], start="2024-05-01T00:00:00Z")
    >>> # load("http://127.0.0.1:9090", metrics=["dwcp_v3_migration_latency_seconds"], step="1m")
    """
    spec = resolve(source)
    names = _metric_list(metrics)
    lo, hi = _window(start, end)
    if spec.kind == "prometheus":
        return _load_prometheus(str(spec.target), names, lo, hi, step, timeout)
    return _select(_read_file(spec), names, lo, hi)


def _span(ms: int) -> str:
    s = ms / 1000
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            n = s / size
            text = f"{n:.0f}" if abs(n - round(n)) < 0.05 else f"{n:.1f}"
            return f"{text} {'day' if unit == 'days' and text == '1' else unit}"
    return f"{s:g} s"


def describe(source: str | os.PathLike[str]) -> str:
    """One-line human description of ``source`` (reads files, never contacts Prometheus).

    >>> describe("http://127.0.0.1:9090")
    'Prometheus at http://127.0.0.1:9090 (HTTP API, one query_range per metric)'
    """
    spec = resolve(source)
    if spec.kind == "prometheus":
        return f"Prometheus at {spec.target} (HTTP API, one query_range per metric)"
    path = Path(spec.target)
    label = "sample data" if spec.kind == "sample" else f"{spec.kind} file"
    shown = str(path)
    try:
        shown = str(path.resolve().relative_to(_paths.project_root()))
    except ValueError:
        pass
    if not path.is_file():
        missing = "not generated yet: run `dwcpkit sample-data`" if spec.kind == "sample" else "missing"
        return f"{label} ({shown}, {missing})"
    try:
        frame = _read_file(spec)
    except SourceError as e:
        return f"{label} ({shown}, unreadable: {e})"
    if frame.height == 0:
        return f"{label} ({shown}, no samples)"
    ts = frame["timestamp"].dt.epoch("ms")
    n_series = frame.select(["metric", *label_columns(frame)]).n_unique()
    return f"{label} ({shown}, {_span(int(ts.max() - ts.min()))}, {n_series} series)"


def load_incidents(source: str | os.PathLike[str] = "sample") -> pl.DataFrame:
    """Ground-truth incident table of the sample data (``data/incidents.csv``).

    Columns: ``incident_id``, ``kind``, ``start``, ``end`` (``Datetime(ms, UTC)``; ``end`` null
    while ongoing), ``region``, ``component``, ``node_id``, ``description`` (strings, null when
    not applicable), sorted by start. Any source other than ``"sample"`` has no ground truth: the
    result is an empty frame with those columns.

    Raises :class:`~dwcpkit.errors.SourceError` when the sample table is missing and
    :class:`~dwcpkit.errors.ParseError` (file and line) when it is malformed.

    >>> load_incidents("http://127.0.0.1:9090").columns
    ['incident_id', 'kind', 'start', 'end', 'region', 'component', 'node_id', 'description']
    """
    schema = {c: (TIMESTAMP_DTYPE if c in ("start", "end") else pl.String()) for c in INCIDENT_COLUMNS}
    spec = resolve(source)
    if spec.kind != "sample":
        return pl.DataFrame(schema=schema)
    path = _paths.data_dir() / "incidents.csv"
    if not path.is_file():
        raise SourceError(
            f"incident table not found at {path}; generate the sample data with `dwcpkit sample-data`"
        )
    raw = files._read_csv_strings(path, INCIDENT_COLUMNS, "incident")
    rows = raw["__row"]
    parsed = {}
    for col in ("start", "end"):
        ms, bad, why = files._parse_timestamps(raw[col])
        if bad is not None:
            raise ParseError(f"column {col}: {why}", path=str(path), line=files._line_of_row(path, int(rows[bad])))
        parsed[col] = ms.cast(TIMESTAMP_DTYPE)
    files._bad(path, rows, parsed["start"].is_null(), lambda i: "empty start time")
    files._bad(path, rows, raw["incident_id"].is_null(), lambda i: "empty incident_id")
    extra = [c for c in raw.columns if c not in INCIDENT_COLUMNS and c != "__row"]
    out = raw.with_columns(parsed["start"].alias("start"), parsed["end"].alias("end"))
    return out.select([*INCIDENT_COLUMNS, *extra]).sort(["start", "incident_id"], maintain_order=True)
