"""Claims file and audit: loading, expressions, the four check kinds, the published findings."""

import doctest
import math
import re
from pathlib import Path

import pytest

from dwcpkit import _paths
from dwcpkit.errors import ParameterError, ParseError, SourceError
from dwcpkit.sre import claims as C

REPORT = _paths.project_root().parent / "shared" / "reference" / "DWCP-V3-PHASE-6-COMPLETION-REPORT.txt"


@pytest.fixture(scope="module")
def book():
    return C.load_claims()


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "claims.yaml"
    p.write_text(text, encoding="utf-8")
    return p


TINY = """
documents:
  D: {path: doc.md}
claims:
  a: {value: 100, unit: USD, doc: D, quote: "a is 100"}
  b: {value: 40, unit: USD, doc: D, quote: "b is 40"}
  c: {value: 60, unit: USD, doc: D, quote: "c is 60"}
  d: {value: 61, unit: USD, doc: D, quote: "d is 61"}
checks:
{checks}
"""


def _tiny(tmp_path, checks: str) -> C.ClaimBook:
    return C.load_claims(_write(tmp_path, TINY.replace("{checks}", checks)))


# ------------------------------------------------------------------ the shipped file


def test_the_brief_example_reads_exactly(book):
    row = C.audit(book).filter(check="cr-annual-savings").row(0, named=True)
    assert row["arithmetic"] == "31,290 × 12 = 375,480 vs claimed 509,420: −26.3 %"
    assert row["status"] == "inconsistent"
    assert row["recomputed"] == pytest.approx(375_480)
    assert row["delta_pct"] == pytest.approx((375_480 - 509_420) / 509_420 * 100)
    assert row["source"].startswith("docs/DWCP-V3-PHASE-6-COMPLETION-REPORT.md:222 (Cost Impact")


def test_cost_findings_of_the_completion_report(book):
    a = C.audit(book, group="cost")
    status = dict(zip(a["check"], a["status"]))
    assert status["cr-monthly-savings"] == "consistent"  # 57,300 − 26,010 = 31,290
    assert status["cr-cost-reduction"] == "consistent"  # 54.6 % ≈ 55 % (−0.7 %)
    assert status["cr-five-year-from-annual"] == "consistent"  # off by $300 only
    for bad in ("cr-annual-savings", "cr-five-year-from-monthly", "cr-five-year-headline", "cr-ml-savings-vs-total",
                "cr-ml-savings-double-count", "cr-ml-savings-recurring-only", "ml-payback", "cap-roi-exec"):
        assert status[bad] == "inconsistent", bad
    assert status["cr-payback"] == "unsupported"
    assert "90,741" in a.filter(check="cr-payback")["arithmetic"][0]  # the investment 2.9 months would imply
    s = C.summarize_audit(a)
    assert s.level == "WARN" and s.label.startswith(f"{len(s.claims_inconsistent)} claims inconsistent")
    assert s.unsupported == 1 and s.checked == a.height
    assert "cr_annual_savings" in s.claims_inconsistent


def test_every_completion_report_cost_figure_is_rederived_or_used(book):
    used = set()
    for ch in book.checks:
        used.add(ch.claim)
        for expr in (ch.derive, ch.claimed, ch.implied):
            if expr:
                used.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr))
    for h in book.headline:
        used.update(x for x in (h.baseline, h.v3, h.change) if x)
    cr_cost = ["cr_infra_before", "cr_infra_after", "cr_monthly_savings", "cr_cost_reduction_pct", "cr_annual_savings",
               "cr_payback_months", "cr_five_year_savings", "cr_five_year_headline", "cr_cost_target_pct",
               "cr_cost_vs_target_pct", "cr_ml_monthly_savings", "cr_ml_annual_roi_pct"]
    assert {c.id for c in book.claims.values() if c.doc == "CR" and c.unit.startswith(("USD", "months"))} <= set(cr_cost)
    assert [c for c in cr_cost if c not in used] == []
    checked = {ch.claim for ch in book.checks if ch.group == "cost"}
    assert set(cr_cost) - checked == {"cr_infra_before", "cr_infra_after", "cr_cost_target_pct"}  # inputs, not results
    assert [c for c in book.claims if c not in used] == []  # nothing listed and then ignored


