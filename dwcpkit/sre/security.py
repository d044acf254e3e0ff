"""RB-11 security posture: real checks, each with an evidence row; no score without evidence.

The original (``security-validation.sh``) had 18 checks that all ``return 0`` and a report with a
hard-coded score of 100. Here a check is run against something real and produces a row with
``status`` (``pass``, ``warn``, ``fail`` or ``not checked``) and the ``evidence`` it saw:

:func:`tls_check`
    connects to ``host:port`` with the ``ssl`` module: the negotiated protocol (>= ``min_version``),
    whether the certificate chain and host name verify (against the system CAs or ``cafile``),
    and the days until the certificate expires (< ``fail_days`` or expired: fail; < ``warn_days``:
    warn). An untrusted certificate is still read (second, unverified handshake) so its expiry is
    reported too.
:func:`jwt_check`
    decodes a token's header and payload (base64url JSON): ``alg`` not ``none``, an ``exp`` claim,
    not expired, time left, and lifetime ``exp - iat`` against ``max_lifetime_s``. The signature is
    **not verified** (that needs the issuer's key); the evidence says so. The token itself never
    appears in a row.
:func:`audit_check`
    ingests a ``pip-audit --format json`` report: one fail row per known vulnerability (package,
    ids, fixed versions), one pass row when no audited dependency has any, a not-checked row for
    the packages pip-audit skipped.
:func:`byzantine_check`
    from telemetry: per region, the number of consensus nodes with Byzantine detections in a window
    against the tolerance ``f <= (n - 1) // 3``.

:data:`ORIGINAL_CHECKS` lists the original's 18 checks and which of these rows (if any) give them
evidence; :func:`posture` folds the rows into a score that counts only checks with evidence
(``None`` when there is none), the coverage of the original's checks, and a verdict.

Example
-------
>>> rows = audit_check(SAMPLE_AUDIT)
>>> sorted({r["status"] for r in rows})
['fail', 'not checked']
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import socket
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from dwcpkit._paths import data_dir
from dwcpkit.errors import DataError, ParameterError, ParseError, SourceError

__all__ = [
    "STATUSES",
    "ORIGINAL_CHECKS",
    "SAMPLE_AUDIT",
    "parse_endpoint",
    "cert_info",
    "tls_check",
    "decode_jwt",
    "jwt_check",
    "audit_check",
    "byzantine_check",
    "evidence_table",
    "remediations",
    "Posture",
    "posture",
]

#: Row statuses, worst last.
STATUSES: tuple[str, ...] = ("pass", "not checked", "warn", "fail")
#: A sample pip-audit report (illustrative; not a scan of this project).
SAMPLE_AUDIT = data_dir() / "pip-audit-sample.json"

#: The original's six groups x 3 checks (all of which returned success unconditionally) and the
#: dwcpkit check ids that give each of them evidence (empty: nothing here can check it).
ORIGINAL_CHECKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("authentication", "JWT validation", ("jwt.alg", "jwt.exp", "jwt.lifetime")),
    ("authentication", "TLS certificate validation", ("tls.trusted", "tls.expiry")),
    ("authentication", "API key validation", ()),
    ("authorisation", "RBAC", ()),
    ("authorisation", "permission enforcement", ()),
    ("authorisation", "resource access control", ()),
    ("encryption", "encryption at rest", ()),
    ("encryption", "encryption in transit", ("tls.protocol",)),
    ("encryption", "key management", ()),
    ("audit logging", "security events", ()),
    ("audit logging", "trail completeness", ()),
    ("audit logging", "log tamper protection", ()),
    ("byzantine", "malicious node detection", ()),
    ("byzantine", "Byzantine agreement", ()),
    ("byzantine", "fault tolerance f < n/3", ("byzantine.tolerance",)),
    ("compliance", "GDPR", ()),
    ("compliance", "data retention", ()),
    ("compliance", "privacy", ()),
)
_VULN_SCAN = ("vulnerability scan", ("audit.dependencies",))

_ROW_SCHEMA = {"id": pl.String, "group": pl.String, "check": pl.String, "status": pl.String,
               "evidence": pl.String, "source": pl.String}


def _row(id_: str, group: str, check: str, status: str, evidence: str, source: str) -> dict[str, str]:
    if status not in STATUSES:
        raise ValueError(status)
    return {"id": id_, "group": group, "check": check, "status": status, "evidence": evidence, "source": source}


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ParameterError("now= must be an aware datetime (UTC)")
    return now.astimezone(timezone.utc)


# ---------------------------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------------------------


def parse_endpoint(endpoint: str, default_port: int = 443) -> tuple[str, int]:
    """``(host, port)`` from ``host``, ``host:port``, ``[v6]:port`` or an ``https://`` URL.

    >>> parse_endpoint("https://example.org:8443/api"), parse_endpoint("127.0.0.1:9443")
    (('example.org', 8443), ('127.0.0.1', 9443))
    """
    text = endpoint.strip()
    if not text:
        raise ParameterError("TLS endpoint is empty; give host:port (e.g. dwcp.example.org:443)")
    parts = urlsplit(text if "://" in text else f"tls://{text}")
    try:
        port = parts.port or default_port
    except ValueError:
        raise ParameterError(f"TLS endpoint {endpoint!r} has an invalid port; use host:port") from None
    if not parts.hostname:
        raise ParameterError(f"TLS endpoint {endpoint!r} has no host; use host:port")
    return parts.hostname, port


def cert_info(der: bytes) -> dict[str, Any]:
    """``not_before``, ``not_after`` (aware UTC), ``subject``, ``issuer`` of a DER certificate.

    Uses the ``cryptography`` package when installed, else the ``ssl`` module's own decoder.
    """
    try:
        from cryptography import x509  # optional
    except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
        x509 = None
    if x509 is not None:
        c = x509.load_der_x509_certificate(der)
        return {"not_before": c.not_valid_before_utc, "not_after": c.not_valid_after_utc,
                "subject": c.subject.rfc4514_string(), "issuer": c.issuer.rfc4514_string()}
    pem = ssl.DER_cert_to_PEM_cert(der)
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(pem)
        d = ssl._ssl._test_decode_cert(path)  # type: ignore[attr-defined]  # stdlib's decoder, no extra dependency
    finally:
        os.unlink(path)

    def name(seq: Any) -> str:
        return ",".join(f"{k}={v}" for rdn in seq for k, v in rdn)

    ts = lambda s: datetime.fromtimestamp(ssl.cert_time_to_seconds(s), tz=timezone.utc)  # noqa: E731
    return {"not_before": ts(d["notBefore"]), "not_after": ts(d["notAfter"]),
            "subject": name(d.get("subject", ())), "issuer": name(d.get("issuer", ()))}


_TLS_ORDER = {"SSLv3": 0, "TLSv1": 1, "TLSv1.1": 2, "TLSv1.2": 3, "TLSv1.3": 4}


def _handshake(host: str, port: int, ctx: ssl.SSLContext, timeout: float, sni: str) -> tuple[str, str, bytes]:
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            version = s.version() or "unknown"
            cipher = (s.cipher() or ("unknown",))[0]
            der = s.getpeercert(binary_form=True) or b""
    return version, cipher, der


def tls_check(endpoint: str, *, cafile: str | None = None, timeout_s: float = 5.0, min_version: str = "TLSv1.2",
              warn_days: float = 30, fail_days: float = 7, server_hostname: str | None = None,
              now: datetime | None = None) -> list[dict[str, str]]:
    """Evidence rows for the TLS endpoint ``host:port`` (protocol, trust, expiry).

    An unreachable endpoint gives ``not checked`` rows saying why (no evidence is not a pass).

    Example
    -------
    >>> rows = tls_check("")   # no endpoint configured
    >>> [r["status"] for r in rows]
    ['not checked', 'not checked', 'not checked']
    """
    ids = (("tls.protocol", "encryption in transit", "TLS protocol version"),
           ("tls.trusted", "authentication", "TLS certificate chain and host name verify"),
           ("tls.expiry", "authentication", "TLS certificate expiry"))
    if not endpoint or not endpoint.strip():
        return [_row(i, g, c, "not checked", "no TLS endpoint given", "tls") for i, g, c in ids]
    if min_version not in _TLS_ORDER:
        raise ParameterError(f"min_version={min_version!r}; use one of {', '.join(_TLS_ORDER)}")
    if not (0 <= fail_days <= warn_days):
        raise ParameterError(f"need 0 <= fail_days ({fail_days}) <= warn_days ({warn_days})")
    host, port = parse_endpoint(endpoint)
    where = f"{host}:{port}"
    sni = server_hostname or host
    if cafile and not Path(cafile).is_file():
        raise ParameterError(f"cafile {cafile!r} not found; give a PEM file of trusted CA certificates or leave it empty")
    verified = ssl.create_default_context(cafile=cafile or None)
    trusted, why = True, ""
    try:
        version, cipher, der = _handshake(host, port, verified, timeout_s, sni)
    except ssl.SSLCertVerificationError as exc:
        trusted, why = False, exc.verify_message or str(exc)
        loose = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        loose.check_hostname = False
        loose.verify_mode = ssl.CERT_NONE
        try:
            version, cipher, der = _handshake(host, port, loose, timeout_s, sni)
        except (OSError, ssl.SSLError) as exc2:
            return [_row(i, g, c, "not checked", f"{where}: handshake failed: {exc2}", "tls") for i, g, c in ids]
    except (OSError, ssl.SSLError) as exc:
        return [_row(i, g, c, "not checked", f"{where}: connection failed: {type(exc).__name__}: {exc}", "tls")
                for i, g, c in ids]
    rows = []
    ok_proto = _TLS_ORDER.get(version, -1) >= _TLS_ORDER[min_version]
    rows.append(_row(*ids[0], "pass" if ok_proto else "fail",
                     f"{where} negotiated {version} ({cipher}); minimum {min_version}", "tls"))
    rows.append(_row(*ids[1], "pass" if trusted else "fail",
                     f"{where}: verified against {'the CA file' if cafile else 'the system CAs'}" if trusted
                     else f"{where}: not trusted: {why}", "tls"))
    if der:
        info = cert_info(der)
        days = (info["not_after"] - _now(now)).total_seconds() / 86400
        status = "fail" if days < fail_days else ("warn" if days < warn_days else "pass")
        state = "expired" if days < 0 else f"{days:.1f} days left"
        rows.append(_row(*ids[2], status,
                         f"{where}: notAfter {info['not_after']:%Y-%m-%dT%H:%M:%SZ} ({state}; warn < {warn_days:g} d, "
                         f"fail < {fail_days:g} d); subject {info['subject']}", "tls"))
    else:
        rows.append(_row(*ids[2], "not checked", f"{where}: no certificate received", "tls"))
    return rows


# ---------------------------------------------------------------------------------------------
# JWT
# ---------------------------------------------------------------------------------------------


def _b64json(part: str, what: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ParseError(f"JWT {what} is not base64url-encoded JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ParseError(f"JWT {what} is not a JSON object")
    return data


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(header, payload)`` of a compact JWS, **without verifying the signature**.

    >>> h = base64.urlsafe_b64encode(b'{"alg":"HS256"}').rstrip(b"=").decode()
    >>> p = base64.urlsafe_b64encode(b'{"exp":1}').rstrip(b"=").decode()
    >>> decode_jwt(f"{h}.{p}.sig")
    ({'alg': 'HS256'}, {'exp': 1})
    """
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise ParseError(f"a JWT has 3 dot-separated parts; this token has {len(parts)}")
    return _b64json(parts[0], "header"), _b64json(parts[1], "payload")


