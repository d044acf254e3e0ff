"""Prometheus text exposition (0.0.4) and OpenMetrics 1.0: parse to, and write from, the canonical frame.

:func:`parse` / :func:`read` turn an exposition into the canonical telemetry frame
(:mod:`dwcpkit.telemetry.schema`); :func:`write` / :func:`write_file` do the reverse.

Format
    Text that ends with a ``# EOF`` line is OpenMetrics (timestamps in float seconds,
    ``# UNIT``, exemplars, the eight OpenMetrics types, strict single spaces); anything else is the
    Prometheus text format (integer millisecond timestamps, blank lines and free comments allowed).

What a sample becomes
    One row per sample: ``metric`` is the *sample* name (``foo_total``, ``foo_bucket``, ...), every
    label a string column. As in Prometheus, an empty label value is the same as no label, so
    ``a=""`` reads as null, and a label that never has a value gets no column.

Rules worth knowing
    * OpenMetrics ``*_created`` samples of counters, histograms and summaries are creation
      timestamps, not measurements: they are dropped. (In the text format ``foo_created`` is an
      ordinary family and kept.) Exemplars (``# {...} v ts`` after a value) are dropped too.
    * ``le`` of histogram families and ``quantile`` of summary families are normalised the way
      Prometheus 3 does on ingestion (``model/textparse``, ``normalizeFloatsInLabelValues``):
      ``le="1"`` becomes ``"1.0"``, ``+Inf`` stays ``"+Inf"`` (see :func:`format_float`).
    * OpenMetrics timestamps are rounded to the nearest millisecond (Prometheus truncates
      ``ts * 1000``, which can lose a millisecond to float error).
    * A sample without a timestamp gets ``default_timestamp_ms``; leaving it ``None`` is an
      error unless every sample has one.
    * Anything malformed raises :class:`~dwcpkit.errors.ParseError` naming the path and the
      1-based line of the first bad line; no partial frame is ever returned. Checked: syntax
      (names, quotes, braces, escapes other than ``\\\\`` ``\\"`` ``\\n``, values, timestamps),
      duplicate label names, unknown or repeated ``# TYPE``, ``# TYPE`` after samples of its
      family, a histogram bucket without ``le``, a non-numeric ``le``/``quantile``, a sample
      that does not fit its family's type, labels named ``timestamp``/``metric``/``value``
      (they would collide with the frame's columns), and in OpenMetrics blank lines, free
      comments, a ``# EOF`` before the last line and a ``# UNIT`` that is not the name's suffix.

Speed
    Well-formed lines are parsed by a vectorised polars pass; any line it does not fully
    understand (escapes, tabs, trailing commas, errors, ...) goes through a careful per-line
    parser that also produces the error messages. Both give identical frames.

Example
-------
>>> from dwcpkit.telemetry.exposition import parse, write
>>> f = parse('# TYPE up gauge\\nup{job="node"} 1 1700000000000\\n')
>>> f.select("metric", "value", "job").rows()
[('up', 1.0, 'node')]
>>> print(write(f, types={"up": "gauge"}), end="")
# TYPE up gauge
up{job="node"} 1.0 1700000000000
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import polars as pl

from dwcpkit.errors import ParameterError, ParseError, SchemaError, SourceError
from dwcpkit.telemetry.names import CATALOG
from dwcpkit.telemetry.schema import CORE_COLUMNS, empty_frame, label_columns, normalize

__all__ = [
    "TEXT_TYPES",
    "OPENMETRICS_TYPES",
    "format_float",
    "is_openmetrics",
    "parse",
    "read",
    "write",
    "write_file",
]

#: Metric types of the Prometheus text format, with the sample-name suffixes of each.
TEXT_TYPES: dict[str, tuple[str, ...]] = {
    "counter": ("",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "untyped": ("",),
}
#: Metric types of OpenMetrics 1.0, with the sample-name suffixes of each.
OPENMETRICS_TYPES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}

_METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_DECIMAL = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER = rf"[+-]?{_DECIMAL}"
# Go's strconv.ParseFloat syntax as Prometheus accepts it (no hex, no underscores, unsigned NaN).
# Written so that the regex is one-pass (the sign is not repeated in two branches), which lets
# the vectorised pass use the regex crate's fast one-pass capture engine.
_FLOAT = rf"(?:[+-]?(?:{_DECIMAL}|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)|[nN][aA][nN])"

_METRIC_NAME_RE = re.compile(_METRIC_NAME)
_LABEL_NAME_RE = re.compile(_LABEL_NAME)
_METRIC_NAME_FULL = re.compile(_METRIC_NAME + r"\Z")
_LABEL_NAME_FULL = re.compile(_LABEL_NAME + r"\Z")
_FLOAT_FULL = re.compile(_FLOAT + r"\Z")
_NUMBER_FULL = re.compile(_NUMBER + r"\Z")
_INT_FULL = re.compile(r"-?[0-9]+\Z")
_QSTRING = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
_WS = re.compile(r"[ \t]*")
_TEXT_TOKEN = re.compile(r"[^ \t]+")
_META_TEXT = re.compile(r"[ \t]*#[ \t]+(HELP|TYPE)[ \t]+(.*)\Z", re.S)
_META_OM = re.compile(r"# (HELP|TYPE|UNIT) (.*)\Z", re.S)

# The vectorised pass: the canonical shape of a sample line, no escapes, single spaces.
_PAIR = rf'{_LABEL_NAME}="[^"\\]*"'
_PAIRS = rf"{_PAIR}(?:,{_PAIR})*"
_TEXT_TS = r"-?[0-9]+"
_TAIL_TEXT = rf" (?P<val>{_FLOAT})(?: (?P<ts>{_TEXT_TS}))?$"
_TAIL_OM = (
    rf" (?P<val>{_FLOAT})(?: (?P<ts>{_NUMBER}))?"
    rf"(?: # \{{(?:{_PAIRS})?\}} (?P<exv>{_FLOAT})(?: (?P<exts>{_NUMBER}))?)?$"
)
_GENERIC = rf"^(?P<name>{_METRIC_NAME})(?:\{{(?P<labels>{_PAIRS})?\}})?"
_MAX_NAME_GROUPS = 1024  # more metric names than this: generic pass only
_MAX_TEMPLATES = 8  # label-name sequences tried per metric name before the generic pass
_TEMPLATE_BUDGET = 2048  # template regexes per parse; past it, the generic pass takes the rest

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}

# internal column names: '#' cannot start a label name, so they never collide with labels
_N, _NAME, _VALUE, _TS = "#n", "#name", "#value", "#ts"


# --------------------------------------------------------------------------------------------
# float formatting


def format_float(value: float) -> str:
    """Format a float the way Prometheus normalises ``le`` and ``quantile`` label values.

    A port of Prometheus' ``FormatOpenMetricsFloat``: Go's shortest ``%g`` representation, with
    ``.0`` appended when it has neither a ``.`` nor an exponent; ``+Inf``, ``-Inf``, ``NaN``.

    Parameters
    ----------
    value : float
        The number.

    Returns
    -------
    str

    Examples
    --------
    >>> [format_float(x) for x in (1, 0.25, 10, 1e6, 1e-05, float("inf"))]
    ['1.0', '0.25', '10.0', '1e+06', '1e-05', '+Inf']
    """
    f = float(value)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "0.0"
    sign, digits, exponent = Decimal(repr(f)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    nd = len(ds)
    dp = nd + int(exponent)  # position of the decimal point relative to the first digit
    exp = dp - 1
    neg = "-" if sign else ""
    if exp < -4 or exp >= 6:  # Go's shortest %g switches to %e here
        mant = ds[0] + ("." + ds[1:] if nd > 1 else "")
        esign = "-" if exp < 0 else "+"
        return f"{neg}{mant}e{esign}{abs(exp):02d}"
    if dp <= 0:
        s = "0." + "0" * (-dp) + ds
    elif dp >= nd:
        s = ds + "0" * (dp - nd)
    else:
        s = ds[:dp] + "." + ds[dp:]
    if "." not in s:
        s += ".0"
    return neg + s


def _canonical_float_label(raw: str) -> str | None:
    """Normalised form of an ``le``/``quantile`` value, or None when it is not a number."""
    if not _FLOAT_FULL.match(raw):
        return None
    return format_float(float(raw))


# --------------------------------------------------------------------------------------------
# careful per-line parser (also the reference the vectorised pass is tested against)


class _LineError(Exception):
    """A problem on one line; the caller adds path and line number."""


def _unescape(raw: str, lname: str) -> str:
    if "\\" not in raw:
        return raw

    def sub(m: re.Match[str]) -> str:
        c = m.group(1)
        try:
            return _UNESCAPE[c]
        except KeyError:
            seq = "\\" + c
            raise _LineError(
                f"invalid escape sequence {seq!r} in the value of label {lname!r}: only "
                "\\\\ (backslash), \\\" (double quote) and \\n (newline) may follow a backslash; "
                "write a literal backslash as \\\\"
            ) from None

    return _ESCAPE.sub(sub, raw)


def _skip_ws(line: str, pos: int) -> int:
    return _WS.match(line, pos).end()  # type: ignore[union-attr]


def _parse_labels(line: str, pos: int, om: bool, what: str, check_dup: bool) -> tuple[dict[str, str], int]:
    """Parse ``{...}`` starting at ``line[pos] == '{'``; return the labels and the position after '}'."""
    labels: dict[str, str] = {}
    n = len(line)
    pos += 1
    unclosed = f"unclosed '{{' in the {what}: add the closing '}}' after the last label"
    while True:
        if not om:
            pos = _skip_ws(line, pos)
        if pos >= n:
            raise _LineError(unclosed)
        if line[pos] == "}":
            return labels, pos + 1
        m = _LABEL_NAME_RE.match(line, pos)
        if m is None:
            if line[pos] == '"':
                raise _LineError(
                    f"quoted label or metric names inside '{{}}' (UTF-8 names) are not supported "
                    f"(column {pos + 1}); use names matching [a-zA-Z_][a-zA-Z0-9_]*"
                )
            hint = "" if "}" in line[pos:] else " (unclosed '{'?)"
            raise _LineError(
                f"invalid label name at column {pos + 1} of the {what} ({line[pos:pos + 12]!r}): "
                f"label names match [a-zA-Z_][a-zA-Z0-9_]*{hint}"
            )
        lname = m.group()
        pos = m.end()
        if not om:
            pos = _skip_ws(line, pos)
        if pos >= n or line[pos] != "=":
            if pos >= n:
                raise _LineError(unclosed)
            raise _LineError(
                f"expected '=' after label name {lname!r} in the {what}, found {line[pos]!r} "
                "(label names match [a-zA-Z_][a-zA-Z0-9_]*)"
            )
        pos += 1
        if not om:
            pos = _skip_ws(line, pos)
        if pos >= n or line[pos] != '"':
            raise _LineError(f"the value of label {lname!r} must be a double-quoted string, as in {lname}=\"...\"")
        q = _QSTRING.match(line, pos)
        if q is None:
            raise _LineError(
                f"unclosed quote in the value of label {lname!r}: add the closing '\"' "
                "(a literal double quote inside a value is written \\\")"
            )
        value = _unescape(q.group(1), lname)
        pos = q.end()
        if check_dup and lname in labels:
            raise _LineError(f"duplicate label name {lname!r}: each label may appear once per sample")
        labels[lname] = value
        if not om:
            pos = _skip_ws(line, pos)
        if pos >= n:
            raise _LineError(unclosed)
        c = line[pos]
        if c == ",":
            pos += 1
            continue
        if c == "}":
            return labels, pos + 1
        raise _LineError(
            f"expected ',' or '}}' after the value of label {lname!r}, found {c!r} (unclosed '{{'?)"
        )


def _float_value(tok: str, what: str) -> float:
    if not _FLOAT_FULL.match(tok):
        raise _LineError(
            f"invalid {what} {tok!r}: expected a number such as 1, -2.5, 1e3, +Inf, -Inf or NaN"
        )
    v = float(tok)
    if math.isinf(v) and "n" not in tok.lower():
        raise _LineError(f"{what} {tok!r} is out of the range of a 64-bit float")
    return v


def _text_timestamp(tok: str) -> int:
    if not _INT_FULL.match(tok):
        raise _LineError(
            f"invalid timestamp {tok!r}: Prometheus text-format timestamps are integer milliseconds "
            "since the epoch (an OpenMetrics exposition, with float seconds, must end with '# EOF')"
        )
    v = int(tok)
    if not _INT64_MIN <= v <= _INT64_MAX:
        raise _LineError(f"timestamp {tok!r} is out of the 64-bit range")
    return v


def _om_timestamp(tok: str, what: str = "timestamp") -> int:
    if not _NUMBER_FULL.match(tok):
        raise _LineError(
            f"invalid {what} {tok!r}: OpenMetrics timestamps are seconds since the epoch, "
            "such as 1700000000 or 1700000000.125"
        )
    ms = float(tok) * 1000.0 + 0.5
    if not math.isfinite(ms) or not _INT64_MIN <= math.floor(ms) < 2**63:
        raise _LineError(f"{what} {tok!r} is out of range")
    return math.floor(ms)


def _om_exemplar(rest: str) -> None:
    """Validate (and drop) an exemplar; ``rest`` is what follows ``' # '``."""
    if not rest.startswith("{"):
        raise _LineError("an exemplar must be '# {labels} value [timestamp]' after the sample")
    _, pos = _parse_labels(rest, 0, True, "exemplar labels", check_dup=False)
    tail = rest[pos:]
    if not tail.startswith(" ") or len(tail) < 2:
        raise _LineError("missing exemplar value after the exemplar labels")
    toks = tail[1:].split(" ")
    if len(toks) > 2:
        raise _LineError(f"unexpected text after the exemplar: {' '.join(toks[2:])!r}")
    _float_value(toks[0], "exemplar value")
    if len(toks) == 2:
        _om_timestamp(toks[1], "exemplar timestamp")


def _parse_sample_line(line: str, om: bool) -> tuple[str, dict[str, str], float, int | None]:
    """Parse one sample line; return ``(name, labels, value, timestamp_ms or None)``."""
    n = len(line)
    pos = 0
    if not om:
        pos = _skip_ws(line, 0)
    elif line[:1] in (" ", "\t"):
        raise _LineError("OpenMetrics lines must not start with whitespace")
    m = _METRIC_NAME_RE.match(line, pos)
    if m is None:
        if line[pos:pos + 1] == "{":
            raise _LineError("missing metric name before '{' (quoted UTF-8 metric names are not supported)")
        raise _LineError(
            f"invalid metric name at {line[pos:pos + 20]!r}: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*"
        )
    name = m.group()
    pos = m.end()
    labels: dict[str, str] = {}
    if om:
        if pos < n and line[pos] == "{":
            labels, pos = _parse_labels(line, pos, True, "label set", check_dup=True)
        if pos >= n:
            raise _LineError(f"missing sample value after {name!r}")
        if line[pos] != " ":
            raise _LineError(
                f"unexpected {line[pos]!r} after {name!r}: metric names match [a-zA-Z_:][a-zA-Z0-9_:]* "
                "and OpenMetrics separates the value by exactly one space"
            )
        toks = line[pos + 1:].split(" # ", 1)
        head = toks[0].split(" ")
        if len(toks) == 2:
            _om_exemplar(toks[1])
        if head[0] == "":
            raise _LineError(f"missing sample value after {name!r} (OpenMetrics uses exactly one space)")
        value = _float_value(head[0], "sample value")
        ts = None
        if len(head) == 2:
            ts = _om_timestamp(head[1])
        elif len(head) > 2:
            raise _LineError(
                f"unexpected text after the timestamp: {' '.join(head[2:])!r} (OpenMetrics uses single "
                "spaces and no trailing whitespace)"
            )
        return name, labels, value, ts
    pos2 = _skip_ws(line, pos)
    separated = pos2 > pos
    if pos2 < n and line[pos2] == "{":
        labels, pos = _parse_labels(line, pos2, False, "label set", check_dup=True)
        pos2 = _skip_ws(line, pos)
        separated = True
    if pos2 >= n:
        raise _LineError(f"missing sample value after {name!r}")
    if not separated:
        raise _LineError(
            f"unexpected {line[pos2]!r} after {name!r}: metric names match [a-zA-Z_:][a-zA-Z0-9_:]* "
            "and are followed by whitespace and the value"
        )
    tok = _TEXT_TOKEN.match(line, pos2)
    assert tok is not None
    value = _float_value(tok.group(), "sample value")
    pos2 = _skip_ws(line, tok.end())
    ts = None
    if pos2 < n:
        tok = _TEXT_TOKEN.match(line, pos2)
        assert tok is not None
        ts = _text_timestamp(tok.group())
        pos2 = _skip_ws(line, tok.end())
        if pos2 < n:
            raise _LineError(f"unexpected text after the timestamp: {line[pos2:pos2 + 20]!r}")
    return name, labels, value, ts


def _careful(lines: list[tuple[int, str]], om: bool) -> tuple[pl.DataFrame, tuple[int, str] | None]:
    """Parse sample lines one by one; stop at the first bad one and return it as the error."""
    ns: list[int] = []
    names: list[str] = []
    values: list[float] = []
    tss: list[int | None] = []
    label_rows: list[dict[str, str]] = []
    error: tuple[int, str] | None = None
    for n, line in lines:
        try:
            name, labels, value, ts = _parse_sample_line(line, om)
        except _LineError as e:
            error = (n, str(e))
            break
        ns.append(n)
        names.append(name)
        values.append(value)
        tss.append(ts)
        label_rows.append(labels)
    keys = sorted({k for lr in label_rows for k in lr})
    data: dict[str, list] = {_N: ns, _NAME: names, _VALUE: values, _TS: tss}
    schema: dict[str, pl.DataType] = {_N: pl.Int64(), _NAME: pl.String(), _VALUE: pl.Float64(), _TS: pl.Int64()}
    for k in keys:
        data[k] = [lr.get(k) for lr in label_rows]
        schema[k] = pl.String()
    return pl.DataFrame(data, schema=schema), error


# --------------------------------------------------------------------------------------------
# vectorised pass


def _template(name: str, keys: list[str], om: bool) -> str:
    """Full-line regex for one metric name and label-name sequence, one capture per label."""
    if keys:
        inner = ",".join(f'{k}="(?P<l{i}>[^"\\\\]*)"' for i, k in enumerate(keys))
        head = f"^{name}\\{{{inner}\\}}"
    else:
        head = f"^{name}(?:\\{{\\}})?"
    return head + (_TAIL_OM if om else _TAIL_TEXT)


def _fast(samples: pl.DataFrame, om: bool) -> tuple[pl.DataFrame, list[int]]:
    """Parse well-formed sample lines at once; return (frame, line numbers left for the careful parser).

    Lines are grouped by metric name; within a name, the label-name sequence of the first line
    gives a full-line regex with one capture per label, so a line is read by one regex pass.
    Lines no template matches go through a generic pass (name, raw labels, value), and what
    that does not accept is left to :func:`_careful`.
    """
    tail = {"val": "#val", "ts": "#tstok"}
    if om:
        tail.update(exv="#exv", exts="#exts")
    tail_cols = list(tail.values())
    line = pl.col("#line")
    big = pl.lit(2**31, dtype=pl.Int64)
    end = pl.min_horizontal(
        line.str.find("{", literal=True).cast(pl.Int64).fill_null(big),
        line.str.find(" ", literal=True).cast(pl.Int64).fill_null(big),
    )
    df = samples.with_columns(line.str.slice(0, end).alias("#k"))
    chunks: list[pl.DataFrame] = []
    leftover: list[pl.DataFrame] = []
    parts = df.partition_by("#k", maintain_order=True) if df["#k"].n_unique() <= _MAX_NAME_GROUPS else []
    if not parts and df.height:
        leftover.append(df)
    budget = _TEMPLATE_BUDGET
    for rest in parts:
        name = rest["#k"][0]
        if not _METRIC_NAME_FULL.match(name) or budget <= 0:
            leftover.append(rest)
            continue
        for _ in range(_MAX_TEMPLATES):
            budget -= 1
            try:
                _, labels, _, _ = _parse_sample_line(rest["#line"][0], om)
            except _LineError:
                break
            keys = list(labels)
            ext = rest["#line"].str.extract_groups(_template(name, keys, om)).struct.unnest()
            hit = ext["val"].is_not_null()
            if not hit[0]:
                break  # the first line is not in canonical form
            got = ext.filter(hit)
            chunks.append(
                got.select(
                    *(pl.col(k).alias(v) for k, v in tail.items()),
                    *(pl.col(f"l{i}").alias(k) for i, k in enumerate(keys)),
                ).with_columns(rest[_N].filter(hit), pl.lit(name).alias(_NAME))
            )
            rest = rest.filter(~hit)
            if rest.height == 0:
                break
        if rest.height:
            leftover.append(rest)
    if leftover:
        chunks.append(_generic(pl.concat(leftover), om, tail))
    if not chunks:
        return pl.DataFrame(schema={_N: pl.Int64, _NAME: pl.String, _VALUE: pl.Float64, _TS: pl.Int64}), []
    g = pl.concat(chunks, how="diagonal_relaxed") if len(chunks) > 1 else chunks[0]
    left = g.filter(pl.col("#val").is_null())[_N].to_list()
    g = g.filter(pl.col("#val").is_not_null())
    value = pl.col("#val").cast(pl.Float64, strict=False)
    if om:
        ts = _seconds_to_ms(pl.col("#tstok"))
    else:
        ts = pl.col("#tstok").cast(pl.Int64, strict=False)
    g = g.with_columns(value.alias(_VALUE), ts.alias(_TS))
    # rows the regex accepted but the numbers do not: out of range (the careful parser says so)
    bad = pl.col(_VALUE).is_null() | (pl.col(_TS).is_null() & pl.col("#tstok").is_not_null())
    suspicious = pl.col(_VALUE).is_infinite()
    if om:
        suspicious = suspicious | pl.col("#exv").is_not_null()
    sus = g.filter(suspicious & ~bad)
    if sus.height:
        really = ~pl.col("#val").str.contains("(?i)inf") & pl.col(_VALUE).is_infinite()
        if om:
            exv = pl.col("#exv").cast(pl.Float64, strict=False)
            exts = _seconds_to_ms(pl.col("#exts"))
            really = really | (
                pl.col("#exv").is_not_null()
                & (
                    exv.is_null()
                    | (exv.is_infinite() & ~pl.col("#exv").str.contains("(?i)inf"))
                    | (pl.col("#exts").is_not_null() & exts.is_null())
                )
            )
        bad_sus = sus.filter(really)[_N]
        bad = bad | pl.col(_N).is_in(bad_sus.implode())
    g = g.with_columns(bad.alias("#bad"))
    left.extend(g.filter(pl.col("#bad"))[_N].to_list())
    g = g.filter(~pl.col("#bad")).drop("#bad", "#labels", *tail_cols, strict=False)
    return g.sort(_N), left


def _seconds_to_ms(tok: pl.Expr) -> pl.Expr:
    """OpenMetrics seconds -> ms, rounded like :func:`_om_timestamp`; null when out of range."""
    return (tok.cast(pl.Float64, strict=False) * 1000.0 + 0.5).floor().cast(pl.Int64, strict=False)


def _generic(df: pl.DataFrame, om: bool, tail: dict[str, str]) -> pl.DataFrame:
    """Generic vectorised pass: name, raw ``a="x",...`` labels, value.

    Lines with repeated label names, escapes or any other irregularity come out with a null value
    token, for the careful parser.
    """
    ext = df["#line"].str.extract_groups(_GENERIC + (_TAIL_OM if om else _TAIL_TEXT)).struct.unnest()
    g = ext.rename({"name": _NAME, "labels": "#labels", **tail}).with_columns(df[_N])
    labels, dup_rows = _generic_labels(g["#labels"])
    if labels:
        g = g.with_columns(*(labels[k] for k in sorted(labels)))
    if dup_rows:  # repeated label names: leave the line to the careful parser
        dup = pl.int_range(pl.len()).is_in(pl.Series(dup_rows).implode())
        g = g.with_columns(pl.when(dup).then(None).otherwise(pl.col("#val")).alias("#val"))
    return g.drop("#labels")


def _generic_labels(raw: pl.Series) -> tuple[dict[str, pl.Series], list[int]]:
    """Split ``a="x",b="y"`` strings (no escapes) into one Series per label name.

    Returns the columns and the row positions that repeat a label name.
    """
    height = raw.len()
    long = (
        pl.DataFrame({"raw": raw})
        .with_row_index("r")
        .filter(pl.col("raw").is_not_null())
        .select("r", pl.col("raw").str.extract_all(_PAIR).alias("p"))
        .explode("p")
        .select("r", pl.col("p").str.splitn('="', 2).alias("s"))
        .unnest("s")
        .select("r", pl.col("field_0").alias("k"), pl.col("field_1").str.head(-1).alias("v"))
    )
    if long.height == 0:
        return {}, []
    dups: list[int] = []
    counts = long.group_by("r", "k").len().filter(pl.col("len") > 1)
    if counts.height:
        dups = sorted(set(counts["r"].to_list()))
        long = long.filter(~pl.col("r").is_in(counts["r"].implode()))
    cols: dict[str, pl.Series] = {}
    for (key,), part in long.partition_by("k", as_dict=True, maintain_order=True).items():
        col = pl.repeat(None, height, dtype=pl.String, eager=True).alias(key)
        cols[key] = col.scatter(part["r"], part["v"])
    return cols, dups


# --------------------------------------------------------------------------------------------
# metadata


class _Meta:
    def __init__(self, om: bool):
        self.om = om
        self.types: dict[str, tuple[str, int]] = {}
        self.helps: dict[str, int] = {}
        self.units: dict[str, int] = {}
        self.meta_lines: dict[str, list[int]] = {}
        # sample name -> (family, suffix, type)
        self.claims: dict[str, tuple[str, str, str]] = {}
        self.default_type = "unknown" if om else "untyped"

    def family_of(self, name: str) -> tuple[str, str, str]:
        return self.claims.get(name) or (name, "", self.default_type)


def _parse_meta(
    comments: list[tuple[int, str]], om: bool, eof_line: int | None
) -> tuple[_Meta, tuple[int, str] | None]:
    """Read HELP/TYPE/UNIT lines; return what they declare and the first bad line, if any."""
    meta = _Meta(om)
    errors: list[tuple[int, str]] = []
    suffixes = OPENMETRICS_TYPES if om else TEXT_TYPES
    for n, line in comments:
        if om:
            if line == "# EOF":
                if n != eof_line:
                    errors.append((n, "'# EOF' before the end of the exposition: it must be the last line"))
                continue
            m = _META_OM.match(line)
            if m is None:
                errors.append((n, (
                    "OpenMetrics allows only '# HELP name text', '# TYPE name type', '# UNIT name unit' "
                    "and a final '# EOF' as comment lines (single spaces); remove free comments"
                )))
                continue
        else:
            m = _META_TEXT.match(line)
            if m is None:
                continue  # a free comment
        kw, rest = m.group(1), m.group(2)
        nm = _METRIC_NAME_RE.match(rest)
        after = rest[nm.end():] if nm else ""
        if nm is None or (after and after[0] not in " \t"):
            bad = rest.split()[0] if rest.split() else ""
            errors.append((
                n, f"invalid metric name {bad!r} after '# {kw}': metric names match [a-zA-Z_:][a-zA-Z0-9_:]*"
            ))
            continue
        name = nm.group()
        arg = after[1:] if after else ""
        if kw == "TYPE":
            t = arg.strip(" \t") if not om else arg
            if not t:
                errors.append((n, f"TYPE line for {name} has no type: write '# TYPE {name} <type>'"))
                continue
            if t not in suffixes:
                fmt = "OpenMetrics" if om else "the Prometheus text format"
                errors.append((n, (
                    f"unknown metric type {t!r} for {name}: {fmt} has {', '.join(suffixes)}"
                )))
                continue
            if name in meta.types:
                errors.append((n, f"second TYPE line for {name} (the first is on line {meta.types[name][1]})"))
                continue
            meta.types[name] = (t, n)
        elif kw == "HELP":
            if name in meta.helps:
                errors.append((n, f"second HELP line for {name} (the first is on line {meta.helps[name]})"))
                continue
            meta.helps[name] = n
        else:  # UNIT, OpenMetrics only
            if name in meta.units:
                errors.append((n, f"second UNIT line for {name} (the first is on line {meta.units[name]})"))
                continue
            if arg and not name.endswith("_" + arg):
                errors.append((n, (
                    f"unit {arg!r} is not a suffix of the metric name {name}: OpenMetrics requires a family "
                    f"with a unit to be named *_{arg}"
                )))
                continue
            meta.units[name] = n
        if om or kw == "TYPE":
            meta.meta_lines.setdefault(name, []).append(n)
    for family, (t, n) in sorted(meta.types.items(), key=lambda kv: kv[1][1]):
        for s in suffixes[t]:
            sample = family + s
            other = meta.claims.get(sample)
            if other is not None and other[0] != family:
                errors.append((n, (
                    f"{sample} is a sample of {other[2]} {other[0]} (TYPE on line {meta.types[other[0]][1]}), "
                    f"so {family} cannot also be declared a {t} with a sample of that name"
                )))
                continue
            meta.claims[sample] = (family, s, t)
    return meta, (min(errors) if errors else None)


# --------------------------------------------------------------------------------------------
# parse


def is_openmetrics(text: str) -> bool:
    """True when ``text`` is OpenMetrics, i.e. its last line (trailing newlines aside) is ``# EOF``.

    >>> is_openmetrics("a 1\\n# EOF\\n"), is_openmetrics("a 1\\n")
    (True, False)
    """
    t = text.rstrip("\n")
    return t == "# EOF" or t.endswith("\n# EOF")


def parse(
    text: str | bytes,
    *,
    path: str | None = None,
    default_timestamp_ms: int | None = None,
) -> pl.DataFrame:
    """Parse a Prometheus text or OpenMetrics exposition into the canonical frame.

    Parameters
    ----------
    text : str or bytes
        The exposition (bytes are decoded as UTF-8). OpenMetrics when it ends with ``# EOF``.
    path : str, optional
        Named in error messages.
    default_timestamp_ms : int, optional
        Timestamp (ms since the epoch, UTC) for samples that have none, typically the scrape time.

    Returns
    -------
    polars.DataFrame
        The canonical telemetry frame (see :mod:`dwcpkit.telemetry.schema`).

    Raises
    ------
    ParseError
        On the first malformed line (``path`` and 1-based ``line`` set), or when a sample has no
        timestamp and ``default_timestamp_ms`` is None.

    Examples
    --------
    >>> text = '''# TYPE rpc_seconds histogram
    ... rpc_seconds_bucket{le="1"} 3 1700000000000
    ... rpc_seconds_bucket{le="+Inf"} 4 1700000000000
    ... rpc_seconds_sum 2.5 1700000000000
    ... rpc_seconds_count 4 1700000000000
    ... '''
    >>> parse(text).select("metric", "le", "value").rows()[:2]
    [('rpc_seconds_bucket', '+Inf', 4.0), ('rpc_seconds_bucket', '1.0', 3.0)]
    """
    return _parse(text, path=path, default_timestamp_ms=default_timestamp_ms, careful=False)


def _parse(
    text: str | bytes,
    *,
    path: str | None,
    default_timestamp_ms: int | None,
    careful: bool,
) -> pl.DataFrame:
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            line = bytes(text)[: e.start].count(b"\n") + 1
            raise ParseError(
                f"the exposition is not UTF-8 text ({e.reason} at byte {e.start})", path=path, line=line
            ) from None
    if default_timestamp_ms is not None and (
        isinstance(default_timestamp_ms, bool) or not isinstance(default_timestamp_ms, int)
    ):
        raise ParameterError(
            f"default_timestamp_ms must be an int (milliseconds since the epoch), got {default_timestamp_ms!r}"
        )
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    om = is_openmetrics(text)
    raw_lines = text.split("\n")
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    eof_line: int | None = None
    if om:
        while raw_lines and raw_lines[-1] == "":
            raw_lines.pop()  # blank lines after '# EOF' are harmless
        eof_line = len(raw_lines)
    errors: list[tuple[int, str]] = []

    lines = pl.DataFrame({"#line": pl.Series(raw_lines, dtype=pl.String)}).with_row_index(_N, offset=1)
    lines = lines.with_columns(pl.col(_N).cast(pl.Int64))
    line = pl.col("#line")
    if om:
        kind = pl.when(line == "").then(0).when(line.str.starts_with("#")).then(1).otherwise(2)
    else:
        stripped = line.str.strip_chars_start(" \t")
        kind = pl.when(stripped == "").then(0).when(stripped.str.starts_with("#")).then(1).otherwise(2)
    lines = lines.with_columns(kind.cast(pl.Int8).alias("#kind"))
    if om:
        blank = lines.filter(pl.col("#kind") == 0)
        if blank.height:
            errors.append((blank[_N][0], "blank line: OpenMetrics does not allow empty lines"))
    comments = lines.filter(pl.col("#kind") == 1).select(_N, "#line").rows()
    meta, err = _parse_meta(comments, om, eof_line)
    if err:
        errors.append(err)

    sample_lines = lines.filter(pl.col("#kind") == 2).select(_N, "#line")
    if careful:
        fast_frame = None
        left_lines = sample_lines.rows()
    else:
        fast_frame, left = _fast(sample_lines, om)
        left_lines = (
            sample_lines.filter(pl.col(_N).is_in(pl.Series(left, dtype=pl.Int64).implode())).rows() if left else []
        )
    careful_frame, err = _careful(left_lines, om)
    if err:
        errors.append(err)
    parts = [f for f in (fast_frame, careful_frame) if f is not None and f.height]
    if len(parts) == 2:  # keep line order, so equal series keep their order in the frame
        s = pl.concat(parts, how="diagonal_relaxed").sort(_N)
    elif parts:
        s = parts[0]
    else:
        s = careful_frame
    frame = _finish(s, meta, om, default_timestamp_ms, errors)
    if errors:
        n, msg = min(errors)
        raise ParseError(msg, path=path, line=n)
    assert frame is not None
    return frame


def _first_line(s: pl.DataFrame, mask: pl.Expr) -> int | None:
    hit = s.filter(mask)
    return int(hit[_N].min()) if hit.height else None  # type: ignore[arg-type]


def _finish(
    s: pl.DataFrame,
    meta: _Meta,
    om: bool,
    default_ts: int | None,
    errors: list[tuple[int, str]],
) -> pl.DataFrame | None:
    """Family checks, le/quantile normalisation, timestamps; build the canonical frame."""
    labels = [c for c in s.columns if not c.startswith("#")]
    # empty label value == no label (Prometheus semantics)
    if labels:
        s = s.with_columns(pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in labels)
    for c in labels:
        if c in CORE_COLUMNS:
            n = _first_line(s, pl.col(c).is_not_null())
            if n is not None:
                errors.append((n, (
                    f"label name {c!r} collides with the telemetry frame's {c!r} column; rename the label "
                    "(e.g. with metric_relabel_configs) before loading"
                )))
    first = dict(s.group_by(_NAME).agg(pl.col(_N).min()).iter_rows())
    family_first: dict[str, int] = {}
    hist_names: list[str] = []
    summary_names: list[str] = []
    bucket_names: list[str] = []
    created_names: list[str] = []
    for name, n in first.items():
        family, suffix, t = meta.family_of(name)
        if name not in meta.claims and name in meta.types:
            t = meta.types[name][0]
            need = ", ".join(name + x for x in (OPENMETRICS_TYPES if om else TEXT_TYPES)[t])
            errors.append((n, f"sample {name} does not fit the {t} family {name}: its samples are named {need}"))
        family_first[family] = min(n, family_first.get(family, n))
        if t == "histogram":
            hist_names.append(name)
        elif t == "summary":
            summary_names.append(name)
        if suffix == "_bucket" and t in ("histogram", "gaugehistogram"):
            bucket_names.append(name)
        if om and suffix == "_created":
            created_names.append(name)
    for family, lines_ in meta.meta_lines.items():
        f1 = family_first.get(family)
        if f1 is None:
            continue
        late = [n for n in lines_ if n > f1]
        if late:
            kind = "metadata (# TYPE/# HELP/# UNIT)" if om else "TYPE"
            errors.append((min(late), (
                f"{kind} line for {family} comes after its samples (first sample on line {f1}); "
                f"put the metadata lines of a family before its samples"
            )))
    if created_names:
        s = s.filter(~pl.col(_NAME).is_in(pl.Series(created_names, dtype=pl.String).implode()))
    for label, names, what in (("le", hist_names, "histogram"), ("quantile", summary_names, "summary")):
        if not names:
            continue
        in_family = pl.col(_NAME).is_in(pl.Series(names, dtype=pl.String).implode())
        if label == "le" and bucket_names:
            is_bucket = pl.col(_NAME).is_in(pl.Series(bucket_names, dtype=pl.String).implode())
            missing = is_bucket if "le" not in s.columns else is_bucket & pl.col("le").is_null()
            n = _first_line(s, missing)
            if n is not None:
                errors.append((n, (
                    f"{what} bucket sample without an 'le' label: every *_bucket sample needs "
                    'le="<upper bound>"'
                )))
        if label not in s.columns:
            continue
        values = s.filter(in_family & pl.col(label).is_not_null())[label].unique().to_list()
        mapping: dict[str, str] = {}
        for v in values:
            c = _canonical_float_label(v)
            if c is None:
                n = _first_line(s, in_family & (pl.col(label) == v))
                errors.append((n, f"{label} label value {v!r} of a {what} is not a number"))  # type: ignore[arg-type]
            elif c != v:
                mapping[v] = c
        if mapping:
            s = s.with_columns(
                pl.when(in_family).then(pl.col(label).replace(mapping)).otherwise(pl.col(label)).alias(label)
            )
    if s[_TS].null_count():
        if default_ts is None:
            n = _first_line(s, pl.col(_TS).is_null())
            errors.append((n, (  # type: ignore[arg-type]
                "sample has no timestamp: pass default_timestamp_ms=<scrape time in ms since the epoch> "
                "to stamp samples that have none"
            )))
        else:
            s = s.with_columns(pl.col(_TS).fill_null(default_ts))
    if errors:
        return None
    keep = [c for c in labels if s[c].null_count() < s.height]
    if s.height == 0:
        return empty_frame()
    out = s.select(
        pl.col(_TS).alias("timestamp"),
        pl.col(_NAME).alias("metric"),
        pl.col(_VALUE).alias("value"),
        *keep,
    )
    return normalize(out, source="exposition")


def read(path: str | Path, *, default_timestamp_ms: int | None = None) -> pl.DataFrame:
    """Read a ``.prom`` / ``.txt`` / ``.om`` exposition file into the canonical frame.

    The format is detected from the content (OpenMetrics ends with ``# EOF``); a ``.om`` file
    that does not end with ``# EOF`` is an error.

    Parameters
    ----------
    path : str or Path
        The file.
    default_timestamp_ms : int, optional
        See :func:`parse`.

    Returns
    -------
    polars.DataFrame

    Raises
    ------
    SourceError
        The file cannot be read.
    ParseError
        The content is malformed (file and line named).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "m.prom")
    >>> _ = open(p, "w").write("up 1 1700000000000\\n")
    >>> read(p)["value"].to_list()
    [1.0]
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{p}: no such file; check the path of the exposition file") from None
    except OSError as e:
        raise SourceError(f"{p}: cannot read the exposition file ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ParseError(
            f"not UTF-8 text ({e.reason} at byte {e.start}); save the file as UTF-8", path=str(p), line=line
        ) from None
    if p.suffix == ".om" and not is_openmetrics(text):
        raise ParseError(
            "an OpenMetrics (.om) file must end with a '# EOF' line; add it, or rename the file to .prom "
            "if it is in the Prometheus text format",
            path=str(p),
        )
    return parse(text, path=str(p), default_timestamp_ms=default_timestamp_ms)


