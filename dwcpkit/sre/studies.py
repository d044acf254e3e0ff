"""Protocol studies that meet telemetry or charts: the PBA backtest study and the study figures.

:func:`bandwidth_study` backtests the PBA predictors (:mod:`dwcpkit.protocol.pba`) on measured
throughput series — the sample fleet's ``dwcp_v3_throughput_bytes_per_second`` by default, or
any source :func:`load_throughput` reads — and on seeded synthetic WAN traces, with a rolling
origin (every sample after ``warmup`` is an origin, horizons 1…``horizon``). It reports the
table of :func:`dwcpkit.protocol.pba.summarize` (MAE, RMSE, MAPE, WAPE, interval coverage, MAE
improvement over the original's fallback), the same pooled per horizon, and forecast-vs-actual
series for one measured trace. :meth:`BandwidthStudy.assessment` judges it against the target
(a predictor cutting the fallback's MAE by ``target_pct``, 20 % by default):

* OK when, on every data set, some predictor reaches the target **averaged over horizons
  1…h**;
* WARN otherwise (the reasons say where it is met: at h = 1 only, or nowhere).

The ``*_figures`` functions draw the studies' charts (Altair via :mod:`dwcpkit.charts`), from
tables that are already aggregated (a sweep point, a run, a horizon per row), so they stay
small; save them with :func:`dwcpkit.charts.save_all`.

Example
-------
>>> import numpy as np, polars as pl
>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
>>> y = 1e9 + 1e7 * np.cumsum(np.random.default_rng(0).normal(size=400))
>>> frame = pl.DataFrame({"timestamp": [t0 + timedelta(minutes=i) for i in range(400)],
...                       "metric": "m", "value": y, "region": "eu"})
>>> s = bandwidth_study(frame, horizon=3, warmup=60, synthetic=1, synthetic_samples=400)
>>> s.summary["label"].unique().sort().to_list()
['sample', 'synthetic']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from dwcpkit.errors import DataError, ParameterError
from dwcpkit.protocol import pba
from dwcpkit.protocol.sweeps import SWEEP_VARIABLES, Assessment

__all__ = [
    "THROUGHPUT_METRIC",
    "UNITS",
    "load_throughput",
    "BandwidthStudy",
    "bandwidth_study",
    "bandwidth_figures",
    "migration_figures",
    "placement_figures",
    "consensus_figures",
]

THROUGHPUT_METRIC = "dwcp_v3_throughput_bytes_per_second"
#: Display scale and unit per data-set label: measured bytes/s shown in MB/s; synthetic traces are Mbit/s.
UNITS: dict[str, tuple[float, str]] = {"sample": (1e6, "MB/s"), "synthetic": (1.0, "Mbit/s")}
_SUMS = ["n", "sum_abs", "sum_sq", "sum_abs_actual", "covered", "n_interval"]


def load_throughput(source: str = "sample", *, start: str | None = None, end: str | None = None,
                    metric: str = THROUGHPUT_METRIC) -> pl.DataFrame:
    """The throughput gauge from any telemetry source, one series per label set.

    Raises :class:`~dwcpkit.errors.DataError` when the source has no such samples (check the
    metric name, or widen ``start``/``end``).

    >>> load_throughput("sample")["metric"].unique().to_list()
    ['dwcp_v3_throughput_bytes_per_second']
    """
    from dwcpkit.telemetry.sources import load

    frame = load(source, metrics=[metric], start=start or None, end=end or None)
    frame = frame.filter(pl.col("metric") == metric).drop_nulls("value")
    if frame.height == 0:
        raise DataError(f"{source!r} has no samples of {metric!r} in the window; check the metric name and "
                        "the start/end times (a backtest needs a few hundred samples per series)")
    return frame


def _split(frame: pl.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Traces (values) and their timestamps, keyed like :func:`pba.traces_from_frame`."""
    keep = [c for c in frame.columns if c not in ("timestamp", "value") and frame[c].null_count() < frame.height]
    f = frame.select("timestamp", "value", *keep)
    traces = pba.traces_from_frame(f)
    by = keep
    varying = [c for c in by if f[c].n_unique() > 1]
    times: dict[str, np.ndarray] = {}
    for key, sub in f.sort([*by, "timestamp"], maintain_order=True).group_by(by, maintain_order=True):
        vals = dict(zip(by, key))
        times[",".join(f"{c}={vals[c]}" for c in varying) or "trace"] = sub["timestamp"].to_numpy()
    return traces, times


