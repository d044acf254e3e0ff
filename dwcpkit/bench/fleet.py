"""``dwcpkit bench fleet``: fleet-wide error ratio over partitioned parquet larger than worker memory.

Generates a seeded fleet dataset (one parquet partition per node), then computes the per-region
error ratio every 5 minutes three ways in one run: in memory with :func:`dwcpkit.sre.slo.error_ratio`
on a subset that fits, and over the whole dataset with the polars (one partition at a time) and
Dask engines of :mod:`dwcpkit.sre.fleet` — Dask on a memory-limited ``LocalCluster``. Results on
the subset are compared with the in-memory path.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import polars as pl

from dwcpkit.sre import fleet, slo
from dwcpkit.telemetry.schema import normalize

__all__ = ["run", "format_table"]

WORKER_MEMORY = "400MB"


def _in_memory(files: list[Path]) -> tuple[pl.DataFrame, float]:
    t = time.perf_counter()
    full = normalize(pl.concat([pl.read_parquet(f) for f in files]))
    out = slo.error_ratio(full.filter(metric=fleet.ERRORS), full.filter(metric=fleet.OPS), "5m", ["region"],
                          step="5m", start=full["timestamp"].min(), end=full["timestamp"].max())
    return out, time.perf_counter() - t


def _max_diff(a: pl.DataFrame, b: pl.DataFrame) -> float:
    j = a.join(b, on=["timestamp", "region"], how="full", suffix="_b")
    if j["value"].null_count() or j["value_b"].null_count():
        return float("inf")  # a point one side lacks
    return float((j["value"] - j["value_b"]).abs().max())


def run(quick: bool = False) -> list[dict]:
    """Rows: engine, nodes, rows, memory estimate, seconds, rows/s, max |difference| vs in memory."""
    from distributed import Client, LocalCluster

    nodes, days, subset = (30, 0.25, 9) if quick else (1000, 2.0, 30)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dwcpkit-fleet-") as tmp:
        t = time.perf_counter()
        folder = fleet.write_fleet(Path(tmp) / "fleet", nodes=nodes, days=days)
        gen_s = time.perf_counter() - t
        files = fleet.partitions(folder)
        one = pl.read_parquet(files[0])
        total_rows = one.height * len(files)
        mem_gb = one.estimated_size() * len(files) / 1e9
        disk_gb = sum(f.stat().st_size for f in files) / 1e9
        sub = Path(tmp) / "subset"
        sub.mkdir()
        for f in files[:subset]:
            (sub / f.name).symlink_to(f)
        ref, ref_s = _in_memory(files[:subset])
        rows.append({"engine": "in memory (slo.error_ratio)", "nodes": subset, "rows": one.height * subset,
                     "seconds": ref_s, "max_abs_diff": 0.0})
        for engine in ("polars", "dask"):
            with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=WORKER_MEMORY,
                              dashboard_address=None, local_directory=str(Path(tmp) / "dask"),
                              processes=True) if engine == "dask" else _Null() as cluster:
                client = Client(cluster) if engine == "dask" else None
                try:
                    diff = _max_diff(ref, fleet.fleet_error_ratio(sub, engine=engine, client=client))
                    t = time.perf_counter()
                    fleet.fleet_error_ratio(folder, engine=engine, client=client)
                    secs = time.perf_counter() - t
                finally:
                    if client is not None:
                        client.close()
            label = "polars, one partition at a time" if engine == "polars" else \
                f"dask LocalCluster 2 workers x {WORKER_MEMORY}"
            rows.append({"engine": label, "nodes": nodes, "rows": total_rows, "seconds": secs, "max_abs_diff": diff})
        for r in rows:
            r["rows_per_s"] = r["rows"] / r["seconds"] if r["seconds"] else float("nan")
            r["dataset_gb_in_memory"] = mem_gb
            r["dataset_gb_on_disk"] = disk_gb
            r["generate_s"] = gen_s
    return rows


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def format_table(rows: list[dict]) -> str:
    """The benchmark table."""
    r0 = rows[0]
    head = (f"fleet dataset: {rows[1]['nodes']} nodes, {rows[1]['rows']:,} rows, "
            f"~{r0['dataset_gb_in_memory']:.2f} GB in memory (polars estimate), {r0['dataset_gb_on_disk']:.2f} GB "
            f"on disk, generated in {r0['generate_s']:.1f} s")
    lines = [head, f"{'engine':<40} {'nodes':>6} {'rows':>12} {'seconds':>8} {'rows/s':>12}  max |diff| vs in-memory "
                   "(subset)"]
    for r in rows:
        lines.append(f"{r['engine']:<40} {r['nodes']:>6} {r['rows']:>12,} {r['seconds']:>8.2f} {r['rows_per_s']:>12,.0f}"
                     f"  {r['max_abs_diff']:.2e}")
    return "\n".join(lines)
