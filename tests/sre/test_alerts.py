"""The alert rules file, its promtool unit tests, and the Python replay (dwcpkit.sre.alerts)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from dwcpkit.errors import DataError, ParameterError, ParseError
from dwcpkit.runbook.catalog import catalogue
from dwcpkit.sre import _promql, alerts, incidents, slo
from dwcpkit.telemetry.names import CATALOG
from dwcpkit.telemetry.schema import from_rows
from dwcpkit.telemetry.sources import load

RULES = alerts.RULES_PATH
TESTS = RULES.with_name("dwcp-alerts.test.yml")
PHASE6 = [
    "DWCPv3RolloutNoGo", "DWCPv3LatencyP99Critical", "DWCPv3ThroughputCriticalLow", "DWCPv3ErrorRateCritical",
    "DWCPv3ComponentDown", "DWCPv3ConsensusFailure", "DWCPv3MemoryLeakSuspected", "DWCPv3LatencyP95High",
    "DWCPv3ThroughputLow", "DWCPv3ErrorRateElevated", "DWCPv3CPUHighUsage", "DWCPv3RolloutStalled",
    "DWCPv3LatencyAnomalyDetected", "DWCPv3ThroughputAnomalyDetected", "DWCPv3MultipleAnomalies",
    "DWCPv3SLALatencyViolation", "DWCPv3SLAThroughputViolation", "DWCPv3SLAErrorRateViolation",
    "DWCPv3SLAOverallCompliance", "DWCPv3AMSTStreamSaturation", "DWCPv3HDECompressionLow",
    "DWCPv3PBAPredictionAccuracyLow", "DWCPv3ACPConsensusLatencyHigh", "DWCPv3PrometheusScrapeFailures",
    "DWCPv3MetricsCollectionSlow", "DWCPv3AlertManagerDown",
]
ROLLOUT = ["RolloutErrorRateSpike", "RolloutLatencyRegression", "RolloutThroughputRegression"]
PLANNED_RUNBOOKS = {"rollback-decision", "health-check", "playbook-latency-p99", "playbook-throughput-low",
                    "playbook-error-rate", "playbook-rollout-nogo", "playbook-component-down",
                    "playbook-consensus-failure"}
#: Metrics outside dwcpkit's schema, allowed only in the groups that say so (and why) in the YAML.
EXTERNAL_GROUPS = {"dwcp-v3-external", "dwcp-v3-meta"}
M = 60_000


@pytest.fixture(scope="module")
def rules():
    return alerts.load_rules()


def _alerts(rules):
    return [r for r in rules if r.kind == "alert"]


# ------------------------------------------------------------------------------------------------
# the rules file


def test_rules_file_has_the_phase6_and_rollout_alerts(rules):
    names = [r.name for r in _alerts(rules)]
    assert len(names) == len(set(names)) == 29
    assert sorted(names) == sorted(PHASE6 + ROLLOUT)
    assert sum(r.kind == "record" for r in rules) == 13
    assert yaml.safe_load(RULES.read_text())["groups"]  # plain YAML, loads without dwcpkit


def test_every_alert_names_a_runbook_and_a_canonical_severity(rules):
    known = {nb.name for nb in catalogue()} | PLANNED_RUNBOOKS
    canonical = {s.name for s in incidents.SEVERITIES}
    for r in _alerts(rules):
        assert r.runbook in known, (r.name, r.annotations.get("runbook_url"))
        assert r.severity in canonical, r.name
        assert incidents.to_canonical("alert", r.labels["original_severity"]).name == r.severity, r.name
        assert r.annotations.get("summary") and r.annotations.get("description"), r.name
        assert "runbook" not in r.annotations  # the original's key; Alertmanager read runbook_url
    assert {r.runbook for r in _alerts(rules)} >= {"incident-triage", "rollout-gate"}


def _catalog_series() -> set[str]:
    out = set()
    for fam in CATALOG.values():
        out |= {fam.name + s for s in ("_bucket", "_sum", "_count")} if fam.type == "histogram" else {fam.name}
    return out


def test_expressions_read_only_dwcpkit_metrics_outside_the_documented_groups(rules):
    records = {r.name for r in rules if r.kind == "record"}
    allowed = _catalog_series() | records
    external = set()
    for r in rules:
        names = {n.name for n in _promql.walk(_promql.parse(r.expr)) if isinstance(n, _promql.Sel)}
        if r.group in EXTERNAL_GROUPS:
            external |= names - allowed
        else:
            assert names <= allowed, (r.name, names - allowed)
    assert external == {"process_resident_memory_bytes", "process_cpu_seconds_total", "dwcp_v3_prediction_accuracy",
                        "dwcp_v3_component_latency_seconds_bucket", "prometheus_target_interval_length_seconds",
                        "prometheus_target_scrapes_exceeded_sample_limit_total",
                        "prometheus_target_scrapes_sample_duplicate_timestamp_total", "up"}


def test_no_rate_or_increase_of_a_gauge(rules):
    gauges = {f.name for f in CATALOG.values() if f.type == "gauge"} | {
        "process_resident_memory_bytes", "dwcp_v3_prediction_accuracy", "prometheus_target_interval_length_seconds",
        "up"}
    counters = 0
    for r in rules:
        for node in _promql.walk(_promql.parse(r.expr)):
            if isinstance(node, _promql.Call) and node.fn in ("rate", "increase"):
                sel = node.args[0].expr
                assert isinstance(sel, _promql.Sel) and sel.name not in gauges, (r.name, sel)
                assert sel.name.endswith(("_total", "_bucket", "_sum", "_count")), (r.name, sel.name)
                counters += 1
    assert counters > 20


def test_the_error_alerts_are_ratios_of_errors_to_operations(rules):
    by_name = {r.name: r for r in rules}
    for name in ("DWCPv3ErrorRateCritical", "DWCPv3ErrorRateElevated"):
        top = _promql.parse(by_name[name].expr)
        assert isinstance(top, _promql.Bin) and top.op == ">" and isinstance(top.lhs, _promql.Bin)
        assert top.lhs.op == "/"
        num = {n.name for n in _promql.walk(top.lhs.lhs) if isinstance(n, _promql.Sel)}
        den = {n.name for n in _promql.walk(top.lhs.rhs) if isinstance(n, _promql.Sel)}
        assert (num, den) == ({"dwcp_v3_component_errors_total"}, {"dwcp_v3_component_operations_total"})
    # 10 errors/s out of a million operations/s fired the original (errors per second > 10); not any more.
    ops = from_rows([(t * M, "dwcp_v3_component_operations_total", 6e7 * t, {"region": "us-east", "version": "v3",
                                                                          "component": "hde"}) for t in range(20)])
    err = from_rows([(t * M, "dwcp_v3_component_errors_total", 600.0 * t, {"region": "us-east", "version": "v3",
                                                                           "component": "hde", "error_type": "x"})
                     for t in range(20)])
    frame = pl.concat([ops, err], how="diagonal")
    assert alerts.replay(frame, alerts=["DWCPv3ErrorRateCritical"]).height == 0
    # ... while 2 % of 20 operations a second fires it
    small = frame.with_columns(pl.when(pl.col("metric").str.contains("operations")).then(pl.col("value") / 3e6)
                               .otherwise(pl.col("value") / 1500).alias("value"))
    fired = alerts.replay(small, alerts=["DWCPv3ErrorRateCritical"])
    assert fired.select("labels", "state").rows() == [('{region="us-east"}', "firing")]


def test_go_no_go_says_go_on_the_sample(rules):
    frame = load("sample", start="2026-11-01T12:00:00Z", end="2026-11-01T16:00:00Z")
    go = alerts.evaluate("dwcp_v3:rollout_go:5m", frame, start="2026-11-01T12:30:00Z", rules=rules)
    assert set(go["value"].unique()) <= {0.0, 1.0}
    assert go["value"].mean() > 0.8  # GO most of the time in a quiet stretch


# ------------------------------------------------------------------------------------------------
# promtool: check rules, test rules (the unit tests), and a wrong expectation being caught


def _promtool():
    path = shutil.which("promtool")
    if path is None:
        reason = "promtool not on PATH: install Debian's `prometheus` package (.ci/install-system-deps does)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    return path


def test_promtool_check_rules():
    out = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 42 rules found" in out.stdout + out.stderr


def test_promtool_test_rules():
    out = subprocess.run([_promtool(), "test", "rules", str(TESTS)], capture_output=True, text=True, timeout=300,
                         cwd=TESTS.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_promtool_catches_a_wrong_expectation(tmp_path):
    doc = yaml.safe_load(TESTS.read_text())
    case = next(t for t in doc["tests"] if t["name"].startswith("DWCPv3ComponentDown"))
    firing = next(c for c in case["alert_rule_test"] if c["exp_alerts"])
    firing["exp_alerts"][0]["exp_labels"]["region"] = "us-east"
    doc.update(tests=[case], rule_files=[str(RULES)])
    path = tmp_path / "wrong.test.yml"
    path.write_text(yaml.safe_dump(doc))
    out = subprocess.run([_promtool(), "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "FAILED" in out.stdout + out.stderr


# ------------------------------------------------------------------------------------------------
# the replay against every expectation of the promtool unit tests (no promtool needed)

_ITEM = re.compile(r"^(?P<a>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
                   r"(?:(?P<sign>[-+])(?P<b>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))?x(?P<n>\d+)$")


def expand_values(text: str) -> list[float]:
    """promtool's series notation: 'a+bxn' = a, a+b, ..., a+n*b; 'axn' = a repeated n+1 times."""
    out: list[float] = []
    for item in text.split():
        m = _ITEM.match(item)
        if m is None:
            out.append(float(item))  # '_' and 'stale' are not used in the test file
            continue
        a, n = float(m["a"]), int(m["n"])
        b = float(m["b"] or 0) * (-1 if m["sign"] == "-" else 1)
        out.extend(a + k * b for k in range(n + 1))
    return out


