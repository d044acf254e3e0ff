"""Tests of dwcpkit.sre.playbooks: alert replay, signals, facts, decision trees, the six playbooks."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from dwcpkit.errors import DataError, ParameterError, SchemaError
from dwcpkit.runbook import read_schema
from dwcpkit.sre import playbooks as P
from dwcpkit.telemetry.schema import from_rows
from dwcpkit.telemetry.sources import load

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("latency-p99", "throughput-low", "error-rate", "rollout-nogo", "component-down", "consensus-failure")


@pytest.fixture(scope="module")
def sample():
    return load("sample")


# --- the data ----------------------------------------------------------------------------------


def test_the_six_playbooks_and_their_runbook_names():
    assert tuple(P.PLAYBOOKS) == NAMES
    assert [p.runbook for p in P.PLAYBOOKS.values()] == [f"playbook-{n}" for n in NAMES]
    assert P.get_playbook("playbook-consensus-failure") is P.PLAYBOOKS["consensus-failure"]
    with pytest.raises(ParameterError, match="latency-p99"):
        P.get_playbook("disk-full")
    for pb in P.PLAYBOOKS.values():
        assert pb.severity == "SEV1" and pb.team and pb.tree[-1].when == ()
        assert pb.condition.original and pb.condition.promql and "{threshold}" not in pb.condition.promql_text


def test_malformed_playbooks_are_rejected():
    good = P._data()["playbooks"]["error-rate"]
    bad_step = json.loads(json.dumps(good))
    bad_step["tree"][0]["steps"] = ["nope"]
    with pytest.raises(SchemaError, match="step 'nope'"):
        P._parse_playbook("x", bad_step)
    bad_fact = json.loads(json.dumps(good))
    bad_fact["tree"][0]["when"] = ["moon_phase"]
    with pytest.raises(SchemaError, match="unknown fact"):
        P._parse_playbook("x", bad_fact)
    no_default = json.loads(json.dumps(good))
    no_default["tree"] = no_default["tree"][:-1]
    with pytest.raises(SchemaError, match="otherwise"):
        P._parse_playbook("x", no_default)
    with pytest.raises(SchemaError, match="malformed"):
        P._parse_playbook("x", {"alert": "A"})


# --- alert replay --------------------------------------------------------------------------------


def _series(values, step_ms=60_000, **labels):
    data = {"timestamp": [i * step_ms for i in range(len(values))], "value": values}
    data.update({k: [v] * len(values) for k, v in labels.items()})
    return pl.DataFrame(data)


def test_pending_then_firing_after_for():
    e = P.evaluate_condition(_series([0.0, 2.0, 2.0, 2.0, 2.0, 0.0]), ">", 1.0, 120)
    assert e["state"].to_list() == ["inactive", "pending", "pending", "firing", "firing", "inactive"]
    assert e["active_since"].to_list()[1:5] == [60_000] * 4
    assert P.evaluate_condition(_series([2.0, 2.0]), ">", 1.0, 0)["state"].to_list() == ["firing", "firing"]


def test_a_gap_or_nan_resets_the_alert():
    gap = pl.DataFrame({"timestamp": [0, 60_000, 180_000, 240_000], "value": [2.0] * 4})
    assert P.evaluate_condition(gap, ">", 1.0, 60)["state"].to_list() == ["pending", "firing", "pending", "firing"]
    nan = P.evaluate_condition(_series([2.0, float("nan"), 2.0, 2.0]), ">", 1.0, 60)
    assert nan["state"].to_list() == ["pending", "inactive", "pending", "firing"]


def test_series_are_evaluated_independently_and_episodes_summarised():
    s = pl.concat([_series([0.0, 0.0, 0.0, 0.0], region="a"), _series([0.0, 5.0, 6.0, 0.0], region="b")])
    e = P.evaluate_condition(s, "<", 1.0, 60)
    assert e.filter(pl.col("region") == "a")["state"].to_list() == ["pending", "firing", "firing", "firing"]
    f = P.firing_intervals(e, worst="min")
    assert f.columns == ["region", "pending_since", "start", "end", "evaluations", "peak"]
    assert f.rows() == [("a", 0, 60_000, 180_000, 3, 0.0)]
    with pytest.raises(ParameterError):
        P.evaluate_condition(s, "~", 1.0, 60)
    with pytest.raises(SchemaError):
        P.evaluate_condition(pl.DataFrame({"t": [1]}), ">", 1.0, 60)


# --- signals -------------------------------------------------------------------------------------


def test_gauge_signals_use_a_5_minute_lookback():
    rows = [(0, "dwcp_v3_throughput_bytes_per_second", 3e9, {"region": "eu", "version": "v3"}),
            (60_000, "dwcp_v3_throughput_bytes_per_second", 1e9, {"region": "eu", "version": "v3"}),
            (60_000, "dwcp_v3_throughput_bytes_per_second", 9e9, {"region": "eu", "version": "v1"})]
    s = P.signal_series(from_rows(rows), "throughput_gbps", 0, 600_000, step="2m")
    # v1 is not v3; after 60 s + 5 min the last sample is stale and the series is absent
    assert s["timestamp"].dt.epoch("ms").to_list() == [0, 120_000, 240_000, 360_000]
    assert s["value"].to_list() == [3.0, 1.0, 1.0, 1.0]
    with pytest.raises(ParameterError, match="unknown signal"):
        P.signal_series(from_rows(rows), "vibes", 0, 60_000)


def test_error_and_rollout_signals():
    rows = []
    for t in range(11):
        for region, errs in (("a", 2.0), ("b", 0.0)):
            rows.append((t * 60_000, "dwcp_v3_component_operations_total", 100.0 * t,
                         {"region": region, "version": "v3", "component": "acp"}))
            rows.append((t * 60_000, "dwcp_v3_component_errors_total", errs * t,
                         {"region": region, "version": "v3", "component": "acp", "error_type": "timeout"}))
        rows.append((t * 60_000, "dwcp_v3_rollout_percentage", 10.0 if t < 5 else 50.0, {}))
    f = from_rows(rows)
    e = P.signal_series(f, "error_pct", 300_000, 600_000, step="5m")
    assert e.rows() == [(datetime(1970, 1, 1, 0, 5, tzinfo=timezone.utc), "a", pytest.approx(2.0)),
                        (datetime(1970, 1, 1, 0, 10, tzinfo=timezone.utc), "a", pytest.approx(2.0)),
                        (datetime(1970, 1, 1, 0, 5, tzinfo=timezone.utc), "b", 0.0),
                        (datetime(1970, 1, 1, 0, 10, tzinfo=timezone.utc), "b", 0.0)]
    r = P.signal_series(f, "rollout_pct", 0, 600_000, step="5m")
    assert r.columns == ["timestamp", "value"] and r["value"].to_list() == [10.0, 50.0, 50.0]


# --- decision trees ----------------------------------------------------------------------------


def test_first_matching_branch_wins_and_negation_works():
    tree = P.get_playbook("rollout-nogo").tree
    facts = dict.fromkeys(P.FACTS, False)
    assert P.choose_branch(tree, facts).id == "diagnose"                       # !cause_identified
    assert P.choose_branch(tree, facts | {"cause_identified": True}).id == "rollback"
    assert P.choose_branch(tree, facts | {"cause_identified": True, "hotfix_quick": True}).id == "hotfix"
    with pytest.raises(ParameterError, match="facts missing"):
        P.choose_branch(tree, {"hotfix_quick": True})
    b = P.Branch("b", ("a", "!c"), "ACT", "", None, ())
    assert b.holds({"a": True, "c": False}) and not b.holds({"a": True, "c": True})


# --- the six playbooks on the sample ----------------------------------------------------------------

DEFAULTS = {
    "latency-p99": ("2026-11-01T09:45:00Z", "ACT", "slowdown", ["eu-west"]),
    "throughput-low": ("2026-11-02T14:30:00Z", "ACT", "wan-path", ["us-east"]),
    "error-rate": ("2026-11-02T23:10:00Z", "ACT", "spread", ["us-east"]),
    "rollout-nogo": ("2026-11-02T14:40:00Z", "ACT", "rollback", ["ap-south", "eu-west", "us-east"]),
    "component-down": ("2026-11-01T19:45:00Z", "ACT", "restart", ["eu-west"]),
    "consensus-failure": ("2026-11-02T03:15:00Z", "ESCALATE", "partition", ["ap-south"]),
}


@pytest.mark.parametrize("name", NAMES)
def test_each_playbook_fires_on_its_incident(sample, name):
    at, level, label, focus = DEFAULTS[name]
    r = P.run_playbook(sample, name, at=at)
    assert (r.state, r.level, r.label, r.focus) == ("firing", level, label, focus)
    assert r.firing_now.height >= 1 and r.tree.filter(pl.col("taken"))["branch"].to_list() == [label]
    assert r.escalation.height > 0 and r.reasons[0].startswith(r.playbook.alert)
    assert set(r.series) >= {r.condition.signal, *r.playbook.evidence}
    assert all(not s.changes for s in r.steps[:len(r.playbook.investigate)])
    assert r.firing_context.height >= r.firing.height


def test_quiet_and_resolved_alerts(sample):
    quiet = P.run_playbook(sample, "error-rate", at="2026-11-02T06:00:00Z")
    assert (quiet.state, quiet.level, quiet.branch) == ("quiet", "OK", None) and quiet.escalation.height == 0
    resolved = P.run_playbook(sample, "latency-p99", at="2026-11-01T09:20:00Z")
    assert (resolved.state, resolved.level, resolved.label) == ("resolved", "WARN", "resolved")
    raised = P.run_playbook(sample, "latency-p99", at="2026-11-01T09:45:00Z", threshold=100.0)
    assert raised.state == "quiet" and raised.condition.threshold == 100.0


def test_operator_facts_change_the_branch(sample):
    r = P.run_playbook(sample, "error-rate", at="2026-11-02T23:10:00Z", recent_deploy=True)
    assert r.label == "change" and r.steps[-1].argv[-3:] == ("rollout", "undo", "deployment/dwcp-v3")
    assert r.step_argv(r.steps[-1])[2] == "production"
    h = P.run_playbook(sample, "rollout-nogo", at="2026-11-02T14:40:00Z", hotfix_minutes=10, namespace="dwcp")
    assert h.label == "hotfix" and h.step_argv(h.steps[len(h.playbook.investigate)])[2] == "dwcp"
    slow = P.run_playbook(sample, "rollout-nogo", at="2026-11-02T14:40:00Z", hotfix_minutes=40)
    assert slow.label == "rollback"
    byz = P.run_playbook(sample, "consensus-failure", at="2026-11-01T13:20:00Z")
    assert byz.label == "byzantine" and "ap-south-2" in byz.step_text(byz.steps[-1])


def test_charts_and_placeholders(sample):
    r = P.run_playbook(sample, "component-down", at="2026-11-01T19:45:00Z")
    cf = r.chart_frame("component_health")
    assert cf.columns == ["timestamp", "series", "value"] and cf["series"].unique().to_list() == ["hde@eu-west"]
    assert r.context["component"] == "hde" and "dwcp-v3-hde" in " ".join(r.step_argv(r.steps[3]))
    nogo = P.run_playbook(sample, "rollout-nogo", at="2026-11-02T14:40:00Z")
    assert nogo.chart_frame("rollout_pct")["series"].unique().to_list() == ["fleet"]
    sla = nogo.tables["sla_breakdown"]
    assert sla["scope"].to_list() == ["fleet", "ap-south", "eu-west", "us-east"]
    assert sla.row(0, named=True)["slas_met"] == 1 and nogo.firing_now["value"][0] == pytest.approx(1 / 3)
    step = P.Step("s", "x in {region} on {node}", True)
    assert r.step_text(step) == "x in eu-west on <node>"


def test_errors_say_what_to_do(sample):
    with pytest.raises(DataError, match="pass an `at` inside the data"):
        P.run_playbook(sample, "error-rate", at="2027-01-01T00:00:00Z")
    with pytest.raises(DataError, match="regions: ap-south, eu-west, us-east"):
        P.run_playbook(sample, "error-rate", at="2026-11-02T23:10:00Z", region="mars")
    with pytest.raises(ParameterError, match="time zone"):
        P.run_playbook(sample, "error-rate", at="2026-11-02T23:10:00")
    with pytest.raises(DataError, match="empty"):
        P.run_playbook(sample.clear(), "error-rate")
    with pytest.raises(ParameterError, match="context_hours"):
        P.load_playbook_data("sample", "error-rate", context_hours=100)


# --- the six notebooks: one structure, different parameters ------------------------------------------


def test_the_six_notebooks_differ_only_in_parameters():
    sources = {}
    for name in NAMES:
        nb = json.loads((ROOT / "runbooks" / f"playbook-{name}.ipynb").read_text())
        code = ["".join(c["source"]) for c in nb["cells"]
                if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", [])]
        sources[name] = code
        params = read_schema(ROOT / "runbooks" / f"playbook-{name}.ipynb")
        pb = P.get_playbook(name)
        assert params["playbook"].choices == (name,)
        assert params["threshold"].default == pb.condition.threshold
        assert params["for_minutes"].default * 60 == pb.condition.for_s
        assert params["at"].default == DEFAULTS[name][0]
        assert params["dry_run"].default is True
    first = sources[NAMES[0]]
    assert all(code == first for code in sources.values())


def test_same_verdict_from_a_prometheus_api(sample):
    from fakeprom import FakeProm

    window = sample.filter(pl.col("timestamp").is_between(datetime(2026, 11, 2, 19, tzinfo=timezone.utc),
                                                          datetime(2026, 11, 2, 23, 30, tzinfo=timezone.utc)))
    with FakeProm(window) as api:
        frame = P.load_playbook_data(api.url, "error-rate", at="2026-11-02T23:10:00Z")
    assert {q["query"] for q in api.queries} == {f'{{__name__="{m}"}}' for m in P.playbook_families("error-rate")}
    r = P.run_playbook(frame, "error-rate", at="2026-11-02T23:10:00Z")
    assert (r.level, r.label) == ("ACT", "spread")