def _epoch(v: Any) -> datetime | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return datetime.fromtimestamp(v, tz=timezone.utc)


def jwt_check(token: str | None, *, now: datetime | None = None, max_lifetime_s: float | None = 3600,
              warn_remaining_s: float = 300, label: str = "token") -> list[dict[str, str]]:
    """Evidence rows for a JWT: algorithm, expiry, lifetime. ``None``/empty: not checked.

    Example
    -------
    >>> [r["status"] for r in jwt_check(None)]
    ['not checked', 'not checked', 'not checked']
    """
    ids = (("jwt.alg", "JWT algorithm is not 'none'"), ("jwt.exp", "JWT has an expiry and is not expired"),
           ("jwt.lifetime", "JWT lifetime (exp - iat)"))
    if not token:
        return [_row(i, "authentication", c, "not checked", "no token given", "jwt") for i, c in ids]
    try:
        header, payload = decode_jwt(token)
    except ParseError as exc:
        return [_row(i, "authentication", c, "fail", f"{label}: {exc}", "jwt") for i, c in ids]
    t = _now(now)
    alg = str(header.get("alg", ""))
    rows = [_row(ids[0][0], "authentication", ids[0][1], "fail" if alg.lower() in ("", "none") else "pass",
                 f"{label}: alg {alg or '(missing)'}, typ {header.get('typ', '-')}; signature not verified", "jwt")]
    exp, iat = _epoch(payload.get("exp")), _epoch(payload.get("iat"))
    if exp is None:
        rows.append(_row(ids[1][0], "authentication", ids[1][1], "fail", f"{label}: no numeric exp claim: never expires",
                         "jwt"))
    else:
        left = (exp - t).total_seconds()
        status = "fail" if left <= 0 else ("warn" if left < warn_remaining_s else "pass")
        state = f"expired {-left:.0f} s ago" if left <= 0 else f"{left:.0f} s left"
        rows.append(_row(ids[1][0], "authentication", ids[1][1], status,
                         f"{label}: exp {exp:%Y-%m-%dT%H:%M:%SZ} ({state})", "jwt"))
    if exp is None or iat is None:
        rows.append(_row(ids[2][0], "authentication", ids[2][1], "not checked",
                         f"{label}: needs both iat and exp claims", "jwt"))
    else:
        life = (exp - iat).total_seconds()
        bad = max_lifetime_s is not None and life > max_lifetime_s
        lim = f"; maximum {max_lifetime_s:g} s" if max_lifetime_s is not None else ""
        rows.append(_row(ids[2][0], "authentication", ids[2][1], "warn" if bad else "pass",
                         f"{label}: lifetime {life:.0f} s (iat {iat:%Y-%m-%dT%H:%M:%SZ}){lim}", "jwt"))
    return rows