def test_expand_values_matches_promtool_notation():
    assert expand_values("0+10x2 25+5x1 7x2 1.5") == [0, 10, 20, 25, 30, 7, 7, 7, 1.5]
    assert expand_values("1e9-1e8x2") == [1e9, 9e8, 8e8]


def _series_labels(text: str) -> tuple[str, dict]:
    m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?", text.strip())
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
    return m.group(1), labels


def _minutes(text: str) -> int:
    return slo.parse_duration(text) // 1000


def _case_frame(case: dict) -> pl.DataFrame:
    rows = []
    for s in case["input_series"]:
        name, labels = _series_labels(s["series"])
        rows += [(i * M, name, v, labels) for i, v in enumerate(expand_values(s["values"]))]
    return from_rows(rows)


PROMTOOL_CASES = yaml.safe_load(TESTS.read_text())["tests"]


@pytest.mark.parametrize("case", PROMTOOL_CASES, ids=[c["name"].split(":")[0] for c in PROMTOOL_CASES])
def test_replay_agrees_with_the_promtool_unit_test(case, rules):
    frame = _case_frame(case)
    end = max(_minutes(c["eval_time"]) for c in case["alert_rule_test"]) * 1000
    names = sorted({c["alertname"] for c in case["alert_rule_test"]})
    fired = alerts.replay(frame, start=0, end=end, alerts=names)
    static = {r.name: r.labels for r in rules}
    for check in case["alert_rule_test"]:
        t = pl.lit(_minutes(check["eval_time"]) * 1000).cast(pl.Int64).cast(pl.Datetime("ms", "UTC"))
        now = fired.filter((pl.col("alert") == check["alertname"]) & (pl.col("fired_at") <= t)
                           & (pl.col("resolved_at").is_null() | (pl.col("resolved_at") > t)))
        want = []
        for e in check["exp_alerts"]:
            own = {k: v for k, v in e["exp_labels"].items() if k not in static[check["alertname"]]}
            want.append("{" + ", ".join(f'{k}="{v}"' for k, v in sorted(own.items())) + "}")
        assert sorted(now["labels"]) == sorted(want), (check, fired)
    for check in case.get("promql_expr_test", []):
        at = _minutes(check["eval_time"]) * 1000
        got = alerts.evaluate(check["expr"], frame, start=at, end=at, rules=rules)
        assert got["value"].to_list() == [s["value"] for s in check["exp_samples"]], check


