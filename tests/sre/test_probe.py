"""Tests of dwcpkit.sre.probe against the local fake API (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import socket
from collections import Counter

import polars as pl
import pytest

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import probe, slo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_full_run_does_the_14_transactions_and_cleans_up():
    with probe.FakeApi() as api:
        r = probe.run_probe(api.url, runs=2, dry_run=False, run_id="t")
        assert (len(api.vms), len(api.data)) == (0, 0)
        reqs = Counter((q.method, q.path.split("/")[3]) for q in api.requests)
        proposals = list(api.proposals)
    assert r.transactions.height == 28 and r.transactions["ok"].all()
    assert dict(Counter(r.transactions["type"].to_list())) == {k: 2 * v for k, v in probe.TRANSACTIONS.items()}
    # 3 VM creates + 2 end-to-end creates per run, 3 keys per run; every one deleted
    assert len(r.created) == 16 and r.cleanup["status"].to_list() == ["deleted"] * 16 and r.left_behind == []
    assert reqs[("DELETE", "vm")] == 10 and reqs[("DELETE", "data")] == 6 and reqs[("PUT", "data")] == 6
    assert reqs[("POST", "vm")] == 10 and reqs[("GET", "network")] == 10 and len(proposals) == 10
    assert {a.id for a in r.created if a.kind == "vm"} >= {"synthetic-vm-t-1-1", "synthetic-vm-t-2-e2e2"}


def test_dry_run_only_reads_and_plans_the_rest():
    with probe.FakeApi() as api:
        r = probe.run_probe(api.url, runs=3, dry_run=True)
        methods = {q.method for q in api.requests}
        n = len(api.requests)
    assert methods == {"GET"} and n == 9
    assert r.transactions["type"].unique().to_list() == ["network_peers"]
    assert len(r.planned) == 3 * 11 and r.created == []
    summary = probe.planned_summary(r)
    assert summary["count"].to_list() == [9, 9, 9, 6]
    assert summary.filter(pl.col("type") == "vm_create")["endpoint"][0] == "POST /api/v3/vm/create"
    level, label, reasons = probe.judge(r, probe.stats(r))
    assert (level, label) == ("OK", "HEALTHY") and reasons[-1].startswith("dry run: 33 mutating transactions")


def test_failures_are_counted_and_judged():
    with probe.FakeApi(fail={"vm_create": 503}) as api:
        r = probe.run_probe(api.url, dry_run=False)
    tx = r.transactions
    bad = tx.filter(~pl.col("ok"))
    # 3 VM creates fail, and both end-to-end transactions stop at their VM create
    assert sorted(Counter(bad["type"].to_list()).items()) == [("end_to_end", 2), ("vm_create", 3)]
    assert bad["error"].unique().to_list() == ["HTTP 503"] and bad["status"].unique().to_list() == [503]
    level, label, reasons = probe.judge(r, probe.stats(r))
    assert (level, label) == ("ACT", "FAILING")
    assert reasons[0] == "9 of 14 transactions succeeded (64.3 %, minimum 99 %)"


def test_replication_latency_is_write_to_visible():
    with probe.FakeApi(replication_delay_s=0.15) as api:
        r = probe.run_probe(api.url, dry_run=False, poll_interval_s=0.02)
        slow = probe.run_probe(api.url, dry_run=False, replication_timeout_s=0.05, poll_interval_s=0.02)
    rep = r.transactions.filter(pl.col("type") == "data_replication")
    assert rep["ok"].all() and rep["latency_ms"].min() >= 150.0
    miss = slow.transactions.filter(pl.col("type") == "data_replication")
    assert not miss["ok"].any() and miss["error"][0].startswith("not visible within 0.05 s")
    assert slow.left_behind == []       # the keys it wrote were still deleted


def test_timeouts_and_refused_connections_fail_transactions():
    with probe.FakeApi(delay_s=0.4) as api:
        r = probe.run_probe(api.url, dry_run=True, timeout_s=0.1)
    assert not r.transactions["ok"].any()
    assert "timed out" in r.transactions["error"][0].lower()
    dead = probe.run_probe(f"http://127.0.0.1:{_free_port()}", dry_run=True, timeout_s=1)
    assert not dead.transactions["ok"].any() and dead.transactions["status"].null_count() == 3
    assert "refused" in dead.transactions["error"][0].lower()


def test_cleanup_steps_as_actions_and_left_artefacts():
    with probe.FakeApi(fail={"vm_delete": 500}) as api:
        r = probe.run_probe(api.url, dry_run=False, cleanup=False)
        assert len(api.vms) == 5 and len(api.data) == 3
        steps = probe.cleanup_steps(r, api.url)
        outcomes = []
        for s in steps:
            try:
                s.run()
                outcomes.append((s.title, "done", None))
            except RuntimeError as exc:
                outcomes.append((s.title, "failed", str(exc)))
        assert len(api.data) == 0 and len(api.vms) == 5
    assert steps[0].detail.startswith("DELETE /api/v3/vm/synthetic-vm-")
    r.cleanup = probe.cleanup_table(outcomes)
    assert r.cleanup["status"].to_list().count("deleted") == 3 and len(r.left_behind) == 5
    level, label, reasons = probe.judge(r, probe.stats(r))
    assert (level, label) == ("WARN", "LEFT ARTEFACTS") and "5 created artefact(s) not deleted" in reasons[-1]
    # a second delete of a gone key is not an error
    with probe.FakeApi() as api:
        r2 = probe.run_probe(api.url, dry_run=False, cleanup=False)
        s2 = probe.cleanup_steps(r2, api.url)
        assert [s.run() for s in s2[:1]] == ["deleted"] and s2[0].run() == "already gone"
        _ = [s.run() for s in s2[1:]]


def test_stats_use_slo_quantiles_and_thresholds_decide_slow():
    with probe.FakeApi() as api:
        r = probe.run_probe(api.url, runs=4, dry_run=True)
    t = probe.stats(r, {"network_peers": 1e-6})
    row = t.filter(pl.col("type") == "network_peers").row(0, named=True)
    q = slo.quantiles(r.transactions["latency_ms"], (0.5, 0.95, 0.99))
    assert (row["p50_ms"], row["p95_ms"], row["p99_ms"]) == (q[0.5], q[0.95], q[0.99])
    assert row["p95_pass"] is False and row["run"] == 12
    assert t.filter(pl.col("type") == "vm_create")["p95_pass"][0] is None
    level, label, _ = probe.judge(r, t)
    assert (level, label) == ("WARN", "SLOW")


def test_parameters_are_validated():
    with pytest.raises(ParameterError, match="not an http"):
        probe.run_probe("127.0.0.1:8080")
    with pytest.raises(ParameterError, match="runs"):
        probe.run_probe("http://127.0.0.1:1", runs=0)
    with pytest.raises(ParameterError, match="timeout_s"):
        probe.run_probe("http://127.0.0.1:1", timeout_s=0)
    with pytest.raises(ParameterError, match="unknown transaction type"):
        probe.stats(probe.ProbeResult(pl.DataFrame(), [], [], pl.DataFrame(), True, 1), {"vm": 1})
    with pytest.raises(ParameterError, match="not started"):
        _ = probe.FakeApi().url


def test_judge_refuses_an_empty_probe():
    empty = probe.ProbeResult(pl.DataFrame(schema={"ok": pl.Boolean}), [], [], pl.DataFrame(), True, 1)
    with pytest.raises(DataError):
        probe.judge(empty, pl.DataFrame())
