"""Tests for dwcpkit.protocol.acp (Raft/PBFT simulators, fast path, detector, reputation, adaptive rule)."""

from __future__ import annotations

import hmac
import random
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwcpkit.errors import ParameterError, ProtocolError
from dwcpkit.protocol import acp
from dwcpkit.protocol.acp import (
    ACPRouter,
    ByzantineDetector,
    Crash,
    Delay,
    DetectorConfig,
    Forge,
    Keyring,
    LatencyModel,
    Loss,
    Partition,
    PbftConfig,
    RaftConfig,
    ReputationSystem,
    fast_pbft,
    fast_raft,
    fault_end,
    pbft_quorum,
    quorum_classical,
    quorum_sqrt,
    quorums_intersect,
    random_schedule,
    security_mode,
    select_protocol,
    simulate_pbft,
    simulate_raft,
    threat_level,
)
from dwcpkit.protocol.acp_net import SimNet, _canon, _delay_nb, _delay_py, _link_key

DC = LatencyModel.preset("datacenter")
WAN = LatencyModel.preset("wan")
RAFT_LIVENESS_MS = 5_000.0   # commits resume within this much simulated time after the last fault heals
PBFT_LIVENESS_MS = 15_000.0


# ----------------------------------------------------------------------------- network, MACs


def test_delay_kernel_matches_python_reference_bit_for_bit():
    rng = random.Random(5)
    for _ in range(300):
        seed, src, dst, k = rng.randrange(2**40), rng.randrange(20), rng.randrange(20), rng.randrange(10**6)
        key = _link_key(seed, src, dst)
        a = _delay_py(key, k, 50.0, 0.3, 0.1)
        b = _delay_nb(np.uint64(key), k, 50.0, 0.3, 0.1)
        assert a == b


def test_latency_is_lognormal_with_the_requested_median():
    net = SimNet(2, seed=3, latency=LatencyModel(20.0, 0.5))
    d = np.array([net._delay(0, 1, k) for k in range(20_000)])
    assert abs(np.median(d) / 20.0 - 1) < 0.03
    assert abs(np.std(np.log(d)) - 0.5) < 0.02


def test_keyring_is_hmac_sha256_and_rejects_forgery_and_tampering():
    kr = Keyring(4, seed=9)
    m = kr.sign(2, "COMMIT", (0, 7, b"digest"))
    assert m.mac == hmac.digest(kr._keys[2], _canon(("COMMIT", 2, (0, 7, b"digest"))), "sha256")
    assert kr.verify(m)
    assert not kr.verify(m._replace(body=(0, 7, b"other")))
    assert not kr.verify(kr.forge(3, 2, "COMMIT", (0, 7, b"digest")))
    assert not kr.verify(("COMMIT", 2, (0,), b"x")) and not kr.verify(m._replace(sender=99))


def test_network_links_are_fifo_and_runs_are_deterministic():
    def run(seed):
        got = []

        class Sink:
            crashed = False

            def on_message(self, src, msg):
                got.append((net.now, msg))

            def on_timer(self, tag):
                pass

        net = SimNet(2, seed=seed, latency=LatencyModel(10.0, 1.0))
        net.attach(0, Sink())
        net.attach(1, Sink())
        for i in range(500):
            net.now = i * 0.5
            net.send(0, 1, i)
        net.now = 0.0
        net.run()
        return got

    a = run(4)
    assert [m for _, m in a] == list(range(500))          # FIFO despite sigma = 1
    assert a == run(4) and a != run(5)


def test_partition_and_crash_drop_messages():
    got = []

    class Sink:
        crashed = False

        def on_message(self, src, msg):
            got.append(msg)

        def on_timer(self, tag):
            pass

    net = SimNet(3, seed=1, latency=LatencyModel(1.0, 0.0),
                 faults=[Partition.of({0}, {1}, at_ms=0.0, until_ms=10.0), Crash(2, 0.0, 5.0)])
    for i in range(3):
        net.attach(i, Sink())
    net.send(0, 1, "cut")       # partitioned
    net.send(0, 2, "down")      # 2 is crashed when it arrives
    net.now = 20.0
    net.send(0, 1, "healed")
    net.send(0, 2, "back")
    net.now = 0.0
    net.run()
    assert got == ["healed", "back"] and net.dropped == 2