def test_promtool_tests_evaluate_recording_rules_first():
    # promtool 2.42 gives unlisted groups the same rank as the first one and breaks ties in map order:
    # every group must be listed, or alerts reading recording rules are evaluated a minute late at random.
    order = yaml.safe_load(TESTS.read_text())["group_eval_order"]
    groups = [g["name"] for g in yaml.safe_load(RULES.read_text())["groups"]]
    assert order[0] == "dwcp-v3-recording" and sorted(order) == sorted(groups)


def test_every_alert_has_a_firing_and_a_quiet_promtool_case(rules):
    fire = {c["alertname"] for t in PROMTOOL_CASES for c in t["alert_rule_test"] if c["exp_alerts"]}
    quiet = {c["alertname"] for t in PROMTOOL_CASES for c in t["alert_rule_test"] if not c["exp_alerts"]}
    names = {r.name for r in _alerts(rules)}
    assert fire == names and quiet == names


# ------------------------------------------------------------------------------------------------
# the replay on the sample fleet


def test_replay_finds_the_sample_incidents():
    frame = load("sample", start="2026-11-01T18:00:00Z", end="2026-11-01T21:00:00Z")
    fired = alerts.replay(frame, start="2026-11-01T19:00:00Z", end="2026-11-01T21:00:00Z")
    assert fired.columns == ["alert", "labels", "severity", "state", "active_at", "fired_at", "resolved_at",
                             "runbook_url"]
    down = fired.filter(pl.col("alert") == "DWCPv3ComponentDown").row(0, named=True)
    assert down["labels"] == '{component="hde", region="eu-west"}' and down["severity"] == "SEV1"
    assert (down["active_at"].strftime("%H:%M"), down["fired_at"].strftime("%H:%M"),
            down["resolved_at"].strftime("%H:%M")) == ("19:30", "19:31", "20:05")  # for: 30s, 1-min steps
    assert down["runbook_url"] == "dwcpkit://runbooks/playbook-component-down"
    assert "DWCPv3ErrorRateCritical" not in set(fired["alert"])  # a down component has no operations to fail


