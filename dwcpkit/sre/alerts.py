"""Which alerts would have fired when: dwcpkit's Prometheus alert rules replayed over a telemetry frame.

The rules are the package's ``dwcpkit/rules/dwcp-alerts.yml`` (the original's 26 Phase 6 alerts and
its v1-vs-v3 rollout rules, repaired; the file documents every repair) or any Prometheus rule file
that stays within the PromQL subset below.

How the replay works
--------------------
Every rule expression is evaluated at every instant of a grid ``start + k * step`` the way
Prometheus' ``/api/v1/query_range`` evaluates it (Prometheus 2.42 semantics: 5-minute lookback,
closed range windows, ``rate``/``increase``/``histogram_quantile`` from :mod:`dwcpkit.sre.slo`).
Recording rules are evaluated from their expressions on the same grid, so alerts that read them see
what a Prometheus recording every ``step`` would hold. Each alert then goes through Prometheus'
state machine (``rules/alerting.go``): a label set that appears becomes *pending* with
``active_at`` = that instant, turns *firing* at the first instant ``t`` with
``t - active_at >= for``, and is resolved at the first instant it is absent (a pending alert that
vanishes is dropped; one that comes back starts again).

The PromQL subset (a small evaluator, ``dwcpkit.sre._promql``): selectors with ``= != =~ !~``,
range selectors and subqueries, ``rate increase delta deriv changes *_over_time abs
histogram_quantile vector time``, ``sum avg min max count`` with ``by``/``without``, arithmetic,
comparisons with and without ``bool``, ``and or unless``, ``on``/``ignoring``. ``offset``, ``@``,
``group_left``/``group_right`` and other functions raise :class:`~dwcpkit.errors.ParseError` naming
the rule.

Differences from a live Prometheus, by design: every group is evaluated every ``step`` (Prometheus
uses each group's ``interval``; with 1-minute data this moves ``for:`` boundaries by less than a
step); recording rules are evaluated before the alerts that read them at each instant (a live
Prometheus runs groups independently, so an alert may read a value one recording interval old;
``promtool test rules`` does what the replay does when ``group_eval_order`` lists the recording
group first); time starts at ``start`` with no alert history; annotations are not templated.

Example
-------
>>> from dwcpkit.telemetry.sources import load
>>> from dwcpkit.sre.alerts import replay
>>> frame = load("sample", start="2026-11-01T18:00:00Z", end="2026-11-01T21:00:00Z")
>>> fired = replay(frame, start="2026-11-01T19:00:00Z", end="2026-11-01T21:00:00Z")
>>> fired.filter(fired["alert"] == "DWCPv3ComponentDown").select("labels", "state").row(0)
('{component="hde", region="eu-west"}', 'firing')
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from dwcpkit.errors import DataError, ParameterError, ParseError
from dwcpkit.sre import _promql, slo
from dwcpkit.telemetry import schema

__all__ = [
    "RULES_PATH",
    "RUNBOOK_PREFIX",
    "Rule",
    "load_rules",
    "expand",
    "evaluate",
    "alert_intervals",
    "replay",
]

#: The rules file shipped with dwcpkit.
RULES_PATH = Path(__file__).resolve().parent.parent / "rules" / "dwcp-alerts.yml"
#: ``runbook_url`` annotations name a dwcpkit runbook as ``dwcpkit://runbooks/<name>``.
RUNBOOK_PREFIX = "dwcpkit://runbooks/"

_TS = schema.TIMESTAMP_DTYPE
_RESULT_SCHEMA = {
    "alert": pl.String(),
    "labels": pl.String(),
    "state": pl.String(),
    "active_at": _TS,
    "fired_at": _TS,
    "resolved_at": _TS,
}
TimeLike = int | datetime | str


@dataclass(frozen=True)
class Rule:
    """One rule of a Prometheus rule file.

    ``kind`` is ``"alert"`` or ``"record"``; ``name`` the alert or recorded series name; ``for_ms``
    the ``for:`` hold in milliseconds (0 for recording rules); ``line`` the 1-based line of the rule
    in its file.
    """

    kind: str
    name: str
    expr: str
    group: str
    interval_ms: int
    for_ms: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    line: int | None = None

    @property
    def severity(self) -> str | None:
        """The ``severity`` label."""
        return self.labels.get("severity")

    @property
    def runbook(self) -> str | None:
        """The dwcpkit runbook named by the ``runbook_url`` annotation (``None`` if it names none)."""
        url = self.annotations.get("runbook_url", "")
        return url[len(RUNBOOK_PREFIX):] if url.startswith(RUNBOOK_PREFIX) else None


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that records the line of every mapping (as ``__line__``)."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    out = loader.construct_mapping(node, deep=True)
    out["__line__"] = node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def _duration(value, what: str, path: str, line: int | None) -> int:
    try:
        return slo.parse_duration(str(value))
    except ParameterError as e:
        raise ParseError(f"{what}: {e}", path=path, line=line) from None


def load_rules(path: str | os.PathLike[str] | None = None) -> list[Rule]:
    """Read a Prometheus rule file (default :data:`RULES_PATH`) and parse every expression.

    Raises
    ------
    ParseError
        The file is missing, is not valid YAML, lacks ``groups``/``expr``/a name, or an expression
        uses PromQL outside the supported subset (the message names the rule, file and line).

    Examples
    --------
    >>> rules = load_rules()
    >>> sum(r.kind == "alert" for r in rules)
    29
    """
    p = Path(path) if path is not None else RULES_PATH
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ParseError(f"cannot read the rule file ({e.strerror or e})", path=str(p)) from None
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ParseError(f"not valid YAML: {getattr(e, 'problem', e)}", path=str(p),
                         line=mark.line + 1 if mark else None) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list):
        raise ParseError("a Prometheus rule file is a mapping with a 'groups' list", path=str(p))
    rules: list[Rule] = []
    for g in doc["groups"]:
        if not isinstance(g, dict) or "name" not in g or not isinstance(g.get("rules"), list):
            line = g.get("__line__") if isinstance(g, dict) else None
            raise ParseError("each group needs a 'name' and a 'rules' list", path=str(p), line=line)
        interval = _duration(g.get("interval", "1m"), f"group {g['name']!r} interval", str(p), g.get("__line__"))
        for r in g["rules"]:
            line = r.get("__line__") if isinstance(r, dict) else g.get("__line__")
            if not isinstance(r, dict) or ("alert" in r) == ("record" in r) or "expr" not in r:
                raise ParseError("each rule needs 'expr' and exactly one of 'alert' or 'record'", path=str(p),
                                 line=line)
            kind = "alert" if "alert" in r else "record"
            name = str(r[kind])
            for_ms = _duration(r["for"], f"rule {name!r} for", str(p), line) if r.get("for") else 0
            clean = {k: str(v) for k, v in (r.get("labels") or {}).items() if k != "__line__"}
            notes = {k: str(v) for k, v in (r.get("annotations") or {}).items() if k != "__line__"}
            rule = Rule(kind, name, str(r["expr"]), str(g["name"]), interval, for_ms, clean, notes, line)
            try:
                _promql.parse(rule.expr)
            except ParseError as e:
                raise ParseError(f"rule {name!r}: {e}", path=str(p), line=line) from None
            rules.append(rule)
    return rules


def _rules(rules: Sequence[Rule] | str | os.PathLike[str] | None) -> list[Rule]:
    if rules is None or isinstance(rules, (str, os.PathLike)):
        return load_rules(rules)
    return list(rules)


def _records(rules: Sequence[Rule]) -> dict[str, tuple[object, Mapping[str, str]]]:
    out: dict[str, tuple[object, Mapping[str, str]]] = {}
    for r in rules:
        if r.kind != "record":
            continue
        if r.name in out:
            raise ParseError(
                f"recording rule {r.name!r} is defined twice; the replay needs one expression per recorded name",
                line=r.line)
        out[r.name] = (_promql.parse(r.expr), dict(r.labels))
    return out


def expand(expr: str, rules: Sequence[Rule] | str | os.PathLike[str] | None = None, *, step: str = "1m") -> str:
    """``expr`` with every recording rule it reads replaced by that rule's expression.

    A reference ``name`` becomes ``(expr)`` and ``name[range]`` the subquery ``(expr)[range:step]``,
    so the result can be sent to any Prometheus, also one that never ran the recording rules (e.g. one
    serving backfilled data). References with label matchers cannot be inlined (ParseError).

    Examples
    --------
    >>> expand("dwcp_v3:rollout_go:5m == 0").startswith("((")
    True
    """
    slo.parse_duration(step)  # validate
    table = {r.name: r.expr for r in _rules(rules) if r.kind == "record"}
    return _promql.expand_records(expr, table, step)


def _ms(value: TimeLike, name: str) -> int:
    """Epoch milliseconds of an aware datetime, ISO-8601 string or epoch-ms integer."""
    try:
        return int(slo.eval_times(value, value, "1s")[0])
    except ParameterError as e:
        raise ParameterError(f"{name}: {e}") from None


def _grid(frame: pl.DataFrame, start: TimeLike | None, end: TimeLike | None, step: str) -> tuple[np.ndarray, int]:
    step_ms = slo.parse_duration(step)
    if (start is None or end is None) and frame.height == 0:
        raise DataError("the frame is empty, so the replay window is unknown; load telemetry or pass start and end")
    ts = frame["timestamp"].dt.epoch("ms") if frame.height else None
    lo = int(ts.min()) if start is None else _ms(start, "start")
    hi = int(ts.max()) if end is None else _ms(end, "end")
    if hi < lo:
        raise ParameterError(f"end ({end}) is before start ({start})")
    first = -(-lo // step_ms) * step_ms  # instants are multiples of step, as subqueries' are
    if first > hi:
        raise ParameterError(f"no multiple of step={step!r} lies between start and end; widen the window")
    return first + step_ms * np.arange((hi - first) // step_ms + 1, dtype=np.int64), step_ms


def evaluate(
    expr: str,
    frame: pl.DataFrame,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    step: str = "1m",
    rules: Sequence[Rule] | str | os.PathLike[str] | None = None,
) -> pl.DataFrame:
    """Evaluate a PromQL expression over ``frame`` at every ``step`` from ``start`` to ``end``.

    What ``/api/v1/query_range`` would answer for the same data, as a canonical frame (``metric`` is
    the result's ``__name__``, or ``"value"`` when it has none). Instants are the multiples of
    ``step`` between ``start`` and ``end`` (default: the frame's time span). Recording rules of
    ``rules`` (default: dwcpkit's rules file) may be referenced by name.

    Examples
    --------
    >>> from dwcpkit.telemetry.sources import load
    >>> f = load("sample", metrics=["dwcp_v3_component_health"], start="2026-11-01T19:00:00Z",
    ...          end="2026-11-01T20:00:00Z")
    >>> evaluate("count(dwcp_v3_component_health == 0)", f, start="2026-11-01T19:45:00Z",
    ...          end="2026-11-01T19:45:00Z")["value"].to_list()
    [1.0]
    """
    frame = schema.normalize(frame, source="evaluate")
    grid, step_ms = _grid(frame, start, end, step)
    ast = _promql.parse(expr)
    ev = _promql.Evaluator(frame, grid, step_ms, _records(_rules(rules)))
    val = ev.eval(ast)
    if isinstance(val, _promql.Sca):
        val = _promql.Vec([()], val.v[None, :], np.ones((1, grid.size), dtype=bool))
    return _promql.matrix_to_frame(val, grid)


def _runs(present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a 1-D bool array."""
    d = np.diff(np.concatenate([[0], present.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _intervals(alert: str, labels: list[str], present: np.ndarray, grid: np.ndarray, for_ms: int) -> list[dict]:
    rows = []
    for lab, row in zip(labels, present):
        a, b = _runs(row)
        for s, e in zip(a, b):
            active = int(grid[s])
            k = int(np.searchsorted(grid, active + for_ms, side="left"))
            fired = int(grid[k]) if k < e else None
            rows.append({
                "alert": alert,
                "labels": lab,
                "state": "firing" if fired is not None else "pending",
                "active_at": active,
                "fired_at": fired,
                "resolved_at": int(grid[e]) if e < grid.size else None,
            })
    return rows


def _frame_of(rows: list[dict], extra: Mapping[str, pl.DataType] | None = None) -> pl.DataFrame:
    schema_ = {**_RESULT_SCHEMA, **(extra or {})}
    if not rows:
        return pl.DataFrame(schema=schema_)
    data = {k: [r.get(k) for r in rows] for k in schema_}
    out = pl.DataFrame({k: data[k] for k in schema_},
                       schema={k: (pl.Int64 if v == _TS else v) for k, v in schema_.items()})
    out = out.with_columns(pl.col(c).cast(_TS) for c in ("active_at", "fired_at", "resolved_at"))
    return out.sort(["active_at", "alert", "labels"])


def alert_intervals(
    active: pl.DataFrame,
    *,
    for_: str | int = 0,
    start: TimeLike,
    end: TimeLike,
    step: str = "1m",
    alert: str = "alert",
) -> pl.DataFrame:
    """Prometheus' pending/firing state machine over an alert expression's results.

    ``active`` holds the expression's samples at the instants ``start + k * step`` (a canonical frame,
    e.g. :meth:`dwcpkit.telemetry.prometheus.PrometheusClient.query_range` of the alert's
    :func:`expand`-ed expression, or :func:`evaluate`): a label set is active at the instants where
    it has a sample. ``for_`` is the rule's hold (``"5m"`` or milliseconds). Columns as
    :func:`replay` without ``severity`` and ``runbook_url``; ``labels`` ignores ``metric``.

    Examples
    --------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> act = from_rows([(t * 60_000, "up", 0.0, {"job": "a"}) for t in (1, 2, 3)])
    >>> alert_intervals(act, for_="2m", start=0, end=300_000).select("state", "fired_at").row(0)[0]
    'firing'
    """
    frame = schema.normalize(active, source="alert_intervals")
    grid, _ = _grid(frame, start, end, step)
    for_ms = for_ if isinstance(for_, int) else (slo.parse_duration(for_) if for_ not in ("", "0", "0s") else 0)
    if frame.height == 0:
        return _frame_of([])
    labels = schema.label_columns(frame)
    keyed = frame.with_columns(
        pl.concat_str([pl.when(pl.col(c).is_not_null()).then(pl.lit(f'{c}="') + pl.col(c) + pl.lit('"'))
                       for c in labels], separator=", ", ignore_nulls=True).alias("_l") if labels
        else pl.lit("").alias("_l")
    ).with_columns(("{" + pl.col("_l") + "}").alias("_l"))
    ts = keyed["timestamp"].dt.epoch("ms").to_numpy()
    idx = np.searchsorted(grid, ts)
    on_grid = (idx < grid.size) & (grid[np.clip(idx, 0, grid.size - 1)] == ts)
    names = sorted(set(keyed["_l"].to_list()))
    row_of = {n: i for i, n in enumerate(names)}
    present = np.zeros((len(names), grid.size), dtype=bool)
    rows = np.array([row_of[x] for x in keyed["_l"].to_list()], dtype=np.int64)
    present[rows[on_grid], idx[on_grid]] = True
    return _frame_of(_intervals(alert, names, present, grid, for_ms))


def replay(
    frame: pl.DataFrame,
    rules_path: str | os.PathLike[str] | None = None,
    *,
    step: str = "1m",
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    alerts: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Which alerts of a rule file would have been pending or firing over ``frame``, and when.

    Parameters
    ----------
    frame : polars.DataFrame
        Canonical telemetry frame. Include the 5 minutes (for rates) or hour (for the anomaly
        scores) before ``start`` to see what Prometheus would see at ``start``.
    rules_path : path, optional
        Prometheus rule file; default :data:`RULES_PATH` (dwcpkit's repaired rules).
    step : str
        Evaluation interval for every group (Prometheus duration).
    start, end : datetime, ISO string or epoch ms, optional
        Replay window; evaluation instants are the multiples of ``step`` in it. Default: the
        frame's time span.
    alerts : sequence of str, optional
        Only these alerts (default: all).

    Returns
    -------
    polars.DataFrame
        One row per alert episode: ``alert``, ``labels`` (the series' labels as
        ``{a="x", b="y"}``, without the rule's own labels), ``severity``, ``state`` (``firing`` if it
        fired, else ``pending``), ``active_at``, ``fired_at`` (null if it never fired),
        ``resolved_at`` (null if still active at ``end``), ``runbook_url``; sorted by ``active_at``.

    Raises
    ------
    ParseError
        The rule file is unreadable or uses unsupported PromQL (file, line and rule named).
    ParameterError
        Unknown alert names, or a bad window or step.
    DataError
        Empty frame without a window, or many-to-many vector matching in a rule.

    Examples
    --------
    >>> from dwcpkit.telemetry.sources import load
    >>> frame = load("sample", start="2026-11-01T18:00:00Z", end="2026-11-01T21:00:00Z")
    >>> fired = replay(frame, start="2026-11-01T19:00:00Z", alerts=["DWCPv3ComponentDown"])
    >>> fired.select("alert", "state", "active_at").row(0)[1]
    'firing'
    """
    frame = schema.normalize(frame, source="replay")
    rules = load_rules(rules_path)
    grid, step_ms = _grid(frame, start, end, step)
    wanted = [r for r in rules if r.kind == "alert"]
    if alerts is not None:
        names = {r.name for r in wanted}
        unknown = sorted(set(alerts) - names)
        if unknown:
            raise ParameterError(f"unknown alert(s) {unknown}; the rule file has {sorted(names)}")
        wanted = [r for r in wanted if r.name in set(alerts)]
    ev = _promql.Evaluator(frame, grid, step_ms, _records(rules))
    rows: list[dict] = []
    for rule in wanted:
        try:
            val = ev.eval(_promql.parse(rule.expr))
        except (ParseError, DataError) as e:
            raise type(e)(f"rule {rule.name!r} (line {rule.line}): {e}") from None
        if isinstance(val, _promql.Sca):
            raise ParseError(f"rule {rule.name!r}: an alert expression must give an instant vector, not a scalar",
                             line=rule.line)
        labels = [_promql.label_string(lab) for lab in val.labels]
        for r in _intervals(rule.name, labels, val.p, grid, rule.for_ms):
            r.update(severity=rule.severity, runbook_url=rule.annotations.get("runbook_url"))
            rows.append(r)
    out = _frame_of(rows, {"severity": pl.String(), "runbook_url": pl.String()})
    return out.select("alert", "labels", "severity", "state", "active_at", "fired_at", "resolved_at", "runbook_url")