# ---------------------------------------------------------------------------------------------
# dependency audit
# ---------------------------------------------------------------------------------------------


def audit_check(report: str | Path | None) -> list[dict[str, str]]:
    """Evidence rows from a ``pip-audit --format json`` report (``None``/empty: not checked).

    Accepts pip-audit 2.x (``{"dependencies": [...], "fixes": [...]}``) and the older bare list.
    Raises :class:`~dwcpkit.errors.ParseError` for a file that is not such a report.
    """
    group, check = "vulnerability scan", "dependency vulnerabilities (pip-audit)"
    if report is None or str(report).strip() == "":
        return [_row("audit.dependencies", group, check, "not checked", "no audit report given", "pip-audit")]
    p = SAMPLE_AUDIT if str(report) == "sample" else Path(report)
    if not p.is_file():
        raise SourceError(f"audit report {str(report)!r} not found; produce one with "
                          "`pip-audit --format json -o audit.json` or leave audit_report empty")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ParseError(f"not JSON: {exc}", path=p.name) from None
    deps = data.get("dependencies") if isinstance(data, dict) else data
    if not isinstance(deps, list) or not all(isinstance(d, dict) and "name" in d for d in deps):
        raise ParseError("not a pip-audit JSON report (expected 'dependencies': [{name, version, vulns}, ...])",
                         path=p.name)
    rows, skipped, audited = [], [], 0
    for d in deps:
        if d.get("skip_reason"):
            skipped.append(f"{d['name']} ({d['skip_reason']})")
            continue
        audited += 1
        for v in d.get("vulns") or []:
            aliases = ", ".join(v.get("aliases") or [])
            fixes = ", ".join(v.get("fix_versions") or []) or "none yet"
            rows.append(_row("audit.dependencies", group, f"{d['name']} {d.get('version', '?')}", "fail",
                             f"{v.get('id', '?')}" + (f" ({aliases})" if aliases else "") + f"; fixed in {fixes}",
                             f"pip-audit:{p.name}"))
    if audited and not rows:
        rows.append(_row("audit.dependencies", group, check, "pass",
                         f"{audited} dependencies audited, none with a known vulnerability", f"pip-audit:{p.name}"))
    if skipped:
        rows.append(_row("audit.skipped", group, "dependencies pip-audit could not audit", "not checked",
                         "; ".join(skipped), f"pip-audit:{p.name}"))
    if not audited and not skipped:
        raise DataError(f"{p.name} lists no dependencies: an empty report is not evidence of anything")
    return rows


