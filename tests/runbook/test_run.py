"""The runbook engine end to end, with real kernels on tiny fixture notebooks."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from dwcpkit.errors import ParameterError
from dwcpkit.runbook import run
from dwcpkit.runbook.manifest import read_manifest

MANIFEST_FIELDS = {"runbook", "parameters", "status", "verdict", "actions", "error", "started_at", "ended_at",
                   "duration_s", "user", "host", "git_commit", "versions", "exit_code", "outputs"}


@pytest.mark.parametrize("level, code, label", [("OK", 0, "GO"), ("WARN", 10, "HOLD"), ("ACT", 20, "ROLLBACK"),
                                                ("ESCALATE", 30, None)])
def test_each_verdict_maps_to_its_exit_code(tmp_path, fixture_nb, level, code, label):
    result = run(fixture_nb("verdicts"), {"level": level, "count": "4"}, out=tmp_path, progress=False,
                 html=(level == "OK"))
    assert result.exit_code == code and result.status == "ok"
    m = read_manifest(result.folder)
    assert MANIFEST_FIELDS <= set(m)
    assert m["verdict"]["level"] == level and m["verdict"]["label"] == label
    assert m["parameters"] == {"level": level, "count": 4, "ratio": 0.5, "name": "x", "dry_run": True}
    assert m["exit_code"] == code and m["ended_at"] and m["duration_s"] > 0
    executed = nbformat.read(result.folder / "verdicts.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    if level == "OK":
        html = (result.folder / "report.html").read_text()
        assert 'class="dwcpkit-verdict"' in html and "asked for OK" in html
        assert "application/scrapbook" not in html  # records are data, not display


def test_bad_parameter_is_rejected_before_any_run_folder_or_kernel(tmp_path, fixture_nb, monkeypatch):
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: pytest.fail("kernel started"))
    with pytest.raises(ParameterError, match="'count'.*in \\[1, 10\\]"):
        run(fixture_nb("verdicts"), {"count": 11}, out=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_failing_cell_gives_exit_1_and_names_the_cell(tmp_path, fixture_nb):
    result = run(fixture_nb("fails"), {}, out=tmp_path, progress=False, html=False)
    assert (result.exit_code, result.status) == (1, "failed")
    m = read_manifest(result.folder)
    assert m["error"]["ename"] == "ValueError" and m["error"]["evalue"] == "boom"
    assert m["error"]["cell_index"] is not None and "raise" in m["error"]["source"]
    assert (result.folder / "fails.ipynb").exists()


def test_source_error_in_a_cell_gives_exit_3(tmp_path, fixture_nb):
    result = run(fixture_nb("fails"), {"kind": "PrometheusError"}, out=tmp_path, progress=False, html=False)
    assert (result.exit_code, result.status) == (3, "source_error")


def test_missing_verdict_is_an_error(tmp_path, fixture_nb):
    result = run(fixture_nb("no_verdict"), {}, out=tmp_path, progress=False, html=False)
    assert (result.exit_code, result.status) == (1, "no_verdict")
    assert "verdict()" in read_manifest(result.folder)["error"]["evalue"]


def test_actions_are_recorded_and_secrets_redacted(tmp_path, fixture_nb, monkeypatch):
    monkeypatch.setenv("DWCP_TEST_SECRET", "hunter2-very-secret")
    result = run(fixture_nb("actions"), {"token_env": "DWCP_TEST_SECRET"}, out=tmp_path, progress=False)
    assert result.exit_code == 10
    m = read_manifest(result.folder)
    assert [a["title"] for a in m["actions"]["planned"]] == ["Restart service", "Tell the channel"]
    assert m["actions"]["executed"] == []
    assert m["parameters"]["token_env"] == "$DWCP_TEST_SECRET (secret, redacted)"
    for f in result.folder.iterdir():
        assert "hunter2-very-secret" not in f.read_text(), f.name
    assert "[REDACTED:DWCP_TEST_SECRET]" in (result.folder / "actions.ipynb").read_text()


def test_actions_execute_only_when_dry_run_is_false(tmp_path, fixture_nb):
    result = run(fixture_nb("actions"), {"dry_run": False}, out=tmp_path, progress=False, html=False)
    m = read_manifest(result.folder)
    assert [a["title"] for a in m["actions"]["executed"]] == ["Restart service"]
    assert m["actions"]["executed"][0]["result"] == "restarted"


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "dwcpkit.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_cli_usage_error_exit_2_without_kernel(tmp_path, fixture_nb):
    proc = _cli("run", fixture_nb("verdicts"), "-p", "level", "PANIC", "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2
    assert "parameter 'level'" in proc.stderr and "one of 'OK', 'WARN', 'ACT', 'ESCALATE'" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    proc = _cli("run", "no-such-runbook", cwd=tmp_path)
    assert proc.returncode == 2 and "dwcpkit list" in proc.stderr


def test_cli_param_file_and_summary(tmp_path, fixture_nb):
    (tmp_path / "p.yaml").write_text("level: ACT\ncount: 2\n")
    proc = _cli("run", fixture_nb("verdicts"), "-f", "p.yaml", "-p", "count", "5", "--out", "o", "--no-progress",
                "--no-html", cwd=tmp_path)
    assert proc.returncode == 20, proc.stderr
    assert "VERDICT  ACT (ROLLBACK)" in proc.stdout and "count=5" in proc.stdout
    folder = next((tmp_path / "o" / "verdicts").iterdir())
    assert json.loads((folder / "manifest.json").read_text())["parameters"]["count"] == 5


def test_cli_bad_param_file(tmp_path, fixture_nb):
    (tmp_path / "p.yaml").write_text("- a\n- b\n")
    proc = _cli("run", fixture_nb("verdicts"), "-f", "p.yaml", cwd=tmp_path)
    assert proc.returncode == 2 and "must be a mapping" in proc.stderr


def test_killed_run_leaves_partial_notebook_and_manifest(tmp_path, fixture_nb):
    proc = subprocess.Popen([sys.executable, "-m", "dwcpkit.cli", "run", fixture_nb("slow"), "--out", str(tmp_path),
                             "--no-progress", "--no-html"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folder = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the sleep cell is running
        runs = list((tmp_path / "slow").glob("*/slow.ipynb")) if (tmp_path / "slow").exists() else []
        if runs and "started" in runs[0].read_text():
            folder = runs[0].parent
            break
        time.sleep(0.2)
    assert folder is not None, "run never reached the sleep cell"
    assert read_manifest(folder)["status"] == "running"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143
    m = read_manifest(folder)
    assert m["status"] == "killed" and m["exit_code"] == 143 and m["ended_at"]
    assert "started" in (folder / "slow.ipynb").read_text()
    assert "RUN KILLED" in out


def test_plain_papermill_runs_a_fixture(tmp_path, fixture_nb):
    out = tmp_path / "out.ipynb"
    proc = subprocess.run([sys.executable, "-m", "papermill", fixture_nb("verdicts"), str(out), "-k", "python3",
                           "-p", "level", "WARN"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "JUPYTER_PATH": ""})
    assert proc.returncode == 0, proc.stderr
    from dwcpkit.runbook import read_records

    assert read_records(nbformat.read(out, as_version=4))["dwcpkit.verdict"]["level"] == "WARN"
