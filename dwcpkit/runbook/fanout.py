"""Run one runbook per target (cluster, region, ...) with bounded concurrency, and fold the verdicts.

Targets come from a YAML file::

    params:                 # optional: common to every target
      lookback_minutes: 30
    targets:
      us-east: {source: "http://prom-us-east:9090"}
      eu-west: {source: "http://prom-eu-west:9090", lookback_minutes: 60}

(``targets`` may also be a list of ``{name: ..., params: {...}}``.) Every target's parameters are
validated before anything starts. Runs execute in a local process pool (one kernel per
process) or, given a scheduler address, on a Dask ``distributed`` cluster; each writes its own
run folder ``<out>/<runbook>/fanout-<UTC timestamp>-<id>/<target>/`` and the fan-out writes
``summary.json`` beside them.

Exit code: ESCALATE (30) if any target escalates; otherwise a failed run's own code (1, 3, 138,
...) if any failed — an unknown state outranks a known ACT; otherwise the worst verdict
(20 ACT, 10 WARN, 0 OK).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dwcpkit.errors import ParameterError
from dwcpkit.runbook.run import prepare, run

__all__ = ["Target", "load_targets", "fanout", "FanoutResult", "worst_exit_code", "format_summary"]

_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Target:
    """One fan-out target: a name (also its folder) and its parameter values."""

    name: str
    params: dict[str, Any]


def load_targets(path: str | Path) -> list[Target]:
    """Read a targets YAML file (see module docstring). Raises ParameterError on a bad file."""
    from dwcpkit._yamlio import read_yaml

    path = Path(path)
    doc = read_yaml(path, what="targets", error=ParameterError, mapping=False)
    if not isinstance(doc, Mapping) or "targets" not in doc:
        raise ParameterError(f"targets file {path} needs a top-level 'targets:' mapping or list")
    common = doc.get("params") or {}
    raw = doc["targets"]
    if isinstance(raw, Mapping):
        items = [(str(k), v or {}) for k, v in raw.items()]
    elif isinstance(raw, list):
        items = []
        for i, t in enumerate(raw):
            if not isinstance(t, Mapping) or "name" not in t:
                raise ParameterError(f"{path}: target #{i + 1} needs a 'name' (and optional 'params')")
            items.append((str(t["name"]), t.get("params") or {}))
    else:
        raise ParameterError(f"{path}: 'targets' must be a mapping or a list")
    if not items:
        raise ParameterError(f"{path}: no targets")
    names = [n for n, _ in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ParameterError(f"{path}: duplicate target names {dupes}")
    out = []
    for name, params in items:
        if not isinstance(params, Mapping):
            raise ParameterError(f"{path}: parameters of target {name!r} must be a mapping")
        out.append(Target(name, {**common, **params}))
    return out


def _run_one(runbook: str, params: dict[str, Any], folder: str) -> dict[str, Any]:
    result = run(runbook, params, folder=folder, progress=False)
    v = result.verdict or {}
    reasons = v.get("reasons") or []
    err = result.error or {}
    return {"exit_code": result.exit_code, "status": result.status, "level": v.get("level"),
            "label": v.get("label"), "reason": reasons[0] if reasons else err.get("evalue"),
            "folder": str(result.folder)}


def worst_exit_code(codes: list[int]) -> int:
    """Fold exit codes as the module docstring says.

    >>> worst_exit_code([0, 20, 10]), worst_exit_code([20, 3]), worst_exit_code([3, 30])
    (20, 3, 30)
    """
    if 30 in codes:
        return 30
    failures = [c for c in codes if c not in (0, 10, 20)]
    if failures:
        return max(failures)
    return max(codes, default=0)


@dataclass
class FanoutResult:
    """Per-target rows (target, level, label, exit_code, status, reason, folder) and the folded exit code."""

    folder: Path
    rows: list[dict[str, Any]]
    exit_code: int


def fanout(
    runbook: str,
    targets: list[Target],
    *,
    out: str | Path = "runs",
    jobs: int = 2,
    scheduler: str | None = None,
) -> FanoutResult:
    """Run ``runbook`` once per target with at most ``jobs`` at a time; see the module docstring."""
    if jobs < 1:
        raise ParameterError(f"jobs={jobs}: run at least one at a time")
    prepared = [(t, prepare(runbook, t.params)) for t in targets]  # exit 2 before anything starts
    info = prepared[0][1][0]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    root = Path(out) / info.name / f"fanout-{stamp}-{secrets.token_hex(3)}"
    root.mkdir(parents=True)
    work = [(t.name, (str(info.path), overrides, str(root / _SLUG.sub("_", t.name))))
            for t, (_, _, overrides) in prepared]
    results: dict[str, dict[str, Any]] = {}
    if scheduler:
        _on_dask(scheduler, work, jobs, results)
    else:
        _on_processes(work, jobs, results)
    rows = [{"target": name, **results[name]} for name, _ in work]
    code = worst_exit_code([r["exit_code"] for r in rows])
    (root / "summary.json").write_text(json.dumps({"runbook": info.name, "exit_code": code, "targets": rows},
                                                  indent=2) + "\n", encoding="utf-8")
    return FanoutResult(root, rows, code)


def _failed(exc: BaseException) -> dict[str, Any]:
    return {"exit_code": 1, "status": "failed", "level": None, "label": None,
            "reason": f"{type(exc).__name__}: {exc}", "folder": None}


def _on_processes(work, jobs, results) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # one clean interpreter (and kernel) per run
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {pool.submit(_run_one, *args): name for name, args in work}
        for fut, name in futures.items():
            try:
                results[name] = fut.result()
            except Exception as exc:  # noqa: BLE001 - one target's crash must not lose the others
                results[name] = _failed(exc)


def _on_dask(address: str, work, jobs, results) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ParameterError("--scheduler needs Dask: pip install 'dwcpkit[dask]'") from None
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ParameterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        pending = list(work)
        running = {}
        while pending or running:
            while pending and len(running) < jobs:
                name, args = pending.pop(0)
                running[client.submit(_run_one, *args, pure=False)] = name
            done = next(iter(as_completed(list(running))))
            name = running.pop(done)
            try:
                results[name] = done.result()
            except Exception as exc:  # noqa: BLE001
                results[name] = _failed(exc)
    finally:
        client.close()


def format_summary(result: FanoutResult) -> str:
    """The verdict table printed by ``dwcpkit fanout``."""
    width = max(len(r["target"]) for r in result.rows)
    lines = [f"{'target':<{width}}  verdict            exit  reason"]
    for r in result.rows:
        v = r["level"] or r["status"].upper()
        if r["label"] and r["label"] != r["level"]:
            v = f"{v} ({r['label']})"
        lines.append(f"{r['target']:<{width}}  {v:<17}  {r['exit_code']:>4}  {(r['reason'] or '')[:90]}")
    lines.append(f"summary  {result.folder / 'summary.json'}")
    lines.append(f"exit     {result.exit_code}")
    return "\n".join(lines)
