"""The scheduled-job recipes of the README, as the schedulers invoke notebooks."""

import subprocess
import sys

import nbformat
import papermill as pm
from nbclient import NotebookClient

from dwcpkit.runbook import prepare, read_verdict
from dwcpkit.runbook.manifest import read_manifest


def test_cron_recipe_templated_output_and_exit_code(tmp_path, fixture_nb):
    """cron: `dwcpkit run NAME -f params.yaml --out '.../{name}/{date}/{level}-{id}'`; exit code = verdict."""
    (tmp_path / "params.yaml").write_text("level: WARN\n")
    proc = subprocess.run([sys.executable, "-m", "dwcpkit.cli", "run", fixture_nb("verdicts"), "-f", "params.yaml",
                           "--out", "jobs/{name}/{date}/{level}-{id}", "--no-progress", "--no-html"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 10, proc.stderr
    (folder,) = (tmp_path / "jobs" / "verdicts").glob("*/WARN-*")
    assert read_manifest(folder)["verdict"]["level"] == "WARN"


def test_airflow_papermill_operator_recipe(tmp_path, fixture_nb):
    """Airflow's PapermillOperator calls papermill like this; validate first, read the verdict after."""
    params = {"level": "ACT", "count": 4}
    prepare(fixture_nb("verdicts"), params)  # the recipe's validation step: raises ParameterError (exit 2)
    out = tmp_path / "out-2026-11-28.ipynb"
    pm.execute_notebook(fixture_nb("verdicts"), str(out), parameters=params, progress_bar=False,
                        report_mode=True, kernel_name="python3")
    assert read_verdict(out)["exit_code"] == 20


def test_jupyter_scheduler_style_injection(tmp_path, fixture_nb):
    """jupyter-scheduler injects raw `key = value` lines after the parameters cell and runs nbconvert's executor."""
    nb = nbformat.read(fixture_nb("verdicts"), as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell('level = "ESCALATE"')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, injected)
    NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    out = tmp_path / "job.ipynb"
    nbformat.write(nb, out)
    assert read_verdict(out)["level"] == "ESCALATE"
    assert read_verdict(fixture_nb("verdicts")) is None  # an unexecuted notebook has no verdict
