"""Per-region signal series for charts around an incident window.

:func:`region_signals` turns the raw canonical frame into small, chart-ready frames (one point per
``step`` per region), aggregated in polars so notebooks never hand Altair raw samples.

Example
-------
>>> from dwcpkit.telemetry.sources import load
>>> s = region_signals(load("sample"), "2026-11-02T22:00:00Z", "2026-11-02T23:59:00Z")  # doctest: +SKIP
>>> sorted(s)                                                                          # doctest: +SKIP
['component_health', 'error_pct', 'latency_p50_s', 'peers', 'throughput_gbps']
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from dwcpkit.sre import slo

__all__ = ["region_signals"]

_ERRORS = "dwcp_v3_component_errors_total"
_OPS = "dwcp_v3_component_operations_total"
_LATENCY = "dwcp_v3_migration_latency_seconds"
_THROUGHPUT = "dwcp_v3_throughput_bytes_per_second"
_HEALTH = "dwcp_v3_component_health"
_PEERS = "dwcp_v3_peers_connected"


def _metric(frame: pl.DataFrame, name: str, version: str | None) -> pl.DataFrame:
    sel = frame.filter(pl.col("metric") == name)
    if version is not None and "version" in sel.columns:
        sel = sel.filter(pl.col("version") == version)
    return sel


def region_signals(
    frame: pl.DataFrame,
    start: datetime | str,
    end: datetime | str,
    *,
    step: str = "1m",
    window: str = "5m",
    version: str = "v3",
) -> dict[str, pl.DataFrame]:
    """Chart series per region between ``start`` and ``end``; families absent from ``frame`` are skipped.

    Keys: ``error_pct`` (errors / operations over ``window``, percent), ``latency_p50_s`` (median
    migration latency over ``window``), ``throughput_gbps`` (GB/s), ``peers`` (reachable peers),
    ``component_health`` (min health per component and region over the span). Each frame has
    ``timestamp``, ``region``, ``value`` (the health frame: ``component``, ``region``, ``value``).
    """
    out: dict[str, pl.DataFrame] = {}
    kw = {"step": step, "start": start, "end": end}
    grid = slo.eval_times(start, end, step)
    span = pl.col("timestamp").is_between(*(pl.lit(int(t)).cast(pl.Datetime("ms", "UTC")) for t in grid[[0, -1]]))
    errors, ops = _metric(frame, _ERRORS, version), _metric(frame, _OPS, version)
    if ops.height:
        out["error_pct"] = slo.error_ratio(errors, ops, window, ["region"], **kw).select(
            "timestamp", "region", (pl.col("value") * 100).alias("value"))
    buckets = _metric(frame, f"{_LATENCY}_bucket", version)
    if buckets.height:
        out["latency_p50_s"] = slo.latency_quantile(buckets, _LATENCY, 0.5, window, ["region"], **kw).select(
            "timestamp", "region", "value")
    for key, name, scale in (("throughput_gbps", _THROUGHPUT, 1e-9), ("peers", _PEERS, 1.0)):
        sel = _metric(frame, name, version if name == _THROUGHPUT else None).filter(span)
        if sel.height:
            out[key] = (sel.group_by("timestamp", "region").agg((pl.col("value").mean() * scale).alias("value"))
                        .sort("region", "timestamp"))
    health = _metric(frame, _HEALTH, None).filter(span)
    if health.height:
        out["component_health"] = (health.group_by("component", "region").agg(pl.col("value").min())
                                   .sort("component", "region"))
    return out
