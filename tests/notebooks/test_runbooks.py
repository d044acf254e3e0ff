"""The runbooks end to end through the engine: sample data, a file, a Prometheus API over HTTP, a dead source."""

import socket

from fakeprom import FakeProm

from dwcpkit.runbook import run
from dwcpkit.runbook.manifest import read_manifest
from dwcpkit.telemetry import exposition
from dwcpkit.telemetry.sources import load

def _verdict(result):
    assert result.verdict is not None, result.error
    return result.verdict["level"], result.verdict["label"]


def test_incident_triage_on_sample_is_the_committed_verdict(tmp_path):
    result = run("incident-triage", {}, out=tmp_path, progress=False)
    assert _verdict(result) == ("ESCALATE", "SEV2")
    assert result.exit_code == 30
    assert any("us-east" in r and "error_rate" in r for r in result.verdict["reasons"])
    m = read_manifest(result.folder)
    assert m["actions"]["planned"] and not m["actions"]["executed"]
    html = (result.folder / "report.html").read_text()
    assert "data:image/svg+xml;base64," in html or "<svg" in html  # charts embedded, visible offline


def test_rollout_gate_on_sample(tmp_path):
    assert _verdict(run("rollout-gate", {}, out=tmp_path, progress=False, html=False)) == ("OK", "GO")
    during_outage = run("rollout-gate", {"at": "2026-11-01T20:00:00Z"}, out=tmp_path, progress=False, html=False)
    assert _verdict(during_outage) == ("ACT", "ROLLBACK") and during_outage.exit_code == 20
    assert any("components healthy" in r for r in during_outage.verdict["reasons"])


def test_incident_triage_from_an_exposition_file(tmp_path):
    frame = load("sample", start="2026-11-01T18:00:00Z", end="2026-11-01T20:10:00Z")
    path = tmp_path / "window.prom"
    exposition.write_file(frame, path)
    result = run("incident-triage", {"source": str(path), "at": "2026-11-01T20:00:00Z"}, out=tmp_path,
                 progress=False, html=False)
    assert _verdict(result) == ("ESCALATE", "SEV1")
    assert "hde service" in result.verdict["reasons"][0]


def test_incident_triage_against_a_prometheus_api(tmp_path):
    frame = load("sample", start="2026-11-01T16:00:00Z", end="2026-11-01T20:10:00Z")
    with FakeProm(frame) as api:
        result = run("incident-triage", {"source": api.url, "at": "2026-11-01T20:00:00Z"}, out=tmp_path,
                     progress=False, html=False)
    assert api.queries, "the runbook never queried the server"
    assert _verdict(result) == ("ESCALATE", "SEV1")
    assert "hde service" in result.verdict["reasons"][0]


def test_unreachable_prometheus_gives_exit_3(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name in ("incident-triage", "rollout-gate"):
        result = run(name, {"source": f"http://127.0.0.1:{port}"}, out=tmp_path, progress=False, html=False)
        assert (result.exit_code, result.status) == (3, "source_error")
        assert result.error["ename"] == "PrometheusError"
        assert f"127.0.0.1:{port}" in result.error["evalue"]
