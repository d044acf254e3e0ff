"""Capacity forecasting: per-resource demand series, forecasts with prediction intervals,
rolling-origin backtests, future threshold crossings and the cost of the capacity to add.

The original capacity planner (``backend/core/ml/capacity_planner.py``, digest §5.4) had three
bugs this module is built against:

- its forecast included the history, so a threshold crossed *in the past* came out as a negative
  lead time: here :func:`first_crossing` only ever looks at forecast points strictly after the
  last observation, and a resource that is *already* above a threshold is reported as such;
- it compared ``*_usage`` metrics with 0.85 / 0.95 (fractions) while every document used percent:
  here utilisation is always percent of a stated capacity (:class:`Resource`), thresholds are
  percent, and the unit is in every column name;
- its accuracy and confidence were constants (0.85): here accuracy is measured by a
  rolling-origin backtest (:func:`backtest`), including the coverage of the intervals.

Models (:func:`forecast`, one series, numpy)
--------------------------------------------
``holt_winters``
    additive Holt-Winters (ETS(A,A\\ :sub:`d`,A)) with a damped (or plain) additive trend and an
    additive seasonal cycle of ``period`` samples. The state is initialised from the first period
    (two periods when the series holds three or more), α, β, γ and φ are chosen by a grid search
    on the one-step squared error of the samples after the initialisation, and the prediction
    interval is the analytic one of the ETS model (Hyndman et al., *Forecasting with Exponential
    Smoothing*, 2008, Table 6.2: ``σ²_h = σ² (1 + Σ_{j<h} c_j²)``, ``c_j = α + αβ φ_j + (1−α)γ
    [j mod m = 0]``). A second implementation exists in :mod:`dwcpkit.protocol.pba`
    (``HoltWinters``); it is an online 1-min bandwidth predictor whose seasonal variant needs three
    full periods and whose intervals come from errors at each horizon, so it cannot forecast days
    ahead from two days of data. This one is batch, needs one period and gives model intervals.
``linear``
    ordinary least squares on a linear trend plus ``harmonics`` Fourier pairs of the period (the
    daily profile), with the classical prediction interval ``t_{ν} s √(1 + x₀ᵀ(XᵀX)⁻¹x₀)``.
``seasonal_naive``
    the value one period earlier (the reference every model must beat); interval
    ``σ √(k + 1)`` with σ from the one-period differences (k = full periods ahead).

The intervals of the first two assume uncorrelated errors; the backtest measures their coverage
instead of trusting it.

Frames
------
:func:`capacity_series` turns a canonical telemetry frame into one demand series per resource
and region (``resource, region, timestamp, value``), aggregated in polars: WAN bandwidth in
Gbit/s (``rate(dwcp_v3_bytes_transferred_total)`` summed over versions), completed migrations per
minute (``rate(dwcp_v3_migration_latency_seconds_count)``), and active streams (mean of the gauge,
summed over versions). A value at ``timestamp`` describes the ``step`` before it.
:func:`plan` runs everything the capacity-forecast notebook shows.

Example
-------
>>> import numpy as np
>>> t = np.arange(72)
>>> y = 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 24)
>>> f = forecast(y, "linear", horizon=24, period=24)
>>> round(float(f.mean[0]), 3), bool(np.all(f.lower < f.mean))
(136.0, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import polars as pl

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import slo
from dwcpkit.telemetry import schema

__all__ = [
    "Method",
    "Transform",
    "METHODS",
    "Resource",
    "RESOURCES",
    "resources",
    "SeriesForecast",
    "t_quantile",
    "holt_winters",
    "linear_trend",
    "seasonal_naive",
    "forecast",
    "CAPACITY_METRICS",
    "capacity_series",
    "forecast_series",
    "backtest",
    "backtest_summary",
    "first_crossing",
    "crossings",
    "additions",
    "data_notes",
    "CapacityPlan",
    "plan",
    "figures",
]

Method = Literal["holt_winters", "linear", "seasonal_naive"]
Transform = Literal["none", "log"]
METHODS: tuple[str, ...] = ("holt_winters", "linear", "seasonal_naive")


# =================================================================================================
# resources
# =================================================================================================


@dataclass(frozen=True)
class Resource:
    """A capacity resource: what is measured, its unit, the capacity per region and what adding costs.

    ``capacity``, ``unit_size`` and ``unit_cost`` are **assumptions** unless the caller knows
    better: the sample fleet has no inventory. ``unit_cost`` is per ``unit_size`` per month.

    Example
    -------
    >>> r = RESOURCES["wan_gbps"]
    >>> r.unit, r.capacity, r.unit_cost / r.unit_size   # the original planner's $100 per Gbit/s
    ('Gbit/s', 40.0, 100.0)
    """

    key: str
    title: str
    unit: str
    capacity: float
    unit_size: float
    unit_cost: float
    unit_name: str
    note: str

    def __post_init__(self) -> None:
        for name in ("capacity", "unit_size"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ParameterError(f"{self.key}: {name} must be a positive number, got {v!r}")
        if not (isinstance(self.unit_cost, (int, float)) and math.isfinite(self.unit_cost) and self.unit_cost >= 0):
            raise ParameterError(f"{self.key}: unit_cost must be a non-negative number, got {self.unit_cost!r}")


#: Default resources. Capacities and costs are assumptions (documented in ``note``).
RESOURCES: dict[str, Resource] = {
    "wan_gbps": Resource(
        "wan_gbps", "WAN bandwidth", "Gbit/s", 40.0, 10.0, 1000.0, "10 Gbit/s link",
        "assumption: 4 x 10 Gbit/s per region; $100 per Gbit/s per month is the original planner's "
        "network unit cost ($100/Gbps), read as monthly"),
    "migrations_per_min": Resource(
        "migrations_per_min", "Completed migrations", "migrations/min", 150.0, 25.0, 500.0,
        "migration worker (25/min)",
        "assumption: 6 workers of 25 migrations/min per region, $500 per worker per month; the "
        "original had no such unit"),
    "active_streams": Resource(
        "active_streams", "Active AMST streams", "streams", 128.0, 64.0, 200.0, "64-stream pool",
        "assumption: 128 stream slots per region, $200 per 64 slots per month; the original had no "
        "such unit"),
}


def resources(
    *,
    wan_capacity_gbps: float | None = None,
    wan_unit_gbps: float | None = None,
    wan_unit_cost: float | None = None,
    migrations_capacity_per_min: float | None = None,
    migrations_unit_per_min: float | None = None,
    migrations_unit_cost: float | None = None,
    streams_capacity: float | None = None,
    streams_unit: float | None = None,
    streams_unit_cost: float | None = None,
) -> dict[str, Resource]:
    """:data:`RESOURCES` with the given capacities, unit sizes and unit costs replaced.

    >>> resources(wan_capacity_gbps=100)["wan_gbps"].capacity
    100.0
    """
    given = {
        "wan_gbps": (wan_capacity_gbps, wan_unit_gbps, wan_unit_cost),
        "migrations_per_min": (migrations_capacity_per_min, migrations_unit_per_min, migrations_unit_cost),
        "active_streams": (streams_capacity, streams_unit, streams_unit_cost),
    }
    out = {}
    for key, (cap, size, cost) in given.items():
        r = RESOURCES[key]
        changes = {k: float(v) for k, v in (("capacity", cap), ("unit_size", size), ("unit_cost", cost)) if v is not None}
        out[key] = replace(r, **changes) if changes else r
    return out


# =================================================================================================
# one-series models
# =================================================================================================


@dataclass(frozen=True)
class SeriesForecast:
    """Forecast of one series for steps 1…h after its last sample.

    ``mean``, ``lower``, ``upper`` have length h; ``lower``/``upper`` bound the central ``level``
    prediction interval. ``sigma`` is the one-step residual standard deviation, ``params`` the
    fitted parameters, ``fitted`` the one-step in-sample predictions (NaN where the model had no
    prediction yet).
    """

    method: str
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float
    sigma: float
    params: dict[str, float] = field(default_factory=dict)
    fitted: np.ndarray | None = None


def _check_level(level: float) -> float:
    if not isinstance(level, (int, float)) or not (0.0 < float(level) < 1.0):
        raise ParameterError(f"level must be in (0, 1), e.g. 0.9 for a 90 % interval; got {level!r}")
    return float(level)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _as_series(y: Any) -> np.ndarray:
    try:
        arr = np.array(y, dtype=np.float64, copy=True).ravel()
    except (TypeError, ValueError) as exc:
        raise DataError(f"the series must be numbers: {exc}") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"the series has {int(bad.sum())} missing or non-finite value(s) (first at index {i}); "
            "fill or drop the gap before forecasting (a forecast never invents data)"
        )
    return arr


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def t_quantile(p: float, dof: float) -> float:
    """Quantile ``p`` of Student's t with ``dof`` degrees of freedom (no scipy needed).

    Cornish-Fisher expansion of the normal quantile (Abramowitz & Stegun 26.7.5); relative error
    below 0.2 % for ``dof >= 4``, the normal quantile for ``dof = inf``.

    >>> round(t_quantile(0.975, 10), 3), round(t_quantile(0.95, 30), 3)
    (2.228, 1.697)
    """
    if not (0.0 < p < 1.0):
        raise ParameterError(f"p must be in (0, 1), got {p!r}")
    if not dof > 0:
        raise ParameterError(f"dof must be positive, got {dof!r}")
    z = NormalDist().inv_cdf(p)
    if math.isinf(dof):
        return z
    v = float(dof)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / v + g2 / v**2 + g3 / v**3 + g4 / v**4


# -- Holt-Winters ---------------------------------------------------------------------------------

_ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
_BETAS = (0.0, 0.02, 0.05, 0.1, 0.2)
_GAMMAS = (0.0, 0.05, 0.1, 0.2, 0.4)
_PHIS = (0.8, 0.9, 0.95, 0.98)


def _hw_init(y: np.ndarray, m: int) -> tuple[float, float, np.ndarray, int]:
    """(level before y[0], trend, season by phase, samples used) from the first one or two periods."""
    if y.size >= 3 * m:
        p1, p2 = float(np.mean(y[:m])), float(np.mean(y[m : 2 * m]))
        trend = (p2 - p1) / m
        season = ((y[:m] - p1) + (y[m : 2 * m] - p2)) / 2.0
        # season deviations taken around each period's mean; the in-period trend is removed
        season = season - trend * (np.arange(m) - (m - 1) / 2.0)
        return p1 - trend * (m + 1) / 2.0, trend, season - season.mean(), 2 * m
    p1 = float(np.mean(y[:m]))
    return p1, 0.0, y[:m] - p1, m


def _hw_run(y: np.ndarray, m: int, alpha, beta, gamma, phi, l0: float, b0: float, s0: np.ndarray):
    """Additive damped Holt-Winters in error-correction form, vectorised over parameter sets.

    ``alpha`` … ``phi`` are arrays of equal length K (one model per entry). Returns
    ``(fitted (K, n), level (K,), trend (K,), season (K, m))``; season column j is phase j.
    """
    k = np.asarray(alpha).size
    level = np.full(k, l0, dtype=np.float64)
    trend = np.full(k, b0, dtype=np.float64)
    season = np.tile(np.asarray(s0, dtype=np.float64), (k, 1))
    fitted = np.empty((k, y.size))
    for t in range(y.size):
        j = t % m
        f = level + phi * trend + season[:, j]
        fitted[:, t] = f
        e = y[t] - f
        level = level + phi * trend + alpha * e
        trend = phi * trend + alpha * beta * e
        season[:, j] = season[:, j] + gamma * (1.0 - alpha) * e
    return fitted, level, trend, season


def _hw_run_ref(y, m, alpha, beta, gamma, phi, l0, b0, s0):
    """Plain-Python component-form reference of :func:`_hw_run` for one parameter set (tests)."""
    level, trend, season = float(l0), float(b0), [float(v) for v in s0]
    fitted = []
    for t, yt in enumerate(y):
        j = t % m
        s = season[j]
        fitted.append(level + phi * trend + s)
        new_level = alpha * (yt - s) + (1 - alpha) * (level + phi * trend)
        trend = beta * (new_level - level) + (1 - beta) * phi * trend
        level = new_level
        season[j] = gamma * (yt - level) + (1 - gamma) * s
    return np.array(fitted), level, trend, np.array(season)


def _psi(h: int, m: int, alpha: float, beta: float, gamma: float, phi: float) -> np.ndarray:
    """Variance multipliers ``1 + Σ_{j<h'} c_j²`` for h' = 1…h (ETS(A,Ad,A), class 1)."""
    j = np.arange(1, h, dtype=np.float64)
    phi_j = j if phi == 1.0 else phi * (1 - phi**j) / (1 - phi)
    c = alpha + alpha * beta * phi_j + (1 - alpha) * gamma * ((j % m) == 0)
    return 1.0 + np.concatenate([[0.0], np.cumsum(c**2)])


def holt_winters(
    y: Any,
    horizon: int,
    period: int,
    *,
    level: float = 0.9,
    damped: bool = True,
    alphas: Sequence[float] = _ALPHAS,
    betas: Sequence[float] = _BETAS,
    gammas: Sequence[float] = _GAMMAS,
    phis: Sequence[float] = _PHIS,
) -> SeriesForecast:
    """Additive Holt-Winters forecast with analytic prediction intervals.

    Parameters
    ----------
    y : the series (at least ``period + 4`` finite values).
    horizon : number of steps to forecast.
    period : season length in samples (24 for a daily cycle of hourly values).
    level : central coverage of the interval.
    damped : damped trend (φ chosen from ``phis``); ``False`` fixes φ = 1, a straight trend
        extrapolated for ever — rarely what the data supports.
    alphas, betas, gammas, phis : the grid searched (smoothing-form parameters; γ ≤ 1 − α).

    Example
    -------
    >>> import numpy as np
    >>> y = 50 + 5 * np.sin(2 * np.pi * np.arange(96) / 24)
    >>> f = holt_winters(y, 24, 24)
    >>> bool(np.max(np.abs(f.mean - y[-24:])) < 0.5)
    True
    """
    arr = _as_series(y)
    horizon = _check_int("horizon", horizon, 1)
    m = _check_int("period", period, 2)
    lvl = _check_level(level)
    if arr.size < m + 4:
        raise DataError(
            f"Holt-Winters with a period of {m} samples needs at least {m + 4} samples (one period to "
            f"initialise the season, four to fit on); the series has {arr.size}: use more history (at least one "
            "period plus a few steps) or the 'linear' method"
        )
    grid = np.array([(a, b, g, p) for a in alphas for b in betas for g in gammas if g <= 1 - a + 1e-12
                     for p in (phis if damped else (1.0,))], dtype=np.float64)
    if grid.size == 0:
        raise ParameterError("the Holt-Winters parameter grid is empty (every gamma > 1 - alpha?)")
    l0, b0, s0, skip = _hw_init(arr, m)
    a, b, g, p = grid.T
    fitted, _, _, _ = _hw_run(arr, m, a, b, g, p, l0, b0, s0)
    sse = np.sum((arr[skip:] - fitted[:, skip:]) ** 2, axis=1)
    k = int(np.argmin(sse))
    a, b, g, p = (float(v) for v in grid[k])
    fit1, level_n, trend_n, season_n = _hw_run(arr, m, np.array([a]), np.array([b]), np.array([g]), np.array([p]),
                                               l0, b0, s0)
    n_scored = arr.size - skip
    sigma = math.sqrt(float(sse[k]) / max(n_scored - 1, 1))
    h = np.arange(1, horizon + 1)
    damp = h.astype(np.float64) if p == 1.0 else p * (1 - p**h) / (1 - p)
    phase = (arr.size - 1 + h) % m
    mean = level_n[0] + damp * trend_n[0] + season_n[0, phase]
    half = _z(lvl) * sigma * np.sqrt(_psi(horizon, m, a, b, g, p))
    fitted_out = fit1[0].copy()
    fitted_out[:skip] = np.nan
    return SeriesForecast("holt_winters", mean, mean - half, mean + half, lvl, sigma,
                          {"alpha": a, "beta": b, "gamma": g, "phi": p, "period": float(m)}, fitted_out)


# -- linear trend + daily profile ---------------------------------------------------------------


def _design(t: np.ndarray, period: int, harmonics: int) -> np.ndarray:
    cols = [np.ones_like(t), t]
    for k in range(1, harmonics + 1):
        w = 2 * np.pi * k * t / period
        cols += [np.cos(w), np.sin(w)]
    return np.column_stack(cols)


def linear_trend(
    y: Any, horizon: int, period: int | None = None, *, harmonics: int = 3, level: float = 0.9
) -> SeriesForecast:
    """OLS linear trend (plus ``harmonics`` Fourier pairs of ``period``) with prediction intervals.

    ``period=None`` or ``harmonics=0`` fits the straight line only. Harmonics are capped at
    ``period // 2``. The interval is ``t_{n−p} s √(1 + x₀ᵀ(XᵀX)⁻¹x₀)``.

    Example
    -------
    >>> f = linear_trend([1.0, 2.0, 3.0, 4.0, 5.0], 2)
    >>> [round(v, 9) for v in f.mean.tolist()], round(f.sigma, 9)
    ([6.0, 7.0], 0.0)
    """
    arr = _as_series(y)
    horizon = _check_int("horizon", horizon, 1)
    lvl = _check_level(level)
    harmonics = _check_int("harmonics", harmonics, 0)
    if period is None:
        harmonics = 0
        period = 1
    else:
        period = _check_int("period", period, 2)
        harmonics = min(harmonics, period // 2)
    n = arr.size
    t = np.arange(n, dtype=np.float64)
    X = _design(t, period, harmonics)
    p = X.shape[1]
    if n < p + 2:
        raise DataError(
            f"a linear trend with {harmonics} seasonal harmonics has {p} coefficients and needs at least "
            f"{p + 2} samples; the series has {n}: use more history or fewer harmonics"
        )
    coef, *_ = np.linalg.lstsq(X, arr, rcond=None)
    fitted = X @ coef
    dof = n - p
    s = math.sqrt(float(np.sum((arr - fitted) ** 2)) / dof)
    X0 = _design(np.arange(n, n + horizon, dtype=np.float64), period, harmonics)
    xtx_inv = np.linalg.pinv(X.T @ X)
    lev = np.einsum("ij,jk,ik->i", X0, xtx_inv, X0)
    mean = X0 @ coef
    half = t_quantile(0.5 + lvl / 2, dof) * s * np.sqrt(1.0 + lev)
    params = {"intercept": float(coef[0]), "slope_per_step": float(coef[1]), "harmonics": float(harmonics),
              "period": float(period)}
    return SeriesForecast("linear", mean, mean - half, mean + half, lvl, s, params, fitted)


def seasonal_naive(y: Any, horizon: int, period: int, *, level: float = 0.9) -> SeriesForecast:
    """The value one period earlier, repeated; the reference a model has to beat.

    >>> seasonal_naive([1.0, 2.0, 3.0, 1.0, 2.0, 3.0], 4, 3).mean.tolist()
    [1.0, 2.0, 3.0, 1.0]
    """
    arr = _as_series(y)
    horizon = _check_int("horizon", horizon, 1)
    m = _check_int("period", period, 1)
    lvl = _check_level(level)
    if arr.size < m + 2:
        raise DataError(f"seasonal naive with a period of {m} needs at least {m + 2} samples; the series has {arr.size}")
    h = np.arange(1, horizon + 1)
    mean = arr[arr.size - m + (h - 1) % m]
    d = arr[m:] - arr[:-m]
    sigma = float(np.sqrt(np.mean(d**2)))
    half = _z(lvl) * sigma * np.sqrt((h - 1) // m + 1)
    fitted = np.full(arr.size, np.nan)
    fitted[m:] = arr[:-m]
    return SeriesForecast("seasonal_naive", mean, mean - half, mean + half, lvl, sigma, {"period": float(m)}, fitted)


def forecast(
    y: Any,
    method: Method,
    horizon: int,
    period: int,
    *,
    level: float = 0.9,
    damped: bool = True,
    harmonics: int = 3,
    transform: Transform = "none",
    floor: float | None = None,
) -> SeriesForecast:
    """Dispatch to :func:`holt_winters`, :func:`linear_trend` or :func:`seasonal_naive`.

    ``transform="log"`` models ``log(y)`` and transforms back: seasonality and trend become
    multiplicative (a busier day has a proportionally larger daily swing, as load does), the
    interval bounds stay exact quantiles, and ``mean`` becomes the *median* forecast. It needs
    ``y > 0``. ``floor`` clips mean and bounds from below (0 for quantities that cannot be negative).

    >>> bool(forecast([5.0, 1.0, 5.0, 1.0, 5.0, 1.0], "seasonal_naive", 2, 2, floor=0.0).lower.min() >= 0)
    True
    >>> forecast([4.0, 1.0, 4.0, 1.0, 4.0, 1.0], "seasonal_naive", 2, 2, transform="log").mean.tolist()
    [4.0, 1.0]
    """
    if transform not in ("none", "log"):
        raise ParameterError(f"transform={transform!r}; use 'none' or 'log'")
    if transform == "log":
        arr = _as_series(y)
        if np.any(arr <= 0):
            raise DataError(
                f"transform='log' needs positive values; the series has {int(np.sum(arr <= 0))} value(s) <= 0 "
                "(first at index {}): use transform='none'".format(int(np.flatnonzero(arr <= 0)[0])))
        y = np.log(arr)
    if method == "holt_winters":
        f = holt_winters(y, horizon, period, level=level, damped=damped)
    elif method == "linear":
        f = linear_trend(y, horizon, period, harmonics=harmonics, level=level)
    elif method == "seasonal_naive":
        f = seasonal_naive(y, horizon, period, level=level)
    else:
        raise ParameterError(f"method={method!r}; use one of {', '.join(METHODS)}")
    if transform == "log":
        f = replace(f, mean=np.exp(f.mean), lower=np.exp(f.lower), upper=np.exp(f.upper),
                    fitted=None if f.fitted is None else np.exp(f.fitted),
                    params={**f.params, "log": 1.0})
    if floor is not None:
        f = replace(f, mean=np.maximum(f.mean, floor), lower=np.maximum(f.lower, floor),
                    upper=np.maximum(f.upper, floor))
    return f


# =================================================================================================
# telemetry -> demand series
# =================================================================================================

_BYTES = "dwcp_v3_bytes_transferred_total"
_MIGRATIONS = "dwcp_v3_migration_latency_seconds_count"
_STREAMS = "dwcp_v3_active_streams"
#: Metric families :func:`capacity_series` reads (pass them to the loader).
CAPACITY_METRICS = ("dwcp_v3_bytes_transferred_total", "dwcp_v3_migration_latency_seconds", "dwcp_v3_active_streams")


def _grid_bounds(frame: pl.DataFrame, step_ms: int) -> tuple[int, int]:
    ts = frame["timestamp"].dt.epoch("ms")
    lo, hi = int(ts.min()), int(ts.max())
    first = (lo // step_ms + 1) * step_ms
    last = -(-hi // step_ms) * step_ms
    return first, last


def capacity_series(frame: pl.DataFrame, *, step: str = "1h") -> pl.DataFrame:
    """Demand per resource and region on a ``step`` grid, from a canonical telemetry frame.

    Returns ``resource, region, timestamp, value`` (Datetime(ms, UTC); the value describes the
    ``step`` ending at ``timestamp``). Resources whose metric is absent are left out; a frame
    with none of them raises :class:`~dwcpkit.errors.DataError`. Counter rates follow PromQL
    (:func:`dwcpkit.sre.slo.rate`, resets handled); only complete grid steps are kept.

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> rows = [(t * 60_000, "dwcp_v3_migration_latency_seconds_count", 2.0 * t, {"region": "eu"}) for t in range(121)]
    >>> capacity_series(from_rows(rows))["value"].to_list()
    [2.0, 2.0]
    """
    step_ms = slo.parse_duration(step)
    frame = schema.normalize(frame, source="capacity_series")
    if "region" not in frame.columns:
        raise DataError("capacity_series: the frame has no 'region' label; capacity is planned per region")
    out = []
    span = None
    if frame.height:
        span = _grid_bounds(frame, step_ms)
    for key, metric, scale in (("wan_gbps", _BYTES, 8e-9), ("migrations_per_min", _MIGRATIONS, 60.0)):
        sel = frame.filter(pl.col("metric") == metric)
        if sel.height == 0 or span is None:
            continue
        r = slo.rate(sel, step, step=step, start=span[0], end=span[1])
        if r.height == 0:
            continue
        out.append(slo.sum_by(r, ["region"]).select(
            pl.lit(key).alias("resource"), "region", "timestamp", (pl.col("value") * scale).alias("value")))
    sel = frame.filter(pl.col("metric") == _STREAMS)
    if sel.height:
        keys = [c for c in schema.series_keys(sel) if c != "metric"]
        g = (sel.sort("timestamp").group_by_dynamic("timestamp", every=f"{step_ms}ms", closed="left", label="right",
                                                    group_by=keys)
             .agg(pl.col("value").mean(), pl.len().alias("_n")))
        full = g["_n"].max()
        g = g.filter(pl.col("_n") >= 0.9 * full) if full else g
        out.append(g.group_by("timestamp", "region").agg(pl.col("value").sum()).select(
            pl.lit("active_streams").alias("resource"), "region", "timestamp", "value"))
    if not out:
        raise DataError(
            f"capacity_series: none of {', '.join(CAPACITY_METRICS)} is in the frame; load those families"
        )
    res = pl.concat(out).with_columns(pl.col("timestamp").cast(schema.TIMESTAMP_DTYPE))
    # keep the timestamps every series of a resource has (complete steps only)
    n_regions = res.group_by("resource").agg(pl.col("region").n_unique().alias("_r"))
    res = (res.join(n_regions, on="resource")
           .with_columns(pl.col("region").count().over("resource", "timestamp").alias("_c"))
           .filter(pl.col("_c") == pl.col("_r")).drop("_c", "_r"))
    return res.sort("resource", "region", "timestamp")


def _period_steps(period: str, step: str) -> tuple[int, int]:
    p_ms, s_ms = slo.parse_duration(period), slo.parse_duration(step)
    if s_ms <= 0 or p_ms % s_ms:
        raise ParameterError(f"the period ({period}) must be a whole number of steps ({step})")
    return p_ms // s_ms, s_ms


def _groups(series: pl.DataFrame):
    for (res, reg), g in series.sort("resource", "region", "timestamp").group_by(["resource", "region"],
                                                                                 maintain_order=True):
        yield res, reg, g


def forecast_series(
    series: pl.DataFrame,
    *,
    method: Method = "holt_winters",
    horizon: str = "7d",
    step: str = "1h",
    period: str = "1d",
    level: float = 0.9,
    damped: bool = True,
    transform: Transform = "log",
) -> pl.DataFrame:
    """Forecast every (resource, region) series of :func:`capacity_series` for ``horizon``.

    Returns ``resource, region, timestamp, mean, lower, upper, method`` with timestamps strictly
    after each series' last observation. Forecasts are floored at 0 (demand is never negative).

    Example
    -------
    >>> from datetime import datetime, timezone
    >>> import numpy as np
    >>> ts = [datetime(2026, 11, 1, h % 24, tzinfo=timezone.utc).replace(day=1 + h // 24) for h in range(48)]
    >>> s = pl.DataFrame({"resource": "r", "region": "eu", "timestamp": ts,
    ...                   "value": 10 + np.sin(np.arange(48) / 24 * 2 * np.pi)})
    >>> forecast_series(s, method="seasonal_naive", horizon="2h").height
    2
    """
    m, step_ms = _period_steps(period, step)
    h = slo.parse_duration(horizon) // step_ms
    if h < 1:
        raise ParameterError(f"horizon={horizon!r} is shorter than one step ({step})")
    out = []
    for res, reg, g in _groups(series):
        f = forecast(g["value"].to_numpy(), method, int(h), m, level=level, damped=damped, transform=transform,
                     floor=0.0)
        last = g["timestamp"][-1]
        out.append(pl.DataFrame({
            "resource": res, "region": reg,
            "timestamp": [last + timedelta(milliseconds=step_ms * k) for k in range(1, h + 1)],
            "mean": f.mean, "lower": f.lower, "upper": f.upper, "method": method,
        }))
    if not out:
        raise DataError("forecast_series: no series to forecast")
    return pl.concat(out).with_columns(pl.col("timestamp").cast(schema.TIMESTAMP_DTYPE))


# =================================================================================================
# backtest
# =================================================================================================


def backtest(
    series: pl.DataFrame,
    *,
    methods: Sequence[str] = METHODS,
    horizon_steps: int = 12,
    period: int = 24,
    min_train: int | None = None,
    level: float = 0.9,
    damped: bool = True,
    transform: Transform = "none",
    origin_every: int = 1,
) -> pl.DataFrame:
    """Rolling-origin backtest: from every ``origin_every``-th origin ``o >= min_train``, fit on
    ``y[:o]`` only and forecast ``y[o : o + horizon_steps]``.

    ``series`` is a frame with ``value`` (and optionally ``resource``/``region``, backtested
    separately). ``min_train`` defaults to ``max(period + period // 4, period + 4)`` (every model
    needs a period and a few samples to fit). Returns one row per
    (resource, region, method, origin, h): ``actual, mean, lower, upper`` — nothing after the
    origin is ever used to fit.

    Example
    -------
    >>> import numpy as np
    >>> s = pl.DataFrame({"value": np.tile([1.0, 5.0, 3.0], 6)})
    >>> bt = backtest(s, methods=["seasonal_naive"], horizon_steps=2, period=3)
    >>> float((bt["actual"] - bt["mean"]).abs().max())
    0.0
    """
    horizon_steps = _check_int("horizon_steps", horizon_steps, 1)
    period = _check_int("period", period, 2)
    min_train = max(period + period // 4, period + 4) if min_train is None else _check_int("min_train", min_train, 2)
    origin_every = _check_int("origin_every", origin_every, 1)
    for mth in methods:
        if mth not in METHODS:
            raise ParameterError(f"unknown method {mth!r}; use {', '.join(METHODS)}")
    if "resource" not in series.columns:
        series = series.with_columns(pl.lit("series").alias("resource"))
    if "region" not in series.columns:
        series = series.with_columns(pl.lit("all").alias("region"))
    if "timestamp" not in series.columns:
        series = series.with_row_index("timestamp")
    rows: dict[str, list] = {k: [] for k in ("resource", "region", "method", "origin", "h", "actual", "mean",
                                               "lower", "upper")}
    for res, reg, g in _groups(series):
        y = _as_series(g["value"].to_numpy())
        ts = g["timestamp"].to_list()
        if y.size <= min_train:
            raise DataError(
                f"backtest of {res}/{reg}: {y.size} samples leave no origin after min_train={min_train}; "
                "use more history or a smaller min_train"
            )
        for o in range(min_train, y.size, origin_every):
            hmax = min(horizon_steps, y.size - o)
            for mth in methods:
                f = forecast(y[:o], mth, hmax, period, level=level, damped=damped, transform=transform, floor=0.0)
                rows["resource"] += [res] * hmax
                rows["region"] += [reg] * hmax
                rows["method"] += [mth] * hmax
                rows["origin"] += [ts[o - 1]] * hmax
                rows["h"] += list(range(1, hmax + 1))
                rows["actual"] += y[o : o + hmax].tolist()
                rows["mean"] += f.mean.tolist()
                rows["lower"] += f.lower.tolist()
                rows["upper"] += f.upper.tolist()
    return pl.DataFrame(rows)


def backtest_summary(bt: pl.DataFrame, by: Sequence[str] = ("method",)) -> pl.DataFrame:
    """Accuracy of a :func:`backtest` grouped by ``by``.

    Columns: ``n`` (forecasts scored), ``mae``, ``wape_pct`` (Σ|error| / Σ|actual| × 100: robust
    where MAPE explodes near zero), ``bias_pct`` (Σ error / Σ|actual| × 100, positive = forecasts
    too high), ``coverage_pct`` (share of actuals inside the interval; compare with the nominal
    level) and, when ``method`` is grouped on and ``seasonal_naive`` was run, ``mae_vs_naive``
    (MAE / the seasonal-naive MAE over the same groups; < 1 beats it).

    Example
    -------
    >>> bt = pl.DataFrame({"method": ["a", "a"], "actual": [10.0, 10.0], "mean": [9.0, 12.0],
    ...                    "lower": [8.0, 11.0], "upper": [11.0, 13.0]})
    >>> backtest_summary(bt).select("mae", "wape_pct", "coverage_pct").row(0)
    (1.5, 15.0, 50.0)
    """
    by = list(by)
    e = pl.col("mean") - pl.col("actual")
    out = bt.group_by(by, maintain_order=True).agg(
        pl.len().alias("n"),
        e.abs().mean().alias("mae"),
        (e.abs().sum() / pl.col("actual").abs().sum() * 100).alias("wape_pct"),
        (e.sum() / pl.col("actual").abs().sum() * 100).alias("bias_pct"),
        (((pl.col("actual") >= pl.col("lower")) & (pl.col("actual") <= pl.col("upper"))).mean() * 100)
        .alias("coverage_pct"),
    )
    if "method" in by and "seasonal_naive" in bt["method"].unique().to_list():
        rest = [c for c in by if c != "method"]
        naive = (bt.filter(pl.col("method") == "seasonal_naive")
                 .group_by(rest or pl.lit(0).alias("_all"), maintain_order=True)
                 .agg(e.abs().mean().alias("_naive")))
        out = (out.join(naive, on=rest, how="left") if rest else out.with_columns(pl.lit(naive["_naive"][0]).alias("_naive")))
        out = out.with_columns((pl.col("mae") / pl.col("_naive")).alias("mae_vs_naive")).drop("_naive")
    return out


# =================================================================================================
# thresholds and costs
# =================================================================================================


def first_crossing(fc: pl.DataFrame, threshold: float, *, after: datetime, column: str = "mean") -> datetime | None:
    """First forecast time strictly after ``after`` at which ``column`` reaches ``threshold``.

    Only the future is searched: rows at or before ``after`` (the last observation) are ignored,
    whatever the frame holds — the original planner searched its history and reported crossings
    in the past as negative lead times. ``None`` when the forecast never reaches it.

    >>> from datetime import datetime, timezone
    >>> t = [datetime(2026, 11, d, tzinfo=timezone.utc) for d in (1, 2, 3)]
    >>> fc = pl.DataFrame({"timestamp": t, "mean": [99.0, 50.0, 90.0]})
    >>> first_crossing(fc, 80, after=t[0]).day
    3
    """
    if column not in fc.columns:
        raise ParameterError(f"column {column!r} is not in the forecast frame; use one of {fc.columns}")
    hit = fc.filter((pl.col("timestamp") > after) & (pl.col(column) >= threshold)).sort("timestamp")
    return None if hit.height == 0 else hit["timestamp"][0]


def _check_thresholds(warn_pct: float, critical_pct: float) -> None:
    for name, v in (("warn_pct", warn_pct), ("critical_pct", critical_pct)):
        if not (isinstance(v, (int, float)) and 0 < v <= 1000):
            raise ParameterError(f"{name} is a percentage of capacity (e.g. 85), got {v!r}")
    if critical_pct < warn_pct:
        raise ParameterError(f"critical_pct ({critical_pct}) is below warn_pct ({warn_pct}); swap them")
    if warn_pct <= 1 and critical_pct <= 1:
        raise ParameterError(
            f"warn_pct={warn_pct}, critical_pct={critical_pct} look like fractions; thresholds are percent "
            "(85 means 85 %) — the original planner mixed the two"
        )


def crossings(
    series: pl.DataFrame,
    fc: pl.DataFrame,
    res: Mapping[str, Resource],
    *,
    warn_pct: float = 85.0,
    critical_pct: float = 95.0,
    within: str = "7d",
) -> pl.DataFrame:
    """When each resource and region first crosses each threshold, in the future only.

    One row per (resource, region, threshold): ``capacity``, ``threshold`` (in the resource's
    unit), ``recent_peak`` (max over the last period of history, ``recent_peak_pct`` of capacity),
    ``forecast_peak`` (max of the mean forecast), ``first_crossing`` (mean forecast),
    ``earliest_plausible`` (upper bound of the interval), ``days_until`` and ``status``:
    ``already above`` (the recent peak is at or above it: no lead time to compute),
    ``within <within>`` (the mean forecast crosses it within ``within`` of the last observation),
    ``later`` (crosses it, but after ``within``), ``plausible`` (only the upper bound crosses),
    ``not crossed``.
    """
    _check_thresholds(warn_pct, critical_pct)
    within_ms = slo.parse_duration(within)
    rows = []
    for resource, region, g in _groups(series):
        if resource not in res:
            continue
        r = res[resource]
        last = g["timestamp"][-1]
        recent = g.filter(pl.col("timestamp") > last - timedelta(days=1))["value"].max()
        f = fc.filter((pl.col("resource") == resource) & (pl.col("region") == region))
        for name, pct in (("warn", warn_pct), ("critical", critical_pct)):
            thr = r.capacity * pct / 100
            t_mean = first_crossing(f, thr, after=last)
            t_up = first_crossing(f, thr, after=last, column="upper")
            days = None if t_mean is None else (t_mean - last).total_seconds() / 86400
            if recent >= thr:
                status = "already above"
            elif t_mean is not None:
                status = f"within {within}" if (t_mean - last).total_seconds() * 1000 <= within_ms else "later"
            elif t_up is not None:
                status = "plausible"
            else:
                status = "not crossed"
            rows.append({
                "resource": resource, "region": region, "unit": r.unit, "threshold_name": name,
                "threshold_pct": float(pct), "capacity": r.capacity, "threshold": thr,
                "recent_peak": float(recent), "recent_peak_pct": float(recent / r.capacity * 100),
                "forecast_peak": float(f["mean"].max()) if f.height else None,
                "first_crossing": t_mean, "earliest_plausible": t_up, "days_until": days, "status": status,
            })
    schema_ = {"first_crossing": schema.TIMESTAMP_DTYPE, "earliest_plausible": schema.TIMESTAMP_DTYPE,
               "days_until": pl.Float64, "forecast_peak": pl.Float64}
    return pl.DataFrame(rows, schema_overrides=schema_)


def additions(
    fc: pl.DataFrame,
    res: Mapping[str, Resource],
    *,
    warn_pct: float = 85.0,
    size_on: Literal["mean", "upper"] = "mean",
) -> pl.DataFrame:
    """Capacity to add so that the forecast peak stays at or under ``warn_pct`` of capacity, and its cost.

    Per (resource, region): ``peak`` = max of ``size_on`` over the forecast, ``needed`` =
    peak / (warn_pct / 100), ``units`` = ceil((needed − capacity) / unit_size) (0 when the
    capacity suffices), ``added`` = units × unit_size, ``monthly_cost`` = units × unit_cost.
    The costs are the resource's assumptions (:class:`Resource`), not quotes.

    Example
    -------
    >>> fc = pl.DataFrame({"resource": ["wan_gbps"], "region": ["eu"], "mean": [38.0], "upper": [45.0]})
    >>> additions(fc, RESOURCES).select("units", "monthly_cost").row(0)
    (1, 1000.0)
    """
    _check_thresholds(warn_pct, max(warn_pct, 100.0))
    if size_on not in ("mean", "upper"):
        raise ParameterError(f"size_on={size_on!r}; use 'mean' (the point forecast) or 'upper' (interval bound)")
    peaks = fc.group_by("resource", "region", maintain_order=True).agg(pl.col(size_on).max().alias("peak"))
    rows = []
    for resource, region, peak in peaks.iter_rows():
        if resource not in res:
            continue
        r = res[resource]
        needed = peak / (warn_pct / 100)
        units = max(0, math.ceil((needed - r.capacity) / r.unit_size - 1e-9))
        rows.append({"resource": resource, "region": region, "unit": r.unit, "capacity": r.capacity,
                     "peak": float(peak), "needed": float(needed), "units": units, "unit_name": r.unit_name,
                     "added": units * r.unit_size, "monthly_cost": units * r.unit_cost})
    return pl.DataFrame(rows).sort("resource", "region") if rows else pl.DataFrame(
        schema={"resource": pl.String, "region": pl.String, "units": pl.Int64, "monthly_cost": pl.Float64})


def data_notes(series: pl.DataFrame, *, step: str = "1h", period: str = "1d", horizon: str = "7d") -> list[str]:
    """What the history can and cannot support, as sentences (shown by the notebook).

    >>> from datetime import datetime, timezone
    >>> s = pl.DataFrame({"timestamp": [datetime(2026, 11, 1, tzinfo=timezone.utc),
    ...                                 datetime(2026, 11, 3, tzinfo=timezone.utc)], "value": [1.0, 1.0]})
    >>> data_notes(s)[0]
    '2.0 days of history (2 steps of 1h) = 2.0 daily cycles.'
    """
    ts = series["timestamp"]
    p_ms, s_ms, h_ms = slo.parse_duration(period), slo.parse_duration(step), slo.parse_duration(horizon)
    span_ms = (ts.max() - ts.min()).total_seconds() * 1000 + s_ms
    days = span_ms / 86_400_000
    n = ts.n_unique()
    cycles = span_ms / p_ms
    word = "daily" if p_ms == 86_400_000 else f"{period}"
    notes = [f"{days:.1f} days of history ({n} steps of {step}) = {cycles:.1f} {word} cycles."]
    if days < 14:
        notes.append(
            "Less than two weeks: the weekly cycle (weekend vs weekday load) cannot be separated from a "
            "trend, so any trend the models fit may be a weekday effect; the forecast is a scenario, not a plan.")
    if cycles < 3:
        notes.append(
            f"Fewer than three {word} cycles: the seasonal profile is estimated from {cycles:.0f} cycle(s) and "
            "the backtest can only test horizons shorter than a cycle.")
    if h_ms > span_ms:
        notes.append(f"The horizon ({horizon}) is longer than the history ({days:.1f} days): its far end is "
                     "extrapolation the data cannot check.")
    if days >= 56:
        notes.append("At least eight weeks of history: trends over weeks are estimable.")
    return notes


# =================================================================================================
# the whole analysis
# =================================================================================================


@dataclass
class CapacityPlan:
    """Everything :func:`plan` computed; the capacity-forecast notebook shows these."""

    series: pl.DataFrame
    forecast: pl.DataFrame
    backtest: pl.DataFrame
    accuracy: pl.DataFrame
    accuracy_by_resource: pl.DataFrame
    accuracy_by_horizon: pl.DataFrame
    crossings: pl.DataFrame
    additions: pl.DataFrame
    resources: dict[str, Resource]
    notes: list[str]
    method: str
    horizon: str
    within: str
    level: float
    warn_pct: float
    critical_pct: float
    step: str
    verdict_level: str = "OK"
    reasons: list[str] = field(default_factory=list)
    summary: str = ""

    @property
    def history_days(self) -> float:
        """Days of history the forecasts were fitted on (steps x step length)."""
        if self.series.height == 0:
            return 0.0
        return self.series["timestamp"].n_unique() * slo.parse_duration(self.step) / 86_400_000

    @property
    def monthly_cost(self) -> float:
        """Total monthly cost of the additions (assumed unit costs)."""
        return float(self.additions["monthly_cost"].sum()) if self.additions.height else 0.0

    def resources_table(self) -> pl.DataFrame:
        """Capacities and unit costs used, each marked as an assumption with its note."""
        return pl.DataFrame([
            {"resource": r.key, "unit": r.unit, "capacity_per_region": r.capacity, "unit_added": r.unit_name,
             "unit_size": r.unit_size, "cost_per_unit_month": r.unit_cost, "assumption": r.note}
            for r in self.resources.values()
        ])


def _verdict(cx: pl.DataFrame, within: str) -> tuple[str, list[str], str]:
    soon = f"within {within}"
    reasons = []
    level = "OK"
    crit = cx.filter((pl.col("threshold_name") == "critical") & pl.col("status").is_in(["already above", soon]))
    warn = cx.filter((pl.col("threshold_name") == "warn") & pl.col("status").is_in(["already above", soon]))
    for row in crit.iter_rows(named=True):
        level = "ACT"
        reasons.append(_reason(row))
    for row in warn.iter_rows(named=True):
        if level == "OK":
            level = "WARN"
        key = (row["resource"], row["region"])
        if key not in {(r["resource"], r["region"]) for r in crit.iter_rows(named=True)}:
            reasons.append(_reason(row))
    if not reasons:
        reasons.append(f"no resource reaches its warning threshold within {within} (mean forecast)")
    n_crit = crit.select("resource", "region").n_unique() if crit.height else 0
    n_warn = warn.select("resource", "region").n_unique() if warn.height else 0
    if level == "OK":
        summary = f"capacity holds for {within} on the mean forecast"
    else:
        summary = (f"within {within}: {n_crit} resource-region(s) at or past the critical threshold, "
                   f"{n_warn} at or past the warning threshold")
    return level, reasons, summary


def _reason(row: dict) -> str:
    what = f"{row['resource']} {row['region']}"
    thr = f"{row['threshold_name']} {row['threshold_pct']:g} % ({row['threshold']:.4g} {row['unit']})"
    if row["status"] == "already above":
        return f"{what}: already above {thr}, recent peak {row['recent_peak']:.4g} {row['unit']}"
    return (f"{what}: forecast reaches {thr} on {row['first_crossing']:%Y-%m-%d %H:%M} UTC, "
            f"in {row['days_until']:.1f} days")


def plan(
    frame: pl.DataFrame,
    *,
    method: Method = "holt_winters",
    step: str = "1h",
    period: str = "1d",
    horizon: str = "7d",
    within: str = "7d",
    level: float = 0.9,
    damped: bool = True,
    transform: Transform = "log",
    warn_pct: float = 85.0,
    critical_pct: float = 95.0,
    size_on: Literal["mean", "upper"] = "mean",
    backtest_horizon: str = "12h",
    res: Mapping[str, Resource] | None = None,
) -> CapacityPlan:
    """Series, forecast, backtest (``method`` and ``seasonal_naive``, and ``linear`` or
    ``holt_winters`` whichever is not ``method``; lead times up to ``backtest_horizon``, one
    origin per hour),
    crossings, additions and the verdict.

    Verdict: ACT when a critical threshold is already reached or crossed by the mean forecast
    within ``within``; WARN for the warning threshold; OK otherwise.

    Example
    -------
    >>> from dwcpkit.telemetry.sources import load
    >>> p = plan(load("sample", metrics=list(CAPACITY_METRICS)))   # doctest: +SKIP
    >>> p.verdict_level in ("OK", "WARN", "ACT")                   # doctest: +SKIP
    True
    """
    if method not in ("holt_winters", "linear"):
        raise ParameterError(f"method={method!r}; use 'holt_winters' or 'linear'")
    _check_thresholds(warn_pct, critical_pct)
    if slo.parse_duration(within) > slo.parse_duration(horizon):
        raise ParameterError(f"within={within!r} is longer than the forecast horizon={horizon!r}")
    m, step_ms = _period_steps(period, step)
    backtest_steps = max(1, slo.parse_duration(backtest_horizon) // step_ms)
    res = dict(res or RESOURCES)
    series = capacity_series(frame, step=step).filter(pl.col("resource").is_in(list(res)))
    fc = forecast_series(series, method=method, horizon=horizon, step=step, period=period, level=level, damped=damped,
                         transform=transform)
    methods = [method, "linear" if method == "holt_winters" else "holt_winters", "seasonal_naive"]
    bt = backtest(series, methods=methods, horizon_steps=backtest_steps, period=m, level=level, damped=damped,
                  transform=transform, origin_every=max(1, 3_600_000 // step_ms))  # one origin per hour
    cx = crossings(series, fc, res, warn_pct=warn_pct, critical_pct=critical_pct, within=within)
    within_end = pl.col("timestamp") <= pl.col("timestamp").min().over("resource", "region") + timedelta(
        milliseconds=slo.parse_duration(within) - slo.parse_duration(step))
    add = additions(fc.filter(within_end), res, warn_pct=warn_pct, size_on=size_on)
    lvl, reasons, summary = _verdict(cx, within)
    if add.height and add["units"].sum() > 0:
        summary += (f"; additions to stay under {warn_pct:g} %: {add['monthly_cost'].sum():,.0f} $ per month "
                    "(assumed unit costs)")
    return CapacityPlan(
        series=series, forecast=fc, backtest=bt,
        accuracy=backtest_summary(bt, ["method"]),
        accuracy_by_resource=backtest_summary(bt, ["resource", "method"]),
        accuracy_by_horizon=backtest_summary(bt, ["method", "h"]).sort("method", "h"),
        crossings=cx, additions=add, resources=res, notes=data_notes(series, step=step, period=period, horizon=horizon),
        method=method, horizon=horizon, within=within, level=level, warn_pct=warn_pct, critical_pct=critical_pct,
        step=step, verdict_level=lvl, reasons=reasons, summary=summary,
    )


# =================================================================================================
# charts
# =================================================================================================


def _naive_utc(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns([pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
                               for c, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone])


def figures(p: CapacityPlan) -> dict[str, Any]:
    """Charts by file name: ``forecast-<resource>`` (one panel per region: history, forecast,
    interval band, and the warning and critical thresholds as dashed red rules) and
    ``backtest-error`` (WAPE by lead time per method).

    Save them with :func:`dwcpkit.charts.save_all`.
    """
    import altair as alt

    from dwcpkit import charts

    out: dict[str, Any] = {}
    dash = alt.StrokeDash("kind:N", title=None, sort=["observed", "forecast"])
    for key, r in p.resources.items():
        hist = p.series.filter(pl.col("resource") == key)
        if hist.height == 0:
            continue
        fc = p.forecast.filter(pl.col("resource") == key)
        rules = pl.DataFrame({"y": [r.capacity * p.warn_pct / 100, r.capacity * p.critical_pct / 100],
                              "label": [f"warn {p.warn_pct:g} %", f"critical {p.critical_pct:g} %"]})
        # the y axis shows the thresholds, the history and the mean forecast; a wider interval is cut
        top = 1.15 * max(r.capacity * p.critical_pct / 100, float(hist["value"].max()), float(fc["mean"].max()))
        y = alt.Y("value:Q", title=r.unit, scale=alt.Scale(domain=[0, top], nice=False))
        panels = []
        for region in sorted(hist["region"].unique().to_list()):
            f = fc.filter(pl.col("region") == region)
            lines = pl.concat([
                hist.filter(pl.col("region") == region).select("timestamp", "value", pl.lit("observed").alias("kind")),
                f.select("timestamp", pl.col("mean").alias("value"), pl.lit("forecast").alias("kind")),
            ])
            title = f"{r.title}, {region} ({r.unit}): {p.method} forecast, {p.level:.0%} interval (cut at the top)"
            line = (charts.time_series(lines, title=title, y_title=r.unit, height=130)
                    .mark_line(clip=True).encode(y=y, strokeDash=dash))
            band = (alt.Chart(_naive_utc(f.select("timestamp", pl.col("lower").clip(upper_bound=top),
                                                  pl.col("upper").clip(upper_bound=top))))
                    .mark_area(opacity=0.2, clip=True)
                    .encode(x=alt.X("timestamp:T", scale=alt.Scale(type="utc")),
                            y=alt.Y("lower:Q", scale=alt.Scale(domain=[0, top], nice=False)), y2="upper:Q"))
            rule = (alt.Chart(rules).mark_rule(strokeDash=[6, 4], color="#cf222e")
                    .encode(y="y:Q", tooltip=["label:N", "y:Q"]))
            panels.append(alt.layer(band, line, rule))
        out[f"forecast-{key.replace('_', '-')}"] = charts.stack(panels)
    acc = p.accuracy_by_horizon.with_columns(pl.col("h").cast(pl.Float64))
    out["backtest-error"] = charts.line(
        acc, x="h", y="wape_pct", color="method", title="Backtest: error by lead time, all resources (WAPE, %)",
        x_title=f"lead time (steps of {p.step})", y_title="WAPE (%)")
    return out
