"""Tests for dwcpkit.protocol.ass: vector clocks, causal delivery, CRDT laws, anti-entropy, gossip sim."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dwcpkit.errors import DecodeError, ParameterError, ProtocolError
from dwcpkit.protocol import ass
from dwcpkit.protocol.ass import (
    CausalBuffer,
    Event,
    GCounter,
    LWWMap,
    LWWRegister,
    Order,
    ORSet,
    Partition,
    PNCounter,
    Replica,
    SimConfig,
    VectorClock,
    crdt_from_json,
    deliverable,
    simulate,
    sync_pair,
)

SETTINGS = settings(max_examples=60, deadline=None)
NODES = ("a", "b", "c")

# --------------------------------------------------------------------------------------------
# vector clocks
# --------------------------------------------------------------------------------------------

clocks = st.dictionaries(st.sampled_from(NODES), st.integers(0, 4), max_size=3).map(VectorClock)


@SETTINGS
@given(clocks, clocks, clocks)
def test_vector_clock_merge_is_a_join(a, b, c):
    assert a.merge(b) == b.merge(a)
    assert a.merge(b).merge(c) == a.merge(b.merge(c))
    assert a.merge(a) == a
    assert a <= a.merge(b) and b <= a.merge(b)


@SETTINGS
@given(clocks, clocks)
def test_vector_clock_compare_is_consistent(a, b):
    o, r = a.compare(b), b.compare(a)
    mirror = {Order.BEFORE: Order.AFTER, Order.AFTER: Order.BEFORE, Order.EQUAL: Order.EQUAL,
              Order.CONCURRENT: Order.CONCURRENT}
    assert r is mirror[o]
    assert (o is Order.EQUAL) == (a == b)
    if o is Order.BEFORE:
        assert a.merge(b) == b


def test_vector_clock_basics_and_errors():
    a = VectorClock().increment("x").increment("x")
    assert a.get("x") == 2 and a.get("y") == 0
    assert VectorClock({"x": 0}) == VectorClock()
    assert VectorClock.from_dict(a.to_dict()) == a
    with pytest.raises(DecodeError):
        VectorClock.from_dict({"x": -1})
    with pytest.raises(ParameterError):
        VectorClock().increment("")


# --------------------------------------------------------------------------------------------
# causal delivery
# --------------------------------------------------------------------------------------------


def test_deliverable_rule_exactly():
    local = VectorClock({"a": 1, "b": 2})
    assert deliverable(Event("a:2", "a", VectorClock({"a": 2, "b": 2})), local, set())
    assert not deliverable(Event("a:3", "a", VectorClock({"a": 3})), local, set())  # gap at origin
    assert not deliverable(Event("a:2", "a", VectorClock({"a": 2, "b": 3})), local, set())  # unseen b:3
    e = Event("a:2", "a", VectorClock({"a": 2}), deps=frozenset({"c:1"}))
    assert not deliverable(e, local, set()) and deliverable(e, local, {"c:1"})


def test_causal_buffer_buffers_and_drops_duplicates():
    a, b = CausalBuffer("a"), CausalBuffer("b")
    e1 = a.local_event(1)
    b.receive(e1)
    e2 = b.local_event(2)  # depends on e1 through b's clock
    c = CausalBuffer("c")
    assert c.receive(e2) == [] and len(c.pending) == 1
    assert [e.payload for e in c.receive(e1)] == [1, 2]
    assert c.receive(e1) == [] and c.receive(e2) == [] and c.pending == ()


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans(), st.integers(0, 50)), min_size=1, max_size=30),
       st.randoms(use_true_random=False))
def test_causal_delivery_respects_happens_before(actions, rnd):
    nodes = [CausalBuffer(n) for n in NODES]
    inbox: list[list[Event]] = [[], [], []]
    events: list[Event] = []
    for i, create, pick in actions:
        if create or not inbox[i]:
            ev = nodes[i].local_event(len(events))
            events.append(ev)
            for j in range(3):
                if j != i:
                    inbox[j].append(ev)
        else:
            nodes[i].receive(inbox[i].pop(pick % len(inbox[i])))
    order = list(events)
    rnd.shuffle(order)
    observer = CausalBuffer("z")
    delivered: list[Event] = []
    for ev in order:
        delivered += observer.receive(ev)
    assert sorted(e.id for e in delivered) == sorted(e.id for e in events)  # everything, once
    pos = {e.id: k for k, e in enumerate(delivered)}
    for e1 in events:
        for e2 in events:
            if e1.clock < e2.clock:
                assert pos[e1.id] < pos[e2.id]


# --------------------------------------------------------------------------------------------
# CRDT laws (hypothesis): states come from random histories of three replicas with merges
# --------------------------------------------------------------------------------------------

ops = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 5), st.integers(0, 2)),
               max_size=25)


def _apply(kind, x, node: str, code: int, arg: int, aux: int) -> None:
    # code 2 writes with an explicit Lamport clock (aux + 1), so two histories can write
    # different values under the same (clock, node): the merge must still be a join
    if kind is GCounter:
        x.increment(node, arg)
    elif kind is PNCounter:
        (x.decrement if code == 1 else x.increment)(node, arg)
    elif kind is LWWRegister:
        x.set(arg, node, lamport=aux + 1 if code == 2 else None)
    elif kind is ORSet:
        if code == 1:
            x.remove(arg % 4)
        else:
            x.add(arg % 4, node)
    else:
        if code == 1:
            x.delete(f"k{arg % 3}", node)
        else:
            x.set(f"k{arg % 3}", arg, node, lamport=aux + 1 if code == 2 else None)


def _history(kind, history) -> list:
    reps = [kind() for _ in NODES]
    for r, code, arg, src in history:
        if code == 3:
            reps[r] = reps[r].merge(reps[src])
        else:
            _apply(kind, reps[r], NODES[r], code, arg, src)
    return reps


KINDS = [GCounter, PNCounter, LWWRegister, ORSet, LWWMap]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.type_tag)
@settings(max_examples=100, deadline=None)
@given(h1=ops, h2=ops, pick=st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)))
@example(h1=[(0, 2, 3, 0)], h2=[(0, 2, 6, 0)], pick=(0, 3, 1))  # same (clock, node), two values
@example(h1=[(0, 0, 1, 0), (1, 3, 0, 0), (1, 1, 1, 0)], h2=[(0, 0, 1, 0)], pick=(1, 3, 0))
def test_merge_is_commutative_associative_idempotent(kind, h1, h2, pick):
    pool = _history(kind, h1) + _history(kind, h2)
    a, b, c = (pool[i] for i in pick)
    before = (a.canonical(), b.canonical())
    assert a.merge(b) == b.merge(a)
    assert a.merge(b).merge(c) == a.merge(b.merge(c))
    assert a.merge(a) == a
    assert a.merge(b).merge(b) == a.merge(b)
    assert (a.canonical(), b.canonical()) == before  # merge does not mutate its inputs


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.type_tag)
@SETTINGS
@given(h=ops)
def test_json_round_trip(kind, h):
    for x in _history(kind, h):
        assert kind.from_json(x.to_json()) == x
        assert crdt_from_json(x.canonical()) == x


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 5)), max_size=30))
def test_counters_converge_to_the_sum_of_all_updates(incs):
    g = [GCounter() for _ in NODES]
    pn = [PNCounter() for _ in NODES]
    total = 0
    for r, amount in incs:
        g[r].increment(NODES[r], amount)
        if amount % 2:
            pn[r].decrement(NODES[r], amount)
            total -= amount
        else:
            pn[r].increment(NODES[r], amount)
            total += amount
    assert g[0].merge(g[1]).merge(g[2]).value == sum(a for _, a in incs)
    assert pn[2].merge(pn[0]).merge(pn[1]).value == total


def test_crdt_semantics():
    r1, r2 = LWWRegister(), LWWRegister()
    r1.set("old", "z")
    r2 = r2.merge(r1)
    r2.set("new", "a")  # causally later: wins although "a" < "z"
    assert r1.merge(r2).value == "new" and r2.timestamp == (2, "a")
    s = ORSet()
    s.add("x", "a")
    t = s.copy()
    assert t.remove("x") and not t.contains("x")
    s.add("x", "b")  # concurrent add survives the remove (add wins)
    assert s.merge(t).contains("x")
    t2 = s.merge(t)
    t2.remove("x")  # a remove that observed every tag wins
    assert not t2.merge(s).contains("x")
    m = LWWMap()
    m.set("k", 1, "a")
    m2 = m.copy()
    m2.delete("k", "b")
    assert m.merge(m2).get("k") is None and m.merge(m2).value == {}
    m.set("k", 2, "a")
    m.set("k", 3, "a")  # lamport 3 > the delete's 2
    assert m.merge(m2).get("k") == 3


def test_crdt_errors():
    with pytest.raises(ProtocolError, match="cannot merge"):
        GCounter().merge(PNCounter())
    with pytest.raises(ParameterError, match="only grows"):
        GCounter().increment("a", -1)
    with pytest.raises(ParameterError, match="str or int"):
        ORSet().add(1.5, "a")
    with pytest.raises(DecodeError, match="unknown CRDT type"):
        crdt_from_json({"type": "mv_register"})
    with pytest.raises(DecodeError, match="not JSON"):
        crdt_from_json(b"{nope")
    with pytest.raises(DecodeError):
        crdt_from_json({"type": "g_counter", "counts": {"a": -3}})
    with pytest.raises(DecodeError):
        crdt_from_json({"type": "lww_map", "entries": {"k": {"value": 1, "ts": [0, "a"], "deleted": False}}})
    with pytest.raises(DecodeError):
        crdt_from_json({"type": "or_set", "adds": [["x", [["a"]]]], "removes": [], "clock": {}})


# --------------------------------------------------------------------------------------------
# replicas, Merkle trees and anti-entropy sessions
# --------------------------------------------------------------------------------------------


def _replicas_with(n_shared: int = 0):
    a, b = Replica("a", buckets=8), Replica("b", buckets=8)
    for j in range(n_shared):
        st_ = LWWRegister(j, (1, "seed"))
        a.merge_key(f"s{j}", st_)
        b.merge_key(f"s{j}", st_)
    return a, b


def test_replica_roots_track_state():
    a, b = _replicas_with(20)
    assert a.root() == b.root()
    a.mutate("c", GCounter, lambda c: c.increment("a"))
    assert a.root() != b.root()
    assert b.merge_key("c", a.canonical("c")) and a.root() == b.root()
    assert not b.merge_key("c", a.canonical("c"))  # identical bytes: no-op
    diff = [i for i, (x, y) in enumerate(zip(a.bucket_hashes(), b.bucket_hashes())) if x != y]
    assert diff == []
    with pytest.raises(ProtocolError, match="holds a g_counter"):
        a.mutate("c", PNCounter, lambda c: c.increment("a"))


@pytest.mark.parametrize("method", ["merkle", "digest"])
def test_sync_pair_pulls_missing_pushes_theirs_and_fixes_stale(method):
    a, b = _replicas_with(10)
    a.mutate("only_a", GCounter, lambda c: c.increment("a", 2))
    b.mutate("only_b", ORSet, lambda s: s.add("x", "b"))
    a.mutate("both", PNCounter, lambda c: c.increment("a", 5))
    b.merge_key("both", a.store["both"])
    b.mutate("both", PNCounter, lambda c: c.decrement("b", 2))  # stale on a
    a.mutate("both", PNCounter, lambda c: c.increment("a", 1))  # and on b
    stats = sync_pair(a, b, method)
    assert a.root() == b.root()
    assert a.store["only_b"].value == frozenset({"x"}) and b.store["only_a"].value == 2
    assert a.store["both"].value == b.store["both"].value == 4
    assert stats["messages"] >= 3 and stats["bytes"] > 0


def test_original_anti_entropy_defects_are_reproduced():
    a, b = _replicas_with()
    b.mutate("only_b", GCounter, lambda c: c.increment("b"))
    a.mutate("only_a", GCounter, lambda c: c.increment("a"))
    for x in (a, b):
        x.mutate("both", GCounter, lambda c, n=x.node: c.increment(n))
    sync_pair(a, b, "original")
    assert "only_b" not in a.store  # pull dropped
    assert b.store["only_a"].value == 1  # push works
    assert a.store["both"] != b.store["both"]  # stale never exchanged


def test_merkle_costs_less_than_a_flat_digest_when_mostly_in_sync():
    a, b = _replicas_with(400)
    same_m = sync_pair(a, b, "merkle")
    same_d = sync_pair(a, b, "digest")
    assert same_m["messages"] == 1 and same_m["bytes"] == 64 + 32
    assert same_d["bytes"] > 400 * 32
    a.mutate("s7", LWWRegister, lambda r: r.set("changed", "a"))
    one_m, one_d = sync_pair(a, b, "merkle"), None
    a.mutate("s8", LWWRegister, lambda r: r.set("changed", "a"))
    one_d = sync_pair(a, b, "digest")
    assert one_m["bytes"] < one_d["bytes"] / 2
    assert a.root() == b.root()


# --------------------------------------------------------------------------------------------
# simulator
# --------------------------------------------------------------------------------------------

SMALL = SimConfig(n=10, n_writes=60, n_keys=15, write_window_s=30.0)


def test_simulation_is_deterministic():
    r1, r2 = simulate(SMALL, loss=0.1, seed=7), simulate(SMALL, loss=0.1, seed=7)
    assert r1.as_row() == r2.as_row()
    assert simulate(SMALL, loss=0.1, seed=8).as_row() != r1.as_row()


@pytest.mark.parametrize("method", ["merkle", "digest"])
def test_converges_and_is_correct_under_loss_and_partition(method):
    cut = Partition(5.0, 60.0, frozenset(range(5)))
    r = simulate(SMALL, anti_entropy=method, loss=0.2, partitions=(cut,), seed=3)
    assert r.converged and r.correct
    assert r.converged_at_s >= 60.0  # cannot converge while cut (writes on both sides)
    assert r.messages_lost > 0 and r.bytes_anti_entropy > 0
    assert all(rep.root() == r.replicas[0].root() for rep in r.replicas)


def test_gossip_alone_cannot_heal_a_partition():
    cut = Partition(0.0, 60.0, frozenset(range(5)))
    r = simulate(SMALL, anti_entropy="off", partitions=(cut,), seed=3, max_time_s=300.0)
    assert not r.converged and not r.correct and r.bytes_anti_entropy == 0
    r2 = simulate(SMALL, anti_entropy="off", seed=3)
    assert r2.converged and r2.correct  # without loss or partition gossip alone gets there here


def test_original_anti_entropy_does_not_converge():
    r = simulate(SMALL, gossip=False, anti_entropy="original", seed=2, max_time_s=600.0)
    assert not r.converged
    fixed = simulate(SMALL, gossip=False, anti_entropy="merkle", seed=2, max_time_s=600.0)
    assert fixed.converged and fixed.correct and fixed.bytes_gossip == 0


def test_results_table_and_validation():
    t = ass.results_table([simulate(SMALL, seed=1), simulate(SMALL, seed=1, anti_entropy="digest")])
    assert t.height == 2 and {"convergence_time_s", "bytes_total", "anti_entropy"} <= set(t.columns)
    assert (t["bytes_total"] == t["bytes_gossip"] + t["bytes_anti_entropy"]).all()
    with pytest.raises(ParameterError, match="replicas"):
        simulate(n=1)
    with pytest.raises(ParameterError, match="loss"):
        simulate(loss=1.0)
    with pytest.raises(ParameterError, match="outside"):
        simulate(n=4, partitions=(Partition(0, 1, frozenset({9})),))
    with pytest.raises(ParameterError, match="anti_entropy"):
        simulate(anti_entropy="push")


def test_doctests():
    failures, tried = doctest.testmod(ass)
    assert tried > 30 and failures == 0
