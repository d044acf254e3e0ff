"""Tests for dwcpkit.protocol.sweeps: migration sweeps, placement study helpers, assessments."""

from __future__ import annotations

import doctest
import math

import numpy as np
import polars as pl
import pytest

from dwcpkit.errors import ParameterError
from dwcpkit.protocol import itp, migration, sweeps
from dwcpkit.protocol.sweeps import (
    GAP_RUNS,
    PLACEMENT_RUNS,
    MigrationScenario,
    migration_assessment,
    migration_compare,
    migration_sweep,
    migration_table,
    placement_assessment,
    placement_batch_sweep,
    placement_gap,
    placement_quality,
    run_name,
    summarize_gap,
)

GIB = 1024**3


# ------------------------------------------------------------------------------------------------
# migration
# ------------------------------------------------------------------------------------------------


def test_scenario_units_reach_the_model():
    s = MigrationScenario(memory_gib=2.0, dirty_rate_mbps=10.0, rtt_ms=20.0, loss_pct=0.1, capacity_gbps=10.0)
    spec = s.link()
    assert (spec.rtt_s, spec.loss, spec.capacity_bps) == (0.02, 0.001, 10e9)
    direct = migration.compare_v1_v3(2 * GIB, 10e6, spec, v1_streams=16, downtime_budget_s=1.0, max_rounds=30,
                                     rtt_s=0.02)
    t = migration_compare(s)
    assert t["version"].to_list() == ["v1", "v3"]
    assert t["total_time_s"].to_list() == pytest.approx([direct["v1"].total_time_s, direct["v3"].total_time_s])
    assert t["streams"].to_list() == [16, direct["v3"].streams]
    assert t["wire_GB"].to_list() == pytest.approx([direct["v1"].wire_bytes / 1e9, direct["v3"].wire_bytes / 1e9])


@pytest.mark.parametrize("kw", [{"memory_gib": 0.0}, {"memory_gib": float("nan")}, {"loss_pct": 100.0},
                                {"loss_pct": -1.0}, {"v1_streams": 0}, {"streams": 0}, {"max_rounds": True},
                                {"delta_ratio": 0.0}, {"dirty_rate_mbps": -1.0}, {"encode_mbps": 0.0}])
def test_scenario_rejects_bad_inputs(kw):
    with pytest.raises(ParameterError):
        MigrationScenario(**kw)


def test_sweep_shape_base_point_and_one_variable_at_a_time():
    base = MigrationScenario()
    grids = {"memory_gib": [4.0, 8.0], "rtt_ms": [10.0, 50.0, 100.0]}
    s = migration_sweep(base, grids)
    assert s.height == 2 * 5
    assert s["variable"].to_list() == ["memory_gib"] * 4 + ["rtt_ms"] * 6
    # the base value of each variable reproduces the base scenario
    b = migration_compare(base)
    for var, value in (("memory_gib", 8.0), ("rtt_ms", 50.0)):
        at = s.filter((pl.col("variable") == var) & (pl.col("value") == value))
        assert at["total_time_s"].to_list() == pytest.approx(b["total_time_s"].to_list())
    # more memory, same everything else: strictly longer for both versions
    mem = s.filter(pl.col("variable") == "memory_gib")
    for v in ("v1", "v3"):
        t = mem.filter(pl.col("version") == v)["total_time_s"].to_list()
        assert t[0] < t[1]


def test_streams_sweep_sets_both_and_ratio_sweeps_leave_v1_alone():
    s = migration_sweep(MigrationScenario(), {"streams": [2, 32], "delta_ratio": [1.0, 16.0], "bulk_ratio": [1.0, 8.0]})
    st = s.filter(pl.col("variable") == "streams")
    assert st["streams"].to_list() == [2, 2, 32, 32]
    for var in ("delta_ratio", "bulk_ratio"):
        sub = s.filter(pl.col("variable") == var)
        v1 = sub.filter(pl.col("version") == "v1")["total_time_s"].to_list()
        v3 = sub.filter(pl.col("version") == "v3")["total_time_s"].to_list()
        assert v1[0] == v1[1]  # v1 sends raw whatever v3's ratio
        assert v3[1] < v3[0]  # better compression, faster v3