@dataclass(frozen=True)
class BandwidthStudy:
    """Result of :func:`bandwidth_study` (tables in the data's own units; see :data:`UNITS`)."""

    backtest: pl.DataFrame
    summary: pl.DataFrame
    by_horizon: pl.DataFrame
    forecast: pl.DataFrame
    traces: dict[str, int]
    config: dict[str, Any]
    target_pct: float
    best: dict[str, str] = field(default_factory=dict)

    def table(self) -> str:
        """The summary as text, one block per data set, MAE/RMSE in display units."""
        blocks = []
        for label in self.summary["label"].unique(maintain_order=True).to_list():
            scale, unit = UNITS.get(label, (1.0, ""))
            blocks.append(pba.format_table(self.summary.filter(pl.col("label") == label), scale=scale, unit=unit))
        return "\n\n".join(blocks)

    def what_was_run(self) -> str:
        """One paragraph: traces, lengths, horizons, origins."""
        c = self.config
        meas = [k for k in self.traces if not k.startswith("synthetic-")]
        syn = [k for k in self.traces if k.startswith("synthetic-")]
        parts = [f"rolling origin, horizons 1-{c['horizon']}, every origin after the first {c['warmup']} samples, "
                 f"{c['level']:.0%} intervals from each predictor's own recent errors"]
        if meas:
            parts.append(f"measured: {len(meas)} series x {min(self.traces[k] for k in meas):,}"
                         f"-{max(self.traces[k] for k in meas):,} samples")
        if syn:
            parts.append(f"synthetic: {len(syn)} seeded traces x {self.traces[syn[0]]:,} samples "
                         f"(seeds {c['seed']}-{c['seed'] + len(syn) - 1})")
        return "; ".join(parts)

    def assessment(self) -> Assessment:
        """OK when some predictor meets the target averaged over horizons on every data set, else WARN."""
        target = self.target_pct / 100.0
        reasons: list[str] = []
        met_avg: dict[str, bool] = {}
        evidence: dict[str, Any] = {"target_pct": self.target_pct, "horizon": self.config["horizon"]}
        for label in self.summary["label"].unique(maintain_order=True).to_list():
            s = self.summary.filter((pl.col("label") == label) & (pl.col("predictor") != "fallback"))
            if s.height == 0 or "vs_fallback" not in s.columns:
                raise DataError(f"no predictor to compare with the fallback on {label!r}")
            best = s.sort("vs_fallback", descending=True, maintain_order=True).row(0, named=True)
            best1 = s.sort("vs_fallback_h1", descending=True, maintain_order=True).row(0, named=True)
            avg, h1 = float(best["vs_fallback"]), float(best1["vs_fallback_h1"])
            met_avg[label] = avg >= target
            where = ("on average" if avg >= target else "at h = 1 only" if h1 >= target else "nowhere")
            reasons.append(
                f"{label}: best on average {best['predictor']} cuts the fallback's MAE by {100 * avg:+.1f} % over "
                f"h = 1-{self.config['horizon']}; best at h = 1 {best1['predictor']} {100 * h1:+.1f} %: "
                f"{self.target_pct:g} % target met {where}")
            evidence[label] = {"best_avg": best["predictor"], "vs_fallback_avg_pct": round(100 * avg, 2),
                               "best_h1": best1["predictor"], "vs_fallback_h1_pct": round(100 * h1, 2)}
        ok = all(met_avg.values())
        level, label = ("OK", "target met") if ok else ("WARN", "target not met on average")
        summary = (f"PBA backtest ({self.what_was_run()}): the {self.target_pct:g} % MAE improvement over the "
                   f"fallback is {'met' if ok else 'not met'} on average on "
                   f"{'every data set' if ok else ', '.join(k for k, v in met_avg.items() if not v)}")
        return Assessment(level, label, reasons, summary, evidence)