# ----------------------------------------------------------------------------- Raft


def test_raft_elects_a_leader_and_commits_in_order():
    r = simulate_raft(5, decisions=50, seed=2, latency=DC)
    assert len(r.decisions) == 50 and r.safety_violations() == []
    assert [d.rid for d in r.decisions] == list(range(1, 51))
    assert r.final_leader is not None and r.elections >= 1
    # every node applied the same prefix, the leader's no-op first
    assert all(h[0][2] is None for h in r.histories if h)
    assert len({len(h) for h in r.histories}) <= 2


def test_raft_survives_leader_crash_and_minority_partition():
    c = acp.RaftCluster(5, seed=3, latency=DC, requests=10**6,
                        faults=[Partition.of({0, 1}, {2, 3, 4}, at_ms=2_500.0, until_ms=4_000.0)])
    c.start_clients()
    c.run(500.0)
    old = c.leader()
    before = len(c.book.decisions)
    c.net.crash_node(old)
    c.run(1_500.0)
    new = c.leader()
    assert new is not None and new != old and len(c.book.decisions) > before
    c.net.recover_node(old)
    c.run(6_000.0)
    r = c.result()
    assert r.safety_violations() == [] and r.elections >= 2 and len(r.leaders_by_term) >= 2
    assert r.first_decision_after(4_000.0) is not None
    assert c.nodes[old].applied == c.nodes[new].applied[: len(c.nodes[old].applied)]


def test_raft_majority_crash_stalls_then_recovers():
    r = simulate_raft(5, decisions=10**6, seed=4, latency=DC, faults=[Crash(i, 50.0, 1_000.0) for i in (0, 1, 2)],
                      until_ms=1_000.0 + RAFT_LIVENESS_MS, stop_after_ms=1_000.0)
    during = [d for d in r.decisions if 400.0 < d.end_ms < 1_000.0]
    assert during == []                                   # no quorum, no commit
    assert r.first_decision_after(1_000.0) is not None   # and commits resume
    assert r.safety_violations() == []


def test_raft_rejects_forged_messages_and_breaks_without_auth():
    forge = [Forge(100.0, 400.0, 50.0)]
    ok = simulate_raft(5, decisions=50, seed=1, latency=DC, faults=forge, until_ms=20_000.0)
    assert ok.safety_violations() == [] and ok.rejected == ok.forged_sent > 0
    bad = simulate_raft(5, decisions=50, seed=1, latency=DC, faults=forge, until_ms=20_000.0, auth=False)
    assert bad.safety_violations()                       # forged entries diverge the logs


def _raft_case(seed: int):
    rng = random.Random(seed)
    n = rng.choice([3, 5, 7])
    lat = LatencyModel(rng.choice([2.0, 5.0, 20.0]), 0.5)
    faults, _ = random_schedule("raft", n, seed, horizon_ms=1500.0)
    heal = max(fault_end(f) for f in faults)
    r = simulate_raft(n, decisions=10**9, seed=seed, latency=lat, faults=faults, clients=rng.randint(1, 3),
                      until_ms=heal + RAFT_LIVENESS_MS, stop_after_ms=heal)
    return r, heal


@pytest.mark.parametrize("block", range(4))
def test_raft_safety_and_liveness_over_random_schedules(block):
    """Property: with crashes of a minority (plus partitions, delays, loss), no two nodes
    apply different entries at an index, no term has two leaders, and after the last
    fault heals a decision is confirmed within RAFT_LIVENESS_MS."""
    for seed in range(block * 15, block * 15 + 15):
        r, heal = _raft_case(seed)
        assert r.safety_violations() == [], (seed, r.safety_violations()[:3])
        assert r.first_decision_after(heal) is not None, (seed, heal)


