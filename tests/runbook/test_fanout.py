import json

import pytest

from dwcpkit.errors import ParameterError
from dwcpkit.runbook.fanout import Target, fanout, format_summary, load_targets, worst_exit_code
from dwcpkit.runbook.manifest import read_manifest


def test_load_targets_mapping_and_list_forms(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("params: {count: 2}\ntargets:\n  a: {level: WARN}\n  b: {count: 5}\n")
    assert load_targets(f) == [Target("a", {"count": 2, "level": "WARN"}), Target("b", {"count": 5})]
    f.write_text("targets:\n  - name: x\n    params: {level: ACT}\n  - name: y\n")
    assert load_targets(f) == [Target("x", {"level": "ACT"}), Target("y", {})]


@pytest.mark.parametrize("text, fragment", [
    ("- a\n", "top-level 'targets:'"),
    ("targets: []\n", "no targets"),
    ("targets:\n  - params: {}\n", "needs a 'name'"),
    ("targets:\n  - name: a\n  - name: a\n", "duplicate target names ['a']"),
    ("targets: [", "not valid YAML"),
])
def test_bad_targets_files(tmp_path, text, fragment):
    f = tmp_path / "t.yaml"
    f.write_text(text)
    with pytest.raises(ParameterError) as info:
        load_targets(f)
    assert fragment in str(info.value)


def test_worst_exit_code_order():
    assert worst_exit_code([0, 0]) == 0
    assert worst_exit_code([0, 10, 20]) == 20
    assert worst_exit_code([20, 1]) == 1
    assert worst_exit_code([20, 3, 1, 30]) == 30


def test_bad_parameter_of_any_target_fails_before_anything_runs(tmp_path, fixture_nb):
    with pytest.raises(ParameterError, match="'level'"):
        fanout(fixture_nb("verdicts"), [Target("a", {}), Target("b", {"level": "PANIC"})], out=tmp_path)
    assert list(tmp_path.iterdir()) == []


def _check(result, expected):
    assert {r["target"]: (r["level"], r["exit_code"]) for r in result.rows} == expected
    summary = json.loads((result.folder / "summary.json").read_text())
    assert summary["exit_code"] == result.exit_code
    for r in result.rows:  # one run folder per target, each with its own manifest
        assert read_manifest(r["folder"])["exit_code"] == r["exit_code"]
    assert "exit     %d" % result.exit_code in format_summary(result)


def test_process_pool_fanout_worst_verdict_sets_exit(tmp_path, fixture_nb):
    targets = [Target("ok", {"level": "OK"}), Target("warn", {"level": "WARN"}), Target("act", {"level": "ACT"})]
    result = fanout(fixture_nb("verdicts"), targets, out=tmp_path, jobs=2)
    _check(result, {"ok": ("OK", 0), "warn": ("WARN", 10), "act": ("ACT", 20)})
    assert result.exit_code == 20


def test_dask_local_cluster_fanout(tmp_path, fixture_nb):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="1GB", dashboard_address=None,
                                  local_directory=str(tmp_path / "dask")) as cluster:
        targets = [Target("esc", {"level": "ESCALATE"}), Target("ok", {"level": "OK"})]
        result = fanout(fixture_nb("verdicts"), targets, out=tmp_path / "runs", jobs=2, scheduler=cluster.scheduler_address)
    _check(result, {"esc": ("ESCALATE", 30), "ok": ("OK", 0)})
    assert result.exit_code == 30
