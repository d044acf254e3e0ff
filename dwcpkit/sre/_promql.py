"""A small PromQL evaluator over the canonical telemetry frame: the subset dwcpkit's alert rules use.

Private to :mod:`dwcpkit.sre.alerts`. It evaluates an expression at every instant of a time grid at once
(``start + k * step``), as ``/api/v1/query_range`` does, with Prometheus 2.42's semantics: 5-minute
lookback for instant selectors, closed range windows ``[t - range, t]``, subqueries aligned to
multiples of their resolution. ``rate``/``increase``/``delta`` and ``histogram_quantile`` are
:mod:`dwcpkit.sre.slo`'s ports of Prometheus' code.

Supported: number literals; vector selectors with ``= != =~ !~`` matchers; range selectors and
subqueries (``x[5m]``, ``(expr)[1h:1m]``); the functions ``rate increase delta deriv changes
avg_over_time min_over_time max_over_time sum_over_time count_over_time stddev_over_time abs
histogram_quantile vector time``; the aggregations ``sum avg min max count`` with ``by``/``without``;
unary minus; ``+ - * / % ^``; comparisons with and without ``bool``; ``and or unless``; ``on``/
``ignoring`` one-to-one matching. Anything else (``offset``, ``@``, ``group_left``, other functions)
raises :class:`~dwcpkit.errors.ParseError` naming it. References to recording rules are evaluated from
the rule's expression on the same grid (what a Prometheus that records every step would hold).

An instant vector over the grid is a :class:`Vec`: one label set per series, a values matrix and a
presence matrix (series x instant); a series absent at an instant has no sample there, which is
not the same as a NaN sample.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from dwcpkit.errors import DataError, ParseError
from dwcpkit.sre import slo
from dwcpkit.telemetry import schema

__all__ = ["parse", "walk", "expand_records", "Evaluator", "Vec", "Sca", "LOOKBACK_MS", "label_string",
           "matrix_to_frame"]

#: Prometheus' default lookback delta for instant vector selectors.
LOOKBACK_MS = 300_000

Labels = tuple[tuple[str, str], ...]

# ---------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<ws>\s+|\#[^\n]*)
    |(?P<range>\[[^\]]*\])
    |(?P<number>0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    |(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    |(?P<op>==|!=|<=|>=|=~|!~|[-+*/%^<>=(){},@])""",
    re.X,
)
_AGGS = {"sum", "avg", "min", "max", "count"}
_UNSUPPORTED_AGGS = {"stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group"}
_RANGE_FUNCS = {"rate", "increase", "delta", "deriv", "changes", "avg_over_time", "min_over_time",
                "max_over_time", "sum_over_time", "count_over_time", "stddev_over_time"}
_FUNCS = _RANGE_FUNCS | {"abs", "histogram_quantile", "vector", "time"}
_PREC = {"or": 1, "and": 2, "unless": 2, "==": 3, "!=": 3, "<=": 3, "<": 3, ">=": 3, ">": 3,
         "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "^": 6}
_COMPARISONS = {"==", "!=", "<=", "<", ">=", ">"}
_SET_OPS = {"and", "or", "unless"}


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Sel:
    name: str | None
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value)


@dataclass(frozen=True)
class Range:
    expr: object          # Sel for a range selector, any node for a subquery
    range_ms: int
    step_ms: int | None   # None: plain range selector; 0: subquery with the default resolution
    subquery: bool


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple


@dataclass(frozen=True)
class Agg:
    op: str
    expr: object
    labels: tuple[str, ...]
    without: bool


@dataclass(frozen=True)
class Bin:
    op: str
    lhs: object
    rhs: object
    bool_: bool = False
    on: bool = False
    match_labels: tuple[str, ...] = ()
    matching: bool = False  # on(...) or ignoring(...) was written


@dataclass(frozen=True)
class Neg:
    expr: object


@dataclass
class _Tokens:
    items: list[tuple[str, str, int]]
    pos: int = 0

    def peek(self, k: int = 0) -> tuple[str, str, int]:
        i = self.pos + k
        return self.items[i] if i < len(self.items) else ("eof", "", -1)

    def next(self) -> tuple[str, str, int]:
        tok = self.peek()
        self.pos += 1
        return tok


