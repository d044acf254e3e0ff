"""ITP — intelligent task placement: the original's scorers, vectorised, and placement solvers.

DWCP v3 picks a host for each VM with one of three hand-written scorers (reference:
``dwcp-protocol.md`` §8): a performance/packing score labelled "DQN" (datacenter mode), a
geographic score weighing proximity, reliability, cost and sovereignty (internet mode), and a
per-node-type "heterogeneous" score; hybrid mode routes each VM to one of them by its shape.
This module implements the three formulas over whole node arrays (numpy), the ITPv3 filter,
and four solvers that share one constraint model:

* ``greedy``    — VMs in batch order (priority, then size, descending), each to its best-scoring
  feasible node (the original's algorithm; optional ε-greedy exploration as in its "DQN").
* ``first-fit`` — the first feasible node in node order (classic baseline).
* ``best-fit``  — the feasible node with the least free capacity left (classic baseline).
* ``exact``     — branch and bound over all assignments, for tiny instances: the optimum the
  heuristics are measured against.

Constraints: capacity (cpu, memory, disk, gpu), maintenance, required / excluded regions,
required node labels, required node type, uptime and cost limits, capability requirements
derived from the VM's workload labels, and affinity / anti-affinity groups at node, zone or
region scope.

Every scorer is affine in the node's availability, ``score = a + b * avail`` with
``avail = (cpu_avail/cpu_total + mem_avail/mem_total) / 2``; the solvers use that to rescore
only what changes as VMs land.

Deviations from the original (each one a documented defect or an ambiguity):

* **"Prefer fuller nodes".** The original packing term ``0.3·avail + 0.2·(1 − avail)`` nets to
  ``0.2 + 0.1·avail``, a preference for *emptier* nodes under a comment saying the opposite.
  Here the default ``packing="fuller"`` uses ``0.2·(1 − avail)``, which does prefer fuller
  nodes; ``packing="original"`` keeps the source's term for comparison.
* Uptime ratios are capped at 1 (the geographic reliability term was not).
* ``required_node_type`` is ``None`` or a :class:`NodeType`; the source used ``0`` for "any",
  so Cloud (= 0) could never be required.
* Region data (coordinates, sovereignty, latency, transfer cost) reaches the geographic scorer
  (in the source it was stored where the scorer never looked, so proximity defaulted to
  10,000 km everywhere).
* Proximity never goes negative: with no known target region the distance is the source's
  10,000 km default (proximity 0.5), and it is clipped to [0, 1]. Proximity is measured to
  ``preferred_regions`` when given (a soft preference), else to ``required_regions``; the
  source only had required regions, which its filter already enforced, so proximity was
  always 1.
* Capability requirements from workload labels (``cpu-arch``, ``gpu-type``, ``secure-enclave``,
  ...) are hard constraints for every scorer, not only for the heterogeneous engine.
* Affinity and anti-affinity groups are enforced (the source stored them and ignored them).
  The heuristics put the first VM of a node-scope affinity group on a node where the whole
  group fits, when one exists; the exact solver needs no such rule.
* The source's ``U(0, 0.01)`` score noise is off by default (``noise=0``); ties go to the lowest
  node index, so placements are reproducible. Pass ``noise=0.01`` for the original behaviour
  (seeded).
* "DQN" is what the source actually did: a fixed, hand-weighted heuristic with ε-greedy
  exploration (ε 0.1 → 0.01, ×0.995 per exploit step). Nothing is learned.
* A node with no sovereignty-labelled VM scores sovereignty 1 (neutral); the source only says
  the term "applies" when the label is present.

Example
-------
>>> from dwcpkit.protocol.itp import Nodes, VM, place
>>> nodes = Nodes(type=["cloud", "datacenter", "edge"], cpu_total=[8, 32, 4],
...               mem_total=[32e9, 128e9, 8e9], region=["eu", "us", "eu"])
>>> vms = [VM("web", cpu=2, memory=4e9, required_regions=("eu",)),
...        VM("db", cpu=16, memory=64e9)]
>>> p = place(vms, nodes, scorer="dqn")
>>> p.node_of("web"), p.node_of("db"), p.placed
('node-0', 'node-1', 2)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

import numpy as np

from dwcpkit.errors import ParameterError, ProtocolError

__all__ = [
    "NodeType",
    "Region",
    "Constraints",
    "VM",
    "Nodes",
    "EpsilonGreedy",
    "Placement",
    "DEFAULT_REGIONS",
    "GEO_WEIGHTS",
    "MODE_SCORER",
    "availability",
    "dqn_score",
    "geographic_score",
    "heterogeneous_score",
    "hybrid_route",
    "score",
    "feasible",
    "place",
    "exact_place",
    "validate_placement",
    "haversine_km",
    "synthetic_fleet",
    "synthetic_vms",
]

HOURS_PER_YEAR = 8760.0
EARTH_RADIUS_KM = 6371.0
UNKNOWN_DISTANCE_KM = 10_000.0
MAX_DISTANCE_KM = 20_000.0
DEFAULT_TRANSFER_COST_PER_GB = 0.10


class NodeType(IntEnum):
    """Node classes, with the source's wire values (Cloud = 0 ... Datacenter = 3)."""

    CLOUD = 0
    EDGE = 1
    VOLUNTEER = 2
    DATACENTER = 3


# Indexed by NodeType value.
_DQN_TYPE_BONUS = np.array([0.2, 0.1, 0.0, 0.3])
_GEO_TYPE_SCORE = np.array([1.0, 0.7, 0.5, 0.9])
_INFERRED_SLA = np.array([99.99, 99.0, 95.0, 99.95])
_INFERRED_LATENCY_MS = np.array([5.0, 20.0, 50.0, 1.0])
_INFERRED_PUBLIC_IP = np.array([True, False, False, False])
_INFERRED_DC_EXTRAS = np.array([False, False, False, True])  # NVMe, RDMA, InfiniBand

#: The geographic optimiser's default weights (``SetWeights`` renormalises to sum 1).
GEO_WEIGHTS: dict[str, float] = {"proximity": 0.3, "reliability": 0.4, "cost": 0.2, "sovereignty": 0.1}

#: Which scorer each network mode uses (datacenter packs for performance, internet weighs
#: geography and reliability, hybrid routes per VM).
MODE_SCORER: dict[str, str] = {"datacenter": "dqn", "internet": "geographic", "hybrid": "hybrid"}

_SCORERS = ("dqn", "geographic", "heterogeneous", "hybrid")
_SOLVERS = ("greedy", "first-fit", "best-fit", "exact")
_SCOPES = ("node", "zone", "region")
_FALSY = {"", "0", "false", "no", "off"}


def haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray:
    """Great-circle distance in km (R = 6371 km), broadcasting over arrays.

    >>> round(float(haversine_km(0.0, 0.0, 0.0, 90.0)))
    10008
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2) - np.radians(lon1)
    h = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


@dataclass(frozen=True)
class Region:
    """A region known to the geographic scorer.

    Parameters
    ----------
    name : str
        Matches the nodes' ``region`` column.
    lat, lon : float
        Coordinates in degrees.
    sovereign : bool
        Whether the region offers data sovereignty.
    compliance_zone : str
        e.g. ``"gdpr"``; compared with a VM's ``data-sovereignty`` label.
    max_latency_ms : float
        The region's largest inter-region latency (compared with ``Constraints.max_latency_ms``).
    transfer_cost_per_gb : float
        Cross-region transfer price, $/GB (source default 0.10).

    >>> Region("eu-west", 53.3, -6.3, sovereign=True, compliance_zone="gdpr").name
    'eu-west'
    """

    name: str
    lat: float
    lon: float
    sovereign: bool = False
    compliance_zone: str = ""
    max_latency_ms: float = 0.0
    transfer_cost_per_gb: float = DEFAULT_TRANSFER_COST_PER_GB

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat <= 90.0 or not -180.0 <= self.lon <= 180.0:
            raise ParameterError(f"region {self.name!r}: lat/lon ({self.lat}, {self.lon}) out of range; "
                                 "give degrees, lat in [-90, 90], lon in [-180, 180]")


#: Eight regions used by the synthetic fleet (coordinates of well-known cloud locations).
DEFAULT_REGIONS: tuple[Region, ...] = (
    Region("us-east", 39.0, -77.5, max_latency_ms=180.0),
    Region("us-west", 37.4, -122.1, max_latency_ms=190.0),
    Region("eu-west", 53.3, -6.3, sovereign=True, compliance_zone="gdpr", max_latency_ms=170.0),
    Region("eu-central", 50.1, 8.7, sovereign=True, compliance_zone="gdpr", max_latency_ms=160.0),
    Region("ap-south", 19.1, 72.9, max_latency_ms=220.0, transfer_cost_per_gb=0.11),
    Region("ap-northeast", 35.7, 139.7, sovereign=True, compliance_zone="appi", max_latency_ms=200.0,
           transfer_cost_per_gb=0.12),
    Region("sa-east", -23.5, -46.6, max_latency_ms=250.0, transfer_cost_per_gb=0.15),
    Region("af-south", -33.9, 18.4, max_latency_ms=280.0, transfer_cost_per_gb=0.15),
)


@dataclass(frozen=True)
class Constraints:
    """Per-VM placement limits (all optional).

    Parameters
    ----------
    max_latency_ms : float, optional
        Geographic: ×0.1 if the region's max inter-region latency exceeds it. DQN: ×0.8 on
        non-datacenter nodes when set.
    min_bandwidth_gbps : float, optional
        DQN: ×0.5 on nodes with less network bandwidth (Gbit/s).
    required_uptime : float, optional
        Fraction in [0, 1]; nodes with ``min(uptime_h / 8760, 1)`` below it are filtered out.
    max_cost_per_hour : float, optional
        Nodes costing more are filtered out.
    data_locality : bool
        Marks the VM geo-distributed for hybrid routing.
    required_node_type : NodeType, optional
        Only nodes of this type (``None`` = any; fixes the source's zero-value ambiguity).

    >>> Constraints(max_cost_per_hour=2.0).max_cost_per_hour
    2.0
    """

    max_latency_ms: float | None = None
    min_bandwidth_gbps: float | None = None
    required_uptime: float | None = None
    max_cost_per_hour: float | None = None
    data_locality: bool = False
    required_node_type: NodeType | None = None

    def __post_init__(self) -> None:
        if self.required_uptime is not None and not 0.0 <= self.required_uptime <= 1.0:
            raise ParameterError(f"required_uptime must be a fraction in [0, 1], got {self.required_uptime}")
        if self.required_node_type is not None:
            object.__setattr__(self, "required_node_type", _node_type(self.required_node_type))
        for name in ("max_latency_ms", "min_bandwidth_gbps", "max_cost_per_hour"):
            v = getattr(self, name)
            if v is not None and not v >= 0:
                raise ParameterError(f"{name} must be >= 0 or None, got {v}")


def _pairs(value: Mapping[str, str] | Iterable[tuple[str, str]] | None, what: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    try:
        return tuple(sorted((str(k), str(v)) for k, v in items))
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{what} must be a mapping of str to str, got {value!r}") from exc


def _names(value: Iterable[str] | str | None, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        raise ParameterError(f"{what} must be a sequence of region names, got the string {value!r}; "
                             f"write ({value!r},)")
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class VM:
    """A VM to place.

    Parameters
    ----------
    id : str
        Unique within a batch.
    cpu, memory, disk, gpu : float
        Demands: vCPUs, bytes, bytes, GPUs.
    priority : float
        In [0, 1]; higher goes first in a batch and multiplies the DQN score by 0.5 + 0.5·priority.
    affinity_group, anti_affinity_group : str, optional
        VMs sharing an affinity group land in one domain (node, zone or region: see
        ``place(affinity_scope=...)``); VMs sharing an anti-affinity group land in distinct domains.
    required_regions, excluded_regions : tuple of str
        Hard region filter.
    preferred_regions : tuple of str
        Soft: geographic proximity is measured to these (else to ``required_regions``).
    required_labels : mapping
        Node labels that must match exactly.
    labels : mapping
        Workload labels: ``cpu-arch``, ``gpu-type``, ``accelerator``, ``secure-enclave``,
        ``fast-storage``, ``min-bandwidth=high``, ``max-latency=low``, ``public-ip``,
        ``compliance``, ``min-sla`` (high/medium/other) become capability requirements;
        ``data-sovereignty`` feeds the geographic sovereignty term.
    constraints : Constraints

    >>> VM("a", cpu=2, memory=4e9, labels={"cpu-arch": "arm64"}).labels
    (('cpu-arch', 'arm64'),)
    """

    id: str
    cpu: float
    memory: float
    disk: float = 0.0
    gpu: float = 0.0
    priority: float = 0.5
    affinity_group: str | None = None
    anti_affinity_group: str | None = None
    required_regions: tuple[str, ...] = ()
    excluded_regions: tuple[str, ...] = ()
    preferred_regions: tuple[str, ...] = ()
    required_labels: Any = ()
    labels: Any = ()
    constraints: Constraints = field(default_factory=Constraints)

    def __post_init__(self) -> None:
        for name in ("cpu", "memory", "disk", "gpu"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v) and v >= 0):
                raise ParameterError(f"VM {self.id!r}: {name} must be a finite number >= 0, got {v!r}")
            object.__setattr__(self, name, float(v))
        if not 0.0 <= self.priority <= 1.0:
            raise ParameterError(f"VM {self.id!r}: priority must be in [0, 1], got {self.priority}")
        for name in ("required_regions", "excluded_regions", "preferred_regions"):
            object.__setattr__(self, name, _names(getattr(self, name), f"VM {self.id!r}: {name}"))
        object.__setattr__(self, "required_labels", _pairs(self.required_labels, f"VM {self.id!r}: required_labels"))
        object.__setattr__(self, "labels", _pairs(self.labels, f"VM {self.id!r}: labels"))
        if not isinstance(self.constraints, Constraints):
            raise ParameterError(f"VM {self.id!r}: constraints must be a Constraints, "
                                 f"got {type(self.constraints).__name__}")

    def label(self, key: str) -> str | None:
        """Value of workload label ``key``, or ``None``.

        >>> VM("a", cpu=1, memory=1e9, labels={"min-sla": "high"}).label("min-sla")
        'high'
        """
        for k, v in self.labels:
            if k == key:
                return v
        return None


def _node_type(value: Any) -> NodeType:
    if isinstance(value, str):
        try:
            return NodeType[value.strip().upper()]
        except KeyError:
            raise ParameterError(f"unknown node type {value!r}; use one of "
                                 f"{', '.join(t.name.lower() for t in NodeType)}") from None
    try:
        return NodeType(int(value))
    except (ValueError, TypeError):
        raise ParameterError(f"unknown node type {value!r}; use 0-3 or a name "
                             f"({', '.join(t.name.lower() for t in NodeType)})") from None


# name -> default; a str default names another column to copy; None means "inferred by type".
_NUM_COLS: dict[str, float | str | None] = {
    "cpu_avail": "cpu_total", "mem_avail": "mem_total", "disk_total": 0.0, "disk_avail": "disk_total",
    "gpu_total": 0.0, "gpu_avail": "gpu_total", "cpu_ghz": 2.5, "mem_bw_gbps": 20.0, "net_gbps": 10.0,
    "iops": 10_000.0, "uptime_h": HOURS_PER_YEAR, "failure_rate": 0.01, "cost_per_hour": 1.0,
    "sla": None, "latency_ms": None,
}
_BOOL_COLS: dict[str, bool | None] = {
    "maintenance": False, "sgx": False, "nvme": None, "rdma": None, "infiniband": None, "public_ip": None,
}
_STR_COLS: dict[str, str | None] = {
    "id": None, "region": "", "zone": "", "rack": "", "arch": "x86_64", "gpu_type": None,
    "accelerator": "", "compliance": "",
}


class Nodes:
    """A fleet of nodes as columns (numpy arrays), the input of every scorer and solver.

    Parameters
    ----------
    type : sequence of NodeType, int or str
        ``cloud``, ``edge``, ``volunteer`` or ``datacenter`` per node.
    cpu_total, mem_total : sequence of float
        Capacities (vCPUs, bytes); must be > 0.
    labels : mapping of str to sequence of str, optional
        Node label columns (``""`` = label absent).
    **columns
        Any of ``id region zone rack cpu_avail mem_avail disk_total disk_avail gpu_total
        gpu_avail cpu_ghz mem_bw_gbps net_gbps iops uptime_h failure_rate cost_per_hour
        maintenance`` and the capabilities ``arch gpu_type accelerator sgx nvme rdma infiniband
        public_ip compliance sla latency_ms``. Missing capabilities are inferred from the type
        as in the source (datacenter: NVMe, RDMA, InfiniBand, SLA 99.95, 1 ms; cloud: public
        IP, 99.99, 5 ms; edge: 99.0, 20 ms; volunteer: 95.0, 50 ms; GPU nodes "generic-gpu").

    >>> n = Nodes(type=["cloud", "datacenter"], cpu_total=[8, 32], mem_total=[32e9, 128e9])
    >>> len(n), n["sla"].tolist(), n["id"].tolist()
    (2, [99.99, 99.95], ['node-0', 'node-1'])
    """

    def __init__(self, *, type: Any, cpu_total: Any, mem_total: Any,
                 labels: Mapping[str, Sequence[str]] | None = None, **columns: Any) -> None:
        unknown = set(columns) - set(_NUM_COLS) - set(_BOOL_COLS) - set(_STR_COLS)
        if unknown:
            raise ParameterError(f"unknown node column(s) {sorted(unknown)}; known: "
                                 f"{sorted([*_NUM_COLS, *_BOOL_COLS, *_STR_COLS, 'type', 'cpu_total', 'mem_total'])}")
        types = np.asarray([_node_type(t) for t in np.asarray(type, dtype=object).ravel()], dtype=np.int8)
        n = len(types)
        self.n = n
        self.num: dict[str, np.ndarray] = {}
        self.flag: dict[str, np.ndarray] = {}
        self.cat: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
        self.types = types

        def num(name: str, value: Any) -> np.ndarray:
            arr = np.array(value, dtype=np.float64).ravel()
            if arr.shape != (n,):
                arr = np.broadcast_to(arr, (n,)).copy() if arr.size == 1 else arr
            if arr.shape != (n,):
                raise ParameterError(f"node column {name!r} has {arr.size} values for {n} nodes")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ParameterError(f"node column {name!r} must be finite and >= 0")
            return arr

        self.num["cpu_total"] = num("cpu_total", cpu_total)
        self.num["mem_total"] = num("mem_total", mem_total)
        for name in ("cpu_total", "mem_total"):
            if n and self.num[name].min() <= 0:
                raise ParameterError(f"node column {name!r} must be > 0 for every node "
                                     f"(node index {int(np.argmin(self.num[name]))})")
        for name, default in _NUM_COLS.items():
            if name in columns:
                self.num[name] = num(name, columns[name])
            elif isinstance(default, str):
                self.num[name] = self.num[default].copy()
            elif default is None:
                table = _INFERRED_SLA if name == "sla" else _INFERRED_LATENCY_MS
                self.num[name] = table[types] if n else np.zeros(0)
            else:
                self.num[name] = np.full(n, default, dtype=np.float64)
        for res in ("cpu", "mem", "disk", "gpu"):
            over = self.num[f"{res}_avail"] > self.num[f"{res}_total"] * (1 + 1e-12)
            if over.any():
                raise ParameterError(f"{res}_avail exceeds {res}_total on node index {int(np.argmax(over))}")
        for name, default in _BOOL_COLS.items():
            if name in columns:
                arr = np.asarray(columns[name], dtype=bool).ravel()
                if arr.size == 1 and n != 1:
                    arr = np.full(n, bool(arr[0]))
                if arr.shape != (n,):
                    raise ParameterError(f"node column {name!r} has {arr.size} values for {n} nodes")
                self.flag[name] = arr
            elif default is None:
                table = _INFERRED_PUBLIC_IP if name == "public_ip" else _INFERRED_DC_EXTRAS
                self.flag[name] = table[types] if n else np.zeros(0, bool)
            else:
                self.flag[name] = np.full(n, default, dtype=bool)
        for name, default in _STR_COLS.items():
            if name in columns:
                values = columns[name]
            elif name == "id":
                values = [f"node-{i}" for i in range(n)]
            elif name == "gpu_type":
                values = np.where(self.num["gpu_total"] > 0, "generic-gpu", "")
            else:
                values = [default] * n
            self.cat[name] = _categorical(values, n, name)
        ids = self.cat["id"]
        if len(ids[1]) != n:
            raise ParameterError("node ids must be unique")
        self.labels: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
        for key, values in (labels or {}).items():
            self.labels[str(key)] = _categorical(values, n, f"label {key!r}")

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"Nodes(n={self.n}, regions={len(self.cat['region'][1])}, labels={sorted(self.labels)})"

    def __getitem__(self, name: str) -> np.ndarray:
        """A column by name (``type`` as ints, string columns decoded)."""
        if name == "type":
            return self.types.copy()
        if name in self.num:
            return self.num[name]
        if name in self.flag:
            return self.flag[name]
        if name in self.cat:
            codes, cats = self.cat[name]
            return np.asarray(cats, dtype=object)[codes]
        if name.startswith("label:") and name[6:] in self.labels:
            codes, cats = self.labels[name[6:]]
            return np.asarray(cats, dtype=object)[codes]
        raise ParameterError(f"no node column {name!r}")

    def code(self, column: str, value: str) -> int:
        """Category code of ``value`` in string column ``column`` (``-1`` if absent)."""
        cats = self.cat[column][1] if column in self.cat else self.labels[column][1]
        try:
            return cats.index(value)
        except ValueError:
            return -1

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]]) -> Nodes:
        """Build from one mapping per node (a ``labels`` key may hold a dict of node labels).

        >>> Nodes.from_records([{"type": "edge", "cpu_total": 4, "mem_total": 8e9,
        ...                      "labels": {"tier": "gold"}}])["label:tier"].tolist()
        ['gold']
        """
        if not records:
            raise ParameterError("no node records given")
        keys: set[str] = set()
        label_keys: set[str] = set()
        for r in records:
            keys.update(k for k in r if k != "labels")
            label_keys.update((r.get("labels") or {}).keys())
        missing = {"type", "cpu_total", "mem_total"} - keys
        if missing:
            raise ParameterError(f"node records lack {sorted(missing)}")
        cols: dict[str, Any] = {}
        for k in keys:
            try:
                cols[k] = [r[k] for r in records]
            except KeyError:
                raise ParameterError(f"node column {k!r} is missing from some records; "
                                     "give it for every node") from None
        labels = {k: [str((r.get("labels") or {}).get(k, "")) for r in records] for k in sorted(label_keys)}
        return cls(labels=labels, **cols)

    def to_frame(self) -> Any:
        """All columns as a polars DataFrame (labels as ``label:<key>`` columns)."""
        import polars as pl

        data: dict[str, Any] = {"id": self["id"].tolist(), "type": [NodeType(t).name.lower() for t in self.types]}
        for name in _STR_COLS:
            if name != "id":
                data[name] = self[name].tolist()
        data["cpu_total"] = self.num["cpu_total"]
        data["mem_total"] = self.num["mem_total"]
        data.update({k: v for k, v in self.num.items() if k not in data})
        data.update(self.flag)
        for key in self.labels:
            data[f"label:{key}"] = self[f"label:{key}"].tolist()
        return pl.DataFrame(data)

    def with_avail(self, *, cpu_avail: Any = None, mem_avail: Any = None, disk_avail: Any = None,
                   gpu_avail: Any = None) -> Nodes:
        """A copy with new available capacities (e.g. after a placement)."""
        new = object.__new__(Nodes)
        new.n, new.types = self.n, self.types
        new.num = dict(self.num)
        new.flag, new.cat, new.labels = self.flag, self.cat, self.labels
        for name, value in (("cpu_avail", cpu_avail), ("mem_avail", mem_avail), ("disk_avail", disk_avail),
                            ("gpu_avail", gpu_avail)):
            if value is not None:
                arr = np.array(value, dtype=np.float64)
                if arr.shape != (self.n,):
                    raise ParameterError(f"{name} needs {self.n} values, got shape {arr.shape}")
                new.num[name] = arr
        return new


def _categorical(values: Any, n: int, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    arr = np.asarray(values, dtype=object).ravel()
    if arr.size == 1 and n != 1:
        arr = np.full(n, arr[0], dtype=object)
    if arr.shape != (n,):
        raise ParameterError(f"node column {name!r} has {arr.size} values for {n} nodes")
    arr = np.array(["" if v is None else str(v) for v in arr], dtype=str) if n else np.zeros(0, dtype=str)
    cats, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int32).ravel(), tuple(str(c) for c in cats)


def availability(nodes: Nodes, cpu_avail: np.ndarray | None = None, mem_avail: np.ndarray | None = None) -> np.ndarray:
    """``avail = (cpu_avail/cpu_total + mem_avail/mem_total) / 2`` per node, as in the source.

    >>> n = Nodes(type=[0], cpu_total=[8], mem_total=[16e9], cpu_avail=[4], mem_avail=[16e9])
    >>> availability(n).tolist()
    [0.75]
    """
    c = nodes.num["cpu_avail"] if cpu_avail is None else cpu_avail
    m = nodes.num["mem_avail"] if mem_avail is None else mem_avail
    return 0.5 * (c / nodes.num["cpu_total"] + m / nodes.num["mem_total"])


class _Ctx:
    """Per-(nodes, regions) precomputation shared by the scorers."""

    def __init__(self, nodes: Nodes, regions: Sequence[Region] | Mapping[str, Region] | None) -> None:
        if not isinstance(nodes, Nodes):
            raise ParameterError(f"nodes must be a dwcpkit.protocol.itp.Nodes, got {type(nodes).__name__}")
        self.nodes = nodes
        if regions is None:
            regions = ()
        reg_list = list(regions.values()) if isinstance(regions, Mapping) else list(regions)
        for r in reg_list:
            if not isinstance(r, Region):
                raise ParameterError(f"regions must be Region objects, got {type(r).__name__}")
        self.regions = {r.name: r for r in reg_list}
        codes, cats = nodes.cat["region"]
        self.reg_codes, self.reg_cats = codes, cats
        self.reg_index = {name: i for i, name in enumerate(cats)}
        k = len(cats)
        known = [self.regions.get(c) for c in cats]
        self.cat_known = np.array([r is not None for r in known], dtype=bool)
        self.cat_lat = np.array([r.lat if r else 0.0 for r in known])
        self.cat_lon = np.array([r.lon if r else 0.0 for r in known])
        self.cat_sovereign = np.array([bool(r and r.sovereign) for r in known], dtype=bool)
        self.cat_zone = [r.compliance_zone if r else "" for r in known]
        self.cat_maxlat = np.array([r.max_latency_ms if r else 0.0 for r in known])
        self.cat_cost = np.array([r.transfer_cost_per_gb if r else DEFAULT_TRANSFER_COST_PER_GB for r in known])
        self.k = k
        self._cache: dict[str, np.ndarray] = {}

    def node(self, key: str) -> np.ndarray:
        """Lazily computed per-node arrays that do not depend on the VM."""
        if key in self._cache:
            return self._cache[key]
        nd = self.nodes
        num, t = nd.num, nd.types
        if key == "uptime_ratio":
            v = np.minimum(num["uptime_h"] / HOURS_PER_YEAR, 1.0)
        elif key == "dqn_base":  # 0.4·perf + 0.1·rel
            perf = (0.5 * np.minimum(num["net_gbps"] / 100.0, 1.0) + _DQN_TYPE_BONUS[t]
                    + 0.2 * np.minimum(num["cpu_ghz"] / 4.0, 1.0))
            rel = 0.5 * self.node("uptime_ratio") + np.where(num["failure_rate"] < 0.01, 0.5, 0.0)
            v = 0.4 * perf + 0.1 * rel
        elif key == "geo_reliability":
            v = (self.node("uptime_ratio") + 1.0 / (1.0 + num["failure_rate"]) + _GEO_TYPE_SCORE[t]) / 3.0
        elif key == "geo_cost_node":
            v = np.maximum(0.0, 1.0 - num["cost_per_hour"] / 10.0)
        elif key in ("het_a", "het_b"):
            sla, bw, cost, lat = num["sla"] / 100.0, num["net_gbps"], num["cost_per_hour"], num["latency_ms"]
            f = nd.flag
            a_cloud = 0.3 * sla + 0.2 * np.minimum(bw / 100.0, 1.0) + 0.1 / (1.0 + cost / 10.0)
            a_edge = 0.5 * np.maximum(0.0, 1.0 - lat / 100.0) + 0.2 / (1.0 + cost / 5.0)
            a_vol = 0.5 / (1.0 + cost) + 0.2 * sla
            feat = 0.25 * f["rdma"] + 0.25 * f["infiniband"] + 0.25 * f["nvme"] + 0.25 * bw / 100.0
            a_dc = 0.4 * np.minimum(1.0, feat) + 0.3 * sla + 0.1 / (1.0 + cost / 20.0)
            self._cache["het_a"] = np.choose(t, [a_cloud, a_edge, a_vol, a_dc])
            self._cache["het_b"] = np.array([0.4, 0.3, 0.3, 0.2])[t]
            return self._cache[key]
        else:  # pragma: no cover - internal misuse
            raise KeyError(key)
        self._cache[key] = v
        return v

    def region_mask(self, names: Sequence[str]) -> np.ndarray:
        """Per-category boolean: category name in ``names``."""
        out = np.zeros(self.k, dtype=bool)
        for nm in names:
            i = self.reg_index.get(nm)
            if i is not None:
                out[i] = True
        return out


def _capability_mask(vm: VM, nd: Nodes) -> np.ndarray | None:
    """Hard requirements derived from the VM's workload labels (``None`` = no requirement)."""
    mask: np.ndarray | None = None

    def both(m: np.ndarray) -> None:
        nonlocal mask
        mask = m if mask is None else (mask & m)

    def cat_eq(column: str, value: str) -> np.ndarray:
        code = nd.code(column, value)
        return nd.cat[column][0] == code if code >= 0 else np.zeros(nd.n, dtype=bool)

    for key, value in vm.labels:
        truthy = value.strip().lower() not in _FALSY
        if key == "cpu-arch":
            both(cat_eq("arch", value))
        elif key == "gpu-type" and vm.gpu > 0:
            both(cat_eq("gpu_type", value))
        elif key == "accelerator":
            both(cat_eq("accelerator", value))
        elif key == "secure-enclave" and truthy:
            both(nd.flag["sgx"])
        elif key == "fast-storage" and truthy:
            both(nd.flag["nvme"])
        elif key == "min-bandwidth" and value == "high":
            both(nd.num["net_gbps"] >= 10.0)
        elif key == "max-latency" and value == "low":
            both(nd.num["latency_ms"] <= 10.0)
        elif key == "public-ip" and truthy:
            both(nd.flag["public_ip"])
        elif key == "compliance":
            codes, cats = nd.cat["compliance"]
            ok = np.array([value in {s.strip() for s in c.split(",")} for c in cats], dtype=bool)
            both(ok[codes] if len(cats) else np.zeros(nd.n, dtype=bool))
        elif key == "min-sla":
            need = {"high": 99.99, "medium": 99.9}.get(value, 99.0)
            both(nd.num["sla"] >= need - 1e-9)
    return mask


def _static_mask(vm: VM, ctx: _Ctx) -> np.ndarray:
    """The ITPv3 filter without capacity: what no placement in the batch can change."""
    nd = ctx.nodes
    m = ~nd.flag["maintenance"]
    if vm.required_regions:
        m &= ctx.region_mask(vm.required_regions)[ctx.reg_codes]
    if vm.excluded_regions:
        m &= ~ctx.region_mask(vm.excluded_regions)[ctx.reg_codes]
    for key, value in vm.required_labels:
        if key not in nd.labels:
            return np.zeros(nd.n, dtype=bool)
        code = nd.code(key, value)
        m &= nd.labels[key][0] == code
    c = vm.constraints
    if c.required_node_type is not None:
        m &= nd.types == int(c.required_node_type)
    if c.required_uptime is not None:
        m &= ctx.node("uptime_ratio") >= c.required_uptime
    if c.max_cost_per_hour is not None:
        m &= nd.num["cost_per_hour"] <= c.max_cost_per_hour
    cap = _capability_mask(vm, nd)
    if cap is not None:
        m &= cap
    # Capacity that can never fit (totals) is static too.
    m &= nd.num["cpu_total"] >= vm.cpu
    m &= nd.num["mem_total"] >= vm.memory
    if vm.disk > 0:
        m &= nd.num["disk_total"] >= vm.disk
    if vm.gpu > 0:
        m &= nd.num["gpu_total"] >= vm.gpu
    return m


def _check_packing(packing: str) -> None:
    if packing not in ("fuller", "original"):
        raise ParameterError(f"packing must be 'fuller' (prefer fuller nodes, the fix) or 'original' "
                             f"(the source's net preference for emptier nodes), got {packing!r}")


def _dqn_components(vm: VM, ctx: _Ctx, packing: str) -> tuple[np.ndarray, np.ndarray]:
    nd = ctx.nodes
    base = ctx.node("dqn_base")
    c = vm.constraints
    pen: np.ndarray | float = 1.0
    if c.max_latency_ms is not None:
        pen = pen * np.where(nd.types == NodeType.DATACENTER, 1.0, 0.8)
    if c.min_bandwidth_gbps is not None:
        pen = pen * np.where(nd.num["net_gbps"] < c.min_bandwidth_gbps, 0.5, 1.0)
    if c.required_uptime is not None:
        pen = pen * np.where(ctx.node("uptime_ratio") < c.required_uptime, 0.3, 1.0)
    if c.max_cost_per_hour is not None:
        pen = pen * np.where(nd.num["cost_per_hour"] > c.max_cost_per_hour, 0.7, 1.0)
    scale = pen * (0.5 + 0.5 * vm.priority)
    if packing == "fuller":  # 0.2·(1 − avail)
        a, b = (0.2 + base) * scale, -0.2 * scale
    else:  # 0.3·avail + 0.2·(1 − avail) = 0.2 + 0.1·avail
        a, b = (0.2 + base) * scale, 0.1 * scale
    return np.asarray(a, dtype=np.float64), np.broadcast_to(np.asarray(b, dtype=np.float64), (nd.n,))


def _normalised_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        return dict(GEO_WEIGHTS)
    unknown = set(weights) - set(GEO_WEIGHTS)
    if unknown:
        raise ParameterError(f"unknown geographic weight(s) {sorted(unknown)}; use {sorted(GEO_WEIGHTS)}")
    w = {k: float(weights.get(k, 0.0)) for k in GEO_WEIGHTS}
    total = sum(w.values())
    if any(v < 0 for v in w.values()) or total <= 0:
        raise ParameterError(f"geographic weights must be >= 0 with a positive sum, got {dict(weights)}")
    return {k: v / total for k, v in w.items()}


def _geo_components(vm: VM, ctx: _Ctx, weights: Mapping[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    w = _normalised_weights(weights)
    nd = ctx.nodes
    codes = ctx.reg_codes
    # Proximity per region category.
    targets = vm.preferred_regions or vm.required_regions
    if not targets:
        prox_cat = np.ones(ctx.k)
    else:
        in_target = ctx.region_mask(targets)
        known_targets = [ctx.regions[t] for t in targets if t in ctx.regions]
        if known_targets:
            tl = np.array([r.lat for r in known_targets])
            to = np.array([r.lon for r in known_targets])
            d = haversine_km(ctx.cat_lat[:, None], ctx.cat_lon[:, None], tl[None, :], to[None, :]).min(axis=1)
            d = np.where(ctx.cat_known, d, UNKNOWN_DISTANCE_KM)
        else:  # fix: the source used +max here, making the score hugely negative
            d = np.full(ctx.k, UNKNOWN_DISTANCE_KM)
        prox_cat = np.where(in_target, 1.0, np.clip(1.0 - d / MAX_DISTANCE_KM, 0.0, 1.0))
    if vm.excluded_regions:
        prox_cat = np.where(ctx.region_mask(vm.excluded_regions), 0.0, prox_cat)
    # Cost: node price and cross-region transfer (only for VMs in an affinity group).
    if vm.affinity_group:
        xregion = (vm.memory / 1e9) * ctx.cat_cost
        xcost_cat = np.maximum(0.0, 1.0 - xregion / 100.0)
    else:
        xcost_cat = np.ones(ctx.k)
    # Sovereignty.
    sov_label = vm.label("data-sovereignty")
    if sov_label is None:
        sov_cat = np.ones(ctx.k)
    else:
        zone_ok = np.array([z == sov_label for z in ctx.cat_zone], dtype=bool)
        sov_cat = np.where(ctx.cat_sovereign, np.where(zone_ok, 1.0, 0.5), 0.0)
    c = vm.constraints
    pen_cat = np.ones(ctx.k)
    if c.max_latency_ms is not None:
        pen_cat = np.where(ctx.cat_maxlat > c.max_latency_ms, 0.1, 1.0)
    per_cat = (w["proximity"] * prox_cat + 0.5 * w["cost"] * xcost_cat + w["sovereignty"] * sov_cat)
    s = per_cat[codes] + w["reliability"] * ctx.node("geo_reliability") + 0.5 * w["cost"] * ctx.node("geo_cost_node")
    s = s * pen_cat[codes]
    if c.max_cost_per_hour is not None:
        s = s * np.where(nd.num["cost_per_hour"] > c.max_cost_per_hour, 0.1, 1.0)
    if c.required_uptime is not None:
        s = s * np.where(ctx.node("uptime_ratio") < c.required_uptime, 0.1, 1.0)
    return s, np.zeros(nd.n)


def _het_components(vm: VM, ctx: _Ctx) -> tuple[np.ndarray, np.ndarray]:
    return ctx.node("het_a"), ctx.node("het_b")


def hybrid_route(vm: VM) -> Literal["dqn", "geographic", "heterogeneous"]:
    """Which scorer hybrid mode uses for ``vm`` (source §8.5).

    high-perf = gpu > 0 or cpu > 16 or memory > 64e9 B; geo = more than one required region or
    data locality; high-reliability = priority > 0.8 or required uptime > 0.99. High-perf and not
    geo → ``dqn``; geo or high-reliability → ``geographic``; otherwise ``heterogeneous``.

    >>> hybrid_route(VM("a", cpu=32, memory=8e9)), hybrid_route(VM("b", cpu=2, memory=1e9))
    ('dqn', 'heterogeneous')
    """
    high_perf = vm.gpu > 0 or vm.cpu > 16 or vm.memory > 64e9
    geo = len(vm.required_regions) > 1 or vm.constraints.data_locality
    ru = vm.constraints.required_uptime
    high_rel = vm.priority > 0.8 or (ru is not None and ru > 0.99)
    if high_perf and not geo:
        return "dqn"
    if geo or high_rel:
        return "geographic"
    return "heterogeneous"


def _resolve_scorer(scorer: str) -> str:
    s = MODE_SCORER.get(scorer, scorer) if scorer not in _SCORERS else scorer
    if s not in _SCORERS:
        raise ParameterError(f"unknown scorer {scorer!r}; use one of {', '.join(_SCORERS)} "
                             f"or a mode ({', '.join(MODE_SCORER)})")
    return s


def _components(vm: VM, ctx: _Ctx, scorer: str, packing: str,
                weights: Mapping[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    route = hybrid_route(vm) if scorer == "hybrid" else scorer
    if route == "dqn":
        return _dqn_components(vm, ctx, packing)
    if route == "geographic":
        return _geo_components(vm, ctx, weights)
    return _het_components(vm, ctx)


def _noise(noise: float, n: int, seed: int | np.random.Generator | None) -> np.ndarray | float:
    if noise < 0:
        raise ParameterError(f"noise must be >= 0, got {noise}")
    if noise == 0:
        return 0.0
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return rng.uniform(0.0, noise, n)


def dqn_score(vm: VM, nodes: Nodes, *, packing: Literal["fuller", "original"] = "fuller",
              noise: float = 0.0, seed: int | np.random.Generator | None = None) -> np.ndarray:
    """The source's "DQN" Q-value for ``vm`` on every node (a fixed heuristic, nothing learned).

    ``Q = (pack + 0.4·perf + 0.1·rel) × penalties × (0.5 + 0.5·priority) + U(0, noise)`` with
    ``perf = 0.5·min(net_gbps/100, 1) + type bonus (dc 0.3, cloud 0.2, edge 0.1, volunteer 0)
    + 0.2·min(GHz/4, 1)``, ``rel = 0.5·min(uptime_h/8760, 1) + 0.5·[failure_rate < 0.01]``;
    penalties ×0.8 (max latency set, node not datacenter), ×0.5 (bandwidth below minimum),
    ×0.3 (uptime below required), ×0.7 (cost above maximum). ``pack`` is ``0.2·(1 − avail)``
    (``packing="fuller"``, the fix) or the source's ``0.3·avail + 0.2·(1 − avail)``
    (``packing="original"``, which prefers *emptier* nodes).

    >>> n = Nodes(type=["cloud", "cloud"], cpu_total=[8, 8], mem_total=[8e9, 8e9], cpu_avail=[8, 2])
    >>> fixed = dqn_score(VM("a", cpu=1, memory=1e9), n)
    >>> orig = dqn_score(VM("a", cpu=1, memory=1e9), n, packing="original")
    >>> bool(fixed[1] > fixed[0]), bool(orig[1] > orig[0])   # node 1 is the fuller one
    (True, False)
    """
    _check_packing(packing)
    ctx = _Ctx(nodes, None)
    a, b = _dqn_components(vm, ctx, packing)
    return a + b * availability(nodes) + _noise(noise, nodes.n, seed)


def geographic_score(vm: VM, nodes: Nodes, regions: Sequence[Region] | Mapping[str, Region] | None = None, *,
                     weights: Mapping[str, float] | None = None) -> np.ndarray:
    """The geographic optimiser's score for ``vm`` on every node.

    ``0.3·proximity + 0.4·reliability + 0.2·cost + 0.1·sovereignty`` (weights renormalised to
    sum 1), where proximity is 1 in a target region, else ``1 − d/20,000 km`` to the nearest
    target (haversine), 0 in an excluded region; reliability ``(min(uptime/1 y, 1) +
    1/(1 + failure_rate) + type score)/3`` (cloud 1.0, datacenter 0.9, edge 0.7, volunteer
    0.5); cost ``(max(0, 1 − $/h/10) + max(0, 1 − xregion/100))/2`` with ``xregion = mem_GB ×
    region $/GB`` for VMs in an affinity group; sovereignty (VMs labelled
    ``data-sovereignty``) 0 in a non-sovereign region, 0.5 in another compliance zone, else 1.
    Each broken limit (region latency > max latency, cost > max, uptime < required) ×0.1.

    >>> n = Nodes(type=["cloud", "cloud"], cpu_total=[8, 8], mem_total=[8e9, 8e9],
    ...           region=["eu-west", "us-east"])
    >>> s = geographic_score(VM("a", cpu=1, memory=1e9, preferred_regions=("eu-central",)),
    ...                      n, DEFAULT_REGIONS)
    >>> bool(s[0] > s[1])
    True
    """
    return _geo_components(vm, _Ctx(nodes, regions), weights)[0]


def heterogeneous_score(vm: VM, nodes: Nodes) -> np.ndarray:
    """The heterogeneous engine's per-node-type score (capability requirements: :func:`feasible`).

    With ``avail`` as in :func:`availability`, SLA in percent, bandwidth in Gbit/s, cost in $/h:

    * cloud: ``0.4·avail + 0.3·SLA/100 + 0.2·min(bw/100, 1) + 0.1/(1 + cost/10)``
    * edge: ``0.5·max(0, 1 − latency_ms/100) + 0.3·avail + 0.2/(1 + cost/5)``
    * volunteer: ``0.5/(1 + cost) + 0.3·avail + 0.2·SLA/100``
    * datacenter: ``0.4·min(1, 0.25·[RDMA] + 0.25·[IB] + 0.25·[NVMe] + 0.25·bw/100) +
      0.3·SLA/100 + 0.2·avail + 0.1/(1 + cost/20)``

    >>> n = Nodes(type=["volunteer"], cpu_total=[4], mem_total=[4e9], cost_per_hour=[0.0])
    >>> round(float(heterogeneous_score(VM("a", cpu=1, memory=1e9), n)[0]), 3)
    0.99
    """
    ctx = _Ctx(nodes, None)
    a, b = _het_components(vm, ctx)
    return a + b * availability(nodes)


def score(vm: VM, nodes: Nodes, regions: Sequence[Region] | Mapping[str, Region] | None = None, *,
          scorer: str = "hybrid", packing: Literal["fuller", "original"] = "fuller") -> np.ndarray:
    """Score ``vm`` on every node with ``scorer`` (``dqn``, ``geographic``, ``heterogeneous``,
    ``hybrid``, or a mode name: ``datacenter``, ``internet``). Higher is better; feasibility is
    separate (:func:`feasible`).

    >>> n = Nodes(type=["cloud", "datacenter"], cpu_total=[8, 64], mem_total=[32e9, 256e9])
    >>> score(VM("big", cpu=32, memory=8e9), n).shape   # hybrid routes it to dqn
    (2,)
    """
    _check_packing(packing)
    ctx = _Ctx(nodes, regions)
    a, b = _components(vm, ctx, _resolve_scorer(scorer), packing)
    return a + b * availability(nodes)


def feasible(vm: VM, nodes: Nodes, regions: Sequence[Region] | Mapping[str, Region] | None = None) -> np.ndarray:
    """Boolean mask of nodes that can host ``vm`` now: the ITPv3 filter plus current capacity.

    Filtered out: nodes in maintenance; outside the required regions or inside excluded ones;
    missing a required node label; of the wrong ``required_node_type``; with
    ``min(uptime_h/8760, 1)`` below the required uptime; costing more than the maximum; lacking
    a capability the workload labels require; or without enough available cpu, memory, disk
    or gpu. (Affinity groups need a batch: see :func:`place`.)

    >>> n = Nodes(type=["cloud", "edge"], cpu_total=[8, 8], mem_total=[8e9, 8e9], maintenance=[True, False])
    >>> feasible(VM("a", cpu=1, memory=1e9), n).tolist()
    [False, True]
    """
    ctx = _Ctx(nodes, regions)
    m = _static_mask(vm, ctx)
    num = nodes.num
    m &= num["cpu_avail"] >= vm.cpu
    m &= num["mem_avail"] >= vm.memory
    m &= num["disk_avail"] >= vm.disk
    m &= num["gpu_avail"] >= vm.gpu
    return m


def _why_not(vm: VM, ctx: _Ctx, cpu: np.ndarray, mem: np.ndarray, disk: np.ndarray, gpu: np.ndarray) -> str:
    nd = ctx.nodes
    parts = []
    cap = _capability_mask(vm, nd)
    checks: list[tuple[str, np.ndarray | None]] = [
        ("in maintenance", nd.flag["maintenance"]),
        ("outside required regions",
         ~ctx.region_mask(vm.required_regions)[ctx.reg_codes] if vm.required_regions else None),
        ("in excluded regions", ctx.region_mask(vm.excluded_regions)[ctx.reg_codes] if vm.excluded_regions else None),
        ("lacking a workload capability", None if cap is None else ~cap),
        ("too little cpu", cpu < vm.cpu),
        ("too little memory", mem < vm.memory),
        ("too little disk", disk < vm.disk),
        ("too little gpu", gpu < vm.gpu),
    ]
    for label, arr in checks:
        if arr is not None:
            k = int(np.count_nonzero(arr))
            if k:
                parts.append(f"{k} {label}")
    return ", ".join(parts) or "affinity/anti-affinity, labels, node type, uptime or cost limits"


@dataclass
class EpsilonGreedy:
    """The source's "DQN" exploration: with probability ε pick a random feasible node.

    ε starts at 0.1; after each exploit step ε ← 0.995·ε while ε > 0.01 (its ``learning rate``
    and ``γ`` were stored and never used, and are not here either). Seeded.

    >>> eg = EpsilonGreedy(seed=1)
    >>> sum(eg.explore() for _ in range(1000)) < 200
    True
    """

    epsilon: float = 0.1
    min_epsilon: float = 0.01
    decay: float = 0.995
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0 or not 0.0 <= self.min_epsilon <= 1.0 or not 0.0 < self.decay <= 1.0:
            raise ParameterError("EpsilonGreedy needs 0 <= epsilon, min_epsilon <= 1 and 0 < decay <= 1")
        self.rng = np.random.default_rng(self.seed)

    def explore(self) -> bool:
        """Whether this step explores; an exploit step decays ε."""
        if self.rng.random() < self.epsilon:
            return True
        if self.epsilon > self.min_epsilon:
            self.epsilon *= self.decay
        return False


@dataclass
class Placement:
    """Result of :func:`place`.

    Attributes
    ----------
    assignment : np.ndarray
        Node index per VM, in the order the VMs were given; ``-1`` = not placed.
    vm_ids : tuple of str
    node_ids : np.ndarray
        Ids of all nodes (index → id).
    solver, scorer : str
    elapsed_s : float
        Wall time of the solve itself (scoring and search, not input validation).
    score_total : float
        Σ over placed VMs of the scorer's value on the batch's *starting* availability (noise
        excluded): the "score" objective the exact solver maximises.
    nodes_used : int
        Distinct nodes that received at least one VM of this batch.
    utilisation : float
        Mean over those nodes of (cpu used fraction + memory used fraction)/2 after placement
        (the source's utilisation, on the nodes in use).
    cluster_utilisation : float
        The same over all nodes not in maintenance.
    cpu_avail, mem_avail, disk_avail, gpu_avail : np.ndarray
        Capacities left after placement.
    unplaced_reasons : dict
        VM id → why no node was feasible.
    """

    assignment: np.ndarray
    vm_ids: tuple[str, ...]
    node_ids: np.ndarray
    solver: str
    scorer: str
    elapsed_s: float
    score_total: float
    nodes_used: int
    utilisation: float
    cluster_utilisation: float
    cpu_avail: np.ndarray
    mem_avail: np.ndarray
    disk_avail: np.ndarray
    gpu_avail: np.ndarray
    unplaced_reasons: dict[str, str] = field(default_factory=dict)

    @property
    def placed(self) -> int:
        """Number of VMs placed."""
        return int(np.count_nonzero(self.assignment >= 0))

    @property
    def unplaced(self) -> list[str]:
        """Ids of the VMs not placed."""
        return [v for v, a in zip(self.vm_ids, self.assignment) if a < 0]

    def objective(self, kind: Literal["score", "nodes"] = "score") -> tuple[int, float]:
        """``(placed, value)`` compared lexicographically, larger is better; value is
        ``score_total`` or ``-nodes_used``."""
        if kind == "score":
            return self.placed, self.score_total
        if kind == "nodes":
            return self.placed, -float(self.nodes_used)
        raise ParameterError(f"objective must be 'score' or 'nodes', got {kind!r}")

    def node_of(self, vm_id: str) -> str | None:
        """Id of the node hosting ``vm_id`` (``None`` if not placed)."""
        try:
            i = self.vm_ids.index(vm_id)
        except ValueError:
            raise ParameterError(f"no VM {vm_id!r} in this placement") from None
        a = int(self.assignment[i])
        return None if a < 0 else str(self.node_ids[a])

    def to_frame(self) -> Any:
        """One row per VM: ``vm_id``, ``node_index`` (null if unplaced), ``node_id``."""
        import polars as pl

        idx = [int(a) if a >= 0 else None for a in self.assignment]
        return pl.DataFrame({
            "vm_id": list(self.vm_ids),
            "node_index": pl.Series(idx, dtype=pl.Int64),
            "node_id": [str(self.node_ids[a]) if a is not None else None for a in idx],
        })

    def apply(self, nodes: Nodes) -> Nodes:
        """``nodes`` with the capacities left after this placement."""
        return nodes.with_avail(cpu_avail=self.cpu_avail, mem_avail=self.mem_avail,
                                disk_avail=self.disk_avail, gpu_avail=self.gpu_avail)


class _Problem:
    """A batch of VMs on a fleet: demands, groups, domains and cached static vectors."""

    def __init__(self, vms: Sequence[VM], nodes: Nodes, regions: Any, scorer: str, packing: str,
                 scope: str, weights: Mapping[str, float] | None = None) -> None:
        if scope not in _SCOPES:
            raise ParameterError(f"affinity_scope must be one of {', '.join(_SCOPES)}, got {scope!r}")
        _check_packing(packing)
        vms = list(vms)
        for v in vms:
            if not isinstance(v, VM):
                raise ParameterError(f"vms must be VM objects, got {type(v).__name__}")
        ids = [v.id for v in vms]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise ParameterError(f"VM ids must be unique in a batch; repeated: {dup}")
        self.vms = vms
        self.ctx = _Ctx(nodes, regions)
        self.nodes = nodes
        self.scorer = _resolve_scorer(scorer)
        self.packing = packing
        self.weights = weights
        self.demand = np.array([[v.cpu, v.memory, v.disk, v.gpu] for v in vms], dtype=np.float64).reshape(-1, 4)
        if scope == "node":
            self.domain = np.arange(nodes.n)
            self.n_domains = nodes.n
        else:
            codes, cats = nodes.cat["region" if scope == "region" else "zone"]
            if scope == "zone":  # zones are only meaningful within a region
                pair = codes.astype(np.int64) * (len(self.ctx.reg_cats) + 1) + self.ctx.reg_codes
                _, codes = np.unique(pair, return_inverse=True)
            self.domain = codes.astype(np.int64).ravel()
            self.n_domains = int(self.domain.max()) + 1 if nodes.n else 0
        self.node_scope = scope == "node"
        aff = {g: k for k, g in enumerate(sorted({v.affinity_group for v in vms if v.affinity_group}))}
        anti = {g: k for k, g in enumerate(sorted({v.anti_affinity_group for v in vms if v.anti_affinity_group}))}
        self.aff = np.array([aff.get(v.affinity_group, -1) if v.affinity_group else -1 for v in vms], dtype=np.int64)
        self.anti = np.array([anti.get(v.anti_affinity_group, -1) if v.anti_affinity_group else -1 for v in vms],
                             dtype=np.int64)
        self.n_aff, self.n_anti = len(aff), len(anti)
        self.aff_demand = np.zeros((len(aff), 4))
        for i, g in enumerate(self.aff):
            if g >= 0:
                self.aff_demand[g] += self.demand[i]
        self._mask_cache: dict[tuple, np.ndarray] = {}
        self._comp_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def order(self, order: str) -> np.ndarray:
        n = len(self.vms)
        if order == "given":
            return np.arange(n)
        if order != "priority":
            raise ParameterError(f"order must be 'priority' (priority, then cpu + floor(mem/1e9), "
                                 f"descending, as the source) or 'given', got {order!r}")
        pri = np.array([v.priority for v in self.vms])
        size = np.array([v.cpu + math.floor(v.memory / 1e9) for v in self.vms])
        return np.lexsort((np.arange(n), -size, -pri)) if n else np.arange(0)

    def static_mask(self, i: int) -> np.ndarray:
        v = self.vms[i]
        key = (v.required_regions, v.excluded_regions, v.required_labels, v.constraints, v.labels,
               v.cpu, v.memory, v.disk, v.gpu)
        m = self._mask_cache.get(key)
        if m is None:
            m = _static_mask(v, self.ctx)
            self._mask_cache[key] = m
        return m

    def components(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        v = self.vms[i]
        route = hybrid_route(v) if self.scorer == "hybrid" else self.scorer
        if route == "dqn":  # priority is a scalar factor: cache without it
            key = (route, v.constraints)
            ab = self._comp_cache.get(key)
            if ab is None:
                ab = _dqn_components(VM("k", 0, 0, priority=1.0, constraints=v.constraints), self.ctx, self.packing)
                self._comp_cache[key] = ab
            f = (0.5 + 0.5 * v.priority) / 1.0
            return ab[0] * f, ab[1] * f
        if route == "geographic":
            key = (route, v.preferred_regions or v.required_regions, v.excluded_regions, v.constraints,
                   v.label("data-sovereignty"), v.memory if v.affinity_group else None)
        else:
            key = (route,)
        ab = self._comp_cache.get(key)
        if ab is None:
            ab = _components(v, self.ctx, route, self.packing, self.weights)
            self._comp_cache[key] = ab
        return ab


class _State:
    """Mutable capacities and group bookkeeping during a solve (supports undo for B&B)."""

    def __init__(self, prob: _Problem) -> None:
        num = prob.nodes.num
        self.prob = prob
        self.cpu = num["cpu_avail"].copy()
        self.mem = num["mem_avail"].copy()
        self.disk = num["disk_avail"].copy()
        self.gpu = num["gpu_avail"].copy()
        self.inv_cpu = 1.0 / num["cpu_total"]
        self.inv_mem = 1.0 / num["mem_total"]
        self.avail = 0.5 * (self.cpu * self.inv_cpu + self.mem * self.inv_mem)
        self.anti_cnt = np.zeros((prob.n_anti, max(prob.n_domains, 1)), dtype=np.int32)
        self.aff_dom = np.full(prob.n_aff, -1, dtype=np.int64)
        self.aff_cnt = np.zeros(prob.n_aff, dtype=np.int64)
        self.count = np.zeros(prob.nodes.n, dtype=np.int64)
        self.used = 0

    def candidates(self, i: int) -> np.ndarray:
        p = self.prob
        c, m, d, g = p.demand[i]
        mask = p.static_mask(i) & (self.cpu >= c)
        mask &= self.mem >= m
        if d > 0:
            mask &= self.disk >= d
        if g > 0:
            mask &= self.gpu >= g
        a = p.anti[i]
        if a >= 0:
            cnt = self.anti_cnt[a]
            mask &= (cnt == 0) if p.node_scope else (cnt[p.domain] == 0)
        f = p.aff[i]
        if f >= 0 and self.aff_dom[f] >= 0:
            if p.node_scope:
                keep = int(self.aff_dom[f])
                ok = bool(mask[keep])
                mask[:] = False
                mask[keep] = ok
            else:
                mask &= p.domain == self.aff_dom[f]
        return mask

    def assign(self, i: int, j: int) -> None:
        p = self.prob
        c, m, d, g = p.demand[i]
        self.cpu[j] -= c
        self.mem[j] -= m
        self.disk[j] -= d
        self.gpu[j] -= g
        self.avail[j] = 0.5 * (self.cpu[j] * self.inv_cpu[j] + self.mem[j] * self.inv_mem[j])
        dom = p.domain[j]
        if p.anti[i] >= 0:
            self.anti_cnt[p.anti[i], dom] += 1
        f = p.aff[i]
        if f >= 0:
            if self.aff_cnt[f] == 0:
                self.aff_dom[f] = dom
            self.aff_cnt[f] += 1
        self.count[j] += 1
        if self.count[j] == 1:
            self.used += 1

    def unassign(self, i: int, j: int) -> None:
        p = self.prob
        c, m, d, g = p.demand[i]
        self.cpu[j] += c
        self.mem[j] += m
        self.disk[j] += d
        self.gpu[j] += g
        self.avail[j] = 0.5 * (self.cpu[j] * self.inv_cpu[j] + self.mem[j] * self.inv_mem[j])
        if p.anti[i] >= 0:
            self.anti_cnt[p.anti[i], p.domain[j]] -= 1
        f = p.aff[i]
        if f >= 0:
            self.aff_cnt[f] -= 1
            if self.aff_cnt[f] == 0:
                self.aff_dom[f] = -1
        self.count[j] -= 1
        if self.count[j] == 0:
            self.used -= 1


def _solve_heuristic(prob: _Problem, state: _State, solver: str, order: np.ndarray, atomic: bool,
                     noise: float, rng: np.random.Generator, epsilon: EpsilonGreedy | None,
                     reasons: dict[str, str]) -> np.ndarray:
    assign = np.full(len(prob.vms), -1, dtype=np.int64)
    for i in order:
        i = int(i)
        mask = state.candidates(i)
        f = prob.aff[i]
        if prob.node_scope and f >= 0 and state.aff_dom[f] < 0:
            # Heuristics place the first VM of a node-affinity group where the whole group fits,
            # if such a node exists (otherwise followers would find their leader's node full).
            c, m, d, g = prob.aff_demand[f]
            gang = mask & (state.cpu >= c) & (state.mem >= m) & (state.disk >= d) & (state.gpu >= g)
            if gang.any():
                mask = gang
        if solver == "first-fit":
            j = int(np.argmax(mask))
            ok = bool(mask[j]) if mask.size else False
        elif solver == "best-fit":
            if not mask.any():
                ok = False
            else:
                j = int(np.argmin(np.where(mask, state.avail, np.inf)))
                ok = True
        else:
            ok = bool(mask.any())
            if ok:
                if epsilon is not None and epsilon.explore():
                    cand = np.flatnonzero(mask)
                    j = int(cand[epsilon.rng.integers(len(cand))])
                else:
                    a, b = prob.components(i)
                    s = a + b * state.avail
                    if noise > 0:
                        s = s + rng.uniform(0.0, noise, s.size)
                    j = int(np.argmax(np.where(mask, s, -np.inf)))
        if not ok:
            vm = prob.vms[i]
            why = _why_not(vm, prob.ctx, state.cpu, state.mem, state.disk, state.gpu)
            if atomic:
                raise ProtocolError(
                    f"VM {vm.id!r} cannot be placed (of {prob.nodes.n} nodes: {why}); nothing was placed "
                    "(atomic batch rolled back). Relax its constraints, add capacity, or pass atomic=False "
                    "to place the others.")
            reasons[vm.id] = why
            continue
        state.assign(i, j)
        assign[i] = j
    return assign


def _finish(prob: _Problem, state: _State, assign: np.ndarray, solver: str, elapsed: float,
            reasons: dict[str, str]) -> Placement:
    nd = prob.nodes
    avail0 = availability(nd)
    total = 0.0
    for i in np.flatnonzero(assign >= 0):
        a, b = prob.components(int(i))
        j = assign[i]
        total += float(a[j] + b[j] * avail0[j])
    used_nodes = np.unique(assign[assign >= 0])
    util_all = 1.0 - 0.5 * (state.cpu / nd.num["cpu_total"] + state.mem / nd.num["mem_total"])
    util = float(util_all[used_nodes].mean()) if used_nodes.size else 0.0
    live = ~nd.flag["maintenance"]
    cluster = float(util_all[live].mean()) if live.any() else 0.0
    return Placement(
        assignment=assign, vm_ids=tuple(v.id for v in prob.vms), node_ids=nd["id"], solver=solver,
        scorer=prob.scorer, elapsed_s=elapsed, score_total=total, nodes_used=int(used_nodes.size),
        utilisation=util, cluster_utilisation=cluster, cpu_avail=state.cpu, mem_avail=state.mem,
        disk_avail=state.disk, gpu_avail=state.gpu, unplaced_reasons=reasons)


def place(vms: Sequence[VM], nodes: Nodes, regions: Sequence[Region] | Mapping[str, Region] | None = None, *,
          solver: Literal["greedy", "first-fit", "best-fit", "exact"] = "greedy", scorer: str = "hybrid",
          packing: Literal["fuller", "original"] = "fuller",
          affinity_scope: Literal["node", "zone", "region"] = "node",
          order: Literal["priority", "given"] = "priority", atomic: bool = False, noise: float = 0.0,
          seed: int = 0, epsilon: EpsilonGreedy | None = None,
          weights: Mapping[str, float] | None = None,
          objective: Literal["score", "nodes"] = "score", max_visits: int = 2_000_000) -> Placement:
    """Place a batch of VMs on ``nodes``; ``nodes`` itself is not modified.

    Parameters
    ----------
    vms : sequence of VM
    nodes : Nodes
    regions : sequence of Region, optional
        Region table for the geographic scorer.
    solver : str
        ``greedy`` (best score per VM, in batch order), ``first-fit``, ``best-fit`` (least free
        normalised capacity left) or ``exact`` (branch and bound; tiny instances only).
    scorer : str
        ``dqn``, ``geographic``, ``heterogeneous``, ``hybrid`` or a mode (``datacenter``,
        ``internet``). Used by greedy (decisions), exact (``objective="score"``) and for every
        solver's ``score_total``.
    packing : str
        DQN packing term: ``fuller`` (the fix) or ``original``.
    affinity_scope : str
        Domain of affinity / anti-affinity groups: ``node``, ``zone`` (within a region) or ``region``.
    order : str
        ``priority`` (priority, then cpu + ⌊mem/1e9⌋, descending, ties in given order) or ``given``.
    atomic : bool
        If any VM cannot be placed, raise :class:`~dwcpkit.errors.ProtocolError` and place none
        (the source's rollback). Otherwise unplaced VMs get ``-1`` and a reason.
    noise, seed : float, int
        Greedy adds ``U(0, noise)`` to scores (source: 0.01), seeded.
    epsilon : EpsilonGreedy, optional
        Greedy explores a random feasible node with probability ε (the source's "DQN").
    weights : mapping, optional
        Geographic weights (renormalised).
    objective : str
        Exact solver only: ``score`` (max Σ score) or ``nodes`` (min nodes used), after
        maximising the number of VMs placed.
    max_visits : int
        Exact solver only: search-tree node budget.

    Returns
    -------
    Placement

    Raises
    ------
    ParameterError
        Bad arguments.
    ProtocolError
        ``atomic`` and a VM fits nowhere; or the exact search exceeds ``max_visits``.

    Examples
    --------
    >>> nodes = Nodes(type=["cloud"] * 3, cpu_total=[8, 8, 8], mem_total=[16e9] * 3)
    >>> vms = [VM(f"v{i}", cpu=2, memory=2e9, anti_affinity_group="ha") for i in range(3)]
    >>> place(vms, nodes).nodes_used
    3
    >>> place([VM(f"v{i}", cpu=2, memory=2e9) for i in range(3)], nodes, solver="best-fit").nodes_used
    1
    """
    if solver not in _SOLVERS:
        raise ParameterError(f"unknown solver {solver!r}; use one of {', '.join(_SOLVERS)}")
    if solver == "exact":
        return exact_place(vms, nodes, regions, scorer=scorer, packing=packing, affinity_scope=affinity_scope,
                           objective=objective, weights=weights, max_visits=max_visits)
    t0 = time.perf_counter()
    prob = _Problem(vms, nodes, regions, scorer, packing, affinity_scope, weights)
    ordering = prob.order(order)
    state = _State(prob)
    reasons: dict[str, str] = {}
    rng = np.random.default_rng(seed)
    if noise < 0:
        raise ParameterError(f"noise must be >= 0, got {noise}")
    assign = _solve_heuristic(prob, state, solver, ordering, atomic, noise, rng, epsilon, reasons)
    elapsed = time.perf_counter() - t0
    return _finish(prob, state, assign, solver, elapsed, reasons)


def exact_place(vms: Sequence[VM], nodes: Nodes, regions: Sequence[Region] | Mapping[str, Region] | None = None, *,
                scorer: str = "hybrid", packing: Literal["fuller", "original"] = "fuller",
                affinity_scope: Literal["node", "zone", "region"] = "node",
                objective: Literal["score", "nodes"] = "score", weights: Mapping[str, float] | None = None,
                max_visits: int = 2_000_000) -> Placement:
    """Optimal placement by branch and bound, for tiny instances (≤ 16 VMs).

    Maximises, lexicographically, the number of VMs placed, then either Σ score at the batch's
    starting availability (``objective="score"``) or ``-nodes_used`` (``"nodes"``), under the
    same constraints as :func:`place`. Bounds: remaining VMs all placed, each at its best
    statically feasible score (score) or no new node (nodes).

    Raises
    ------
    ParameterError
        More than 16 VMs.
    ProtocolError
        The search visited more than ``max_visits`` tree nodes.

    Examples
    --------
    >>> nodes = Nodes(type=["cloud"] * 3, cpu_total=[4, 4, 8], mem_total=[8e9] * 3)
    >>> vms = [VM("a", cpu=4, memory=1e9), VM("b", cpu=4, memory=1e9)]
    >>> exact_place(vms, nodes, objective="nodes").nodes_used
    1
    """
    if objective not in ("score", "nodes"):
        raise ParameterError(f"objective must be 'score' or 'nodes', got {objective!r}")
    vms = list(vms)
    if len(vms) > 16:
        raise ParameterError(f"the exact solver is for tiny instances (<= 16 VMs), got {len(vms)}; "
                             "use solver='greedy' or measure the gap on a sample")
    t0 = time.perf_counter()
    prob = _Problem(vms, nodes, regions, scorer, packing, affinity_scope, weights)
    state = _State(prob)
    n = len(vms)
    ordering = prob.order("priority")
    avail0 = state.avail.copy()
    s0 = []
    best_static = np.zeros(n)
    has_cand = np.zeros(n, dtype=bool)
    for i in range(n):
        a, b = prob.components(i)
        s = a + b * avail0
        s0.append(s)
        sm = prob.static_mask(i)
        if sm.any():
            has_cand[i] = True
            best_static[i] = max(0.0, float(s[sm].max()))
    rem_count = np.zeros(n + 1, dtype=np.int64)
    rem_score = np.zeros(n + 1)
    for k in range(n - 1, -1, -1):
        i = ordering[k]
        rem_count[k] = rem_count[k + 1] + int(has_cand[i])
        rem_score[k] = rem_score[k + 1] + best_static[i]
    best: list[Any] = [(-1, -math.inf), None]
    cur = np.full(n, -1, dtype=np.int64)
    visits = [0]
    by_score = objective == "score"

    def rec(k: int, placed: int, value: float) -> None:
        visits[0] += 1
        if visits[0] > max_visits:
            raise ProtocolError(f"exact placement search exceeded max_visits={max_visits}; the instance is too "
                                "large for the exact solver (use fewer VMs/nodes or raise max_visits)")
        val = value if by_score else -float(state.used)
        if k == n:
            if (placed, val) > best[0]:
                best[0] = (placed, val)
                best[1] = cur.copy()
            return
        bound = (placed + int(rem_count[k]), value + float(rem_score[k]) if by_score else val)
        if bound <= best[0]:
            return
        i = int(ordering[k])
        cand = np.flatnonzero(state.candidates(i))
        if cand.size:
            if by_score:
                cand = cand[np.argsort(-s0[i][cand], kind="stable")]
            else:
                cand = cand[np.argsort(state.count[cand] == 0, kind="stable")]
            for j in cand:
                j = int(j)
                state.assign(i, j)
                cur[i] = j
                rec(k + 1, placed + 1, value + float(s0[i][j]))
                cur[i] = -1
                state.unassign(i, j)
        rec(k + 1, placed, value)

    rec(0, 0, 0.0)
    assign = best[1] if best[1] is not None else np.full(n, -1, dtype=np.int64)
    final = _State(prob)
    for i in ordering:
        if assign[i] >= 0:
            final.assign(int(i), int(assign[i]))
    elapsed = time.perf_counter() - t0
    reasons = {prob.vms[i].id: "not in the optimal placement (no feasible room)" for i in range(n) if assign[i] < 0}
    out = _finish(prob, final, assign, "exact", elapsed, reasons)
    return out


def validate_placement(vms: Sequence[VM], nodes: Nodes, placement: Placement | np.ndarray,
                       regions: Sequence[Region] | Mapping[str, Region] | None = None, *,
                       affinity_scope: Literal["node", "zone", "region"] = "node") -> list[str]:
    """Every constraint a placement breaks, as readable strings (empty list = valid).

    Checks each placed VM against the static filter and capability requirements, each node's
    total demand against its starting available capacity, and affinity / anti-affinity groups
    per domain. Independent of the solvers' incremental bookkeeping.

    >>> nodes = Nodes(type=["cloud"], cpu_total=[4], mem_total=[8e9], cpu_avail=[2])
    >>> validate_placement([VM("a", cpu=3, memory=1e9)], nodes, np.array([0]))
    ["node 'node-0': cpu demand 3 > available 2"]
    """
    assign = placement.assignment if isinstance(placement, Placement) else np.asarray(placement, dtype=np.int64)
    prob = _Problem(vms, nodes, regions, "heterogeneous", "fuller", affinity_scope)
    if assign.shape != (len(prob.vms),):
        raise ParameterError(f"placement has {assign.size} entries for {len(prob.vms)} VMs")
    problems: list[str] = []
    ids = nodes["id"]
    num = nodes.num
    load = np.zeros((nodes.n, 4))
    aff_dom: dict[str, set[int]] = {}
    anti_dom: dict[str, list[int]] = {}
    for i, vm in enumerate(prob.vms):
        j = int(assign[i])
        if j < 0:
            continue
        if j >= nodes.n:
            problems.append(f"VM {vm.id!r}: node index {j} out of range")
            continue
        if not prob.static_mask(i)[j]:
            problems.append(f"VM {vm.id!r} on {ids[j]!r}: node fails the VM's filter "
                            "(maintenance, region, labels, type, uptime, cost or capability)")
        load[j] += prob.demand[i]
        dom = int(prob.domain[j])
        if vm.affinity_group:
            aff_dom.setdefault(vm.affinity_group, set()).add(dom)
        if vm.anti_affinity_group:
            anti_dom.setdefault(vm.anti_affinity_group, []).append(dom)
    for r, res in enumerate(("cpu", "mem", "disk", "gpu")):
        over = load[:, r] > num[f"{res}_avail"] * (1 + 1e-9) + 1e-9
        for j in np.flatnonzero(over):
            problems.append(f"node {ids[j]!r}: {res} demand {load[j, r]:g} > available {num[f'{res}_avail'][j]:g}")
    for g, doms in aff_dom.items():
        if len(doms) > 1:
            problems.append(f"affinity group {g!r} spans {len(doms)} {affinity_scope}s")
    for g, dl in anti_dom.items():
        if len(set(dl)) < len(dl):
            problems.append(f"anti-affinity group {g!r} has VMs sharing a {affinity_scope}")
    return problems


def synthetic_fleet(n_nodes: int, *, seed: int = 0, regions: Sequence[Region] = DEFAULT_REGIONS,
                    used: tuple[float, float] = (0.0, 0.6), maintenance: float = 0.01) -> Nodes:
    """A seeded heterogeneous fleet for benchmarks and tests.

    Node types 40 % datacenter, 35 % cloud, 15 % edge, 10 % volunteer; 4 zones per region;
    sizes 8–128 vCPUs and 4–8 GB per vCPU; 10 % GPU nodes; 5 % arm64; labels ``tier``
    (gold/silver/bronze); already-used fraction per node uniform in ``used``.

    >>> synthetic_fleet(100, seed=1).n
    100
    """
    if n_nodes < 1:
        raise ParameterError(f"n_nodes must be >= 1, got {n_nodes}")
    rng = np.random.default_rng(seed)
    types = rng.choice([3, 0, 1, 2], size=n_nodes, p=[0.4, 0.35, 0.15, 0.1])
    region_names = np.array([r.name for r in regions], dtype=object)
    region = region_names[rng.integers(len(regions), size=n_nodes)]
    zone = np.array([f"z{z}" for z in range(4)], dtype=object)[rng.integers(4, size=n_nodes)]
    cpu = rng.choice([8.0, 16.0, 32.0, 64.0, 128.0], size=n_nodes, p=[0.15, 0.25, 0.3, 0.2, 0.1])
    mem = cpu * rng.choice([4e9, 8e9], size=n_nodes)
    frac = rng.uniform(used[0], used[1], size=n_nodes)
    gpu = np.where(rng.random(n_nodes) < 0.1, rng.choice([1.0, 2.0, 4.0], size=n_nodes), 0.0)
    cost = np.round(np.select([types == 3, types == 0, types == 1], [0.02, 0.04, 0.03], 0.005) * cpu
                    * rng.uniform(0.7, 1.3, n_nodes), 3)
    return Nodes(
        type=types, cpu_total=cpu, mem_total=mem,
        cpu_avail=np.floor(cpu * (1 - frac)), mem_avail=mem * (1 - frac),
        disk_total=cpu * 50e9, gpu_total=gpu,
        region=region, zone=zone, id=[f"n{i:05d}" for i in range(n_nodes)],
        cpu_ghz=rng.uniform(2.0, 4.2, n_nodes), net_gbps=rng.choice([1.0, 10.0, 25.0, 100.0], n_nodes),
        uptime_h=rng.uniform(100.0, 20_000.0, n_nodes), failure_rate=rng.uniform(0.0, 0.05, n_nodes),
        cost_per_hour=cost, maintenance=rng.random(n_nodes) < maintenance,
        arch=np.where(rng.random(n_nodes) < 0.05, "arm64", "x86_64"),
        sgx=rng.random(n_nodes) < 0.2,
        labels={"tier": np.array(["gold", "silver", "bronze"], dtype=object)[rng.integers(3, size=n_nodes)]},
    )


def synthetic_vms(n_vms: int, *, seed: int = 0, regions: Sequence[Region] = DEFAULT_REGIONS,
                  constrained: float = 0.5) -> list[VM]:
    """A seeded batch of VMs with a realistic mix of constraints.

    Sizes 1–32 vCPUs × 2–8 GB/vCPU, 5 % with a GPU. About ``constrained`` of them carry
    constraints: required or excluded regions, a required ``tier`` label, a workload label
    (``cpu-arch``, ``secure-enclave``, ``min-sla``, ``data-sovereignty``), cost or uptime
    limits; VMs come in anti-affinity triples (15 %) and affinity pairs (10 %).

    >>> len(synthetic_vms(10, seed=2))
    10
    """
    if n_vms < 0:
        raise ParameterError(f"n_vms must be >= 0, got {n_vms}")
    rng = np.random.default_rng(seed)
    names = [r.name for r in regions]
    out: list[VM] = []
    i = 0
    while len(out) < n_vms:
        kind = rng.random()
        group = 3 if kind < 0.15 else 2 if kind < 0.25 else 1
        cpu = float(rng.choice([1, 2, 4, 8, 16, 32], p=[0.15, 0.3, 0.25, 0.15, 0.1, 0.05]))
        mem = cpu * float(rng.choice([2e9, 4e9, 8e9]))
        kw: dict[str, Any] = {"priority": float(np.round(rng.random(), 2))}
        if rng.random() < 0.05:
            kw["gpu"] = 1.0
        if rng.random() < constrained:
            r = rng.random()
            if r < 0.35:
                kw["required_regions"] = tuple(rng.choice(names, size=int(rng.integers(1, 3)), replace=False))
            elif r < 0.5:
                kw["excluded_regions"] = (str(rng.choice(names)),)
            elif r < 0.6:
                kw["preferred_regions"] = (str(rng.choice(names)),)
            r = rng.random()
            if r < 0.2:
                kw["required_labels"] = {"tier": str(rng.choice(["gold", "silver"]))}
            r = rng.random()
            labels: dict[str, str] = {}
            if r < 0.03:
                labels["cpu-arch"] = "arm64"
            elif r < 0.1:
                labels["secure-enclave"] = "true"
            elif r < 0.2:
                labels["min-sla"] = "medium"
            elif r < 0.25:
                labels["data-sovereignty"] = "gdpr"
            kw["labels"] = labels
            r = rng.random()
            if r < 0.2:
                kw["constraints"] = Constraints(max_cost_per_hour=float(rng.choice([1.0, 2.0, 4.0])))
            elif r < 0.3:
                kw["constraints"] = Constraints(required_uptime=0.5, max_latency_ms=200.0)
        for k in range(group):
            if len(out) >= n_vms:
                break
            extra: dict[str, Any] = {}
            if group == 3:
                extra["anti_affinity_group"] = f"anti-{i}"
            elif group == 2:
                extra["affinity_group"] = f"aff-{i}"
            out.append(VM(f"vm-{len(out):05d}", cpu=cpu, memory=mem, **kw, **extra))
        i += 1
    return out
