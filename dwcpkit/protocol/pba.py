"""PBA — predictive bandwidth allocation: bandwidth predictors, rolling-origin backtests, allocation.

The original (``backend/core/network/dwcp/v3/prediction``, digest §5) forecast bandwidth with two
"LSTM" predictors that returned the constant 100 Mbit/s; the only forecasting logic that ever ran
was its *heuristic fallback*: the mean of the last ≤ 5 samples with a fixed confidence. This module
keeps that fallback exactly (:class:`Fallback`) as the baseline, and adds predictors that can beat
it, all behind one interface (:class:`Predictor`):

=================  =========================================================================
``fallback``       the original's fallback: mean of the last min(5, n) samples; confidence
                   0.45 (datacenter) / 0.35 (otherwise) + min(0.2, 0.02·k), k = samples used
``last``           last value (naive persistence), the classic reference
``ewma``           exponentially weighted mean; α fitted on the trailing window by 1-step SSE
``holt_winters``   additive Holt-Winters with damped trend; α, β, γ fitted by grid search
``ridge_ar``       direct multi-horizon ridge regression on lag / moving-mean / seasonal
                   features (level-free: it predicts the change from the last value), λ per
                   horizon by MAE on a time-ordered hold-out
``ensemble``       inverse-MSE-weighted mean of members, weights per horizon from recent errors
=================  =========================================================================

Every predictor is online (:meth:`Predictor.update` one sample at a time, or :meth:`Predictor.fit`
on a history) and answers :meth:`Predictor.forecast` with point forecasts for horizons 1…h and
*calibrated* prediction intervals: the ``level`` quantile of the predictor's own recent absolute
errors at that horizon (the last ``interval_window`` errors, at least ``min_errors`` of them), so
coverage is measured, never assumed. Parameters are refitted every ``refit_every`` samples on the
trailing ``fit_window`` samples, never on the future.

:func:`backtest` runs predictors over traces with a rolling origin (every sample is an origin,
horizons 1…N) and reports MAE, RMSE, MAPE (over samples whose magnitude is at least
``mape_floor`` × the trace's median, because MAPE explodes near zero throughput), WAPE
(Σ|e| / Σ|y|, the robust alternative) and interval coverage; :func:`summarize` pools those per
predictor and reports the MAE improvement over the fallback. :func:`synthetic_trace` makes seeded
bandwidth traces with regime changes to backtest on. :func:`prediction_service_allocation` and
:func:`amst_optimizer_allocation` are the two v1 rule sets that turn a forecast into streams,
buffers, chunks and pacing (the latter is the one that fed AMST).

Measured (rolling origin, horizons 1–15, every origin after 240 samples)
-----------------------------------------------------------------------
On the sample fleet's ``dwcp_v3_throughput_bytes_per_second`` (6 series × 2,880 one-minute
samples) the best models (last value, EWMA) cut the fallback's MAE by 34 % at h = 1 but only by
8.4 % averaged over h = 1…15 (3.9 % at h = 15): the series is a slow AR(1) wander, on which the
mean of five lags mostly costs a two-sample delay. On :func:`synthetic_trace` (3 seeds × 10,080,
4 % measurement noise) nothing beats the fallback on average (best −0.9 %; +2.1 % at h = 1), and
even an oracle that knows the current noise-free bandwidth gains only 15 %: averaging five noisy
samples is close to optimal there. The ≥ 20 % target is therefore met at h = 1 on the sample
only. The RidgeAR default features (one lag, means of 5 and 15) were chosen after looking at
these same backtests, which flatters it slightly.

Deviations from the original (deliberate)
-----------------------------------------
- No LSTM and no constant output; the v3 ``c²/target`` confidence (which can exceed 1) is not
  copied. Non-fallback predictors report the unused v1 confidence rule instead:
  ``clamp(1 − mean normalised 1-step error / 0.2, 0, 1)`` over the last 20 errors, 0.5 before 10.
- Intervals come from measured errors (the original had none).
- Forecasts are for one series (bandwidth); latency, loss and jitter are inputs to allocation.
- PredictionService multiplied the stream count by 3/4 *after* clamping to [2, 16], so 2 streams
  could become 1; here the clamp is applied last (see :func:`prediction_service_allocation`).
- Non-finite samples are refused (:class:`~dwcpkit.errors.DataError`): a missing probe is missing,
  never synthesised.

Example
-------
>>> import numpy as np
>>> y = 100 + 10 * np.sin(np.arange(300) / 20)
>>> p = RidgeAR().fit(y)
>>> fc = p.forecast(3)
>>> fc.mean.shape, bool(np.all(fc.lower <= fc.mean))
((3,), True)
>>> Fallback().fit([10.0, 20.0, 30.0]).forecast(1).mean.tolist(), Fallback().fit([1.0]).confidence()
([20.0], 0.47)
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from numba import njit

from dwcpkit.errors import DataError, ParameterError

__all__ = [
    "Forecast",
    "Predictor",
    "Fallback",
    "LastValue",
    "EWMA",
    "HoltWinters",
    "RidgeAR",
    "Ensemble",
    "default_predictors",
    "traces_from_frame",
    "backtest",
    "summarize",
    "format_table",
    "SyntheticTrace",
    "synthetic_trace",
    "synthetic_traces",
    "Allocation",
    "prediction_service_allocation",
    "amst_optimizer_allocation",
    "should_adjust_streams",
    "should_preempt",
    "combine_by_confidence",
    "prediction_error",
    "KIB",
    "MIB",
]

KIB = 1024
MIB = 1024 * 1024
_TINY = 1e-12


# =================================================================================================
# interface
# =================================================================================================


@dataclass(frozen=True)
class Forecast:
    """Point forecasts and a prediction interval for horizons 1…h.

    ``lower``/``upper`` are NaN at horizons where the predictor has fewer than ``min_errors``
    measured errors yet (no interval is better than an invented one).
    """

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float
    confidence: float
    model: str


def _check_positive_int(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_level(level: float) -> float:
    if not (0.0 < float(level) < 1.0):
        raise ParameterError(f"level must be in (0, 1) (e.g. 0.8 for an 80 % interval), got {level!r}")
    return float(level)


def _as_trace(y: Iterable[float] | np.ndarray, what: str = "trace") -> np.ndarray:
    try:
        arr = np.array(y, dtype=np.float64, copy=True).ravel()
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must be a sequence of numbers: {exc}") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{what} has {int(bad.sum())} non-finite sample(s) (first at index {i}: {arr[i]!r}); "
            "drop or fill missing samples before forecasting — PBA never synthesises measurements"
        )
    return arr


def _refit_due(n: int, min_fit: int, every: int) -> bool:
    """True when a model with ``n`` observations should refit (at ``min_fit``, then every ``every``)."""
    return n >= min_fit and (n - min_fit) % every == 0


class Predictor:
    """Base class: online update/forecast, error tracking and calibrated intervals.

    Subclasses implement ``_reset_state``, ``_observe(y)`` (``self._n`` already counts ``y``) and
    ``_point(h)``; they may override :meth:`rolling_point_forecasts` with a fast batch path that
    must equal the generic loop (tests compare the two).

    Parameters
    ----------
    track_horizon
        Horizons 1…track_horizon have their errors tracked (and so get intervals).
    interval_window
        Number of most recent errors per horizon the interval quantile is taken over.
    min_errors
        Fewer measured errors than this at a horizon: no interval there (NaN).
    level
        Default central coverage of the interval (0.8 = the 80 % interval).

    Example
    -------
    >>> p = LastValue(min_errors=2).fit([1.0, 2.0, 3.0, 4.0])
    >>> f = p.forecast(1)
    >>> f.mean.tolist(), f.upper.tolist()
    ([4.0], [5.0])
    """

    name = "predictor"

    def __init__(
        self,
        *,
        track_horizon: int = 15,
        interval_window: int = 200,
        min_errors: int = 20,
        level: float = 0.8,
    ) -> None:
        self.track_horizon = _check_positive_int("track_horizon", track_horizon)
        self.interval_window = _check_positive_int("interval_window", interval_window)
        self.min_errors = _check_positive_int("min_errors", min_errors)
        self.level = _check_level(level)
        self.reset()

    # -- state -------------------------------------------------------------------------------
    def reset(self) -> Predictor:
        """Forget every observation (configuration is kept)."""
        self._n = 0
        self._pending: deque[np.ndarray] = deque(maxlen=self.track_horizon)
        self._abs_err = [deque(maxlen=self.interval_window) for _ in range(self.track_horizon)]
        self._norm_err: deque[float] = deque(maxlen=20)
        self._reset_state()
        return self

    def clone(self) -> Predictor:
        """A fresh, unfitted predictor with the same configuration."""
        c = copy.deepcopy(self)
        return c.reset()

    @property
    def n_observed(self) -> int:
        """Number of samples observed since the last reset."""
        return self._n

    def _reset_state(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _observe(self, y: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _point(self, h: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- public API ---------------------------------------------------------------------------
    def update(self, y: float) -> Predictor:
        """Observe one sample: score the pending forecasts against it, then update the model.

        Example
        -------
        >>> EWMA(alpha=0.5).update(10.0).update(20.0).forecast(2).mean.tolist()
        [15.0, 15.0]
        """
        y = float(y)
        if not math.isfinite(y):
            raise DataError(f"sample {y!r} is not finite; skip missing samples instead of feeding them")
        for j, f in enumerate(self._pending):
            e = abs(y - float(f[j]))
            self._abs_err[j].append(e)
            if j == 0:
                self._norm_err.append(min(e / max(abs(y), _TINY), 1.0))
        self._n += 1
        self._observe(y)
        self._pending.appendleft(np.asarray(self._point(self.track_horizon), dtype=np.float64))
        return self

    def fit(self, history: Iterable[float] | np.ndarray) -> Predictor:
        """Reset, then :meth:`update` with every sample of ``history`` in order. Returns ``self``."""
        arr = _as_trace(history, "history")
        self.reset()
        for v in arr:
            self.update(v)
        return self

    def forecast(self, horizon: int = 1, level: float | None = None) -> Forecast:
        """Point forecasts for horizons 1…``horizon`` with a ``level`` prediction interval.

        Example
        -------
        >>> f = Fallback().fit([100.0, 110.0]).forecast(2)
        >>> f.mean.tolist(), round(f.confidence, 2), bool(np.isnan(f.lower).all())
        ([105.0, 105.0], 0.49, True)
        """
        horizon = _check_positive_int("horizon", horizon)
        q = self.level if level is None else _check_level(level)
        if self._n == 0 and not isinstance(self, Fallback):
            raise DataError(f"{self.name}: no samples observed yet; call update() or fit() first")
        mean = np.asarray(self._point(horizon), dtype=np.float64).copy()
        half = np.full(horizon, np.nan)
        for j in range(min(horizon, self.track_horizon)):
            errs = self._abs_err[j]
            if len(errs) >= self.min_errors:
                half[j] = float(np.quantile(np.fromiter(errs, dtype=np.float64), q))
        return Forecast(mean, mean - half, mean + half, q, self.confidence(), self.name)

    def confidence(self) -> float:
        """v1's (unused) rule: 0.5 with < 10 scored forecasts, else clamp(1 − mean err / 0.2, 0, 1).

        The error is the 1-step absolute error normalised by the actual, capped at 1, over the
        last 20 forecasts.
        """
        if len(self._norm_err) < 10:
            return 0.5
        return float(min(max(1.0 - float(np.mean(self._norm_err)) / 0.2, 0.0), 1.0))

    def rolling_point_forecasts(self, y: Iterable[float] | np.ndarray, horizon: int) -> np.ndarray:
        """Point forecasts from every origin of ``y``: row ``t`` is the forecast made after y[0..t].

        Pure (uses a fresh clone). This generic loop is the reference every fast override is
        tested against.

        Example
        -------
        >>> LastValue().rolling_point_forecasts([1.0, 2.0, 3.0], 2).tolist()
        [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
        """
        arr = _as_trace(y)
        horizon = _check_positive_int("horizon", horizon)
        c = self.clone()
        out = np.empty((arr.size, horizon))
        for t, v in enumerate(arr):
            c.update(float(v))
            out[t] = c._point(horizon)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, n_observed={self._n})"


# =================================================================================================
# the original's fallback and the naive reference
# =================================================================================================


class Fallback(Predictor):
    """The original PBA v3 heuristic fallback, exactly (digest §5.1).

    Forecast = plain mean of the last min(``window``, n) samples (flat over the horizon); an empty
    history gives ``default`` (the original's 100 Mbit/s). Confidence = 0.45 (datacenter) or 0.35
    (internet) + min(0.2, 0.02·k) with k = samples averaged, so at most 0.55 / 0.45. The history
    ring holds 10 (datacenter) or 60 (internet) samples. ``"hybrid"`` ran both and combined them by
    confidence; both see the same samples, so the value is the same and the confidence the max.

    Example
    -------
    >>> p = Fallback("internet").fit([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    >>> p.forecast(1).mean.tolist(), round(p.confidence(), 2)
    ([4.0], 0.45)
    """

    name = "fallback"

    def __init__(
        self,
        mode: Literal["datacenter", "internet", "hybrid"] = "datacenter",
        *,
        window: int = 5,
        default: float = 100.0,
        **kwargs,
    ) -> None:
        if mode not in ("datacenter", "internet", "hybrid"):
            raise ParameterError(f"mode must be 'datacenter', 'internet' or 'hybrid', got {mode!r}")
        self.mode = mode
        self.window = _check_positive_int("window", window)
        self.default = float(default)
        self.history_size = 10 if mode == "datacenter" else 60
        super().__init__(**kwargs)

    def _reset_state(self) -> None:
        self._hist: deque[float] = deque(maxlen=self.history_size)

    def _observe(self, y: float) -> None:
        self._hist.append(y)

    def _point(self, h: int) -> np.ndarray:
        if not self._hist:
            return np.full(h, self.default)
        k = min(self.window, len(self._hist))
        vals = list(self._hist)[-k:]
        return np.full(h, sum(vals) / k)

    def confidence(self) -> float:
        k = min(self.window, len(self._hist))
        bonus = min(0.2, 0.02 * k)
        return round((0.35 if self.mode == "internet" else 0.45) + bonus, 10)

    def rolling_point_forecasts(self, y, horizon):
        arr = _as_trace(y)
        horizon = _check_positive_int("horizon", horizon)
        n = arr.size
        k = min(self.window, self.history_size)
        acc = np.zeros(n)
        cnt = np.zeros(n)
        # the same left-to-right summation order as the online path (oldest first)
        for j in range(k - 1, -1, -1):
            shifted = np.zeros(n)
            if j < n:
                shifted[j:] = arr[: n - j]
            acc = acc + shifted
            cnt += np.arange(n) >= j
        means = acc / cnt
        return np.repeat(means[:, None], horizon, axis=1)


class LastValue(Predictor):
    """Persistence: the forecast at every horizon is the last sample.

    Example
    -------
    >>> LastValue().fit([3.0, 5.0]).forecast(2).mean.tolist()
    [5.0, 5.0]
    """

    name = "last"

    def _reset_state(self) -> None:
        self._last = math.nan

    def _observe(self, y: float) -> None:
        self._last = y

    def _point(self, h: int) -> np.ndarray:
        return np.full(h, self._last)

    def rolling_point_forecasts(self, y, horizon):
        arr = _as_trace(y)
        horizon = _check_positive_int("horizon", horizon)
        return np.repeat(arr[:, None], horizon, axis=1)


# =================================================================================================
# EWMA
# =================================================================================================

_DEFAULT_ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)


@njit(cache=True, nogil=True)
def _ewma_grid(w, alphas):  # pragma: no cover - compiled; reference: _ewma_grid_py
    """1-step SSE and final level of an EWMA started at w[0], for each alpha."""
    sse = np.zeros(alphas.size)
    last = np.zeros(alphas.size)
    for k in range(alphas.size):
        a = alphas[k]
        keep = 1.0 - a
        lv = w[0]
        s = 0.0
        for i in range(1, w.size):
            e = w[i] - lv
            s += e * e
            lv = a * w[i] + keep * lv
        sse[k] = s
        last[k] = lv
    return sse, last


def _ewma_grid_py(w: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference of :func:`_ewma_grid`, vectorised over alphas with numpy."""
    lv = np.full(alphas.size, float(w[0]))
    sse = np.zeros(alphas.size)
    keep = 1.0 - alphas
    for x in w[1:]:
        e = x - lv
        sse += e * e
        lv = alphas * x + keep * lv
    return sse, lv


def _ewma_run(y: np.ndarray, alpha: float, level: float, first: bool) -> np.ndarray:
    """Levels after each sample of ``y``; ``first`` means y[0] initialises the level."""
    out = np.empty(y.size)
    keep = 1.0 - alpha
    for i, x in enumerate(y.tolist()):
        level = x if (first and i == 0) else alpha * x + keep * level
        out[i] = level
    return out


class EWMA(Predictor):
    """Exponentially weighted moving average (flat forecast).

    With ``alpha=None`` (default) α is chosen from ``alphas`` by 1-step SSE on the trailing
    ``fit_window`` samples at ``min_fit`` samples and then every ``refit_every`` samples
    (α = 0.5 before the first fit).

    Example
    -------
    >>> EWMA(alpha=0.25).fit([0.0, 4.0]).forecast(1).mean.tolist()
    [1.0]
    """

    name = "ewma"

    def __init__(
        self,
        alpha: float | None = None,
        *,
        alphas: Sequence[float] = _DEFAULT_ALPHAS,
        refit_every: int = 240,
        fit_window: int = 1440,
        min_fit: int = 30,
        **kwargs,
    ) -> None:
        if alpha is not None and not (0.0 < alpha <= 1.0):
            raise ParameterError(f"alpha must be in (0, 1], got {alpha!r}")
        self.alpha = alpha
        self.alphas = np.asarray(alphas, dtype=np.float64)
        if self.alphas.size == 0 or np.any((self.alphas <= 0) | (self.alphas > 1)):
            raise ParameterError(f"alphas must be a non-empty list of values in (0, 1], got {alphas!r}")
        self.refit_every = _check_positive_int("refit_every", refit_every)
        self.fit_window = _check_positive_int("fit_window", fit_window, 2)
        self.min_fit = _check_positive_int("min_fit", min_fit, 2)
        super().__init__(**kwargs)

    def _reset_state(self) -> None:
        self._a = 0.5 if self.alpha is None else float(self.alpha)
        self._level = math.nan
        self._hist: deque[float] = deque(maxlen=self.fit_window)

    def _fit_window(self, w: np.ndarray) -> tuple[float, float]:
        sse, last = _ewma_grid(w, self.alphas)
        k = int(np.argmin(sse))
        return float(self.alphas[k]), float(last[k])

    def _observe(self, y: float) -> None:
        self._hist.append(y)
        if self.alpha is None and _refit_due(self._n, self.min_fit, self.refit_every):
            self._a, self._level = self._fit_window(np.fromiter(self._hist, dtype=np.float64))
        elif self._n == 1:
            self._level = y
        else:
            self._level = self._a * y + (1.0 - self._a) * self._level

    def _point(self, h: int) -> np.ndarray:
        return np.full(h, self._level)

    def rolling_point_forecasts(self, y, horizon):
        arr = _as_trace(y)
        horizon = _check_positive_int("horizon", horizon)
        n = arr.size
        levels = np.empty(n)
        a = 0.5 if self.alpha is None else float(self.alpha)
        refits = [] if self.alpha is None else None
        if self.alpha is None:
            refits = [t for t in range(self.min_fit, n + 1, self.refit_every)]
        start, level = 0, math.nan
        for r in (refits or []) + [n + 1]:
            end = min(r - 1, n)  # samples [start, end) are plain updates; sample r-1 is a refit
            if end > start:
                levels[start:end] = _ewma_run(arr[start:end], a, level, start == 0)
                level = levels[end - 1]
            if r <= n:
                a, level = self._fit_window(arr[max(0, r - self.fit_window) : r])
                levels[r - 1] = level
                start = r
        return np.repeat(levels[:, None], horizon, axis=1)


# =================================================================================================
# Holt-Winters (additive seasonality, damped additive trend)
# =================================================================================================


@njit(cache=True, nogil=True)
def _hw_run(y, phase0, m, alpha, beta, gamma, phi, level, trend, season, H, F, skip):  # pragma: no cover
    """Run the Holt-Winters recursion over ``y`` (phase of y[i] = (phase0 + i) mod m; m = 0: none).

    Updates ``season`` in place, writes forecasts for horizons 1..H after each sample into ``F``
    (if H > 0) and returns (level, trend, 1-step SSE over samples i >= skip). Reference:
    :func:`_hw_run_py`.
    """
    sse = 0.0
    for i in range(y.size):
        if m > 0:
            si = (phase0 + i) % m
            s = season[si]
        else:
            si = 0
            s = 0.0
        e = y[i] - (level + phi * trend + s)
        if i >= skip:
            sse += e * e
        new_level = alpha * (y[i] - s) + (1.0 - alpha) * (level + phi * trend)
        trend = beta * (new_level - level) + (1.0 - beta) * phi * trend
        level = new_level
        if m > 0:
            season[si] = gamma * (y[i] - level) + (1.0 - gamma) * s
        if H > 0:
            damp = 0.0
            pw = 1.0
            for h in range(1, H + 1):
                pw *= phi
                damp += pw
                sh = season[(phase0 + i + h) % m] if m > 0 else 0.0
                F[i, h - 1] = level + damp * trend + sh
    return level, trend, sse


def _hw_run_py(y, phase0, m, alpha, beta, gamma, phi, level, trend, season, H, F, skip=0):
    """Plain-Python reference of :func:`_hw_run` (same arguments, same effects)."""
    sse = 0.0
    for i in range(len(y)):
        si = (phase0 + i) % m if m > 0 else 0
        s = float(season[si]) if m > 0 else 0.0
        yi = float(y[i])
        e = yi - (level + phi * trend + s)
        if i >= skip:
            sse += e * e
        new_level = alpha * (yi - s) + (1.0 - alpha) * (level + phi * trend)
        trend = beta * (new_level - level) + (1.0 - beta) * phi * trend
        level = new_level
        if m > 0:
            season[si] = gamma * (yi - level) + (1.0 - gamma) * s
        if H > 0:
            damp, pw = 0.0, 1.0
            for h in range(1, H + 1):
                pw *= phi
                damp += pw
                sh = float(season[(phase0 + i + h) % m]) if m > 0 else 0.0
                F[i, h - 1] = level + damp * trend + sh
    return level, trend, sse


@njit(cache=True, nogil=True)
def _hw_grid(w, phase0, m, alphas, betas, gammas, phi, level0, trend0, season0, skip):  # pragma: no cover
    """1-step SSE of every (alpha, beta, gamma) combination (row-major). Reference: loop of _hw_run_py."""
    out = np.empty(alphas.size * betas.size * gammas.size)
    F = np.empty((0, 0))
    k = 0
    for a in alphas:
        for b in betas:
            for g in gammas:
                season = season0.copy()
                _, _, sse = _hw_run(w, phase0, m, a, b, g, phi, level0, trend0, season, 0, F, skip)
                out[k] = sse
                k += 1
    return out


class HoltWinters(Predictor):
    """Additive Holt-Winters with damped trend and (optionally) additive seasonality.

    ``period`` is the season length in samples (1440 for a daily cycle of 1-min samples); the
    seasonal variant is considered once the fit window holds three full periods (fit_window
    defaults to three periods). α, β, γ are chosen by 1-step SSE over ``alphas`` × ``betas`` ×
    ``gammas`` on the trailing window at ``min_fit`` samples and every ``refit_every`` samples,
    and the seasonal variant is kept only if it beats the plain one on the same samples; the
    state is re-initialised on the window (see ``_candidates``). Before the first fit it runs
    with α = 0.5, β = γ = 0. Trend damping ``phi`` is fixed (0.9): an undamped trend
    extrapolated over 15 noisy steps overshoots.

    Example
    -------
    >>> import numpy as np
    >>> y = 50 + 5 * np.sin(2 * np.pi * np.arange(400) / 40)
    >>> hw = HoltWinters(period=40, refit_every=100).fit(y)
    >>> hw._m      # the seasonal variant won
    40
    >>> bool(abs(hw.forecast(10).mean[-1] - (50 + 5 * np.sin(2 * np.pi * 409 / 40))) < 1.0)
    True
    """

    name = "holt_winters"

    def __init__(
        self,
        period: int | None = None,
        *,
        phi: float = 0.9,
        alphas: Sequence[float] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9),
        betas: Sequence[float] = (0.0, 0.01, 0.05, 0.1),
        gammas: Sequence[float] = (0.0, 0.05, 0.1, 0.2, 0.4),
        refit_every: int = 240,
        fit_window: int | None = None,
        min_fit: int = 30,
        **kwargs,
    ) -> None:
        self.period = 0 if period is None else _check_positive_int("period", period, 2)
        if not (0.0 < phi <= 1.0):
            raise ParameterError(f"phi (trend damping) must be in (0, 1], got {phi!r}")
        self.phi = float(phi)
        self.alphas = np.asarray(alphas, dtype=np.float64)
        self.betas = np.asarray(betas, dtype=np.float64)
        self.gammas = np.asarray(gammas, dtype=np.float64)
        for nm, arr in (("alphas", self.alphas), ("betas", self.betas), ("gammas", self.gammas)):
            if arr.size == 0 or np.any((arr < 0) | (arr > 1)):
                raise ParameterError(f"{nm} must be a non-empty list of values in [0, 1], got {arr.tolist()}")
        self.refit_every = _check_positive_int("refit_every", refit_every)
        if fit_window is None:
            fit_window = max(1440, 3 * self.period)
        self.fit_window = _check_positive_int("fit_window", fit_window, 2)
        self.min_fit = _check_positive_int("min_fit", min_fit, 2)
        super().__init__(**kwargs)

    def _reset_state(self) -> None:
        self._params = (0.5, 0.0, 0.0)
        self._m = 0  # active season length (0 until two periods fit in the window)
        self._level = math.nan
        self._trend = 0.0
        self._season = np.zeros(max(self.period, 1))
        self._hist: deque[float] = deque(maxlen=self.fit_window)

    def _candidates(self, w: np.ndarray, start: int):
        """(m, level0, trend0, season0, samples to run, their phase, skip) per model variant.

        Without seasonality: level0 = first sample, trend0 = 0, run over the rest. With it (only
        when the window holds three periods): level0/trend0 from the first two periods' means
        (level0 is the level just before the first sample), season0 from their mean
        deviations, run over the whole window. Both variants are scored
        on the same samples (those after the first two periods), so a season initialised on a
        regime change loses to the plain model instead of being kept forever.
        """
        m = self.period
        seasonal = bool(m) and w.size >= 3 * m
        skip0 = 2 * m - 1 if seasonal else 0
        out = [(0, float(w[0]), 0.0, np.zeros(max(m, 1)), w[1:], start + 1, skip0)]
        if seasonal:
            season = np.zeros(m)
            p1, p2 = float(np.mean(w[:m])), float(np.mean(w[m : 2 * m]))
            for i in range(m):
                season[(start + i) % m] = ((w[i] - p1) + (w[m + i] - p2)) / 2.0
            trend0 = (p2 - p1) / m
            out.append((m, p1 - trend0 * (m + 1) / 2.0, trend0, season, w, start, 2 * m))
        return out

    def _fit(self, w: np.ndarray, start: int) -> None:
        best = None
        for m, l0, b0, s0, run, ph, skip in self._candidates(w, start):
            gammas = self.gammas if m else self.gammas[:1]
            sse = _hw_grid(run, ph, m, self.alphas, self.betas, gammas, self.phi, l0, b0, s0, skip)
            k = int(np.argmin(sse))
            if best is None or sse[k] < best[0]:
                ia, rest = divmod(k, self.betas.size * gammas.size)
                ib, ig = divmod(rest, gammas.size)
                best = (float(sse[k]), (float(self.alphas[ia]), float(self.betas[ib]), float(gammas[ig])),
                        m, l0, b0, s0, run, ph)
        _, (a, b, g), m, l0, b0, s0, run, ph = best
        season = s0.copy()
        level, trend, _ = _hw_run(run, ph, m, a, b, g, self.phi, l0, b0, season, 0, np.empty((0, 0)), 0)
        self._params, self._m = (a, b, g), m
        self._level, self._trend, self._season = level, trend, season

    def _observe(self, y: float) -> None:
        self._hist.append(y)
        t = self._n - 1  # absolute index of y
        if _refit_due(self._n, self.min_fit, self.refit_every):
            w = np.fromiter(self._hist, dtype=np.float64)
            self._fit(w, self._n - w.size)
        elif self._n == 1:
            self._level, self._trend = y, 0.0
        else:
            a, b, g = self._params
            self._level, self._trend, _ = _hw_run_py(
                [y], t, self._m, a, b, g, self.phi, self._level, self._trend, self._season, 0, None, 0
            )

    def _point(self, h: int) -> np.ndarray:
        F = np.empty((1, h))
        a, b, g = self._params
        season = self._season.copy()
        # forecasts only: reuse the recursion's forecast loop without consuming a sample
        damp, pw = 0.0, 1.0
        t = self._n - 1
        for k in range(1, h + 1):
            pw *= self.phi
            damp += pw
            sh = season[(t + k) % self._m] if self._m else 0.0
            F[0, k - 1] = self._level + damp * self._trend + sh
        return F[0]

    def rolling_point_forecasts(self, y, horizon):
        arr = _as_trace(y)
        horizon = _check_positive_int("horizon", horizon)
        n = arr.size
        out = np.empty((n, horizon))
        c = self.clone()
        assert isinstance(c, HoltWinters)
        c._n, c._level, c._trend = 1, float(arr[0]), 0.0  # the first sample initialises the level
        out[0] = c._point(horizon)
        start = 1
        for r in [*range(self.min_fit, n + 1, self.refit_every), n + 1]:
            end = min(r - 1, n)  # samples [start, end) are plain updates; sample r-1 refits
            if end > start:
                a, b, g = c._params
                c._level, c._trend, _ = _hw_run(
                    arr[start:end], start, c._m, a, b, g, c.phi, c._level, c._trend, c._season,
                    horizon, out[start:end], 0,
                )
            if r <= n:
                w = arr[max(0, r - c.fit_window) : r]
                c._fit(w, r - w.size)
                c._n = r
                out[r - 1] = c._point(horizon)
                start = r
        return out


# =================================================================================================
# Ridge AR (direct multi-horizon, level-free)
# =================================================================================================


def _ridge_features(y: np.ndarray, lags: tuple[int, ...], means: tuple[int, ...],
                    period: int, seas_k: tuple[int, ...]) -> np.ndarray:
    """Feature matrix (n × p) for every origin of ``y`` (unscaled, level-free).

    Columns: y_t − y_{t−k} for k in lags (y_0 before the start); y_t − mean(y[t−w+1..t]) for w in
    means (mean of what exists near the start); with a period m, the smoothed change one period
    ago over the same offset: mean5(y around t−m+k) − mean5(y around t−m), for k in seas_k
    (0 where one period of history does not exist yet).
    """
    n = y.size
    cols = []
    idx = np.arange(n)
    for k in lags:
        cols.append(y - y[np.maximum(idx - k, 0)])
    cs = np.concatenate(([0.0], np.cumsum(y)))
    for w in means:
        lo = np.maximum(idx - w + 1, 0)
        cols.append(y - (cs[idx + 1] - cs[lo]) / (idx + 1 - lo))
    if period:
        def m5(center):  # mean of y[center-2 .. center+2] clipped to [0, n-1]
            lo = np.clip(center - 2, 0, n - 1)
            hi = np.clip(center + 2, 0, n - 1)
            return (cs[hi + 1] - cs[lo]) / (hi + 1 - lo)
        base_c = idx - period
        ok = base_c - 2 >= 0
        for k in seas_k:
            v = m5(base_c + k) - m5(base_c)
            cols.append(np.where(ok, v, 0.0))
    return np.column_stack(cols) if cols else np.zeros((n, 0))


def _ridge_solve(G: np.ndarray, C: np.ndarray, lam: float) -> np.ndarray:
    """Solve (G + λI) B = C for a small symmetric positive semi-definite G."""
    p = G.shape[0]
    if p == 0:
        return np.zeros((0, C.shape[1]))
    A = G + lam * np.eye(p)
    try:
        return np.linalg.solve(A, C)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(A, C, rcond=None)[0]


class RidgeAR(Predictor):
    """Direct multi-horizon ridge regression on lag features (numpy only).

    For each origin t the target at horizon h is the *change* (y_{t+h} − y_t) / s, with s the mean
    |y| of the fit window, so the model is level-free (it survives regime changes and scale) and
    one solve fits all horizons. Features: see :func:`_ridge_features`. Features are standardised,
    the intercept is unpenalised, and λ is chosen per fit and per horizon from ``lambdas`` by MAE
    on a time-ordered hold-out (the last ``holdout`` share of the window). Fitted at ``min_fit`` samples and then every
    ``refit_every`` samples on the trailing ``fit_window`` origins whose targets are known; before
    the first fit it forecasts the last value.

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.zeros(600)
    >>> for t in range(1, 600):
    ...     x[t] = 0.9 * x[t - 1] + rng.normal()
    >>> p = RidgeAR(lags=(1,), means=(100,), min_fit=200).fit(100 + x)
    >>> f = p.forecast(20).mean
    >>> bool(abs(f[-1] - 100) < abs(f[0] - 100))    # learnt the mean reversion
    True
    """

    name = "ridge_ar"

    def __init__(
        self,
        *,
        lags: Sequence[int] = (1,),
        means: Sequence[int] = (5, 15),
        period: int | None = None,
        lambdas: Sequence[float] = tuple(np.logspace(-1, 5, 13)),
        holdout: float = 0.25,
        intercept: bool = False,
        refit_every: int = 60,
        fit_window: int = 1440,
        min_fit: int = 120,
        min_rows: int = 40,
        **kwargs,
    ) -> None:
        self.lags = tuple(_check_positive_int("lag", k) for k in lags)
        self.means = tuple(_check_positive_int("means window", w, 2) for w in means)
        self.period = 0 if period is None else _check_positive_int("period", period, 8)
        self.lambdas = np.asarray(lambdas, dtype=np.float64)
        if self.lambdas.size == 0 or np.any(self.lambdas < 0):
            raise ParameterError(f"lambdas must be a non-empty list of values >= 0, got {lambdas!r}")
        if not (0.0 < holdout < 1.0):
            raise ParameterError(f"holdout is the validation share of the fit window, in (0, 1); got {holdout!r}")
        self.holdout = float(holdout)
        self.intercept = bool(intercept)
        self.refit_every = _check_positive_int("refit_every", refit_every)
        self.fit_window = _check_positive_int("fit_window", fit_window, 2)
        self.min_fit = _check_positive_int("min_fit", min_fit, 2)
        self.min_rows = _check_positive_int("min_rows", min_rows, 2)
        super().__init__(**kwargs)
        self.model_horizon = self.track_horizon
        H = self.model_horizon
        self._seas_k = tuple(sorted({1, max(1, H // 2), H})) if self.period else ()
        self._lookback = max([*self.lags, *(w - 1 for w in self.means),
                              (self.period + H + 2) if self.period else 0, 1])
        self.reset()  # the history length depends on the look-back computed above

    def _reset_state(self) -> None:
        self._model = None  # (B (p×H), mu (p), sd (p), ybar (H), s)
        self._lambda = math.nan
        maxlen = self.fit_window + getattr(self, "model_horizon", self.track_horizon) + \
            getattr(self, "_lookback", 0) + 2
        self._hist: deque[float] = deque(maxlen=maxlen)

    def _features(self, y: np.ndarray) -> np.ndarray:
        return _ridge_features(y, self.lags, self.means, self.period, self._seas_k)

    def _fit_rows(self, y: np.ndarray, X: np.ndarray, n: int, offset: int) -> None:
        """Fit on origins r (absolute) with r + H <= n - 1, the last fit_window of them.

        ``y``/``X`` start at absolute index ``offset``.
        """
        H = self.model_horizon
        last = n - 1 - H
        if last < 0:
            return
        first = max(0, last - self.fit_window + 1, offset)
        rows = np.arange(first, last + 1) - offset
        if rows.size < self.min_rows:
            return
        Xr = X[rows]
        Y = np.column_stack([y[rows + h] - y[rows] for h in range(1, H + 1)])
        s = float(np.mean(np.abs(y[rows[0] : rows[-1] + H + 1]))) + _TINY
        Xr, Y = Xr / s, Y / s
        mu = np.zeros(Xr.shape[1]) if not self.intercept else Xr.mean(axis=0)
        sd = np.sqrt(np.mean((Xr - mu) ** 2, axis=0))
        sd[sd < 1e-12] = 1.0
        Z = (Xr - mu) / sd
        ybar = np.zeros(Y.shape[1]) if not self.intercept else Y.mean(axis=0)
        Yc = Y - ybar
        H = self.model_horizon
        lam = self._select_lambda(Z, Yc) if self.lambdas.size > 1 else np.full(H, self.lambdas[0])
        G, C = Z.T @ Z, Z.T @ Yc
        B = np.empty((Z.shape[1], H))
        for v in np.unique(lam):
            cols = lam == v
            B[:, cols] = _ridge_solve(G, C[:, cols], float(v))
        self._model = (B, mu, sd, ybar, s)
        self._lambda = lam  # per horizon

    def _select_lambda(self, Z: np.ndarray, Yc: np.ndarray) -> np.ndarray:
        """Per horizon, the λ with the lowest MAE on the last ``holdout`` share of the rows.

        The model is fitted on the earlier rows that end ``H`` rows before the hold-out (their
        targets would overlap it otherwise). Overlapping multi-step targets make GCV and
        leave-one-out far too optimistic (they picked λ too small); a hold-out in time does not.
        """
        H = self.model_horizon
        nr = Z.shape[0]
        nv = max(int(nr * self.holdout), 1)
        nt = nr - nv - H
        if nt < max(self.min_rows // 2, Z.shape[1] + 1):
            return np.full(H, float(np.median(self.lambdas)))
        Zt, Yt = Z[:nt], Yc[:nt]
        mu_t = np.zeros(Yt.shape[1]) if not self.intercept else Yt.mean(axis=0)
        G = Zt.T @ Zt
        C = Zt.T @ (Yt - mu_t)
        Zv, Yv = Z[nr - nv:], Yc[nr - nv:]
        errs = np.empty((self.lambdas.size, H))
        for i, lam in enumerate(self.lambdas):
            B = _ridge_solve(G, C, float(lam))
            errs[i] = np.mean(np.abs(Yv - (Zv @ B + mu_t)), axis=0)
        return self.lambdas[np.argmin(errs, axis=0)]

    def _predict_row(self, x: np.ndarray, y_t: float, h: int) -> np.ndarray:
        H = self.model_horizon
        if self._model is None:
            return np.full(h, y_t)
        B, mu, sd, ybar, s = self._model
        ch = (((x / s) - mu) / sd) @ B + ybar
        f = y_t + s * ch
        if h <= H:
            return f[:h]
        return np.concatenate([f, np.full(h - H, f[-1])])

    def _observe(self, y: float) -> None:
        self._hist.append(y)
        if _refit_due(self._n, self.min_fit, self.refit_every):
            arr = np.fromiter(self._hist, dtype=np.float64)
            offset = self._n - arr.size
            # rows the fit uses all have their full look-back inside the buffer
            X = self._features(arr)
            self._fit_rows(arr, X, self._n, offset)

    def _point(self, h: int) -> np.ndarray:
        arr = np.fromiter(self._hist, dtype=np.float64)
        if self._model is None:
            return np.full(h, arr[-1])
        # a suffix that covers the full look-back gives the same features as the whole series
        x = self._features(arr[-(self._lookback + 1):] if self._n > self._lookback + 1 else arr)[-1]
        return self._predict_row(x, float(arr[-1]), h)

    def rolling_point_forecasts(self, y, horizon):
        arr = _as_trace(y)
        horizon = _check_positive_int("horizon", horizon)
        n = arr.size
        X = self._features(arr)
        out = np.repeat(arr[:, None], horizon, axis=1)
        c = self.clone()
        assert isinstance(c, RidgeAR)
        refits = list(range(self.min_fit, n + 1, self.refit_every))
        for i, r in enumerate(refits):
            c._fit_rows(arr, X, r, 0)
            if c._model is None:
                continue
            end = refits[i + 1] - 1 if i + 1 < len(refits) else n
            rows = np.arange(r - 1, end)
            B, mu, sd, ybar, s = c._model
            ch = (((X[rows] / s) - mu) / sd) @ B + ybar
            f = arr[rows][:, None] + s * ch
            if horizon <= c.model_horizon:
                out[rows] = f[:, :horizon]
            else:
                out[rows, : c.model_horizon] = f
                out[rows, c.model_horizon:] = f[:, -1:]
        return out


# =================================================================================================
# Ensemble
# =================================================================================================


class Ensemble(Predictor):
    """Weighted mean of member predictors, weights ∝ 1 / MAE² per horizon.

    A member's MAE at horizon h is the mean of its last ``interval_window`` absolute errors at h;
    until every member has ``min_errors`` errors at h the members are weighted equally. (The
    original's hybrid combination weighted by self-reported confidence — see
    :func:`combine_by_confidence`; measured errors are a better weight.)

    Example
    -------
    >>> e = Ensemble([LastValue(), EWMA(alpha=0.5)]).fit([1.0, 2.0, 3.0])
    >>> e.forecast(1).mean.tolist()       # equal weights before errors exist: (3 + 2.25) / 2
    [2.625]
    """

    name = "ensemble"

    def __init__(self, members: Sequence[Predictor] | None = None, **kwargs) -> None:
        members = list(members) if members is not None else [
            LastValue(), EWMA(), HoltWinters(), RidgeAR()
        ]
        if not members or not all(isinstance(m, Predictor) for m in members):
            raise ParameterError("members must be a non-empty list of Predictor instances")
        self.members = [m.clone() for m in members]
        super().__init__(**kwargs)
        short = [m.name for m in self.members if m.track_horizon < self.track_horizon]
        if short:
            raise ParameterError(
                f"members {short} track fewer horizons than the ensemble ({self.track_horizon}); "
                "build them with the same track_horizon"
            )
        for m in self.members:
            m.interval_window = self.interval_window
            m.min_errors = self.min_errors
            m.reset()

    def reset(self) -> Ensemble:
        for m in getattr(self, "members", []):
            m.reset()
        return super().reset()  # type: ignore[return-value]

    def _reset_state(self) -> None:
        pass

    def update(self, y: float) -> Ensemble:
        for m in self.members:
            m.update(y)
        return super().update(y)  # type: ignore[return-value]

    def _observe(self, y: float) -> None:
        pass

    def _weights(self, h: int) -> np.ndarray:
        k = len(self.members)
        W = np.full((k, h), 1.0 / k)
        for j in range(min(h, self.track_horizon)):
            maes = []
            for m in self.members:
                errs = m._abs_err[j]
                if len(errs) < self.min_errors:
                    break
                maes.append(float(np.mean(np.fromiter(errs, dtype=np.float64))))
            else:
                inv = 1.0 / np.maximum(np.asarray(maes), _TINY) ** 2
                W[:, j] = inv / inv.sum()
        return W

    def _point(self, h: int) -> np.ndarray:
        P = np.vstack([m._point(h) for m in self.members])
        return np.sum(self._weights(h) * P, axis=0)

    def rolling_point_forecasts(self, y, horizon):
        arr = _as_trace(y)
        horizon = _check_positive_int("horizon", horizon)
        n = arr.size
        H = horizon
        P = np.stack([m.rolling_point_forecasts(arr, H) for m in self.members])  # (k, n, H)
        k = P.shape[0]
        W = np.full((k, n, H), 1.0 / k)
        Wn = self.interval_window
        for j in range(min(H, self.track_horizon)):
            h = j + 1
            if n <= h:
                continue
            E = np.abs(arr[h:][None, :] - P[:, : n - h, j])  # (k, n-h): error of origin s at s+h
            cs = np.concatenate([np.zeros((k, 1)), np.cumsum(E, axis=1)], axis=1)
            t = np.arange(n)
            hi = t - h + 1  # errors of origins 0..t-h are known at t
            lo = np.maximum(hi - Wn, 0)
            cnt = np.maximum(hi, 0) - lo
            okt = cnt >= self.min_errors
            hi_c = np.clip(hi, 0, n - h)
            lo_c = np.clip(lo, 0, n - h)
            mae = (cs[:, hi_c] - cs[:, lo_c]) / np.maximum(cnt, 1)
            inv = 1.0 / np.maximum(mae, _TINY) ** 2
            w = inv / inv.sum(axis=0, keepdims=True)
            W[:, okt, j] = w[:, okt]
        return np.sum(W * P, axis=0)


def default_predictors(period: int | None = None, horizon: int = 15) -> list[Predictor]:
    """The standard line-up: fallback, last, ewma, holt_winters, ridge_ar and their ensemble.

    ``period`` (samples per season, e.g. 1440 for a day of 1-min samples) goes to the seasonal
    models.

    Example
    -------
    >>> [p.name for p in default_predictors()]
    ['fallback', 'last', 'ewma', 'holt_winters', 'ridge_ar', 'ensemble']
    """
    kw = {"track_horizon": horizon}
    members = [LastValue(**kw), EWMA(**kw), HoltWinters(period, **kw), RidgeAR(period=period, **kw)]
    return [Fallback(**kw), *[m.clone() for m in members], Ensemble(members, **kw)]


# =================================================================================================
# rolling-window interval quantile (numba) and backtest
# =================================================================================================


@njit(cache=True, nogil=True)
def _rolling_abs_quantile(e, h, window, q, min_count):  # pragma: no cover - reference below
    """half[t] = q-quantile (linear, like numpy) of |e[s]| for the last ``window`` origins s <= t-h.

    ``e[s]`` is the error of the forecast made at s for s+h (NaN when unknown). A sorted buffer is
    kept incrementally (insert / delete by binary search), O(window) per step.
    """
    n = e.size
    out = np.full(n, np.nan)
    buf = np.empty(window)
    m = 0
    for t in range(n):
        s_new = t - h
        if s_new >= 0:
            v = abs(e[s_new])
            s_old = s_new - window
            if s_old >= 0:  # remove |e[s_old]|
                old = abs(e[s_old])
                lo, hi = 0, m
                while lo < hi:
                    mid = (lo + hi) // 2
                    if buf[mid] < old:
                        lo = mid + 1
                    else:
                        hi = mid
                for i in range(lo, m - 1):
                    buf[i] = buf[i + 1]
                m -= 1
            lo, hi = 0, m
            while lo < hi:
                mid = (lo + hi) // 2
                if buf[mid] < v:
                    lo = mid + 1
                else:
                    hi = mid
            for i in range(m, lo, -1):
                buf[i] = buf[i - 1]
            buf[lo] = v
            m += 1
        if m >= min_count and m > 0:
            pos = q * (m - 1)
            i0 = int(math.floor(pos))
            fr = pos - i0
            if i0 + 1 < m:
                a = buf[i0]
                b = buf[i0 + 1]
                if fr >= 0.5:
                    out[t] = b - (b - a) * (1.0 - fr)
                else:
                    out[t] = a + (b - a) * fr
            else:
                out[t] = buf[i0]
    return out


def _rolling_abs_quantile_py(e, h, window, q, min_count):
    """Reference of :func:`_rolling_abs_quantile` with ``np.quantile``."""
    n = len(e)
    out = np.full(n, np.nan)
    for t in range(n):
        hi = t - h
        if hi < 0:
            continue
        lo = max(0, hi - window + 1)
        vals = np.abs(np.asarray(e[lo : hi + 1], dtype=np.float64))
        if vals.size >= min_count:
            out[t] = np.quantile(vals, q)
    return out


def traces_from_frame(
    frame: pl.DataFrame, *, by: Sequence[str] | None = None, value: str = "value"
) -> dict[str, np.ndarray]:
    """Split a (canonical telemetry) frame into one trace per series, ordered by ``timestamp``.

    ``by`` defaults to every column except ``timestamp`` and ``value`` (so metric and labels);
    names are ``"col=value,…"`` of the columns that vary. The caller loads the data (protocol
    never imports telemetry).

    Example
    -------
    >>> import polars as pl
    >>> f = pl.DataFrame({"timestamp": [2, 1, 1], "value": [2.0, 1.0, 5.0], "region": ["a", "a", "b"]})
    >>> {k: v.tolist() for k, v in traces_from_frame(f).items()}
    {'region=a': [1.0, 2.0], 'region=b': [5.0]}
    """
    if not isinstance(frame, pl.DataFrame):
        raise ParameterError(f"frame must be a polars DataFrame, got {type(frame).__name__}")
    if value not in frame.columns:
        raise DataError(f"frame has no {value!r} column (columns: {frame.columns})")
    if frame.height == 0:
        raise DataError("frame is empty: no samples to backtest (check the metric name and time range)")
    if by is None:
        by = [c for c in frame.columns if c not in ("timestamp", value)]
    by = list(by)
    missing = [c for c in by if c not in frame.columns]
    if missing:
        raise ParameterError(f"by columns {missing} are not in the frame (columns: {frame.columns})")
    varying = [c for c in by if frame[c].n_unique() > 1]
    sort_cols = [*by, "timestamp"] if "timestamp" in frame.columns else by
    f = frame.sort(sort_cols, maintain_order=True) if sort_cols else frame
    out: dict[str, np.ndarray] = {}
    if not by:
        out["trace"] = _as_trace(f[value].to_numpy(), "trace")
        return out
    for key, sub in f.group_by(by, maintain_order=True):
        vals = dict(zip(by, key))
        name = ",".join(f"{c}={vals[c]}" for c in varying) or "trace"
        out[name] = _as_trace(sub[value].to_numpy(), name)
    return out


_METRIC_COLS = ["n", "sum_abs", "sum_sq", "sum_abs_actual", "sum_ape", "n_ape", "covered",
                "n_interval", "sum_width"]


def backtest(
    traces: np.ndarray | Sequence[float] | Mapping[str, np.ndarray] | pl.DataFrame,
    predictors: Sequence[Predictor] | None = None,
    *,
    horizon: int = 15,
    level: float = 0.8,
    warmup: int = 240,
    mape_floor: float = 0.01,
    label: str = "",
) -> pl.DataFrame:
    """Rolling-origin backtest: every origin t ≥ warmup − 1, horizons 1…``horizon``.

    Each predictor sees only y[0..t] when forecasting y[t+h] (its parameters are refitted on
    trailing windows; intervals come from errors already observed at t). All predictors are scored
    on the same origins.

    Parameters
    ----------
    traces
        One array, a mapping name → array, or a polars frame (split by :func:`traces_from_frame`).
    predictors
        Defaults to :func:`default_predictors` (no seasonality).
    level
        Interval level whose coverage is reported.
    mape_floor
        MAPE skips actuals with |y| < mape_floor × median(|y|) of the trace (MAPE is undefined at
        0); WAPE = Σ|e|/Σ|y| covers every point.
    label
        Stored in a ``label`` column (e.g. "sample", "synthetic") so tables can be concatenated.

    Returns
    -------
    polars.DataFrame
        One row per (trace, predictor, horizon) with sums (``n``, ``sum_abs``, ``sum_sq``,
        ``sum_abs_actual``, ``sum_ape``, ``n_ape``, ``covered``, ``n_interval``, ``sum_width``) so
        they pool exactly, and ``mae``, ``rmse``, ``mape`` (%), ``wape`` (%), ``coverage``.

    Example
    -------
    >>> import numpy as np
    >>> y = 100 + np.cumsum(np.random.default_rng(1).normal(size=400))
    >>> bt = backtest(y, [Fallback(), LastValue()], horizon=3, warmup=50)
    >>> bt.filter(pl.col("horizon") == 1).select("predictor", "n").rows()
    [('fallback', 350), ('last', 350)]
    """
    horizon = _check_positive_int("horizon", horizon)
    level = _check_level(level)
    warmup = _check_positive_int("warmup", warmup)
    if isinstance(traces, pl.DataFrame):
        tr = traces_from_frame(traces)
    elif isinstance(traces, Mapping):
        tr = {str(k): _as_trace(v, f"trace {k!r}") for k, v in traces.items()}
    else:
        tr = {"trace": _as_trace(traces)}
    if not tr:
        raise DataError("no traces to backtest")
    preds = list(predictors) if predictors is not None else default_predictors(horizon=horizon)
    names = [p.name for p in preds]
    if len(set(names)) != len(names):
        raise ParameterError(f"predictor names must be unique, got {names}; set .name on duplicates")
    rows = []
    for tname, y in tr.items():
        n = y.size
        if n < warmup + horizon:
            raise DataError(
                f"trace {tname!r} has {n} samples; a backtest with warmup={warmup} and horizon={horizon} "
                f"needs at least {warmup + horizon}"
            )
        absy = np.abs(y)
        floor = mape_floor * float(np.median(absy))
        for p in preds:
            F = p.rolling_point_forecasts(y, horizon)
            for j in range(horizon):
                h = j + 1
                e = np.full(n, np.nan)
                e[: n - h] = y[h:] - F[: n - h, j]
                half = np.full(n, np.nan)
                if j < p.track_horizon:
                    half = _rolling_abs_quantile(e, h, p.interval_window, level, p.min_errors)
                t = np.arange(warmup - 1, n - h)
                et, at, ht = e[t], y[t + h], half[t]
                ape_ok = absy[t + h] >= max(floor, _TINY)
                hi_ok = np.isfinite(ht)
                rows.append({
                    "label": label, "trace": tname, "predictor": p.name, "horizon": h,
                    "n": int(t.size),
                    "sum_abs": float(np.sum(np.abs(et))),
                    "sum_sq": float(np.sum(et * et)),
                    "sum_abs_actual": float(np.sum(np.abs(at))),
                    "sum_ape": float(np.sum(np.abs(et[ape_ok]) / np.abs(at[ape_ok]))),
                    "n_ape": int(ape_ok.sum()),
                    "covered": int(np.sum(np.abs(et[hi_ok]) <= ht[hi_ok])),
                    "n_interval": int(hi_ok.sum()),
                    "sum_width": float(np.sum(2 * ht[hi_ok])),
                })
    return _with_metrics(pl.DataFrame(rows))


def _with_metrics(df: pl.DataFrame) -> pl.DataFrame:
    c = pl.col
    return df.with_columns(
        mae=c("sum_abs") / c("n"),
        rmse=(c("sum_sq") / c("n")).sqrt(),
        mape=pl.when(c("n_ape") > 0).then(100 * c("sum_ape") / c("n_ape")).otherwise(None),
        wape=pl.when(c("sum_abs_actual") > 0).then(100 * c("sum_abs") / c("sum_abs_actual")).otherwise(None),
        coverage=pl.when(c("n_interval") > 0).then(c("covered") / c("n_interval")).otherwise(None),
    )


def summarize(bt: pl.DataFrame, *, baseline: str = "fallback",
              horizons: Sequence[int] | None = None) -> pl.DataFrame:
    """Pool a :func:`backtest` table per (label, predictor).

    Columns: ``mae`` (mean over horizons of the MAE pooled over traces), ``mae_h1``,
    ``mae_h<N>``, ``rmse``, ``mape``, ``wape``, ``coverage`` (pooled), and ``vs_<baseline>`` =
    1 − mae / mae(baseline) (0.25 = 25 % lower MAE), also at h = 1 (``vs_<baseline>_h1``).

    Example
    -------
    >>> import numpy as np
    >>> bt = backtest(np.cumsum(np.random.default_rng(2).normal(size=300)) + 50,
    ...               [Fallback(), LastValue()], horizon=2, warmup=30)
    >>> s = summarize(bt)
    >>> s.filter(pl.col("predictor") == "fallback")["vs_fallback"].to_list()
    [0.0]
    """
    if horizons is not None:
        bt = bt.filter(pl.col("horizon").is_in(list(horizons)))
    if bt.height == 0:
        raise DataError("backtest table is empty (no rows for the selected horizons)")
    hmax = int(bt["horizon"].max())
    per_h = _with_metrics(
        bt.group_by(["label", "predictor", "horizon"], maintain_order=True).agg(
            [pl.col(k).sum() for k in _METRIC_COLS]
        )
    )
    c = pl.col
    aggs = {"mae": c("mae").mean(), "mae_h1": c("mae").filter(c("horizon") == 1).first()}
    if hmax > 1:
        aggs[f"mae_h{hmax}"] = c("mae").filter(c("horizon") == hmax).first()
    aggs.update(
        rmse=c("rmse").mean(),
        mape=c("mape").mean(),
        wape=c("wape").mean(),
        coverage=c("covered").sum() / c("n_interval").sum(),
    )
    s = per_h.group_by(["label", "predictor"], maintain_order=True).agg(**aggs)
    if baseline in s["predictor"].to_list():
        base = s.filter(c("predictor") == baseline).select(
            "label", c("mae").alias("_b"), c("mae_h1").alias("_b1"))
        s = s.join(base, on="label", how="left").with_columns(
            **{f"vs_{baseline}": 1 - c("mae") / c("_b"), f"vs_{baseline}_h1": 1 - c("mae_h1") / c("_b1")}
        ).drop("_b", "_b1")
    return s


def format_table(summary: pl.DataFrame, *, scale: float = 1.0, unit: str = "") -> str:
    """Plain-text table of a :func:`summarize` result (MAE divided by ``scale``, labelled ``unit``).

    Example
    -------
    >>> import numpy as np
    >>> bt = backtest(np.arange(100.0), [Fallback(), LastValue()], horizon=1, warmup=10)
    >>> print(format_table(summarize(bt)).splitlines()[0].split()[:3])
    ['label', 'predictor', 'MAE']
    """
    cols = [c for c in summary.columns if c not in ("label", "predictor")]
    hdr = ["label", "predictor"] + [
        ("MAE" if c == "mae" else c.replace("mae_", "MAE ") if c.startswith("mae_") else c)
        + (f" [{unit}]" if c.startswith("mae") or c == "rmse" else "")
        for c in cols
    ]
    body = []
    for r in summary.iter_rows(named=True):
        cells = [str(r["label"]), str(r["predictor"])]
        for c in cols:
            v = r[c]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                cells.append("—")
            elif c.startswith("mae") or c == "rmse":
                cells.append(f"{v / scale:.4g}")
            elif c.startswith("vs_"):
                cells.append(f"{100 * v:+.1f} %")
            elif c == "coverage":
                cells.append(f"{100 * v:.1f} %")
            else:
                cells.append(f"{v:.2f} %")
        body.append(cells)
    widths = [max(len(x) for x in col) for col in zip(hdr, *body)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(hdr, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths)) for row in body]
    return "\n".join(lines)


# =================================================================================================
# synthetic traces with regime changes
# =================================================================================================

_REGIMES = ("nominal", "congested", "degraded", "rerouted")
_REGIME_MULT = np.array([1.0, 0.55, 0.25, 0.8])
_REGIME_MEAN_MIN = np.array([480.0, 90.0, 30.0, 240.0])
_FROM_NOMINAL = np.array([0.0, 0.6, 0.2, 0.2])


@dataclass(frozen=True)
class SyntheticTrace:
    """A synthetic bandwidth trace (Mbit/s, one sample per ``step_s``) with its ground truth."""

    values: np.ndarray
    regime: np.ndarray  # index into ``regimes`` per sample
    regimes: tuple[str, ...]
    level: np.ndarray  # regime × capacity × diurnal
    expected: np.ndarray  # level × slow wander: the bandwidth before measurement noise and dips
    step_s: float
    seed: int


def synthetic_trace(
    n: int = 10080,
    *,
    seed: int = 0,
    base_mbps: float = 1000.0,
    step_s: float = 60.0,
    diurnal: float = 0.25,
    wander_sigma: float = 0.05,
    wander_phi: float = 0.99,
    noise_sigma: float = 0.04,
    dip_prob: float = 0.005,
) -> SyntheticTrace:
    """Seeded WAN bandwidth trace with regime changes (a model, not a measurement).

    The level is a Markov regime — nominal ×1.0 (mean stay 8 h), congested ×0.55 (90 min),
    degraded ×0.25 (30 min), rerouted ×0.8 (4 h); from nominal the next regime is congested /
    degraded / rerouted with probability 0.6 / 0.2 / 0.2, every other regime returns to nominal,
    and every return to nominal re-draws the provisioned capacity by a log-normal step (σ 0.1) —
    times a diurnal load dip ``1 − diurnal · load(t)`` (load peaks at 14:00, like the sample
    fleet), times slow log-AR(1) wander (φ ``wander_phi``, sd ``wander_sigma``). Samples add i.i.d.
    log-normal measurement noise (sd ``noise_sigma``) and transient dips (probability
    ``dip_prob`` per sample, ×U(0.3, 0.7) for 1–3 samples). Same arguments, same trace.

    Example
    -------
    >>> t = synthetic_trace(2000, seed=3)
    >>> t.values.shape, t.regimes[t.regime[0]], bool((t.values > 0).all())
    ((2000,), 'nominal', True)
    >>> bool(np.array_equal(t.values, synthetic_trace(2000, seed=3).values))
    True
    """
    n = _check_positive_int("n", n, 2)
    if step_s <= 0:
        raise ParameterError(f"step_s must be > 0, got {step_s!r}")
    rng = np.random.default_rng(seed)
    regime = np.empty(n, dtype=np.int64)
    capacity = np.empty(n)
    t, r, cap = 0, 0, base_mbps
    step_min = step_s / 60.0
    while t < n:
        stay = max(1, int(round(rng.exponential(_REGIME_MEAN_MIN[r]) / step_min)))
        regime[t : t + stay] = r
        capacity[t : t + stay] = cap
        t += stay
        if r == 0:
            r = int(rng.choice(4, p=_FROM_NOMINAL))
        else:
            r = 0
            cap = cap * math.exp(rng.normal(0.0, 0.1))
    hours = (np.arange(n) * step_s / 3600.0) % 24.0
    load = ((1 + np.cos(2 * np.pi * (hours - 14.0) / 24.0)) / 2) ** 2
    level = capacity * _REGIME_MULT[regime] * (1.0 - diurnal * load)
    innov = rng.normal(0.0, wander_sigma * math.sqrt(1 - wander_phi**2), n)
    wander = np.empty(n)
    wander[0] = rng.normal(0.0, wander_sigma)
    for i in range(1, n):
        wander[i] = wander_phi * wander[i - 1] + innov[i]
    expected = level * np.exp(wander)
    values = expected * np.exp(rng.normal(0.0, noise_sigma, n))
    starts = np.flatnonzero(rng.random(n) < dip_prob)
    for s in starts:
        length = int(rng.integers(1, 4))
        values[s : s + length] *= rng.uniform(0.3, 0.7)
    return SyntheticTrace(values, regime, _REGIMES, level, expected, float(step_s), int(seed))


def synthetic_traces(k: int = 3, n: int = 10080, *, seed: int = 0, **kwargs) -> dict[str, np.ndarray]:
    """``k`` synthetic traces (seeds ``seed``…``seed+k-1``) as name → values, ready for :func:`backtest`.

    Example
    -------
    >>> sorted(synthetic_traces(2, 500))
    ['synthetic-0', 'synthetic-1']
    """
    k = _check_positive_int("k", k)
    return {f"synthetic-{seed + i}": synthetic_trace(n, seed=seed + i, **kwargs).values for i in range(k)}


# =================================================================================================
# allocation (v1 glue, digest §5.4)
# =================================================================================================


@dataclass(frozen=True)
class Allocation:
    """Transport parameters derived from a forecast.

    ``applied`` says whether the rule set would apply them (AMSTOptimizer gates on confidence);
    ``reason`` explains the decision. Sizes in bytes, pacing in bytes/s.
    """

    streams: int
    buffer_bytes: int
    chunk_bytes: int | None
    pacing_bytes_per_s: float | None
    window_bytes: int | None
    applied: bool
    reason: str


def _check_link(bandwidth_mbps: float, latency_ms: float, loss: float, jitter_ms: float) -> None:
    for nm, v in (("bandwidth_mbps", bandwidth_mbps), ("latency_ms", latency_ms), ("jitter_ms", jitter_ms)):
        if not math.isfinite(v) or v < 0:
            raise ParameterError(f"{nm} must be a finite number >= 0, got {v!r}")
    if not (0.0 <= loss <= 1.0):
        raise ParameterError(f"loss is a fraction in [0, 1] (0.01 = 1 %), got {loss!r}")


def _buffer_bytes(bandwidth_mbps: float, latency_ms: float, jitter_ms: float) -> int:
    bps = bandwidth_mbps * 1e6 / 8.0
    bdp = bps * latency_ms / 1000.0
    jitter_buf = jitter_ms * bps / 1000.0
    return int(min(max(bdp + jitter_buf, 16 * KIB), 1 * MIB))


def prediction_service_allocation(
    bandwidth_mbps: float | None,
    latency_ms: float = 10.0,
    loss: float = 0.0,
    jitter_ms: float = 0.0,
    confidence: float = 1.0,
) -> Allocation:
    """v1 ``PredictionService`` rules: stream count in [2, 16] and buffer size.

    Streams: 4 if confidence < 0.5; else ⌊bw/20⌋ − ⌊lat/50⌋, × 3/4 (integer) if loss > 2 %,
    clamped to [2, 16] (the original clamped *before* the 3/4, so it could return 1 stream).
    Buffer: BDP + jitter buffer = bw·10⁶/8 · (lat + jitter)/1000, clamped to [16 KiB, 1 MiB];
    no prediction (``bandwidth_mbps=None``) → 4 streams, 64 KiB.

    Example
    -------
    >>> a = prediction_service_allocation(200.0, latency_ms=40.0, loss=0.0, jitter_ms=2.0, confidence=0.9)
    >>> a.streams, a.buffer_bytes
    (10, 1048576)
    """
    if bandwidth_mbps is None:
        return Allocation(4, 64 * KIB, None, None, None, True, "no prediction: defaults")
    _check_link(bandwidth_mbps, latency_ms, loss, jitter_ms)
    buf = _buffer_bytes(bandwidth_mbps, latency_ms, jitter_ms)
    if confidence < 0.5:
        return Allocation(4, buf, None, None, None, True, f"confidence {confidence:.2f} < 0.5: 4 streams")
    n = int(bandwidth_mbps // 20) - int(latency_ms // 50)
    if loss > 0.02:
        n = n * 3 // 4
    n = min(max(n, 2), 16)
    return Allocation(n, buf, None, None, None, True, "prediction-service rules")


def amst_optimizer_allocation(
    bandwidth_mbps: float,
    latency_ms: float,
    loss: float = 0.0,
    jitter_ms: float = 0.0,
    confidence: float = 1.0,
) -> Allocation:
    """v1 ``AMSTOptimizer`` rules — the ones that fed AMST.

    Streams: ⌊bw/10⌋ × (0.7 if lat > 100 ms; 1.3 if lat < 20 ms; else 1), × 3/4 if loss > 1 %,
    clamped to [2, 256]. Buffer as in :func:`prediction_service_allocation`. Chunk = buffer /
    streams, halved if loss > 2 %, clamped to [8 KiB, 128 KiB]. Pacing 0.95 · bw·10⁶/8 B/s;
    window = buffer × streams. Gating: confidence < 0.6 → skipped (returns the defaults 16
    streams, 64 KiB buffer and chunk, ``applied=False``); 0.6 ≤ c < 0.8 → computed but not applied;
    c ≥ 0.8 → applied.

    Example
    -------
    >>> a = amst_optimizer_allocation(1000.0, latency_ms=10.0, loss=0.0, confidence=0.9)
    >>> a.streams, a.chunk_bytes, a.applied
    (130, 8192, True)
    """
    _check_link(bandwidth_mbps, latency_ms, loss, jitter_ms)
    if confidence < 0.6:
        return Allocation(16, 64 * KIB, 64 * KIB, None, None, False,
                          f"confidence {confidence:.2f} < 0.6: skipped, defaults kept")
    f = float(bandwidth_mbps // 10)
    if latency_ms > 100:
        f *= 0.7
    elif latency_ms < 20:
        f *= 1.3
    if loss > 0.01:
        f *= 0.75
    streams = int(min(max(int(f), 2), 256))
    buf = _buffer_bytes(bandwidth_mbps, latency_ms, jitter_ms)
    chunk = buf // streams
    if loss > 0.02:
        chunk //= 2
    chunk = int(min(max(chunk, 8 * KIB), 128 * KIB))
    applied = confidence >= 0.8
    reason = "applied (confidence >= 0.8)" if applied else "computed, not applied (0.6 <= confidence < 0.8)"
    return Allocation(streams, buf, chunk, 0.95 * bandwidth_mbps * 1e6 / 8.0, buf * streams, applied, reason)


def _rel_diff(current: float, proposed: float) -> float:
    if current == 0:
        return math.inf if proposed != 0 else 0.0
    return abs(proposed - current) / abs(current)


def should_adjust_streams(current: int, proposed: int, confidence: float) -> bool:
    """``ShouldAdjustStreams``: confidence ≥ 0.7 and relative change > 20 %.

    Example
    -------
    >>> should_adjust_streams(10, 13, 0.75), should_adjust_streams(10, 11, 0.99)
    (True, False)
    """
    return confidence >= 0.7 and _rel_diff(current, proposed) > 0.20


def should_preempt(current: float, proposed: float, confidence: float) -> bool:
    """``PreemptiveOptimization``: confidence ≥ 0.85 and relative change > 15 %.

    Example
    -------
    >>> should_preempt(100.0, 120.0, 0.9), should_preempt(100.0, 120.0, 0.8)
    (True, False)
    """
    return confidence >= 0.85 and _rel_diff(current, proposed) > 0.15


def combine_by_confidence(values: Sequence[float], confidences: Sequence[float]) -> tuple[float, float]:
    """The original hybrid combination: Σcᵢxᵢ / Σcᵢ, confidence = max cᵢ.

    Example
    -------
    >>> combine_by_confidence([100.0, 200.0], [0.75, 0.25])
    (125.0, 0.75)
    """
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(confidences, dtype=np.float64)
    if v.size == 0 or v.shape != c.shape:
        raise ParameterError("values and confidences must be non-empty and of equal length")
    if np.any(c < 0) or c.sum() <= 0:
        raise ParameterError(f"confidences must be >= 0 with a positive sum, got {c.tolist()}")
    return float(np.sum(c * v) / np.sum(c)), float(c.max())


def prediction_error(pred_bw: float, pred_lat: float, actual_bw: float, actual_lat: float) -> float:
    """v3 accuracy-tracking error: (|Δbw| / max(bw, 1) + |Δlat| / max(lat, 1)) / 2.

    Example
    -------
    >>> prediction_error(90.0, 12.0, 100.0, 10.0)
    0.15
    """
    return round((abs(pred_bw - actual_bw) / max(actual_bw, 1.0)
                  + abs(pred_lat - actual_lat) / max(actual_lat, 1.0)) / 2.0, 12)