def test_replay_window_defaults_and_errors():
    frame = load("sample", metrics=["dwcp_v3_component_health"], start="2026-11-01T19:00:00Z",
                 end="2026-11-01T19:40:00Z")
    fired = alerts.replay(frame, alerts=["DWCPv3ComponentDown"])
    assert fired.height == 1 and fired["resolved_at"][0] is None  # still down at the end of the data
    with pytest.raises(ParameterError, match="unknown alert"):
        alerts.replay(frame, alerts=["NoSuchAlert"])
    with pytest.raises(DataError, match="empty"):
        alerts.replay(frame.head(0))


# ------------------------------------------------------------------------------------------------
# the state machine


def _active(minutes, labels=None):
    return from_rows([(m * M, "x", 1.0, labels or {"job": "a"}) for m in minutes])


@pytest.mark.parametrize("minutes,for_,expected", [
    ([2, 3, 4], 0, [("firing", 2, 2, 5)]),                       # no hold: fires when it appears
    ([2, 3, 4], "2m", [("firing", 2, 4, 5)]),                    # held for 2 min: fires at +2m
    ([2, 3], "2m", [("pending", 2, None, 4)]),                   # gone before the hold: never fired
    ([1, 2, 4, 5, 6, 7, 8, 9], "2m", [("pending", 1, None, 3), ("firing", 4, 6, None)]),  # a gap restarts it
])
def test_alert_intervals(minutes, for_, expected):
    out = alerts.alert_intervals(_active(minutes), for_=for_, start=0, end=9 * M)
    ms = [tuple(None if v is None else int(v.timestamp() * 1000) // M for v in r[1:])
          for r in out.select("state", "active_at", "fired_at", "resolved_at").iter_rows()]
    assert [(r[0],) + m for r, m in zip(out.select("state").iter_rows(), ms)] == expected
    assert set(out["labels"]) == {'{job="a"}'}


# ------------------------------------------------------------------------------------------------
# the evaluator


def _frame(series: dict[tuple, list[float]], name="x", step=M, start=0):
    rows = []
    for labels, values in series.items():
        rows += [(start + i * step, name, v, dict(labels)) for i, v in enumerate(values) if v is not None]
    return from_rows(rows)


def _eval(expr, frame, start, end, step="1m", rules=None):
    return alerts.evaluate(expr, frame, start=start, end=end, step=step, rules=rules or [])


def test_instant_selector_looks_back_5_minutes():
    f = _frame({(("a", "1"),): [1, 2, None, None, None, None, None, None, None]})
    got = _eval("x", f, 0, 8 * M)
    assert got["timestamp"].dt.epoch("ms").to_list() == [m * M for m in range(7)]  # 1 min + 5 min lookback
    assert got["value"].to_list() == [1, 2, 2, 2, 2, 2, 2]


def test_rate_and_histogram_quantile_are_slo_s():
    counter = _frame({(("r", "a"),): [0, 60, 130, 130, 20, 80, 140]}, name="c_total")
    got = _eval("rate(c_total[5m])", counter, 5 * M, 6 * M)
    want = slo.rate(counter, "5m", step="1m", start=5 * M, end=6 * M)
    assert got["value"].to_list() == want["value"].to_list() and got["metric"].unique().to_list() == ["value"]
    rows = [(t * M, "h_bucket", float(c * t), {"le": le}) for t in range(7)
            for le, c in (("0.1", 50), ("0.5", 90), ("+Inf", 100))]
    h = from_rows(rows)
    got = _eval("histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))", h, 6 * M, 6 * M)
    want = slo.latency_quantile(h, "h", 0.9, "5m", at=6 * M)
    assert got["value"].to_list() == pytest.approx(want["value"].to_list()) == [0.5]


def test_comparisons_filters_and_bool():
    f = _frame({(("a", "1"),): [1, 5], (("a", "2"),): [3, 3]})
    got = _eval("x > 2", f, M, M)
    assert got.select("metric", "a", "value").rows() == [("x", "1", 5.0), ("x", "2", 3.0)]  # name kept, own value
    got = _eval("x > bool 4", f, M, M)
    assert got.select("metric", "a", "value").rows() == [("value", "1", 1.0), ("value", "2", 0.0)]
    assert _eval("2 * x - 1", f, 0, 0)["value"].to_list() == [1.0, 5.0]
    assert _eval("-x", f, 0, 0)["value"].to_list() == [-1.0, -3.0]
    assert _eval("x / 0", f, 0, 0)["value"].to_list() == [np.inf, np.inf]
    with pytest.raises(ParseError, match="bool"):
        _eval("1 > 2", f, 0, 0)


def test_vector_matching_and_set_operators():
    a = _frame({(("r", "eu"), ("v", "v3")): [10], (("r", "us"), ("v", "v3")): [20]}, name="a")
    b = _frame({(("r", "eu"), ("v", "v1")): [2], (("r", "ap"), ("v", "v1")): [4]}, name="b")
    f = pl.concat([a, b])
    assert _eval("a / ignoring(v) b", f, 0, 0).select("r", "value").rows() == [("eu", 5.0)]
    assert _eval("a / on(r) b", f, 0, 0).columns == ["timestamp", "metric", "value", "r"]
    assert _eval("a / b", f, 0, 0).height == 0  # v differs: no match
    assert sorted(_eval("a and on(r) b", f, 0, 0)["r"]) == ["eu"]
    assert sorted(_eval("a unless on(r) b", f, 0, 0)["r"]) == ["us"]
    assert sorted(_eval("a or on(r) b", f, 0, 0)["r"]) == ["ap", "eu", "us"]
    assert _eval("count(a) or vector(0)", f, 0, 0)["value"].to_list() == [2.0]
    assert _eval("count(nothing) or vector(0)", f, 0, 0)["value"].to_list() == [0.0]
    many = pl.concat([a, _frame({(("r", "eu"), ("v", "v9")): [1]}, name="a")])
    with pytest.raises(DataError, match="many-to-many"):
        _eval("a / on(r) b", many, 0, 0)


def test_aggregations():
    f = _frame({(("r", "eu"), ("c", "x")): [1], (("r", "eu"), ("c", "y")): [np.nan],
                (("r", "us"), ("c", "x")): [4]})
    by = {r: v for r, v in _eval("max by (r) (x)", f, 0, 0).select("r", "value").rows()}
    assert by == {"eu": 1.0, "us": 4.0}  # NaN loses to any number, as in Prometheus
    assert np.isnan(_eval("sum by (r) (x)", f, 0, 0).filter(pl.col("r") == "eu")["value"][0])
    assert _eval("count without (c) (x)", f, 0, 0).select("r", "value").rows() == [("eu", 2.0), ("us", 1.0)]
    assert _eval("avg(x{r='us'})", f, 0, 0)["value"].to_list() == [4.0]
    assert _eval("min(x{c=~'x|z', r!='eu'})", f, 0, 0)["value"].to_list() == [4.0]


def test_range_functions_over_time_and_subqueries():
    vals = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    f = _frame({(("a", "1"),): vals})
    at = 7 * M
    win = vals[2:]  # [t - 5m, t] is closed: 6 samples
    assert _eval("avg_over_time(x[5m])", f, at, at)["value"][0] == pytest.approx(np.mean(win))
    assert _eval("stddev_over_time(x[5m])", f, at, at)["value"][0] == pytest.approx(np.std(win))
    assert _eval("max_over_time(x[5m])", f, at, at)["value"][0] == 9.0
    assert _eval("changes(x[5m])", f, at, at)["value"][0] == 5.0
    assert _eval("deriv(x[5m])", f, at, at)["value"][0] == pytest.approx(np.polyfit(np.arange(6) * 60, win, 1)[0])
    assert _eval("stddev_over_time(x[10m])", _frame({(("a", "1"),): [2.5] * 12}), 11 * M, 11 * M)["value"][0] == 0.0
    # a subquery evaluates its expression at multiples of its step
    got = _eval("max_over_time((x * 2)[4m:2m])", f, at, at)
    assert got["value"][0] == 2 * max(vals[4], vals[6])  # instants 4 and 6 min (and 3 min is not a multiple)


def test_recording_rules_are_evaluated_and_expanded(tmp_path):
    path = tmp_path / "r.yml"
    path.write_text("""
groups:
  - name: g
    rules:
      - record: job:x:double
        expr: 2 * x
      - record: job:x:mean
        expr: avg_over_time(job:x:double[2m])
      - alert: High
        expr: job:x:mean > 10
        for: 1m
        labels: {severity: SEV3}
        annotations: {runbook_url: "dwcpkit://runbooks/health-check"}
""")
    rules = alerts.load_rules(path)
    f = _frame({(("a", "1"),): [1, 2, 9, 9, 9, 9]})
    assert _eval("job:x:mean", f, 4 * M, 4 * M, rules=rules)["value"].to_list() == [18.0]
    text = alerts.expand("job:x:mean > 10", rules)
    assert text == "(avg_over_time((2 * x)[2m:1m])) > 10"
    assert _eval(text, f, 4 * M, 4 * M)["value"].to_list() == [18.0]
    fired = alerts.replay(f, path, start=0)
    assert fired.select("alert", "severity", "state").row(0) == ("High", "SEV3", "firing")
    with pytest.raises(ParseError, match="label matchers"):
        alerts.expand('job:x:mean{a="1"}', rules)


@pytest.mark.parametrize("expr,message", [
    ("topk(3, x)", "topk"),
    ("label_replace(x, 'a', 'b', 'c', 'd')", "label_replace"),
    ("x offset 5m", "offset"),
    ("a / on(r) group_left b", "group_left"),
    ("rate(x)", "range vector"),
    ("sum(x", "expected"),
])
def test_unsupported_promql_is_a_clear_parse_error(expr, message):
    with pytest.raises(ParseError, match=message):
        _promql.parse(expr)


def test_bad_rule_files_name_file_and_line(tmp_path):
    bad_yaml = tmp_path / "a.yml"
    bad_yaml.write_text("groups:\n  - name: g\n    rules:\n    - alert: A\n       expr: x\n")
    with pytest.raises(ParseError, match=r"a\.yml:5"):
        alerts.load_rules(bad_yaml)
    bad_expr = tmp_path / "b.yml"
    bad_expr.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: quantile(0.5, x)\n")
    with pytest.raises(ParseError, match=r"b\.yml:4: rule 'A'.*quantile"):
        alerts.load_rules(bad_expr)
    with pytest.raises(ParseError, match="cannot read"):
        alerts.load_rules(tmp_path / "missing.yml")
    no_groups = tmp_path / "c.yml"
    no_groups.write_text("rules: []\n")
    with pytest.raises(ParseError, match="groups"):
        alerts.load_rules(no_groups)


def test_shipped_rules_are_package_data():
    assert RULES.is_file() and TESTS.is_file()
    assert Path(alerts.__file__).resolve().parent.parent / "rules" == RULES.parent
