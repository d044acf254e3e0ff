"""Seeded synthetic DWCP v3 fleet telemetry with injected incidents and their ground truth.

:func:`generate` simulates three regions (:data:`~dwcpkit.telemetry.names.REGIONS`) running the
v1 baseline and the v3 protocol side by side during a 10 % → 50 % → 100 % rollout, and returns
every family of :data:`~dwcpkit.telemetry.names.CATALOG` as a canonical telemetry frame plus a
ground-truth table of the incidents it injected. :func:`write_sample` writes both to ``data/``
(the ``sample`` source every notebook uses). Same arguments, same bytes.

The model (all numbers are choices made here, not measurements of a real fleet)
-------------------------------------------------------------------------------
Load
    Completed migrations per minute per region are Poisson with a diurnal mean
    ``peak * (0.25 + 0.75 * ((1 + cos(2π (h_local - 14) / 24)) / 2) ** 2)`` (trough at 02:00 local,
    peak at 14:00 local), times 0.7 on local Saturdays and Sundays, times a small per-minute
    jitter. Peaks: us-east 120/min (UTC-5), eu-west 90/min (UTC+0), ap-south 60/min (UTC+5:30).
Rollout
    ``dwcp_v3_rollout_percentage`` is 10 for the first third of the window, 50 for the second,
    100 for the last; each migration goes to v3 with that probability, v1 gets the rest (so v1
    carries no traffic in the last third: its counters stay flat, its throughput and streams are 0).
Migrations
    VM memory is log-normal (median 2 GiB, σ 0.7, clipped to 0.25–256 GiB). Bytes sent are
    ``memory * dirty / compression_ratio`` with ``dirty`` = 1.08 for v3 (delta encoding) and 1.25
    for v1 (dirty pages re-sent). Latency is ``overhead + sent / (throughput * efficiency)``
    (overhead 0.15 s v3 / 0.30 s v1, efficiency log-normal σ 0.3): a log-normal body; with
    probability 1.5 % (v3) / 3 % (v1) it is multiplied by a Pareto stall factor
    (``x_m`` = 2, α = 1.5 v3 / 1.3 v1): a heavy tail; migrations abort at 1800 s, the cap.
    Measured on the default sample (348k migrations): v3 median 0.47 s, p99 2.7 s;
    v1 median 2.7 s, p99 20 s.
Gauges
    ``throughput_bytes_per_second`` is the transfer rate of migrations in progress: ≈ 2.8 GB/s for
    v3 and ≈ 1.2 GB/s for v1, with slow AR(1) wander and 12 % less at peak load. ``compression_ratio``
    wanders in 2–4 around 3.0 for v3 and is ≈ 1.0 for v1. ``active_streams`` is, by Little's law,
    32 streams per concurrent v3 migration plus a pool of 16 (tens), 4 per v1 migration.
    ``peers_connected`` is 7, ``component_health`` 1, except during incidents.
Operations and errors
    Each migration costs every component a number of operations (amst 48, hde 160, pba 3, acp 5,
    ass 12, itp 2) on top of background work per minute (amst 6, pba 60, acp 120, ass 240, itp 4);
    each operation fails with probability 0.1–0.25 % (v1 ×1.3), 60 % of failures ``timeout`` and
    40 % ``protocol``. ``consensus_failures_total`` grows by ~1 per 50 minutes per region;
    ``byzantine_detections_total`` is flat outside incidents.
Counters
    Every counter (histogram buckets, ``_sum`` and ``_count`` included) is cumulative. v3 counters
    start at 0 at the window start (the v3 deployment begins with the rollout); v1 counters start
    from the value a few days of uptime would have left. A restart of a region's service resets
    its counters to 0 at that sample, like a real process restart: a v1 restart resets the
    region's v1 series; a v3 restart resets its v3 series and the region's version-less ACP
    counters (``byzantine_detections_total``, ``consensus_failures_total``). Three random restarts
    happen away from incidents, and the v3 service restarts at the end of every
    ``component_down`` incident. :func:`restarts` lists them all.

Incidents and their signatures (``magnitude`` default in brackets)
------------------------------------------------------------------
``latency_spike`` [5.0]
    latencies of the region/version's migrations are multiplied by ``magnitude`` (histogram
    shifts right; active streams rise with concurrency).
``error_surge`` [0.08]
    every operation of the region/version (or only ``component``) fails with probability
    ``magnitude`` (error ratio several %).
``component_down`` [unused]
    ``component_health`` 0 for the component/region, its v3 operations stop; ``hde`` down means
    v3 sends uncompressed (compression ratio 1, bytes up); ``amst`` down means no v3 migration
    completes in the region; the v3 service restarts at the end (counters reset).
``network_partition`` [3]
    ``peers_connected`` drops to ``magnitude``; ~6 consensus failures/min; acp/ass v3 operations
    fail at 4 % (95 % timeouts).
``bandwidth_degradation`` [0.3]
    the region/version's throughput is multiplied by ``magnitude``; migrations get slower and the
    scheduler defers some (completions × ``0.5 + 0.5 * magnitude``), so the bytes rate drops.
``byzantine_node`` [4.0]
    ``byzantine_detections_total`` of ``node_id`` grows by ~``magnitude``/min; some consensus
    failures (0.5/min) and acp protocol errors (1 %) in the region.

Example
-------
>>> from dwcpkit.telemetry.synth import generate
>>> frame, truth = generate(days=0.25)
>>> truth["kind"].to_list()[:2]
['latency_spike', 'byzantine_node']
>>> frame.filter(frame["metric"] == "dwcp_v3_rollout_percentage")["value"].unique().sort().to_list()
[10.0, 50.0, 100.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
from numpy.random import PCG64, Generator

from dwcpkit._paths import data_dir
from dwcpkit.errors import ParameterError, SourceError
from dwcpkit.telemetry import schema
from dwcpkit.telemetry.names import CATALOG, COMPONENTS, LATENCY_BUCKETS, REGIONS, VERSIONS

__all__ = [
    "Incident",
    "Restart",
    "INCIDENT_KINDS",
    "DEFAULT_START",
    "LE_LABELS",
    "node_ids",
    "default_incidents",
    "restarts",
    "generate",
    "write_sample",
    "read_incidents",
    "incidents_frame",
]

#: Window start of the embedded sample.
DEFAULT_START = datetime(2026, 11, 1, tzinfo=timezone.utc)
#: Incident kinds the generator can inject.
INCIDENT_KINDS: tuple[str, ...] = (
    "latency_spike",
    "error_surge",
    "component_down",
    "network_partition",
    "bandwidth_degradation",
    "byzantine_node",
)
#: ``le`` label values of the latency histogram, formatted as Prometheus does.
LE_LABELS: tuple[str, ...] = (
    "0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "120", "+Inf",
)
assert len(LE_LABELS) == len(LATENCY_BUCKETS) + 1

_DEFAULT_MAGNITUDE = {
    "latency_spike": 5.0,
    "error_surge": 0.08,
    "component_down": 1.0,
    "network_partition": 3.0,
    "bandwidth_degradation": 0.3,
    "byzantine_node": 4.0,
}
_NODES_PER_REGION = 3
_MIN_STEPS = 60

# --- model constants (see the module docstring) -------------------------------------------------
_PEAK_PER_MIN = {"us-east": 120.0, "eu-west": 90.0, "ap-south": 60.0}
_TZ_HOURS = {"us-east": -5.0, "eu-west": 0.0, "ap-south": 5.5}
_WEEKEND_FACTOR = 0.7
_GIB = float(1 << 30)
_MEM_MEDIAN = 2 * _GIB
_MEM_SIGMA = 0.7
_DIRTY = {"v1": 1.25, "v3": 1.08}
_OVERHEAD_S = {"v1": 0.30, "v3": 0.15}
_LINK_BPS = {"v1": 1.2e9, "v3": 2.8e9}
_EFF_SIGMA = 0.3
_TAIL_P = {"v1": 0.03, "v3": 0.015}
_TAIL_ALPHA = {"v1": 1.3, "v3": 1.5}
_TAIL_XM = 2.0
_LATENCY_CAP_S = 1800.0
_STREAMS_PER_MIGRATION = {"v1": 4.0, "v3": 32.0}
_STREAM_POOL = {"v1": 0.0, "v3": 16.0}
_OPS_PER_MIGRATION = {"amst": 48.0, "hde": 160.0, "pba": 3.0, "acp": 5.0, "ass": 12.0, "itp": 2.0}
_BG_OPS_PER_MIN = {"amst": 6.0, "hde": 0.0, "pba": 60.0, "acp": 120.0, "ass": 240.0, "itp": 4.0}
_ERR_P = {"amst": 0.0025, "hde": 0.0012, "pba": 0.0020, "acp": 0.0015, "ass": 0.0020, "itp": 0.0010}
_V1_ERR_FACTOR = 1.3
_TIMEOUT_SHARE = 0.6
_CONSENSUS_FAIL_PER_MIN = 0.02
_ROLLOUT_STEPS = (10.0, 50.0, 100.0)


def node_ids(region: str) -> tuple[str, ...]:
    """The ``node_id`` values of a region's consensus nodes.

    >>> node_ids("us-east")
    ('us-east-1', 'us-east-2', 'us-east-3')
    """
    return tuple(f"{region}-{i}" for i in range(1, _NODES_PER_REGION + 1))


@dataclass(frozen=True)
class Incident:
    """An incident to inject.

    Parameters
    ----------
    kind : one of :data:`INCIDENT_KINDS`.
    start : aware UTC datetime; samples with ``start <= timestamp < start + duration`` are affected.
    duration : how long it lasts.
    region : one of :data:`~dwcpkit.telemetry.names.REGIONS`.
    component : required for ``component_down``; optional for ``error_surge`` (default: all).
    node_id : required for ``byzantine_node`` (see :func:`node_ids`).
    magnitude : kind-specific strength, ``None`` for the kind's default (module docstring).
    version : protocol version hit by ``latency_spike``, ``error_surge`` and
        ``bandwidth_degradation`` (the other kinds hit v3, whose components they name).

    Example
    -------
    >>> from datetime import datetime, timedelta, timezone
    >>> Incident("error_surge", datetime(2026, 11, 1, 12, tzinfo=timezone.utc),
    ...          timedelta(minutes=20), "eu-west").end.isoformat()
    '2026-11-01T12:20:00+00:00'
    """

    kind: str
    start: datetime
    duration: timedelta
    region: str
    component: str | None = None
    node_id: str | None = None
    magnitude: float | None = None
    version: str = "v3"

    @property
    def end(self) -> datetime:
        """``start + duration`` (exclusive)."""
        return self.start + self.duration

    @property
    def strength(self) -> float:
        """``magnitude``, or the kind's default when it is ``None``."""
        return _DEFAULT_MAGNITUDE[self.kind] if self.magnitude is None else float(self.magnitude)

    def describe(self) -> str:
        """One-line human description with the injected strength."""
        m = self.strength
        where = f"{self.region}"
        if self.kind == "latency_spike":
            return f"{self.version} migration latency x{m:g} in {where}"
        if self.kind == "error_surge":
            what = f"{self.component} operations" if self.component else "operations of every component"
            return f"{m:.1%} of {self.version} {what} fail in {where} (baseline ~0.2%)"
        if self.kind == "component_down":
            return (f"v3 component {self.component} down in {where} (health 0, no operations); "
                    "v3 service restarted at the end, counters reset")
        if self.kind == "network_partition":
            return f"network partition in {where}: {int(m)} of 7 peers reachable, consensus rounds fail"
        if self.kind == "bandwidth_degradation":
            return f"WAN bandwidth for {self.version} in {where} down to {m:.0%} of normal"
        return f"node {self.node_id} in {where} behaves Byzantine (~{m:g} detections/min)"


