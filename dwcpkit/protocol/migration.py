"""Pre-copy live migration over a WAN: an analytical round-by-round model.

The classic pre-copy algorithm (Clark et al., NSDI 2005; QEMU and Xen both use it): send all
memory while the VM runs, then repeatedly send what was dirtied during the previous round,
until what is left can be sent within the downtime budget; then pause the VM and send the
rest (stop-and-copy). This module computes, round by round, how long that takes, how much
goes on the wire and what downtime results, given:

* ``memory_bytes`` and ``dirty_rate_Bps`` — bytes per second of *distinct* memory the guest
  dirties (pages/s × page size). ``dirty_model="linear"`` (default) dirties
  ``min(W, rate·t)`` bytes in a round of length ``t``, where ``W`` is the writable working set
  (``working_set_bytes``, default all memory); ``"saturating"`` uses
  ``W·(1 − exp(−rate·t/W))`` (uniform random writes over ``W`` re-dirty pages already dirty).
* ``link`` — the wire throughput in **bytes/s** for the stream count: a number (the aggregate,
  streams then do not matter), a callable ``f(streams) -> bytes/s``, or a
  :class:`LinkSpec` (RTT, loss, capacity, model) evaluated with
  :func:`dwcpkit.protocol.link.predict` (which works in bits/s; this module converts).
* compression — ``bulk_ratio`` for the first, full pass and ``delta_ratio`` for pages sent
  again (delta encoding such as HDE/XBZRLE only helps from the second pass on: there is no
  previous copy before it). Each is a number (raw : wire) or a zero-argument callable that
  measures it, e.g. ``lambda: hde_ratios(old_sample, new_sample)[1]`` (HDE on sample pages)
  or ``lambda: measure_ratio(encoder, sample)``; evaluated once. An optional encoder speed
  (``bulk_encode_Bps`` / ``delta_encode_Bps``, raw bytes/s) caps the compressed rate; if
  compressing would be slower than sending raw (or the ratio is below 1), the round is sent
  raw (the ``ratio`` column then shows 1).
* ``rtt_s`` — one round trip of synchronisation per round (dirty-log sync, start of round);
  ``switchover_s`` — fixed cost inside the downtime (device state, resume on the target).

Round ``i`` sends ``V_i`` raw bytes at ``rate_i = min(B·r_i, encoder)`` raw bytes/s, lasting
``t_i = V_i / rate_i + rtt``; the guest meanwhile dirties ``V_{i+1}``. After each live round
the model stops if ``V_{i+1}/rate + rtt + switchover ≤ downtime_budget_s`` ("converged"),
or when ``max_rounds`` live rounds have run ("forced": the stop-and-copy then takes however
long it takes, and the result says so). Closed forms it reproduces (see the tests): no
dirtying → one round of ``M/B``; ``rate < B`` → a geometric series with ratio ``rate/B``;
``rate ≥ B`` → no convergence, stop-and-copy after ``max_rounds``.

Deviations from the original (``orchestrator_dwcp_v3.go``, which does not compile; §10):
its convergence test mixed a "dirty-page rate < 0.01" fraction, ``iteration ≥ max − 1`` and a
predicted time; here there is one rule (fits the budget, or out of rounds). Its throughputs
were written in GiB ("1 Gbps" = 1024³ B/s); here everything is bytes/s and SI.
:data:`ORIGINAL_MODE_TARGETS` keeps its per-mode table as written, as a claim.

Example
-------
>>> from dwcpkit.protocol.migration import simulate_precopy
>>> r = simulate_precopy(8e9, dirty_rate_Bps=0, link=1e9)       # nothing dirtied: 8 GB at 1 GB/s
>>> r.total_time_s, r.downtime_s, r.rounds, r.converged
(8.0, 0.0, 1, True)
>>> r = simulate_precopy(8e9, dirty_rate_Bps=2e8, link=1e9, downtime_budget_s=0.3)
>>> r.rounds, round(r.total_time_s, 3), r.downtime_s <= 0.3
(3, 9.984, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from dwcpkit.errors import ParameterError, ProtocolError

__all__ = [
    "LinkSpec",
    "MigrationResult",
    "ORIGINAL_MODE_TARGETS",
    "V3_DEFAULT_BULK_RATIO",
    "V3_DEFAULT_DELTA_RATIO",
    "simulate_precopy",
    "throughput_for",
    "best_streams",
    "measure_ratio",
    "hde_ratios",
    "compare_v1_v3",
    "comparison_table",
]

#: The original orchestrator's per-mode targets, as written (a claim, GiB units as in the
#: source: "10 GiB/s" = 10·1024³ B/s). Keys: max downtime (s), throughput (B/s), compression
#: ratio, max pre-copy iterations.
ORIGINAL_MODE_TARGETS: dict[str, dict[str, float]] = {
    "datacenter": {"downtime_budget_s": 0.5, "throughput_Bps": 10 * 1024**3, "compression_ratio": 1.2,
                   "max_rounds": 5},
    "internet": {"downtime_budget_s": 90.0, "throughput_Bps": 100 * 1024**2, "compression_ratio": 3.0,
                 "max_rounds": 10},
    "hybrid": {"downtime_budget_s": 5.0, "throughput_Bps": 1024**3, "compression_ratio": 2.0, "max_rounds": 7},
}

#: zstd-1 on a synthetic VM-like 256 MiB image, measured on the development machine
#: (performance.md §2; synthetic data, not real guest memory).
V3_DEFAULT_BULK_RATIO = 2.36
#: XBZRLE-style delta on the sparse 10 %-dirty page set (561 B per 4 KiB page), same source
#: (performance.md §1.3; synthetic writes, real guests are less regular).
V3_DEFAULT_DELTA_RATIO = 7.3


@dataclass(frozen=True)
class LinkSpec:
    """A WAN path for :func:`dwcpkit.protocol.link.predict`: RTT, random loss, capacity.

    Parameters
    ----------
    rtt_s : float
        Round-trip time, seconds.
    loss : float
        Random loss probability in [0, 1).
    capacity_bps : float
        Bottleneck line rate in **bits/s** (as in ``link``).
    model : str
        ``"pftk"``, ``"mathis"`` or ``"bbr"``.
    window_bytes : float, optional
        Per-stream receive window.

    >>> spec = LinkSpec(rtt_s=0.1, loss=1e-4, capacity_bps=1e9, model="mathis")
    >>> round(spec.throughput_Bps(1) / 1e6, 2)       # one Mathis stream, MB/s
    1.79
    """

    rtt_s: float
    loss: float
    capacity_bps: float
    model: str = "pftk"
    window_bytes: float | None = None

    def throughput_Bps(self, streams: int) -> float:
        """Aggregate goodput of ``streams`` streams in bytes/s."""
        try:
            from dwcpkit.protocol import link
        except ImportError as exc:  # pragma: no cover - link ships with dwcpkit
            raise ProtocolError("dwcpkit.protocol.link is not available; pass throughput as a number "
                                "of bytes/s or a callable(streams) instead") from exc
        p = link.predict(streams, self.rtt_s, self.loss, self.capacity_bps, model=self.model,
                         window_bytes=self.window_bytes)
        return p.throughput_bps / 8.0


LinkLike = float | int | Callable[[int], float] | LinkSpec | Any


def throughput_for(link: LinkLike, streams: int) -> float:
    """Wire throughput in bytes/s that ``link`` gives ``streams`` streams.

    ``link`` is a number (aggregate bytes/s, independent of streams), a callable
    ``f(streams) -> bytes/s``, a :class:`LinkSpec`, or any object with a
    ``throughput_Bps(streams)`` method, or with ``rtt_s``, ``loss`` and ``capacity_bps``
    attributes (evaluated like a :class:`LinkSpec`).

    >>> throughput_for(125e6, 8), throughput_for(lambda n: 10e6 * n, 8)
    (125000000.0, 80000000.0)
    """
    if isinstance(streams, bool) or not isinstance(streams, int) or streams < 1:
        raise ParameterError(f"streams must be an integer >= 1, got {streams!r}")
    if isinstance(link, (int, float)) and not isinstance(link, bool):
        value = float(link)
    elif hasattr(link, "throughput_Bps"):
        value = float(link.throughput_Bps(streams))
    elif all(hasattr(link, a) for a in ("rtt_s", "loss", "capacity_bps")):
        spec = LinkSpec(link.rtt_s, link.loss, link.capacity_bps, getattr(link, "model", "pftk"),
                        getattr(link, "window_bytes", None))
        value = spec.throughput_Bps(streams)
    elif callable(link):
        value = float(link(streams))
    else:
        raise ParameterError(f"link must be bytes/s (a number), a callable(streams) -> bytes/s or a LinkSpec, "
                             f"got {type(link).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ParameterError(f"the link gives {value!r} bytes/s for {streams} streams; it must be finite and > 0")
    return value


def best_streams(link: LinkLike, max_streams: int = 64, *, fill: float = 0.95) -> int:
    """Smallest stream count in ``[1, max_streams]`` reaching ``fill`` of the best throughput.

    >>> best_streams(lambda n: min(n, 10) * 1e6)
    10
    >>> best_streams(1e9)        # a fixed number: one stream is as good as any
    1
    """
    if isinstance(max_streams, bool) or not isinstance(max_streams, int) or max_streams < 1:
        raise ParameterError(f"max_streams must be an integer >= 1, got {max_streams!r}")
    rates = [throughput_for(link, n) for n in range(1, max_streams + 1)]
    goal = fill * max(rates)
    return next(n for n, r in enumerate(rates, start=1) if r >= goal)


def measure_ratio(encode: Callable[..., Any], sample: Any, *, baseline: Any = None) -> float:
    """Compression ratio (raw : encoded) of ``encode`` on ``sample``.

    ``encode(sample)`` — or ``encode(sample, baseline)`` for a delta encoder, the argument
    order of :func:`dwcpkit.protocol.hde.encode` — must return the encoded bytes (anything with
    ``len``) or their length. The raw size is ``len(sample)`` (``sample.nbytes`` for numpy
    arrays). For a migration's *delta* ratio use :func:`hde_ratios`, which counts only the
    pages that changed.

    >>> import zlib
    >>> measure_ratio(zlib.compress, bytes(4096) * 16) > 100
    True
    """
    raw = getattr(sample, "nbytes", None)
    raw = len(sample) if raw is None else raw
    if raw <= 0:
        raise ParameterError("measure_ratio needs a non-empty sample")
    out = encode(sample) if baseline is None else encode(sample, baseline)
    size = out if isinstance(out, (int, float)) else (getattr(out, "nbytes", None) or len(out))
    return float(raw) / max(1.0, float(size))


def hde_ratios(old: Any, new: Any, *, container: str = "zstd", level: int | None = 1,
               page_size: int = 4096, encode: Callable[..., Any] | None = None) -> tuple[float, float]:
    """``(bulk_ratio, delta_ratio)`` measured with HDE on a sample image pair.

    ``bulk_ratio`` = ``len(new)`` / size of a FULL HDE payload of ``new`` (no baseline: what
    the first pass can achieve with zero-page elision and the container). ``delta_ratio`` =
    bytes of the pages of ``new`` that differ from ``old`` / size of the HDE payload of ``new``
    against ``old``: what re-sending the dirty pages costs on the wire. Headers are included,
    so use samples of at least a few hundred pages. ``encode`` defaults to
    :func:`dwcpkit.protocol.hde.encode` (first call JIT-compiles its kernels).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> old = rng.integers(0, 256, 256 * 4096, dtype=np.uint8)
    >>> new = old.copy(); new[::40960] ^= 1                      # one byte in every 10th page
    >>> bulk, delta = hde_ratios(old, new)
    >>> round(bulk, 2), delta > 50
    (1.0, True)
    """
    import numpy as np

    if encode is None:
        from dwcpkit.protocol import hde

        encode = hde.encode
    a = np.frombuffer(memoryview(old).cast("B"), dtype=np.uint8) if not isinstance(old, np.ndarray) else old
    b = np.frombuffer(memoryview(new).cast("B"), dtype=np.uint8) if not isinstance(new, np.ndarray) else new
    a, b = a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8)
    if a.size != b.size or b.size == 0:
        raise ParameterError(f"hde_ratios needs two non-empty images of the same size, got {a.size} and {b.size} bytes")
    if page_size < 1:
        raise ParameterError(f"page_size must be >= 1, got {page_size}")
    n = -(-b.size // page_size)
    pad = n * page_size - b.size
    pa = np.concatenate([a, np.zeros(pad, np.uint8)]).reshape(n, page_size)
    pb = np.concatenate([b, np.zeros(pad, np.uint8)]).reshape(n, page_size)
    dirty = int(np.count_nonzero((pa != pb).any(axis=1))) * page_size
    if dirty == 0:
        raise ParameterError("the sample images are identical: no dirty pages to measure a delta ratio on")
    kw = {"container": container, "level": level, "page_size": page_size}
    full = encode(b, None, **kw)
    delta = encode(b, a, **kw)
    return b.size / max(1, len(full)), min(dirty, b.size) / max(1, len(delta))


def _ratio(value: float | Callable[[], float], name: str) -> float:
    r = value() if callable(value) else value
    try:
        r = float(r)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number or a callable returning one, got {r!r}") from None
    if not (math.isfinite(r) and r > 0):
        raise ParameterError(f"{name} must be a finite ratio > 0 (raw : wire), got {r!r}")
    return r


@dataclass(frozen=True)
class MigrationResult:
    """Outcome of :func:`simulate_precopy`.

    Attributes
    ----------
    total_time_s : float
        From the start of the first round to the VM running on the target.
    downtime_s : float
        Length of the stop-and-copy (VM paused).
    wire_bytes, raw_bytes : float
        Bytes sent on the wire / guest memory bytes they carried (all rounds).
    rounds : int
        Live pre-copy rounds (the stop-and-copy not counted).
    converged : bool
        The remaining dirty set fitted the downtime budget; ``False`` = forced stop-and-copy
        after ``max_rounds`` (downtime may then exceed the budget).
    reason : str
        ``"fits-budget"`` or ``"max-rounds"``.
    diverging : bool
        The dirty rate is at least the delta-round send rate: pre-copy cannot shrink the
        dirty set (only the working-set cap bounds it).
    streams : int
    throughput_Bps : float
        Wire throughput used (bytes/s).
    rows : list of dict
        Per-round table (also :meth:`table`): ``round``, ``phase`` (``pre-copy`` /
        ``stop-and-copy``), ``raw_bytes``, ``wire_bytes``, ``ratio``, ``seconds``,
        ``raw_rate_Bps``, ``dirtied_bytes`` (during the round), ``pages``.
    """

    total_time_s: float
    downtime_s: float
    wire_bytes: float
    raw_bytes: float
    rounds: int
    converged: bool
    reason: str
    diverging: bool
    streams: int
    throughput_Bps: float
    downtime_budget_s: float
    rows: list[dict[str, Any]] = field(repr=False)

    def table(self) -> Any:
        """The per-round table as a polars DataFrame."""
        import polars as pl

        return pl.DataFrame(self.rows)

    def summary(self) -> dict[str, Any]:
        """The scalar fields as a dict (one row of a comparison table)."""
        return {
            "total_time_s": self.total_time_s, "downtime_s": self.downtime_s,
            "downtime_budget_s": self.downtime_budget_s, "wire_bytes": self.wire_bytes,
            "raw_bytes": self.raw_bytes, "rounds": self.rounds, "converged": self.converged,
            "reason": self.reason, "diverging": self.diverging, "streams": self.streams,
            "throughput_Bps": self.throughput_Bps,
        }


def _rate(B: float, ratio: float, encode_Bps: float | None) -> tuple[float, float]:
    """Raw bytes/s and the ratio actually used; send raw when compressing would be slower."""
    if ratio <= 1.0:
        return B, 1.0
    compressed = B * ratio if encode_Bps is None else min(B * ratio, encode_Bps)
    return (compressed, ratio) if compressed > B else (B, 1.0)


def simulate_precopy(
    memory_bytes: float,
    dirty_rate_Bps: float,
    link: LinkLike,
    *,
    streams: int = 1,
    downtime_budget_s: float = 0.3,
    max_rounds: int = 30,
    bulk_ratio: float | Callable[[], float] = 1.0,
    delta_ratio: float | Callable[[], float] = 1.0,
    bulk_encode_Bps: float | None = None,
    delta_encode_Bps: float | None = None,
    working_set_bytes: float | None = None,
    dirty_model: Literal["linear", "saturating"] = "linear",
    page_bytes: int = 4096,
    rtt_s: float = 0.0,
    switchover_s: float = 0.0,
) -> MigrationResult:
    """Model one pre-copy live migration, round by round.

    Parameters
    ----------
    memory_bytes : float
        Guest memory to move.
    dirty_rate_Bps : float
        Distinct memory dirtied per second (bytes/s).
    link : number, callable or LinkSpec
        Wire throughput in bytes/s (see :func:`throughput_for`).
    streams : int
        Parallel streams (matters only for a callable or :class:`LinkSpec`).
    downtime_budget_s : float
        Largest acceptable pause (QEMU's default downtime limit is 0.3 s).
    max_rounds : int
        Live rounds before a forced stop-and-copy (Xen used ~30).
    bulk_ratio, delta_ratio : float or callable
        Compression ratio (raw : wire) of the first pass and of re-sent pages; callables
        measure it (see :func:`hde_ratios`). Below 1 the round is sent raw.
    bulk_encode_Bps, delta_encode_Bps : float, optional
        Encoder speed in raw bytes/s (all sender cores together); ``None`` = not a limit.
    working_set_bytes : float, optional
        Writable working set: the dirty set never exceeds it (default ``memory_bytes``).
    dirty_model : {"linear", "saturating"}
    page_bytes : int
        For the ``pages`` column.
    rtt_s, switchover_s : float
        Per-round synchronisation cost; fixed cost inside the downtime.

    Returns
    -------
    MigrationResult

    Examples
    --------
    >>> r = simulate_precopy(4e9, dirty_rate_Bps=2e9, link=1e9, max_rounds=5)   # dirtier than the link
    >>> r.converged, r.reason, r.rounds, r.diverging
    (False, 'max-rounds', 5, True)
    >>> r.table().columns[:4]
    ['round', 'phase', 'raw_bytes', 'wire_bytes']
    """
    for name, v in (("memory_bytes", memory_bytes), ("dirty_rate_Bps", dirty_rate_Bps),
                    ("downtime_budget_s", downtime_budget_s), ("rtt_s", rtt_s), ("switchover_s", switchover_s)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ParameterError(f"{name} must be a finite number >= 0, got {v!r}")
    if memory_bytes <= 0:
        raise ParameterError(f"memory_bytes must be > 0, got {memory_bytes!r}")
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
        raise ParameterError(f"max_rounds must be an integer >= 1, got {max_rounds!r}")
    if dirty_model not in ("linear", "saturating"):
        raise ParameterError(f"dirty_model must be 'linear' or 'saturating', got {dirty_model!r}")
    if page_bytes < 1:
        raise ParameterError(f"page_bytes must be >= 1, got {page_bytes!r}")
    W = float(memory_bytes) if working_set_bytes is None else float(working_set_bytes)
    if not (math.isfinite(W) and 0 <= W <= memory_bytes):
        raise ParameterError(f"working_set_bytes must be in [0, memory_bytes], got {working_set_bytes!r}")
    for name, v in (("bulk_encode_Bps", bulk_encode_Bps), ("delta_encode_Bps", delta_encode_Bps)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ParameterError(f"{name} must be > 0 or None, got {v!r}")
    B = throughput_for(link, streams)
    r_bulk = _ratio(bulk_ratio, "bulk_ratio")
    r_delta = _ratio(delta_ratio, "delta_ratio")
    bulk_rate, bulk_used = _rate(B, r_bulk, bulk_encode_Bps)
    delta_rate, delta_used = _rate(B, r_delta, delta_encode_Bps)

    def dirtied(t: float) -> float:
        if dirty_rate_Bps == 0 or W == 0:
            return 0.0
        if dirty_model == "linear":
            return min(W, dirty_rate_Bps * t)
        return W * -math.expm1(-dirty_rate_Bps * t / W)

    rows: list[dict[str, Any]] = []
    remaining = float(memory_bytes)
    total = 0.0
    converged = False
    for rnd in range(max_rounds):
        rate, used = (bulk_rate, bulk_used) if rnd == 0 else (delta_rate, delta_used)
        t = remaining / rate + rtt_s
        d = dirtied(t)
        rows.append({"round": rnd, "phase": "pre-copy", "raw_bytes": remaining, "wire_bytes": remaining / used,
                     "ratio": used, "seconds": t, "raw_rate_Bps": rate, "dirtied_bytes": d,
                     "pages": math.ceil(remaining / page_bytes)})
        total += t
        remaining = d
        if remaining / delta_rate + rtt_s + switchover_s <= downtime_budget_s:
            converged = True
            break
    down = remaining / delta_rate + rtt_s + switchover_s
    rows.append({"round": len(rows), "phase": "stop-and-copy", "raw_bytes": remaining,
                 "wire_bytes": remaining / delta_used, "ratio": delta_used, "seconds": down,
                 "raw_rate_Bps": delta_rate, "dirtied_bytes": 0.0, "pages": math.ceil(remaining / page_bytes)})
    total += down
    return MigrationResult(
        total_time_s=total, downtime_s=down,
        wire_bytes=sum(r["wire_bytes"] for r in rows), raw_bytes=sum(r["raw_bytes"] for r in rows),
        rounds=len(rows) - 1, converged=converged, reason="fits-budget" if converged else "max-rounds",
        diverging=dirty_rate_Bps >= delta_rate and W > 0, streams=streams, throughput_Bps=B,
        downtime_budget_s=float(downtime_budget_s), rows=rows)


def compare_v1_v3(
    memory_bytes: float,
    dirty_rate_Bps: float,
    link: LinkLike,
    *,
    v1_streams: int = 16,
    v3_streams: int | Literal["auto"] = "auto",
    max_streams: int = 64,
    v3_bulk_ratio: float | Callable[[], float] = V3_DEFAULT_BULK_RATIO,
    v3_delta_ratio: float | Callable[[], float] = V3_DEFAULT_DELTA_RATIO,
    v3_bulk_encode_Bps: float | None = None,
    v3_delta_encode_Bps: float | None = None,
    **common: Any,
) -> dict[str, MigrationResult]:
    """The same migration "v1-like" (no compression, no delta, fixed streams) and with v3 settings.

    v1: ``v1_streams`` streams (v1 AMST starts at 16), ratio 1 in every round. v3: the stream
    count from :func:`best_streams` (``"auto"``) or the one given, ``v3_bulk_ratio`` for the
    first pass (default 2.36, zstd-1 on a synthetic VM image) and ``v3_delta_ratio`` for
    re-sent pages (default 7.3, XBZRLE-style delta on sparse synthetic writes), optionally
    capped by encoder speeds (e.g. 0.6e9 B/s per core for zstd-1, ~2e9 for the numba delta
    encoder, performance.md). To use ratios measured by HDE on your own sample pages, pass
    ``v3_bulk_ratio=bulk, v3_delta_ratio=delta`` from :func:`hde_ratios`. ``common`` goes to
    both runs (``downtime_budget_s``, ``max_rounds``, ``rtt_s``, ``working_set_bytes``, ...).

    Returns
    -------
    dict
        ``{"v1": MigrationResult, "v3": MigrationResult}``; see :func:`comparison_table`.

    Examples
    --------
    >>> res = compare_v1_v3(16e9, dirty_rate_Bps=50e6, link=125e6, downtime_budget_s=1.0)
    >>> res["v1"].total_time_s > res["v3"].total_time_s, res["v3"].wire_bytes < res["v1"].wire_bytes
    (True, True)
    """
    for bad in ("streams", "bulk_ratio", "delta_ratio", "bulk_encode_Bps", "delta_encode_Bps"):
        if bad in common:
            raise ParameterError(f"pass {bad} as v1_/v3_ settings, not as a common argument")
    n3 = best_streams(link, max_streams) if v3_streams == "auto" else v3_streams
    v1 = simulate_precopy(memory_bytes, dirty_rate_Bps, link, streams=v1_streams, **common)
    v3 = simulate_precopy(memory_bytes, dirty_rate_Bps, link, streams=n3, bulk_ratio=v3_bulk_ratio,
                          delta_ratio=v3_delta_ratio, bulk_encode_Bps=v3_bulk_encode_Bps,
                          delta_encode_Bps=v3_delta_encode_Bps, **common)
    return {"v1": v1, "v3": v3}


def comparison_table(results: dict[str, MigrationResult]) -> Any:
    """One row per named result (e.g. from :func:`compare_v1_v3`), polars DataFrame.

    >>> t = comparison_table(compare_v1_v3(4e9, 1e7, 125e6))
    >>> t["name"].to_list()
    ['v1', 'v3']
    """
    import polars as pl

    return pl.DataFrame([{"name": k, **v.summary()} for k, v in results.items()])