def _spellings(v: float) -> set[str]:
    out = {f"{v:,.0f}", f"{v:.0f}", repr(v), f"{v:g}", f"{abs(v):g}"}
    if v >= 1e6:
        out.add(f"{v / 1e6:g}M")
    if v >= 1e3:
        out.add(f"{v / 1e3:g}K")
    return out


def test_every_quote_contains_its_value(book):
    missing = [(c.id, c.value, c.quote) for c in book.claims.values()
               if not any(s in c.quote for s in _spellings(c.value))]
    assert missing == []


@pytest.mark.skipif(not REPORT.is_file(), reason="reference copy of the completion report lives outside the repository")
def test_line_numbers_point_at_the_quote_in_the_report(book):
    lines = REPORT.read_text(encoding="utf-8").splitlines()
    cr = [c for c in book.claims.values() if c.doc == "CR"]
    assert cr
    for c in cr:
        assert c.line is not None, c.id
        assert c.quote.strip() in lines[c.line - 1], (c.id, c.line, lines[c.line - 1])


def test_headline_table(book):
    h = C.headline_table(book)
    assert h["metric"].to_list() == ["p99_latency", "error_rate", "throughput", "availability", "bandwidth"]
    row = h.row(0, named=True)
    assert (row["baseline_claimed"], row["v3_claimed"], row["change_claimed_pct"], row["unit"]) == (180, 43, -76, "ms")
    assert h.filter(metric="availability")["change_claimed_pct"][0] is None


def test_performance_group_flags_the_two_availabilities(book):
    a = C.audit(book, group="performance")
    bad = a.filter(a["status"] != "consistent")
    assert bad["check"].to_list() == ["cr-availability-agent3"]
    assert bad["arithmetic"][0] == "100 − 99.994 = 0.006 vs claimed 100 − 99.999 = 0.001: +500.0 %"


def test_tolerance_moves_the_line(book):
    def status(tol):
        return C.audit(book, tolerance_pct=tol).filter(check="cr-cost-reduction")["status"][0]

    assert status(1.0) == "consistent" and status(0.5) == "inconsistent"  # 54.61 vs 55: −0.71 %
    with pytest.raises(ParameterError, match="tolerance"):
        C.audit(book, tolerance_pct=-1)
    with pytest.raises(ParameterError, match="groups in the claims file"):
        C.audit(book, group="nonsense")


def test_claims_table_and_unknown_id(book):
    t = C.claims_table(book, ["cr_infra_before", "cr_infra_after"])
    assert t["value"].to_list() == [57300, 26010]
    with pytest.raises(ParameterError, match="did you mean cr_infra_before"):
        C.claims_table(book, ["cr_infra_befor"])


# ------------------------------------------------------------------ kinds and statuses


def test_check_kinds(tmp_path):
    b = _tiny(tmp_path, """
  - {id: eq-ok, claim: c, derive: "a - b"}
  - {id: eq-bad, claim: d, derive: "a - b", note: "61 vs 60"}
  - {id: floor-ok, claim: c, kind: claim_is_lower_bound, derive: "a"}
  - {id: floor-bad, claim: a, kind: claim_is_lower_bound, derive: "c"}
  - {id: atleast-ok, claim: a, kind: claim_at_least_derived, derive: "b + c"}
  - {id: atleast-bad, claim: b, kind: claim_at_least_derived, derive: "c"}
  - {id: atmost-ok, claim: b, kind: claim_at_most_derived, derive: "a"}
  - {id: atmost-bad, claim: a, kind: claim_at_most_derived, derive: "c"}
  - {id: none, claim: a, kind: unsupported, implied: "b * 2"}
""")
    a = C.audit(b)
    got = dict(zip(a["check"], a["status"]))
    assert got == {"eq-ok": "consistent", "eq-bad": "inconsistent", "floor-ok": "consistent", "floor-bad": "inconsistent",
                   "atleast-ok": "consistent", "atleast-bad": "inconsistent", "atmost-ok": "consistent",
                   "atmost-bad": "inconsistent", "none": "unsupported"}
    assert C.audit(b, tolerance_pct=2.0).filter(check="eq-bad")["status"][0] == "consistent"  # 1.6 % off
    none = a.filter(check="none").row(0, named=True)
    assert none["recomputed"] is None and none["delta_pct"] is None and "80" in none["arithmetic"]


