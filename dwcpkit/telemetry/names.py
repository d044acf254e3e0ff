"""Metric catalogue and the name adapter between the original's name sets.

dwcpkit's canonical names are the v3 collector's (``dwcp_v3_*``, reference/dwcp-operations.md
§4.2) plus the few ``production_metrics.go`` families (§4.1) that have no collector twin.
Every family the sample fleet emits is in :data:`CATALOG` with its type, labels, unit and help.
The rollout baseline is the same family with ``version="v1"`` (the original relabelled the pod
label ``version`` onto every series the same way).

:data:`PHASE6_TO_V3` maps names used by the Phase 6 scripts, alert rules and dashboards onto
catalogue names where the two mean the same thing; :func:`to_v3` / :func:`to_phase6` rename
the ``metric`` column of a frame. Names with no equivalent (a derived gauge such as
``dwcp_error_rate`` is a PromQL expression here, not a series) are listed in
:data:`PHASE6_DERIVED` with the expression that replaces them.

Example
-------
>>> from dwcpkit.telemetry.names import to_v3_name
>>> to_v3_name("dwcp_v3_errors_total")
'dwcp_v3_component_errors_total'
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = [
    "Family",
    "CATALOG",
    "LATENCY_BUCKETS",
    "COMPONENTS",
    "REGIONS",
    "VERSIONS",
    "PHASE6_TO_V3",
    "PHASE6_DERIVED",
    "to_v3_name",
    "to_phase6_name",
    "to_v3",
    "to_phase6",
]

#: Migration latency histogram buckets (seconds), production_metrics.go.
LATENCY_BUCKETS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
#: The six protocol components.
COMPONENTS: tuple[str, ...] = ("amst", "hde", "pba", "acp", "ass", "itp")
#: Regions of the sample fleet.
REGIONS: tuple[str, ...] = ("us-east", "eu-west", "ap-south")
#: Protocol versions: v1 is the rollout baseline.
VERSIONS: tuple[str, ...] = ("v1", "v3")


@dataclass(frozen=True)
class Family:
    """One metric family: name, Prometheus type, label names, unit and help text."""

    name: str
    type: str  # counter | gauge | histogram
    labels: tuple[str, ...]
    unit: str
    help: str


CATALOG: dict[str, Family] = {
    f.name: f
    for f in (
        Family("dwcp_v3_migration_latency_seconds", "histogram", ("region", "version"), "seconds",
               "Time to complete one VM migration."),
        Family("dwcp_v3_component_operations_total", "counter", ("component", "region", "version"), "",
               "Operations handled per protocol component."),
        Family("dwcp_v3_component_errors_total", "counter", ("component", "error_type", "region", "version"), "",
               "Failed operations per protocol component and error type."),
        Family("dwcp_v3_bytes_transferred_total", "counter", ("region", "version"), "bytes",
               "Bytes of VM memory sent over the WAN."),
        Family("dwcp_v3_throughput_bytes_per_second", "gauge", ("region", "version"), "bytes",
               "Current migration throughput."),
        Family("dwcp_v3_active_streams", "gauge", ("region", "version"), "",
               "Open AMST streams."),
        Family("dwcp_v3_compression_ratio", "gauge", ("region", "version"), "",
               "HDE compression ratio (original bytes / sent bytes)."),
        Family("dwcp_v3_component_health", "gauge", ("component", "region"), "",
               "1 when the component passes its health check, else 0 (v3 only)."),
        Family("dwcp_v3_peers_connected", "gauge", ("region",), "",
               "Peers a region's consensus group can reach (7 expected)."),
        Family("dwcp_v3_byzantine_detections_total", "counter", ("node_id", "region"), "",
               "Byzantine behaviour detected by ACP, per accused node."),
        Family("dwcp_v3_consensus_failures_total", "counter", ("region",), "",
               "Consensus rounds that failed to commit."),
        Family("dwcp_v3_rollout_percentage", "gauge", (), "percent",
               "Share of traffic routed to v3."),
    )
}

#: Phase 6 / script names that are the same series under another name.
PHASE6_TO_V3: dict[str, str] = {
    "dwcp_v3_errors_total": "dwcp_v3_component_errors_total",
    "dwcp_v3_acp_byzantine_detections_total": "dwcp_v3_byzantine_detections_total",
    "dwcp_v3_acp_consensus_failures_total": "dwcp_v3_consensus_failures_total",
    "dwcp_v3_amst_active_streams": "dwcp_v3_active_streams",
    "dwcp_v3_hde_compression_ratio": "dwcp_v3_compression_ratio",
    "dwcp_v3_network_bytes_total": "dwcp_v3_bytes_transferred_total",
    "dwcp_v3_rollout_progress_percent": "dwcp_v3_rollout_percentage",
    "dwcp_throughput_bytes_total": "dwcp_v3_bytes_transferred_total",
}
_V3_TO_PHASE6: dict[str, str] = {}
for _p6, _v3 in PHASE6_TO_V3.items():
    _V3_TO_PHASE6.setdefault(_v3, _p6)

#: Script-side derived gauges and the PromQL over catalogue names that replaces them.
PHASE6_DERIVED: dict[str, str] = {
    "dwcp_error_rate": "100 * sum(rate(dwcp_v3_component_errors_total[5m])) / sum(rate(dwcp_v3_component_operations_total[5m]))",
    "dwcp_v3_error_rate": "sum(rate(dwcp_v3_component_errors_total[5m])) / sum(rate(dwcp_v3_component_operations_total[5m]))",
    "dwcp_latency_p99_ms": "1000 * histogram_quantile(0.99, sum by (le) (rate(dwcp_v3_migration_latency_seconds_bucket[5m])))",
    "dwcp_v3_migration_latency_p50": "histogram_quantile(0.50, sum by (le) (rate(dwcp_v3_migration_latency_seconds_bucket[5m])))",
    "dwcp_v3_migration_latency_p95": "histogram_quantile(0.95, sum by (le) (rate(dwcp_v3_migration_latency_seconds_bucket[5m])))",
    "dwcp_v3_migration_latency_p99": "histogram_quantile(0.99, sum by (le) (rate(dwcp_v3_migration_latency_seconds_bucket[5m])))",
    "dwcp_v3_throughput_bytes_per_sec": "sum(rate(dwcp_v3_bytes_transferred_total[5m]))",
}

_SUFFIXES = ("_bucket", "_sum", "_count")


def _split_suffix(name: str) -> tuple[str, str]:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


def to_v3_name(name: str) -> str:
    """Canonical (v3 collector) name of ``name``; unknown names are returned unchanged."""
    if name in PHASE6_TO_V3:
        return PHASE6_TO_V3[name]
    base, suffix = _split_suffix(name)
    return PHASE6_TO_V3.get(base, base) + suffix if suffix else name


def to_phase6_name(name: str) -> str:
    """Phase 6 name of a canonical name; names without a Phase 6 twin are unchanged."""
    if name in _V3_TO_PHASE6:
        return _V3_TO_PHASE6[name]
    base, suffix = _split_suffix(name)
    return _V3_TO_PHASE6.get(base, base) + suffix if suffix else name


def _rename(frame: pl.DataFrame, mapping) -> pl.DataFrame:
    names = frame["metric"].unique().to_list()
    table = {n: mapping(n) for n in names}
    if all(k == v for k, v in table.items()):
        return frame
    return frame.with_columns(pl.col("metric").replace_strict(table, return_dtype=pl.String))


def to_v3(frame: pl.DataFrame) -> pl.DataFrame:
    """Rename the ``metric`` column of a canonical frame to v3 collector names."""
    return _rename(frame, to_v3_name)


def to_phase6(frame: pl.DataFrame) -> pl.DataFrame:
    """Rename the ``metric`` column of a canonical frame to Phase 6 names where one exists."""
    return _rename(frame, to_phase6_name)
