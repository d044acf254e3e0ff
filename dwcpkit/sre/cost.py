"""Cost / ROI of a change: savings, payback, simple ROI, NPV and a one-at-a-time sensitivity.

The model (:class:`CostModel`) has exactly three kinds of money, each with its source:

- ``components``: monthly cost by component *before* and *after* the change (recurring);
- ``investment``: one-time costs, paid at month 0;
- ``recurring``: monthly costs the change adds, netted against the savings.

One-off risk values (a risk-adjusted expected outage cost, "risk mitigation") are not cash flows
and have no place in it: :func:`load_costs` rejects such a section instead of adding it to the
monthly flows, the error the original made (``cr-ml-savings-recurring-only`` in the claims audit).

Definitions (``I`` investment, ``S`` net monthly saving = Σ before − Σ after − Σ recurring,
``H`` horizon in months, ``r`` annual discount rate):

- monthly rate ``r_m = (1 + r) ** (1/12) − 1`` (the monthly rate equivalent to ``r`` a year);
- cash flows: ``−I`` at month 0, ``+S`` at the end of each month ``1..H``;
- NPV ``= −I + Σ_{m=1..H} S / (1 + r_m) ** m``;
- payback ``= I / S`` months (undiscounted, fractional); 0 with no investment; ``None`` (never)
  when ``S <= 0 < I``;
- discounted payback: the ``m`` at which the discounted savings repay ``I``,
  ``−ln(1 − I r_m / S) / ln(1 + r_m)``; ``None`` when they never do (``I r_m >= S``);
- simple ROI ``= (S H − I) / I`` in percent over the horizon, undiscounted; ``None`` with no
  investment (nothing to return on).

Example
-------
>>> model = CostModel(components=(Component("infra", before=1000, after=600),),
...                   investment=(Item("build", 2000),), recurring=(Item("ops", 100),))
>>> r = roi(model, horizon_months=12, discount_rate=0.0)
>>> r.net_monthly_savings, r.payback_months, r.simple_roi_pct, r.npv
(300.0, 6.666666666666667, 80.0, 1600.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from dwcpkit import _paths
from dwcpkit._yamlio import read_yaml
from dwcpkit.errors import ParameterError, ParseError, SourceError

__all__ = [
    "Component",
    "Item",
    "CostModel",
    "RoiResult",
    "Metric",
    "load_costs",
    "inputs_table",
    "monthly_rate",
    "cash_flows",
    "npv",
    "payback_months",
    "discounted_payback_months",
    "roi",
    "cash_flow_table",
    "sensitivity",
    "figures",
]

Metric = Literal["npv", "payback_months", "simple_roi_pct", "annual_net_savings"]
_METRICS = ("npv", "payback_months", "simple_roi_pct", "annual_net_savings")
_SECTIONS = ("currency", "components", "investment", "recurring")


@dataclass(frozen=True)
class Component:
    """Monthly cost of one component before and after the change."""

    name: str
    before: float
    after: float
    source: str = ""
    assumption: bool = False
    note: str = ""


@dataclass(frozen=True)
class Item:
    """One cost item: a one-time investment (USD) or a recurring cost (USD/month)."""

    name: str
    amount: float
    source: str = ""
    assumption: bool = False
    note: str = ""


def _check_amount(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{what}: {value!r} is not a number (write 57300, not '$57,300')")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ParameterError(f"{what}: {value!r} must be a finite amount >= 0 (a saving is before > after)")
    return v


@dataclass(frozen=True)
class CostModel:
    """Before/after monthly costs by component, one-time investment and recurring costs."""

    components: tuple[Component, ...]
    investment: tuple[Item, ...] = ()
    recurring: tuple[Item, ...] = ()
    currency: str = "USD"
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.components:
            raise ParameterError("a cost model needs at least one component with its before/after monthly cost")
        for c in self.components:
            _check_amount(c.before, f"component {c.name!r} before")
            _check_amount(c.after, f"component {c.name!r} after")
        for kind, items in (("investment", self.investment), ("recurring", self.recurring)):
            for i in items:
                _check_amount(i.amount, f"{kind} item {i.name!r}")

    @property
    def monthly_before(self) -> float:
        """Σ monthly cost before the change."""
        return float(sum(c.before for c in self.components))

    @property
    def monthly_after(self) -> float:
        """Σ monthly cost after the change."""
        return float(sum(c.after for c in self.components))

    @property
    def investment_total(self) -> float:
        """Σ one-time investment."""
        return float(sum(i.amount for i in self.investment))

    @property
    def recurring_total(self) -> float:
        """Σ recurring monthly cost added by the change."""
        return float(sum(i.amount for i in self.recurring))

    @property
    def net_monthly_savings(self) -> float:
        """Before − after − recurring, per month."""
        return self.monthly_before - self.monthly_after - self.recurring_total

    @property
    def has_assumptions(self) -> bool:
        """True when any item is marked as an assumption (not stated by the source)."""
        return any(x.assumption for x in (*self.components, *self.investment, *self.recurring))

    def without_assumptions(self) -> CostModel:
        """The model with every item marked ``assumption`` left out (components keep their place)."""
        comps = tuple(c for c in self.components if not c.assumption)
        if not comps:
            raise ParameterError("every component is an assumption: nothing would be left of the model")
        return replace(self, components=comps, investment=tuple(i for i in self.investment if not i.assumption),
                       recurring=tuple(i for i in self.recurring if not i.assumption))

    def inputs(self) -> list[tuple[str, float]]:
        """``(key, value)`` of every scalar input, e.g. ``("after: infrastructure", 26010.0)``."""
        out = []
        for c in self.components:
            out += [(f"before: {c.name}", c.before), (f"after: {c.name}", c.after)]
        out += [(f"investment: {i.name}", i.amount) for i in self.investment]
        out += [(f"recurring: {i.name}", i.amount) for i in self.recurring]
        return out

    def scaled(self, key: str, factor: float) -> CostModel:
        """A copy with the input ``key`` (see :meth:`inputs`) multiplied by ``factor``."""
        kind, _, name = key.partition(": ")

        def items(seq: tuple[Item, ...]) -> tuple[Item, ...]:
            return tuple(replace(i, amount=i.amount * factor) if i.name == name else i for i in seq)

        if kind in ("before", "after"):
            comps = tuple(replace(c, **{kind: getattr(c, kind) * factor}) if c.name == name else c for c in self.components)
            return replace(self, components=comps)
        if kind == "investment":
            return replace(self, investment=items(self.investment))
        if kind == "recurring":
            return replace(self, recurring=items(self.recurring))
        raise ParameterError(f"unknown input {key!r}; inputs: {[k for k, _ in self.inputs()]}")


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def _items(raw: Any, kind: str, path: Path) -> tuple[Item, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ParseError(f"'{kind}' must be a list of items with name and amount", path=str(path))
    out = []
    for n, r in enumerate(raw, 1):
        if not isinstance(r, dict) or "name" not in r or "amount" not in r:
            raise ParseError(f"{kind} item #{n}: needs name and amount", path=str(path))
        try:
            out.append(Item(str(r["name"]), _check_amount(r["amount"], f"{kind} item {r['name']!r}"),
                            str(r.get("source", "")), bool(r.get("assumption", False)), str(r.get("note", ""))))
        except ParameterError as exc:
            raise ParseError(str(exc), path=str(path)) from None
    return tuple(out)


def load_costs(path: str | Path | None = None) -> CostModel:
    """Read a cost model from YAML (default / ``"sample"``: ``data/costs.yaml``).

    The file has ``currency``, ``components`` (name, before, after), ``investment`` and
    ``recurring`` (name, amount); every item may carry ``source``, ``assumption`` and ``note``.
    Any other section is an error — in particular one-off risk values, which are not cash flows.

    >>> m = load_costs()
    >>> m.monthly_before, m.monthly_after
    (57300.0, 26010.0)
    """
    p = _paths.data_dir() / "costs.yaml" if path is None or str(path) in ("", "sample") else Path(path)
    if not p.is_file():
        raise SourceError(f"cost file {str(p)!r} not found; pass 'sample' for the embedded costs.yaml or a path to a YAML file")
    data = read_yaml(p, what="cost")
    extra = sorted(set(data) - set(_SECTIONS))
    if extra:
        risky = [k for k in extra if any(w in k.lower() for w in ("risk", "one_off", "oneoff", "expected"))]
        hint = (f" {risky} look like one-off risk values: those are not cash flows, so they cannot enter a "
                "savings/payback/NPV model; leave them out (show them separately if you must)") if risky else ""
        raise ParseError(f"unknown sections {extra}; allowed: {', '.join(_SECTIONS)}.{hint}", path=str(p))
    comps = []
    for n, c in enumerate(data.get("components") or [], 1):
        if not isinstance(c, dict) or not {"name", "before", "after"} <= set(c):
            raise ParseError(f"component #{n}: needs name, before and after (monthly costs)", path=str(p))
        try:
            comps.append(Component(str(c["name"]), _check_amount(c["before"], f"component {c['name']!r} before"),
                                   _check_amount(c["after"], f"component {c['name']!r} after"),
                                   str(c.get("source", "")), bool(c.get("assumption", False)), str(c.get("note", ""))))
        except ParameterError as exc:
            raise ParseError(str(exc), path=str(p)) from None
    if not comps:
        raise ParseError("no components: list at least one with its before/after monthly cost", path=str(p))
    return CostModel(tuple(comps), _items(data.get("investment"), "investment", p),
                     _items(data.get("recurring"), "recurring", p), str(data.get("currency", "USD")), p)


def inputs_table(model: CostModel) -> pl.DataFrame:
    """Every input with its section, amounts, source and whether it is an assumption.

    >>> inputs_table(load_costs()).columns
    ['section', 'name', 'before', 'after', 'amount', 'assumption', 'source', 'note']
    """
    rows = [{"section": "component (per month)", "name": c.name, "before": c.before, "after": c.after, "amount": None,
             "assumption": c.assumption, "source": c.source, "note": c.note} for c in model.components]
    rows += [{"section": "investment (one-time)", "name": i.name, "before": None, "after": None, "amount": i.amount,
              "assumption": i.assumption, "source": i.source, "note": i.note} for i in model.investment]
    rows += [{"section": "recurring (per month)", "name": i.name, "before": None, "after": None, "amount": i.amount,
              "assumption": i.assumption, "source": i.source, "note": i.note} for i in model.recurring]
    return pl.DataFrame(rows, schema={"section": pl.String, "name": pl.String, "before": pl.Float64, "after": pl.Float64,
                                      "amount": pl.Float64, "assumption": pl.Boolean, "source": pl.String,
                                      "note": pl.String})


# --------------------------------------------------------------------------------------------
# the maths
# --------------------------------------------------------------------------------------------


def _check_rate(rate: float) -> float:
    r = float(rate)
    if not math.isfinite(r) or r <= -1:
        raise ParameterError(f"discount_rate={rate!r} must be an annual rate > -1 as a fraction (0.08 = 8 %)")
    return r


def _check_horizon(h: int) -> int:
    if isinstance(h, bool) or int(h) != h or int(h) < 1:
        raise ParameterError(f"horizon_months={h!r} must be a whole number of months >= 1")
    return int(h)


def monthly_rate(discount_rate: float) -> float:
    """Monthly rate equivalent to an annual ``discount_rate``: ``(1 + r) ** (1/12) − 1``.

    >>> round(monthly_rate(0.08), 6)
    0.006434
    """
    return (1.0 + _check_rate(discount_rate)) ** (1.0 / 12.0) - 1.0


def cash_flows(model: CostModel, horizon_months: int) -> np.ndarray:
    """Monthly cash flows ``[−I, S, S, ..., S]`` (length ``horizon_months + 1``, month 0 first).

    >>> cash_flows(CostModel((Component("x", 10, 4),), (Item("i", 9),)), 3).tolist()
    [-9.0, 6.0, 6.0, 6.0]
    """
    h = _check_horizon(horizon_months)
    flows = np.full(h + 1, model.net_monthly_savings, dtype=float)
    flows[0] = -model.investment_total
    return flows


def npv(flows: Sequence[float] | np.ndarray, discount_rate: float) -> float:
    """Net present value of monthly ``flows`` (``flows[m]`` at the end of month ``m``; month 0 undiscounted).

    >>> npv([-100.0, 60.0, 60.0], 0.0)
    20.0
    """
    f = np.asarray(flows, dtype=float)
    disc = (1.0 + monthly_rate(discount_rate)) ** -np.arange(f.size, dtype=float)
    return float(f @ disc)


def payback_months(investment: float, net_monthly: float) -> float | None:
    """Undiscounted payback ``investment / net_monthly`` in months; 0 without investment, ``None`` when never.

    >>> payback_months(83000, 24290), payback_months(1000, -5), payback_months(0, 10)
    (3.417044051049815, None, 0.0)
    """
    if investment <= 0:
        return 0.0
    if net_monthly <= 0:
        return None
    return float(investment) / float(net_monthly)


def discounted_payback_months(investment: float, net_monthly: float, discount_rate: float) -> float | None:
    """Months until the discounted savings repay ``investment``; ``None`` when they never do.

    Solves ``investment = net_monthly × (1 − (1 + r_m) ** −m) / r_m`` for ``m`` (continuous in ``m``).

    >>> round(discounted_payback_months(1000, 100, 0.0), 6)
    10.0
    """
    rm = monthly_rate(discount_rate)
    if investment <= 0:
        return 0.0
    if net_monthly <= 0:
        return None
    if rm == 0:
        return float(investment) / float(net_monthly)
    x = 1.0 - investment * rm / net_monthly
    if x <= 0:
        return None
    return float(-math.log(x) / math.log1p(rm))


@dataclass(frozen=True)
class RoiResult:
    """Every output of :func:`roi` (amounts in the model's currency)."""

    monthly_before: float
    monthly_after: float
    gross_monthly_savings: float
    recurring_monthly: float
    net_monthly_savings: float
    annual_net_savings: float
    investment: float
    horizon_months: int
    discount_rate: float
    monthly_rate: float
    total_net_savings: float
    payback_months: float | None
    discounted_payback_months: float | None
    simple_roi_pct: float | None
    npv: float
    currency: str = "USD"

    def value(self, metric: Metric) -> float:
        """A metric as a float (``nan`` for a ``None`` payback or ROI)."""
        v = getattr(self, metric)
        return float("nan") if v is None else float(v)

    def headline(self) -> str:
        """One line: net saving, payback, simple ROI and NPV.

        >>> roi(load_costs(), horizon_months=60, discount_rate=0.08).headline()
        'net saving 24,290 USD/month; payback 3.4 months; simple ROI 1,656 % over 60 months; NPV 1,122,875 USD at 8 %/year'
        """
        c = self.currency
        pay = "never" if self.payback_months is None else f"{self.payback_months:.1f} months"
        roi_ = "undefined (no investment)" if self.simple_roi_pct is None else f"{self.simple_roi_pct:,.0f} %"
        return (f"net saving {self.net_monthly_savings:,.0f} {c}/month; payback {pay}; simple ROI {roi_} over "
                f"{self.horizon_months} months; NPV {self.npv:,.0f} {c} at {self.discount_rate * 100:g} %/year")

    def table(self) -> pl.DataFrame:
        """One row per output: ``quantity, value, unit, definition``."""
        c = self.currency
        never = "never" if self.net_monthly_savings <= 0 else None
        rows = [
            ("monthly cost before", self.monthly_before, f"{c}/month", "Σ components before"),
            ("monthly cost after", self.monthly_after, f"{c}/month", "Σ components after"),
            ("gross monthly savings", self.gross_monthly_savings, f"{c}/month", "before − after"),
            ("recurring costs added", self.recurring_monthly, f"{c}/month", "Σ recurring items"),
            ("net monthly savings", self.net_monthly_savings, f"{c}/month", "gross − recurring"),
            ("annual net savings", self.annual_net_savings, f"{c}/year", "net monthly × 12"),
            ("one-time investment", self.investment, c, "Σ investment items, month 0"),
            (f"net savings over {self.horizon_months} months", self.total_net_savings, c, "net monthly × horizon (undiscounted)"),
            ("payback", self.payback_months, "months", "investment / net monthly" + (f" ({never})" if never and self.payback_months is None else "")),
            ("discounted payback", self.discounted_payback_months, "months", "month when discounted savings repay the investment"),
            ("simple ROI", self.simple_roi_pct, "%", "(net savings over horizon − investment) / investment" +
             (" (no investment: undefined)" if self.simple_roi_pct is None else "")),
            (f"NPV at {self.discount_rate:.2%} a year", self.npv, c, f"monthly discounting at {self.monthly_rate:.4%}/month"),
        ]
        return pl.DataFrame(rows, schema={"quantity": pl.String, "value": pl.Float64, "unit": pl.String,
                                          "definition": pl.String}, orient="row")


def roi(model: CostModel, *, horizon_months: int = 60, discount_rate: float = 0.08) -> RoiResult:
    """Savings, payback, simple ROI and NPV of ``model`` over ``horizon_months`` (module doc for definitions).

    Parameters
    ----------
    model
        From :func:`load_costs` or built directly.
    horizon_months
        Months of savings counted (the completion report's "5-year" figure is 60).
    discount_rate
        Annual discount rate as a fraction (``0.08`` = 8 %), applied monthly.

    Example
    -------
    >>> r = roi(load_costs(), horizon_months=60, discount_rate=0.08)
    >>> r.net_monthly_savings, round(r.payback_months, 2)
    (24290.0, 3.42)
    """
    h = _check_horizon(horizon_months)
    rate = _check_rate(discount_rate)
    inv, net = model.investment_total, model.net_monthly_savings
    total = net * h
    return RoiResult(
        monthly_before=model.monthly_before,
        monthly_after=model.monthly_after,
        gross_monthly_savings=model.monthly_before - model.monthly_after,
        recurring_monthly=model.recurring_total,
        net_monthly_savings=net,
        annual_net_savings=net * 12.0,
        investment=inv,
        horizon_months=h,
        discount_rate=rate,
        monthly_rate=monthly_rate(rate),
        total_net_savings=total,
        payback_months=payback_months(inv, net),
        discounted_payback_months=discounted_payback_months(inv, net, rate),
        simple_roi_pct=None if inv <= 0 else (total - inv) / inv * 100.0,
        npv=npv(cash_flows(model, h), rate),
        currency=model.currency,
    )


def cash_flow_table(model: CostModel, *, horizon_months: int = 60, discount_rate: float = 0.08) -> pl.DataFrame:
    """Month-by-month flows: ``month, cash_flow, cumulative, discounted, cumulative_discounted``.

    >>> t = cash_flow_table(CostModel((Component("x", 10, 4),), (Item("i", 9),)), horizon_months=2, discount_rate=0)
    >>> t["cumulative"].to_list()
    [-9.0, -3.0, 3.0]
    """
    f = cash_flows(model, horizon_months)
    d = f * (1.0 + monthly_rate(discount_rate)) ** -np.arange(f.size, dtype=float)
    return pl.DataFrame({"month": np.arange(f.size), "cash_flow": f, "cumulative": np.cumsum(f),
                         "discounted": d, "cumulative_discounted": np.cumsum(d)})


def sensitivity(
    model: CostModel,
    *,
    horizon_months: int = 60,
    discount_rate: float = 0.08,
    pct: float = 20.0,
    metric: Metric = "npv",
) -> pl.DataFrame:
    """One-at-a-time sensitivity of ``metric`` to each input moved by ``±pct`` percent (a tornado).

    Inputs: every component's before and after cost, every investment and recurring item, the
    discount rate and the horizon (rounded to whole months, at least 1). Each is moved alone,
    everything else at its base value.

    Returns
    -------
    polars.DataFrame
        ``input, base_input, low_input, high_input, base, low, high, swing`` sorted by ``swing``
        (``|high − low|``) descending; ``low``/``high`` are the metric with the input lowered /
        raised (NaN where the metric is undefined, e.g. a payback that never comes).

    Example
    -------
    >>> s = sensitivity(load_costs(), pct=20)
    >>> s["input"][0]
    'before: infrastructure (total)'
    """
    if metric not in _METRICS:
        raise ParameterError(f"metric={metric!r}; use one of {', '.join(_METRICS)}")
    p = float(pct)
    if not (0 < p < 100):
        raise ParameterError(f"pct={pct!r} must be a percentage between 0 and 100 (exclusive)")
    h = _check_horizon(horizon_months)
    rate = _check_rate(discount_rate)
    lo_f, hi_f = 1 - p / 100, 1 + p / 100
    base = roi(model, horizon_months=h, discount_rate=rate).value(metric)
    rows = []
    for key, val in model.inputs():
        lo = roi(model.scaled(key, lo_f), horizon_months=h, discount_rate=rate).value(metric)
        hi = roi(model.scaled(key, hi_f), horizon_months=h, discount_rate=rate).value(metric)
        rows.append((key, val, val * lo_f, val * hi_f, lo, hi))
    rows.append(("discount rate (annual)", rate, rate * lo_f, rate * hi_f,
                 roi(model, horizon_months=h, discount_rate=rate * lo_f).value(metric),
                 roi(model, horizon_months=h, discount_rate=rate * hi_f).value(metric)))
    h_lo, h_hi = max(1, round(h * lo_f)), max(1, round(h * hi_f))
    rows.append(("horizon (months)", float(h), float(h_lo), float(h_hi),
                 roi(model, horizon_months=h_lo, discount_rate=rate).value(metric),
                 roi(model, horizon_months=h_hi, discount_rate=rate).value(metric)))
    out = pl.DataFrame(rows, schema={"input": pl.String, "base_input": pl.Float64, "low_input": pl.Float64,
                                     "high_input": pl.Float64, "low": pl.Float64, "high": pl.Float64}, orient="row")
    return (out.with_columns(pl.lit(base, dtype=pl.Float64).alias("base"),
                             (pl.col("high") - pl.col("low")).abs().fill_nan(None).alias("swing"))
            .select("input", "base_input", "low_input", "high_input", "base", "low", "high", "swing")
            .sort("swing", descending=True, nulls_last=True, maintain_order=True))


_METRIC_TITLES = {"npv": "NPV", "payback_months": "payback (months)", "simple_roi_pct": "simple ROI (%)",
                  "annual_net_savings": "annual net savings"}


def figures(result: RoiResult, sens: pl.DataFrame, flows: pl.DataFrame, *, pct: float = 20.0,
            metric: Metric = "npv") -> dict[str, Any]:
    """The analysis' charts by file name: ``cash-flow`` (cumulative, plain and discounted) and ``sensitivity``.

    Save them with :func:`dwcpkit.charts.save_all` (SVG and PNG).
    """
    from dwcpkit import charts

    c = result.currency
    long = pl.concat([
        flows.select("month", pl.col("cumulative").alias("value"), pl.lit("undiscounted").alias("series")),
        flows.select("month", pl.col("cumulative_discounted").alias("value"),
                     pl.lit(f"discounted at {result.discount_rate:.1%}/yr").alias("series")),
    ])
    unit = c if metric in ("npv",) else f"{c}/year" if metric == "annual_net_savings" else ""
    title = _METRIC_TITLES[metric] + (f" ({unit})" if unit else "")
    return {
        "cash-flow": charts.line(long, x="month", y="value", color="series", reference=0.0,
                                 title=f"Cumulative net cash flow ({c})", x_title="month",
                                 y_title=f"cumulative cash flow ({c})"),
        "sensitivity": charts.tornado(sens.drop_nulls("swing") if sens["swing"].null_count() < sens.height else sens,
                                      base=result.value(metric), label="input",
                                      title=f"Sensitivity of {title} to each input ±{pct:g} %",
                                      x_title=title, low_name=f"input −{pct:g} %", high_name=f"input +{pct:g} %"),
    }