# ---------------------------------------------------------------------------------------------
# Byzantine tolerance from telemetry
# ---------------------------------------------------------------------------------------------


def byzantine_check(frame: pl.DataFrame | None, *, at: datetime | None = None, window: timedelta = timedelta(hours=24),
                    cluster_size: int = 7) -> list[dict[str, str]]:
    """Per region: consensus nodes with Byzantine detections in ``window`` before ``at`` vs ``f <= (n-1)//3``.

    ``frame`` holds ``dwcp_v3_byzantine_detections_total`` (per ``node_id``); ``None`` or no such
    series: not checked. A node counts when its counter increased (resets handled by
    :func:`dwcpkit.sre.slo.increase`).
    """
    cid, group, check = "byzantine.tolerance", "byzantine", "Byzantine nodes within tolerance f <= (n-1)//3"
    metric = "dwcp_v3_byzantine_detections_total"
    if isinstance(cluster_size, bool) or not isinstance(cluster_size, int) or cluster_size < 1:
        raise ParameterError(f"cluster_size={cluster_size!r}; give the number of consensus nodes per region")
    sel = frame.filter(pl.col("metric") == metric) if frame is not None and frame.height else None
    if sel is None or sel.height == 0:
        return [_row(cid, group, check, "not checked", f"no {metric} series", "telemetry")]
    from dwcpkit.sre import slo

    t = sel["timestamp"].max() if at is None else at
    inc = slo.increase(sel, window, at=t)
    f_max = (cluster_size - 1) // 3
    rows = []
    for region in sorted(sel["region"].drop_nulls().unique().to_list()):
        r = inc.filter(pl.col("region") == region)
        bad = sorted(r.filter(pl.col("value") > 0)["node_id"].to_list())
        status = "pass" if len(bad) <= f_max else "fail"
        hrs = window.total_seconds() / 3600
        rows.append(_row(cid, group, f"{check}: {region}", status,
                         f"{len(bad)} node(s) with detections in the {hrs:g} h before {t:%Y-%m-%d %H:%M} UTC"
                         + (f" ({', '.join(bad)})" if bad else "") + f"; n = {cluster_size}, f <= {f_max}",
                         "telemetry"))
    return rows