@dataclass(frozen=True)
class Restart:
    """A service restart: counters of ``region``/``version`` reset to 0 at ``time``.

    A ``v3`` restart also resets the region's version-less ACP counters.
    """

    time: datetime
    region: str
    version: str
    reason: str  # "random" | "after component_down"


# ------------------------------------------------------------------------------------------------
# argument checks


def _check_start(start: datetime) -> datetime:
    if not isinstance(start, datetime):
        raise ParameterError(f"start must be a datetime, got {type(start).__name__}")
    if start.tzinfo is None:
        raise ParameterError(
            f"start {start!r} is naive; telemetry time is UTC: pass datetime(..., tzinfo=timezone.utc)"
        )
    return start.astimezone(timezone.utc)


def _n_steps(days: float, step_s: int) -> int:
    if not isinstance(step_s, (int, np.integer)) or isinstance(step_s, bool) or step_s <= 0:
        raise ParameterError(f"step_s must be a positive integer number of seconds, got {step_s!r}")
    if not isinstance(days, (int, float)) or not math.isfinite(days) or days <= 0:
        raise ParameterError(f"days must be a positive number, got {days!r}")
    n = int(days * 86400 // step_s)
    if n < _MIN_STEPS:
        raise ParameterError(
            f"days={days!r} with step_s={step_s} gives {n} samples; the generator needs at least "
            f"{_MIN_STEPS}: increase days or decrease step_s"
        )
    return n


def _check_incidents(incidents: Sequence[Incident], t0: datetime, t_end: datetime) -> list[Incident]:
    out = []
    for i, inc in enumerate(incidents):
        where = f"incident #{i + 1} ({getattr(inc, 'kind', '?')})"
        if not isinstance(inc, Incident):
            raise ParameterError(f"{where}: expected an Incident, got {type(inc).__name__}")
        if inc.kind not in INCIDENT_KINDS:
            raise ParameterError(f"{where}: unknown kind {inc.kind!r}; use one of {list(INCIDENT_KINDS)}")
        if inc.region not in REGIONS:
            raise ParameterError(f"{where}: unknown region {inc.region!r}; use one of {list(REGIONS)}")
        if inc.version not in VERSIONS:
            raise ParameterError(f"{where}: unknown version {inc.version!r}; use one of {list(VERSIONS)}")
        if inc.component is not None and inc.component not in COMPONENTS:
            raise ParameterError(f"{where}: unknown component {inc.component!r}; use one of {list(COMPONENTS)}")
        if inc.kind == "component_down" and inc.component is None:
            raise ParameterError(f"{where}: component_down needs component= (one of {list(COMPONENTS)})")
        if inc.kind == "byzantine_node" and inc.node_id not in node_ids(inc.region):
            raise ParameterError(
                f"{where}: byzantine_node needs node_id= one of {list(node_ids(inc.region))}, got {inc.node_id!r}"
            )
        if not isinstance(inc.duration, timedelta) or inc.duration <= timedelta(0):
            raise ParameterError(f"{where}: duration must be a positive timedelta, got {inc.duration!r}")
        start = _check_start(inc.start)
        if start < t0 or start + inc.duration > t_end:
            raise ParameterError(
                f"{where}: {start.isoformat()} + {inc.duration} is outside the window "
                f"{t0.isoformat()} .. {t_end.isoformat()}; move it or lengthen days"
            )
        m = inc.strength
        if not math.isfinite(m) or m < 0 or (inc.kind == "error_surge" and m > 1):
            raise ParameterError(f"{where}: magnitude {inc.magnitude!r} is out of range")
        out.append(replace(inc, start=start))
    return out


# ------------------------------------------------------------------------------------------------
# the default schedule

# (kind, region, offset hours in a 48 h window, duration minutes, component, node_id)
_DEFAULT_PLAN = (
    ("latency_spike", "eu-west", 9.0, 45, None, None),
    ("byzantine_node", "ap-south", 13.0, 40, None, "ap-south-2"),
    ("component_down", "eu-west", 19.5, 35, "hde", None),
    ("network_partition", "ap-south", 27.0, 25, None, None),
    ("bandwidth_degradation", "us-east", 38.0, 60, None, None),
    ("error_surge", "us-east", None, 35, None, None),  # anchored: ends 30 min before the window ends
)


def default_incidents(
    start: datetime = DEFAULT_START, days: float = 2.0, step_s: int = 60
) -> list[Incident]:
    """The six incidents of the embedded sample, scaled to a window of ``days``.

    Offsets scale with the window; durations shrink with it below two days (never under two
    samples). The last incident, an ``error_surge`` on v3 in us-east, ends 30 minutes (scaled
    the same way) before the window ends, so the latest data shows a recent incident.

    Example
    -------
    >>> [i.kind for i in default_incidents()][-1]
    'error_surge'
    """
    t0 = _check_start(start)
    n = _n_steps(days, step_s)
    step = timedelta(seconds=step_s)
    t_end = t0 + n * step
    scale = min(1.0, days / 2.0)

    def snap(td: timedelta) -> timedelta:
        return max(2 * step, step * round(td / step))

    out = []
    for kind, region, offset_h, minutes, component, node in _DEFAULT_PLAN:
        dur = snap(timedelta(minutes=minutes * scale))
        if offset_h is None:
            begin = t_end - snap(timedelta(minutes=30 * scale)) - dur
        else:
            begin = t0 + step * round(timedelta(hours=offset_h * days / 2.0) / step)
        out.append(Incident(kind, begin, dur, region, component=component, node_id=node))
    return out


def incidents_frame(incidents: Sequence[Incident]) -> pl.DataFrame:
    """Ground-truth table of ``incidents``: incident_id, kind, start, end, region, component,
    node_id, description (start/end Datetime(ms, UTC)), ordered by start.

    >>> incidents_frame(default_incidents())["incident_id"].to_list()[:2]
    ['INC-001', 'INC-002']
    """
    ordered = sorted(incidents, key=lambda i: (i.start, i.kind, i.region))
    return pl.DataFrame(
        {
            "incident_id": [f"INC-{k + 1:03d}" for k in range(len(ordered))],
            "kind": [i.kind for i in ordered],
            "start": [i.start for i in ordered],
            "end": [i.end for i in ordered],
            "region": [i.region for i in ordered],
            "component": [i.component for i in ordered],
            "node_id": [i.node_id for i in ordered],
            "description": [i.describe() for i in ordered],
        },
        schema={
            "incident_id": pl.String,
            "kind": pl.String,
            "start": schema.TIMESTAMP_DTYPE,
            "end": schema.TIMESTAMP_DTYPE,
            "region": pl.String,
            "component": pl.String,
            "node_id": pl.String,
            "description": pl.String,
        },
    )


# ------------------------------------------------------------------------------------------------
# restarts (the first draws of the generator, so restarts() can replay them)


def _draw_restarts(
    rng: Generator, t0: datetime, n: int, step_s: int, incidents: Sequence[Incident]
) -> list[Restart]:
    step = timedelta(seconds=step_s)
    ts = np.arange(n)
    ok = (ts >= n // 12) & (ts < n - n // 12)
    margin = timedelta(hours=1)
    for inc in incidents:
        a = math.floor((inc.start - margin - t0) / step)
        b = math.ceil((inc.end + margin - t0) / step)
        ok[max(a, 0): max(b, 0)] = False
    candidates = ts[ok]
    out: list[Restart] = []
    k = 3
    picks = rng.choice(candidates, size=k, replace=False) if candidates.size >= k else np.array([], int)
    regions = rng.permutation(len(REGIONS))[:k]  # one random restart per region
    versions = (rng.integers(0, len(VERSIONS)) + np.arange(k)) % len(VERSIONS)  # both versions restart
    for p, r, v in zip(sorted(picks.tolist()), regions.tolist(), versions.tolist()):
        out.append(Restart(t0 + int(p) * step, REGIONS[r], VERSIONS[v], "random"))
    for inc in incidents:
        if inc.kind == "component_down":
            k_end = math.ceil((inc.end - t0) / step)
            if k_end < n:
                out.append(Restart(t0 + k_end * step, inc.region, "v3", "after component_down"))
    return sorted(out, key=lambda r: (r.time, r.region, r.version))


def _resolve(seed, start, days, step_s, incidents):
    t0 = _check_start(start)
    n = _n_steps(days, step_s)
    t_end = t0 + n * timedelta(seconds=step_s)
    if incidents is None:
        incidents = default_incidents(t0, days, step_s)
    incidents = _check_incidents(list(incidents), t0, t_end)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    return t0, n, incidents


def restarts(
    *,
    seed: int = 7,
    start: datetime = DEFAULT_START,
    days: float = 2.0,
    step_s: int = 60,
    incidents: Sequence[Incident] | None = None,
) -> list[Restart]:
    """Service restarts (counter resets) of the data :func:`generate` makes with the same arguments.

    >>> [r.reason for r in restarts()].count("after component_down")
    1
    """
    t0, n, incs = _resolve(seed, start, days, step_s, incidents)
    return _draw_restarts(Generator(PCG64(seed)), t0, n, step_s, incs)


# ------------------------------------------------------------------------------------------------
# simulation helpers


def _ar1(rng: Generator, shape: tuple[int, ...], phi: float, sigma: float) -> np.ndarray:
    """Stationary AR(1) noise along the last axis (unit-free, mean 0, sd ``sigma``)."""
    eps = rng.standard_normal(shape)
    out = np.empty(shape)
    out[..., 0] = eps[..., 0] * sigma
    s = sigma * math.sqrt(1 - phi * phi)
    for t in range(1, shape[-1]):  # n is a few thousand; numpy over the other axes
        out[..., t] = phi * out[..., t - 1] + s * eps[..., t]
    return out


def _cumulate(inc: np.ndarray, reset: np.ndarray, offset: np.ndarray | float = 0.0) -> np.ndarray:
    """Cumulative counter along the last axis from per-step increments.

    ``reset[..., t]`` True: the process restarted just before sample t, the value there is 0.
    ``offset`` is the value accumulated before the first sample.
    """
    reset = np.broadcast_to(reset, inc.shape)
    inc = np.where(reset, 0.0, inc)
    c = np.cumsum(inc, axis=-1) + np.asarray(offset)[..., None]
    n = inc.shape[-1]
    idx = np.where(reset, np.arange(n), -1)
    last = np.maximum.accumulate(idx, axis=-1)
    base = np.take_along_axis(c, np.maximum(last, 0), axis=-1)
    return np.where(last >= 0, c - base, c)


def _cumulate_ref(inc, reset, offset=0.0):
    """Plain-Python reference of :func:`_cumulate` for one series (used by tests)."""
    out, v = [], float(offset)
    for x, r in zip(inc, reset):
        v = 0.0 if r else v + float(x)
        out.append(v)
    return np.array(out)


def _mask(ts_min: np.ndarray, t0: datetime, inc: Incident) -> np.ndarray:
    a = (inc.start - t0).total_seconds() / 60.0
    b = (inc.end - t0).total_seconds() / 60.0
    return (ts_min >= a) & (ts_min < b)


# ------------------------------------------------------------------------------------------------
# generate


def generate(
    *,
    seed: int = 7,
    start: datetime = DEFAULT_START,
    days: float = 2.0,
    step_s: int = 60,
    incidents: Sequence[Incident] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Synthetic fleet telemetry and the ground truth of the incidents injected into it.

    Parameters
    ----------
    seed : seed of ``numpy.random.Generator(PCG64(seed))``; same arguments give identical frames.
    start : aware UTC start of the window (first sample).
    days : window length; ``days * 86400 // step_s`` samples per series.
    step_s : scrape interval in seconds.
    incidents : incidents to inject; ``None`` for :func:`default_incidents`, ``[]`` for none.

    Returns
    -------
    (telemetry, truth)
        ``telemetry`` is a canonical frame (:mod:`dwcpkit.telemetry.schema`) holding every family
        of :data:`~dwcpkit.telemetry.names.CATALOG`; ``truth`` is :func:`incidents_frame`.

    Raises
    ------
    ParameterError
        bad window, seed or incident (unknown kind/region/component, outside the window...).

    Example
    -------
    >>> frame, truth = generate(days=0.25, incidents=[])
    >>> frame.height, truth.height
    (92160, 0)
    """
    t0, n, incs = _resolve(seed, start, days, step_s, incidents)
    rng = Generator(PCG64(seed))
    rsts = _draw_restarts(rng, t0, n, step_s, incs)

    R, V, C = len(REGIONS), len(VERSIONS), len(COMPONENTS)
    iv3 = VERSIONS.index("v3")
    dt_min = step_s / 60.0
    t0_s = t0.timestamp()
    ts_min = np.arange(n) * dt_min  # minutes since t0
    ts_ms = np.int64(round(t0_s * 1000)) + np.arange(n, dtype=np.int64) * np.int64(step_s * 1000)

    # rollout percentage and traffic shares -------------------------------------------------------
    stage = np.minimum((np.arange(n) * 3) // n, 2)
    pct = np.asarray(_ROLLOUT_STEPS)[stage]
    share = np.stack([1.0 - pct / 100.0, pct / 100.0])  # (V, n)

    # diurnal load ---------------------------------------------------------------------------------
    load = np.empty((R, n))
    for r, reg in enumerate(REGIONS):
        local_s = t0_s + ts_min * 60.0 + _TZ_HOURS[reg] * 3600.0
        h = (local_s % 86400.0) / 3600.0
        weekday = ((np.floor(local_s / 86400.0).astype(np.int64) + 3) % 7)  # 0 = Monday (1970-01-01 = Thu)
        bump = ((1 + np.cos(2 * np.pi * (h - 14.0) / 24.0)) / 2.0) ** 2
        load[r] = (0.25 + 0.75 * bump) * np.where(weekday >= 5, _WEEKEND_FACTOR, 1.0)
    jitter = np.exp(_ar1(rng, (R, n), 0.9, 0.08))
    lam = np.asarray([_PEAK_PER_MIN[g] for g in REGIONS])[:, None] * load * jitter * dt_min  # (R, n)

    # incident masks -------------------------------------------------------------------------------
    lat_mult = np.ones((R, V, n))
    thr_mult = np.ones((R, V, n))
    done_mult = np.ones((R, V, n))
    err_p = np.empty((C, R, V, n))
    for c, comp in enumerate(COMPONENTS):
        err_p[c] = _ERR_P[comp]
    err_p[:, :, VERSIONS.index("v1")] *= _V1_ERR_FACTOR
    timeout_share = np.full((C, R, V, n), _TIMEOUT_SHARE)
    health = np.ones((C, R, n))
    peers = np.full((R, n), 7.0)
    cons_lam = np.full((R, n), _CONSENSUS_FAIL_PER_MIN * dt_min)
    byz_lam = np.zeros((R, _NODES_PER_REGION, n))
    no_ops = np.zeros((C, R, V, n), dtype=bool)
    uncompressed = np.zeros((R, n), dtype=bool)
    no_migrations = np.zeros((R, V, n), dtype=bool)
    for inc in incs:
        m = _mask(ts_min, t0, inc)
        r = REGIONS.index(inc.region)
        v = VERSIONS.index(inc.version)
        s = inc.strength
        if inc.kind == "latency_spike":
            lat_mult[r, v, m] *= s
        elif inc.kind == "error_surge":
            cs = [COMPONENTS.index(inc.component)] if inc.component else list(range(C))
            for c in cs:
                err_p[c, r, v, m] = s
        elif inc.kind == "component_down":
            c = COMPONENTS.index(inc.component)
            health[c, r, m] = 0.0
            no_ops[c, r, iv3, m] = True
            if inc.component == "hde":
                uncompressed[r, m] = True
            if inc.component == "amst":
                no_migrations[r, iv3, m] = True
        elif inc.kind == "network_partition":
            peers[r, m] = np.minimum(peers[r, m], s)
            cons_lam[r, m] = 6.0 * dt_min
            for comp in ("acp", "ass"):
                c = COMPONENTS.index(comp)
                err_p[c, r, iv3, m] = 0.04
                timeout_share[c, r, iv3, m] = 0.95
        elif inc.kind == "bandwidth_degradation":
            thr_mult[r, v, m] *= s
            done_mult[r, v, m] *= 0.5 + 0.5 * s
        elif inc.kind == "byzantine_node":
            k = node_ids(inc.region).index(inc.node_id)
            byz_lam[r, k, m] += s * dt_min
            cons_lam[r, m] += 0.5 * dt_min
            c = COMPONENTS.index("acp")
            err_p[c, r, iv3, m] = np.maximum(err_p[c, r, iv3, m], 0.01)
            timeout_share[c, r, iv3, m] = 0.2

    # gauges that drive the migrations -------------------------------------------------------------
    link = np.asarray([_LINK_BPS[v] for v in VERSIONS])[None, :, None]
    thr = link * np.exp(_ar1(rng, (R, V, n), 0.98, 0.05)) * (1.0 - 0.12 * load[:, None, :]) * thr_mult
    ratio = np.empty((R, V, n))
    ratio[:, iv3] = np.clip(3.0 + _ar1(rng, (R, n), 0.995, 0.3), 2.05, 3.95)
    ratio[:, 1 - iv3] = 1.0 + np.abs(_ar1(rng, (R, n), 0.9, 0.01))
    ratio = np.round(ratio, 3)
    ratio[:, iv3][uncompressed] = 1.0

    # migrations: counts, then one sample per migration ---------------------------------------------
    total = rng.poisson(lam)  # (R, n)
    v3_count = rng.binomial(total, share[iv3][None, :])
    counts = np.empty((R, V, n), dtype=np.int64)
    counts[:, iv3] = v3_count
    counts[:, 1 - iv3] = total - v3_count
    counts = rng.binomial(counts, done_mult)  # deferred migrations under degraded bandwidth
    counts[no_migrations] = 0
    cell = np.repeat(np.arange(R * V * n), counts.ravel())  # flat (r, v, t) index per migration
    N = cell.size
    vidx = (cell // n) % V
    mem = np.clip(rng.lognormal(math.log(_MEM_MEDIAN), _MEM_SIGMA, N), _GIB / 4, 256 * _GIB)
    dirty = np.asarray([_DIRTY[v] for v in VERSIONS])[vidx]
    sent = np.round(mem * dirty / ratio.ravel()[cell])
    eff = rng.lognormal(0.0, _EFF_SIGMA, N)
    overhead = np.asarray([_OVERHEAD_S[v] for v in VERSIONS])[vidx]
    lat = overhead + sent / (thr.ravel()[cell] * eff)
    tail_p = np.asarray([_TAIL_P[v] for v in VERSIONS])[vidx]
    alpha = np.asarray([_TAIL_ALPHA[v] for v in VERSIONS])[vidx]
    stall = np.where(rng.random(N) < tail_p, _TAIL_XM * (1.0 + rng.pareto(alpha)), 1.0)
    lat = lat * stall * lat_mult.ravel()[cell]
    lat_ms = np.clip(np.round(lat * 1000.0), 1, _LATENCY_CAP_S * 1000.0)
    lat = lat_ms / 1000.0

    nb = len(LATENCY_BUCKETS) + 1
    b = np.searchsorted(np.asarray(LATENCY_BUCKETS, dtype=float), lat, side="left")  # le semantics
    bins = np.bincount(cell * nb + b, minlength=R * V * n * nb).reshape(R, V, n, nb)
    sum_ms = np.bincount(cell, weights=lat_ms, minlength=R * V * n).reshape(R, V, n)
    bytes_inc = np.bincount(cell, weights=sent, minlength=R * V * n).reshape(R, V, n)
    busy_s = np.bincount(cell, weights=lat, minlength=R * V * n).reshape(R, V, n)

    # gauges ---------------------------------------------------------------------------------------
    active = share[None, :, :] > 0  # (1, V, n): the version takes traffic
    conc = busy_s / step_s  # Little's law: concurrent migrations
    spm = np.asarray([_STREAMS_PER_MIGRATION[v] for v in VERSIONS])[None, :, None]
    pool = np.asarray([_STREAM_POOL[v] for v in VERSIONS])[None, :, None]
    streams = np.where(active, rng.poisson(pool + spm * conc), 0).astype(float)
    streams[no_migrations] = 0.0
    throughput = np.where(active & ~no_migrations, np.round(thr), 0.0)

    # operations and errors -------------------------------------------------------------------------
    per_mig = np.asarray([_OPS_PER_MIGRATION[c] for c in COMPONENTS])[:, None, None, None]
    bg = np.asarray([_BG_OPS_PER_MIN[c] for c in COMPONENTS])[:, None, None, None] * dt_min
    ops = rng.poisson(per_mig * counts[None] + bg * active[None]).astype(np.int64)
    ops[no_ops] = 0
    errs = rng.binomial(ops, err_p)
    timeouts = rng.binomial(errs, timeout_share)
    err_by_type = np.stack([timeouts, errs - timeouts], axis=1)  # (C, 2, R, V, n): timeout, protocol
    cons = rng.poisson(cons_lam)
    byz = rng.poisson(byz_lam)

    # resets and initial values ----------------------------------------------------------------------
    reset = np.zeros((R, V, n), dtype=bool)
    step = timedelta(seconds=step_s)
    for rs in rsts:
        k = round((rs.time - t0) / step)
        reset[REGIONS.index(rs.region), VERSIONS.index(rs.version), k] = True
    reset_nov = reset[:, iv3]  # version-less ACP counters live in the v3 service
    uptime = np.zeros((R, V))  # steps of history before t0: v1 has run for days, v3 is new
    uptime[:, 1 - iv3] = rng.uniform(2.0, 6.0, R) * 86400.0 / step_s
    day1 = slice(0, min(n, int(86400 // step_s)))

    def offset(inc: np.ndarray) -> np.ndarray:  # inc (..., R, V, n) -> (..., R, V)
        return np.round(inc[..., day1].mean(axis=-1) * uptime)

    bins_rvbn = np.moveaxis(bins, 3, 2).astype(float)  # (R, V, nb, n)
    bin_off = np.round(bins_rvbn[..., day1].mean(axis=-1) * uptime[..., None])
    bins_cum = _cumulate(bins_rvbn, reset[:, :, None, :], bin_off)
    buckets = np.cumsum(bins_cum, axis=2)  # cumulative over le: (R, V, nb, n)
    count_c = buckets[:, :, -1, :]
    sum_off = np.round(sum_ms[..., day1].mean(axis=-1) * uptime)
    sum_c = _cumulate(sum_ms, reset, sum_off) / 1000.0
    bytes_c = _cumulate(bytes_inc, reset, offset(bytes_inc))
    ops_c = _cumulate(ops.astype(float), reset[None], offset(ops.astype(float)))
    errf = err_by_type.astype(float)
    err_c = _cumulate(errf, reset[None, None], offset(errf))
    cons_c = _cumulate(cons.astype(float), reset_nov)
    byz_c = _cumulate(byz.astype(float), reset_nov[:, None, :])

    # assemble ---------------------------------------------------------------------------------------
    rows: list[tuple[str, dict[str, str], np.ndarray]] = []
    hist = "dwcp_v3_migration_latency_seconds"
    for r, reg in enumerate(REGIONS):
        for v, ver in enumerate(VERSIONS):
            lv = {"region": reg, "version": ver}
            for j, le in enumerate(LE_LABELS):
                rows.append((f"{hist}_bucket", {**lv, "le": le}, buckets[r, v, j]))
            rows.append((f"{hist}_sum", lv, sum_c[r, v]))
            rows.append((f"{hist}_count", lv, count_c[r, v]))
            rows.append(("dwcp_v3_bytes_transferred_total", lv, bytes_c[r, v]))
            rows.append(("dwcp_v3_throughput_bytes_per_second", lv, throughput[r, v]))
            rows.append(("dwcp_v3_active_streams", lv, streams[r, v]))
            rows.append(("dwcp_v3_compression_ratio", lv, ratio[r, v]))
            for c, comp in enumerate(COMPONENTS):
                lc = {**lv, "component": comp}
                rows.append(("dwcp_v3_component_operations_total", lc, ops_c[c, r, v]))
                for e, et in enumerate(("timeout", "protocol")):
                    rows.append(("dwcp_v3_component_errors_total", {**lc, "error_type": et}, err_c[c, e, r, v]))
        for c, comp in enumerate(COMPONENTS):
            rows.append(("dwcp_v3_component_health", {"region": reg, "component": comp}, health[c, r]))
        rows.append(("dwcp_v3_peers_connected", {"region": reg}, peers[r]))
        rows.append(("dwcp_v3_consensus_failures_total", {"region": reg}, cons_c[r]))
        for k, node in enumerate(node_ids(reg)):
            rows.append(("dwcp_v3_byzantine_detections_total", {"region": reg, "node_id": node}, byz_c[r, k]))
    rows.append(("dwcp_v3_rollout_percentage", {}, pct.astype(float)))

    label_names = sorted({k for _, lab, _ in rows for k in lab})
    series = pl.DataFrame(
        {"metric": [m for m, _, _ in rows], **{k: [lab.get(k) for _, lab, _ in rows] for k in label_names}},
        schema={"metric": pl.String, **{k: pl.String for k in label_names}},
    )
    S = len(rows)
    values = np.stack([np.asarray(vals, dtype=np.float64) for _, _, vals in rows]).ravel()
    long = series[np.repeat(np.arange(S), n)]
    frame = pl.concat(
        [
            pl.DataFrame({"timestamp": np.tile(ts_ms, S), "value": values}),
            long,
        ],
        how="horizontal",
    ).with_columns(pl.col("timestamp").cast(schema.TIMESTAMP_DTYPE))
    return schema.normalize(frame, source="synthetic telemetry"), incidents_frame(incs)


# ------------------------------------------------------------------------------------------------
# files


_CSV_TIME = "%Y-%m-%dT%H:%M:%S%.3fZ"


def write_sample(directory: Path | str | None = None, **generate_kwargs) -> tuple[Path, Path]:
    """Generate and write ``telemetry.parquet`` (zstd) and ``incidents.csv`` to ``directory``.

    ``directory`` defaults to :func:`dwcpkit._paths.data_dir`; keyword arguments go to
    :func:`generate`. Writing twice with the same arguments gives identical bytes (with the same
    polars build: the parquet footer names the writer's version).

    Returns
    -------
    (parquet_path, csv_path)

    Example
    -------
    >>> import tempfile
    >>> p, c = write_sample(tempfile.mkdtemp(), days=0.25)
    >>> p.name, c.name
    ('telemetry.parquet', 'incidents.csv')
    """
    out = Path(directory) if directory is not None else data_dir()
    frame, truth = generate(**generate_kwargs)
    try:
        out.mkdir(parents=True, exist_ok=True)
        pq = out / "telemetry.parquet"
        csv = out / "incidents.csv"
        frame.write_parquet(pq, compression="zstd", compression_level=9, statistics=True)
        truth.write_csv(csv, datetime_format=_CSV_TIME, null_value="")
    except OSError as exc:
        raise ParameterError(f"cannot write the sample data to {out}: {exc}; pass a writable --out DIR") from exc
    return pq, csv


def read_incidents(path: Path | str | None = None) -> pl.DataFrame:
    """Read an ``incidents.csv`` written by :func:`write_sample` back into the ground-truth table.

    ``path`` defaults to ``data/incidents.csv``.

    >>> read_incidents().columns[:4]
    ['incident_id', 'kind', 'start', 'end']
    """
    p = Path(path) if path is not None else data_dir() / "incidents.csv"
    if not p.is_file():
        raise SourceError(f"{p}: no such incidents file; run `dwcpkit sample-data` to create it")
    try:
        raw = pl.read_csv(p, infer_schema=False, null_values=[""])
        return raw.with_columns(
            pl.col("start", "end").str.to_datetime(_CSV_TIME, time_unit="ms", time_zone="UTC")
        ).select(incidents_frame([]).columns)
    except (pl.exceptions.PolarsError, pl.exceptions.ColumnNotFoundError) as exc:
        raise SourceError(f"{p}: not an incidents table ({exc}); regenerate it with `dwcpkit sample-data`") from exc
