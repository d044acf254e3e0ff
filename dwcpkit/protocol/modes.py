"""Datacenter / internet / hybrid mode detection from measured RTT and bandwidth samples.

The decision rule is the original ``upgrade.ModeDetector``'s (dwcp-protocol.md §2.1), on the
arithmetic mean of the last 10 samples:

1. **datacenter** if mean RTT < 10 ms **and** mean bandwidth ≥ 1 Gbit/s;
2. otherwise **internet** if mean RTT > 50 ms **or** mean bandwidth < 1 Gbit/s;
3. otherwise **hybrid** (10 ms ≤ RTT ≤ 50 ms and bandwidth ≥ 1 Gbit/s).

Units are in every name: ``rtt_ms`` (milliseconds), ``bandwidth_bps`` (bits per second),
``cooldown_s`` (seconds). The enum keeps the original's wire values (datacenter 0, internet 1,
hybrid 2, as in the HDE v3 header byte 3).

Where dwcpkit deviates, and why
-------------------------------
* **Unknown.** With no samples the original's mean silently defaulted to the datacenter
  thresholds, and its "measurement" returned a fixed 5 ms / 10 Gbit/s, so every component
  drifted to datacenter. Here a detector without samples is :attr:`NetworkMode.UNKNOWN`
  (value −1: never put it on the wire).
* **Hysteresis (0.1).** The config's value was never read. Here every threshold comparison is
  a Schmitt trigger: a condition that holds (say "RTT < 10 ms") stops holding only once the
  mean crosses the threshold by 10 % the other way (RTT ≥ 11 ms), and a condition that does
  not hold starts holding only 10 % past it (RTT < 9 ms). The first evaluation uses the plain
  thresholds.
* **Cooldown (30 s).** After a mode change, no other change for ``cooldown_s`` of the
  injectable ``clock``. Leaving UNKNOWN is immediate and starts the cooldown (the original
  started it at construction).
* **Agreement (0.7).** The original's ``ModeSwitchThreshold`` ("switch if 70 % confident") was
  never read. Here a switch also needs at least that fraction of the window's samples,
  classified one by one with the plain rule, to agree with the new mode. This stops a 10-sample
  mean sliding from datacenter to internet from passing through a "hybrid" that no single
  sample showed. ``min_agreement=0`` turns it off.
* **Measurement.** Samples are real: :func:`samples_from_transfer` turns an AMST transfer's
  per-stream HELLO→READY round trips and its goodput into samples, and
  :func:`measure_loopback` runs such a transfer on 127.0.0.1. A transfer's goodput is a lower
  bound on the path's bandwidth.
* ``force`` holds for the cooldown; the original's ``ForceMode`` was overwritten by the next
  detection.

Example
-------
>>> from dwcpkit.protocol.modes import ModeDetector, NetworkMode
>>> t = [0.0]
>>> d = ModeDetector(clock=lambda: t[0])
>>> d.mode.name
'UNKNOWN'
>>> d.observe(rtt_ms=0.2, bandwidth_bps=10e9).mode.name
'DATACENTER'
>>> t[0] = 60.0
>>> for _ in range(10):
...     det = d.observe(rtt_ms=80.0, bandwidth_bps=300e6)
>>> det.mode.name, len(d.history)
('INTERNET', 2)
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from dwcpkit.errors import ParameterError

__all__ = [
    "NetworkMode",
    "DATACENTER_RTT_MS",
    "INTERNET_RTT_MS",
    "DATACENTER_BANDWIDTH_BPS",
    "INTERNET_BANDWIDTH_BPS",
    "WINDOW_SAMPLES",
    "HYSTERESIS",
    "COOLDOWN_S",
    "MIN_AGREEMENT",
    "Thresholds",
    "LinkSample",
    "Detection",
    "ModeChange",
    "classify",
    "ModeDetector",
    "samples_from_transfer",
    "measure_loopback",
]

DATACENTER_RTT_MS = 10.0
INTERNET_RTT_MS = 50.0
DATACENTER_BANDWIDTH_BPS = 1e9
INTERNET_BANDWIDTH_BPS = 1e9
WINDOW_SAMPLES = 10
HYSTERESIS = 0.1
COOLDOWN_S = 30.0
MIN_AGREEMENT = 0.7


class NetworkMode(IntEnum):
    """Network mode; DATACENTER/INTERNET/HYBRID keep the original's wire values."""

    UNKNOWN = -1
    DATACENTER = 0
    INTERNET = 1
    HYBRID = 2


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The rule's four thresholds (the original's defaults).

    >>> Thresholds().internet_rtt_ms
    50.0
    """

    datacenter_rtt_ms: float = DATACENTER_RTT_MS
    internet_rtt_ms: float = INTERNET_RTT_MS
    datacenter_bandwidth_bps: float = DATACENTER_BANDWIDTH_BPS
    internet_bandwidth_bps: float = INTERNET_BANDWIDTH_BPS

    def __post_init__(self) -> None:
        for name in ("datacenter_rtt_ms", "internet_rtt_ms", "datacenter_bandwidth_bps", "internet_bandwidth_bps"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ParameterError(f"{name} must be a positive finite number, got {v!r}")
        if self.datacenter_rtt_ms > self.internet_rtt_ms:
            raise ParameterError(f"datacenter_rtt_ms ({self.datacenter_rtt_ms}) must not exceed "
                                 f"internet_rtt_ms ({self.internet_rtt_ms})")


@dataclass(frozen=True, slots=True)
class LinkSample:
    """One measurement: round-trip time in ms and bandwidth in bits/s.

    >>> LinkSample(rtt_ms=-1, bandwidth_bps=1e9)
    Traceback (most recent call last):
    ...
    dwcpkit.errors.ParameterError: rtt_ms must be a finite number ≥ 0, got -1
    """

    rtt_ms: float
    bandwidth_bps: float

    def __post_init__(self) -> None:
        for name in ("rtt_ms", "bandwidth_bps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ParameterError(f"{name} must be a finite number ≥ 0, got {v!r}")


@dataclass(frozen=True, slots=True)
class ModeChange:
    """A recorded switch: when (clock seconds), from, to, and the window that caused it."""

    at_s: float
    old: NetworkMode
    new: NetworkMode
    mean_rtt_ms: float
    mean_bandwidth_bps: float
    agreement: float


@dataclass(frozen=True, slots=True)
class Detection:
    """Result of one evaluation.

    Attributes
    ----------
    mode : NetworkMode
        The detector's mode after this evaluation.
    candidate : NetworkMode
        What the window's mean says (with hysteresis); differs from ``mode`` while a switch
        is held.
    changed : bool
        Whether this evaluation switched the mode.
    held_by : str or None
        ``"cooldown"``, ``"agreement"`` or ``"min_samples"`` when a switch was held back.
    mean_rtt_ms, mean_bandwidth_bps : float or None
        Window means (``None`` with no samples).
    samples : int
        Samples in the window.
    agreement : float
        Fraction of the window's samples that, one by one, classify as ``candidate``.
    """

    mode: NetworkMode
    candidate: NetworkMode
    changed: bool
    held_by: str | None
    mean_rtt_ms: float | None
    mean_bandwidth_bps: float | None
    samples: int
    agreement: float


def classify(rtt_ms: float, bandwidth_bps: float, thresholds: Thresholds | None = None) -> NetworkMode:
    """The original's rule on one (mean) RTT and bandwidth, without hysteresis.

    >>> classify(5, 10e9).name, classify(5, 500e6).name, classify(30, 2e9).name, classify(80, 10e9).name
    ('DATACENTER', 'INTERNET', 'HYBRID', 'INTERNET')
    """
    th = thresholds or Thresholds()
    if rtt_ms < th.datacenter_rtt_ms and bandwidth_bps >= th.datacenter_bandwidth_bps:
        return NetworkMode.DATACENTER
    if rtt_ms > th.internet_rtt_ms or bandwidth_bps < th.internet_bandwidth_bps:
        return NetworkMode.INTERNET
    return NetworkMode.HYBRID


def _schmitt(state: bool | None, holds: bool, release: bool, engage: bool) -> bool:
    """Next state of a hysteretic condition: ``holds`` is the plain comparison, ``release``
    the comparison that ends a holding condition, ``engage`` the one that starts it."""
    if state is None:
        return holds
    return not release if state else engage


class ModeDetector:
    """Sliding-window mode detector with hysteresis, cooldown and an agreement threshold.

    Parameters
    ----------
    thresholds : Thresholds, optional
        10 ms, 50 ms, 1 Gbit/s, 1 Gbit/s by default.
    window : int
        Samples averaged (10).
    hysteresis : float
        Fractional dead band around each threshold (0.1).
    cooldown_s : float
        Minimum time between mode changes, in ``clock`` seconds (30).
    min_agreement : float
        Fraction of the window that must individually agree with a new mode (0.7).
    min_samples : int
        Samples needed before leaving UNKNOWN (1).
    clock : callable
        Returns seconds; ``time.monotonic`` by default, inject a fake one in tests.

    Examples
    --------
    >>> d = ModeDetector(clock=lambda: 0.0)
    >>> d.observe(rtt_ms=9.5, bandwidth_bps=5e9).mode.name
    'DATACENTER'
    >>> d.observe(rtt_ms=11.0, bandwidth_bps=5e9).mode.name   # mean 10.25 ms: inside the dead band
    'DATACENTER'
    """

    def __init__(
        self,
        thresholds: Thresholds | None = None,
        *,
        window: int = WINDOW_SAMPLES,
        hysteresis: float = HYSTERESIS,
        cooldown_s: float = COOLDOWN_S,
        min_agreement: float = MIN_AGREEMENT,
        min_samples: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.thresholds = thresholds or Thresholds()
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ParameterError(f"window must be an integer ≥ 1, got {window!r}")
        if not (0.0 <= hysteresis < 1.0):
            raise ParameterError(f"hysteresis must be a fraction in [0, 1), got {hysteresis!r}")
        if not (cooldown_s >= 0 and math.isfinite(cooldown_s)):
            raise ParameterError(f"cooldown_s must be ≥ 0 seconds, got {cooldown_s!r}")
        if not (0.0 <= min_agreement <= 1.0):
            raise ParameterError(f"min_agreement must be in [0, 1], got {min_agreement!r}")
        if isinstance(min_samples, bool) or not isinstance(min_samples, int) or not (1 <= min_samples <= window):
            raise ParameterError(f"min_samples must be an integer in [1, window={window}], got {min_samples!r}")
        self.window = window
        self.hysteresis = float(hysteresis)
        self.cooldown_s = float(cooldown_s)
        self.min_agreement = float(min_agreement)
        self.min_samples = min_samples
        self.clock = clock
        self._samples: deque[LinkSample] = deque(maxlen=window)
        self._mode = NetworkMode.UNKNOWN
        self._last_change: float | None = None
        self._cond: dict[str, bool | None] = {}
        self.history: list[ModeChange] = []
        self.reset()

    # -- state --------------------------------------------------------------------------------

    @property
    def mode(self) -> NetworkMode:
        """The current mode (UNKNOWN until the first evaluation with enough samples)."""
        return self._mode

    @property
    def samples(self) -> tuple[LinkSample, ...]:
        """The window, oldest first."""
        return tuple(self._samples)

    @property
    def mean_rtt_ms(self) -> float | None:
        """Mean RTT of the window in ms, ``None`` without samples."""
        return sum(s.rtt_ms for s in self._samples) / len(self._samples) if self._samples else None

    @property
    def mean_bandwidth_bps(self) -> float | None:
        """Mean bandwidth of the window in bits/s, ``None`` without samples."""
        return sum(s.bandwidth_bps for s in self._samples) / len(self._samples) if self._samples else None

    def reset(self) -> None:
        """Forget samples, history and mode: back to UNKNOWN."""
        self._samples.clear()
        self._mode = NetworkMode.UNKNOWN
        self._last_change = None
        self._cond = {"low_rtt": None, "high_rtt": None, "dc_bw": None, "low_bw": None}
        self.history = []

    def force(self, mode: NetworkMode) -> None:
        """Set the mode by hand; detection will not change it for ``cooldown_s``.

        >>> d = ModeDetector(clock=lambda: 0.0)
        >>> d.force(NetworkMode.INTERNET)
        >>> d.observe(rtt_ms=1, bandwidth_bps=40e9).mode.name       # held by the cooldown
        'INTERNET'
        """
        mode = NetworkMode(mode)
        if mode == NetworkMode.UNKNOWN:
            raise ParameterError("cannot force UNKNOWN; use reset()")
        self._switch(mode, agreement=math.nan)

    # -- detection ----------------------------------------------------------------------------

    def observe(self, rtt_ms: float, bandwidth_bps: float) -> Detection:
        """Append one sample (RTT in ms, bandwidth in bits/s) and evaluate."""
        self._samples.append(LinkSample(rtt_ms, bandwidth_bps))
        return self.evaluate()

    def observe_many(self, samples: Iterable[LinkSample]) -> Detection:
        """Append samples in order, evaluating after each; returns the last evaluation.

        Raises :class:`~dwcpkit.errors.ParameterError` if ``samples`` is empty.
        """
        det = None
        for s in samples:
            if not isinstance(s, LinkSample):
                raise ParameterError(f"samples must be LinkSample objects, got {type(s).__name__}")
            det = self.observe(s.rtt_ms, s.bandwidth_bps)
        if det is None:
            raise ParameterError("observe_many got no samples")
        return det

    def _update_conditions(self, rtt: float, bw: float) -> None:
        th, h, c = self.thresholds, self.hysteresis, self._cond
        dr, ir = th.datacenter_rtt_ms, th.internet_rtt_ms
        db, ib = th.datacenter_bandwidth_bps, th.internet_bandwidth_bps
        c["low_rtt"] = _schmitt(c["low_rtt"], rtt < dr, rtt >= dr * (1 + h), rtt < dr * (1 - h))
        c["high_rtt"] = _schmitt(c["high_rtt"], rtt > ir, rtt <= ir * (1 - h), rtt > ir * (1 + h))
        c["dc_bw"] = _schmitt(c["dc_bw"], bw >= db, bw < db * (1 - h), bw >= db * (1 + h))
        c["low_bw"] = _schmitt(c["low_bw"], bw < ib, bw >= ib * (1 + h), bw < ib * (1 - h))

    def _candidate(self) -> NetworkMode:
        c = self._cond
        if c["low_rtt"] and c["dc_bw"]:
            return NetworkMode.DATACENTER
        if c["high_rtt"] or c["low_bw"]:
            return NetworkMode.INTERNET
        return NetworkMode.HYBRID

    def _switch(self, mode: NetworkMode, agreement: float) -> None:
        now = float(self.clock())
        rtt, bw = self.mean_rtt_ms, self.mean_bandwidth_bps
        self.history.append(ModeChange(now, self._mode, mode, math.nan if rtt is None else rtt,
                                       math.nan if bw is None else bw, agreement))
        self._mode = mode
        self._last_change = now

    def evaluate(self) -> Detection:
        """Evaluate the current window (no new sample); may switch the mode.

        >>> ModeDetector().evaluate().mode.name
        'UNKNOWN'
        """
        n = len(self._samples)
        if n == 0:
            return Detection(self._mode, NetworkMode.UNKNOWN, False, None, None, None, 0, 0.0)
        rtt, bw = self.mean_rtt_ms, self.mean_bandwidth_bps
        assert rtt is not None and bw is not None
        self._update_conditions(rtt, bw)
        cand = self._candidate()
        agreement = sum(classify(s.rtt_ms, s.bandwidth_bps, self.thresholds) == cand for s in self._samples) / n
        held: str | None = None
        changed = False
        if cand != self._mode:
            if n < self.min_samples:
                held = "min_samples"
            elif self._mode == NetworkMode.UNKNOWN:
                self._switch(cand, agreement)
                changed = True
            elif agreement < self.min_agreement:
                held = "agreement"
            elif self._last_change is not None and float(self.clock()) - self._last_change < self.cooldown_s:
                held = "cooldown"
            else:
                self._switch(cand, agreement)
                changed = True
        return Detection(self._mode, cand, changed, held, rtt, bw, n, agreement)


# --------------------------------------------------------------------------- measurement


def samples_from_transfer(report: Any) -> list[LinkSample]:
    """Samples from an AMST :class:`~dwcpkit.protocol.amst.SendReport`.

    One sample per stream: that stream's HELLO→READY round trip (ms) paired with the whole
    transfer's goodput (bits/s) — the streams share one path, so the aggregate is the
    bandwidth estimate.

    >>> from types import SimpleNamespace as NS
    >>> rep = NS(throughput_bps=8e9, stream_stats=[NS(rtt_s=0.0002), NS(rtt_s=0.0004)])
    >>> [(s.rtt_ms, s.bandwidth_bps) for s in samples_from_transfer(rep)]
    [(0.2, 8000000000.0), (0.4, 8000000000.0)]
    """
    try:
        bw = float(report.throughput_bps)
        rtts = [float(s.rtt_s) for s in report.stream_stats]
    except AttributeError as exc:
        raise ParameterError(f"expected an AMST SendReport (throughput_bps, stream_stats[].rtt_s): {exc}") from None
    if not rtts:
        raise ParameterError("the transfer report has no streams")
    return [LinkSample(rtt_ms=r * 1e3, bandwidth_bps=bw) for r in rtts]


def measure_loopback(
    detector: ModeDetector | None = None,
    *,
    payload_bytes: int = 8 * 1024 * 1024,
    streams: int = 4,
    transfers: int = 1,
    seed: int = 0,
) -> ModeDetector:
    """Run AMST transfers on 127.0.0.1 and feed their samples to a detector.

    Parameters
    ----------
    detector : ModeDetector, optional
        Fed and returned; a new default one if not given.
    payload_bytes, streams, transfers : int
        Size and stream count of each transfer, and how many to run.
    seed : int
        Seed of the random payload.

    >>> d = measure_loopback(payload_bytes=1 << 20, streams=2)
    >>> d.mode.name != "UNKNOWN", len(d.samples)
    (True, 2)
    """
    import numpy as np

    from dwcpkit.protocol import amst

    if transfers < 1 or transfers > 1000:
        raise ParameterError(f"transfers must be in [1, 1000], got {transfers}")
    det = detector or ModeDetector()
    payload = np.random.default_rng(seed).integers(0, 256, payload_bytes, dtype=np.uint8)
    for _ in range(transfers):
        result = amst.loopback_transfer(payload, streams=streams,
                                        chunk_bytes=min(amst.DEFAULT_CHUNK_BYTES, max(amst.MIN_CHUNK_BYTES, payload_bytes)))
        det.observe_many(samples_from_transfer(result.sent))
    return det
