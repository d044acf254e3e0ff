"""Fleet-scale SLO maths over partitioned parquet larger than memory.

A fleet dataset is a folder of parquet files, one per node (or any grouping that keeps every
series whole in one file), each a canonical telemetry frame. Rates are per series, so each
partition is reduced on its own to small partial sums — ``sum by (by) (rate(x[w]))`` of the
errors and operations counters at every evaluation time — and only those partials are combined.
Memory is bounded by the largest partition, not the dataset.

Two engines run the same per-partition reduction:

``"polars"``  one machine, partitions read one at a time (streaming over files);
``"dask"``    a Dask ``distributed`` cluster (``client=``): one task per partition, each worker
              reads its own files, so the dataset never passes through the driver.

The result equals :func:`dwcpkit.sre.slo.error_ratio` on the whole frame in memory (up to
floating-point summation order, ~1e-15 relative), as ``tests/sre/test_fleet.py`` checks.

Example
-------
>>> folder = write_fleet("/tmp/fleet", nodes=4, days=0.1)            # doctest: +SKIP
>>> fleet_error_ratio(folder, step="5m").head(2)                    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dwcpkit.errors import ParameterError, SourceError
from dwcpkit.sre import slo
from dwcpkit.telemetry.names import COMPONENTS, REGIONS
from dwcpkit.telemetry.schema import TIMESTAMP_DTYPE

__all__ = ["write_fleet", "partitions", "partial_sums", "fleet_error_ratio", "ERRORS", "OPS"]

ERRORS = "dwcp_v3_component_errors_total"
OPS = "dwcp_v3_component_operations_total"
_START = datetime(2026, 11, 1, tzinfo=timezone.utc)


def write_fleet(folder: str | Path, *, nodes: int = 200, days: float = 1.0, step_s: int = 60, seed: int = 7,
                start: datetime = _START) -> Path:
    """Write a seeded fleet dataset: per node, ops and error counters of the six components.

    Each node's file holds ``12 series × days·86400/step_s`` samples; counters reset on a random
    restart of about one node in ten, as real counters do.
    """
    if nodes < 1 or days <= 0 or step_s < 1:
        raise ParameterError("write_fleet needs nodes >= 1, days > 0 and step_s >= 1")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = int(days * 86_400 // step_s)
    t0 = int(start.timestamp() * 1000)
    ts = pl.Series("timestamp", t0 + np.arange(n, dtype=np.int64) * step_s * 1000).cast(TIMESTAMP_DTYPE)
    rng = np.random.Generator(np.random.PCG64(seed))
    hours = (np.arange(n) * step_s / 3600.0) % 24
    diurnal = 0.4 + 0.6 * (1 + np.cos(2 * np.pi * (hours - 14) / 24)) / 2
    for i in range(nodes):
        region = REGIONS[i % len(REGIONS)]
        node = f"{region}-{i // len(REGIONS) + 1:04d}"
        restart = int(rng.integers(1, n)) if rng.random() < 0.1 else None
        parts = []
        for comp in COMPONENTS:
            ops = rng.poisson(50 * diurnal * step_s / 60)
            errs = rng.binomial(ops, 0.002)
            for metric, inc in ((OPS, ops), (ERRORS, errs)):
                counter = np.cumsum(inc).astype(np.float64)
                if restart is not None:
                    counter[restart:] -= counter[restart - 1]
                parts.append(pl.DataFrame({"timestamp": ts, "metric": metric, "value": counter,
                                           "component": comp, "node_id": node, "region": region}))
        pl.concat(parts).select("timestamp", "metric", "value", "component", "node_id", "region") \
            .write_parquet(folder / f"{node}.parquet", compression="zstd", statistics=False)
    return folder


def partitions(folder: str | Path) -> list[Path]:
    """The parquet partitions of a fleet dataset, sorted (SourceError if there are none)."""
    files = sorted(Path(folder).glob("*.parquet"))
    if not files:
        raise SourceError(f"no parquet partitions in {folder}; write one with write_fleet() or point at a dataset")
    return files


def partial_sums(frame: pl.DataFrame, window: str, step: str, start: Any, end: Any,
                 by: Sequence[str]) -> pl.DataFrame:
    """``sum by (by) (rate(...))`` of errors and ops of one partition: columns timestamp, *by, err, ops."""
    out = []
    for metric, col in ((ERRORS, "err"), (OPS, "ops")):
        sel = frame.filter(pl.col("metric") == metric)
        r = slo.sum_by(slo.rate(sel, window, step=step, start=start, end=end), list(by))
        out.append(r.select("timestamp", *by, pl.col("value").alias(col)))
    return out[0].join(out[1], on=["timestamp", *by], how="full", coalesce=True, nulls_equal=True)


def _partial_file(path: str, window: str, step: str, start: Any, end: Any, by: Sequence[str]) -> pl.DataFrame:
    return partial_sums(pl.read_parquet(path), window, step, start, end, by)


def fleet_error_ratio(
    folder: str | Path,
    *,
    window: str = "5m",
    step: str = "5m",
    start: Any = None,
    end: Any = None,
    by: Sequence[str] = ("region",),
    engine: str = "polars",
    client: Any = None,
) -> pl.DataFrame:
    """Error ratio ``sum(rate(errors)) / sum(rate(ops))`` per ``by`` and evaluation time, over a fleet dataset.

    ``start``/``end`` default to the first/last timestamp of the first partition (fleet datasets
    share one time grid). Returns a canonical frame named ``error_ratio``.
    """
    files = partitions(folder)
    if start is None or end is None:
        first = pl.read_parquet(files[0], columns=["timestamp"])["timestamp"]
        start = first.min() if start is None else start
        end = first.max() if end is None else end
    by = list(by)
    if engine == "polars":
        partials = [_partial_file(str(f), window, step, start, end, by) for f in files]
    elif engine == "dask":
        if client is None:
            raise ParameterError("engine='dask' needs client= (a distributed.Client)")
        futures = client.map(_partial_file, [str(f) for f in files], window=window, step=step, start=start,
                             end=end, by=by, pure=False)
        partials = client.gather(futures)
    else:
        raise ParameterError(f"engine={engine!r}; use 'polars' or 'dask'")
    total = (pl.concat(partials).group_by(["timestamp", *by]).agg(pl.col("err").fill_null(0).sum(), pl.col("ops").sum()))
    return total.select("timestamp", pl.lit("error_ratio").alias("metric"),
                        (pl.col("err") / pl.col("ops")).alias("value"), *by).sort([*by, "timestamp"])
