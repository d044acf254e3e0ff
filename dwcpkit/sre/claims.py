"""Claimed figures of the original material, and an audit that re-derives each one.

The original DWCP v3 documents are full of numbers nothing measured, several of which contradict
each other (reference/dwcp-operations.md §6–7). ``data/claims.yaml`` holds every cost figure of
the completion report (and of the Phase 5/6 documents it leans on) plus the headline performance
claims, each with its source (document, line or section, and a quote). It also says how each
claim is *re-derived* from the others: a ``check`` is arithmetic over claim ids.

:func:`audit` evaluates every check and flags the claims that are inconsistent by more than a
tolerance (1 % by default), with the arithmetic written out::

    31,290 × 12 = 375,480 vs claimed 509,420: −26.3 %

Deviation is ``(recomputed − claimed) / |claimed|``. Check kinds (``tol`` = the tolerance):

``equal``
    consistent when ``|recomputed − claimed| <= tol × |claimed|``.
``claim_is_lower_bound``
    the claim is a floor such as "$2.5M+": consistent when ``recomputed >= claimed − tol × |claimed|``.
``claim_at_least_derived``
    the claim cannot be below the recomputed value (a total vs the sum of its parts):
    consistent when ``claimed >= recomputed − tol × |recomputed|``.
``claim_at_most_derived``
    the claim cannot exceed the recomputed bound (a part vs the whole):
    consistent when ``claimed <= recomputed + tol × |recomputed|``.
``unsupported``
    nothing in the documents to derive it from; an ``implied`` expression shows what the
    claim would need.

Statuses: ``consistent``, ``inconsistent``, ``unsupported``.

Expressions accept claim ids, numbers, ``+ - * /``, unary minus and parentheses — nothing else
(they are parsed, never ``eval``-ed).

Example
-------
>>> book = load_claims()
>>> row = audit(book).filter(check="cr-annual-savings").row(0, named=True)
>>> row["arithmetic"]
'31,290 × 12 = 375,480 vs claimed 509,420: −26.3 %'
>>> row["status"]
'inconsistent'
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from dwcpkit import _paths
from dwcpkit._yamlio import read_yaml
from dwcpkit.errors import DataError, ParameterError, ParseError, SourceError

__all__ = [
    "Claim",
    "Check",
    "HeadlineRow",
    "ClaimBook",
    "AuditSummary",
    "KINDS",
    "load_claims",
    "evaluate",
    "render",
    "fmt_number",
    "fmt_delta",
    "audit",
    "summarize_audit",
    "claims_table",
    "headline_table",
]

Kind = Literal["equal", "claim_is_lower_bound", "claim_at_least_derived", "claim_at_most_derived", "unsupported"]
KINDS: tuple[str, ...] = ("equal", "claim_is_lower_bound", "claim_at_least_derived", "claim_at_most_derived",
                          "unsupported")
_MINUS = "\u2212"


@dataclass(frozen=True)
class Claim:
    """One claimed figure and where it was found."""

    id: str
    value: float
    unit: str
    what: str
    doc: str
    quote: str
    line: int | None = None
    section: str = ""
    document: str = ""  # the document's path in the original repository
    via: str = ""  # where dwcpkit read it, when not from the document itself

    @property
    def source(self) -> str:
        """``path:line (section)``, or ``path, section (via ...)``."""
        where = f"{self.document or self.doc}:{self.line}" if self.line else f"{self.document or self.doc}"
        if self.section:
            where += f" ({self.section})" if self.line else f", {self.section}"
        if self.via:
            where += f" [via {self.via}]"
        return where


@dataclass(frozen=True)
class Check:
    """How one claim is re-derived from others (see the module doc for ``kind``)."""

    id: str
    claim: str
    group: str
    kind: Kind = "equal"
    derive: str | None = None
    claimed: str | None = None
    implied: str | None = None
    note: str = ""


@dataclass(frozen=True)
class HeadlineRow:
    """One row of the completion report's headline performance table (claim ids)."""

    metric: str
    label: str
    baseline: str
    v3: str
    change: str | None
    provenance: str = ""


