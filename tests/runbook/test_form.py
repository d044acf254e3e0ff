import ipywidgets as w

from dwcpkit.runbook import form
from dwcpkit.runbook.form import RunbookForm
from dwcpkit.runbook.run import RunResult


def test_widgets_follow_the_schema():
    f = form("rollout-gate")
    assert isinstance(f.inputs["trigger_mode"], w.Dropdown)
    assert f.inputs["trigger_mode"].options == ("cumulative", "consecutive")
    assert isinstance(f.inputs["stage_percent"], w.BoundedIntText)
    assert (f.inputs["stage_percent"].min, f.inputs["stage_percent"].max) == (0, 100)
    assert isinstance(f.inputs["dry_run"], w.Checkbox) and f.inputs["dry_run"].value is True
    assert f.inputs["stage_percent"].tooltip == "rollout stage being gated (percent of traffic on v3)"
    assert f.values() == {}


def test_run_button_validates_and_runs_through_the_engine(tmp_path, fixture_nb):
    calls = []

    def runner(path, values, **kw):
        calls.append((path, values))
        return RunResult(tmp_path, 20, "ok", {"level": "ACT", "label": "ROLLBACK", "reasons": ["x"], "summary": ""},
                         manifest={"outputs": {"report": "report.html"}})

    f = RunbookForm(fixture_nb("verdicts"), out=tmp_path, runner=runner)
    f.inputs["level"].value = "ACT"
    f.inputs["count"].value = 7
    f.button.click()
    assert calls == [(fixture_nb("verdicts"), {"level": "ACT", "count": 7})]
    assert f.result.exit_code == 20
    shown = str(f.output.outputs)
    assert "ROLLBACK" in shown and "report.html" in shown


def test_invalid_value_is_shown_not_run(tmp_path, fixture_nb):
    f = RunbookForm(fixture_nb("actions"), out=tmp_path, runner=lambda *a, **k: 1 / 0)
    f.inputs["token_env"].value = "not a name!"
    assert f.run() is None
    assert "NAME of an environment variable" in str(f.output.outputs)


def test_real_run_from_the_form(tmp_path, fixture_nb):
    f = RunbookForm(fixture_nb("verdicts"), out=tmp_path)
    f.inputs["level"].value = "WARN"
    result = f.run()
    assert result.exit_code == 10 and (result.folder / "manifest.json").exists()
