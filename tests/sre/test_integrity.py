"""Tests of dwcpkit.sre.integrity: replica hashing, majority, VM states, replication lag, repairs."""

from __future__ import annotations

import hashlib
import json

import polars as pl
import pytest

from dwcpkit.errors import DataError, ParameterError, ParseError, SourceError
from dwcpkit.sre import integrity as I


@pytest.fixture
def sample(tmp_path):
    return I.make_sample_replicas(tmp_path / "set")


def test_sample_is_deterministic_and_has_one_divergent_object(tmp_path):
    a = I.make_sample_replicas(tmp_path / "a")
    b = I.make_sample_replicas(tmp_path / "b")
    assert I.hash_replica(a / "replica-a") == I.hash_replica(b / "replica-a")
    comp = I.compare_replicas(a)
    bad = comp.filter(pl.col("status") != "consistent")
    assert bad.height == 1 and bad["status"][0] == "divergent" and bad["odd"][0] == "replica-c"
    assert comp.height == 30 and comp.filter(pl.col("kind") == "vm_state").height == 6
    assert "_replication.json" not in comp["path"].to_list()


def test_sha256_file_streams_the_same_digest(tmp_path):
    p = tmp_path / "f"
    data = bytes(range(256)) * 9000
    p.write_bytes(data)
    assert I.sha256_file(p) == hashlib.sha256(data).hexdigest()


def test_evaluate_the_sample_then_repair_it(sample):
    r = I.evaluate(sample)
    checks = {c["check"]: c for c in r.checks.iter_rows(named=True)}
    assert (checks["object checksums"]["passed"], checks["object checksums"]["failed"]) == (23, 1)
    assert checks["VM state hashes"]["status"] == "pass" and checks["replication lag"]["status"] == "pass"
    assert (r.level, r.label) == ("ACT", "INCONSISTENT") and r.score == pytest.approx(200 / 3)
    assert len(r.repairs) == 1 and r.repairs[0].source == "replica-a" and r.repairs[0].target == "replica-c"
    assert r.repairs[0].runner(sample)().startswith("replica-c/")
    after = I.evaluate(sample)
    assert (after.level, after.label, after.score) == ("OK", "CONSISTENT", 100.0)


def test_missing_copies_and_vm_states(sample):
    (sample / "replica-b" / "vms" / "vm-002.state").unlink()
    (sample / "replica-a" / "vms" / "vm-004.state").write_bytes(b"changed")
    r = I.evaluate(sample)
    vm = r.comparison.filter(pl.col("kind") == "vm_state").filter(pl.col("status") != "consistent")
    assert dict(zip(vm["path"], vm["status"])) == {"vms/vm-002.state": "missing", "vms/vm-004.state": "divergent"}
    assert r.checks.filter(pl.col("check") == "VM state hashes")["failed"][0] == 2
    fixes = {(x.path, x.target): x.source for x in r.repairs}
    assert fixes[("vms/vm-002.state", "replica-b")] == "replica-a"
    assert fixes[("vms/vm-004.state", "replica-a")] == "replica-b"
    for x in r.repairs:
        x.runner(sample)()
    assert I.evaluate(sample).label == "CONSISTENT"
    agree = I.agreement_frame(r.comparison)
    assert agree.height == 90 and agree["agrees"].sum() == 90 - 3


def test_no_majority_means_restore_from_backup(tmp_path):
    root = I.make_sample_replicas(tmp_path / "two", replicas=("left", "right"))
    r = I.evaluate(root)
    rep = r.repairs
    assert rep and all(x.source is None for x in rep) and rep[0].runner(root) is None
    assert rep[0].title.startswith("Restore objects/") and "from backup" in rep[0].title
    assert "0 copy from the majority, 2 restore from backup" in " ".join(r.reasons)


def test_replication_lag_rules(sample):
    lag = I.replication_lag(sample, max_lag_s=30)
    assert lag.filter(pl.col("replica") == "replica-c").row(0, named=True)["lag_s"] == 39.0
    assert lag["status"].to_list() == ["primary", "pass", "fail"]
    r = I.evaluate(sample, max_lag_ops=5)
    assert r.checks.filter(pl.col("check") == "replication lag")["status"][0] == "fail"
    assert I.replication_lag(sample, primary="replica-c")["lag_ops"].to_list() == [0, 0, 0]
    with pytest.raises(ParameterError, match="not a replica"):
        I.replication_lag(sample, primary="replica-z")


def test_lag_label_when_only_lag_is_wrong_or_missing(tmp_path):
    root = I.make_sample_replicas(tmp_path / "s", divergent=0, lag_s=600)
    assert I.evaluate(root).label == "LAGGING"
    for rep in ("replica-a", "replica-b", "replica-c"):
        (root / rep / I.STATE_FILE).unlink()
    r = I.evaluate(root)
    assert (r.level, r.label) == ("WARN", "LAG NOT CHECKED") and r.score == 100.0
    assert I.replication_lag(root).height == 0


def test_state_file_errors(sample):
    (sample / "replica-b" / I.STATE_FILE).write_text(json.dumps({"role": "primary", "last_seq": 1}))
    with pytest.raises(DataError, match="several replicas"):
        I.replication_lag(sample)
    (sample / "replica-b" / I.STATE_FILE).write_text("{broken")
    with pytest.raises(ParseError, match="replica-b/_replication.json"):
        I.replication_lag(sample)
    (sample / "replica-b" / I.STATE_FILE).write_text(json.dumps({"last_seq": "many"}))
    with pytest.raises(ParseError, match="not an integer"):
        I.replication_lag(sample)


def test_layout_errors(tmp_path):
    with pytest.raises(SourceError):
        I.open_replicas(str(tmp_path / "nope"))
    (tmp_path / "only").mkdir()
    with pytest.raises(DataError, match="at least 2"):
        I.compare_replicas(tmp_path)
    (tmp_path / "second").mkdir()
    with pytest.raises(DataError, match="no data files"):
        I.compare_replicas(tmp_path)
    root, temp = I.open_replicas("sample")
    try:
        assert sorted(p.name for p in root.iterdir()) == ["replica-a", "replica-b", "replica-c"]
    finally:
        temp.cleanup()
    assert not root.exists()