# ----------------------------------------------------------------------------- PBFT


def test_pbft_quorum_is_safe_for_every_n():
    for n in range(4, 60):
        f = (n - 1) // 3
        q = pbft_quorum(n)
        assert quorums_intersect(q, n, f) and q <= n - f
        if n == 3 * f + 1:
            assert q == 2 * f + 1


def test_pbft_normal_case_checkpoints_and_in_order_execution():
    r = simulate_pbft(4, decisions=250, seed=1, latency=DC)
    assert r.safety_violations() == [] and r.view_changes == 0
    assert [d.slot for d in r.decisions] == list(range(1, 251))
    assert all(s >= 200 for s in r.stable_checkpoints.values())      # checkpoints at 100, 200 stable
    assert all(sorted(h) == list(range(1, len(h) + 1)) for h in r.histories.values())


@pytest.mark.parametrize("behaviour,node", [("equivocate", 0), ("equivocate", 2), ("silent", 0),
                                            ("silent", 3), ("forge", 1)])
def test_pbft_tolerates_f_byzantine(behaviour, node):
    r = simulate_pbft(4, decisions=40, seed=7, latency=DC, byzantine={node: behaviour})
    assert len(r.decisions) == 40 and r.safety_violations() == []
    if node == 0 and behaviour != "forge":
        assert r.view_changes > 0 and all(v >= 1 for v in r.final_views.values())
    if behaviour == "forge":
        assert r.rejected > 0


def test_pbft_with_the_originals_2f_plus_1_quorum_is_unsafe_at_n5():
    """The original used 2f / 2f + 1 for any n (warning only when n != 3f + 1). At n = 5 two
    commit quorums of 3 meet only in the equivocating primary."""
    bad = simulate_pbft(5, decisions=20, seed=1, latency=DC, byzantine={0: "equivocate"}, config=PbftConfig(quorum=3))
    assert bad.safety_violations()
    good = simulate_pbft(5, decisions=20, seed=1, latency=DC, byzantine={0: "equivocate"})
    assert good.safety_violations() == [] and len(good.decisions) == 20


def test_pbft_rejects_forged_certificates_and_breaks_without_auth():
    forge = [Forge(0.0, 400.0, 20.0)]
    ok = simulate_pbft(4, decisions=30, seed=1, latency=DC, faults=forge, until_ms=20_000.0)
    assert ok.safety_violations() == [] and len(ok.decisions) == 30 and ok.rejected >= ok.forged_sent > 0
    bad = simulate_pbft(4, decisions=30, seed=1, latency=DC, faults=forge, until_ms=3_000.0, auth=False)
    assert bad.safety_violations()


def test_pbft_view_change_after_primary_crash_and_state_transfer_after_partition():
    r = simulate_pbft(4, decisions=400, seed=2, latency=DC, until_ms=60_000.0,
                      faults=[Crash(0, 50.0, None), Partition.of({3}, {0, 1, 2}, at_ms=10.0, until_ms=400.0)])
    assert len(r.decisions) == 400 and r.safety_violations() == []
    assert r.view_changes > 0 and r.final_views[3] >= 1
    assert r.histories[3] and max(r.histories[3]) >= 300      # the partitioned replica caught up


def _pbft_case(seed: int):
    rng = random.Random(seed)
    n = rng.choice([4, 5, 7])
    lat = LatencyModel(rng.choice([5.0, 10.0, 20.0]), 0.5)
    faults, byz = random_schedule("pbft", n, seed, horizon_ms=1500.0)
    heal = max(fault_end(f) for f in faults)
    r = simulate_pbft(n, decisions=10**9, seed=seed, latency=lat, faults=faults, byzantine=byz,
                      clients=rng.randint(1, 2), until_ms=heal + PBFT_LIVENESS_MS, stop_after_ms=heal)
    return r, heal