def _by_horizon(bt: pl.DataFrame) -> pl.DataFrame:
    c = pl.col
    per = bt.group_by(["label", "predictor", "horizon"], maintain_order=True).agg([c(k).sum() for k in _SUMS])
    per = per.with_columns(
        mae=c("sum_abs") / c("n"), rmse=(c("sum_sq") / c("n")).sqrt(),
        wape=100 * c("sum_abs") / c("sum_abs_actual"),
        coverage=pl.when(c("n_interval") > 0).then(c("covered") / c("n_interval")).otherwise(None),
    )
    base = per.filter(c("predictor") == "fallback").select("label", "horizon", c("mae").alias("_b"))
    return (per.join(base, on=["label", "horizon"], how="left")
            .with_columns(vs_fallback_pct=100 * (1 - c("mae") / c("_b")))
            .drop("_b", *_SUMS).sort(["label", "predictor", "horizon"], maintain_order=True))


def _forecast_frame(y: np.ndarray, ts: np.ndarray, predictors: Sequence[pba.Predictor], horizon: int,
                    hours: float, scale: float) -> pl.DataFrame:
    n = y.size
    keep = min(n, max(2, int(round(hours * 60))))  # one-minute samples
    lo = n - keep
    out = [pl.DataFrame({"timestamp": ts[lo:], "value": y[lo:] / scale, "line": "actual",
                         "horizon": "actual"})]
    for p in predictors:
        F = p.rolling_point_forecasts(y, horizon)
        for h in sorted({1, horizon}):
            # forecast made at origin t for t + h, drawn at the target time
            t = np.arange(max(lo - h, 0), n - h)
            out.append(pl.DataFrame({"timestamp": ts[t + h], "value": F[t, h - 1] / scale, "line": p.name,
                                     "horizon": f"h = {h}"}))
    return pl.concat(out).with_columns(pl.col("timestamp").cast(pl.Datetime("ms", "UTC")))