# --------------------------------------------------------------------------------------------
# write


def _escape_label(col: pl.Expr) -> pl.Expr:
    return (
        col.str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all('"', '\\"', literal=True)
        .str.replace_all("\n", "\\n", literal=True)
    )


def _escape_help(text: str, om: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if om else text


class _Assigner:
    """Groups sample names into families so that :func:`parse` maps them back identically."""

    def __init__(self, frame: pl.DataFrame, om: bool):
        self.om = om
        self.suffixes = OPENMETRICS_TYPES if om else TEXT_TYPES
        self.present = set(frame["metric"].unique().to_list())
        self.assigned: dict[str, tuple[str, str, int]] = {}  # sample -> (family, type, rank)
        self.families: dict[str, str] = {}
        # per metric name and label (le/quantile): (all rows have it, any row has it,
        # every value is a number, every value is in format_float form)
        self.info: dict[str, dict[str, tuple[bool, bool, bool, bool]]] = {}
        for label in ("le", "quantile"):
            stats: dict[str, tuple[bool, bool, bool, bool]] = {}
            if label in frame.columns:
                by = frame.group_by("metric").agg(
                    pl.col(label).is_not_null().all().alias("all"),
                    pl.col(label).drop_nulls().unique().alias("vals"),
                )
                for name, all_, vals in by.iter_rows():
                    canon = [_canonical_float_label(v) for v in vals]
                    stats[name] = (
                        all_,
                        bool(vals),
                        all(c is not None for c in canon),
                        all(c == v for c, v in zip(canon, vals)),
                    )
            self.info[label] = stats
        # metric names whose values are all >= 0 (what OpenMetrics allows a counter)
        self.nonnegative = set(
            frame.group_by("metric")
            .agg((~pl.col("value").is_nan() & (pl.col("value") >= 0)).all().alias("ok"))
            .filter(pl.col("ok"))["metric"]
            .to_list()
        )
        self.quantile_in_range = set()
        if "quantile" in frame.columns:
            for name, vals in frame.group_by("metric").agg(pl.col("quantile").drop_nulls().unique()).iter_rows():
                if all(_canonical_float_label(v) is not None and 0 <= float(v) <= 1 for v in vals):
                    self.quantile_in_range.add(name)

    def _stat(self, label: str, name: str) -> tuple[bool, bool, bool, bool]:
        return self.info[label].get(name, (False, False, True, True))

    def claim(self, family: str, mtype: str, *, inferred: bool) -> str | None:
        """Make ``family`` a ``mtype`` family; return None, or why it cannot be.

        An ``inferred`` type must also leave the samples unchanged through :func:`parse`
        (canonical ``le``/``quantile``) and be valid OpenMetrics (counters >= 0, summaries
        with a quantile in [0, 1] on every quantile sample).
        """
        sfx = self.suffixes[mtype]
        names = [family + s for s in sfx if family + s in self.present]
        if not _METRIC_NAME_FULL.match(family):
            return f"{family!r} is not a valid metric family name"
        if family in self.families:
            return f"{family} is already a {self.families[family]} family"
        taken = [n for n in names if n in self.assigned]
        if taken:
            owner, otype, _ = self.assigned[taken[0]]
            return f"{taken[0]} already belongs to the {otype} family {owner}"
        if "" not in sfx and family in self.present:
            return f"the frame has samples named {family}, which a {mtype} family cannot have"
        if not names:
            return f"the frame has no samples of it ({', '.join(family + s for s in sfx)})"
        if mtype in ("histogram", "summary"):
            label = "le" if mtype == "histogram" else "quantile"
            for n in names:
                has_all, _, numeric, canon = self._stat(label, n)
                if not numeric or (inferred and not canon):
                    return f"{n} has {label} values that are not numbers in Prometheus' canonical form"
                if label == "le" and n.endswith("_bucket") and not has_all:
                    return f"{n} has rows without an le label"
        if inferred and mtype == "summary":
            if not self._stat("quantile", family)[0] or any(n not in self.quantile_in_range for n in names):
                return f"{family} needs a quantile label in [0, 1] on every row"
        if inferred and mtype == "counter" and any(n not in self.nonnegative for n in names):
            return "a counter's values are never negative or NaN"
        for n in names:
            self.assigned[n] = (family, mtype, sfx.index(n[len(family):]))
        self.families[family] = mtype
        return None

    def counter_family(self, key: str) -> str:
        if self.om:
            return key[: -len("_total")] if key.endswith("_total") else key
        if key not in self.present and key + "_total" in self.present:
            return key + "_total"
        return key

    def assign(self, types: Mapping[str, str]) -> None:
        for key, t in sorted(types.items()):
            t = self._map_type(t, key)
            family = self.counter_family(key) if t == "counter" else key
            why = self.claim(family, t, inferred=False)
            if why is not None:
                raise ParameterError(f"types[{key!r}] = {t!r} cannot be written: {why}")
        for name, fam in sorted(CATALOG.items()):
            t = fam.type
            family = self.counter_family(name) if t == "counter" else name
            if family not in self.families:
                self.claim(family, t, inferred=False)
        default = "unknown" if self.om else "untyped"
        for name in sorted(self.present):
            if name in self.assigned:
                continue
            ok = False
            if name.endswith("_bucket") and self._stat("le", name)[0]:
                ok = self.claim(name[: -len("_bucket")], "histogram", inferred=True) is None
            if not ok and self._stat("quantile", name)[1]:
                ok = self.claim(name, "summary", inferred=True) is None
            if not ok and name.endswith("_total"):
                ok = self.claim(self.counter_family(name), "counter", inferred=True) is None
            if not ok:
                why = self.claim(name, default, inferred=True)
                assert why is None, why

    def _map_type(self, t: str, key: str) -> str:
        if t in ("untyped", "unknown"):
            return "unknown" if self.om else "untyped"
        if t not in self.suffixes:
            fmt = "OpenMetrics" if self.om else "the Prometheus text format"
            raise ParameterError(
                f"types[{key!r}] = {t!r} is not a metric type of {fmt}: use one of {', '.join(self.suffixes)}"
            )
        return t


def _catalog_entry(family: str, mtype: str, om: bool):
    fam = CATALOG.get(family)
    if fam is None and om and mtype == "counter":
        fam = CATALOG.get(family + "_total")
    return fam


def write(
    frame: pl.DataFrame,
    *,
    openmetrics: bool = False,
    types: Mapping[str, str] | None = None,
    help: Mapping[str, str] | None = None,  # noqa: A002 - the Prometheus word
) -> str:
    """Write a canonical frame as a Prometheus text or OpenMetrics exposition.

    Samples are grouped into families, each with ``# TYPE`` (and ``# HELP`` when known) before
    its samples; within a family every series is time-sorted, buckets by numeric ``le``.
    Timestamps are integer milliseconds (text) or seconds (OpenMetrics; integer seconds when
    whole, as ``promtool tsdb create-blocks-from openmetrics`` wants), and OpenMetrics output ends
    with ``# EOF``. ``parse(write(f))`` equals ``f`` for any canonical frame whose label values are
    non-empty (an empty value means "no label"), whose label columns each hold a value, whose
    histogram ``le``/summary ``quantile`` values are in :func:`format_float` form, and, in
    OpenMetrics, that has no ``*_created`` series next to a counter/histogram/summary family.

    Parameters
    ----------
    frame : polars.DataFrame
        A canonical telemetry frame.
    openmetrics : bool
        OpenMetrics 1.0 instead of the Prometheus text format 0.0.4.
    types : mapping of str to str, optional
        Family name -> metric type, overriding the default: the type in
        :data:`dwcpkit.telemetry.names.CATALOG` for known families, else inferred
        (``*_bucket`` with ``le`` -> histogram, a ``quantile`` label -> summary, ``*_total`` ->
        counter, anything else untyped/unknown). A counter may be named with or without
        ``_total``.
    help : mapping of str to str, optional
        Family name -> help text (default: the catalogue's help for known families).

    Returns
    -------
    str

    Raises
    ------
    SchemaError
        ``frame`` is not a canonical frame, or has metric/label names Prometheus cannot carry.
    ParameterError
        A type in ``types`` is unknown or does not fit the samples.

    Examples
    --------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> f = from_rows([(1700000000000, "jobs_total", 3, {"queue": "a"})])
    >>> print(write(f, openmetrics=True), end="")
    # TYPE jobs counter
    jobs_total{queue="a"} 3.0 1700000000
    # EOF
    """
    om = bool(openmetrics)
    f = normalize(frame, source="write()")
    labels = label_columns(f)
    bad = [c for c in labels if not _LABEL_NAME_FULL.match(c)]
    if bad:
        raise SchemaError(
            f"label column(s) {bad} are not valid Prometheus label names ([a-zA-Z_][a-zA-Z0-9_]*); rename them"
        )
    names = f["metric"].unique().to_list()
    bad = sorted(n for n in names if not _METRIC_NAME_FULL.match(n))
    if bad:
        raise SchemaError(f"metric name(s) {bad[:5]} are not valid Prometheus metric names ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    if f.height == 0:
        return "# EOF\n" if om else ""
    assigner = _Assigner(f, om)
    assigner.assign(types or {})
    amap = assigner.assigned
    fam_of = {n: amap[n][0] for n in names}
    rank_of = {n: amap[n][2] for n in names}
    f = f.with_columns(
        pl.col("metric").replace_strict(fam_of, return_dtype=pl.String).alias("#family"),
        pl.col("metric").replace_strict(rank_of, return_dtype=pl.Int64).alias("#rank"),
    )
    special = [c for c in ("le", "quantile") if c in labels]
    plain = [c for c in labels if c not in special]
    f = f.with_columns(pl.col(c).cast(pl.Float64, strict=False).alias(f"#{c}num") for c in special)
    f = f.sort(
        ["#family", *plain, "#rank", *(f"#{c}num" for c in special), *special, "timestamp"],
        nulls_last=True,
        maintain_order=True,
    )
    pair_exprs = [
        pl.when(pl.col(c).is_not_null() & (pl.col(c) != "")).then(
            pl.concat_str([pl.lit(f'{c}="'), _escape_label(pl.col(c)), pl.lit('"')])
        )
        for c in plain + special
    ]
    if pair_exprs:
        inner = pl.concat_str(pair_exprs, separator=",", ignore_nulls=True)
        label_part = pl.when(inner != "").then(pl.concat_str([pl.lit("{"), inner, pl.lit("}")])).otherwise(pl.lit(""))
    else:
        label_part = pl.lit("")
    v = pl.col("value")
    value = (
        pl.when(v.is_infinite() & (v > 0)).then(pl.lit("+Inf"))
        .when(v.is_infinite()).then(pl.lit("-Inf"))
        .otherwise(v.cast(pl.String))
    )
    ms = pl.col("timestamp").dt.epoch("ms")
    if om:
        a = ms.abs()
        frac = (a % 1000).cast(pl.String).str.pad_start(3, "0").str.strip_chars_end("0")
        ts = pl.concat_str([
            pl.when(ms < 0).then(pl.lit("-")).otherwise(pl.lit("")),
            (a // 1000).cast(pl.String),
            pl.when(a % 1000 != 0).then(pl.concat_str([pl.lit("."), frac])).otherwise(pl.lit("")),
        ])
    else:
        ts = ms.cast(pl.String)
    f = f.select(
        "#family",
        pl.concat_str([pl.col("metric"), label_part, pl.lit(" "), value, pl.lit(" "), ts]).alias("#line"),
    )
    out: list[str] = []
    helps = dict(help or {})
    lines = f["#line"].to_list()
    fams = f["#family"].rle()
    pos = 0
    for length, family in fams.struct.unnest().iter_rows():
        mtype = assigner.families[family]
        entry = _catalog_entry(family, mtype, om)
        text = helps.get(family)
        if text is None and om and mtype == "counter":
            text = helps.get(family + "_total")
        if text is None and entry is not None:
            text = entry.help
        if text is not None:
            out.append(f"# HELP {family} {_escape_help(text, om)}")
        out.append(f"# TYPE {family} {mtype}")
        if om and entry is not None and entry.unit and family.endswith("_" + entry.unit):
            out.append(f"# UNIT {family} {entry.unit}")
        out.extend(lines[pos:pos + length])
        pos += length
    if om:
        out.append("# EOF")
    return "\n".join(out) + "\n"


def write_file(
    frame: pl.DataFrame,
    path: str | Path,
    *,
    openmetrics: bool | None = None,
    types: Mapping[str, str] | None = None,
    help: Mapping[str, str] | None = None,  # noqa: A002
) -> Path:
    """Write :func:`write`'s output to ``path``; OpenMetrics by default when it ends in ``.om``.

    Examples
    --------
    >>> import tempfile, os
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> p = write_file(from_rows([(0, "up", 1, {})]), os.path.join(tempfile.mkdtemp(), "up.om"))
    >>> p.read_text().splitlines()[-1]
    '# EOF'
    """
    p = Path(path)
    if openmetrics is None:
        openmetrics = p.suffix == ".om"
    text = write(frame, openmetrics=openmetrics, types=types, help=help)
    try:
        p.write_text(text, encoding="utf-8", newline="\n")
    except OSError as e:
        raise SourceError(f"{p}: cannot write the exposition file ({e.strerror or e})") from None
    return p
