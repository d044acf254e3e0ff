"""dwcpkit against a real Prometheus serving the backfilled sample: loader, runbooks, alert rules."""

import shutil
from datetime import timedelta

import polars as pl
import pytest

from dwcpkit.errors import ParameterError, PrometheusError
from dwcpkit.runbook import run
from dwcpkit.sre import alerts, incidents, rollout
from dwcpkit.sre.window import load_window, resolve_at
from dwcpkit.telemetry.names import CATALOG
from dwcpkit.telemetry.prometheus import PrometheusClient
from dwcpkit.telemetry.promserver import PrometheusServer, backfill, find_binaries
from dwcpkit.telemetry.sources import load

AT = "2026-11-01T20:00:00Z"
REPLAY_START, REPLAY_END = "2026-11-01T09:00:00Z", "2026-11-01T21:00:00Z"  # inside the backfilled window


# ------------------------------------------------------------------------------------------------
# the loader


@pytest.mark.parametrize("start,end", [
    ("2026-11-01T19:00:00Z", "2026-11-01T20:30:00Z"),  # hde down at 19:30, restarted (counters reset) at 20:05
    ("2026-11-01T08:00:00Z", "2026-11-01T08:59:00Z"),  # the first hour of the backfilled data
])
def test_loader_reads_back_exactly_the_sample(prometheus, start, end):
    families = sorted(CATALOG)
    got = load(prometheus.url, metrics=families, start=start, end=end, step="60s")
    want = load("sample", metrics=families, start=start, end=end)
    assert got.height == want.height > 0
    assert got.equals(want), "the frame read from Prometheus differs from the parquet sample"
    assert set(got["metric"].unique()) >= {"dwcp_v3_migration_latency_seconds_bucket",
                                           "dwcp_v3_component_errors_total", "dwcp_v3_rollout_percentage"}


def test_loader_beyond_the_backfilled_data_gets_only_the_lookback(prometheus, window):
    # Prometheus answers up to 5 minutes past the last sample (lookback), then nothing.
    assert window["data"][1] == "2026-11-01T21:00:00Z"
    got = load(prometheus.url, metrics=["dwcp_v3_rollout_percentage"], start=window["data"][1],
               end="2026-11-01T21:30:00Z")
    assert got["timestamp"].dt.strftime("%H:%M").to_list() == [f"21:{m:02d}" for m in range(6)]
    assert got["value"].unique().to_list() == [50.0]


# ------------------------------------------------------------------------------------------------
# runbooks end to end


def _sample_verdict(name):
    """The verdict each runbook computes on the sample at AT with its default parameters, computed
    in-process with the same calls as the notebook (a second kernel per runbook would double the time)."""
    if name == "rollout-gate":
        frame = rollout.load_rollout_data("sample", at=AT)
        decision = rollout.evaluate_rollout(frame, at=AT).decision
        return decision.level, decision.label, list(decision.reasons)
    families = sorted({m for ms in incidents.DETECTION_FAMILIES.values() for m in ms})
    frame = load_window("sample", families + ["dwcp_v3_migration_latency_seconds"], at=AT,
                        lookback=timedelta(hours=3))
    result = incidents.triage(frame, at=resolve_at(frame, AT), lookback="60m", thresholds=incidents.FLEET_THRESHOLDS)
    return result.verdict, result.severity.name, list(result.reasons)


@pytest.mark.parametrize("name,expected", [
    ("incident-triage", ("ESCALATE", "SEV1", "hde service")),
    ("rollout-gate", ("ACT", "ROLLBACK", "components healthy")),
])
def test_runbook_on_prometheus_matches_the_sample(prometheus, tmp_path, name, expected):
    result = run(name, {"source": prometheus.url, "at": AT}, out=tmp_path, progress=False, html=False)
    assert result.verdict is not None, result.error
    got = (result.verdict["level"], result.verdict["label"], list(result.verdict["reasons"]))
    assert got[:2] == expected[:2] and expected[2] in got[2][0]
    assert got == _sample_verdict(name)
    assert result.exit_code == {"ESCALATE": 30, "ACT": 20}[got[0]]


