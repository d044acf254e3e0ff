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
Over the canonical telemetry frame, in the window ``[at - lookback, at]``, with rates and
quantiles from :mod:`dwcpkit.sre.slo` (PromQL semantics), evaluated every minute over 5-minute
windows; thresholds are :class:`DetectionThresholds` (the original's values by default):

- ``dwcp_v3_component_health == 0`` → ``service`` of that component;
- error ratio of ``dwcp_v3_component_errors_total`` / ``_operations_total`` > 1 % →
  ``error_rate`` of that component;
- P99 of ``dwcp_v3_migration_latency_seconds`` > 0.5 s → ``performance`` of ``core`` (the
  migration path; the histogram has no component label);
- ``dwcp_v3_peers_connected`` < 7 → ``partition`` of ``network``;
- any increase of ``dwcp_v3_byzantine_detections_total`` → ``byzantine`` of ``acp``, per node;
- failed consensus rounds (``dwcp_v3_consensus_failures_total``) > 0.5/min → ``error_rate`` of
  ``acp`` (the original alert fired on any failed round);
- ``dwcp_v3_throughput_bytes_per_second`` < 2.0e9 B/s → ``bandwidth`` of ``amst``.

Version-labelled rules look at v3 only by default (v1 is the slower rollout baseline). Two
dwcpkit noise guards keep low-traffic windows quiet: an error-ratio breach needs ≥ 5 errors and
an excess over 1 % of ≥ 3 binomial standard deviations. On the sample fleet the original's
latency rule fires all the time (its v3 P99 is ~2.4 s); :data:`FLEET_THRESHOLDS` uses the
5-minute median > 1.5 s instead, measured to separate quiet windows from the injected spike.

Response
--------
:func:`sla_deadline`; :func:`escalation_clock` (RB-05: page primary → no ACK 5 min → secondary →
10 min → team lead → 15 min (critical) → engineering manager → 20 min (SLA violation) → VP Eng +
CTO, minutes since detection); :func:`playbook` / :func:`playbook_steps` (RB-04/05/06 steps, each
tagged whether it changes a system); :func:`team_for` (RB-05 team map). :func:`triage` ties it
together and orders failures by severity, then failure type in :data:`FAILURE_MODIFIERS` order
(service, byzantine, partition, performance, bandwidth, resource, error_rate, other: a cause
before the error rates it usually causes), then impact.

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

from dwcpkit._yamlio import package_yaml
from dwcpkit.errors import DataError, ParameterError, SchemaError

__all__ = [
    "Severity",
    "SEVERITIES",
    "VERDICTS",
    "SCHEMES",
    "COMPONENT_BASES",
    "FAILURE_MODIFIERS",
    "Classification",
    "DetectionThresholds",
    "FLEET_THRESHOLDS",
    "DETECTION_FAMILIES",
    "DETECTION_METRICS",
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
    data = package_yaml("sre/incidents.yaml")
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
_TYPE_ORDER: dict[str, int] = {f: i for i, f in enumerate(FAILURE_MODIFIERS)}


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


_CMP = {">": lambda a, b: a > b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}


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
                if _CMP[c["op"]](v, float(c["value"])):
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
    raise DataError(  # pragma: no cover - guarded by the YAML's last rule
        "the user-impact rules do not cover every percentage; the last rule must be users_over: 0"
    )


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
# detection from telemetry
# ---------------------------------------------------------------------------------------------

_HEALTH = "dwcp_v3_component_health"
_ERRORS = "dwcp_v3_component_errors_total"
_OPS = "dwcp_v3_component_operations_total"
_LATENCY = "dwcp_v3_migration_latency_seconds"
_PEERS = "dwcp_v3_peers_connected"
_BYZANTINE = "dwcp_v3_byzantine_detections_total"
_CONSENSUS = "dwcp_v3_consensus_failures_total"
_THROUGHPUT = "dwcp_v3_throughput_bytes_per_second"

#: Metric family each detection rule reads, by rule name.
DETECTION_FAMILIES: dict[str, tuple[str, ...]] = {
    "service": (_HEALTH,),
    "error_rate": (_ERRORS, _OPS),
    "performance": (f"{_LATENCY}_bucket", f"{_LATENCY}_count"),
    "partition": (_PEERS,),
    "byzantine": (_BYZANTINE,),
    "consensus": (_CONSENSUS,),
    "bandwidth": (_THROUGHPUT,),
}
#: Every series name the detection rules read (what a runbook must load for :func:`triage`).
DETECTION_METRICS: tuple[str, ...] = tuple(sorted({m for fams in DETECTION_FAMILIES.values() for m in fams}))


@dataclass(frozen=True)
class DetectionThresholds:
    """Thresholds of :func:`detect_failures`. Defaults are the original's unless marked dwcpkit.

    Attributes
    ----------
    error_ratio : errors / operations above this (0.01 = 1 %; RB-01 gate, RB-06 high error rate).
    latency_quantile, latency_s : the latency quantile and its limit (P99 > 0.5 s,
        DWCPv3LatencyP99Critical).
    min_peers : ``dwcp_v3_peers_connected`` below this is a partition (7 expected, RB-03).
    min_throughput_Bps : ``dwcp_v3_throughput_bytes_per_second`` below this (2.0e9 B/s,
        DWCPv3ThroughputCriticalLow).
    byzantine_increase : Byzantine detections of a node above this count in ``window`` (any).
    consensus_failures_per_min : dwcpkit. The original alert fires on any failed round
        (``rate > 0``), which flags every isolated failure; this is the rate above which failed
        consensus rounds are an incident.
    min_errors : dwcpkit noise guard: an error-ratio breach needs at least this many errors in
        ``window`` (a component with 30 operations and one error is at 3 %).
    error_z : dwcpkit noise guard: the errors in ``window`` must exceed what ``error_ratio`` allows
        by this many binomial standard deviations (``(errors - p*ops) / sqrt(p*(1-p)*ops)``), so
        a ratio just above 1 % on little traffic is not an incident; 0 disables it.
    min_migrations : dwcpkit noise guard: a latency breach needs at least this many completed
        migrations in ``window`` (a quantile of a handful of migrations is their maximum).
    versions : protocol versions the version-labelled rules (error ratio, latency, throughput)
        look at; ``None`` for all. Default v3: the original's rules and targets are v3's; v1 is
        the rollout baseline, slower by design.
    window : rate / quantile window (Prometheus duration), as the original alert rules (5m).
    step : evaluation step over the lookback.
    """

    error_ratio: float = 0.01
    latency_quantile: float = 0.99
    latency_s: float = 0.5
    min_peers: float = 7
    min_throughput_Bps: float = 2.0e9
    byzantine_increase: float = 0.0
    consensus_failures_per_min: float = 0.5
    min_errors: float = 5.0
    error_z: float = 3.0
    min_migrations: float = 0.0
    versions: tuple[str, ...] | None = ("v3",)
    window: str = "5m"
    step: str = "1m"

    def __post_init__(self) -> None:
        from dwcpkit.sre.slo import parse_duration

        for name in ("error_ratio", "latency_s", "min_peers", "min_throughput_Bps", "byzantine_increase",
                     "consensus_failures_per_min", "min_errors", "error_z", "min_migrations"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise ParameterError(f"DetectionThresholds.{name}={v!r}; give a finite number >= 0")
        if not 0.0 < float(self.latency_quantile) < 1.0:
            raise ParameterError(f"DetectionThresholds.latency_quantile={self.latency_quantile!r}; give 0 < q < 1")
        parse_duration(self.window)
        parse_duration(self.step)
        if self.versions is not None:
            if isinstance(self.versions, str):
                object.__setattr__(self, "versions", (self.versions,))
            object.__setattr__(self, "versions", tuple(self.versions))


#: Thresholds that fit the sample fleet (``data/telemetry.parquet``), measured on it: its v3 P99
#: over 5 min has a median of 2.4 s, so the original's P99 > 0.5 s fires in 99.5 % of 5-min
#: windows. The 5-min median separates instead: quiet windows stay <= 1.25 s, the injected
#: latency spike reads >= 1.875 s. Everything else is the original's.
FLEET_THRESHOLDS = DetectionThresholds(latency_quantile=0.5, latency_s=1.5, min_migrations=10.0)

_DETECTION_SCHEMA: dict[str, pl.DataType] = {
    "component": pl.String(),
    "failure_type": pl.String(),
    "region": pl.String(),
    "node_id": pl.String(),
    "first_seen": pl.Datetime("ms", "UTC"),
    "last_seen": pl.Datetime("ms", "UTC"),
    "evidence": pl.String(),
    "observed": pl.Float64(),
    "threshold": pl.Float64(),
    "version": pl.String(),
    "metric": pl.String(),
    "breaches": pl.Int64(),
}
_KEYS = ["component", "failure_type", "region", "node_id", "version", "metric"]


def _with_labels(frame: pl.DataFrame, labels: Sequence[str]) -> pl.DataFrame:
    missing = [c for c in labels if c not in frame.columns]
    return frame.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in missing]) if missing else frame


def _summarise(
    breaches: pl.DataFrame,
    *,
    component: str | pl.Expr,
    failure_type: str,
    metric: str,
    threshold: float,
    worst: str,
    evidence: Any,
    group: Sequence[str],
) -> pl.DataFrame:
    """One detection row per group of breaching evaluations (timestamp, value, labels)."""
    if breaches.height == 0:
        return pl.DataFrame(schema=_DETECTION_SCHEMA)
    b = _with_labels(breaches, ["region", "node_id", "version", "component"])
    comp = pl.lit(component) if isinstance(component, str) else component
    b = b.with_columns(comp.alias("_component"))
    agg = (
        b.group_by(["_component", *group], maintain_order=True)
        .agg(
            pl.col("timestamp").min().alias("first_seen"),
            pl.col("timestamp").max().alias("last_seen"),
            (pl.col("value").max() if worst == "max" else pl.col("value").min()).alias("observed"),
            pl.len().cast(pl.Int64).alias("breaches"),
        )
        .with_columns(
            pl.col("_component").alias("component"),
            pl.lit(failure_type).alias("failure_type"),
            pl.lit(metric).alias("metric"),
            pl.lit(float(threshold)).alias("threshold"),
        )
    )
    agg = _with_labels(agg, ["region", "node_id", "version"])
    rows = agg.to_dicts()
    for r in rows:
        r["evidence"] = evidence(r)
    return pl.DataFrame(rows, schema=_DETECTION_SCHEMA | {"_component": pl.String()}).select(list(_DETECTION_SCHEMA))


def _span(r: Mapping[str, Any]) -> str:
    a, b = r["first_seen"], r["last_seen"]
    end = b.strftime("%H:%M") if a.date() == b.date() else b.strftime("%Y-%m-%d %H:%M")
    return f"{a.strftime('%Y-%m-%d %H:%M')}–{end} UTC, {r['breaches']} breaching evaluation(s)"


def _where(r: Mapping[str, Any]) -> str:
    v = f" {r['version']}" if r.get("version") else ""
    return f"{r['region'] or '(all regions)'}{v}"


def _fmt_bytes(x: float) -> str:
    return f"{x / 1e9:.2f} GB/s"


def _version_filter(frame: pl.DataFrame, th: DetectionThresholds) -> pl.DataFrame:
    if th.versions is None or "version" not in frame.columns:
        return frame
    return frame.filter(pl.col("version").is_in(list(th.versions)))


def detect_failures(
    frame: pl.DataFrame,
    *,
    at: datetime | str | None = None,
    lookback: str | timedelta = "30m",
    thresholds: DetectionThresholds = DetectionThresholds(),
) -> pl.DataFrame:
    """Failures visible in the telemetry during ``[at - lookback, at]``.

    Rules (module docstring): component health 0 → ``service``; error ratio → ``error_rate``;
    migration latency quantile → ``performance`` of ``core``; peers below expected →
    ``partition`` of ``network``; Byzantine detections → ``byzantine`` of ``acp`` per node;
    failed consensus rounds → ``error_rate`` of ``acp``; throughput below target →
    ``bandwidth`` of ``amst``. Rates and quantiles are :mod:`dwcpkit.sre.slo`'s (PromQL
    semantics, counter resets handled), evaluated every ``thresholds.step`` over
    ``thresholds.window``; gauges are read sample by sample.

    Parameters
    ----------
    frame
        Canonical telemetry frame (families of :data:`dwcpkit.telemetry.names.CATALOG`).
    at
        End of the look-back window (aware datetime or ISO string); default the newest sample.
    lookback
        How far back to look (``"30m"``, a timedelta).
    thresholds
        :class:`DetectionThresholds` (the original's values by default; see also
        :data:`FLEET_THRESHOLDS`).

    Returns
    -------
    polars.DataFrame
        One row per failing (component, failure type, region, node, version, metric):
        ``component, failure_type, region, node_id, first_seen, last_seen, evidence, observed,
        threshold, version, metric, breaches`` (breaching evaluations or samples). ``observed``
        is the worst value seen. Sorted by ``first_seen``, then the key columns. Empty when
        nothing breached.

    Raises
    ------
    DataError
        When the frame holds no sample of any detection family in the window (wrong ``at``,
        wrong source): nothing could be checked, which is not the same as "healthy".

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> f = from_rows([(t * 60_000, "dwcp_v3_component_health", 0.0 if t > 5 else 1.0,
    ...                 {"component": "hde", "region": "eu-west"}) for t in range(10)])
    >>> d = detect_failures(f, lookback="10m")
    >>> d.select("component", "failure_type", "region").row(0)
    ('hde', 'service', 'eu-west')
    """
    return _detect(frame, at, lookback, thresholds)[0]


def _detect(
    frame: pl.DataFrame, at: datetime | str | None, lookback: str | timedelta, thresholds: DetectionThresholds
) -> tuple[pl.DataFrame, datetime, tuple[str, ...]]:
    from dwcpkit.sre import slo
    from dwcpkit.telemetry import schema as tschema

    if not isinstance(thresholds, DetectionThresholds):
        raise ParameterError(f"thresholds must be a DetectionThresholds, got {type(thresholds).__name__}")
    th = thresholds
    if not isinstance(frame, pl.DataFrame):
        raise SchemaError(
            f"detect_failures: expected a canonical telemetry frame (polars DataFrame), got {type(frame).__name__}; "
            "pandas users: polars.from_pandas(df)"
        )
    frame = tschema.normalize(frame, source="detect_failures")
    lb_ms = slo.parse_duration(lookback)
    win_ms = slo.parse_duration(th.window)
    if at is None:
        if frame.height == 0:
            raise DataError("detect_failures: the frame is empty; load telemetry first")
        t_end = _utc(frame["timestamp"].max(), "at")
    else:
        t_end = _utc(at, "at")
    t_start = t_end - timedelta(milliseconds=lb_ms)
    # samples the rules can see: the lookback plus one rate window before it
    data = frame.filter(
        (pl.col("timestamp") >= t_start - timedelta(milliseconds=win_ms)) & (pl.col("timestamp") <= t_end)
    )
    in_window = data.filter(pl.col("timestamp") >= t_start)
    present = set(in_window["metric"].unique().to_list())
    wanted = set(DETECTION_METRICS)
    if not present & wanted:
        if frame.height:
            span = f"the frame covers {frame['timestamp'].min()} .. {frame['timestamp'].max()}"
        else:
            span = "the frame is empty"
        raise DataError(
            f"detect_failures: no sample of any detection family between {t_start} and {t_end}; {span}. "
            f"Pass an `at` inside the data, a longer lookback, or a source with {sorted(wanted)}"
        )
    rng = dict(step=th.step, start=t_start, end=t_end)
    parts: list[pl.DataFrame] = []

    def fam(name: str) -> pl.DataFrame:
        return data.filter(pl.col("metric") == name)

    # service: component health == 0 -----------------------------------------------------------
    h = in_window.filter((pl.col("metric") == _HEALTH) & (pl.col("value") <= 0.0))
    if h.height:
        h = _with_labels(h, ["component", "region"])
        parts.append(_summarise(
            h.with_columns(pl.col("component").fill_null("other")),
            component=pl.col("component"), failure_type="service", metric=_HEALTH, threshold=0.0,
            worst="min", group=["region"],
            evidence=lambda r: (f"{_HEALTH}{{component=\"{r['component']}\",region=\"{r['region']}\"}} == 0 "
                                f"({_span(r)})"),
        ))

    # error_rate: errors / operations per component --------------------------------------------
    errs, ops = _version_filter(fam(_ERRORS), th), _version_filter(fam(_OPS), th)
    if ops.height and errs.height:
        by = [c for c in ("component", "region", "version") if c in ops.columns]
        ratio = slo.error_ratio(errs, ops, th.window, by, **rng)
        n_err = slo.sum_by(slo.increase(errs, th.window, **rng), by)
        n_ops = slo.sum_by(slo.increase(ops, th.window, **rng), by)
        for name, part in (("_n", n_err), ("_ops", n_ops)):
            ratio = ratio.join(
                part.select(["timestamp", *by, pl.col("value").alias(name)]), on=["timestamp", *by],
                how="left", nulls_equal=True,
            )
        # excess errors over what the threshold allows, in binomial standard deviations
        p0 = th.error_ratio
        expected = pl.col("_ops").fill_null(0.0) * p0
        z = (pl.col("_n").fill_null(0.0) - expected) / (expected * (1.0 - p0)).sqrt()
        br = ratio.filter(
            pl.col("value").is_not_nan() & (pl.col("value") > p0)
            & (pl.col("_n").fill_null(0.0) >= th.min_errors)
            & ((expected <= 0) | (z >= th.error_z))
        )
        if br.height:
            br = _with_labels(br, ["component"]).with_columns(pl.col("component").fill_null("other"))
            parts.append(_summarise(
                br, component=pl.col("component"), failure_type="error_rate", metric=_ERRORS,
                threshold=th.error_ratio, worst="max", group=["region", "version"],
                evidence=lambda r: (f"error ratio of {r['component']} in {_where(r)} peaked at "
                                    f"{r['observed']:.2%} > {th.error_ratio:.2%} ({th.window} rate; {_span(r)})"),
            ))

    # performance: migration latency quantile --------------------------------------------------
    lat = _version_filter(data.filter(pl.col("metric").is_in([f"{_LATENCY}_bucket", f"{_LATENCY}_count"])), th)
    buckets = lat.filter(pl.col("metric") == f"{_LATENCY}_bucket")
    if buckets.height:
        by = [c for c in ("region", "version") if c in buckets.columns]
        qf = slo.latency_quantile(buckets, _LATENCY, th.latency_quantile, th.window, by, **rng)
        counts = lat.filter(pl.col("metric") == f"{_LATENCY}_count")
        if th.min_migrations > 0 and counts.height:
            n = slo.sum_by(slo.increase(counts, th.window, **rng), by)
            qf = qf.join(n.select(["timestamp", *by, pl.col("value").alias("_n")]), on=["timestamp", *by],
                         how="left", nulls_equal=True).filter(pl.col("_n").fill_null(0.0) >= th.min_migrations)
        br = qf.filter(pl.col("value").is_not_nan() & (pl.col("value") > th.latency_s))
        qname = f"P{th.latency_quantile * 100:g}"
        parts.append(_summarise(
            br, component="core", failure_type="performance", metric=_LATENCY, threshold=th.latency_s,
            worst="max", group=["region", "version"],
            evidence=lambda r: (f"{qname} migration latency in {_where(r)} peaked at {r['observed']:.3g} s "
                                f"> {th.latency_s:g} s ({th.window} window; {_span(r)})"),
        ))

    # partition: peers connected below expected -------------------------------------------------
    p = in_window.filter((pl.col("metric") == _PEERS) & (pl.col("value") < th.min_peers))
    parts.append(_summarise(
        p, component="network", failure_type="partition", metric=_PEERS, threshold=th.min_peers,
        worst="min", group=["region"],
        evidence=lambda r: f"{_PEERS} in {_where(r)} fell to {r['observed']:g} < {th.min_peers:g} ({_span(r)})",
    ))

    # byzantine: detections per accused node ----------------------------------------------------
    byz = fam(_BYZANTINE)
    if byz.height:
        inc = slo.increase(byz, th.window, **rng)
        br = inc.filter(pl.col("value") > th.byzantine_increase)
        parts.append(_summarise(
            br, component="acp", failure_type="byzantine", metric=_BYZANTINE, threshold=th.byzantine_increase,
            worst="max", group=["region", "node_id"],
            evidence=lambda r: (f"node {r['node_id']} in {_where(r)}: up to {r['observed']:.3g} Byzantine "
                                f"detections per {th.window} ({_span(r)})"),
        ))

    # consensus: failed rounds per region ------------------------------------------------------
    cons = fam(_CONSENSUS)
    if cons.height:
        by = [c for c in ("region",) if c in cons.columns]
        r_ = slo.sum_by(slo.rate(cons, th.window, **rng), by).with_columns(pl.col("value") * 60.0)
        br = r_.filter(pl.col("value") > th.consensus_failures_per_min)
        parts.append(_summarise(
            br, component="acp", failure_type="error_rate", metric=_CONSENSUS,
            threshold=th.consensus_failures_per_min, worst="max", group=["region"],
            evidence=lambda r: (f"failed consensus rounds in {_where(r)} peaked at {r['observed']:.3g}/min "
                                f"> {th.consensus_failures_per_min:g}/min ({th.window} rate; {_span(r)})"),
        ))

    # bandwidth: throughput below target -------------------------------------------------------
    tp = _version_filter(in_window.filter(pl.col("metric") == _THROUGHPUT), th)
    br = tp.filter(pl.col("value") < th.min_throughput_Bps)
    parts.append(_summarise(
        br, component="amst", failure_type="bandwidth", metric=_THROUGHPUT, threshold=th.min_throughput_Bps,
        worst="min", group=["region", "version"],
        evidence=lambda r: (f"throughput in {_where(r)} fell to {_fmt_bytes(r['observed'])} "
                            f"< {_fmt_bytes(th.min_throughput_Bps)} ({_span(r)})"),
    ))

    unchecked = tuple(
        rule for rule, fams in DETECTION_FAMILIES.items() if not any(m_ in present for m_ in fams)
    )
    parts = [x for x in parts if x.height]
    if not parts:
        return pl.DataFrame(schema=_DETECTION_SCHEMA), t_end, unchecked
    out = pl.concat(parts, how="vertical")
    return out.sort(["first_seen", *_KEYS], nulls_last=True), t_end, unchecked


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


def team_for(component: str, failure_type: str | None = None) -> str:
    """The owning team of ``component`` (RB-05 team map; DWCP components placed by dwcpkit).

    With ``failure_type``, a failure type that has its own team in the original alert rules
    (``performance`` → Perf Eng, ``bandwidth`` → Network Eng) overrides the component's team.

    >>> team_for("acp")
    'Distributed Systems'
    >>> team_for("core", "performance")
    'Perf Eng'
    """
    c = _component(component)
    key = _data()["components"][c]["team"]
    if failure_type is not None:
        key = _data()["failure_types"][_failure_type(failure_type)].get("team", key)
    return _data()["teams"][key]


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
            raise ParameterError(
                f"{name} ({t.isoformat()}) is after now ({t_now.isoformat()}); it has not happened yet"
            )
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


# ---------------------------------------------------------------------------------------------
# triage: everything together
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Triage:
    """The result of :func:`triage`.

    Attributes
    ----------
    at, lookback : the window examined.
    detections : :func:`detect_failures` rows plus ``impact``, ``severity``, ``rank``,
        ``original_priority``, ``changed``, ``team``, most severe first.
    severity : worst severity (``None`` when nothing was found).
    verdict : ``OK`` / ``WARN`` / ``ACT`` / ``ESCALATE`` (the severity's verdict; ``OK`` if none).
    reasons : most severe first; at most ``max_reasons`` detections, then a count of the rest,
        then a line per detection rule that had no data.
    detected_at : first sighting of the worst-severity failures.
    sla_deadline : ``detected_at`` + the severity's response time.
    team : owning team of the most severe detection.
    playbook : step texts, :func:`playbook_steps` of each failure type among the worst-severity
        detections (for its most severe detection), common steps once, duplicates removed.
    steps : the same steps with their ``changes_system`` tags.
    escalation : :func:`escalation_clock` at ``at`` (empty when nothing was found).
    unchecked : detection rules that had no data in the window.
    """

    at: datetime
    lookback: str
    detections: pl.DataFrame
    severity: Severity | None
    verdict: str
    reasons: tuple[str, ...]
    detected_at: datetime | None
    sla_deadline: datetime | None
    team: str | None
    playbook: tuple[str, ...]
    steps: tuple[PlaybookStep, ...]
    escalation: pl.DataFrame
    unchecked: tuple[str, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> str:
        """One line: severity, the top failure and how many others."""
        if self.severity is None:
            return f"no failure detected in the {self.lookback} before {self.at:%Y-%m-%d %H:%M} UTC"
        n = self.detections.height
        if n == 0:
            return f"{self.severity.name} from reported user impact; no failure in the telemetry"
        top = self.detections.row(0, named=True)
        where = top["region"] or "all regions"
        more = f" (+{n - 1} more)" if n > 1 else ""
        return f"{self.severity.name}: {top['component']} {top['failure_type']} in {where}{more}"


def _detection_reason(r: Mapping[str, Any]) -> str:
    node = f" node {r['node_id']}" if r.get("node_id") else ""
    return (f"{r['severity']} {r['component']} {r['failure_type']}{node} (impact {r['impact']:g}, "
            f"original {r['original_priority']}): {r['evidence']}")


def triage(
    frame: pl.DataFrame,
    *,
    at: datetime | str | None = None,
    lookback: str | timedelta = "30m",
    users_affected_pct: float | None = None,
    data_loss: bool = False,
    thresholds: DetectionThresholds = DetectionThresholds(),
    max_reasons: int = 5,
) -> Triage:
    """Detect, classify, and plan the response: the incident-triage runbook in one call.

    Each detection of :func:`detect_failures` is classified (:func:`classify`); the overall
    severity is the worst of them and of the user impact (``users_affected_pct`` over the span
    of the detections, :func:`user_impact_severity`; ``data_loss`` → SEV1). Ordering is
    deterministic: severity; then failure type in :data:`FAILURE_MODIFIERS` order (a cause such
    as a partition before the error rates it causes); then impact (higher first), first
    sighting, and the key columns.

    Parameters
    ----------
    frame, at, lookback, thresholds
        As :func:`detect_failures`.
    users_affected_pct, data_loss
        Reported user impact, when known.
    max_reasons
        How many detections to list in ``reasons``.

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> f = from_rows([(t * 60_000, "dwcp_v3_component_health", 0.0 if t > 5 else 1.0,
    ...                 {"component": "hde", "region": "eu-west"}) for t in range(10)])
    >>> t = triage(f, lookback="10m")
    >>> t.severity.name, t.verdict, t.team
    ('SEV1', 'ESCALATE', 'Perf Eng')
    """
    if not isinstance(max_reasons, int) or isinstance(max_reasons, bool) or max_reasons < 1:
        raise ParameterError(f"max_reasons={max_reasons!r}; give a positive integer")
    if not isinstance(thresholds, DetectionThresholds):
        raise ParameterError(f"thresholds must be a DetectionThresholds, got {type(thresholds).__name__}")
    det, t_end, unchecked = _detect(frame, at, lookback, thresholds)
    lookback_text = lookback if isinstance(lookback, str) else _fmt_td(lookback)

    rows = []
    for r in det.iter_rows(named=True):
        k = classify(r["component"], r["failure_type"])
        rows.append(r | {
            "impact": k.impact,
            "severity": k.severity.name,
            "rank": k.severity.rank,
            "original_priority": k.original_priority,
            "changed": k.changed,
            "team": team_for(r["component"], r["failure_type"]),
            "_type_order": _TYPE_ORDER[r["failure_type"]],
        })
    extra = {"impact": pl.Float64(), "severity": pl.String(), "rank": pl.Int64(),
             "original_priority": pl.String(), "changed": pl.Boolean(), "team": pl.String(),
             "_type_order": pl.Int64()}
    table = pl.DataFrame(rows, schema=_DETECTION_SCHEMA | extra)
    table = table.with_columns((-pl.col("impact")).alias("_neg")).sort(
        ["rank", "_type_order", "_neg", "first_seen", *_KEYS], nulls_last=True
    ).drop("_neg", "_type_order")

    sev_det = get_severity(table["severity"][0]) if table.height else None
    duration = None
    if table.height:
        duration = (table["last_seen"].max() - table["first_seen"].min()).total_seconds() / 60.0
    user_sev, rule = user_impact_severity(users_affected_pct, duration, data_loss=data_loss)
    severity = worst([sev_det, user_sev])

    reasons: list[str] = []
    user_reason = None
    if user_sev is not None:
        what = "data loss" if rule == "data loss" else f"{float(users_affected_pct):g}% of users affected"
        user_reason = f"{user_sev.name} {what} ({rule})"
    det_reasons = [_detection_reason(r) for r in table.head(max_reasons).iter_rows(named=True)]
    if user_reason is not None and (sev_det is None or user_sev.rank < sev_det.rank):
        reasons.append(user_reason)
        user_reason = None
    reasons += det_reasons
    if table.height > max_reasons:
        reasons.append(f"... and {table.height - max_reasons} more detection(s) (see Triage.detections)")
    if user_reason is not None:
        reasons.append(user_reason)
    for rule_name in unchecked:
        fams = ", ".join(DETECTION_FAMILIES[rule_name])
        reasons.append(f"not checked: {rule_name} (no {fams} samples in the window)")

    detected_at = sla = team = None
    steps: list[PlaybookStep] = []
    if severity is not None:
        if sev_det is not None:
            top = table.filter(pl.col("severity") == sev_det.name)
            detected_at = top["first_seen"].min()
            team = top["team"][0]
            # if the user impact is worse, the clock starts at the first sighting of anything
            if severity != sev_det:
                detected_at = table["first_seen"].min()
            seen: set[str] = set()
            first = True
            for r in top.unique(subset=["failure_type"], keep="first", maintain_order=True).iter_rows(named=True):
                for st in playbook_steps(r["failure_type"], r["component"], region=r["region"],
                                         node_id=r["node_id"], include_common=first):
                    if st.text not in seen:
                        seen.add(st.text)
                        steps.append(st)
                first = False
        else:
            detected_at = t_end
            steps = playbook_steps("other", "other")
        detected_at = _utc(detected_at, "detected_at")
        sla = sla_deadline(severity, detected_at)
    escalation = (
        escalation_clock(severity, detected_at, t_end, team=team)
        if severity is not None
        else pl.DataFrame(schema=_CLOCK_SCHEMA)
    )
    return Triage(
        at=t_end,
        lookback=lookback_text,
        detections=table,
        severity=severity,
        verdict=severity.verdict if severity is not None else "OK",
        reasons=tuple(reasons),
        detected_at=detected_at,
        sla_deadline=sla,
        team=team,
        playbook=tuple(st.text for st in steps),
        steps=tuple(steps),
        escalation=escalation,
        unchecked=unchecked,
    )