@dataclass(frozen=True)
class ClaimBook:
    """Everything in a claims file: claims by id, checks, the headline table and its path."""

    claims: dict[str, Claim]
    checks: tuple[Check, ...]
    headline: tuple[HeadlineRow, ...]
    path: Path | None = None

    def value(self, claim_id: str) -> float:
        """The claimed value of ``claim_id`` (ParameterError naming close ids when unknown)."""
        try:
            return self.claims[claim_id].value
        except KeyError:
            raise ParameterError(_unknown(claim_id, self.claims)) from None


# --------------------------------------------------------------------------------------------
# expressions: parsed, validated, evaluated and written out
# --------------------------------------------------------------------------------------------

_OPS = {ast.Add: ("+", 1), ast.Sub: (_MINUS, 1), ast.Mult: ("×", 2), ast.Div: ("/", 2)}


def _unknown(name: str, known: Mapping[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown claim id {name!r}{hint}"


def _parse(expr: str) -> ast.expr:
    try:
        tree = ast.parse(str(expr).strip(), mode="eval")
    except SyntaxError as exc:
        raise ParameterError(f"expression {expr!r} is not valid arithmetic ({exc.msg})") from None
    for node in ast.walk(tree):
        ok = isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.USub, ast.UAdd,
                               *_OPS))
        ok = ok or (isinstance(node, ast.Constant) and type(node.value) in (int, float))
        if not ok:
            raise ParameterError(
                f"expression {expr!r}: {type(node).__name__} is not allowed; use claim ids, numbers, "
                "+ - * / and parentheses"
            )
    return tree.body


def _names(expr: str) -> list[str]:
    return [n.id for n in ast.walk(_parse(expr)) if isinstance(n, ast.Name)]


def _eval(node: ast.expr, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise ParameterError(_unknown(node.id, values))
        return float(values[node.id])
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, values)
        return -v if isinstance(node.op, ast.USub) else v
    assert isinstance(node, ast.BinOp)
    a, b = _eval(node.left, values), _eval(node.right, values)
    if isinstance(node.op, ast.Add):
        return a + b
    if isinstance(node.op, ast.Sub):
        return a - b
    if isinstance(node.op, ast.Mult):
        return a * b
    return a / b if b != 0 else math.copysign(math.inf, a) if a else math.nan


def _values(values: ClaimBook | Mapping[str, float]) -> Mapping[str, float]:
    if isinstance(values, ClaimBook):
        return {k: c.value for k, c in values.claims.items()}
    return values


def evaluate(expr: str, values: ClaimBook | Mapping[str, float]) -> float:
    """Value of an arithmetic expression over claim ids.

    >>> evaluate("(a - b) / a * 100", {"a": 200, "b": 50})
    75.0
    """
    return _eval(_parse(expr), _values(values))


def _render(node: ast.expr, values: Mapping[str, float], names: bool) -> tuple[str, int]:
    """Text and precedence (3 = atom) of ``node`` with claim ids replaced by their values."""
    if isinstance(node, ast.Constant):
        return fmt_number(float(node.value), exact=True), 3
    if isinstance(node, ast.Name):
        return (node.id if names else fmt_number(float(values[node.id]), exact=True)), 3
    if isinstance(node, ast.UnaryOp):
        text, prec = _render(node.operand, values, names)
        text = f"({text})" if prec < 3 else text
        return (f"{_MINUS}{text}" if isinstance(node.op, ast.USub) else text), 3
    assert isinstance(node, ast.BinOp)
    sym, prec = _OPS[type(node.op)]
    left, lp = _render(node.left, values, names)
    right, rp = _render(node.right, values, names)
    if lp < prec:
        left = f"({left})"
    if rp < prec or (rp == prec and isinstance(node.op, (ast.Sub, ast.Div))):
        right = f"({right})"
    return f"{left} {sym} {right}", prec


def render(expr: str, values: ClaimBook | Mapping[str, float] | None = None) -> str:
    """The expression written out, with each claim id replaced by its value (or kept, without values).

    >>> render("cr_monthly_savings * 12", {"cr_monthly_savings": 31290})
    '31,290 × 12'
    >>> render("(a - b) / a")
    '(a − b) / a'
    """
    vals = {} if values is None else _values(values)
    return _render(_parse(expr), vals, names=values is None)[0]