def _tokenize(expr: str) -> list[tuple[str, str, int]]:
    out = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ParseError(f"unexpected character {expr[pos]!r} at column {pos + 1} of the expression")
        kind = m.lastgroup
        if kind != "ws":
            out.append((kind, m.group(), pos))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, expr: str):
        self.expr = expr
        self.t = _Tokens(_tokenize(expr))

    def fail(self, msg: str, pos: int | None = None) -> ParseError:
        where = f" at column {pos + 1}" if pos is not None and pos >= 0 else ""
        return ParseError(f"{msg}{where} of {self.expr.strip()!r}")

    def expect(self, value: str) -> None:
        kind, text, pos = self.t.next()
        if text != value:
            raise self.fail(f"expected {value!r}, found {text or 'end of expression'!r}", pos)

    def parse(self):
        node = self.expr_(0)
        kind, text, pos = self.t.peek()
        if kind != "eof":
            raise self.fail(f"unexpected {text!r}", pos)
        return node

    def binop(self) -> str | None:
        kind, text, _ = self.t.peek()
        if kind == "op" and text in _PREC:
            return text
        if kind == "ident" and text.lower() in _SET_OPS:
            return text.lower()
        return None

    def label_list(self) -> tuple[str, ...]:
        self.expect("(")
        names = []
        while True:
            kind, text, pos = self.t.next()
            if text == ")":
                break
            if kind != "ident":
                raise self.fail(f"expected a label name, found {text!r}", pos)
            names.append(text)
            kind, text, pos = self.t.peek()
            if text == ",":
                self.t.next()
        return tuple(names)

    def expr_(self, min_prec: int):
        lhs = self.unary()
        while True:
            op = self.binop()
            if op is None or _PREC[op] < min_prec:
                return lhs
            self.t.next()
            bool_ = on = matching = False
            labels: tuple[str, ...] = ()
            if self.t.peek()[1] == "bool":
                if op not in _COMPARISONS:
                    raise self.fail(f"bool modifier on non-comparison operator {op!r}")
                self.t.next()
                bool_ = True
            if self.t.peek()[1] in ("on", "ignoring"):
                on = self.t.next()[1] == "on"
                matching = True
                labels = self.label_list()
            if self.t.peek()[1] in ("group_left", "group_right"):
                raise self.fail(f"{self.t.peek()[1]} (many-to-one matching) is not supported", self.t.peek()[2])
            prec = _PREC[op]
            rhs = self.expr_(prec if op == "^" else prec + 1)
            lhs = Bin(op, lhs, rhs, bool_, on, labels, matching)

    def unary(self):
        kind, text, _ = self.t.peek()
        if kind == "op" and text in ("-", "+"):
            self.t.next()
            inner = self.expr_(_PREC["^"])
            return Neg(inner) if text == "-" else inner
        return self.postfix()

    def postfix(self):
        node = self.primary()
        while True:
            kind, text, pos = self.t.peek()
            if kind == "range":
                self.t.next()
                node = self.range_(node, text, pos)
            elif (kind == "ident" and text == "offset") or text == "@":
                raise self.fail(f"{text!r} modifiers are not supported", pos)
            else:
                return node

    def range_(self, node, text: str, pos: int) -> Range:
        inner = text[1:-1].strip()
        if ":" in inner:
            rng, _, step = inner.partition(":")
            range_ms = slo.parse_duration(rng.strip())
            step_ms = slo.parse_duration(step.strip()) if step.strip() else 0
            return Range(node, range_ms, step_ms, True)
        if not isinstance(node, Sel):
            raise self.fail("a range [..] needs a vector selector before it (or use a subquery [range:step])", pos)
        return Range(node, slo.parse_duration(inner), None, False)

    def primary(self):
        kind, text, pos = self.t.next()
        if kind == "number":
            return Num(float(int(text, 16)) if text.lower().startswith("0x") else float(text))
        if kind == "op" and text == "(":
            node = self.expr_(0)
            self.expect(")")
            return node
        if kind == "op" and text == "{":
            self.t.pos -= 1
            return self.selector(None)
        if kind == "ident":
            low = text.lower()
            if low in ("inf", "nan"):
                return Num(float(low))
            if low in _AGGS or low in _UNSUPPORTED_AGGS:
                if low in _UNSUPPORTED_AGGS:
                    raise self.fail(f"aggregation {text!r} is not supported", pos)
                return self.aggregation(low)
            if self.t.peek()[1] == "(":
                if text not in _FUNCS:
                    raise self.fail(f"function {text}() is not supported (supported: {', '.join(sorted(_FUNCS))})", pos)
                return self.call(text)
            return self.selector(text)
        raise self.fail(f"unexpected {text or 'end of expression'!r}", pos)

    def aggregation(self, op: str) -> Agg:
        labels: tuple[str, ...] = ()
        without = False
        grouping = False
        if self.t.peek()[1] in ("by", "without"):
            without = self.t.next()[1] == "without"
            labels = self.label_list()
            grouping = True
        self.expect("(")
        inner = self.expr_(0)
        if self.t.peek()[1] == ",":
            raise self.fail(f"{op}() takes one argument", self.t.peek()[2])
        self.expect(")")
        if not grouping and self.t.peek()[1] in ("by", "without"):
            without = self.t.next()[1] == "without"
            labels = self.label_list()
        return Agg(op, inner, labels, without)

    def call(self, fn: str) -> Call:
        self.expect("(")
        args = []
        if self.t.peek()[1] != ")":
            while True:
                args.append(self.expr_(0))
                if self.t.peek()[1] == ",":
                    self.t.next()
                    continue
                break
        self.expect(")")
        want = {"histogram_quantile": 2, "time": 0}.get(fn, 1)
        if len(args) != want:
            raise self.fail(f"{fn}() takes {want} argument(s), got {len(args)}")
        if fn in _RANGE_FUNCS and not isinstance(args[0], Range):
            raise self.fail(f"{fn}() needs a range vector such as x[5m]")
        return Call(fn, tuple(args))

    def selector(self, name: str | None) -> Sel:
        matchers = []
        if self.t.peek()[1] == "{":
            self.t.next()
            while self.t.peek()[1] != "}":
                kind, label, pos = self.t.next()
                if kind != "ident":
                    raise self.fail(f"expected a label name, found {label!r}", pos)
                kind, op, pos = self.t.next()
                if op not in ("=", "!=", "=~", "!~"):
                    raise self.fail(f"expected a label matcher operator after {label!r}, found {op!r}", pos)
                kind, value, pos = self.t.next()
                if kind != "string":
                    raise self.fail(f"label matcher values are quoted strings, found {value!r}", pos)
                matchers.append((label, op, _unquote(value)))
                if self.t.peek()[1] == ",":
                    self.t.next()
            self.t.next()
        for label, op, value in list(matchers):
            if label == "__name__" and op == "=" and name is None:
                name = value
                matchers.remove((label, op, value))
        if name is None and not matchers:
            raise self.fail("a vector selector needs a metric name or a label matcher")
        return Sel(name, tuple(matchers))


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse(expr: str):
    """Parse ``expr`` into the AST of this module; raises ParseError naming what is unsupported."""
    if not isinstance(expr, str) or not expr.strip():
        raise ParseError("empty PromQL expression")
    return _Parser(expr).parse()