def bandwidth_study(
    frame: pl.DataFrame | None,
    *,
    horizon: int = 15,
    warmup: int = 240,
    level: float = 0.8,
    synthetic: int = 3,
    synthetic_samples: int = 10080,
    seed: int = 0,
    predictors: Sequence[pba.Predictor] | None = None,
    chart_series: str | None = None,
    chart_hours: float = 4.0,
    target_pct: float = 20.0,
) -> BandwidthStudy:
    """Backtest the PBA predictors on measured throughput and on synthetic traces.

    Parameters
    ----------
    frame : polars.DataFrame or None
        Canonical telemetry of one throughput gauge (:func:`load_throughput`), split into one
        trace per label set, ordered by time; ``None`` = synthetic traces only.
    horizon, warmup, level
        As in :func:`dwcpkit.protocol.pba.backtest`.
    synthetic, synthetic_samples, seed
        Number and length of :func:`dwcpkit.protocol.pba.synthetic_traces` (0 = none), seeds
        ``seed``…``seed + synthetic − 1``.
    predictors
        Default :func:`dwcpkit.protocol.pba.default_predictors` (fallback first).
    chart_series, chart_hours
        Measured trace drawn as forecast vs actual (default: the one with the highest mean
        over the drawn window, so not a retired, all-zero series) and how many hours of its
        end to draw (one-minute samples assumed).
    target_pct
        MAE improvement over the fallback the assessment asks for.

    Returns
    -------
    BandwidthStudy
    """
    if synthetic < 0:
        raise ParameterError(f"synthetic (number of traces) must be >= 0, got {synthetic}")
    if not (0 < target_pct < 100):
        raise ParameterError(f"target_pct must be in (0, 100), got {target_pct}")
    preds = list(predictors) if predictors is not None else pba.default_predictors(horizon=horizon)
    if "fallback" not in [p.name for p in preds]:
        raise ParameterError("the predictors must include the original's 'fallback' (the baseline)")
    tables, lengths = [], {}
    forecast = pl.DataFrame()
    best: dict[str, str] = {}
    if frame is not None:
        traces, times = _split(frame)
        tables.append(pba.backtest(traces, preds, horizon=horizon, level=level, warmup=warmup, label="sample"))
        lengths.update({k: int(v.size) for k, v in traces.items()})
    if synthetic:
        syn = pba.synthetic_traces(synthetic, synthetic_samples, seed=seed)
        tables.append(pba.backtest(syn, preds, horizon=horizon, level=level, warmup=warmup, label="synthetic"))
        lengths.update({k: int(v.size) for k, v in syn.items()})
    if not tables:
        raise ParameterError("nothing to backtest: give a telemetry frame or synthetic > 0")
    bt = pl.concat(tables)
    summary = pba.summarize(bt)
    for label in summary["label"].unique(maintain_order=True).to_list():
        s = summary.filter((pl.col("label") == label) & (pl.col("predictor") != "fallback"))
        if s.height:
            best[label] = s.sort("vs_fallback", descending=True, maintain_order=True)["predictor"][0]
    if frame is not None:
        keep = max(2, int(round(chart_hours * 60)))
        name = chart_series or max(traces, key=lambda k: (float(np.mean(traces[k][-keep:])), k))
        if name not in traces:
            raise ParameterError(f"chart_series {name!r} is not one of the series: {', '.join(traces)}")
        chosen = [p for p in preds if p.name in ("fallback", best.get("sample", "fallback"))]
        forecast = _forecast_frame(traces[name], times[name], chosen, horizon, chart_hours,
                                   UNITS["sample"][0]).with_columns(series=pl.lit(name))
    config = {"horizon": horizon, "warmup": warmup, "level": level, "synthetic": synthetic,
              "synthetic_samples": synthetic_samples, "seed": seed, "chart_series": forecast["series"][0]
              if forecast.height else None}
    return BandwidthStudy(bt, summary, _by_horizon(bt), forecast, lengths, config, float(target_pct), best)


# =================================================================================================
# figures
# =================================================================================================


def bandwidth_figures(study: BandwidthStudy) -> dict[str, Any]:
    """``forecast`` (measured series vs the fallback's and the best predictor's forecasts at
    h = 1 and h = max), ``improvement`` (MAE improvement over the fallback by horizon, with the
    target) and ``mae`` (MAE by horizon), per data set."""
    import altair as alt

    from dwcpkit import charts

    out: dict[str, Any] = {}
    f = study.forecast
    if f.height:
        panels = []
        for h in [x for x in f["horizon"].unique(maintain_order=True).to_list() if x != "actual"]:
            sub = f.filter(pl.col("horizon").is_in(["actual", h])).select(
                "timestamp", pl.col("value").round(2), "line")  # small spec: only what is drawn
            chart = charts.time_series(sub, color="line", height=150, y_title="MB/s",
                                       title=f"{f['series'][0]}: throughput vs forecast made {h} min earlier (MB/s)")
            panels.append(chart.encode(y=alt.Y("value:Q", title="MB/s", scale=alt.Scale(zero=False))))
        out["forecast"] = charts.stack(panels)
    bh = study.by_horizon
    imp, mae = [], []
    for label in bh["label"].unique(maintain_order=True).to_list():
        sub = bh.filter(pl.col("label") == label).select("predictor", "horizon", pl.col("vs_fallback_pct").round(3),
                                                         "mae")
        unit = UNITS.get(label, (1.0, ""))[1]
        imp.append(charts.line(sub.filter(pl.col("predictor") != "fallback"), x="horizon", y="vs_fallback_pct",
                               color="predictor", reference=study.target_pct, height=180,
                               title=f"{label}: MAE improvement over the fallback by horizon (%; rule = "
                                     f"{study.target_pct:g} % target)",
                               x_title="horizon (samples = minutes ahead)", y_title="1 - MAE / MAE(fallback) (%)"))
        scale = UNITS.get(label, (1.0, ""))[0]
        mae.append(charts.line(sub.select("predictor", "horizon", (pl.col("mae") / scale).round(4)), x="horizon", y="mae", color="predictor",
                               height=180, title=f"{label}: mean absolute error by horizon ({unit})",
                               x_title="horizon (samples = minutes ahead)", y_title=f"MAE ({unit})"))
    out["improvement"] = alt.vconcat(*imp)
    out["mae"] = alt.vconcat(*mae)
    return out


