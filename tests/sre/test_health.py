"""Tests of dwcpkit.sre.health: deduction tables, scores, bands, overall (the 12.5-point fix), self-heal."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.sre import health as H
from dwcpkit.telemetry.schema import from_rows
from dwcpkit.telemetry.sources import load


@pytest.fixture(scope="module")
def sample():
    return load("sample")


# --- the tables as data ---------------------------------------------------------------------------


def test_tables_hold_the_original_eight_components_and_the_dwcp_one():
    assert H.ORIGINAL_COMPONENTS == ("consensus", "network", "storage", "api", "scheduler", "vm", "security", "system")
    assert list(H.COMPONENTS)[-1] == "dwcp" and not H.COMPONENTS["dwcp"].original
    assert H.BANDS == {"unhealthy_below": 50.0, "degraded_below": 80.0} and H.FAILURE_THRESHOLD == 3
    for comp in H.COMPONENTS.values():
        assert comp.checks and all(ch.input in H.INPUTS and ch.rules for ch in comp.checks)
    # the RB-03 table, spot-checked
    cons = {c.id: c for c in H.COMPONENTS["consensus"].checks}
    assert cons["leader"].rules[0].deduct == 50 and cons["quorum"].rules[0].deduct == 40
    disk = next(c for c in H.COMPONENTS["storage"].checks if c.id == "disk")
    assert [(r.value, r.deduct) for r in disk.rules] == [(90, 40), (80, 20)]


@pytest.mark.parametrize(("values", "score"), [
    ({"missing_peers": 0, "partition": 0}, 100.0),
    ({"missing_peers": 3, "partition": 0}, 70.0),          # -10 per missing peer
    ({"missing_peers": 3, "partition": 1}, 0.0),           # partition -> 0
    ({"packet_loss_pct": 6, "bandwidth_util_pct": 95}, 65.0),
])
def test_network_deductions(values, score):
    assert H.score_component("network", values).score == score


def test_tiers_take_the_first_matching_rule_and_scores_clamp_at_zero():
    assert H.score_component("storage", {"disk_used_pct": 95}).score == 60.0
    assert H.score_component("storage", {"disk_used_pct": 85}).score == 80.0
    assert H.score_component("storage", {"disk_used_pct": 75}).score == 100.0
    assert H.score_component("security", {"cert_days_left": 3}).score == 60.0
    worst = H.score_component("consensus", {"leader_present": 0, "quorum_ok": 0, "replication_lag_ms": 5000,
                                            "byzantine_nodes": 2})
    assert worst.score == 0.0 and worst.status == "unhealthy" and len(worst.deductions) == 4


def test_no_data_is_not_checked_never_healthy():
    s = H.score_component("storage", {"disk_used_pct": None, "iowait_pct": float("nan")})
    assert (s.score, s.status, s.checked, s.total) == (None, "not checked", 0, 4)
    part = H.score_component("consensus", {"byzantine_nodes": 0})
    assert part.score == 100.0 and (part.checked, part.total) == (1, 4)
    assert set(part.unchecked) == {"leader", "quorum", "replication_lag"}


def test_bands():
    assert [H.status_for(x) for x in (0, 49.99, 50, 79.99, 80, 100, None)] == [
        "unhealthy", "unhealthy", "degraded", "degraded", "healthy", "healthy", "not checked"]


def test_overall_is_the_mean_of_scored_components():
    assert H.overall({"a": 60.0, "b": 0.0, "c": 90.0, "d": None}) == 50.0
    assert H.overall({"a": None}) is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=8, max_size=8))
def test_original_formula_is_the_mean_plus_12_5(scores):
    comps = dict(zip(H.ORIGINAL_COMPONENTS, scores))
    assert H.original_overall(comps) == pytest.approx(H.overall(comps) + 12.5)


def test_original_formula_counts_unchecked_components_as_100():
    comps = dict.fromkeys(H.ORIGINAL_COMPONENTS, None) | {"network": 0.0, "consensus": 60.0}
    assert H.original_overall(comps) == (100 + 60 + 0 + 6 * 100) / 8 == 95.0
    assert H.overall(comps) == 30.0


# --- inputs from telemetry ------------------------------------------------------------------------


def _peers_frame(values, region="eu-west"):
    rows = [(t * 60_000, "dwcp_v3_peers_connected", float(v), {"region": region}) for t, v in enumerate(values)]
    rows += [(t * 60_000, "dwcp_v3_component_health", 0.0 if (c == "hde" and t >= 3) else 1.0,
              {"component": c, "region": region}) for t in range(len(values)) for c in ("hde", "acp")]
    return from_rows(rows)


def test_telemetry_inputs_derive_peers_quorum_partition_and_health():
    f = _peers_frame([7, 7, 7, 5, 3, 3])
    x = H.telemetry_inputs(f, 120_000, 300_000)
    assert x["timestamp"].dt.epoch("ms").to_list() == [120_000, 180_000, 240_000, 300_000]
    assert x["missing_peers"].to_list() == [0.0, 2.0, 4.0, 4.0]
    assert x["quorum_ok"].to_list() == [1.0, 1.0, 0.0, 0.0]      # majority of 7 is 4
    assert x["partition"].to_list() == [0.0, 0.0, 1.0, 1.0]
    assert x["health_hde"].to_list() == [1.0, 0.0, 0.0, 0.0] and x["health_acp"].to_list() == [1.0] * 4
    assert x["health_amst"].null_count() == 4 and x["error_pct"].null_count() == 4   # no data: null
    assert "disk_used_pct" not in x.columns                      # no telemetry source at all
    with pytest.raises(ParameterError):
        H.telemetry_inputs(f, 0, 60_000, expected_peers=0)


def test_failure_counters_and_heal_plan():
    t = [datetime(2026, 1, 1, 0, m, tzinfo=timezone.utc) for m in range(5)]
    s = pl.DataFrame({"timestamp": t * 2, "region": ["eu"] * 10, "component": ["api"] * 5 + ["vm"] * 5,
                      "status": ["degraded", "healthy", "unhealthy", "degraded", "unhealthy"] + ["not checked"] * 5})
    assert dict(H.failure_counters(s).select("component", "failures").iter_rows()) == {"api": 3, "vm": 0}
    comps = pl.DataFrame({"region": ["eu"] * 5, "component": ["consensus", "network", "api", "vm", "system"],
                          "score": [60.0, 40.0, 20.0, 90.0, 60.0],
                          "status": ["degraded", "unhealthy", "unhealthy", "healthy", "degraded"],
                          "failures": [3, 3, 5, 9, 2]})
    plan = H.heal_plan(comps)
    kinds = {(a.component, a.kind) for a in plan}
    assert kinds == {("consensus", "cache_clear"), ("consensus", "gc"), ("network", "cache_clear"),
                     ("network", "restart"), ("network", "gc"), ("api", "restart"), ("api", "gc")}
    restart = next(a for a in plan if a.kind == "restart" and a.component == "network")
    assert restart.argv == ("systemctl", "restart", "novacron-network") and "systemctl" in restart.detail
    assert H.heal_runner(restart, api_base="http://127.0.0.1:9") is not None
    with pytest.raises(ParameterError):
        H.heal_plan(comps, failure_threshold=0)


# --- the whole check on the sample ----------------------------------------------------------------


def test_partition_makes_network_unhealthy_and_the_rest_not_checked(sample):
    r = H.evaluate(sample, at="2026-11-02T03:15:00Z")
    assert (r.level, r.label) == ("ACT", "unhealthy")
    ap = {x["component"]: x for x in r.components.filter(pl.col("region") == "ap-south").iter_rows(named=True)}
    assert ap["network"]["score"] == 0.0 and ap["consensus"]["score"] == 60.0 and ap["dwcp"]["score"] == 90.0
    assert all(ap[c]["score"] is None and ap[c]["status"] == "not checked"
               for c in ("storage", "api", "scheduler", "vm", "security", "system"))
    ov = r.overall.filter(pl.col("region") == "ap-south").row(0, named=True)
    assert ov["overall"] == 50.0 and ov["original_formula"] == 95.0 and ov["original_mean"] == 82.5
    assert ov["scored"] == "3/9"
    assert {(h.component, h.kind) for h in r.heal} == {("network", "restart"), ("network", "gc"),
                                                       ("consensus", "cache_clear"), ("consensus", "gc")}
    assert any(x.startswith("not checked") and "storage" in x for x in r.reasons)
    assert "disk_used_pct" in r.not_checked["input"].to_list()
    hm = r.heatmap_frame()
    assert hm.filter(pl.col("score").is_null())["label"].unique().to_list() == ["n/c"]


def test_quiet_fleet_is_healthy_and_a_byzantine_node_degrades_consensus(sample):
    assert H.evaluate(sample, at="2026-11-02T06:00:00Z").level == "OK"
    r = H.evaluate(sample, at="2026-11-01T13:20:00Z", region="ap-south")
    assert (r.level, r.components["region"].unique().to_list()) == ("WARN", ["ap-south"])
    assert r.components.filter(pl.col("component") == "consensus")["score"][0] == 70.0


def test_observed_inputs_fill_checks_the_telemetry_lacks(sample):
    r = H.evaluate(sample, at="2026-11-02T06:00:00Z", observed={"disk_used_pct": 95.0}, history_minutes=5)
    storage = r.components.filter(pl.col("component") == "storage")
    assert storage["score"].unique().to_list() == [60.0] and r.level == "WARN"
    with pytest.raises(ParameterError, match="unknown"):
        H.evaluate(sample, observed={"disk": 1.0})
    with pytest.raises(ParameterError, match="finite"):
        H.evaluate(sample, observed={"disk_used_pct": math.inf})


def test_no_data_is_an_error_not_a_healthy_verdict(sample):
    with pytest.raises(DataError, match="not a healthy one"):
        H.evaluate(sample.clear())
    other = sample.filter(pl.col("metric") == "dwcp_v3_rollout_percentage")
    with pytest.raises(DataError, match="not 'healthy'"):
        H.evaluate(other, at="2026-11-02T06:00:00Z")
    with pytest.raises(DataError, match="regions"):
        H.evaluate(sample, at="2026-11-02T06:00:00Z", region="mars")
    with pytest.raises(ParameterError, match="ISO"):
        H.evaluate(sample, at="yesterday")


def test_scores_over_the_history_feed_the_failure_counter(sample):
    r = H.evaluate(sample, at="2026-11-02T03:02:00Z", history_minutes=10)
    net = r.components.filter((pl.col("region") == "ap-south") & (pl.col("component") == "network")).row(0, named=True)
    assert net["failures"] == 3 and net["status"] == "unhealthy"   # 03:00, 03:01, 03:02
    hist = r.scores.filter((pl.col("region") == "ap-south") & (pl.col("component") == "network"))
    assert hist.height == 11 and hist["timestamp"].max() - hist["timestamp"].min() == timedelta(minutes=10)


def test_same_verdict_from_a_prometheus_api(sample):
    from fakeprom import FakeProm

    from dwcpkit.sre.window import load_window

    window = sample.filter(pl.col("timestamp").is_between(datetime(2026, 11, 2, 2, tzinfo=timezone.utc),
                                                          datetime(2026, 11, 2, 4, tzinfo=timezone.utc)))
    with FakeProm(window) as api:
        frame = load_window(api.url, H.METRICS, at="2026-11-02T03:15:00Z", lookback=timedelta(minutes=40))
    assert api.queries
    r = H.evaluate(frame, at="2026-11-02T03:15:00Z")
    assert (r.level, r.label) == ("ACT", "unhealthy")
    assert r.overall.filter(pl.col("region") == "ap-south")["overall"][0] == 50.0