def test_dirtier_than_the_link_does_not_converge_and_is_marked():
    # 200 ms and 1 % loss: 16 PFTK streams get well under 10 MB/s, far below a 500 MB/s dirty rate
    s = migration_sweep(MigrationScenario(rtt_ms=200.0, loss_pct=1.0), {"dirty_rate_mbps": [0.0, 500.0]})
    v1 = s.filter(pl.col("version") == "v1")
    assert v1["converged"].to_list() == [True, False]
    assert v1["diverging"].to_list() == [False, True]
    assert v1["rounds"].to_list()[1] == MigrationScenario().max_rounds
    assert not v1["within_budget"].to_list()[1]


def test_sweep_rejects_unknown_variables_and_empty_grids():
    with pytest.raises(ParameterError, match="unknown sweep variable"):
        migration_sweep(MigrationScenario(), {"cpu": [1.0]})
    with pytest.raises(ParameterError, match="empty"):
        migration_sweep(MigrationScenario(), {"rtt_ms": []})


def test_default_grids_cover_every_variable_and_the_table_is_side_by_side():
    assert set(sweeps.DEFAULT_GRIDS) == set(sweeps.SWEEP_VARIABLES)
    s = migration_sweep(MigrationScenario())
    t = migration_table(s)
    assert t.height == sum(len(v) for v in sweeps.DEFAULT_GRIDS.values())
    row = t.filter((pl.col("variable") == "rtt_ms") & (pl.col("value") == 100.0)).row(0, named=True)
    raw = s.filter((pl.col("variable") == "rtt_ms") & (pl.col("value") == 100.0))
    assert row["v1_time_s"] == raw.filter(pl.col("version") == "v1")["total_time_s"][0]
    assert row["v1_over_v3"] == pytest.approx(row["v1_time_s"] / row["v3_time_s"])


def test_assessment_ok_by_default_and_warn_when_v3_fails_where_v1_converges():
    s = migration_sweep(MigrationScenario(), {"rtt_ms": [10.0, 100.0], "loss_pct": [0.01, 1.0]})
    a = migration_assessment(s, migration_compare(MigrationScenario()))
    assert (a.level, a.label) == ("OK", "v3 converges wherever v1 does")
    assert a.evidence["non_converging"] == {"v1": 2, "v3": 0}
    assert set(a.evidence["base_total_time_s"]) == {"v1", "v3"}
    # make v3 fail at one point where v1 converges
    bad = s.with_columns(pl.when((pl.col("version") == "v3") & (pl.col("variable") == "rtt_ms") & (pl.col("value") == 10.0))
                         .then(False).otherwise(pl.col("converged")).alias("converged"))
    w = migration_assessment(bad)
    assert w.level == "WARN" and w.evidence["v3_fails_where_v1_converges"] == 1
    assert any("rtt_ms = 10" in r for r in w.reasons)
    with pytest.raises(ParameterError):
        migration_assessment(s.head(0))


# ------------------------------------------------------------------------------------------------
# placement
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet():
    return itp.synthetic_fleet(300, seed=3), itp.synthetic_vms(80, seed=4)


def test_quality_table_is_valid_deterministic_and_matches_place(fleet):
    nodes, vms = fleet
    q = placement_quality(vms, nodes, itp.DEFAULT_REGIONS)
    assert q["run"].to_list() == [run_name(*r) for r in PLACEMENT_RUNS]
    assert int(q["violations"].sum()) == 0
    assert (q["placed"] + q["unplaced"] == len(vms)).all()
    p = itp.place(vms, nodes, itp.DEFAULT_REGIONS, solver="best-fit", scorer="hybrid")
    bf = q.filter(pl.col("run") == "best-fit").row(0, named=True)
    assert (bf["placed"], bf["nodes_used"]) == (p.placed, p.nodes_used)
    assert bf["utilisation"] == pytest.approx(p.utilisation)
    assert q.equals(placement_quality(vms, nodes, itp.DEFAULT_REGIONS))


def test_fixed_packing_term_packs_tighter_than_the_original(fleet):
    nodes, vms = fleet
    q = placement_quality(vms, nodes, itp.DEFAULT_REGIONS,
                          runs=[("greedy", "dqn", "fuller"), ("greedy", "dqn", "original")])
    fixed, orig = q.row(0, named=True), q.row(1, named=True)
    assert fixed["placed"] >= orig["placed"]
    assert fixed["nodes_used"] < orig["nodes_used"]
    assert fixed["utilisation"] > orig["utilisation"]
    a = placement_assessment(q)
    assert (a.level, a.label) == ("OK", "fixed packing uses fewer nodes")


