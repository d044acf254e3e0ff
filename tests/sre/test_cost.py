"""Cost / ROI maths, the cost file, sensitivity, and saving the charts."""

import doctest
import math

import pytest

from dwcpkit import charts
from dwcpkit.errors import ParameterError, ParseError, SourceError
from dwcpkit.sre import cost
from dwcpkit.sre.cost import Component, CostModel, Item


def simple(invest=2000.0, recurring=100.0, before=1000.0, after=600.0) -> CostModel:
    return CostModel((Component("infra", before, after),), (Item("build", invest),) if invest else (),
                     (Item("ops", recurring),) if recurring else ())


def npv_reference(investment, saving, months, annual_rate):
    """Plain loop: month-end savings discounted at the monthly rate equivalent to the annual rate."""
    rm = (1 + annual_rate) ** (1 / 12) - 1
    total = -investment
    for m in range(1, months + 1):
        total += saving / (1 + rm) ** m
    return total


def test_roi_by_hand():
    r = cost.roi(simple(), horizon_months=12, discount_rate=0.0)
    assert (r.gross_monthly_savings, r.recurring_monthly, r.net_monthly_savings) == (400.0, 100.0, 300.0)
    assert r.annual_net_savings == 3600.0
    assert r.payback_months == pytest.approx(2000 / 300)
    assert r.simple_roi_pct == pytest.approx((300 * 12 - 2000) / 2000 * 100)
    assert r.npv == pytest.approx(300 * 12 - 2000)
    assert r.discounted_payback_months == pytest.approx(2000 / 300)


@pytest.mark.parametrize("rate", [0.0, 0.08, 0.25])
def test_npv_matches_the_loop_and_monthly_rate_compounds_to_the_annual_one(rate):
    r = cost.roi(simple(), horizon_months=37, discount_rate=rate)
    assert r.npv == pytest.approx(npv_reference(2000, 300, 37, rate))
    assert (1 + cost.monthly_rate(rate)) ** 12 == pytest.approx(1 + rate)


def test_discounted_payback_is_where_npv_crosses_zero():
    m = cost.discounted_payback_months(5000, 300, 0.10)
    rm = cost.monthly_rate(0.10)
    assert -5000 + 300 * (1 - (1 + rm) ** -m) / rm == pytest.approx(0, abs=1e-6)
    assert m > 5000 / 300  # discounting delays it
    assert cost.discounted_payback_months(100_000, 300, 0.10) is None  # the savings' present value never gets there


def test_payback_edge_cases():
    assert cost.payback_months(0, 100) == 0.0
    assert cost.payback_months(1000, 0) is None
    assert cost.payback_months(1000, -50) is None
    never = cost.roi(simple(before=600, after=600), horizon_months=12, discount_rate=0.05)
    assert never.payback_months is None and never.discounted_payback_months is None
    assert never.npv < -2000  # investment lost and running costs on top
    assert "never" in never.headline()


def test_no_investment_means_no_roi_and_immediate_payback():
    r = cost.roi(simple(invest=0), horizon_months=12, discount_rate=0.08)
    assert r.simple_roi_pct is None and r.payback_months == 0.0
    assert math.isnan(r.value("simple_roi_pct"))
    assert "undefined" in r.headline()


def test_cash_flows_keep_one_off_investment_apart_from_monthly_flows():
    f = cost.cash_flows(simple(), 4)
    assert f.tolist() == [-2000.0, 300.0, 300.0, 300.0, 300.0]
    t = cost.cash_flow_table(simple(), horizon_months=4, discount_rate=0.0)
    assert t["cumulative"][-1] == pytest.approx(300 * 4 - 2000)
    assert t["cumulative_discounted"][-1] == pytest.approx(t["cumulative"][-1])


def test_default_costs_follow_the_report_and_label_assumptions():
    m = cost.load_costs()
    assert (m.monthly_before, m.monthly_after) == (57300.0, 26010.0)
    assert all(i.assumption for i in (*m.investment, *m.recurring))  # the report states neither
    assert not any(c.assumption for c in m.components)
    assert all(x.source for x in (*m.components, *m.investment, *m.recurring))
    assert (m.investment_total, m.recurring_total) == (83000.0, 7000.0)
    bare = m.without_assumptions()
    assert (bare.investment_total, bare.recurring_total) == (0.0, 0.0)
    r = cost.roi(bare, horizon_months=12, discount_rate=0.0)
    assert r.annual_net_savings == 375_480.0  # what the report's own monthly figure gives, not $509,420
    table = cost.inputs_table(m)
    assert table.height == 8 and table["assumption"].sum() == 7