def test_summary_ok_only_when_everything_holds(tmp_path):
    ok = C.summarize_audit(C.audit(_tiny(tmp_path, '  - {id: x, claim: c, derive: "a - b"}')))
    assert (ok.level, ok.label, ok.inconsistent) == ("OK", "0 claims inconsistent", 0)
    uns = C.summarize_audit(C.audit(_tiny(tmp_path, "  - {id: x, claim: c, kind: unsupported}")))
    assert uns.level == "WARN" and uns.label.endswith("1 unsupported")


# ------------------------------------------------------------------ expressions


def test_evaluate_and_render_precedence():
    v = {"a": 10.0, "b": 4.0, "c": 1.0}
    assert C.evaluate("a - (b - c)", v) == 7.0
    assert C.render("a - (b - c)", v) == "10 − (4 − 1)"
    assert C.render("(a - b) - c", v) == "10 − 4 − 1"
    assert C.render("a / (b * c)", v) == "10 / (4 × 1)"
    assert C.render("-a + b") == "−a + b"
    assert C.evaluate("a / 0", v) == math.inf


@pytest.mark.parametrize("expr", ["__import__('os')", "a ** 2", "a.b", "a if b else c", "[a]", "'x'"])
def test_expressions_allow_arithmetic_only(expr):
    with pytest.raises(ParameterError):
        C.evaluate(expr, {"a": 1.0, "b": 2.0, "c": 3.0})


def test_number_and_delta_formats():
    assert C.fmt_number(1_877_400.0) == "1,877,400"
    assert C.fmt_number(0.13849) == "0.138"
    assert C.fmt_number(-68.2692) == "−68.27"
    assert C.fmt_number(0.00087, exact=True) == "0.00087"
    assert C.fmt_number(float("nan")) == "n/a"
    assert C.fmt_delta(500.0) == "+500.0 %" and C.fmt_delta(-0.0123) == "−0.01 %" and C.fmt_delta(None) == "n/a"


# ------------------------------------------------------------------ loading errors


def test_missing_file_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        C.load_claims(tmp_path / "nope.yaml")


def test_yaml_syntax_error_has_a_line(tmp_path):
    with pytest.raises(ParseError) as e:
        C.load_claims(_write(tmp_path, "claims:\n  a: {value: 1\n  b: 2\n"))
    assert e.value.line is not None and str(tmp_path) in str(e.value)


@pytest.mark.parametrize("checks, message", [
    ('  - {id: x, claim: c, derive: "a - bb"}', r"unknown claim id 'bb'.*did you mean b\?"),
    ('  - {id: x, claim: zz, derive: "a"}', "unknown claim id 'zz'"),
    ('  - {id: x, claim: c, kind: roughly, derive: "a"}', "kind 'roughly'"),
    ('  - {id: x, claim: c}', "needs a 'derive'"),
    ('  - {id: x, claim: c, derive: "a ** 2"}', "not allowed"),
    ('  - {id: x, claim: c, derive: "a"}\n  - {id: x, claim: c, derive: "a"}', "appears twice"),
])
def test_bad_checks_fail_at_load_naming_the_check(tmp_path, checks, message):
    with pytest.raises(ParseError, match=message):
        _tiny(tmp_path, checks)


def test_unquoted_commas_in_a_flow_mapping_are_caught(tmp_path):
    text = 'claims:\n  a: {value: 1, unit: USD, doc: D, section: Cost (lines 17, 359), quote: q}\n'
    with pytest.raises(ParseError, match="unknown keys"):
        C.load_claims(_write(tmp_path, text))


def test_non_numeric_value_is_rejected(tmp_path):
    with pytest.raises(ParseError, match="not a number"):
        C.load_claims(_write(tmp_path, 'claims:\n  a: {value: "$57,300", unit: USD, doc: D, quote: q}\n'))


def test_docstring_examples():
    assert doctest.testmod(C).failed == 0