# ---------------------------------------------------------------------------------------------
# posture
# ---------------------------------------------------------------------------------------------


def evidence_table(rows: Sequence[Mapping[str, str]]) -> pl.DataFrame:
    """Rows as a frame (id, group, check, status, evidence, source)."""
    return pl.DataFrame(list(rows), schema=_ROW_SCHEMA)


def remediations(rows: Sequence[Mapping[str, str]]) -> list[tuple[str, str]]:
    """``(title, detail)`` of the follow-up each failing or warning row calls for (manual steps).

    >>> remediations(audit_check(SAMPLE_AUDIT))[0][0]
    'Upgrade requests 2.25.1 to a fixed version (2.31.0)'
    """
    out = []
    for r in rows:
        if r["status"] not in ("fail", "warn"):
            continue
        if r["id"] == "audit.dependencies":
            fixed = r["evidence"].rsplit("fixed in ", 1)[-1]
            out.append((f"Upgrade {r['check']} to a fixed version ({fixed})", r["evidence"]))
        elif r["id"] == "tls.expiry":
            out.append(("Renew the TLS certificate", r["evidence"]))
        elif r["id"].startswith("tls."):
            out.append((f"Fix the TLS configuration: {r['check']}", r["evidence"]))
        elif r["id"].startswith("jwt."):
            out.append((f"Fix token issuance: {r['check']}", r["evidence"]))
        elif r["id"] == "byzantine.tolerance":
            out.append((f"Isolate the Byzantine nodes ({r['check'].rsplit(': ', 1)[-1]})", r["evidence"]))
    return out