def test_sensitivity_tornado():
    m = simple()
    s = cost.sensitivity(m, horizon_months=24, discount_rate=0.08, pct=10)
    base = cost.roi(m, horizon_months=24, discount_rate=0.08).npv
    assert s["base"].unique().to_list() == [pytest.approx(base)]
    assert s["swing"].to_list() == sorted(s["swing"].to_list(), reverse=True)
    assert set(s["input"]) == {"before: infra", "after: infra", "investment: build", "recurring: ops",
                               "discount rate (annual)", "horizon (months)"}
    after = s.filter(input="after: infra").row(0, named=True)
    assert after["low_input"] == pytest.approx(540) and after["high_input"] == pytest.approx(660)
    assert after["low"] > base > after["high"]  # a cheaper "after" raises the NPV
    expected = cost.roi(m.scaled("after: infra", 0.9), horizon_months=24, discount_rate=0.08).npv
    assert after["low"] == pytest.approx(expected)
    hor = s.filter(input="horizon (months)").row(0, named=True)
    assert (hor["low_input"], hor["high_input"]) == (22.0, 26.0)
    with pytest.raises(ParameterError):
        cost.sensitivity(m, pct=0)
    with pytest.raises(ParameterError):
        cost.sensitivity(m, metric="irr")


def test_sensitivity_of_payback_handles_never():
    m = simple(before=700, after=600)  # saving 100 − running 100 = 0
    s = cost.sensitivity(m, metric="payback_months", pct=20)
    rec = s.filter(input="recurring: ops").row(0, named=True)
    assert rec["low"] == pytest.approx(2000 / 20) and math.isnan(rec["high"])


@pytest.mark.parametrize("bad", [dict(horizon_months=0), dict(horizon_months=2.5), dict(discount_rate=-1.0),
                                 dict(discount_rate=float("nan"))])
def test_bad_parameters(bad):
    with pytest.raises(ParameterError):
        cost.roi(simple(), **{"horizon_months": 12, "discount_rate": 0.05, **bad})


def test_model_validation():
    with pytest.raises(ParameterError, match=">= 0"):
        simple(invest=-5)
    with pytest.raises(ParameterError, match="at least one component"):
        CostModel(())
    with pytest.raises(ParameterError, match="unknown input"):
        simple().scaled("bogus: x", 2)


def _yaml(tmp_path, text):
    p = tmp_path / "costs.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_one_off_risk_values_are_refused(tmp_path):
    p = _yaml(tmp_path, "components:\n  - {name: a, before: 10, after: 5}\none_off_risk:\n  - {name: outage, amount: 300300}\n")
    with pytest.raises(ParseError, match="not cash flows"):
        cost.load_costs(p)


@pytest.mark.parametrize("text, message", [
    ("components: []\n", "no components"),
    ("components:\n  - {name: a, before: 10}\n", "needs name, before and after"),
    ("components:\n  - {name: a, before: 10, after: -1}\n", ">= 0"),
    ("components:\n  - {name: a, before: '$10', after: 1}\n", "not a number"),
    ("components:\n  - {name: a, before: 10, after: 1}\ninvestment:\n  - {name: x}\n", "needs name and amount"),
    ("components: [\n", "not valid YAML"),
])
def test_bad_cost_files(tmp_path, text, message):
    with pytest.raises(ParseError, match=message):
        cost.load_costs(_yaml(tmp_path, text))


def test_missing_cost_file(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        cost.load_costs(tmp_path / "none.yaml")


def test_figures_save_as_svg_and_png(tmp_path):
    m = cost.load_costs()
    r = cost.roi(m)
    figs = cost.figures(r, cost.sensitivity(m), cost.cash_flow_table(m))
    assert set(figs) == {"cash-flow", "sensitivity"}
    assert charts.save_all(figs, "") == [] and charts.save_all(figs, None) == []
    assert list(tmp_path.iterdir()) == []
    paths = charts.save_all(figs, tmp_path / "figures")
    names = sorted(p.name for p in paths)
    assert names == ["cash-flow.png", "cash-flow.svg", "sensitivity.png", "sensitivity.svg"]
    svg = (tmp_path / "figures" / "sensitivity.svg").read_text()
    assert svg.startswith("<svg") and "before: infrastructure (total)" in svg
    assert (tmp_path / "figures" / "cash-flow.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    spec = figs["sensitivity"].to_dict()
    assert spec["layer"][0]["encoding"]["y"]["sort"][0] == "before: infrastructure (total)"  # longest bar on top


def test_docstring_examples():
    assert doctest.testmod(cost).failed == 0