@pytest.mark.parametrize("block", range(3))
def test_pbft_safety_and_liveness_over_random_schedules(block):
    """Property: with up to f Byzantine replicas (equivocating, silent or forging) plus a
    crashing replica, partitions, delays and loss, no two honest replicas execute different
    requests at a sequence number, no request is confirmed at two sequences, and after the
    faults heal a decision is confirmed within PBFT_LIVENESS_MS."""
    for seed in range(block * 10, block * 10 + 10):
        r, heal = _pbft_case(seed)
        assert r.safety_violations() == [], (seed, r.byzantine, r.safety_violations()[:3])
        assert r.first_decision_after(heal) is not None, (seed, heal, r.byzantine)


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.sampled_from([4, 7]),
    primary_faulty=st.booleans(),
    behaviour=st.sampled_from(["equivocate", "silent", "forge"]),
    cut=st.integers(1, 3),
    part=st.tuples(st.floats(0, 500), st.floats(10, 600)),
    crash=st.tuples(st.integers(0, 6), st.floats(0, 500), st.floats(10, 600)),
    seed=st.integers(0, 2**16),
)
def test_pbft_safety_hypothesis(n, primary_faulty, behaviour, cut, part, crash, seed):
    f = (n - 1) // 3
    byz = {0 if primary_faulty else n - 1: behaviour}
    if f == 2:
        byz[1] = "equivocate"
    node, at, dur = crash
    faults = [Partition.of(range(cut), range(cut, n), at_ms=part[0], until_ms=part[0] + part[1]),
              Crash(node % n, at, at + dur)]
    r = simulate_pbft(n, decisions=15, seed=seed, latency=LatencyModel(5.0, 0.5), faults=faults, byzantine=byz,
                      until_ms=20_000.0)
    assert r.safety_violations() == []
    assert len(r.decisions) == 15        # every fault heals by 1.1 s, so all 15 commit


# ----------------------------------------------------------------------------- fast path


def _same(ml, fp):
    k = min(len(ml.decisions), fp.decisions)
    assert k > 0
    assert np.array_equal(np.array([d.slot for d in ml.decisions[:k]]), fp.slots[:k])
    assert np.array_equal(np.array([d.end_ms for d in ml.decisions[:k]]), fp.end_ms[:k])
    assert np.array_equal(np.array([d.start_ms for d in ml.decisions[:k]]), fp.start_ms[:k])


@pytest.mark.parametrize("preset,n,crashed", [("datacenter", 5, ()), ("wan", 5, ()), ("wan", 5, (3, 4)),
                                              ("datacenter", 3, (2,))])
def test_fast_raft_reproduces_the_message_level_simulator(preset, n, crashed):
    lat, cfg = LatencyModel.preset(preset), RaftConfig.preset(preset)
    ml = simulate_raft(n, decisions=400, seed=11, latency=lat, config=cfg, bootstrap_leader=0,
                       faults=[Crash(c, 0.0) for c in crashed], until_ms=float("inf"))
    fp = fast_raft(n, decisions=400, seed=11, latency=lat, config=cfg, crashed=crashed)
    _same(ml, fp)
    assert fp.messages == ml.messages


@pytest.mark.parametrize("preset,n,crashed", [("datacenter", 4, ()), ("wan", 4, (2,)), ("wan", 7, (5, 6))])
def test_fast_pbft_reproduces_the_message_level_simulator(preset, n, crashed):
    lat, cfg = LatencyModel.preset(preset), PbftConfig.preset(preset)
    decisions = 230 if preset == "datacenter" else 60          # crosses two checkpoints in the first case
    ml = simulate_pbft(n, decisions=decisions, seed=11, latency=lat, config=cfg,
                       faults=[Crash(c, 0.0) for c in crashed], until_ms=float("inf"))
    fp = fast_pbft(n, decisions=decisions, seed=11, latency=lat, config=cfg, crashed=crashed)
    _same(ml, fp)
    assert fp.messages == ml.messages


