import nbformat
import pytest

from dwcpkit.errors import ParameterError
from dwcpkit.runbook import LEVELS, Verdict, action, read_records, secret, verdict
from dwcpkit.runbook.record import scrap_bundle


@pytest.mark.parametrize("level, code", [("OK", 0), ("WARN", 10), ("ACT", 20), ("ESCALATE", 30), ("warn", 10)])
def test_levels_map_to_exit_codes(level, code):
    assert Verdict(level).exit_code == code
    assert verdict(level, ["x"]).exit_code == code


def test_unknown_level_is_rejected():
    with pytest.raises(ParameterError, match="one of OK, WARN, ACT, ESCALATE"):
        Verdict("PANIC")


def test_verdict_text_and_html():
    v = Verdict("ACT", ["p99 <0.6 s> over limit"], label="ROLLBACK", summary="roll back now")
    assert str(v).splitlines()[0] == "VERDICT ACT (ROLLBACK): roll back now"
    assert "&lt;0.6 s&gt;" in v._repr_html_()
    assert v.to_dict()["exit_code"] == 20
    assert set(LEVELS) == {"OK", "WARN", "ACT", "ESCALATE"}


def test_action_dry_run_records_but_does_not_execute(capsys):
    calls = []
    rec = action("Restart", lambda: calls.append(1), dry_run=True, detail="systemctl restart x")
    assert calls == [] and rec.status == "planned" and rec.at is None
    assert "DRY-RUN would: Restart" in capsys.readouterr().out


def test_action_executes_and_records_failures():
    calls = []
    assert action("Restart", lambda: calls.append(1), dry_run=False).status == "done"
    assert calls == [1]

    def boom():
        raise RuntimeError("no permission")

    rec = action("Drain", boom, dry_run=False)
    assert rec.status == "failed" and "no permission" in rec.error and rec.at is not None


def test_secret_reads_env(monkeypatch):
    monkeypatch.setenv("DWCP_TEST_TOKEN", "abcd")
    assert secret("DWCP_TEST_TOKEN") == "abcd"
    with pytest.raises(ParameterError, match="not set"):
        secret("DWCP_TEST_MISSING_VAR")
    with pytest.raises(ParameterError, match="not an environment-variable name"):
        secret("has space")


def test_records_round_trip_through_nbformat():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", data=scrap_bundle("dwcpkit.verdict", {"level": "OK"}))]
    nb.cells.append(cell)
    nbformat.validate(nb)
    assert read_records(nb) == {"dwcpkit.verdict": {"level": "OK"}}