def test_runbook_against_a_prometheus_that_answers_errors_exits_3(tsdb, tmp_path):
    # A second server on a copy of the data that refuses every query loading more than 10 samples:
    # it is up and ready, and answers the runbook's queries with HTTP 422 errors.
    copy = tmp_path / "data"
    shutil.copytree(tsdb, copy, ignore=shutil.ignore_patterns("wal", "chunks_head", "lock", "queries.active"))
    with PrometheusServer(copy, extra_args=["--query.max-samples=10"]) as broken:
        with pytest.raises(PrometheusError, match="too many samples"):
            load(broken.url, metrics=["dwcp_v3_component_health"], start="2026-11-01T19:00:00Z", end=AT)
        result = run("incident-triage", {"source": broken.url, "at": AT}, out=tmp_path, progress=False, html=False)
        url = broken.url
    assert (result.exit_code, result.status) == (3, "source_error")
    assert result.error["ename"] == "PrometheusError"
    assert "\n" not in result.error["evalue"] and "too many samples" in result.error["evalue"]
    # and once that server is stopped: connection refused, still a PrometheusError (exit 3)
    with pytest.raises(PrometheusError, match="connection refused"):
        load(url, metrics=["dwcp_v3_component_health"], start="2026-11-01T19:00:00Z", end=AT)


# ------------------------------------------------------------------------------------------------
# alert rules: the Python replay against Prometheus' own evaluation of every alert expression


@pytest.fixture(scope="module")
def replayed(sample_window, window):
    assert (REPLAY_START, REPLAY_END) == window["replay"]
    return alerts.replay(sample_window, start=REPLAY_START, end=REPLAY_END)


def test_replay_fires_what_prometheus_evaluates(prometheus, replayed):
    rules = alerts.load_rules()
    client = PrometheusClient(prometheus.url, timeout=60)
    compared = fired = 0
    for rule in (r for r in rules if r.kind == "alert"):
        got = client.query_range(alerts.expand(rule.expr, rules), REPLAY_START, REPLAY_END, "1m")
        theirs = alerts.alert_intervals(got, for_=rule.for_ms, start=REPLAY_START, end=REPLAY_END, alert=rule.name)
        ours = replayed.filter(pl.col("alert") == rule.name).select(theirs.columns)
        assert ours.equals(theirs), f"{rule.name}: replay\n{ours}\nPrometheus\n{theirs}"
        compared += 1
        fired += theirs.filter(pl.col("state") == "firing").height
    assert compared == 29
    assert fired >= 10  # the comparison covers real firing episodes, not only silence
    assert {"DWCPv3ComponentDown", "DWCPv3ConsensusFailure", "DWCPv3LatencyP95High"} <= set(
        replayed.filter(pl.col("state") == "firing")["alert"])


@pytest.mark.parametrize("expr", [
    "dwcp_v3:rollout_slas_met:5m",
    "dwcp_v3:migration_latency_zscore:1h",
    'histogram_quantile(0.99, sum by (le, region) (rate(dwcp_v3_migration_latency_seconds_bucket{version="v3"}[5m])))',
    "dwcp_v3:error_ratio:5m",
])
def test_expression_values_match_prometheus(prometheus, sample_window, expr):
    rules = alerts.load_rules()
    theirs = PrometheusClient(prometheus.url, timeout=60).query_range(
        alerts.expand(expr, rules), REPLAY_START, REPLAY_END, "1m")
    ours = alerts.evaluate(expr, sample_window, start=REPLAY_START, end=REPLAY_END)
    keys = [c for c in theirs.columns if c not in ("metric", "value")]
    assert keys == [c for c in ours.columns if c not in ("metric", "value")]
    both = theirs.join(ours, on=keys, how="full", coalesce=True, suffix="_ours", nulls_equal=True)
    assert both.height == theirs.height == ours.height > 0
    nan = pl.col("value").is_nan()
    same = (nan & pl.col("value_ours").is_nan()) | (
        (pl.col("value") - pl.col("value_ours")).abs() <= 1e-9 * pl.col("value").abs().clip(1.0))
    assert both.filter(~same).height == 0, both.filter(~same).head()


# ------------------------------------------------------------------------------------------------
# promserver's own errors


def test_missing_binaries_are_a_clear_error(monkeypatch, sample_window, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrometheusError, match="apt-get install prometheus"):
        find_binaries()
    with pytest.raises(PrometheusError, match="promtool"):
        backfill(sample_window.head(10), tmp_path / "data")
    (tmp_path / "data").mkdir(exist_ok=True)
    with pytest.raises(PrometheusError, match="prometheus"):
        PrometheusServer(tmp_path / "data").start()


def test_backfill_refuses_what_promtool_would_silently_mangle(tmp_path, need_prometheus):
    frame = load("sample", metrics=["dwcp_v3_rollout_percentage"], start="2026-11-01T08:00:00Z",
                 end="2026-11-01T08:10:00Z")
    with pytest.raises(ParameterError, match="no samples"):
        backfill(frame.head(0), tmp_path / "a")
    future = frame.with_columns(pl.col("timestamp").dt.offset_by("1000y"))
    with pytest.raises(ParameterError, match="milliseconds read as seconds"):
        backfill(future, tmp_path / "b")