def test_batch_sweep_prefixes_and_rejects_bad_sizes(fleet):
    nodes, vms = fleet
    s = placement_batch_sweep(vms, nodes, sizes=[10, 80], runs=[("first-fit", "hybrid", "fuller")])
    assert s["batch"].to_list() == [10, 80] and s["vms"].to_list() == [10, 80]
    assert s["nodes_used"][0] <= s["nodes_used"][1]
    for bad in ([0], [81], []):
        with pytest.raises(ParameterError):
            placement_batch_sweep(vms, nodes, sizes=bad)


def _tiny(seed):
    rng = np.random.default_rng(seed)
    nodes = itp.Nodes(type=["cloud"] * 4, cpu_total=rng.choice([4.0, 8.0], 4), mem_total=[64e9] * 4)
    vms = [itp.VM(f"v{i}", cpu=float(rng.choice([1.0, 2.0, 4.0])), memory=1e9) for i in range(5)]
    return vms, nodes, None


def test_gap_against_exact_is_never_negative_and_summarised_correctly():
    g = placement_gap([_tiny(s) for s in range(6)])
    assert g.height == 6 * len(GAP_RUNS)
    same = g.filter(pl.col("placed") == pl.col("exact_placed"))
    assert (same["extra_nodes"] >= 0).all()
    assert (g["placed"] <= g["exact_placed"]).all()
    assert g["optimal"].to_list() == ((g["placed"] == g["exact_placed"]) & (g["extra_nodes"] == 0)).to_list()
    s = summarize_gap(g)
    assert s["run"].to_list() == [run_name(*r) for r in GAP_RUNS]
    first = g.filter(pl.col("run") == s["run"][0])
    assert s["optimal_share"][0] == pytest.approx(first["optimal"].mean())
    assert s["instances"][0] == 6
    with pytest.raises(ParameterError):
        placement_gap([])


def test_assessment_warns_when_the_fix_is_not_better_or_a_placement_is_invalid():
    q = pl.DataFrame({"run": ["greedy dqn", "greedy dqn (original packing)"], "vms": [10, 10], "placed": [10, 10],
                      "nodes_used": [6, 6], "violations": [0, 0], "utilisation": [0.5, 0.5]})
    assert placement_assessment(q).level == "WARN"
    q2 = q.with_columns(nodes_used=pl.Series([4, 6]), violations=pl.Series([1, 0]))
    a = placement_assessment(q2)
    assert (a.level, a.label) == ("WARN", "invalid placement")
    sweep = pl.DataFrame({"run": ["greedy dqn", "greedy dqn (original packing)"] * 2, "batch": [5, 5, 10, 10],
                          "nodes_used": [3, 3, 4, 6]})
    a = placement_assessment(q.with_columns(nodes_used=pl.Series([4, 6])), sweep)
    assert a.level == "OK" and a.evidence["sweep_sizes_not_better"] == [5]
    with pytest.raises(ParameterError, match="needs the runs"):
        placement_assessment(q.head(1))


# ------------------------------------------------------------------------------------------------
# consensus
# ------------------------------------------------------------------------------------------------


def test_fault_tolerance_and_its_limits():
    assert [sweeps.fault_tolerance("raft", n) for n in (3, 4, 5, 9)] == [1, 1, 2, 4]
    assert [sweeps.fault_tolerance("pbft", n) for n in (4, 6, 7, 13)] == [1, 1, 2, 4]
    for proto, n in (("raft", 2), ("pbft", 3), ("paxos", 5), ("raft", True)):
        with pytest.raises(ParameterError):
            sweeps.fault_tolerance(proto, n)


def test_run_matches_the_simulator_and_is_deterministic():
    from dwcpkit.protocol import acp

    row = sweeps.consensus_run("raft", 5, "none", decisions=12, clients=2, seed=3)
    r = acp.simulate_raft(5, decisions=12, seed=3, latency=acp.LatencyModel.preset("wan"),
                          config=acp.RaftConfig.preset("wan"), clients=2, bootstrap_leader=0)
    assert row["p50_ms"] == pytest.approx(float(np.median(r.latencies_ms())))
    assert row["messages_per_decision"] == pytest.approx(r.messages / 12)
    assert (row["decisions"], row["completed"], row["safe"], row["faulty"], row["leader_changes"]) == (12, True, True, 0, 0)
    assert math.isnan(row["fault_at_ms"])
    again = sweeps.consensus_run("raft", 5, "none", decisions=12, clients=2, seed=3)
    assert {k: v for k, v in again.items() if k != "fault_at_ms"} == {k: v for k, v in row.items() if k != "fault_at_ms"}