def walk(node) -> list:
    """All nodes of an AST, depth first."""
    out = [node]
    if isinstance(node, (Range, Neg, Agg)):
        out += walk(node.expr)
    elif isinstance(node, Call):
        for a in node.args:
            out += walk(a)
    elif isinstance(node, Bin):
        out += walk(node.lhs) + walk(node.rhs)
    return out


def expand_records(expr: str, records: Mapping[str, str], step: str) -> str:
    """Replace references to recording rules in ``expr`` by their expressions (recursively).

    ``name`` becomes ``(expr)``, ``name[range]`` the subquery ``(expr)[range:step]``. A reference
    with label matchers cannot be inlined and raises ParseError.
    """
    tokens = _tokenize(expr)
    out: list[str] = []
    last = 0
    for i, (kind, text, pos) in enumerate(tokens):
        if kind != "ident" or text not in records:
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("eof", "", len(expr))
        if nxt[1] == "{":
            raise ParseError(f"cannot inline the recording rule {text!r} with label matchers in {expr.strip()!r}")
        body = "(" + expand_records(records[text], records, step).strip() + ")"
        out.append(expr[last:pos])
        if nxt[0] == "range":
            rng = nxt[1][1:-1].strip()
            out.append(f"{body}[{rng}:{step}]")
            last = nxt[2] + len(nxt[1])
        else:
            out.append(body)
            last = pos + len(text)
    out.append(expr[last:])
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------------------------


@dataclass
class Sca:
    """A scalar at every instant of the grid."""

    v: np.ndarray


@dataclass
class Vec:
    """An instant vector at every instant of the grid: ``v``/``p`` are (series x instant)."""

    labels: list[Labels]
    v: np.ndarray
    p: np.ndarray

    @staticmethod
    def empty(n: int) -> Vec:
        return Vec([], np.empty((0, n)), np.zeros((0, n), dtype=bool))


@dataclass
class _Samples:
    """Raw samples of a set of series: per series (labels, t, v), for range functions."""

    series: list[tuple[Labels, np.ndarray, np.ndarray]] = field(default_factory=list)


def _drop_name(labels: Labels) -> Labels:
    return tuple(kv for kv in labels if kv[0] != "__name__")


def _get(labels: Labels, name: str) -> str:
    for k, v in labels:
        if k == name:
            return v
    return ""


def _matches(labels: Labels, matchers) -> bool:
    for label, op, value in matchers:
        have = _get(labels, label)
        if op == "=" and have != value or op == "!=" and have == value:
            return False
        if op in ("=~", "!~"):
            hit = re.fullmatch(value, have) is not None
            if hit != (op == "=~"):
                return False
    return True


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------


class _Data:
    """The raw series of a canonical frame, indexed by metric name."""

    def __init__(self, frame: pl.DataFrame):
        frame = frame.filter(pl.col("value").is_not_null())
        labels = schema.label_columns(frame)
        self.by_metric: dict[str, list[tuple[Labels, np.ndarray, np.ndarray]]] = {}
        if frame.height == 0:
            return
        grouped = frame.group_by(["metric", *labels], maintain_order=True).agg(
            pl.col("timestamp").dt.epoch("ms"), pl.col("value"))
        for row in grouped.iter_rows(named=True):
            lab = tuple(sorted((k, row[k]) for k in labels if row[k] is not None and row[k] != ""))
            t = np.asarray(row["timestamp"], dtype=np.int64)
            v = np.asarray(row["value"], dtype=np.float64)
            order = np.argsort(t, kind="stable")
            full = (("__name__", row["metric"]),) + lab
            self.by_metric.setdefault(row["metric"], []).append(
                (tuple(sorted(full)), t[order], v[order]))
        for series in self.by_metric.values():
            series.sort(key=lambda s: s[0])