def test_fast_path_refuses_what_it_does_not_model():
    with pytest.raises(ParameterError, match="leader"):
        fast_raft(5, decisions=10, crashed=[0])
    with pytest.raises(ParameterError, match="exceed"):
        fast_raft(5, decisions=10, crashed=[1, 2, 3])
    with pytest.raises(ParameterError, match="exceed"):
        fast_pbft(4, decisions=10, crashed=[1, 2])


# ----------------------------------------------------------------------------- detector & reputation


def test_detector_scoring_follows_the_original_constants():
    d = ByzantineDetector()
    assert d.record_violation("a", "equivocation", now=0.0) == 40.0
    assert d.score("a", now=150.0) == 20.0                                # linear decay over 5 min
    assert d.score("a", now=300.0) == 0.0
    assert d.record_violation("b", "malformed_message", now=0.0) == 8.0
    assert d.record_violation("b", "timing_anomaly", now=0.0) == 27.0    # (8 + 10) x 1.5
    for _ in range(5):
        d.record_violation("c", "checkpoint_manipulation", now=0.0)
    assert d.score("c", now=0.0) == 100.0 and d.is_byzantine("c")
    with pytest.raises(ParameterError):
        d.record_violation("a", "rudeness", now=0.0)


def test_detector_equivocation_conflicting_vote_and_tracker_expiry():
    d = ByzantineDetector()
    d.record_vote(1, 0, 5, b"x", "prepare", now=0.0)
    d.record_vote(1, 0, 5, b"x", "prepare", now=0.1)            # duplicate: fine
    assert d.score(1, now=0.1) == 0.0
    d.record_vote(1, 0, 5, b"y", "prepare", now=0.2)            # equivocation
    d.record_vote(2, 0, 6, b"p", "prepare", now=0.0)
    d.record_vote(2, 0, 6, b"q", "commit", now=0.0)             # commit != own prepare
    kinds = {v.kind for v in d.violations(1)} | {v.kind for v in d.violations(2)}
    assert kinds == {"equivocation", "conflicting_vote"}
    assert d.tracked_votes > 0
    d.tick(now=1_000.0)
    assert d.tracked_votes == 0                                  # the original's trackers leaked


def test_detector_timing_uses_a_standard_deviation():
    d = ByzantineDetector()
    flags = [d.record_response_time("n", 0.100 + 0.002 * (i % 5), now=float(i)) for i in range(20)]
    assert not any(flags)
    assert d.record_response_time("n", 0.125, now=21.0)         # > mean + 3 sigma (sigma ~ 1.4 ms)
    assert not d.record_response_time("m", 9.0, now=0.0)         # too few samples yet


def test_detector_silent_and_flood():
    d = ByzantineDetector(DetectorConfig(flood_per_s=5))
    d.record_activity("a", now=0.0)
    assert d.check_silent(["a", "b"], now=5.0) == ["b"]
    assert d.check_silent(["a", "b"], now=20.0) == ["a"]         # b already flagged for this silence
    assert not any(d.record_activity("f", now=1.0 + i * 0.01) for i in range(5))
    assert d.record_activity("f", now=1.06)


def test_reputation_constants_quarantine_and_release():
    rs = ReputationSystem()
    assert rs.record_consensus("a", True, now=0.0) == 52.0
    assert rs.record_consensus("a", False, now=0.0) == 47.0
    assert rs.record_message("a", True, now=0.0) == 47.5 and rs.record_message("a", False, now=0.0) == 46.5
    assert rs.level("a", now=0.0) == "neutral"
    # the original deadlocked right here (checkQuarantine -> QuarantineNode re-locking rs.mu)
    assert rs.record_byzantine_behavior("b", 40.0, now=0.0) == 0.0
    assert rs.is_quarantined("b", now=0.0) and rs.level("b", now=0.0) == "quarantined"
    rs.tick(now=1_900.0)
    assert rs.is_quarantined("b", now=1_900.0)                   # 30 min over but score 0 < 50
    for _ in range(25):
        rs.record_consensus("b", True, now=1_900.0)              # back to 50
    assert not rs.release("b", now=1_000.0)                      # too early
    assert rs.release("b", now=1_900.0) and not rs.is_quarantined("b", now=1_900.0)