class Posture:
    """Evidence rows folded: score over checked rows only, coverage of the original's checks, verdict."""

    def __init__(self, evidence: pl.DataFrame):
        self.evidence = evidence
        checked = evidence.filter(pl.col("status") != "not checked")
        self.checked = checked.height
        self.passed = checked.filter(pl.col("status") == "pass").height
        #: percent of checked rows that pass; None without evidence
        self.score: float | None = 100.0 * self.passed / self.checked if self.checked else None
        ids_with_evidence = set(checked["id"].to_list())
        rows = []
        for group, check, ids in (*ORIGINAL_CHECKS, ("vulnerability scan", *_VULN_SCAN)):
            have = [i for i in ids if i in ids_with_evidence]
            if not ids:
                how = "nothing in dwcpkit can check it"
            elif not have:
                how = "checkable here, no evidence in this run"
            else:
                worst = max(checked.filter(pl.col("id").is_in(have))["status"].to_list(), key=STATUSES.index)
                how = worst
            rows.append({"group": group, "original_check": check, "dwcpkit_checks": ", ".join(ids) or "-",
                         "status": how})
        #: the original's checks (plus its vulnerability scan) and what evidence they have here
        self.coverage = pl.DataFrame(rows)
        self.covered = sum(1 for r in rows if r["status"] in STATUSES and r["status"] != "not checked")
        fails = checked.filter(pl.col("status") == "fail")
        warns = checked.filter(pl.col("status") == "warn")
        if not self.checked:
            self.level, self.label = "WARN", "NO EVIDENCE"
        elif fails.height:
            self.level, self.label = "ACT", "FAIL"
        elif warns.height:
            self.level, self.label = "WARN", "WARN"
        else:
            self.level, self.label = "OK", "PASS"
        reasons = [f"{r['check']}: {r['evidence']}" for r in fails.iter_rows(named=True)]
        reasons += [f"{r['check']}: {r['evidence']}" for r in warns.iter_rows(named=True)]
        nc = evidence.filter((pl.col("status") == "not checked") & ~pl.col("evidence").str.starts_with("no "))
        reasons += [f"not checked: {r['check']}: {r['evidence']}" for r in nc.iter_rows(named=True)]
        if self.score is None:
            reasons.append("no check produced evidence: no score (the original printed 100 without any)")
        else:
            reasons.append(f"score {self.score:.0f} % = {self.passed} passing of {self.checked} checks with evidence; "
                           f"{self.covered} of {len(rows)} of the original's checks have evidence here")
        self.reasons = reasons
        self.summary = (f"{self.checked} checks with evidence, {fails.height} failing, {warns.height} warning"
                        if self.checked else "nothing was checked")


def posture(rows: Sequence[Mapping[str, str]]) -> Posture:
    """Fold evidence rows into a :class:`Posture`.

    >>> p = posture(audit_check(SAMPLE_AUDIT) + jwt_check(None))
    >>> p.label, p.checked
    ('FAIL', 2)
    """
    return Posture(evidence_table(rows))
