"""Incident triage maths: one severity scheme, impact classification, detection, response.

This is RB-04 (incident detection and classification), RB-05 (alert playbooks, escalation) and
RB-06 (incident response playbooks) of ``reference/dwcp-operations.md`` as pure functions. The
numbers and texts live in ``incidents.yaml`` next to this module; this docstring states the rules.

Severity
--------
The original used four unmapped schemes (P0–P4, incident SEV-1..4, alert CRITICAL..INFO, the
metrics guide's SEV-1..4 tiers). dwcpkit has one, :data:`SEVERITIES`:

======  ========  ========  ====  ============  ========
name    label     respond   page  updates       verdict
======  ========  ========  ====  ============  ========
SEV1    critical  5 min     yes   every 15 min  ESCALATE
SEV2    high      15 min    yes   every 30 min  ESCALATE
SEV3    moderate  30 min    no    at resolution ACT
SEV4    minor     4 h       no    at resolution WARN
SEV5    info      24 h      no    at resolution OK
======  ========  ========  ====  ============  ========

"respond" is the strictest *human* response time among the original levels mapped onto it;
the P-scheme's 30 s … 60 min were SLAs of the automated script loop and are shown only in
:func:`mapping_table`. SEV5 exists because two schemes (P4, alert INFO) have an informational
level that should not raise a WARN. Nothing detected is verdict ``OK``.

Classification (:func:`classify`)
---------------------------------
``impact = base(component) × modifier(failure_type)`` with the original bases (consensus/core 100,
database/network 80, api/scheduler 60, monitoring/logging 40, other 20) and modifiers (service 1.0,
byzantine 0.9, partition 0.85, performance 0.6, resource 0.5, other 0.3). dwcpkit adds the six
DWCP components (acp 100 like consensus; amst 80 like network; hde and ass 80 like database — they
carry or replicate state; pba and itp 60 like scheduler — advisory, migrations continue without
them) and two failure types the telemetry shows (error_rate 0.7, a partial service failure;
bandwidth 0.6, a performance failure of transport).

The severity is the worst of:

1. the impact band: impact ≥ 80 → SEV1, ≥ 55 → SEV2, ≥ 30 → SEV3, ≥ 15 → SEV4, else SEV5;
2. the original's priority mapped to the canonical scheme (dwcpkit is never less severe than the
   original script was);
3. the incident-playbook user-impact matrix, when ``users_affected_pct`` is given (>50 % or data
   loss → SEV1; >25 % for >15 min → SEV1; >10 % for >30 min → SEV2; <10 % for >1 h → SEV3;
   minimal → SEV4). Its gaps are filled one level down (>25 % for ≤15 min → SEV2; >10 % for
   ≤30 min → SEV3); an unknown duration counts as long (assume the worst until known);
   0 % means no user impact;
4. SEV1 when ``data_loss`` is true.

The original's rule (P0 = service failure of core/consensus; P1 = any Byzantine or partition;
P2 = performance with impact > 50; P3 = resource; else P4) made a database, network, api or
scheduler outage P4 — no remediation, no notification. Under the rules above those are SEV1
(database, network) and SEV2 (api, scheduler). ``original_priority`` keeps what the original would
have said, and :func:`classification_matrix` shows every component × failure type with a
``changed`` flag.

Detection (:func:`detect_failures`)
-----------------------------------
Over the canonical telemetry frame, in the window ``(at - lookback, at]``, with rates and
quantiles from :mod:`dwcpkit.sre.slo` (defaults from the original's alerts and scripts,
:class:`DetectionThresholds`):

- ``dwcp_v3_component_health == 0`` → ``service`` of that component;
- error ratio of ``dwcp_v3_component_errors_total`` / ``_operations_total`` > 1 % → ``error_rate``;
- P99 of ``dwcp_v3_migration_latency_seconds`` > 0.5 s → ``performance`` of ``core`` (the
  migration path; the histogram has no component label);
- ``dwcp_v3_peers_connected`` < 7 → ``partition`` of ``network``;
- any increase of ``dwcp_v3_byzantine_detections_total`` → ``byzantine`` of ``acp`` per node;
- any increase of ``dwcp_v3_consensus_failures_total`` → ``error_rate`` of ``acp``;
- ``dwcp_v3_throughput_bytes_per_second`` < 2.0e9 B/s (v3) → ``bandwidth`` of ``amst``.

Response
--------
:func:`sla_deadline`, :func:`escalation_clock` (RB-05: page primary → no ACK 5 min → secondary →
10 min → team lead → 15 min (critical) → engineering manager → 20 min (SLA violation) → VP Eng +
CTO, minutes since detection), :func:`playbook` / :func:`playbook_steps` (RB-04/05/06 steps, each
tagged whether it changes a system) and :func:`team_for` (RB-05 team map). :func:`triage` ties it
together.

Example
-------
>>> from dwcpkit.sre.incidents import classify
>>> c = classify("database", "service")
>>> c.severity.name, c.impact, c.original_priority
('SEV1', 80.0, 'P4')
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from dwcpkit.errors import DataError, ParameterError

__all__ = [
    "Severity",
    "SEVERITIES",
    "VERDICTS",
    "SCHEMES",
    "COMPONENT_BASES",
    "FAILURE_MODIFIERS",
    "Classification",
    "DetectionThresholds",
    "PlaybookStep",
    "Triage",
    "get_severity",
    "worst",
    "to_canonical",
    "mapping_table",
    "metrics_guide_severity",
    "impact",
    "original_priority",
    "user_impact_severity",
    "classify",
    "classification_matrix",
    "detect_failures",
    "sla_deadline",
    "escalation_clock",
    "playbook",
    "playbook_steps",
    "team_for",
    "triage",
]

VERDICTS: tuple[str, ...] = ("OK", "WARN", "ACT", "ESCALATE")
_DATA_PATH = Path(__file__).with_name("incidents.yaml")


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    try:
        data = yaml.safe_load(_DATA_PATH.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:  # pragma: no cover - packaging fault
        raise DataError(f"cannot read the triage data {_DATA_PATH}: {exc}; reinstall dwcpkit") from exc
    for key in ("severities", "schemes", "components", "failure_types", "impact_bands", "original",
                "user_impact", "teams", "escalation", "playbooks"):
        if key not in data:  # pragma: no cover - packaging fault
            raise DataError(f"{_DATA_PATH}: section {key!r} is missing")
    return data


@dataclass(frozen=True)
class Severity:
    """One level of the canonical scheme. ``rank`` 1 is the most severe.

    >>> get_severity("SEV2").response
    datetime.timedelta(seconds=900)
    """

    name: str
    rank: int
    label: str
    description: str
    response: timedelta
    page: bool
    update_every: timedelta | None
    verdict: str

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Severity({self.name!r})"

    def worse_than(self, other: Severity | None) -> bool:
        """True when ``self`` is more severe than ``other`` (anything is worse than ``None``)."""
        return other is None or self.rank < other.rank


def _load_severities() -> tuple[Severity, ...]:
    out = []
    for rank, s in enumerate(_data()["severities"], start=1):
        if s["verdict"] not in VERDICTS:  # pragma: no cover - packaging fault
            raise DataError(f"{_DATA_PATH}: severity {s['name']} has verdict {s['verdict']!r}")
        upd = s.get("update_every_min")
        out.append(
            Severity(
                name=s["name"],
                rank=rank,
                label=s["label"],
                description=s["description"],
                response=timedelta(minutes=s["response_min"]),
                page=bool(s["page"]),
                update_every=None if upd is None else timedelta(minutes=upd),
                verdict=s["verdict"],
            )
        )
    return tuple(out)


#: The canonical scheme, most severe first.
SEVERITIES: tuple[Severity, ...] = _load_severities()
_BY_NAME: dict[str, Severity] = {s.name: s for s in SEVERITIES}

#: The original's schemes: name -> {level: canonical severity name}.
SCHEMES: dict[str, dict[str, str]] = {
    scheme: {lv["level"]: lv["canonical"] for lv in body["levels"]}
    for scheme, body in _data()["schemes"].items()
}
SCHEMES["canonical"] = {s.name: s.name for s in SEVERITIES}

#: Component -> impact base (dwcpkit's table, including the six DWCP components).
COMPONENT_BASES: dict[str, float] = {c: float(v["base"]) for c, v in _data()["components"].items()}
#: Failure type -> impact modifier (dwcpkit's table, including error_rate and bandwidth).
FAILURE_MODIFIERS: dict[str, float] = {f: float(v["modifier"]) for f, v in _data()["failure_types"].items()}


def _norm_level(level: str) -> str:
    return re.sub(r"[\s_\-]", "", str(level)).upper()


def get_severity(name: str | Severity) -> Severity:
    """The canonical :class:`Severity` called ``name`` (``"SEV1"``, ``"sev-1"`` …).

    >>> get_severity("sev-3").verdict
    'ACT'
    """
    if isinstance(name, Severity):
        return name
    key = _norm_level(name)
    if key not in _BY_NAME:
        raise ParameterError(
            f"unknown severity {name!r}; use one of {', '.join(_BY_NAME)} "
            "(or to_canonical(scheme, level) for the original's schemes)"
        )
    return _BY_NAME[key]


def worst(severities: Iterable[Severity | str | None]) -> Severity | None:
    """The most severe of ``severities`` (``None`` entries ignored; ``None`` if there are none).

    >>> worst(["SEV3", None, "SEV2"]).name
    'SEV2'
    """
    best: Severity | None = None
    for s in severities:
        if s is None:
            continue
        s = get_severity(s)
        if s.worse_than(best):
            best = s
    return best


# ---------------------------------------------------------------------------------------------
# schemes
# ---------------------------------------------------------------------------------------------


def to_canonical(scheme: str, level: str) -> Severity:
    """Map a level of one of the original's schemes onto the canonical scheme.

    ``scheme`` is ``"priority"`` (P0–P4 of incident-response.sh), ``"incident"`` (SEV-1..4 of the
    incident playbooks), ``"alert"`` (CRITICAL/HIGH/WARNING/INFO of the alert playbooks),
    ``"metrics_guide"`` (the metrics guide's SEV-1..4 tiers) or ``"canonical"``. Levels are matched
    ignoring case, spaces, ``-`` and ``_``.

    >>> to_canonical("priority", "P1").name
    'SEV2'
    >>> to_canonical("alert", "info").verdict
    'OK'
    """
    skey = str(scheme).strip().lower().replace("-", "_")
    if skey not in SCHEMES:
        raise ParameterError(f"unknown severity scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    levels = SCHEMES[skey]
    table = {_norm_level(k): v for k, v in levels.items()}
    key = _norm_level(level)
    if key not in table:
        raise ParameterError(
            f"unknown level {level!r} of scheme {skey!r}; use one of {', '.join(levels)}"
        )
    return _BY_NAME[table[key]]


def _criteria_text(criteria: Sequence[Mapping[str, Any]]) -> str:
    return " or ".join(f"{c['metric']} {c['op']} {c['value']:g}" for c in criteria)


def mapping_table() -> pl.DataFrame:
    """Every level of the original's four schemes and the canonical level it maps to.

    Columns: ``scheme``, ``level``, ``meaning``, ``original_response``, ``original_page``,
    ``criteria`` (metric thresholds of the metrics-guide tiers, else empty), ``canonical``,
    ``response_min``, ``page``, ``verdict`` (of the canonical level).

    >>> mapping_table().filter(pl.col("level") == "P0")["canonical"].item()
    'SEV1'
    """
    rows = []
    for scheme, body in _data()["schemes"].items():
        for lv in body["levels"]:
            sev = _BY_NAME[lv["canonical"]]
            rows.append(
                {
                    "scheme": scheme,
                    "level": lv["level"],
                    "meaning": lv["meaning"],
                    "original_response": lv["original_response"],
                    "original_page": bool(lv["page"]),
                    "criteria": _criteria_text(lv.get("criteria", [])),
                    "canonical": sev.name,
                    "response_min": sev.response.total_seconds() / 60.0,
                    "page": sev.page,
                    "verdict": sev.verdict,
                }
            )
    return pl.DataFrame(rows)


_OPS = {">": lambda a, b: a > b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}


def metrics_guide_severity(observed: Mapping[str, float]) -> tuple[Severity | None, list[str]]:
    """The metrics guide's tier for ``observed`` metrics, mapped to the canonical scheme.

    Keys: ``error_pct``, ``availability_pct``, ``p95_ms``, ``cpu_pct``, ``memory_pct``,
    ``db_pool_pct``, ``repl_lag_s``, ``disk_free_pct``, ``cache_hit_pct`` (any subset). A tier fires
    when any of its criteria holds; the most severe firing tier wins. Returns the severity (``None``
    when no tier fires) and the criteria that fired for it.

    >>> sev, why = metrics_guide_severity({"error_pct": 2.0, "p95_ms": 300})
    >>> sev.name, why
    ('SEV2', ['error_pct 2 > 1'])
    """
    levels = _data()["schemes"]["metrics_guide"]["levels"]
    known = {c["metric"] for lv in levels for c in lv["criteria"]}
    unknown = sorted(set(observed) - known)
    if unknown:
        raise ParameterError(f"unknown metrics-guide metric(s) {unknown}; use any of {sorted(known)}")
    for lv in levels:  # most severe first
        fired = []
        for c in lv["criteria"]:
            if c["metric"] in observed:
                v = float(observed[c["metric"]])
                if math.isnan(v):
                    continue
                if _OPS[c["op"]](v, float(c["value"])):
                    fired.append(f"{c['metric']} {v:g} {c['op']} {c['value']:g}")
        if fired:
            return _BY_NAME[lv["canonical"]], fired
    return None, []


# ---------------------------------------------------------------------------------------------
# impact and classification
# ---------------------------------------------------------------------------------------------


def _component(component: str) -> str:
    key = str(component).strip().lower()
    if key not in COMPONENT_BASES:
        raise ParameterError(
            f"unknown component {component!r}; use one of {', '.join(COMPONENT_BASES)} "
            "('other' for anything else)"
        )
    return key


def _failure_type(failure_type: str) -> str:
    key = str(failure_type).strip().lower().replace("-", "_")
    if key not in FAILURE_MODIFIERS:
        raise ParameterError(
            f"unknown failure type {failure_type!r}; use one of {', '.join(FAILURE_MODIFIERS)} "
            "('other' for anything else)"
        )
    return key


def impact(component: str, failure_type: str) -> float:
    """Impact score = component base × failure-type modifier (dwcpkit's tables).

    >>> impact("consensus", "partition")
    85.0
    """
    c, f = _component(component), _failure_type(failure_type)
    return round(COMPONENT_BASES[c] * FAILURE_MODIFIERS[f], 6)


def _original_impact(component: str, failure_type: str) -> float:
    o = _data()["original"]
    base = float(o["bases"].get(component, o["other_base"]))
    mod = float(o["modifiers"].get(failure_type, o["other_modifier"]))
    return round(base * mod, 6)


def original_priority(component: str, failure_type: str) -> str:
    """What incident-response.sh would have said: ``"P0"`` … ``"P4"``, bugs included.

    Components and failure types the script did not know get its fallbacks (base 20,
    modifier 0.3), exactly as the script did.

    >>> original_priority("database", "service")
    'P4'
    """
    c, f = _component(component), _failure_type(failure_type)
    o = _data()["original"]
    if f == "service" and c in o["p0_components"]:
        return "P0"
    if f in ("byzantine", "partition"):
        return "P1"
    if f == "performance" and _original_impact(c, f) > float(o["p2_min_impact"]):
        return "P2"
    if f == "resource":
        return "P3"
    return "P4"


def _band(value: float) -> tuple[Severity, float]:
    for b in _data()["impact_bands"]:
        if value >= float(b["min"]):
            return _BY_NAME[b["severity"]], float(b["min"])
    raise DataError(f"impact {value} is below every impact band; the lowest band must have min 0")  # pragma: no cover


def user_impact_severity(
    users_affected_pct: float | None,
    duration_min: float | None = None,
    *,
    data_loss: bool = False,
) -> tuple[Severity | None, str | None]:
    """The incident-playbook user-impact matrix (with dwcpkit's gap fills).

    Returns ``(severity, rule)``; ``(None, None)`` when there is no user impact (``None`` or 0 %)
    and no data loss. ``duration_min=None`` counts as long (the worst case until it is known).

    >>> user_impact_severity(30, 20)[0].name
    'SEV1'
    >>> user_impact_severity(30, 10)[0].name
    'SEV2'
    """
    if data_loss:
        return _BY_NAME["SEV1"], "data loss"
    if users_affected_pct is None:
        return None, None
    pct = float(users_affected_pct)
    if math.isnan(pct) or not 0.0 <= pct <= 100.0:
        raise ParameterError(f"users_affected_pct={users_affected_pct!r}; give a percentage between 0 and 100")
    if duration_min is not None:
        dur = float(duration_min)
        if math.isnan(dur) or dur < 0:
            raise ParameterError(f"duration_min={duration_min!r}; give minutes >= 0 (or None if unknown)")
    else:
        dur = math.inf
    if pct == 0.0:
        return None, None
    for rule in _data()["user_impact"]:
        if pct > float(rule["users_over"]) and dur > float(rule.get("for_over_min", -1)):
            text = rule["rule"]
            if duration_min is None and "for_over_min" in rule:
                text += " (duration unknown: assumed long)"
            return _BY_NAME[rule["severity"]], text
    raise DataError("the user-impact rules do not cover every percentage; the last rule must be users_over: 0")  # pragma: no cover


@dataclass(frozen=True)
class Classification:
    """The result of :func:`classify`."""

    severity: Severity
    impact: float
    reasons: tuple[str, ...]
    original_priority: str
    component: str = ""
    failure_type: str = ""

    @property
    def original_severity(self) -> Severity:
        """The original priority on the canonical scheme."""
        return to_canonical("priority", self.original_priority)

    @property
    def changed(self) -> bool:
        """True when dwcpkit's severity differs from the original's (mapped) priority."""
        return self.severity != self.original_severity


def classify(
    component: str,
    failure_type: str,
    *,
    users_affected_pct: float | None = None,
    duration_min: float | None = None,
    data_loss: bool = False,
) -> Classification:
    """Classify one failure: impact, canonical severity, reasons, and the original's priority.

    Parameters
    ----------
    component
        One of :data:`COMPONENT_BASES` (case-insensitive); ``"other"`` for anything else.
    failure_type
        One of :data:`FAILURE_MODIFIERS`.
    users_affected_pct, duration_min
        Optional user impact; applies the incident-playbook matrix and keeps the worse severity.
    data_loss
        Any data lost → SEV1.

    Examples
    --------
    >>> classify("api", "service").severity.name
    'SEV2'
    >>> classify("monitoring", "performance", users_affected_pct=60).severity.name
    'SEV1'
    """
    c, f = _component(component), _failure_type(failure_type)
    score = impact(c, f)
    band, band_min = _band(score)
    reasons = [
        f"impact {score:g} = {c} base {COMPONENT_BASES[c]:g} × {f} modifier {FAILURE_MODIFIERS[f]:g} "
        f"→ {band.name} (impact ≥ {band_min:g})"
    ]
    severity = band
    orig = original_priority(c, f)
    orig_sev = to_canonical("priority", orig)
    if orig_sev.worse_than(severity):
        severity = orig_sev
        reasons.append(f"original priority {orig} → {orig_sev.name}: never less severe than the original")
    elif orig_sev != severity:
        reasons.append(f"original incident-response.sh said {orig} (= {orig_sev.name}); raised to {severity.name}")
    user_sev, rule = user_impact_severity(users_affected_pct, duration_min, data_loss=data_loss)
    if user_sev is not None:
        what = "data loss" if rule == "data loss" else (
            f"users affected {float(users_affected_pct):g}%"
            + ("" if duration_min is None else f" for {float(duration_min):g} min")
        )
        if user_sev.worse_than(severity):
            severity = user_sev
            reasons.append(f"{what} → {user_sev.name} ({rule}), worse than the component impact")
        else:
            reasons.append(f"{what} → {user_sev.name} ({rule})")
    return Classification(severity, score, tuple(reasons), orig, c, f)


def classification_matrix() -> pl.DataFrame:
    """Every component × failure type: impact, dwcpkit severity and the original's priority.

    Columns: ``component``, ``failure_type``, ``impact``, ``severity``, ``original_priority``,
    ``changed`` (severity differs from the original priority mapped to the canonical scheme), then
    ``base``, ``modifier``, ``original_severity``, ``original_impact``. Rows in the order of
    :data:`COMPONENT_BASES` × :data:`FAILURE_MODIFIERS`.

    >>> m = classification_matrix()
    >>> m.filter((pl.col("component") == "network") & (pl.col("failure_type") == "service"))["severity"].item()
    'SEV1'
    """
    rows = []
    for c in COMPONENT_BASES:
        for f in FAILURE_MODIFIERS:
            k = classify(c, f)
            rows.append(
                {
                    "component": c,
                    "failure_type": f,
                    "impact": k.impact,
                    "severity": k.severity.name,
                    "original_priority": k.original_priority,
                    "changed": k.changed,
                    "base": COMPONENT_BASES[c],
                    "modifier": FAILURE_MODIFIERS[f],
                    "original_severity": k.original_severity.name,
                    "original_impact": _original_impact(c, f),
                }
            )
    return pl.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# response: deadlines, escalation, playbooks, teams
# ---------------------------------------------------------------------------------------------


def _utc(value: datetime | str, name: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ParameterError(f"{name}={value!r} is not an ISO 8601 time; use e.g. '2026-11-02T12:00:00Z'") from exc
    if not isinstance(value, datetime):
        raise ParameterError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ParameterError(
            f"{name}={value!r} is naive; incident times are UTC: pass datetime(..., tzinfo=timezone.utc)"
        )
    return value.astimezone(timezone.utc)


def sla_deadline(severity: Severity | str, detected_at: datetime | str) -> datetime:
    """When a human must be responding: ``detected_at`` + the severity's response time.

    >>> from datetime import datetime, timezone
    >>> sla_deadline("SEV2", datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)).isoformat()
    '2026-11-01T12:15:00+00:00'
    """
    sev = get_severity(severity)
    return _utc(detected_at, "detected_at") + sev.response


def team_for(component: str) -> str:
    """The owning team of ``component`` (RB-05 team map; DWCP components placed by dwcpkit).

    >>> team_for("acp")
    'Distributed Systems'
    """
    c = _component(component)
    return _data()["teams"][_data()["components"][c]["team"]]


_CLOCK_SCHEMA = {
    "step": pl.Int64,
    "who": pl.String,
    "action": pl.String,
    "condition": pl.String,
    "due_at": pl.Datetime("ms", "UTC"),
    "status": pl.String,
}


def escalation_clock(
    severity: Severity | str,
    detected_at: datetime | str,
    now: datetime | str,
    *,
    team: str | None = None,
    acknowledged_at: datetime | str | None = None,
    resolved_at: datetime | str | None = None,
) -> pl.DataFrame:
    """The RB-05 escalation path for ``severity`` as a clock relative to ``now``.

    SEV1: page primary on-call → (no ACK, 5 min) secondary → (10 min) team lead → (15 min)
    engineering manager → (20 min, SLA violation) VP Engineering + CTO; SEV2 stops at the team
    lead; SEV3 notifies (no page) the primary and, after 30 min, the secondary; SEV4 opens a
    ticket; SEV5 records. Minutes are elapsed since detection. A last row, ``respond``, is the
    response deadline (:func:`sla_deadline`).

    ``status`` of an escalation step: ``done`` (its time has come: that person is engaged),
    ``due`` (still ahead), ``skipped`` (not needed: acknowledged before a "no ACK" step, or
    resolved before it). Of the ``respond`` row: ``done`` (acknowledged by the deadline),
    ``overdue`` (not acknowledged by the deadline, or acknowledged late), ``due`` (deadline ahead).

    >>> from datetime import datetime, timedelta, timezone
    >>> t0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
    >>> escalation_clock("SEV1", t0, t0 + timedelta(minutes=7))["status"].to_list()
    ['done', 'done', 'due', 'due', 'due', 'overdue']
    """
    sev = get_severity(severity)
    t0 = _utc(detected_at, "detected_at")
    t_now = _utc(now, "now")
    ack = None if acknowledged_at is None else _utc(acknowledged_at, "acknowledged_at")
    res = None if resolved_at is None else _utc(resolved_at, "resolved_at")
    if t_now < t0:
        raise ParameterError(f"now ({t_now.isoformat()}) is before detected_at ({t0.isoformat()})")
    for name, t in (("acknowledged_at", ack), ("resolved_at", res)):
        if t is not None and t < t0:
            raise ParameterError(f"{name} ({t.isoformat()}) is before detected_at ({t0.isoformat()})")
        if t is not None and t > t_now:
            raise ParameterError(f"{name} ({t.isoformat()}) is after now ({t_now.isoformat()}); it has not happened yet")
    who_team = team if team else "owning team"
    rows = []
    for st in _data()["escalation"]:
        if sev.name not in st["severities"]:
            continue
        due = t0 + timedelta(minutes=st["after_min"])
        cleared = {"ack": ack if ack is not None else res, "resolve": res, "none": None}[st["cleared_by"]]
        if st["cleared_by"] == "ack" and res is not None and (ack is None or res < ack):
            cleared = res
        if cleared is not None and cleared <= due and st["after_min"] > 0:
            status = "skipped"
        elif due <= t_now:
            status = "done"
        else:
            status = "due"
        rows.append(
            {
                "step": int(st["step"]),
                "who": st["who"].format(team=who_team),
                "action": st["action"],
                "condition": st["condition"],
                "due_at": due,
                "status": status,
            }
        )
    deadline = t0 + sev.response
    if ack is not None:
        status = "done" if ack <= deadline else "overdue"
    else:
        status = "overdue" if t_now > deadline else "due"
    rows.append(
        {
            "step": len(rows) + 1,
            "who": "responder",
            "action": "respond",
            "condition": f"{sev.name} response deadline ({_fmt_td(sev.response)} after detection)",
            "due_at": deadline,
            "status": status,
        }
    )
    return pl.DataFrame(rows, schema=_CLOCK_SCHEMA)


def _fmt_td(td: timedelta) -> str:
    minutes = td.total_seconds() / 60.0
    if minutes >= 60 and minutes % 60 == 0:
        return f"{minutes / 60:g} h"
    return f"{minutes:g} min"


@dataclass(frozen=True)
class PlaybookStep:
    """One playbook step. ``changes_system`` steps become dry-run actions in a runbook."""

    text: str
    changes_system: bool
    source: str
    failure_type: str


class _Blank(dict):
    def __missing__(self, key: str) -> str:  # pragma: no cover - guarded by the YAML test
        return "{" + key + "}"


def playbook_steps(
    failure_type: str,
    component: str,
    *,
    region: str | None = None,
    node_id: str | None = None,
    include_common: bool = True,
) -> list[PlaybookStep]:
    """The playbook for one failure: RB-04 remediation, RB-05 alert playbooks, RB-06 playbooks.

    Steps are data (``incidents.yaml``), in order: the common opening steps (RB-06), then the
    failure type's steps that apply to ``component``. ``{component}``, ``{region}`` and
    ``{node_id}`` are filled in (``<region>`` / ``<node>`` when not known).

    >>> steps = playbook_steps("byzantine", "acp", node_id="ap-south-2", include_common=False)
    >>> [s.changes_system for s in steps]
    [False, False, False, True, True, False]
    """
    c, f = _component(component), _failure_type(failure_type)
    books = _data()["playbooks"]
    values = _Blank(component=c, region=region or "<region>", node_id=node_id or "<node>")
    raw: list[tuple[Mapping[str, Any], str]] = []
    if include_common:
        raw += [(s, "common") for s in books["common"]]
    raw += [(s, f) for s in books.get(f, books["other"])]
    out = []
    for s, ft in raw:
        if "components" in s and c not in s["components"]:
            continue
        text = string.Formatter().vformat(s["text"], (), values)
        out.append(PlaybookStep(text, bool(s["changes"]), str(s["source"]), ft))
    return out


def playbook(failure_type: str, component: str, *, region: str | None = None, node_id: str | None = None) -> list[str]:
    """The playbook step texts for one failure (see :func:`playbook_steps` for the tags).

    >>> playbook("service", "hde", region="eu-west")[2]
    'Confirm the outage: dwcp_v3_component_health{component="hde",region="eu-west"} and the hde health endpoint'
    """
    return [s.text for s in playbook_steps(failure_type, component, region=region, node_id=node_id)]
