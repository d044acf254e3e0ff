"""RB-02 rollback decision: the sustained-degradation rule, the 8-step plan, the decision record.

The original (``scripts/production/auto-rollback.sh``, reference/dwcp-operations.md RB-02) checks
every 30 s while a deployment is in progress. When any threshold is breached (error rate > 1 %,
P99 > 100 ms, success rate < 99 %) it requires at least 120 s since the deployment started, then
takes 4 samples 30 s apart and rolls back when at least 75 % (3 of 4) are degraded.

:func:`degradation_checks` computes the three measurements on the check grid from telemetry
(PromQL semantics via :mod:`dwcpkit.sre.slo`); :func:`sustained_degradation` replays the rule over
them, a pure function of the checks table. Two of the original's defects are not copied: a
missing measurement is *missing*, not 0 (the original turned a failed scrape into a 0 % success
rate, which always looked degraded), and latencies are compared as numbers (the original used
bash integer comparison, which fails on decimals).

The telemetry has no request success rate of its own: ``success_pct`` is ``100 - error_pct`` of
the same counters, so at the default limits (1 % / 99 %) the two conditions coincide; both are
kept because the original has both and their limits are separate parameters.

:func:`rollback_plan` is the 8-step execution with the documented timings (pause 5 s, drain 30 s,
stop 10 s, switch 30 s, start 10 s, health poll up to 60 s, restore 5 s, resume 5 s: 2 min 35 s),
starting the *previous* version's service (the original hard-coded ``novacron-dwcp-v2`` while the
migration was v1 → v3). :func:`plan_timeline` lays it out in time; :func:`step_runner` returns the
callable a runbook hands to :func:`dwcpkit.runbook.action` (nothing here executes on import or
by default). :func:`decision_record` is the JSON the original wrote to
``/var/lib/novacron/rollback-state.json``.

Example
-------
>>> import polars as pl
>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 11, 2, 22, 50, tzinfo=timezone.utc)
>>> checks = pl.DataFrame({"timestamp": [t0 + timedelta(seconds=30 * k) for k in range(12)],
...                        "degraded": [False] * 6 + [True] * 6})
>>> r = sustained_degradation(checks, deployed_at=t0)
>>> r.rollback, r.decided_at.strftime("%H:%M:%S")
(True, '22:54:30')
"""

from __future__ import annotations

import math
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import polars as pl

from dwcpkit.errors import DataError, ParameterError, SchemaError
from dwcpkit.sre import slo
from dwcpkit.telemetry import schema

__all__ = [
    "RollbackThresholds",
    "ORIGINAL_THRESHOLDS",
    "METRICS",
    "degradation_checks",
    "Round",
    "SustainedResult",
    "sustained_degradation",
    "RollbackStep",
    "rollback_plan",
    "plan_timeline",
    "step_runner",
    "decision_record",
    "Decision",
    "decide",
    "RollbackReport",
    "evaluate",
    "load_data",
    "record_writer",
]

_ERRORS = "dwcp_v3_component_errors_total"
_OPS = "dwcp_v3_component_operations_total"
_LATENCY = "dwcp_v3_migration_latency_seconds"
#: Families :func:`degradation_checks` reads.
METRICS: tuple[str, ...] = (_ERRORS, _OPS, f"{_LATENCY}_bucket")