def _aligned_grid(lo: int, hi: int, step: int) -> np.ndarray:
    first = -(-lo // step) * step
    if first > hi:
        return np.empty(0, dtype=np.int64)
    return first + step * np.arange((hi - first) // step + 1, dtype=np.int64)


class Evaluator:
    """Evaluate parsed expressions at every instant of ``grid`` (epoch ms, regular, ascending).

    ``records`` maps recording-rule names to ``(ast, static labels)``; ``step_ms`` is the default
    subquery resolution and the spacing of recorded series.
    """

    def __init__(self, data: _Data | pl.DataFrame, grid: np.ndarray, step_ms: int,
                 records: Mapping[str, tuple[object, Mapping[str, str]]] | None = None,
                 cache: dict | None = None):
        self.data = data if isinstance(data, _Data) else _Data(data)
        self.grid = np.asarray(grid, dtype=np.int64)
        self.step_ms = int(step_ms)
        self.records = dict(records or {})
        self.cache = {} if cache is None else cache
        self._stack: list[str] = []

    @property
    def n(self) -> int:
        return self.grid.size

    def _sub(self, grid: np.ndarray) -> Evaluator:
        return Evaluator(self.data, grid, self.step_ms, self.records, self.cache)

    # ---------------------------------------------------------------- dispatch

    def eval(self, node):
        if isinstance(node, Num):
            return Sca(np.full(self.n, node.value))
        if isinstance(node, Neg):
            val = self.eval(node.expr)
            if isinstance(val, Sca):
                return Sca(-val.v)
            return Vec([_drop_name(lab) for lab in val.labels], -val.v, val.p.copy())
        if isinstance(node, Sel):
            return self.instant(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Agg):
            return self.aggregate(node)
        if isinstance(node, Bin):
            return self.binary(node)
        if isinstance(node, Range):
            raise ParseError(
                "a range vector cannot be the result of an expression; wrap it in a function such as rate()")
        raise ParseError(f"cannot evaluate {node!r}")  # pragma: no cover

    # ---------------------------------------------------------------- selectors

    def _record(self, name: str, grid: np.ndarray) -> Vec:
        key = (name, int(grid[0]) if grid.size else 0, int(grid[-1]) if grid.size else 0, grid.size)
        if key in self.cache:
            return self.cache[key]
        if name in self._stack:
            raise ParseError(f"recording rule {name!r} refers to itself (through {' -> '.join(self._stack)})")
        ast, static = self.records[name]
        sub = self._sub(grid)
        sub._stack = self._stack + [name]
        val = sub.eval(ast)
        if isinstance(val, Sca):  # a recorded scalar becomes a label-less series
            val = Vec([()], val.v[None, :], np.ones((1, grid.size), dtype=bool))
        labels = []
        for lab in val.labels:
            d = dict(_drop_name(lab))
            d.update(static)
            d["__name__"] = name
            labels.append(tuple(sorted(d.items())))
        out = Vec(labels, val.v, val.p)
        self.cache[key] = out
        return out

    def instant(self, sel: Sel) -> Vec:
        if sel.name in self.records:
            rec = self._record(sel.name, self.grid)
            keep = [i for i, lab in enumerate(rec.labels) if _matches(lab, sel.matchers)]
            return Vec([rec.labels[i] for i in keep], rec.v[keep], rec.p[keep])
        labels, vs, ps = [], [], []
        for lab, t, v in self._raw(sel):
            idx = np.searchsorted(t, self.grid, side="right") - 1
            ok = idx >= 0
            safe = np.where(ok, idx, 0)
            ok &= t[safe] >= self.grid - LOOKBACK_MS
            if not ok.any():
                continue
            labels.append(lab)
            vs.append(np.where(ok, v[safe], np.nan))
            ps.append(ok)
        if not labels:
            return Vec.empty(self.n)
        return Vec(labels, np.vstack(vs), np.vstack(ps))

    def _raw(self, sel: Sel):
        if sel.name is not None:
            pool = self.data.by_metric.get(sel.name, [])
        else:
            pool = [s for series in self.data.by_metric.values() for s in series]
        return [s for s in pool if _matches(s[0], sel.matchers)]

    def samples(self, rng: Range) -> _Samples:
        """The samples a range function sees: raw, recorded, or a subquery's, over the whole grid."""
        lo = int(self.grid[0]) - rng.range_ms if self.n else 0
        hi = int(self.grid[-1]) if self.n else 0
        if not rng.subquery and isinstance(rng.expr, Sel) and rng.expr.name not in self.records:
            return _Samples([(lab, t, v) for lab, t, v in self._raw(rng.expr)])
        step = rng.step_ms or self.step_ms
        grid = _aligned_grid(lo, hi, step)
        if grid.size == 0:
            return _Samples()
        sub = self._sub(grid)
        sub._stack = self._stack
        val = sub.eval(rng.expr)
        if isinstance(val, Sca):
            raise ParseError("a subquery needs an instant vector expression, not a scalar")
        out = []
        for i, lab in enumerate(val.labels):
            m = val.p[i]
            if m.any():
                out.append((lab, grid[m], val.v[i][m]))
        return _Samples(out)

    # ---------------------------------------------------------------- functions

    def call(self, node: Call):
        fn = node.fn
        if fn == "time":
            return Sca(self.grid / 1000.0)
        if fn == "vector":
            arg = self.eval(node.args[0])
            if not isinstance(arg, Sca):
                raise ParseError("vector() takes a scalar")
            return Vec([()], arg.v[None, :].copy(), np.ones((1, self.n), dtype=bool))
        if fn == "abs":
            arg = self._vec(node.args[0], fn)
            return Vec([_drop_name(lab) for lab in arg.labels], np.abs(arg.v), arg.p.copy())
        if fn == "histogram_quantile":
            q = self.eval(node.args[0])
            if not isinstance(q, Sca) or not np.all(q.v == q.v[0]):
                raise ParseError("histogram_quantile() needs a constant quantile such as 0.99")
            return self._histogram_quantile(float(q.v[0]) if self.n else 0.5, self._vec(node.args[1], fn))
        rng: Range = node.args[0]
        smp = self.samples(rng)
        if fn in ("rate", "increase", "delta"):
            return self._extrapolated(fn, smp, rng.range_ms)
        return self._over_time(fn, smp, rng.range_ms)

    def _vec(self, node, fn: str) -> Vec:
        val = self.eval(node)
        if not isinstance(val, Vec):
            raise ParseError(f"{fn}() needs an instant vector argument")
        return val

    def _to_frame(self, series: list[tuple[Labels, np.ndarray, np.ndarray]], metric: str) -> pl.DataFrame:
        """Canonical frame of ``series`` with a ``__sid`` label holding each series' index."""
        ts = np.concatenate([s[1] for s in series]) if series else np.empty(0, dtype=np.int64)
        vals = np.concatenate([s[2] for s in series]) if series else np.empty(0)
        sid = np.concatenate([np.full(s[1].size, i, dtype=np.int64) for i, s in enumerate(series)]) \
            if series else np.empty(0, dtype=np.int64)
        frame = pl.DataFrame({
            "timestamp": pl.Series(ts, dtype=pl.Int64).cast(schema.TIMESTAMP_DTYPE),
            "metric": pl.repeat(metric, ts.size, eager=True, dtype=pl.String),
            "value": pl.Series(vals, dtype=pl.Float64),
            "__sid": pl.Series(sid, dtype=pl.Int64).cast(pl.String),
        })
        return frame

    def _from_sid_frame(self, frame: pl.DataFrame, labels: list[Labels]) -> Vec:
        """Matrix form of a frame evaluated on this grid, one row per ``__sid`` (whose labels are given)."""
        if frame.height == 0:
            return Vec.empty(self.n)
        sid = frame["__sid"].cast(pl.Int64).to_numpy()
        col = self._grid_index(frame["timestamp"].dt.epoch("ms").to_numpy())
        used = np.unique(sid)
        row = np.searchsorted(used, sid)
        v = np.full((used.size, self.n), np.nan)
        p = np.zeros((used.size, self.n), dtype=bool)
        v[row, col] = frame["value"].to_numpy()
        p[row, col] = True
        return Vec([labels[i] for i in used], v, p)

    def _grid_index(self, ts: np.ndarray) -> np.ndarray:
        col = (ts - self.grid[0]) // self.step_grid if self.n > 1 else np.zeros(ts.size, dtype=np.int64)
        if ts.size and (np.any(self.grid[np.clip(col, 0, self.n - 1)] != ts)):
            raise DataError("internal: a result fell off the evaluation grid")  # pragma: no cover
        return col.astype(np.int64)

    @property
    def step_grid(self) -> int:
        return int(self.grid[1] - self.grid[0]) if self.n > 1 else self.step_ms

    def _grid_args(self) -> dict:
        if self.n == 1:
            return {"at": int(self.grid[0])}
        return {"step": f"{self.step_grid}ms", "start": int(self.grid[0]), "end": int(self.grid[-1])}

    def _extrapolated(self, fn: str, smp: _Samples, range_ms: int) -> Vec:
        if not smp.series or self.n == 0:
            return Vec.empty(self.n)
        frame = self._to_frame(smp.series, "x")
        func: Callable = {"rate": slo.rate, "increase": slo.increase, "delta": slo.delta}[fn]
        out = func(frame, f"{range_ms}ms", compat="2.42", **self._grid_args())
        return self._from_sid_frame(out, [_drop_name(s[0]) for s in smp.series])

    def _over_time(self, fn: str, smp: _Samples, range_ms: int) -> Vec:
        labels, vs, ps = [], [], []
        e = self.grid
        for lab, t, v in smp.series:
            lo = np.searchsorted(t, e - range_ms, side="left")
            hi = np.searchsorted(t, e, side="right")
            cnt = hi - lo
            need = 2 if fn == "deriv" else 1
            ok = cnt >= need
            if not ok.any():
                continue
            val = _window_fn(fn, t, v, lo, hi)
            labels.append(_drop_name(lab))
            vs.append(np.where(ok, val, np.nan))
            ps.append(ok)
        if not labels:
            return Vec.empty(self.n)
        return Vec(labels, np.vstack(vs), np.vstack(ps))

    def _histogram_quantile(self, q: float, vec: Vec) -> Vec:
        groups: dict[Labels, list[int]] = {}
        series = []
        for i, lab in enumerate(vec.labels):
            le = _get(lab, "le")
            if not le:
                continue  # Prometheus ignores series without an le label
            key = tuple(kv for kv in lab if kv[0] not in ("le", "__name__"))
            groups.setdefault(key, []).append(i)
        if not groups:
            return Vec.empty(self.n)
        keys = list(groups)
        for gi, key in enumerate(keys):
            for i in groups[key]:
                m = vec.p[i]
                series.append((gi, _get(vec.labels[i], "le"), self.grid[m], vec.v[i][m]))
        if not series:
            return Vec.empty(self.n)
        ts = np.concatenate([s[2] for s in series])
        frame = pl.DataFrame({
            "timestamp": pl.Series(ts, dtype=pl.Int64).cast(schema.TIMESTAMP_DTYPE),
            "metric": pl.repeat("x_bucket", ts.size, eager=True, dtype=pl.String),
            "value": pl.Series(np.concatenate([s[3] for s in series]), dtype=pl.Float64),
            "__sid": pl.Series(np.concatenate([np.full(s[2].size, s[0]) for s in series]),
                               dtype=pl.Int64).cast(pl.String),
            "le": pl.Series([s[1] for s in series for _ in range(s[2].size)], dtype=pl.String),
        })
        out = slo.histogram_quantile(q, frame)
        return self._from_sid_frame(out, keys)

    # ---------------------------------------------------------------- aggregation

    def aggregate(self, node: Agg) -> Vec:
        val = self.eval(node.expr)
        if not isinstance(val, Vec):
            raise ParseError(f"{node.op}() needs an instant vector")
        groups: dict[Labels, list[int]] = {}
        for i, lab in enumerate(val.labels):
            if node.without:
                key = tuple(kv for kv in lab if kv[0] not in node.labels and kv[0] != "__name__")
            else:
                key = tuple(kv for kv in lab if kv[0] in node.labels)
            groups.setdefault(key, []).append(i)
        labels, vs, ps = [], [], []
        for key, members in groups.items():
            p = val.p[members]
            v = val.v[members]
            present = p.any(axis=0)
            if not present.any():
                continue
            if node.op == "count":
                out = p.sum(axis=0).astype(float)
            elif node.op == "sum":
                out = np.where(p, v, 0.0).sum(axis=0)
            elif node.op == "avg":
                out = _incremental_mean(v, p)
            elif node.op == "max":
                out = np.fmax.reduce(np.where(p, v, np.nan), axis=0)
            else:
                out = np.fmin.reduce(np.where(p, v, np.nan), axis=0)
            labels.append(key)
            vs.append(np.where(present, out, np.nan))
            ps.append(present)
        if not labels:
            return Vec.empty(self.n)
        return Vec(labels, np.vstack(vs), np.vstack(ps))

    # ---------------------------------------------------------------- binary operators

    def binary(self, node: Bin):
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        op = node.op
        if op in _SET_OPS:
            if not (isinstance(lhs, Vec) and isinstance(rhs, Vec)):
                raise ParseError(f"'{op}' needs instant vectors on both sides")
            return self._set_op(node, lhs, rhs)
        if isinstance(lhs, Sca) and isinstance(rhs, Sca):
            if op in _COMPARISONS and not node.bool_:
                raise ParseError("comparisons between scalars must use bool")
            val, keep = _elem(op, lhs.v, rhs.v)
            return Sca(keep.astype(float) if node.bool_ else val)
        if node.matching and (isinstance(lhs, Sca) or isinstance(rhs, Sca)):
            raise ParseError("vector matching (on/ignoring) only applies between two instant vectors")
        if isinstance(lhs, Vec) and isinstance(rhs, Sca):
            return self._vec_scalar(op, node.bool_, lhs, rhs.v, vec_left=True)
        if isinstance(lhs, Sca) and isinstance(rhs, Vec):
            return self._vec_scalar(op, node.bool_, rhs, lhs.v, vec_left=False)
        return self._vec_vec(node, lhs, rhs)

    def _vec_scalar(self, op: str, bool_: bool, vec: Vec, s: np.ndarray, *, vec_left: bool) -> Vec:
        a, b = (vec.v, s[None, :]) if vec_left else (s[None, :], vec.v)
        val, keep = _elem(op, a, b)
        if op in _COMPARISONS:
            if bool_:
                val, p = keep.astype(float), vec.p.copy()
            else:
                val, p = vec.v.copy(), vec.p & keep  # the vector's own value is kept
        else:
            p = vec.p.copy()
        drop = op not in _COMPARISONS or bool_
        labels = [_drop_name(lab) if drop else lab for lab in vec.labels]
        return self._compact(Vec(labels, np.where(p, val, np.nan), p))

    def _signature(self, node: Bin, lab: Labels) -> Labels:
        if node.on:
            return tuple(kv for kv in lab if kv[0] in node.match_labels)
        return tuple(kv for kv in lab if kv[0] != "__name__" and kv[0] not in node.match_labels)

    def _set_op(self, node: Bin, lhs: Vec, rhs: Vec) -> Vec:
        def any_present(vec: Vec) -> dict[Labels, np.ndarray]:
            out: dict[Labels, np.ndarray] = {}
            for i, lab in enumerate(vec.labels):
                sig = self._signature(node, lab)
                out[sig] = out.get(sig, np.zeros(self.n, dtype=bool)) | vec.p[i]
            return out

        none = np.zeros(self.n, dtype=bool)
        if node.op == "and":
            right = any_present(rhs)
            p = np.array([lhs.p[i] & right.get(self._signature(node, lab), none)
                          for i, lab in enumerate(lhs.labels)]).reshape(lhs.p.shape)
            return self._compact(Vec(lhs.labels, lhs.v, p))
        if node.op == "unless":
            right = any_present(rhs)
            p = np.array([lhs.p[i] & ~right.get(self._signature(node, lab), none)
                          for i, lab in enumerate(lhs.labels)]).reshape(lhs.p.shape)
            return self._compact(Vec(lhs.labels, lhs.v, p))
        left = any_present(lhs)
        p_r = np.array([rhs.p[i] & ~left.get(self._signature(node, lab), none)
                        for i, lab in enumerate(rhs.labels)]).reshape(rhs.p.shape)
        out = Vec(lhs.labels + rhs.labels, np.vstack([lhs.v, rhs.v]), np.vstack([lhs.p, p_r]))
        return self._compact(out)

    def _vec_vec(self, node: Bin, lhs: Vec, rhs: Vec) -> Vec:
        op = node.op
        right: dict[Labels, list[int]] = {}
        for j, lab in enumerate(rhs.labels):
            right.setdefault(self._signature(node, lab), []).append(j)
        left: dict[Labels, list[int]] = {}
        for i, lab in enumerate(lhs.labels):
            left.setdefault(self._signature(node, lab), []).append(i)
        for side, groups in ((lhs, left), (rhs, right)):
            for sig, idx in groups.items():
                if len(idx) > 1 and (side.p[idx].sum(axis=0) > 1).any():
                    raise DataError(
                        f"many-to-many matching for {dict(sig)} in '{op}': several series on one side share "
                        "the matching labels at the same time (group_left/group_right is not supported)"
                    )
        labels, vs, ps = [], [], []
        for i, lab in enumerate(lhs.labels):
            for j in right.get(self._signature(node, lab), []):
                p = lhs.p[i] & rhs.p[j]
                if not p.any():
                    continue
                val, keep = _elem(op, lhs.v[i], rhs.v[j])
                if op in _COMPARISONS:
                    if node.bool_:
                        val = keep.astype(float)
                    else:
                        val = lhs.v[i]
                        p = p & keep
                res = dict(lab)
                if op not in _COMPARISONS or node.bool_:
                    res.pop("__name__", None)
                if node.on:
                    res = {k: v for k, v in res.items() if k in node.match_labels}
                else:
                    for k in node.match_labels:
                        res.pop(k, None)
                labels.append(tuple(sorted(res.items())))
                vs.append(np.where(p, val, np.nan))
                ps.append(p)
        if not labels:
            return Vec.empty(self.n)
        return self._compact(Vec(labels, np.vstack(vs), np.vstack(ps)))

    @staticmethod
    def _compact(vec: Vec) -> Vec:
        keep = vec.p.any(axis=1)
        if keep.all():
            return vec
        idx = np.flatnonzero(keep)
        return Vec([vec.labels[i] for i in idx], vec.v[idx], vec.p[idx])


def _elem(op: str, a, b):
    """Elementwise ``a op b``: (value, keep) where keep is the comparison's truth (all True otherwise)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a = np.asarray(a, dtype=float)
        b = np.asarray(b, dtype=float)
        if op in _COMPARISONS:
            keep = {"==": np.equal, "!=": np.not_equal, "<=": np.less_equal, "<": np.less,
                    ">=": np.greater_equal, ">": np.greater}[op](a, b)
            return np.broadcast_to(a, keep.shape), keep
        if op == "+":
            val = a + b
        elif op == "-":
            val = a - b
        elif op == "*":
            val = a * b
        elif op == "/":
            val = a / b
        elif op == "%":
            val = np.fmod(a, b)
        else:
            val = np.power(a, b)
        return val, np.ones(np.shape(val), dtype=bool)


def _incremental_mean(v: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``avg`` as Prometheus accumulates it: ``mean += x / n - mean / n`` over present members in order."""
    mean = np.zeros(v.shape[1])
    count = np.zeros(v.shape[1])
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for k in range(v.shape[0]):
            active = p[k]
            count = count + active
            n = np.where(count > 0, count, 1.0)
            mean = np.where(active, mean + v[k] / n - mean / n, mean)
    return mean


def _window_fn(fn: str, t: np.ndarray, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``fn`` over samples ``[lo, hi)`` of one series for every window at once (Prometheus' accumulation order)."""
    n = hi - lo
    size = v.size
    if fn == "count_over_time":
        return n.astype(float)
    if fn == "changes":
        prev, cur = v[:-1], v[1:]
        changed = (cur != prev) & ~(np.isnan(cur) & np.isnan(prev))
        c = np.concatenate([[0], np.cumsum(changed)])  # c[i]: changes among samples 0..i
        return (c[np.clip(hi - 1, 0, size - 1)] - c[np.clip(lo, 0, size - 1)]).astype(float)
    width = int(n.max()) if n.size else 0
    out_shape = lo.shape
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if fn == "deriv":
            t0 = t[np.clip(lo, 0, size - 1)]
            sx = sy = sxy = sx2 = np.zeros(out_shape)
            cnt = np.zeros(out_shape)
            first = v[np.clip(lo, 0, size - 1)]
            const = np.ones(out_shape, dtype=bool)
            for k in range(width):
                idx = lo + k
                act = idx < hi
                j = np.clip(idx, 0, size - 1)
                y = v[j]
                x = (t[j] - t0) / 1e3
                const &= ~act | (y == first)
                cnt = cnt + act
                sx = sx + np.where(act, x, 0.0)
                sy = sy + np.where(act, y, 0.0)
                sxy = sxy + np.where(act, x * y, 0.0)
                sx2 = sx2 + np.where(act, x * x, 0.0)
            cov = sxy - sx * sy / cnt
            var = sx2 - sx * sx / cnt
            slope = cov / var
            return np.where(const, np.where(np.isinf(first), np.nan, 0.0), slope)
        acc = np.zeros(out_shape)
        mean = np.zeros(out_shape)
        aux = np.zeros(out_shape)
        cnt = np.zeros(out_shape)
        best = np.full(out_shape, np.nan)
        for k in range(width):
            idx = lo + k
            act = idx < hi
            x = v[np.clip(idx, 0, size - 1)]
            cnt = cnt + act
            c = np.where(cnt > 0, cnt, 1.0)
            if fn == "sum_over_time":
                acc = np.where(act, acc + x, acc)
            elif fn == "avg_over_time":
                mean = np.where(act, mean + x / c - mean / c, mean)
            elif fn == "stddev_over_time":
                delta = x - mean
                new_mean = mean + delta / c
                aux = np.where(act, aux + delta * (x - new_mean), aux)
                mean = np.where(act, new_mean, mean)
            elif fn == "max_over_time":
                best = np.where(act & ((x > best) | np.isnan(best)), x, best)
            elif fn == "min_over_time":
                best = np.where(act & ((x < best) | np.isnan(best)), x, best)
        if fn == "sum_over_time":
            return acc
        if fn == "avg_over_time":
            return mean
        if fn == "stddev_over_time":
            return np.sqrt(aux / np.where(cnt > 0, cnt, 1.0))
        return best


def label_string(labels: Labels) -> str:
    """``{a="x", b="y"}`` of a label set without ``__name__`` (sorted by name)."""
    body = ", ".join(f'{k}="{v}"' for k, v in labels if k != "__name__")
    return "{" + body + "}"


def matrix_to_frame(vec: Vec, grid: np.ndarray, name: str = "value") -> pl.DataFrame:
    """A :class:`Vec` as a canonical frame (present samples only; ``metric`` is ``__name__`` or ``name``)."""
    rows = []
    names: set[str] = set()
    for i, lab in enumerate(vec.labels):
        idx = np.flatnonzero(vec.p[i])
        if idx.size == 0:
            continue
        d = dict(lab)
        metric = d.pop("__name__", name)
        names.update(d)
        rows.append((grid[idx], metric, vec.v[i][idx], d))
    if not rows:
        return schema.empty_frame()
    n = sum(r[0].size for r in rows)
    data = {
        "timestamp": pl.Series(np.concatenate([r[0] for r in rows]), dtype=pl.Int64).cast(schema.TIMESTAMP_DTYPE),
        "metric": pl.Series([r[1] for r in rows for _ in range(r[0].size)], dtype=pl.String),
        "value": pl.Series(np.concatenate([r[2] for r in rows]), dtype=pl.Float64),
    }
    for k in sorted(names):
        data[k] = pl.Series([r[3].get(k) for r in rows for _ in range(r[0].size)], dtype=pl.String)
    assert len(data["metric"]) == n
    return schema.normalize(pl.DataFrame(data), source="evaluate")