def test_fault_scenarios_do_what_they_say():
    at = 1000.0
    crash = sweeps.consensus_run("raft", 5, "crash", decisions=20, fault_at_ms=at, seed=1)
    assert crash["faulty"] == 2 and crash["completed"] and crash["safe"]
    assert crash["leader_changes"] >= 1  # the leader (node 0) crashed: an election
    part = sweeps.consensus_run("pbft", 4, "partition", decisions=20, fault_at_ms=at, partition_ms=3000.0, seed=1)
    assert part["completed"] and part["safe"] and part["leader_changes"] >= 1  # primary cut off: a view change
    byz = sweeps.consensus_run("pbft", 7, "byzantine", decisions=10, seed=1, byzantine_behaviour="silent")
    assert byz["faulty"] == 2 and byz["completed"] and byz["safe"]
    beyond = sweeps.consensus_run("raft", 3, "beyond", decisions=30, fault_at_ms=at, seed=1)
    assert beyond["faulty"] == 2 and not beyond["expected_live"]
    assert not beyond["completed"] and beyond["safe"]  # no majority: no progress, but no unsafe commit


@pytest.mark.parametrize("kw", [{"protocol": "raft", "fault": "byzantine"}, {"fault": "meteor"}, {"network": "moon"},
                                {"byzantine_behaviour": "lie"}, {"decisions": 0}, {"fault_at_ms": -1.0},
                                {"partition_ms": 0.0}])
def test_run_rejects_bad_arguments(kw):
    args = {"protocol": "pbft", "n": 4, "fault": "partition"} | kw
    with pytest.raises(ParameterError):
        sweeps.consensus_run(args.pop("protocol"), args.pop("n"), args.pop("fault"), **args)


@pytest.fixture(scope="module")
def consensus_runs():
    return sweeps.consensus_sweep([3], [4], decisions=10, clients=2, seeds=[0, 1])


def test_sweep_schedules_faults_from_the_fault_free_run(consensus_runs):
    t = consensus_runs
    assert t.height == 2 * (4 + 5)  # seeds x (raft: no byzantine; pbft: all five)
    assert t.filter(pl.col("protocol") == "raft")["fault"].unique().sort().to_list() == [
        "beyond", "crash", "none", "partition"]
    for (proto, seed), g in t.group_by(["protocol", "seed"]):
        base = g.filter(pl.col("fault") == "none").row(0, named=True)
        other = g.filter(pl.col("fault") != "none")["fault_at_ms"].to_list()
        assert other == pytest.approx([round(0.3 * base["end_ms"], 3)] * len(other))
    assert t["protocol"].to_list()[:8] == ["raft"] * 8
    assert t["fault"].to_list()[:2] == ["none", "none"]
    with pytest.raises(ParameterError):
        sweeps.consensus_sweep([3], [4], ["none", "meteor"])
    with pytest.raises(ParameterError):
        sweeps.consensus_sweep([3], [4], fault_at=1.0)


def test_summary_and_assessment_levels(consensus_runs):
    s = sweeps.consensus_summary(consensus_runs)
    assert s.height == 9 and (s["runs"] == 2).all()
    free = s.filter((pl.col("protocol") == "pbft") & (pl.col("fault") == "none")).row(0, named=True)
    assert free["safe_runs"] == 2 and free["completed_runs"] == 2 and free["decisions"] == 1.0
    a = sweeps.consensus_assessment(consensus_runs)
    assert (a.level, a.label) == ("OK", "safety held in every run")
    assert a.evidence["beyond_bound_stalled"] == 4 and a.evidence["unsafe_runs"] == 0  # raft + pbft, 2 seeds
    stalled = consensus_runs.with_columns(pl.when(pl.col("fault") == "crash").then(False)
                                          .otherwise(pl.col("completed")).alias("completed"))
    assert sweeps.consensus_assessment(stalled).level == "WARN"
    unsafe = consensus_runs.with_columns(pl.when(pl.col("fault") == "byzantine").then(False)
                                         .otherwise(pl.col("safe")).alias("safe"))
    u = sweeps.consensus_assessment(unsafe)
    assert (u.level, u.label) == ("ACT", "safety violated")
    assert any(r.startswith("SAFETY VIOLATED: pbft n=4 byzantine") for r in u.reasons)
    with pytest.raises(ParameterError):
        sweeps.consensus_assessment(consensus_runs.head(0))


def test_doctests():
    assert doctest.testmod(sweeps).failed == 0