@dataclass(frozen=True)
class RollbackThresholds:
    """A check is degraded when ``error_pct > error_max_pct``, ``p99_s > p99_max_s`` or
    ``success_pct < success_min_pct``. Defaults: the original's error and success limits and
    dwcpkit's P99 cap (5 s, as the rollout gate; the original's 100 ms is below what moving GBs of
    memory over a WAN takes, so every check of the sample fleet would breach it)."""

    error_max_pct: float = 1.0
    p99_max_s: float = 5.0
    success_min_pct: float = 99.0

    def __post_init__(self) -> None:
        for name in ("error_max_pct", "p99_max_s", "success_min_pct"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise ParameterError(f"RollbackThresholds.{name}={v!r}; give a finite number >= 0")
        if self.error_max_pct > 100 or self.success_min_pct > 100:
            raise ParameterError("error_max_pct and success_min_pct are percentages (0-100)")


#: The original auto-rollback.sh limits (P99 100 ms).
ORIGINAL_THRESHOLDS = RollbackThresholds(1.0, 0.1, 99.0)


def _utc(value: datetime | str, name: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ParameterError(f"{name}={value!r} is not an ISO-8601 time; use e.g. '2026-11-02T22:50:00Z'") from None
    if not isinstance(value, datetime):
        raise ParameterError(f"{name} must be a datetime or ISO-8601 string, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ParameterError(f"{name}={value!r} has no time zone; times are UTC (add 'Z' or tzinfo=timezone.utc)")
    return value.astimezone(timezone.utc)


def degradation_checks(
    frame: pl.DataFrame,
    *,
    start: datetime | str,
    end: datetime | str,
    interval_s: int = 30,
    window: str = "2m",
    version: str = "v3",
    region: str | None = None,
    thresholds: RollbackThresholds = RollbackThresholds(),
) -> pl.DataFrame:
    """The auto-rollback measurements at every ``interval_s`` from ``start`` to ``end``.

    ``error_pct`` = 100 × errors / operations of ``version`` over ``window`` (all components);
    ``p99_s`` = P99 migration latency over ``window``; ``success_pct`` = 100 − ``error_pct``.
    ``region=None`` is the whole fleet. ``window`` must hold two samples at every check: with
    the sample data's 60 s scrape a 2-minute window is the shortest that does (the original's
    ``rate_1m`` needs a faster scrape).

    Returns one row per check: ``timestamp, error_pct, p99_s, success_pct, breaches`` (list of
    the conditions breached, e.g. ``["error_pct 3.2 > 1"]``), ``has_data`` (any measurement) and
    ``degraded`` (any breach). Missing measurements are null and breach nothing.

    Example
    -------
    >>> from dwcpkit.telemetry.schema import from_rows
    >>> ops = [(t * 60_000, _OPS, 100.0 * t, {"version": "v3"}) for t in range(6)]
    >>> err = [(t * 60_000, _ERRORS, 5.0 * t, {"version": "v3"}) for t in range(6)]
    >>> c = degradation_checks(from_rows(ops + err), start=240_000, end=300_000)
    >>> c["error_pct"].to_list(), c["degraded"].to_list()
    ([5.0, 5.0, 5.0], [True, True, True])
    """
    if not isinstance(frame, pl.DataFrame):
        raise SchemaError(f"degradation_checks: expected a canonical telemetry frame, got {type(frame).__name__}")
    if not isinstance(interval_s, int) or isinstance(interval_s, bool) or interval_s < 1:
        raise ParameterError(f"interval_s={interval_s!r}; give a positive number of seconds")
    frame = schema.normalize(frame, source="degradation_checks")
    t_start, t_end = (datetime.fromtimestamp(slo.eval_times(start, end, f"{interval_s}s")[i] / 1000, tz=timezone.utc)
                      for i in (0, -1))
    reach = timedelta(milliseconds=slo.parse_duration(window)) + timedelta(minutes=1)
    sel = frame.filter(pl.col("metric").is_in(list(METRICS)) & pl.col("timestamp").is_between(t_start - reach, t_end))
    if "version" in sel.columns:
        sel = sel.filter(pl.col("version") == version)
    if region is not None:
        if "region" not in sel.columns or sel.filter(pl.col("region") == region).height == 0:
            seen = sorted(sel["region"].drop_nulls().unique().to_list()) if "region" in sel.columns else []
            raise DataError(f"region {region!r} has no {version} samples; regions: {', '.join(seen) or 'none'}")
        sel = sel.filter(pl.col("region") == region)
    kw = dict(step=f"{interval_s}s", start=start, end=end)
    grid = slo.eval_times(start, end, f"{interval_s}s")
    base = pl.DataFrame({"timestamp": grid}).with_columns(pl.col("timestamp").cast(schema.TIMESTAMP_DTYPE))
    ops = sel.filter(pl.col("metric") == _OPS)
    if ops.height:
        err = slo.error_ratio(sel.filter(pl.col("metric") == _ERRORS), ops, window, **kw)
        err = err.filter(pl.col("value").is_finite()).select("timestamp", (100 * pl.col("value")).alias("error_pct"))
        base = base.join(err, on="timestamp", how="left")
    else:
        base = base.with_columns(pl.lit(None, dtype=pl.Float64).alias("error_pct"))
    buckets = sel.filter(pl.col("metric") == f"{_LATENCY}_bucket")
    if buckets.height:
        p99 = slo.latency_quantile(buckets, _LATENCY, 0.99, window, **kw)
        p99 = p99.filter(pl.col("value").is_not_nan()).select("timestamp", pl.col("value").alias("p99_s"))
        base = base.join(p99, on="timestamp", how="left")
    else:
        base = base.with_columns(pl.lit(None, dtype=pl.Float64).alias("p99_s"))
    base = base.with_columns((100.0 - pl.col("error_pct")).alias("success_pct"))
    t = thresholds
    conds = [
        (pl.col("error_pct") > t.error_max_pct,
         pl.format("error_pct {} > {}", pl.col("error_pct").round(3), pl.lit(f"{t.error_max_pct:g}"))),
        (pl.col("p99_s") > t.p99_max_s,
         pl.format("p99_s {} > {}", pl.col("p99_s").round(3), pl.lit(f"{t.p99_max_s:g}"))),
        (pl.col("success_pct") < t.success_min_pct,
         pl.format("success_pct {} < {}", pl.col("success_pct").round(3), pl.lit(f"{t.success_min_pct:g}"))),
    ]
    breaches = pl.concat_list([pl.when(c.fill_null(False)).then(txt) for c, txt in conds]).list.drop_nulls()
    return base.with_columns(
        breaches.alias("breaches"),
        pl.any_horizontal(pl.col("error_pct", "p99_s").is_not_null()).alias("has_data"),
    ).with_columns((pl.col("breaches").list.len() > 0).alias("degraded"))


@dataclass(frozen=True)
class Round:
    """One sampling round: started at the first breach after the warm-up, ``samples`` checks."""

    started_at: datetime
    sample_times: tuple[datetime, ...]
    degraded: int
    no_data: int
    fraction: float
    rollback: bool
    complete: bool = True

    def __str__(self) -> str:
        if not self.complete:
            return (f"round from {self.started_at:%H:%M:%S}: in progress, {self.degraded} of "
                    f"{len(self.sample_times)} samples degraded so far (data ends before the round does)")
        verdict = "ROLLBACK" if self.rollback else "not sustained, keep monitoring"
        extra = f", {self.no_data} without data" if self.no_data else ""
        return (f"round from {self.started_at:%H:%M:%S}: {self.degraded}/{len(self.sample_times)} samples degraded "
                f"({self.fraction:.0%}{extra}) -> {verdict}")


@dataclass(frozen=True)
class SustainedResult:
    """Outcome of :func:`sustained_degradation`.

    ``table`` is the checks table with a ``phase`` column: ``warm-up`` (breach before
    ``wait_s``), ``breach`` (breach that starts a round), ``sample`` (inside a round), ``clear``,
    ``after decision`` (the loop stops once it decided to roll back).
    """

    rollback: bool
    decided_at: datetime | None
    first_breach: datetime | None
    rounds: tuple[Round, ...]
    warmup_breaches: int
    table: pl.DataFrame = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """One line for reasons and reports."""
        p = self.params
        rule = (f"{p['samples']} samples {p['interval_s']} s apart, >= {p['min_ratio']:.0%} degraded, "
                f"after {p['wait_s']} s")
        if self.rollback:
            return f"sustained degradation: rollback decided at {self.decided_at:%Y-%m-%d %H:%M:%S} UTC ({rule})"
        if self.rounds and not self.rounds[-1].complete:
            return f"sampling round in progress since {self.rounds[-1].started_at:%H:%M:%S} ({rule})"
        if self.rounds:
            return f"{len(self.rounds)} sampling round(s), none sustained ({rule}): keep monitoring"
        if self.first_breach is not None:
            return f"breaches only during the {p['wait_s']} s warm-up ({self.warmup_breaches}); no sampling round ran"
        return "no threshold breached"


def sustained_degradation(
    checks: pl.DataFrame,
    *,
    deployed_at: datetime | str,
    wait_s: int = 120,
    samples: int = 4,
    interval_s: int = 30,
    min_ratio: float = 0.75,
) -> SustainedResult:
    """Replay the auto-rollback loop over ``checks`` (columns ``timestamp``, ``degraded``; optional
    ``has_data``), one row per check in time order, every ``interval_s``.

    At each check that is degraded: before ``deployed_at + wait_s`` nothing happens (warm-up);
    otherwise a round takes ``samples`` checks ``interval_s`` apart starting at that check and
    rolls back when ``degraded / samples >= min_ratio`` (a sample without data is not degraded:
    missing is not bad, it is unknown, and the round reports it). After an unsustained round
    monitoring resumes with the check after the round. The decision time is the round's last
    sample; checks before ``deployed_at`` are ignored. When the checks end inside a round (a live
    run between two samples) the round is reported with ``complete=False`` and no decision.

    Raises DataError when the checks are not ``interval_s`` apart.

    Example
    -------
    >>> from datetime import datetime, timedelta, timezone
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> c = pl.DataFrame({"timestamp": [t0 + timedelta(seconds=30 * k) for k in range(10)],
    ...                   "degraded": [False, False, False, False, True, False, True, False, False, False]})
    >>> r = sustained_degradation(c, deployed_at=t0)
    >>> r.rollback, [x.degraded for x in r.rounds]
    (False, [2])
    """
    for name, v in (("wait_s", wait_s), ("samples", samples), ("interval_s", interval_s)):
        if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name == "wait_s" else 1):
            raise ParameterError(f"{name}={v!r}; give a {'non-negative' if name == 'wait_s' else 'positive'} integer")
    if not 0.0 < float(min_ratio) <= 1.0:
        raise ParameterError(f"min_ratio={min_ratio!r}; give a fraction in (0, 1], e.g. 0.75")
    if not isinstance(checks, pl.DataFrame) or not {"timestamp", "degraded"} <= set(checks.columns):
        raise SchemaError("sustained_degradation: checks need columns 'timestamp' and 'degraded' "
                          "(see degradation_checks)")
    t0 = _utc(deployed_at, "deployed_at")
    table = checks.filter(pl.col("timestamp") >= t0).sort("timestamp")
    has_data = table["has_data"].to_list() if "has_data" in table.columns else [True] * table.height
    times = table["timestamp"].to_list()
    degraded = [bool(x) for x in table["degraded"].fill_null(False).to_list()]
    index = {t: i for i, t in enumerate(times)}
    phase = ["clear"] * len(times)
    rounds: list[Round] = []
    first_breach = decided = None
    warm = 0
    step = timedelta(seconds=interval_s)
    i = 0
    while i < len(times):
        t = times[i]
        if not degraded[i]:
            i += 1
            continue
        first_breach = first_breach or t
        if t - t0 < timedelta(seconds=wait_s):
            phase[i] = "warm-up"
            warm += 1
            i += 1
            continue
        want = [t + k * step for k in range(samples)]
        idx = [index.get(w) for w in want]
        if any(j is None for j in idx):
            if want[-1] <= times[-1]:
                raise DataError(f"checks are not {interval_s} s apart around {t:%H:%M:%S}; compute them with "
                                f"degradation_checks(interval_s={interval_s})")
            # the data ends inside the round: it is still running (a live run between samples)
            got = [j for j in idx if j is not None]
            n_bad = sum(degraded[j] for j in got)
            rounds.append(Round(t, tuple(want), n_bad, sum(not has_data[j] for j in got), n_bad / samples,
                                False, complete=False))
            for j in got:
                phase[j] = "sample"
            phase[got[0]] = "breach"
            break
        n_bad = sum(degraded[j] for j in idx)
        n_none = sum(not has_data[j] for j in idx)
        frac = n_bad / samples
        rb = frac >= float(min_ratio)
        rounds.append(Round(t, tuple(want), n_bad, n_none, frac, rb))
        for j in idx:
            phase[j] = "sample"
        phase[idx[0]] = "breach"
        if rb:
            decided = want[-1]
            break
        i = idx[-1] + 1
    if decided is not None:
        phase = [p if t <= decided else "after decision" for p, t in zip(phase, times)]
    params = {"wait_s": wait_s, "samples": samples, "interval_s": interval_s, "min_ratio": float(min_ratio)}
    out = table.with_columns(pl.Series("phase", phase, dtype=pl.String))
    return SustainedResult(decided is not None, decided, first_breach, tuple(rounds), warm, out, params)


# ---------------------------------------------------------------------------------------------
# the decision
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """The rollback decision: verdict ``level`` and ``label`` (ROLLBACK / WATCH / KEEP), reasons."""

    level: str
    label: str
    rollback: bool
    reasons: tuple[str, ...]
    decided_at: datetime | None


def decide(result: SustainedResult, *, mode: Literal["auto", "manual", "emergency"] = "auto",
           reason: str = "", at: datetime | None = None) -> Decision:
    """Fold the rule's result and the operator's mode into the decision.

    ``auto``: ROLLBACK (ACT) when the rule fired, WATCH (WARN) when thresholds were breached but
    not for long enough, KEEP (OK) otherwise. ``manual`` / ``emergency``: the operator asked for
    a rollback, so ROLLBACK (ACT) whatever the telemetry says (its result is kept as evidence);
    they need a ``reason``. ``at`` is the decision time for manual modes (default: now).

    >>> from datetime import datetime, timezone
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> r = sustained_degradation(pl.DataFrame({"timestamp": [t0], "degraded": [False]}), deployed_at=t0)
    >>> decide(r).label, decide(r, mode="manual", reason="bad config").label
    ('KEEP', 'ROLLBACK')
    """
    if mode not in ("auto", "manual", "emergency"):
        raise ParameterError(f"mode={mode!r}; use 'auto', 'manual' or 'emergency'")
    if mode != "auto":
        if not reason.strip():
            raise ParameterError(f"mode={mode!r} needs a reason (what the operator saw), "
                                 "e.g. reason='corrupt VM state'")
        when = at or datetime.now(timezone.utc)
        skip = "; post-rollback validation skipped" if mode == "emergency" else ""
        return Decision("ACT", "ROLLBACK", True,
                        (f"{mode} rollback requested: {reason.strip()}{skip}", f"telemetry: {result.summary}"), when)
    reasons = [result.summary] + [str(r) for r in result.rounds]
    if result.rollback:
        return Decision("ACT", "ROLLBACK", True, tuple(reasons), result.decided_at)
    if result.first_breach is not None:
        return Decision("WARN", "WATCH", False, tuple(reasons), None)
    return Decision("OK", "KEEP", False, tuple(reasons), None)


# ---------------------------------------------------------------------------------------------
# the 8-step plan
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackStep:
    """One step of the rollback plan: documented duration, and how to execute it.

    ``commands`` are argv lists run without a shell; ``http`` is ``(method, path)`` against the
    control API; ``poll`` repeats the HTTP call until it answers 2xx (``(tries, every_s)``).
    A step with neither is manual.
    """

    n: int
    title: str
    seconds: float
    commands: tuple[tuple[str, ...], ...] = ()
    http: tuple[str, str] | None = None
    poll: tuple[int, float] | None = None
    changes_system: bool = True

    @property
    def detail(self) -> str:
        """What the step runs, in words."""
        if self.commands:
            return " && ".join(" ".join(c) for c in self.commands)
        if self.http:
            extra = f" (every {self.poll[1]:g} s, up to {self.poll[0]} times)" if self.poll else ""
            return f"{self.http[0]} {self.http[1]}{extra}"
        return "manual step"


def rollback_plan(previous_version: str = "v1", current_version: str = "v3", *,
                  service_prefix: str = "novacron-dwcp-", root: str = "/opt/novacron",
                  config_dir: str = "/etc/novacron", validate: bool = True) -> list[RollbackStep]:
    """The RB-02 8-step rollback with the documented timings (2 min 35 s in total).

    Starts ``{service_prefix}{previous_version}`` (not the original's hard-coded v2). With
    ``validate`` a 9th step, the post-rollback validation (wait 60 s, re-check the thresholds), is
    appended; emergency mode skips it.

    >>> [s.seconds for s in rollback_plan(validate=False)]
    [5, 30, 10, 30, 10, 60, 5, 5]
    """
    for name, v in (("previous_version", previous_version), ("current_version", current_version)):
        if not v or any(ch in v for ch in "/ \t\n"):
            raise ParameterError(f"{name}={v!r} must be a plain version name such as 'v1'")
    if previous_version == current_version:
        raise ParameterError(f"previous_version and current_version are both {current_version!r}: nothing to roll back")
    prev, cur = previous_version, current_version
    steps = [
        RollbackStep(1, "Pause deployments", 5, http=("POST", "/deployment/pause")),
        RollbackStep(2, "Drain traffic (30 s timeout)", 30, http=("POST", "/traffic/drain")),
        RollbackStep(3, f"Stop {service_prefix}{cur}", 10, commands=(("systemctl", "stop", f"{service_prefix}{cur}"),)),
        RollbackStep(4, f"Point {root}/current at {prev} and restore its config", 30, commands=(
            ("ln", "-sfn", f"{root}/versions/{prev}", f"{root}/current"),
            ("cp", f"{config_dir}/config.{prev}.yaml", f"{config_dir}/config.yaml"))),
        RollbackStep(5, f"Start {service_prefix}{prev}", 10,
                     commands=(("systemctl", "start", f"{service_prefix}{prev}"),)),
        RollbackStep(6, "Poll /health until healthy", 60, http=("GET", "/health"), poll=(12, 5.0),
                     changes_system=False),
        RollbackStep(7, "Restore traffic", 5, http=("POST", "/traffic/restore")),
        RollbackStep(8, "Resume deployments", 5, http=("POST", "/deployment/resume")),
    ]
    if validate:
        steps.append(RollbackStep(9, "Post-rollback validation: wait 60 s, re-check the thresholds", 60,
                                  changes_system=False))
    return steps


def plan_timeline(steps: Sequence[RollbackStep], start: datetime | str) -> pl.DataFrame:
    """The plan laid out from ``start``: ``step, title, start, end, seconds, detail`` (documented timings).

    >>> t = plan_timeline(rollback_plan(validate=False), "2026-11-02T23:00:00Z")
    >>> t["end"].max().strftime("%H:%M:%S")
    '23:02:35'
    """
    t = _utc(start, "start")
    rows = []
    for s in steps:
        end = t + timedelta(seconds=s.seconds)
        rows.append({"step": s.n, "title": s.title, "start": t, "end": end, "seconds": float(s.seconds),
                     "detail": s.detail})
        t = end
    return pl.DataFrame(rows, schema={"step": pl.Int64, "title": pl.String, "start": schema.TIMESTAMP_DTYPE,
                                      "end": schema.TIMESTAMP_DTYPE, "seconds": pl.Float64, "detail": pl.String})


def _http(api_base: str, method: str, path: str, timeout: float) -> str:
    url = api_base.rstrip("/") + path
    req = urllib.request.Request(url, method=method, data=b"" if method != "GET" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - URL is the operator's API base
            return f"{method} {url}: HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeError(f"{method} {url}: {getattr(exc, 'reason', exc)}") from None


def step_runner(step: RollbackStep, *, api_base: str, timeout: float = 10.0,
                sleep: Callable[[float], None] | None = None) -> Callable[[], str] | None:
    """The callable that executes ``step`` (for :func:`dwcpkit.runbook.action`), ``None`` for a manual step.

    Commands run without a shell, each with ``timeout``; a non-zero exit raises. HTTP calls go to
    ``api_base`` + path with ``timeout``; a poll retries ``tries`` times ``every_s`` apart and
    raises if the API never answers 2xx. Nothing runs until the callable is called.
    """
    import time

    if not api_base.startswith(("http://", "https://")):
        raise ParameterError(f"api_base={api_base!r} must be an http(s) URL, e.g. http://localhost:8080/api/v3")
    pause = sleep or time.sleep
    if step.commands:
        def run_commands() -> str:
            out = []
            for argv in step.commands:
                proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
                if proc.returncode != 0:
                    msg = (proc.stderr or proc.stdout).strip()[:300]
                    raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}: {msg}")
                out.append(f"{argv[0]}: ok")
            return "; ".join(out)
        return run_commands
    if step.http is not None:
        method, path = step.http
        if step.poll is None:
            return lambda: _http(api_base, method, path, timeout)

        def run_poll() -> str:
            tries, every = step.poll  # type: ignore[misc]
            last = ""
            for k in range(tries):
                try:
                    return _http(api_base, method, path, timeout) + f" after {k + 1} poll(s)"
                except RuntimeError as exc:
                    last = str(exc)
                    if k + 1 < tries:
                        pause(every)
            raise RuntimeError(f"not healthy after {tries} polls: {last}")
        return run_poll
    return None


def decision_record(
    decision: Decision,
    result: SustainedResult,
    *,
    mode: str,
    reason: str,
    current_version: str,
    previous_version: str,
    deployed_at: datetime | str,
    thresholds: RollbackThresholds,
    checks: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """The decision record (the original's ``rollback-state.json``), JSON-serialisable.

    Holds the decision, mode, reason, versions, deployment time, thresholds, the rule's
    parameters and rounds, and a metrics snapshot (the last check up to the decision).
    """
    snap: dict[str, Any] = {}
    if checks is not None and checks.height:
        sel = checks if decision.decided_at is None else checks.filter(pl.col("timestamp") <= decision.decided_at)
        if sel.height:
            row = sel.sort("timestamp").row(-1, named=True)
            snap = {k: (None if row.get(k) is None else round(float(row[k]), 6))
                    for k in ("error_pct", "p99_s", "success_pct")}
            snap["at"] = row["timestamp"].isoformat()
    return {
        "decision": decision.label,
        "rollback": decision.rollback,
        "mode": mode,
        "reason": reason or "; ".join(decision.reasons[:1]),
        "current_version": current_version,
        "previous_version": previous_version,
        "deployed_at": _utc(deployed_at, "deployed_at").isoformat(),
        "decided_at": decision.decided_at.isoformat() if decision.decided_at else None,
        "thresholds": asdict(thresholds),
        "rule": result.params,
        "rounds": [{"started_at": r.started_at.isoformat(), "degraded": r.degraded, "samples": len(r.sample_times),
                    "no_data": r.no_data, "rollback": r.rollback} for r in result.rounds],
        "metrics_snapshot": snap,
    }



@dataclass
class RollbackReport:
    """Everything the rollback-decision runbook shows."""

    deployed_at: datetime
    end: datetime
    checks: pl.DataFrame
    result: SustainedResult
    decision: Decision
    plan: list[RollbackStep]
    timeline: pl.DataFrame
    record: dict[str, Any]
    windows: pl.DataFrame  # warm-up and sampling rounds, for charts (kind, start, end)


def evaluate(
    frame: pl.DataFrame,
    *,
    deployed_at: datetime | str,
    monitor_minutes: int = 15,
    context_minutes: int = 10,
    mode: Literal["auto", "manual", "emergency"] = "auto",
    reason: str = "",
    region: str | None = None,
    current_version: str = "v3",
    previous_version: str = "v1",
    thresholds: RollbackThresholds = RollbackThresholds(),
    wait_s: int = 120,
    samples: int = 4,
    interval_s: int = 30,
    min_ratio: float = 0.75,
    window: str = "2m",
) -> RollbackReport:
    """The RB-02 decision for a deployment at ``deployed_at``, monitored for ``monitor_minutes``.

    The monitoring window ends at ``deployed_at + monitor_minutes`` or at the newest sample,
    whichever is first (a live run stops at "now"). Checks are also computed ``context_minutes``
    before the deployment, for the charts; the rule ignores them. The plan's timeline starts at
    the decision (auto mode) or at the end of the window (manual / emergency; emergency skips the
    post-rollback validation).

    Example
    -------
    >>> from dwcpkit.telemetry.sources import load
    >>> r = evaluate(load("sample"), deployed_at="2026-11-02T22:54:00Z")   # doctest: +SKIP
    >>> r.decision.label                                                   # doctest: +SKIP
    'ROLLBACK'
    """
    t0 = _utc(deployed_at, "deployed_at")
    if not isinstance(monitor_minutes, int) or isinstance(monitor_minutes, bool) or monitor_minutes < 1:
        raise ParameterError(f"monitor_minutes={monitor_minutes!r}; give a positive integer")
    if mode not in ("auto", "manual", "emergency"):
        raise ParameterError(f"mode={mode!r}; use 'auto', 'manual' or 'emergency'")
    if mode != "auto" and not reason.strip():
        raise ParameterError(f"mode={mode!r} needs a reason (what the operator saw), e.g. reason='corrupt VM state'")
    if frame.height == 0:
        raise DataError("no telemetry: load the deployment window first")
    newest = frame["timestamp"].max()
    if newest < t0:
        raise DataError(f"the data ends at {newest:%Y-%m-%d %H:%M} UTC, before the deployment at "
                        f"{t0:%Y-%m-%d %H:%M} UTC; check deployed_at and the source")
    step = timedelta(seconds=interval_s)
    end = min(t0 + timedelta(minutes=monitor_minutes), newest)
    end = t0 + step * int((end - t0) / step)
    checks = degradation_checks(frame, start=t0 - timedelta(minutes=context_minutes), end=end, interval_s=interval_s,
                                window=window, version=current_version, region=region, thresholds=thresholds)
    result = sustained_degradation(checks, deployed_at=t0, wait_s=wait_s, samples=samples, interval_s=interval_s,
                                   min_ratio=min_ratio)
    decision = decide(result, mode=mode, reason=reason, at=end)
    plan = rollback_plan(previous_version, current_version, validate=mode != "emergency")
    start = decision.decided_at or end
    timeline = plan_timeline(plan, start)
    record = decision_record(decision, result, mode=mode, reason=reason, current_version=current_version,
                             previous_version=previous_version, deployed_at=t0, thresholds=thresholds, checks=checks)
    rows = [{"kind": "warm-up", "start": t0, "end": t0 + timedelta(seconds=wait_s)}]
    rows += [{"kind": "sampling round", "start": r.started_at, "end": r.sample_times[-1]} for r in result.rounds]
    windows = pl.DataFrame(rows, schema={"kind": pl.String, "start": schema.TIMESTAMP_DTYPE,
                                         "end": schema.TIMESTAMP_DTYPE})
    return RollbackReport(t0, end, checks, result, decision, plan, timeline, record, windows)


def load_data(source: str, *, deployed_at: datetime | str, monitor_minutes: int = 15,
              context_minutes: int = 10) -> pl.DataFrame:
    """Load what :func:`evaluate` needs: :data:`METRICS` from ``context_minutes`` before the
    deployment to the end of the monitoring window (from any source)."""
    from dwcpkit.sre.window import load_window

    t0 = _utc(deployed_at, "deployed_at")
    end = t0 + timedelta(minutes=monitor_minutes)
    if _kind(source) == "prometheus":
        end = min(end, datetime.now(timezone.utc))
    return load_window(source, METRICS, at=end.isoformat().replace("+00:00", "Z"),
                       lookback=end - t0 + timedelta(minutes=context_minutes))


def _kind(source: str) -> str:
    from dwcpkit.telemetry.sources import resolve

    return resolve(source).kind


def record_writer(record: Mapping[str, Any], path: str) -> Callable[[], str]:
    """A callable writing the decision record as JSON to ``path`` (for a dry-run ``action``)."""
    import json
    from pathlib import Path

    def write() -> str:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        return f"wrote {p}"
    return write