def test_reputation_bans_after_three_quarantines_and_decays_linearly():
    rs = ReputationSystem()
    t = 0.0
    for k in range(3):
        rs.record_byzantine_behavior("x", 40.0, now=t)
        assert rs.is_quarantined("x", now=t)
        for _ in range(25):
            rs.record_consensus("x", True, now=t + 1800)
        assert rs.release("x", now=t + 1800)
        t += 4000
    rs.record_byzantine_behavior("x", 40.0, now=t)
    rs.tick(now=t + 10**6)
    assert rs.is_quarantined("x", now=t + 10**6)                 # banned for good
    # decay: 0.5 point per idle hour after the first idle hour, linear, floor 20
    rs.record_consensus("y", True, now=0.0)                      # 52
    for h in range(1, 7):
        rs.tick(now=3600.0 * h + 1)
    assert rs.score("y") == pytest.approx(52 - 0.5 * 6, abs=0.01)
    assert rs.record_byzantine_behavior("z", 8.0, now=0.0) == 26.0
    for h in range(1, 20):
        rs.tick(now=3600.0 * h + 1)
    assert rs.score("z") == 20.0                                  # floor
    rs.tick(now=3600.0 * 30)
    assert "z" not in rs.nodes() and "x" in rs.nodes()            # idle 24 h: forgotten unless quarantined


def test_detector_and_reputation_do_not_deadlock_under_threads():
    rs = ReputationSystem()
    det = ByzantineDetector(reputation=rs)
    errors = []

    def hammer(k):
        try:
            for i in range(300):
                node = (k + i) % 7
                det.record_vote(node, 0, i, bytes([i % 3]), "prepare", now=float(i))
                det.record_violation(node, "equivocation", now=float(i))
                rs.record_consensus(node, i % 2 == 0, now=float(i))
                rs.tick(now=float(i))
                det.score(node, now=float(i))
                rs.network_trust(now=float(i))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=hammer, args=(k,), daemon=True) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert errors == [] and det.byzantine_nodes()


def test_pbft_feeds_the_detector_which_confirms_an_equivocating_primary():
    rs = ReputationSystem()
    det = ByzantineDetector(reputation=rs)
    r = simulate_pbft(4, decisions=20, seed=3, latency=DC, byzantine={0: "equivocate"}, detector=det)
    assert r.safety_violations() == []
    assert det.is_byzantine(0) and rs.is_quarantined(0, now=1.0)
    assert all(not det.is_byzantine(i) for i in (1, 2, 3))
    det2 = ByzantineDetector()
    simulate_pbft(4, decisions=20, seed=3, latency=DC, byzantine={2: "forge"}, detector=det2)
    assert {v.kind for v in det2.violations(2)} == {"invalid_signature"}


# ----------------------------------------------------------------------------- adaptive rule, quorums, router


def test_select_protocol_rules():
    assert select_protocol("datacenter").protocol == "raft"
    assert select_protocol("internet", trust=1.0).protocol == "pbft"
    hy = select_protocol("hybrid", trust=0.95)
    assert (hy.protocol, hy.fallback) == ("raft", "pbft")
    assert select_protocol("hybrid", trust=0.8).protocol == "pbft"
    assert select_protocol("datacenter", byzantine_ratio=0.05).protocol == "pbft"   # never Raft with Byzantine
    crit = select_protocol("internet", byzantine_ratio=0.4)
    assert not crit.safe and crit.threat == "critical"
    with pytest.raises(ParameterError, match="mode"):
        select_protocol("lan")
    with pytest.raises(ParameterError, match="trust"):
        select_protocol("hybrid", trust=1.5)


