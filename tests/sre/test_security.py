"""Tests of dwcpkit.sre.security: TLS against a local server with a throw-away certificate, JWT, pip-audit, posture."""

from __future__ import annotations

import base64
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from dwcpkit.errors import DataError, ParameterError, ParseError, SourceError
from dwcpkit.sre import security as S
from dwcpkit.telemetry.schema import from_rows
from dwcpkit.telemetry.sources import load

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)


# --- a local TLS server ------------------------------------------------------------------------


def _self_signed(tmp_path, not_before, not_after):
    """(cert.pem, key.pem) for CN=localhost with SANs localhost and 127.0.0.1, generated now."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl CLI is available to make a certificate")
        days = max(1, (not_after - datetime.now(timezone.utc)).days)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", str(days), "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
        return cert, key
    k = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                     x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
         .sign(k, hashes.SHA256()))
    cert.write_bytes(c.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return cert, key


class TlsServer:
    """Accepts TLS handshakes on 127.0.0.1 until stopped (bounded accept timeout)."""

    def __init__(self, cert, key, max_version=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if max_version is not None:
            ctx.maximum_version = max_version
        self.ctx = ctx
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            try:
                conn.settimeout(2)
                with self.ctx.wrap_socket(conn, server_side=True) as s:
                    try:
                        s.recv(1)
                    except (OSError, ssl.SSLError):
                        pass
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    now = datetime.now(timezone.utc)
    return _self_signed(d, now - timedelta(days=1), now + timedelta(days=10))


@pytest.fixture(scope="module")
def server(certs):
    srv = TlsServer(*certs)
    yield srv
    srv.close()


def _by_id(rows):
    return {r["id"]: r for r in rows}


def test_self_signed_certificate_is_read_but_not_trusted(server):
    rows = _by_id(S.tls_check(f"127.0.0.1:{server.port}", timeout_s=5))
    assert rows["tls.protocol"]["status"] == "pass" and "TLSv1.3" in rows["tls.protocol"]["evidence"]
    assert rows["tls.trusted"]["status"] == "fail" and "self-signed" in rows["tls.trusted"]["evidence"]
    exp = rows["tls.expiry"]
    assert exp["status"] == "warn" and "days left" in exp["evidence"] and "CN=localhost" in exp["evidence"]


def test_trusted_with_its_ca_file_and_expiry_thresholds(server, certs):
    cert, _ = certs
    rows = _by_id(S.tls_check(f"https://localhost:{server.port}/x", cafile=str(cert)))
    assert rows["tls.trusted"]["status"] == "pass" and "the CA file" in rows["tls.trusted"]["evidence"]
    not_after = S.cert_info(ssl.PEM_cert_to_DER_cert(cert.read_text()))["not_after"]
    at = lambda days: S.tls_check(f"localhost:{server.port}", cafile=str(cert),  # noqa: E731
                                  now=not_after - timedelta(days=days))[2]["status"]
    assert (at(40), at(20), at(3), at(-1)) == ("pass", "warn", "fail", "fail")
    expired = S.tls_check(f"localhost:{server.port}", cafile=str(cert), now=not_after + timedelta(days=1))[2]
    assert "expired" in expired["evidence"]


def test_protocol_below_the_minimum_fails(certs):
    srv = TlsServer(*certs, max_version=ssl.TLSVersion.TLSv1_2)
    try:
        rows = _by_id(S.tls_check(f"127.0.0.1:{srv.port}", min_version="TLSv1.3"))
    finally:
        srv.close()
    assert rows["tls.protocol"]["status"] == "fail" and "negotiated TLSv1.2" in rows["tls.protocol"]["evidence"]


def test_unreachable_or_unset_endpoint_is_not_checked():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rows = S.tls_check(f"127.0.0.1:{port}", timeout_s=1)
    assert {r["status"] for r in rows} == {"not checked"} and "connection failed" in rows[0]["evidence"]
    assert {r["evidence"] for r in S.tls_check("  ")} == {"no TLS endpoint given"}
    with pytest.raises(ParameterError, match="min_version"):
        S.tls_check(f"127.0.0.1:{port}", min_version="TLSv9")
    with pytest.raises(ParameterError, match="cafile"):
        S.tls_check(f"127.0.0.1:{port}", cafile="/nonexistent/ca.pem")
    with pytest.raises(ParameterError, match="invalid port"):
        S.parse_endpoint("host:notaport")


def test_cert_info_without_cryptography_matches(certs, monkeypatch):
    der = ssl.PEM_cert_to_DER_cert(certs[0].read_text())
    with_lib = S.cert_info(der)
    import builtins

    real_import = builtins.__import__

    def no_crypto(name, *a, **k):
        if name.startswith("cryptography"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_crypto)
    without = S.cert_info(der)
    assert without["not_after"] == with_lib["not_after"].replace(microsecond=0)
    assert "localhost" in without["subject"]


# --- JWT -------------------------------------------------------------------------------------------


def _b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _jwt(header, payload):
    return f"{_b64(header)}.{_b64(payload)}.c2lnbmF0dXJl"


def test_jwt_checks_and_the_token_never_appears():
    t0 = int(NOW.timestamp())
    good = _jwt({"alg": "RS256", "typ": "JWT"}, {"iat": t0 - 60, "exp": t0 + 840, "sub": "alice"})
    rows = _by_id(S.jwt_check(good, now=NOW, max_lifetime_s=900))
    assert [rows[k]["status"] for k in ("jwt.alg", "jwt.exp", "jwt.lifetime")] == ["pass", "pass", "pass"]
    assert "signature not verified" in rows["jwt.alg"]["evidence"] and "840 s left" in rows["jwt.exp"]["evidence"]
    assert not any(good in r["evidence"] or "alice" in r["evidence"] for r in rows.values())
    long_lived = _by_id(S.jwt_check(_jwt({"alg": "HS256"}, {"iat": t0, "exp": t0 + 86400}), now=NOW))
    assert long_lived["jwt.lifetime"]["status"] == "warn"
    soon = _by_id(S.jwt_check(_jwt({"alg": "HS256"}, {"exp": t0 + 60}), now=NOW))
    assert soon["jwt.exp"]["status"] == "warn" and soon["jwt.lifetime"]["status"] == "not checked"
    expired = _by_id(S.jwt_check(_jwt({"alg": "HS256"}, {"exp": t0 - 5}), now=NOW))
    assert expired["jwt.exp"]["status"] == "fail" and "expired 5 s ago" in expired["jwt.exp"]["evidence"]
    none = _by_id(S.jwt_check(_jwt({"alg": "none"}, {}), now=NOW))
    assert none["jwt.alg"]["status"] == "fail" and none["jwt.exp"]["status"] == "fail"
    bad = S.jwt_check("bm90anNvbg.e30.sig", now=NOW)   # header "notjson"
    assert {r["status"] for r in bad} == {"fail"} and "base64url" in bad[0]["evidence"]
    with pytest.raises(ParseError, match="3 dot-separated"):
        S.decode_jwt("abc")


# --- pip-audit ---------------------------------------------------------------------------------------


def test_audit_sample_and_formats(tmp_path):
    rows = S.audit_check("sample")
    fails = [r for r in rows if r["status"] == "fail"]
    assert [r["check"] for r in fails] == ["requests 2.25.1", "urllib3 1.26.4"]
    assert "fixed in 2.31.0" in fails[0]["evidence"] and "CVE-2023-32681" in fails[0]["evidence"]
    assert rows[-1]["status"] == "not checked" and "dwcpkit" in rows[-1]["evidence"]
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps([{"name": "a", "version": "1", "vulns": []}, {"name": "b", "version": "2"}]))
    assert [r["status"] for r in S.audit_check(clean)] == ["pass"]
    assert S.audit_check("")[0]["status"] == "not checked"


def test_audit_errors(tmp_path):
    with pytest.raises(SourceError, match="pip-audit --format json"):
        S.audit_check(tmp_path / "missing.json")
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(ParseError, match="not JSON"):
        S.audit_check(p)
    p.write_text(json.dumps({"results": []}))
    with pytest.raises(ParseError, match="not a pip-audit"):
        S.audit_check(p)
    p.write_text(json.dumps({"dependencies": []}))
    with pytest.raises(DataError, match="empty report"):
        S.audit_check(p)


# --- Byzantine tolerance -------------------------------------------------------------------------------


def test_byzantine_tolerance_from_telemetry():
    frame = load("sample", metrics=["dwcp_v3_byzantine_detections_total"])
    at = datetime(2026, 11, 1, 13, 30, tzinfo=timezone.utc)
    rows = {r["check"].rsplit(": ", 1)[1]: r for r in S.byzantine_check(frame, at=at, window=timedelta(hours=1))}
    assert rows["ap-south"]["status"] == "pass" and "(ap-south-2)" in rows["ap-south"]["evidence"]
    assert rows["us-east"]["evidence"].startswith("0 node(s)")
    three = from_rows([(t * 60_000, "dwcp_v3_byzantine_detections_total", float(t * (i < 3)),
                        {"region": "r", "node_id": f"n{i}"}) for t in range(10) for i in range(7)])
    assert S.byzantine_check(three, window=timedelta(minutes=5))[0]["status"] == "fail"
    assert S.byzantine_check(three, window=timedelta(minutes=5), cluster_size=10)[0]["status"] == "pass"
    assert S.byzantine_check(None)[0]["status"] == "not checked"


# --- posture -------------------------------------------------------------------------------------------


def test_no_score_without_evidence_and_the_coverage_table():
    empty = S.posture(S.tls_check("") + S.jwt_check(None) + S.audit_check(None))
    assert (empty.score, empty.level, empty.label, empty.checked) == (None, "WARN", "NO EVIDENCE", 0)
    assert "no score" in empty.reasons[-1]
    assert empty.coverage.height == 19 and empty.covered == 0
    t0 = int(NOW.timestamp())
    ok = S.posture(S.jwt_check(_jwt({"alg": "RS256"}, {"iat": t0, "exp": t0 + 600}), now=NOW))
    assert (ok.level, ok.label, ok.score, ok.covered) == ("OK", "PASS", 100.0, 1)
    mixed = S.posture(S.audit_check("sample") + S.jwt_check(_jwt({"alg": "HS256"}, {"exp": t0 + 60}), now=NOW))
    assert mixed.label == "FAIL" and mixed.checked == 4 and mixed.passed == 1 and mixed.score == 25.0
    cov = mixed.coverage.filter(pl.col("original_check") == "JWT validation")["status"][0]
    assert cov == "warn"
    assert S.remediations(S.audit_check("sample"))[1][0] == "Upgrade urllib3 1.26.4 to a fixed version (1.26.5)"
