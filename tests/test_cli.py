"""The dwcpkit command: list, show, sample-data, bench and error handling (no kernels here)."""

import subprocess
import sys

import pytest

from dwcpkit.cli import main


def test_list_shows_every_notebook_one_line_each(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert {"incident-triage", "rollout-gate"} <= set(names)
    assert all(len(line.split()) >= 3 for line in lines)  # name, kind, title


def test_show_lists_parameters_with_types_defaults_allowed_and_help(capsys):
    assert main(["show", "rollout-gate"]) == 0
    out = capsys.readouterr().out
    assert "trigger_mode: choice = 'consecutive'" in out
    assert "allowed: one of 'cumulative', 'consecutive'" in out
    assert "stage_percent: int = 50" in out and "allowed: an integer in [0, 100]" in out
    assert "rollout stage being gated" in out


def test_show_unknown_name_is_usage_error(capsys):
    assert main(["show", "incident-triag"]) == 2
    assert "Did you mean 'incident-triage'" in capsys.readouterr().err


def test_unknown_benchmark_lists_the_available_ones(capsys):
    assert main(["bench", "nope"]) == 2
    assert "available: " in capsys.readouterr().err


def test_sample_data_regenerates_the_committed_files(tmp_path):
    from dwcpkit._paths import data_dir

    assert main(["sample-data", "--out", str(tmp_path)]) == 0
    import polars as pl

    fresh = pl.read_parquet(tmp_path / "telemetry.parquet")
    assert fresh.equals(pl.read_parquet(data_dir() / "telemetry.parquet"))
    assert (tmp_path / "incidents.csv").read_text() == (data_dir() / "incidents.csv").read_text()


@pytest.mark.parametrize("argv", [["run"], ["frobnicate"], ["run", "x", "-p", "onlyname"]])
def test_argparse_usage_errors_exit_2(argv):
    proc = subprocess.run([sys.executable, "-m", "dwcpkit.cli", *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "usage:" in proc.stderr