_LOG_X = {"memory_gib", "dirty_rate_mbps", "rtt_ms", "loss_pct", "streams"}


def migration_figures(sweep: pl.DataFrame, *, downtime_budget_s: float | None = None) -> dict[str, Any]:
    """One figure per swept variable: total time and downtime (log scales) of v1 and v3;
    points that did not converge (forced stop-and-copy) are drawn as crosses; a dashed rule
    marks the downtime budget."""
    import altair as alt

    out: dict[str, Any] = {}
    data = sweep.with_columns(pl.when(pl.col("converged")).then(pl.lit("converged"))
                              .otherwise(pl.lit("did not converge")).alias("outcome"))
    shape = alt.Shape("outcome:N", title=None, scale=alt.Scale(domain=["converged", "did not converge"],
                                                               range=["circle", "cross"]))
    color = alt.Color("version:N", scale=alt.Scale(domain=["v1", "v3"], range=["#cf222e", "#0969da"]))
    for var in data["variable"].unique(maintain_order=True).to_list():
        sub = data.filter(pl.col("variable") == var).select(
            "version", "value", "rounds", "outcome", pl.col("total_time_s").round(4),
            pl.col("downtime_s").clip(lower_bound=1e-4).round(5))
        xs = alt.Scale(type="log") if var in _LOG_X else alt.Scale(zero=False)
        x = alt.X("value:Q", title=SWEEP_VARIABLES.get(var, var), scale=xs)
        panels = []
        for col, title in (("total_time_s", "total migration time (s, log)"), ("downtime_s", "downtime (s, log)")):
            base = alt.Chart(sub, width=300, height=200, title=title)
            layer = [base.mark_line().encode(x=x, y=alt.Y(f"{col}:Q", scale=alt.Scale(type="log"), title="s"),
                                             color=color),
                     base.mark_point(size=70, filled=True).encode(
                         x=x, y=alt.Y(f"{col}:Q"), color=color, shape=shape,
                         tooltip=["version:N", "value:Q", f"{col}:Q", "rounds:Q", "outcome:N"])]
            if col == "downtime_s" and downtime_budget_s:
                layer.append(alt.Chart(pl.DataFrame({"y": [float(downtime_budget_s)]})).mark_rule(
                    strokeDash=[6, 4], color="#57606a").encode(y="y:Q"))
            panels.append(alt.layer(*layer))
        out[f"sweep_{var}"] = alt.hconcat(*panels).properties(title=f"Pre-copy migration vs {SWEEP_VARIABLES.get(var, var)}")
    return out