def fmt_number(x: float, *, exact: bool = False) -> str:
    """A figure as people write it: thousands separators, no float noise, no exponent.

    Computed values keep 4 significant digits (integers in full); ``exact=True`` writes an input
    figure with every digit it was given (``99.994``, ``0.00087``).

    >>> [fmt_number(v) for v in (375480.0, 54.6073, 2.9, 0.0000351, -76.11)]
    ['375,480', '54.61', '2.9', '0.0000351', '−76.11']
    >>> fmt_number(99.994, exact=True), fmt_number(1234.5, exact=True)
    ('99.994', '1,234.5')
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else f"{_MINUS}∞"
    import numpy as np

    sign = _MINUS if x < 0 else ""
    a = abs(x)
    if exact and a != round(a):
        whole, _, frac = np.format_float_positional(a, unique=True, trim="-").partition(".")
        return f"{sign}{int(whole):,}.{frac}" if frac else f"{sign}{int(whole):,}"
    if a >= 1000 or (a >= 1 and abs(a - round(a)) < 1e-9):
        text = f"{a:,.0f}"
    elif a >= 1:
        text = f"{a:.4g}"
    elif a == 0:
        return "0"
    else:
        text = np.format_float_positional(a, precision=3, unique=True, fractional=False, trim="-")
    return sign + text


def fmt_delta(pct: float | None) -> str:
    """A relative deviation in percent, signed with a true minus: ``−26.3 %``.

    >>> fmt_delta(-26.29), fmt_delta(0.0118), fmt_delta(0.0)
    ('−26.3 %', '+0.01 %', '0.0 %')
    """
    if pct is None or math.isnan(pct):
        return "n/a"
    if math.isinf(pct):
        return "+∞ %" if pct > 0 else f"{_MINUS}∞ %"
    if pct == 0:
        return "0.0 %"
    digits = 2 if abs(pct) < 0.05 else 1
    return f"{pct:+.{digits}f} %".replace("-", _MINUS)


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def _resolve_path(path: str | Path | None) -> Path:
    if path is None or str(path) in ("", "sample"):
        return _paths.data_dir() / "claims.yaml"
    return Path(path)


def _read_yaml(path: Path, what: str) -> dict:
    if not path.is_file():
        raise SourceError(f"{what} file {str(path)!r} not found; pass 'sample' for the embedded {path.name} or a path to a YAML file")
    return read_yaml(path, what=what)


def _num(value: Any, where: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParseError(f"{where}: value {value!r} is not a number (write 57300, not '$57,300')", path=str(path))
    return float(value)


def load_claims(path: str | Path | None = None) -> ClaimBook:
    """Read a claims file (default ``data/claims.yaml``; ``"sample"`` means the same).

    Every check's expressions are validated against the claim ids, so a typo fails here with the
    check's id and the closest ids, not later in an audit.

    Raises
    ------
    SourceError
        the file does not exist.
    ParseError
        malformed YAML, a non-numeric value, an unknown claim id or kind, a bad expression.

    >>> book = load_claims()
    >>> book.value("cr_monthly_savings")
    31290.0
    """
    p = _resolve_path(path)
    data = _read_yaml(p, "claims")
    unknown = set(data) - {"documents", "claims", "checks", "headline"}
    if unknown:
        raise ParseError(f"unknown top-level keys {sorted(unknown)}; allowed: documents, claims, checks, headline",
                         path=str(p))
    docs = data.get("documents") or {}
    raw = data.get("claims") or {}
    if not isinstance(raw, dict) or not raw:
        raise ParseError("'claims' must be a non-empty mapping of id -> {value, unit, ...}", path=str(p))
    claims: dict[str, Claim] = {}
    for cid, c in raw.items():
        if not isinstance(c, dict):
            raise ParseError(f"claim {cid!r}: expected a mapping with value, unit, doc, quote", path=str(p))
        extra = sorted(set(c) - {"value", "unit", "what", "doc", "line", "section", "quote"})
        if extra:
            raise ParseError(f"claim {cid!r}: unknown keys {extra} (allowed: value, unit, what, doc, line, section, "
                             "quote); in a {...} mapping, quote text that holds commas", path=str(p))
        missing = [k for k in ("value", "unit", "doc", "quote") if k not in c]
        if missing:
            raise ParseError(f"claim {cid!r} lacks {missing}; every claim needs value, unit, doc and quote", path=str(p))
        doc = docs.get(c["doc"], {}) if isinstance(docs, dict) else {}
        if docs and c["doc"] not in docs:
            raise ParseError(f"claim {cid!r}: document {c['doc']!r} is not listed under 'documents'", path=str(p))
        claims[str(cid)] = Claim(
            id=str(cid), value=_num(c["value"], f"claim {cid!r}", p), unit=str(c["unit"]), what=str(c.get("what", cid)),
            doc=str(c["doc"]), quote=str(c["quote"]), line=int(c["line"]) if c.get("line") is not None else None,
            section=str(c.get("section", "")), document=str(doc.get("path", "")), via=str(doc.get("via", "")),
        )
    checks: list[Check] = []
    seen: set[str] = set()
    for i, ch in enumerate(data.get("checks") or []):
        if not isinstance(ch, dict) or "id" not in ch or "claim" not in ch:
            raise ParseError(f"check #{i + 1}: needs at least id and claim", path=str(p))
        cid = str(ch["id"])
        extra = sorted(set(ch) - {"id", "claim", "group", "kind", "derive", "claimed", "implied", "note"})
        if extra:
            raise ParseError(f"check {cid!r}: unknown keys {extra} (allowed: id, claim, group, kind, derive, claimed, "
                             "implied, note); in a {...} mapping, quote text that holds commas", path=str(p))
        if cid in seen:
            raise ParseError(f"check {cid!r} appears twice; check ids must be unique", path=str(p))
        seen.add(cid)
        kind = str(ch.get("kind", "equal"))
        if kind not in KINDS:
            raise ParseError(f"check {cid!r}: kind {kind!r} is not one of {', '.join(KINDS)}", path=str(p))
        if kind != "unsupported" and not ch.get("derive"):
            raise ParseError(f"check {cid!r}: kind {kind!r} needs a 'derive' expression", path=str(p))
        check = Check(id=cid, claim=str(ch["claim"]), group=str(ch.get("group", "cost")), kind=kind,  # type: ignore[arg-type]
                      derive=ch.get("derive"), claimed=ch.get("claimed"), implied=ch.get("implied"),
                      note=str(ch.get("note", "")))
        for name in [check.claim] + [n for e in (check.derive, check.claimed, check.implied) if e for n in _expr_names(e, cid, p)]:
            if name not in claims:
                raise ParseError(f"check {cid!r}: {_unknown(name, claims)}", path=str(p))
        checks.append(check)
    headline: list[HeadlineRow] = []
    for h in data.get("headline") or []:
        row = HeadlineRow(metric=str(h["metric"]), label=str(h.get("label", h["metric"])), baseline=str(h["baseline"]),
                          v3=str(h["v3"]), change=h.get("change"), provenance=str(h.get("provenance", "")))
        for name in (row.baseline, row.v3, row.change):
            if name is not None and name not in claims:
                raise ParseError(f"headline row {row.metric!r}: {_unknown(name, claims)}", path=str(p))
        headline.append(row)
    return ClaimBook(claims, tuple(checks), tuple(headline), p)


def _expr_names(expr: str, check_id: str, path: Path) -> list[str]:
    try:
        return _names(expr)
    except ParameterError as exc:
        raise ParseError(f"check {check_id!r}: {exc}", path=str(path)) from None


# --------------------------------------------------------------------------------------------
# the audit
# --------------------------------------------------------------------------------------------

_AUDIT_SCHEMA = {
    "check": pl.String, "group": pl.String, "claim": pl.String, "what": pl.String, "unit": pl.String,
    "claimed": pl.Float64, "recomputed": pl.Float64, "delta_pct": pl.Float64, "status": pl.String,
    "arithmetic": pl.String, "formula": pl.String, "source": pl.String, "note": pl.String,
}


def _delta_pct(derived: float, claimed: float) -> float:
    if claimed == 0:
        return 0.0 if derived == 0 else math.copysign(math.inf, derived)
    return (derived - claimed) / abs(claimed) * 100.0


def _audit_row(book: ClaimBook, check: Check, tol: float) -> dict[str, Any]:
    claim = book.claims[check.claim]
    vals = _values(book)
    base = {"check": check.id, "group": check.group, "claim": claim.id, "what": claim.what, "unit": claim.unit,
            "source": claim.source, "note": check.note}
    if check.kind == "unsupported":
        text = "no basis in the document to re-derive it"
        if check.implied:
            text += f"; it implies {render(check.implied, vals)} = {fmt_number(evaluate(check.implied, vals))}"
        return {**base, "claimed": claim.value, "recomputed": None, "delta_pct": None, "status": "unsupported",
                "arithmetic": text, "formula": check.implied or ""}
    derived = evaluate(check.derive, vals)  # type: ignore[arg-type]
    if check.claimed:
        claimed = evaluate(check.claimed, vals)
        claimed_text = f"{render(check.claimed, vals)} = {fmt_number(claimed)}"
    else:
        claimed, claimed_text = claim.value, fmt_number(claim.value)
    delta = _delta_pct(derived, claimed)
    if check.kind == "equal":
        ok = abs(derived - claimed) <= tol * abs(claimed)
        versus = f"vs claimed {claimed_text}"
    elif check.kind == "claim_is_lower_bound":
        ok = derived >= claimed - tol * abs(claimed)
        versus = f"vs claimed at least {claimed_text}"
    elif check.kind == "claim_at_least_derived":
        ok = claimed >= derived - tol * abs(derived)
        versus = f"vs claimed {claimed_text}, which cannot be less"
    else:  # claim_at_most_derived
        ok = claimed <= derived + tol * abs(derived)
        versus = f"vs claimed {claimed_text}, which cannot exceed it"
    node = _parse(check.derive)  # type: ignore[arg-type]
    if isinstance(node, ast.Name):  # a figure quoted elsewhere for the same quantity
        lhs = f"{fmt_number(derived)} ({node.id})"
    else:
        lhs = f"{render(check.derive, vals)} = {fmt_number(derived)}"  # type: ignore[arg-type]
    arithmetic = f"{lhs} {versus}: {fmt_delta(delta)}"
    return {**base, "claimed": claimed, "recomputed": derived, "delta_pct": delta,
            "status": "consistent" if ok else "inconsistent", "arithmetic": arithmetic,
            "formula": render(check.derive)}  # type: ignore[arg-type]


def audit(book: ClaimBook, *, group: str | Sequence[str] | None = None, tolerance_pct: float = 1.0) -> pl.DataFrame:
    """Re-derive every claim that has a check and flag those off by more than ``tolerance_pct``.

    Parameters
    ----------
    book
        From :func:`load_claims`.
    group
        Only checks of this group (or groups), e.g. ``"cost"``; default all.
    tolerance_pct
        Allowed relative deviation in percent (``1.0`` = 1 %), applied per ``kind`` (module doc).

    Returns
    -------
    polars.DataFrame
        One row per check, in file order: ``check, group, claim, what, unit, claimed, recomputed,
        delta_pct, status, arithmetic, formula, source, note``. ``recomputed`` and ``delta_pct``
        are null for ``unsupported`` claims.

    Example
    -------
    >>> a = audit(load_claims(), group="cost")
    >>> a.filter(check="cr-monthly-savings")["arithmetic"][0]
    '57,300 − 26,010 = 31,290 vs claimed 31,290: 0.0 %'
    """
    tol = float(tolerance_pct)
    if not math.isfinite(tol) or tol < 0:
        raise ParameterError(f"tolerance_pct={tolerance_pct!r} must be a finite number >= 0 (1.0 means 1 %)")
    groups = None if group is None else ({group} if isinstance(group, str) else set(group))
    known = sorted({c.group for c in book.checks})
    if groups is not None and not groups & set(known):
        raise ParameterError(f"group {sorted(groups)} matches no check; groups in the claims file: {known}")
    rows = [_audit_row(book, c, tol / 100.0) for c in book.checks if groups is None or c.group in groups]
    return pl.DataFrame(rows, schema=_AUDIT_SCHEMA, orient="row") if rows else pl.DataFrame(schema=_AUDIT_SCHEMA)


@dataclass(frozen=True)
class AuditSummary:
    """What an audit concludes: verdict level and label, one reason per flagged claim."""

    level: str
    label: str
    reasons: tuple[str, ...]
    checked: int
    inconsistent: int
    unsupported: int
    claims_inconsistent: tuple[str, ...]

    @property
    def summary(self) -> str:
        """One line for the verdict banner."""
        return (f"{self.checked} checks: {self.inconsistent} inconsistent, {self.unsupported} unsupported, "
                f"{self.checked - self.inconsistent - self.unsupported} consistent")


def summarize_audit(frame: pl.DataFrame) -> AuditSummary:
    """Verdict of an :func:`audit` table: OK when every check is consistent, else WARN.

    An ``unsupported`` claim (nothing to derive it from) is also a WARN: a figure with no
    derivation does not hold up either. ``label`` counts the claims (not checks) found
    inconsistent, e.g. ``"12 claims inconsistent, 1 unsupported"``.

    >>> s = summarize_audit(audit(load_claims(), group="cost"))
    >>> s.level, s.label.split(",")[0]
    ('WARN', '11 claims inconsistent')
    """
    if not {"status", "claim", "check", "arithmetic"} <= set(frame.columns):
        raise DataError("summarize_audit: pass the frame returned by audit()")
    bad = frame.filter(pl.col("status") == "inconsistent")
    uns = frame.filter(pl.col("status") == "unsupported")
    claims_bad = tuple(dict.fromkeys(bad["claim"].to_list()))
    reasons = [f"{r['claim']}: {r['arithmetic']}" for r in bad.iter_rows(named=True)]
    reasons += [f"{r['claim']}: {r['arithmetic']}" for r in uns.iter_rows(named=True)]
    n_claims = len(claims_bad)
    label = f"{n_claims} claim{'s' if n_claims != 1 else ''} inconsistent"
    if uns.height:
        label += f", {uns.height} unsupported"
    level = "OK" if not bad.height and not uns.height else "WARN"
    if level == "OK":
        reasons = [f"all {frame.height} checks consistent within tolerance"]
    return AuditSummary(level, label, tuple(reasons), frame.height, bad.height, uns.height, claims_bad)


# --------------------------------------------------------------------------------------------
# tables of claims
# --------------------------------------------------------------------------------------------


def claims_table(book: ClaimBook, ids: Sequence[str] | None = None) -> pl.DataFrame:
    """The claims (all, or ``ids`` in that order) with value, unit, what and source.

    >>> claims_table(load_claims(), ["cr_infra_before"])["source"][0]
    'docs/DWCP-V3-PHASE-6-COMPLETION-REPORT.md:220 (Cost Impact)'
    """
    ids = list(book.claims) if ids is None else list(ids)
    for i in ids:
        book.value(i)
    rows = [{"claim": c.id, "value": c.value, "unit": c.unit, "what": c.what, "source": c.source, "quote": c.quote}
            for c in (book.claims[i] for i in ids)]
    return pl.DataFrame(rows, schema={"claim": pl.String, "value": pl.Float64, "unit": pl.String, "what": pl.String,
                                      "source": pl.String, "quote": pl.String})


def headline_table(book: ClaimBook) -> pl.DataFrame:
    """The completion report's headline performance table, as claims.

    Columns: ``metric, label, baseline_claimed, v3_claimed, change_claimed_pct, unit, source,
    provenance`` (``change_claimed_pct`` null where the report states none).

    >>> headline_table(load_claims()).select("metric", "baseline_claimed", "v3_claimed").row(0)
    ('p99_latency', 180.0, 43.0)
    """
    if not book.headline:
        raise DataError(f"the claims file {book.path} has no 'headline' table")
    rows = []
    for h in book.headline:
        b = book.claims[h.baseline]
        rows.append({
            "metric": h.metric, "label": h.label, "baseline_claimed": b.value,
            "v3_claimed": book.claims[h.v3].value,
            "change_claimed_pct": book.claims[h.change].value if h.change else None,
            "unit": b.unit, "source": b.source, "provenance": h.provenance,
        })
    return pl.DataFrame(rows, schema={"metric": pl.String, "label": pl.String, "baseline_claimed": pl.Float64,
                                      "v3_claimed": pl.Float64, "change_claimed_pct": pl.Float64, "unit": pl.String,
                                      "source": pl.String, "provenance": pl.String})
