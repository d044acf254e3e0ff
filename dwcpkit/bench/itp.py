"""Benchmark: ITP placement — greedy by score vs first-fit vs best-fit, and the gap to the optimum.

Two sections, measured in one run:

* **speed and packing** — one seeded fleet (10,000 nodes, 8 regions, partly used, 1 % in
  maintenance) and one batch of 1,000 VMs with region, label, capability, cost/uptime,
  affinity and anti-affinity constraints (``quick``: 1,000 nodes, 100 VMs). Every solver
  places the same batch; best of ``repeat`` runs; every placement is checked with
  :func:`~dwcpkit.protocol.itp.validate_placement`. Greedy runs with the hybrid scorer, the
  DQN scorer with the fixed packing term, the DQN scorer with the source's packing term (which
  prefers emptier nodes), and the geographic scorer.
* **optimality gap** — many tiny random instances (6 VMs on 5 small nodes) solved by each
  heuristic and by the exact branch and bound, on both objectives (nodes used; total score).

Example
-------
>>> from dwcpkit.bench.itp import run, format_table
>>> rows = run(quick=True, repeat=1, instances=3)
>>> sorted({r["section"] for r in rows})
['gap', 'speed']
>>> "first-fit" in format_table(rows)
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dwcpkit.bench import render_table
from dwcpkit.protocol.sweeps import PLACEMENT_RUNS
from dwcpkit.errors import DataError, ParameterError
from dwcpkit.protocol.itp import (
    DEFAULT_REGIONS,
    VM,
    Nodes,
    Region,
    exact_place,
    place,
    synthetic_fleet,
    synthetic_vms,
    validate_placement,
)

__all__ = ["run", "format_table", "tiny_instance"]

_SPEED_RUNS = PLACEMENT_RUNS  # the same runs the placement study compares
_TINY_REGIONS = (Region("a", 50.0, 8.0), Region("b", 40.0, -75.0))


def tiny_instance(seed: int, n_vms: int = 6, n_nodes: int = 5) -> tuple[list[VM], Nodes, tuple[Region, ...]]:
    """A small random instance with binding capacity, region and anti-affinity constraints.

    >>> vms, nodes, regions = tiny_instance(0)
    >>> len(vms), len(nodes)
    (6, 5)
    """
    rng = np.random.default_rng(seed)
    cpu = rng.choice([8.0, 16.0], n_nodes)
    mem = cpu * 4e9
    used = rng.uniform(0.0, 0.5, n_nodes)
    nodes = Nodes(type=rng.integers(0, 4, n_nodes), cpu_total=cpu, mem_total=mem,
                  cpu_avail=np.floor(cpu * (1 - used)), mem_avail=mem * (1 - used),
                  region=rng.choice(["a", "b"], n_nodes), cost_per_hour=rng.uniform(0.1, 3.0, n_nodes),
                  net_gbps=rng.choice([1.0, 10.0, 100.0], n_nodes), cpu_ghz=rng.uniform(2.0, 4.0, n_nodes))
    vms = []
    for i in range(n_vms):
        kw: dict[str, Any] = {"priority": float(rng.choice([0.2, 0.5, 0.9]))}
        r = rng.random()
        if r < 0.2:
            kw["required_regions"] = (str(rng.choice(["a", "b"])),)
        elif r < 0.3:
            kw["preferred_regions"] = (str(rng.choice(["a", "b"])),)
        if rng.random() < 0.3:
            kw["anti_affinity_group"] = f"g{int(rng.integers(2))}"
        c = float(rng.choice([2.0, 4.0, 6.0, 8.0]))
        vms.append(VM(f"v{i}", cpu=c, memory=c * float(rng.choice([2e9, 4e9])), **kw))
    return vms, nodes, _TINY_REGIONS


def _speed(quick: bool, repeat: int, seed: int) -> list[dict]:
    n_nodes, n_vms = (1_000, 100) if quick else (10_000, 1_000)
    nodes = synthetic_fleet(n_nodes, seed=seed)
    vms = synthetic_vms(n_vms, seed=seed + 1)
    place(vms[:10], nodes, DEFAULT_REGIONS)  # warm-up (imports, caches)
    rows: list[dict] = []
    for solver, scorer, packing in _SPEED_RUNS:
        best = None
        for _ in range(repeat):
            p = place(vms, nodes, DEFAULT_REGIONS, solver=solver, scorer=scorer, packing=packing)
            if best is None or p.elapsed_s < best.elapsed_s:
                best = p
        assert best is not None
        problems = validate_placement(vms, nodes, best, DEFAULT_REGIONS)
        if problems:
            raise DataError(f"{solver}/{scorer} produced an invalid placement: {problems[:3]}")
        name = solver if solver != "greedy" else f"greedy {scorer}"
        if packing == "original":
            name += " (original packing)"
        rows.append({
            "section": "speed", "name": name, "vms": n_vms, "nodes": n_nodes, "seconds": best.elapsed_s,
            "vms_per_s": n_vms / best.elapsed_s, "placed": best.placed, "nodes_used": best.nodes_used,
            "utilisation": best.utilisation, "cluster_utilisation": best.cluster_utilisation,
        })
    ff = next(r["seconds"] for r in rows if r["name"] == "first-fit")
    for r in rows:
        r["x_first_fit_time"] = r["seconds"] / ff
    return rows


def _gap(instances: int, seed: int) -> list[dict]:
    heuristics = (("greedy", "hybrid"), ("greedy", "dqn"), ("first-fit", "hybrid"), ("best-fit", "hybrid"))
    acc: dict[tuple[str, str], list[tuple[float, float, bool, int]]] = {}
    exact_seconds = {"nodes": 0.0, "score": 0.0}
    for k in range(instances):
        vms, nodes, regions = tiny_instance(seed + k)
        for objective in ("nodes", "score"):
            exacts: dict[str, Any] = {}
            for solver, scorer in heuristics:
                key = scorer if objective == "score" else "any"
                if key not in exacts:
                    exacts[key] = exact_place(vms, nodes, regions, scorer=scorer, objective=objective)
                    if scorer == "hybrid":
                        exact_seconds[objective] += exacts[key].elapsed_s
                ex = exacts[key]
                h = place(vms, nodes, regions, solver=solver, scorer=scorer)
                (ep, ev), (hp, hv) = ex.objective(objective), h.objective(objective)
                if hp > ep or (hp == ep and hv > ev + 1e-9 * max(1.0, abs(ev))):
                    raise DataError(f"exact solver beaten by {solver} on instance {seed + k}: bug")
                if objective == "nodes":
                    gap = float(h.nodes_used - ex.nodes_used)
                    rel = gap / max(1, ex.nodes_used)
                else:
                    gap = ex.score_total - h.score_total
                    rel = gap / ex.score_total if ex.score_total > 0 else 0.0
                optimal = hp == ep and abs(gap) <= 1e-9 * max(1.0, abs(ev))
                label = solver if solver != "greedy" else f"greedy {scorer}"
                acc.setdefault((label, objective), []).append((gap, rel, optimal, ex.placed - h.placed))
    rows = []
    for (label, objective), vals in acc.items():
        arr = np.array([(g, r, o, d) for g, r, o, d in vals], dtype=float)
        same = arr[arr[:, 3] == 0]  # gaps only where both placed the same number of VMs
        rows.append({
            "section": "gap", "name": label, "objective": objective, "instances": len(vals),
            "mean_gap": float(same[:, 0].mean()) if len(same) else float("nan"),
            "mean_rel_gap": float(same[:, 1].mean()) if len(same) else float("nan"),
            "max_rel_gap": float(same[:, 1].max()) if len(same) else float("nan"),
            "optimal_share": float(arr[:, 2].mean()),
            "fewer_placed": int((arr[:, 3] > 0).sum()),
            "exact_ms_per_instance": 1000.0 * exact_seconds[objective] / len(vals),
        })
    return rows


def run(quick: bool = False, *, repeat: int = 3, instances: int | None = None, seed: int = 0) -> list[dict]:
    """Run both sections; rows carry ``section`` = ``"speed"`` or ``"gap"``.

    Parameters
    ----------
    quick : bool
        1,000 nodes / 100 VMs and 10 gap instances instead of 10,000 / 1,000 and 40.
    repeat : int
        Runs per solver in the speed section; the fastest counts.
    instances : int, optional
        Tiny instances in the gap section.
    seed : int

    Returns
    -------
    list of dict
        Speed rows: ``name, vms, nodes, seconds, vms_per_s, placed, nodes_used, utilisation,
        cluster_utilisation, x_first_fit_time``. Gap rows: ``name, objective, instances,
        mean_gap`` (nodes, or score points), ``mean_rel_gap, max_rel_gap`` (gaps over the
        instances where the heuristic placed as many VMs as the exact solver), ``optimal_share``
        (instances where the heuristic's objective equals the optimum), ``fewer_placed``
        (instances where it placed fewer VMs than possible), ``exact_ms_per_instance``.
    """
    if repeat < 1:
        raise ParameterError(f"repeat must be at least 1, got {repeat}")
    n_inst = (10 if quick else 40) if instances is None else instances
    if n_inst < 1:
        raise ParameterError(f"instances must be at least 1, got {n_inst}")
    return _speed(quick, repeat, seed) + _gap(n_inst, seed)


def format_table(rows: list[dict]) -> str:
    """Render :func:`run`'s rows: the speed table, then the optimality-gap table.

    >>> print(format_table([{"section": "speed", "name": "first-fit", "vms": 10, "nodes": 100,
    ...     "seconds": 0.01, "vms_per_s": 1000.0, "placed": 10, "nodes_used": 3,
    ...     "utilisation": 0.5, "cluster_utilisation": 0.1, "x_first_fit_time": 1.0}]))
    solver     VMs  nodes  seconds  VMs/s  placed  nodes used  util (used)  util (all)  x first-fit time
    first-fit   10    100    0.010  1,000      10           3        0.500      0.1000              1.00
    """
    out = []
    speed = [r for r in rows if r.get("section") == "speed"]
    gap = [r for r in rows if r.get("section") == "gap"]
    if speed:
        out.append(render_table(
            ("solver", "VMs", "nodes", "seconds", "VMs/s", "placed", "nodes used", "util (used)", "util (all)",
             "x first-fit time"),
            [(r["name"], f"{r['vms']:,}", f"{r['nodes']:,}", f"{r['seconds']:.3f}", f"{r['vms_per_s']:,.0f}",
              f"{r['placed']:,}", f"{r['nodes_used']:,}", f"{r['utilisation']:.3f}",
              f"{r['cluster_utilisation']:.4f}", f"{r['x_first_fit_time']:.2f}") for r in speed]))
    if gap:
        out.append(render_table(
            ("heuristic vs exact", "objective", "instances", "mean gap", "mean rel gap", "max rel gap",
             "optimal", "fewer placed", "exact ms/inst"),
            [(r["name"], r["objective"], f"{r['instances']}", f"{r['mean_gap']:.3f}", f"{r['mean_rel_gap']:.1%}",
              f"{r['max_rel_gap']:.1%}", f"{r['optimal_share']:.0%}", f"{r['fewer_placed']}",
              f"{r['exact_ms_per_instance']:.1f}") for r in gap]))
    return "\n\n".join(out)