def placement_figures(quality: pl.DataFrame, sweep: pl.DataFrame | None = None,
                      gap: pl.DataFrame | None = None) -> dict[str, Any]:
    """``quality`` (nodes used and utilisation per run), ``batch`` (nodes used vs batch size)
    and ``gap`` (share of tiny instances each heuristic solves optimally)."""
    import altair as alt

    from dwcpkit import charts

    order = quality["run"].to_list()
    y = alt.Y("run:N", sort=order, title=None)
    packing = alt.Color("packing:N", scale=alt.Scale(domain=["fuller", "original"], range=["#0969da", "#cf222e"]),
                        title="DQN packing term")
    bars = []
    for col, title, fmt in (("nodes_used", "Nodes used (fewer = tighter packing)", "d"),
                            ("utilisation", "Mean utilisation of the nodes used (cpu+mem)/2", ".0%")):
        base = alt.Chart(quality, width=260, title=title)
        bars.append(alt.layer(base.mark_bar().encode(x=alt.X(f"{col}:Q", title=None), y=y, color=packing),
                              base.mark_text(align="left", dx=3).encode(x=f"{col}:Q", y=y,
                                                                        text=alt.Text(f"{col}:Q", format=fmt))))
    out: dict[str, Any] = {"quality": alt.hconcat(*bars)}
    if sweep is not None and sweep.height:
        out["batch"] = charts.line(sweep, x="batch", y="nodes_used", color="run", height=220,
                                   title="Nodes used vs VMs in the batch (same fleet)", x_title="VMs in the batch",
                                   y_title="nodes used")
    if gap is not None and gap.height:
        g = gap.with_columns(pl.col("optimal_share") * 100)
        base = alt.Chart(g, width=360, title="Tiny instances solved optimally (fewest nodes) (%)")
        out["gap"] = alt.layer(
            base.mark_bar(color="#57606a").encode(x=alt.X("optimal_share:Q", title="% of instances",
                                                          scale=alt.Scale(domain=[0, 100])),
                                                  y=alt.Y("run:N", sort=g["run"].to_list(), title=None)),
            base.mark_text(align="left", dx=3).encode(x="optimal_share:Q", y=alt.Y("run:N", sort=g["run"].to_list()),
                                                      text=alt.Text("optimal_share:Q", format=".0f")))
    return out


def consensus_figures(summary: pl.DataFrame) -> dict[str, Any]:
    """From :func:`dwcpkit.protocol.sweeps.consensus_summary`, one panel per fault scenario:
    ``latency`` (median and worst P99 client latency vs n, log scale), ``throughput``
    (decisions per simulated second vs n) and ``messages`` (messages per decision vs n, log
    scale). Runs beyond the fault bound are left out (they stop making progress by design)."""
    import altair as alt

    from dwcpkit.protocol.sweeps import FAULTS

    data = summary.filter(pl.col("fault") != "beyond")
    faults = [f for f in FAULTS if f in set(data["fault"].to_list())]
    color = alt.Color("protocol:N", scale=alt.Scale(domain=["raft", "pbft"], range=["#0969da", "#cf222e"]))
    x = alt.X("n:Q", title="nodes (n)", scale=alt.Scale(zero=False))
    long = pl.concat([data.select("protocol", "fault", "n", pl.col(k).round(3).alias("ms"), pl.lit(name).alias("statistic"))
                      for k, name in (("p50_ms", "median"), ("p99_ms", "P99 (worst run)"))])

    def panels(frame: pl.DataFrame, y: alt.Y, title: str, dash: bool = False) -> alt.HConcatChart:
        out = []
        for f in faults:
            sub = frame.filter(pl.col("fault") == f)
            enc: dict[str, Any] = {"x": x, "y": y, "color": color}
            if dash:  # median solid, P99 dashed; lines only so the legend shows the dash pattern
                enc["strokeDash"] = alt.StrokeDash("statistic:N", title=None, scale=alt.Scale(
                    domain=["median", "P99 (worst run)"], range=[[1, 0], [6, 4]]),
                    legend=alt.Legend(symbolType="stroke", symbolStrokeColor="#24292f"))
            mark = alt.Chart(sub, width=170, height=170, title=f).mark_line(point=not dash)
            out.append(mark.encode(**enc))
        return alt.hconcat(*out).properties(title=title)

    return {
        "latency": panels(long, alt.Y("ms:Q", scale=alt.Scale(type="log"), title="ms (log)"),
                          "Client-observed decision latency vs n, per fault scenario (ms)", dash=True),
        "throughput": panels(data.select("protocol", "fault", "n", pl.col("throughput_per_s").round(3)),
                             alt.Y("throughput_per_s:Q", title="decisions / s"),
                             "Throughput vs n, per fault scenario (decisions per simulated second)"),
        "messages": panels(data.select("protocol", "fault", "n", pl.col("messages_per_decision").round(3)),
                           alt.Y("messages_per_decision:Q", scale=alt.Scale(type="log"), title="messages (log)"),
                           "Messages per decision vs n, per fault scenario"),
    }