def test_security_mode_hysteresis_and_threat_bands():
    assert security_mode(0.85) == "datacenter" and security_mode(0.35) == "internet"
    assert security_mode(0.75, "datacenter") == "datacenter" and security_mode(0.6, "datacenter") == "hybrid"
    assert security_mode(0.45, "internet") == "internet" and security_mode(0.55, "internet") == "hybrid"
    assert security_mode(0.1, "hybrid", since_change_s=10.0) == "hybrid"
    assert [threat_level(x) for x in (0.1, 0.2, 0.33, 0.34)] == ["low", "medium", "high", "critical"]


def test_probft_sqrt_quorum_breaks_intersection():
    assert quorum_sqrt(100) == 10 and not quorums_intersect(10, 100, 33)
    assert quorum_classical(100, 33) == 67 and quorums_intersect(67, 100, 33)
    assert acp.quorum_probabilistic(100, 33, 1.0) == 100
    assert acp.v1_decision_tree(2, 10.0) == "raft"


def test_router_measures_latency_and_fails_over():
    r = ACPRouter(seed=2, warmup_ms=1500.0)
    a = r.propose({"vm": 1}, "datacenter")
    assert a.committed and a.protocol == "raft" and 0 < a.latency_ms < ACPRouter.RAFT_TIMEOUT_MS
    b = r.propose("inet", "internet")
    assert b.committed and b.protocol == "pbft" and b.latency_ms > 100       # 50 ms WAN hops
    assert r.mean_latency_ms == pytest.approx((9 * a.latency_ms + b.latency_ms) / 10)
    for i in range(3):
        r.raft.net.crash_node(i)
    c = r.propose("h", "hybrid", trust=0.9)
    assert c.committed and c.protocol == "pbft" and c.failover and r.failovers == 1
    d = r.propose("dc", "datacenter")
    assert not d.committed and d.protocol is None                            # no PBFT fallback in datacenter mode
    assert r.healthy("internet") and r.healthy("hybrid")


def test_bad_parameters_are_reported():
    with pytest.raises(ParameterError, match="n >= 4"):
        simulate_pbft(3)
    with pytest.raises(ParameterError, match="behaviour"):
        simulate_pbft(4, byzantine={1: "grumpy"})
    with pytest.raises(ParameterError, match="heartbeat"):
        simulate_raft(3, config=RaftConfig((100.0, 200.0), 150.0))
    with pytest.raises(ParameterError, match="Loss"):
        simulate_raft(3, faults=[Loss(1.5, 0.0, 1.0)])
    with pytest.raises(ParameterError, match="heals before"):
        simulate_raft(3, faults=[Delay(frozenset({1}), 10.0, 5.0)])
    with pytest.raises(ParameterError, match="preset"):
        LatencyModel.preset("moon")
    r = simulate_raft(3, decisions=3, seed=1, latency=DC)
    r.histories[1] = [(1, 9, "tampered", -1, 0)] + r.histories[1][1:]
    with pytest.raises(ProtocolError, match="safety"):
        r.check_safety()


def test_bench_table_shape():
    from dwcpkit.bench import acp as bench

    rows = bench.run(quick=True)
    assert len(rows) == 2 * len(bench.CASES)
    fast = [r for r in rows if r["engine"].startswith("fast")]
    assert all(r["identical"] for r in fast)
    assert {(r["protocol"], r["n"]) for r in fast if r["target"]} == {("raft", 5), ("pbft", 4)}
    text = bench.format_table(rows)
    assert "dec/s CPU" in text and "pbft n=16 wan" in text


@pytest.mark.parametrize("module", ["acp", "acp_net", "acp_raft", "acp_pbft", "acp_pbft_sim", "acp_fast", "acp_trust"])
def test_docstring_examples_hold(module):
    import doctest
    import importlib

    res = doctest.testmod(importlib.import_module(f"dwcpkit.protocol.{module}"))
    assert res.attempted > 0 and res.failed == 0
