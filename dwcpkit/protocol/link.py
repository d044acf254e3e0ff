"""WAN link models for AMST: Mathis, PFTK and a BBR-like model, n-stream sharing, auto-tuning.

Answers "what throughput do ``n`` TCP streams get on a path with this RTT, random loss and
capacity", and picks a stream count and chunk size for AMST against that answer. All rates
are **bits per second**, times are **seconds**, sizes are **bytes**, loss is a **probability**
in ``[0, 1)``.

Models (reference/performance.md §3.1)
--------------------------------------
``"mathis"``
    Mathis et al. 1997: ``MSS / RTT · C / √p`` with ``C = √(3/2)`` (periodic loss, an ACK per
    packet). Loss-based Reno congestion avoidance, no timeouts.
``"pftk"``
    Padhye, Firoiu, Towsley, Kurose 1998: Mathis plus retransmission timeouts,
    ``1 / (RTT·√(2bp/3) + T0·min(1, 3√(3bp/8))·p·(1 + 32p²))`` packets/s with ``b = 2``
    (delayed ACKs) and ``T0 = 200 ms``; optionally capped at ``Wmax / RTT``.
``"bbr"``
    A steady-state model of BBR v1, dwcpkit's own (nothing here was measured). BBR paces at
    its estimate of the bottleneck bandwidth (BtlBw) and caps inflight near ``2·BtlBw·minRTT``;
    isolated random losses do not reduce its rate. So while ``p ≤ loss_tolerance`` (0.15,
    the Linux BBR v1 submission's "full use up to about 15 % random loss"; the ProbeBW gain
    1.25 bounds it at ``1 − 1/1.25 = 0.2`` in theory) the flows together deliver the
    bottleneck's goodput ``capacity · (1 − p)``, independent of RTT and of the stream count
    (n BBR streams just split BtlBw). Above the tolerance the probing can no longer outrun
    the loss and BBR v1's bandwidth estimate collapses; the model then falls back to the
    Mathis rate per stream — a deliberate cliff, conservative, not a fit to data. Startup,
    ProbeRTT and competition with other flows are not modelled.

Every model is also capped per stream by the receive window (``window_bytes / RTT``) when one
is given, and the aggregate by ``capacity · (1 − p)``: the bottleneck's line rate less the
share spent on retransmissions. Loss is treated as *random* (not caused by the streams), so p
does not grow with n: these are the Hacker/Athey/Noble upper bounds, not a congestion
simulation.

Auto-tuning (dwcp-protocol.md §3.2, §3.5)
-----------------------------------------
Chunk size follows the original v3 rule: ×0.8 above 5 % loss (floor 16 KiB), ×1.2 below 1 %
loss when RTT < 100 ms (cap 512 KiB). The original never measured loss or RTT, so its chunk
only ever grew; here the caller passes measured values. Stream count deviates from the
original, whose ``clamp(bw_Mbps / (lat_ms · 0.2), 4, 512)`` *reduces* streams as latency
grows (the opposite of bandwidth-delay-product reasoning): dwcpkit picks the smallest count in
``[4, 512]`` whose predicted throughput reaches 95 % of what the model says ``max_streams``
would get. The original rule is kept as :func:`original_stream_count` for comparison.

Example
-------
>>> from dwcpkit.protocol.link import mathis_bps, predict, choose_streams
>>> round(mathis_bps(0.1, 1e-4) / 1e6, 1)              # 100 ms, 0.01 % loss, one stream
14.3
>>> p = predict(8, rtt_s=0.1, loss=1e-4, capacity_bps=1e9, model="mathis")
>>> round(p.throughput_bps / 1e6), p.limited_by
(114, 'loss')
>>> choose_streams(rtt_s=0.1, loss=1e-4, capacity_bps=1e9, model="mathis")
67
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from dwcpkit.errors import ParameterError

__all__ = [
    "MSS_BYTES",
    "MATHIS_C",
    "PFTK_B",
    "PFTK_T0_S",
    "BBR_LOSS_TOLERANCE",
    "MIN_STREAMS",
    "MAX_STREAMS",
    "MIN_CHUNK_BYTES",
    "MAX_CHUNK_BYTES",
    "DEFAULT_CHUNK_BYTES",
    "Model",
    "Prediction",
    "Tuning",
    "mathis_bps",
    "pftk_bps",
    "window_bps",
    "bbr_bps",
    "bdp_bytes",
    "predict",
    "streams_needed",
    "choose_streams",
    "next_chunk_bytes",
    "original_stream_count",
    "AutoTuner",
]

MSS_BYTES = 1460
"""Maximum segment size assumed by the models (Ethernet MTU 1500 less IPv4 + TCP headers)."""
MATHIS_C = math.sqrt(1.5)
"""Mathis constant for periodic loss and an ACK per packet (≈1.22)."""
PFTK_B = 2
"""Packets acknowledged per ACK in PFTK (2 = delayed ACKs)."""
PFTK_T0_S = 0.2
"""PFTK retransmission timeout (Linux' 200 ms minimum RTO)."""
BBR_LOSS_TOLERANCE = 0.15
"""Random loss up to which the BBR-like model keeps the bottleneck full."""
MIN_STREAMS = 4
MAX_STREAMS = 512
MIN_CHUNK_BYTES = 16 * 1024
MAX_CHUNK_BYTES = 512 * 1024
DEFAULT_CHUNK_BYTES = 256 * 1024

Model = Literal["mathis", "pftk", "bbr"]
_MODELS = ("mathis", "pftk", "bbr")


def _check_rtt(rtt_s: float) -> float:
    rtt_s = float(rtt_s)
    if not (math.isfinite(rtt_s) and rtt_s > 0):
        raise ParameterError(f"rtt_s must be a positive number of seconds, got {rtt_s!r} (100 ms is 0.1)")
    return rtt_s


def _check_loss(loss: float) -> float:
    loss = float(loss)
    if not (0.0 <= loss < 1.0):
        raise ParameterError(f"loss must be a probability in [0, 1), got {loss!r} (1 % is 0.01)")
    return loss


def _check_positive(name: str, value: float, *, allow_inf: bool = False) -> float:
    value = float(value)
    if math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        raise ParameterError(f"{name} must be a positive number, got {value!r}")
    return value


def mathis_bps(rtt_s: float, loss: float, *, mss_bytes: int = MSS_BYTES, c: float = MATHIS_C) -> float:
    """Mathis et al. (1997) throughput of one loss-based TCP stream, in bits/s.

    ``BW = MSS·8 / RTT · C / √p``. With ``loss = 0`` the formula has no bound: returns ``inf``
    (cap it with a window or a capacity, see :func:`predict`).

    >>> round(mathis_bps(0.02, 1e-4) / 1e6, 1)
    71.5
    """
    rtt_s = _check_rtt(rtt_s)
    loss = _check_loss(loss)
    mss = _check_positive("mss_bytes", mss_bytes)
    if loss == 0.0:
        return math.inf
    return mss * 8.0 / rtt_s * c / math.sqrt(loss)


def pftk_bps(
    rtt_s: float,
    loss: float,
    *,
    mss_bytes: int = MSS_BYTES,
    b: int = PFTK_B,
    t0_s: float = PFTK_T0_S,
    wmax_bytes: float | None = None,
) -> float:
    """Padhye et al. (1998) throughput of one Reno stream with timeouts, in bits/s.

    ``B = 1 / (RTT·√(2bp/3) + T0·min(1, 3·√(3bp/8))·p·(1 + 32p²))`` packets/s, times
    ``MSS·8``; capped at ``wmax_bytes / RTT`` when a maximum window is given. ``loss = 0``
    gives ``inf`` (or the window cap).

    >>> round(pftk_bps(0.02, 1e-4) / 1e6, 1)
    50.5
    """
    rtt_s = _check_rtt(rtt_s)
    loss = _check_loss(loss)
    mss = _check_positive("mss_bytes", mss_bytes)
    _check_positive("b", b)
    _check_positive("t0_s", t0_s)
    cap = math.inf if wmax_bytes is None else window_bps(wmax_bytes, rtt_s)
    if loss == 0.0:
        return cap
    p = loss
    denom = rtt_s * math.sqrt(2 * b * p / 3) + t0_s * min(1.0, 3 * math.sqrt(3 * b * p / 8)) * p * (1 + 32 * p * p)
    return min(cap, mss * 8.0 / denom)


def window_bps(window_bytes: float, rtt_s: float) -> float:
    """The rate a window of ``window_bytes`` allows per RTT, in bits/s: ``window·8 / RTT``.

    >>> round(window_bps(4 * 1024 * 1024, 0.1) / 1e6)      # a 4 MiB window at 100 ms
    336
    """
    return _check_positive("window_bytes", window_bytes, allow_inf=True) * 8.0 / _check_rtt(rtt_s)


def bbr_bps(
    rtt_s: float,
    loss: float,
    capacity_bps: float,
    *,
    loss_tolerance: float = BBR_LOSS_TOLERANCE,
    mss_bytes: int = MSS_BYTES,
) -> float:
    """Steady-state rate of BBR-like flows through a bottleneck, in bits/s (see module docstring).

    ``capacity · (1 − p)`` while ``p ≤ loss_tolerance``; above it the Mathis rate of one stream
    (the collapse of BBR v1's bandwidth estimate under heavy random loss). This is the
    aggregate of however many BBR streams share the bottleneck.

    >>> bbr_bps(0.1, 0.01, 10e9) / 1e9                     # 10 Gb/s, 100 ms, 1 % loss
    9.9
    >>> bbr_bps(0.1, 0.3, 10e9) < 1e6                       # past the cliff
    True
    """
    rtt_s = _check_rtt(rtt_s)
    loss = _check_loss(loss)
    capacity_bps = _check_positive("capacity_bps", capacity_bps)
    if not (0.0 <= loss_tolerance < 1.0):
        raise ParameterError(f"loss_tolerance must be in [0, 1), got {loss_tolerance!r}")
    if loss <= loss_tolerance:
        return capacity_bps * (1.0 - loss)
    return min(capacity_bps * (1.0 - loss), mathis_bps(rtt_s, loss, mss_bytes=mss_bytes))


def bdp_bytes(capacity_bps: float, rtt_s: float) -> float:
    """Bandwidth-delay product in bytes: what must be in flight to fill the path.

    >>> bdp_bytes(1e9, 0.1) / 1e6                          # 1 Gb/s x 100 ms
    12.5
    """
    return _check_positive("capacity_bps", capacity_bps) * _check_rtt(rtt_s) / 8.0


@dataclass(frozen=True, slots=True)
class Prediction:
    """What :func:`predict` says ``streams`` streams get on a path.

    Attributes
    ----------
    streams : int
    throughput_bps : float
        Aggregate goodput of all streams, bits/s.
    per_stream_bps : float
        ``throughput_bps / streams``.
    limited_by : str
        ``"capacity"`` (the bottleneck is full), ``"loss"`` (the loss-based rate of each
        stream, or the BBR-like model past its loss cliff) or ``"window"`` (the receive window
        per stream).
    model : str
    """

    streams: int
    throughput_bps: float
    per_stream_bps: float
    limited_by: str
    model: str


def _per_stream(model: str, rtt_s: float, loss: float, mss_bytes: int) -> float:
    if model == "mathis":
        return mathis_bps(rtt_s, loss, mss_bytes=mss_bytes)
    return pftk_bps(rtt_s, loss, mss_bytes=mss_bytes)


def predict(
    streams: int,
    rtt_s: float,
    loss: float,
    capacity_bps: float = math.inf,
    *,
    model: Model = "pftk",
    window_bytes: float | None = None,
    mss_bytes: int = MSS_BYTES,
    loss_tolerance: float = BBR_LOSS_TOLERANCE,
) -> Prediction:
    """Aggregate throughput of ``streams`` parallel streams sharing one bottleneck.

    ``min(capacity·(1−p), n · min(model(RTT, p), window/RTT))`` for the loss-based models
    (random loss: p does not grow with n). For ``"bbr"``: ``min(bbr_bps(...), n·window/RTT)``,
    which needs a finite ``capacity_bps``.

    Parameters
    ----------
    streams : int
        Number of parallel TCP streams, ≥ 1.
    rtt_s, loss, capacity_bps : float
        Round-trip time (s), random loss probability, bottleneck line rate (bits/s; ``inf``
        for none).
    model : {"mathis", "pftk", "bbr"}
    window_bytes : float, optional
        Per-stream receive window / socket buffer; ``None`` for unlimited.

    Examples
    --------
    >>> p = predict(16, rtt_s=0.05, loss=1e-5, model="mathis")   # no capacity cap
    >>> round(p.throughput_bps / 1e9, 2), p.limited_by
    (1.45, 'loss')
    >>> predict(64, rtt_s=0.05, loss=1e-5, capacity_bps=1e9, model="mathis").limited_by
    'capacity'
    >>> predict(1, rtt_s=0.1, loss=0.01, capacity_bps=1e9, model="bbr").throughput_bps / 1e6
    990.0
    """
    if isinstance(streams, bool) or not isinstance(streams, int) or streams < 1:
        raise ParameterError(f"streams must be an integer ≥ 1, got {streams!r}")
    if model not in _MODELS:
        raise ParameterError(f"model must be one of {', '.join(_MODELS)}, got {model!r}")
    rtt_s = _check_rtt(rtt_s)
    loss = _check_loss(loss)
    capacity_bps = _check_positive("capacity_bps", capacity_bps, allow_inf=True)
    win = math.inf if window_bytes is None else window_bps(window_bytes, rtt_s)
    goodput_cap = capacity_bps * (1.0 - loss)
    if model == "bbr":
        if math.isinf(capacity_bps):
            raise ParameterError("the bbr model needs a finite capacity_bps: BBR converges to the bottleneck rate")
        rate = bbr_bps(rtt_s, loss, capacity_bps, loss_tolerance=loss_tolerance, mss_bytes=mss_bytes)
        total = min(rate, streams * win)
        limited = "window" if streams * win < rate else ("capacity" if loss <= loss_tolerance else "loss")
        return Prediction(streams, total, total / streams, limited, model)
    per = _per_stream(model, rtt_s, loss, mss_bytes)
    limited = "loss"
    if win < per:
        per, limited = win, "window"
    uncapped = streams * per
    if goodput_cap < uncapped:
        total, limited = goodput_cap, "capacity"
    else:
        total = uncapped
    if math.isinf(total):
        raise ParameterError(
            "the prediction is unbounded: with loss = 0 the loss-based models need a capacity_bps or window_bytes"
        )
    return Prediction(streams, total, total / streams, limited, model)


def streams_needed(
    target_bps: float,
    rtt_s: float,
    loss: float,
    *,
    model: Model = "mathis",
    window_bytes: float | None = None,
    mss_bytes: int = MSS_BYTES,
) -> int:
    """Smallest stream count whose uncapped aggregate reaches ``target_bps``.

    ``ceil(target / per_stream)`` with the per-stream rate of a loss-based model (the "streams
    for 1 Gb/s" column of performance.md §3.2).

    >>> streams_needed(1e9, rtt_s=0.1, loss=1e-4)
    70
    >>> streams_needed(10e9, rtt_s=0.02, loss=1e-4)
    140
    """
    target_bps = _check_positive("target_bps", target_bps)
    if model == "bbr":
        raise ParameterError("streams_needed is defined for the loss-based models (mathis, pftk); BBR fills the path with one")
    per = predict(1, rtt_s, loss, model=model, window_bytes=window_bytes, mss_bytes=mss_bytes).per_stream_bps
    n = math.ceil(target_bps / per)
    # Guard against floating-point rounding of exact multiples.
    while n > 1 and (n - 1) * per >= target_bps:
        n -= 1
    return max(1, n)


def choose_streams(
    rtt_s: float,
    loss: float,
    capacity_bps: float,
    *,
    model: Model = "pftk",
    window_bytes: float | None = None,
    min_streams: int = MIN_STREAMS,
    max_streams: int = MAX_STREAMS,
    fill: float = 0.95,
    mss_bytes: int = MSS_BYTES,
) -> int:
    """Smallest stream count in ``[min_streams, max_streams]`` reaching ``fill`` of the best.

    "The best" is the model's prediction at ``max_streams``. Because the aggregate is
    non-decreasing in n this is also the knee of the curve: more streams buy < 5 % more.

    >>> choose_streams(0.1, 1e-4, 1e9, model="mathis")      # loss-limited: many streams
    67
    >>> choose_streams(0.001, 1e-6, 1e9, model="mathis")    # one stream would do: the floor
    4
    >>> choose_streams(0.1, 0.01, 1e9, model="bbr")
    4
    """
    for name, value in (("min_streams", min_streams), ("max_streams", max_streams)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(f"{name} must be an integer ≥ 1, got {value!r}")
    if min_streams > max_streams:
        raise ParameterError(f"min_streams ({min_streams}) must not exceed max_streams ({max_streams})")
    if not (0.0 < fill <= 1.0):
        raise ParameterError(f"fill must be in (0, 1], got {fill!r}")
    kw = dict(model=model, window_bytes=window_bytes, mss_bytes=mss_bytes)
    best = predict(max_streams, rtt_s, loss, capacity_bps, **kw).throughput_bps
    one = predict(1, rtt_s, loss, capacity_bps, **kw).throughput_bps
    goal = fill * best
    n = max(min_streams, min(max_streams, math.ceil(goal / one)))
    # The aggregate is min(cap, n·one): the formula is exact up to rounding; settle it.
    while n > min_streams and predict(n - 1, rtt_s, loss, capacity_bps, **kw).throughput_bps >= goal:
        n -= 1
    while n < max_streams and predict(n, rtt_s, loss, capacity_bps, **kw).throughput_bps < goal:
        n += 1
    return n


def next_chunk_bytes(
    current_bytes: int,
    loss: float,
    rtt_s: float,
    *,
    shrink_factor: float = 0.8,
    grow_factor: float = 1.2,
    shrink_above_loss: float = 0.05,
    grow_below_loss: float = 0.01,
    grow_below_rtt_s: float = 0.1,
    min_bytes: int = MIN_CHUNK_BYTES,
    max_bytes: int = MAX_CHUNK_BYTES,
) -> int:
    """The original v3 chunk-size rule, fed with *measured* loss and RTT.

    Loss above 5 %: ×0.8 (floor 16 KiB). Loss below 1 % and RTT below 100 ms: ×1.2 (cap
    512 KiB). Otherwise unchanged. The result is clamped to ``[min_bytes, max_bytes]``.

    >>> next_chunk_bytes(256 * 1024, loss=0.06, rtt_s=0.05)
    209715
    >>> next_chunk_bytes(500 * 1024, loss=0.0, rtt_s=0.01)
    524288
    >>> next_chunk_bytes(256 * 1024, loss=0.0, rtt_s=0.2)   # long RTT: hold
    262144
    """
    loss = _check_loss(loss)
    rtt_s = _check_rtt(rtt_s)
    if not (0 < min_bytes <= max_bytes):
        raise ParameterError(f"need 0 < min_bytes ≤ max_bytes, got {min_bytes}, {max_bytes}")
    if not (0 < shrink_factor <= 1 <= grow_factor):
        raise ParameterError(f"need 0 < shrink_factor ≤ 1 ≤ grow_factor, got {shrink_factor}, {grow_factor}")
    current = int(current_bytes)
    if current < 1:
        raise ParameterError(f"current_bytes must be ≥ 1, got {current_bytes!r}")
    if loss > shrink_above_loss:
        current = int(current * shrink_factor)
    elif loss < grow_below_loss and rtt_s < grow_below_rtt_s:
        current = int(current * grow_factor)
    return max(min_bytes, min(max_bytes, current))


def original_stream_count(
    bandwidth_mbps: float,
    latency_ms: float,
    *,
    mode: Literal["internet", "datacenter"] = "internet",
    min_streams: int = MIN_STREAMS,
    max_streams: int = MAX_STREAMS,
) -> int:
    """The original's ``AdjustStreams`` rule, for comparison only (dwcp-protocol.md §3.2, §3.4).

    ``clamp(bw_Mbps / (lat_ms · 0.2), min, max)`` for the internet pool, ``· 0.1`` for the
    datacenter pool. It falls as latency grows, which is backwards for window-limited TCP.

    >>> original_stream_count(1000, 10), original_stream_count(1000, 100)
    (500, 50)
    """
    _check_positive("bandwidth_mbps", bandwidth_mbps)
    _check_positive("latency_ms", latency_ms)
    factor = {"internet": 0.2, "datacenter": 0.1}.get(mode)
    if factor is None:
        raise ParameterError(f"mode must be 'internet' or 'datacenter', got {mode!r}")
    return max(min_streams, min(max_streams, int(bandwidth_mbps / (latency_ms * factor))))


@dataclass(frozen=True, slots=True)
class Tuning:
    """One auto-tuner decision: stream count, chunk size and the model's prediction for them."""

    streams: int
    chunk_bytes: int
    predicted_bps: float
    limited_by: str


class AutoTuner:
    """Stateful AMST tuner: chunk size by the original's 0.8/1.2 rule, streams by the model.

    Parameters
    ----------
    chunk_bytes : int
        Starting chunk size (256 KiB, the original's).
    model : {"mathis", "pftk", "bbr"}
        Link model used to choose the stream count.
    window_bytes : float, optional
        Per-stream receive window for the model.
    min_streams, max_streams, min_chunk_bytes, max_chunk_bytes : int
        Bounds (4, 512, 16 KiB, 512 KiB).
    shrink_factor, grow_factor, shrink_above_loss, grow_below_loss, grow_below_rtt_s : float
        The chunk rule's knobs (0.8, 1.2, 5 %, 1 %, 100 ms).
    fill : float
        See :func:`choose_streams`.

    Examples
    --------
    >>> t = AutoTuner(model="mathis")
    >>> d = t.update(rtt_s=0.05, loss=0.0005, capacity_bps=1e9)
    >>> d.streams, d.chunk_bytes, d.limited_by
    (75, 314572, 'loss')
    >>> t.update(rtt_s=0.05, loss=0.08, capacity_bps=1e9).chunk_bytes   # heavy loss: shrink
    251657
    """

    def __init__(
        self,
        *,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        model: Model = "pftk",
        window_bytes: float | None = None,
        min_streams: int = MIN_STREAMS,
        max_streams: int = MAX_STREAMS,
        min_chunk_bytes: int = MIN_CHUNK_BYTES,
        max_chunk_bytes: int = MAX_CHUNK_BYTES,
        shrink_factor: float = 0.8,
        grow_factor: float = 1.2,
        shrink_above_loss: float = 0.05,
        grow_below_loss: float = 0.01,
        grow_below_rtt_s: float = 0.1,
        fill: float = 0.95,
    ) -> None:
        if model not in _MODELS:
            raise ParameterError(f"model must be one of {', '.join(_MODELS)}, got {model!r}")
        if not (0 < min_chunk_bytes <= chunk_bytes <= max_chunk_bytes):
            raise ParameterError(
                f"need min_chunk_bytes ≤ chunk_bytes ≤ max_chunk_bytes, got {min_chunk_bytes}, {chunk_bytes}, {max_chunk_bytes}"
            )
        self.chunk_bytes = int(chunk_bytes)
        self.model = model
        self.window_bytes = window_bytes
        self._stream_kw = dict(model=model, window_bytes=window_bytes, min_streams=min_streams,
                               max_streams=max_streams, fill=fill)
        self._chunk_kw = dict(shrink_factor=shrink_factor, grow_factor=grow_factor,
                              shrink_above_loss=shrink_above_loss, grow_below_loss=grow_below_loss,
                              grow_below_rtt_s=grow_below_rtt_s, min_bytes=min_chunk_bytes,
                              max_bytes=max_chunk_bytes)
        choose_streams(0.01, 0.001, 1e9, **self._stream_kw)  # validate the stream bounds now

    def update(self, *, rtt_s: float, loss: float, capacity_bps: float) -> Tuning:
        """Feed one measurement (RTT s, loss probability, capacity bits/s); get the new decision."""
        self.chunk_bytes = next_chunk_bytes(self.chunk_bytes, loss, rtt_s, **self._chunk_kw)
        n = choose_streams(rtt_s, loss, capacity_bps, **self._stream_kw)
        p = predict(n, rtt_s, loss, capacity_bps, model=self.model, window_bytes=self.window_bytes)
        return Tuning(n, self.chunk_bytes, p.throughput_bps, p.limited_by)
