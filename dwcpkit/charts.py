"""Altair helpers for SRE charts, rendered deterministically as static SVG.

``enable()`` registers and turns on the ``dwcpkit`` renderer: every chart is displayed as
``image/svg+xml`` (made offline by vl-convert) with the Vega-Lite spec beside it under the valid
``application/vnd.vegalite.v6+json`` key. Outputs are byte-identical run to run, visible in
JupyterLab and in the offline HTML report, and valid for papermill — Altair 6's own ``mimetype``
renderer writes a key nbformat rejects, and its ``html`` renderer needs a CDN and embeds a random
div id (reference/stack-notes.md §3–4).

Time is always on a UTC axis; units belong in titles. Charts take canonical-shape polars frames
and expect the caller to have aggregated them (Altair's 5,000-row limit stays on as a guard).

Example
-------
>>> import polars as pl
>>> from datetime import datetime, timezone
>>> f = pl.DataFrame({"timestamp": [datetime(2026, 11, 1, tzinfo=timezone.utc)], "value": [1.0]})
>>> chart = time_series(f, title="Error ratio (%)")
>>> chart.to_dict()["encoding"]["x"]["scale"]["type"]
'utc'
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# jsonschema (imported by altair) loads the optional rfc3987_syntax package, installed here by
# jupyterlab's jupyter-events, only to check the "iri" string format, which Vega-Lite specs never
# use; building its grammar costs ~1.7 s per kernel. Blocking it keeps runbooks starting fast.
if "rfc3987_syntax" not in sys.modules and "jsonschema" not in sys.modules:
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]

import altair as alt  # noqa: E402
import polars as pl

__all__ = ["enable", "time_series", "with_threshold", "with_windows", "stack", "gate_chart", "heatmap", "save",
           "save_all", "line", "tornado", "interval_chart", "RENDERER"]

RENDERER = "dwcpkit"
#: Set by ``dwcpkit run`` for the kernel: the run folder, where figures are saved beside the report.
RUN_DIR_ENV = "DWCPKIT_RUN_DIR"
_TIME_FORMAT = "%m-%d %H:%M"


def _render(spec: dict, **_: Any) -> dict[str, Any]:
    import vl_convert as vlc

    return {
        "image/svg+xml": vlc.vegalite_to_svg(spec),
        "application/vnd.vegalite.v6+json": spec,
        "text/plain": "<altair chart: static SVG; Vega-Lite spec beside it>",
    }


def enable() -> None:
    """Register and enable the deterministic SVG renderer (call once per notebook)."""
    alt.renderers.register(RENDERER, _render)
    alt.renderers.enable(RENDERER)


def _prepare(frame: pl.DataFrame) -> pl.DataFrame:
    # Altair serialises tz-aware datetimes through pandas; give it naive UTC and a UTC scale
    # so the SVG is the same whatever the machine's time zone.
    out = frame
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            out = out.with_columns(pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    return out


def _x(title: str = "time (UTC)") -> alt.X:
    return alt.X("timestamp:T", scale=alt.Scale(type="utc"), axis=alt.Axis(title=title, format=_TIME_FORMAT, labelOverlap="greedy", tickCount=8))


def time_series(
    frame: pl.DataFrame,
    *,
    y: str = "value",
    color: str | None = None,
    title: str,
    y_title: str | None = None,
    width: int = 640,
    height: int = 200,
    point: bool = False,
) -> alt.Chart:
    """Line chart of ``y`` over ``timestamp`` (UTC), one line per ``color`` value."""
    enc: dict[str, Any] = {"x": _x(), "y": alt.Y(f"{y}:Q", title=y_title or title)}
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=color)
    return (
        alt.Chart(_prepare(frame), title=title, width=width, height=height)
        .mark_line(point=point, interpolate="linear")
        .encode(**enc)
    )


def with_threshold(chart: alt.Chart, value: float, *, label: str = "threshold") -> alt.LayerChart:
    """Layer a dashed horizontal rule at ``value`` onto ``chart``."""
    rule = (
        alt.Chart(pl.DataFrame({"y": [float(value)], "label": [label]}))
        .mark_rule(strokeDash=[6, 4], color="#cf222e")
        .encode(y="y:Q", tooltip=["label:N", "y:Q"])
    )
    return alt.layer(chart, rule)


def _merge_windows(windows: pl.DataFrame, start: str, end: str) -> pl.DataFrame:
    """Union of possibly overlapping [start, end] windows, as non-overlapping rows."""
    w = windows.select(pl.col(start).alias("start"), pl.col(end).alias("end")).drop_nulls().sort("start")
    if w.height == 0:
        return w
    return (
        w.with_columns((pl.col("start") > pl.col("end").cum_max().shift(1)).fill_null(True).cum_sum().alias("_g"))
        .group_by("_g").agg(pl.col("start").min(), pl.col("end").max()).sort("start").drop("_g")
    )


def with_windows(chart: alt.TopLevelMixin, windows: pl.DataFrame, *, start: str = "start",
                 end: str = "end") -> alt.LayerChart:
    """Shade time windows (e.g. incidents) behind ``chart``; overlapping windows are merged."""
    data = _prepare(_merge_windows(windows, start, end))
    rect = alt.Chart(data).mark_rect(opacity=0.15, color="#cf222e").encode(
        x=alt.X("start:T", scale=alt.Scale(type="utc")), x2="end:T")
    return alt.layer(rect, chart)


def stack(charts_: Sequence[alt.TopLevelMixin]) -> alt.VConcatChart:
    """Charts one above the other, sharing the time axis scale."""
    return alt.vconcat(*charts_).resolve_scale(x="shared")


def gate_chart(gates: pl.DataFrame, *, title: str = "Gates: current vs threshold") -> alt.Chart:
    """Bar per gate of ``current / threshold`` (1.0 = at the limit), green when it passes."""
    data = gates.select(
        "metric",
        (pl.col("current") / pl.col("threshold")).alias("fraction_of_limit"),
        pl.col("pass").cast(pl.String).alias("pass"),
    )
    return (
        alt.Chart(data, title=title, width=480)
        .mark_bar()
        .encode(
            y=alt.Y("metric:N", sort=None, title=None),
            x=alt.X("fraction_of_limit:Q", title="current / threshold"),
            color=alt.Color("pass:N", scale=alt.Scale(domain=["true", "false"], range=["#1a7f37", "#cf222e"])),
        )
    )


def heatmap(frame: pl.DataFrame, *, x: str, y: str, value: str, title: str,
            domain: tuple[float, float] | None = None, higher_is_better: bool = True) -> alt.LayerChart:
    """Categorical heat-map of ``value`` by ``x`` and ``y`` with the value written in each cell.

    Colours run red (bad) to green (good); ``domain`` pins the colour scale (e.g. ``(0, 1)`` for health).
    """
    data = _prepare(frame)
    base = alt.Chart(data, title=title).encode(x=alt.X(f"{x}:N", title=x), y=alt.Y(f"{y}:N", title=y))
    scale = alt.Scale(scheme="redyellowgreen", reverse=not higher_is_better,
                      **({"domain": list(domain)} if domain else {}))
    return alt.layer(
        base.mark_rect().encode(color=alt.Color(f"{value}:Q", scale=scale)),
        base.mark_text().encode(text=alt.Text(f"{value}:Q", format=".0f")),
    )


def save(chart: alt.TopLevelMixin, folder: str | Path, name: str, formats: Sequence[str] = ("svg", "png")) -> list[Path]:
    """Save ``chart`` as ``folder/name.<fmt>`` for each format (offline, via vl-convert)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        chart.save(str(path), format=fmt)
        paths.append(path)
    return paths


def save_all(figures: Mapping[str, alt.TopLevelMixin], folder: str | Path | None,
             formats: Sequence[str] = ("svg", "png")) -> list[Path]:
    """:func:`save` each ``name -> chart`` into ``folder``.

    An empty or ``None`` folder means: next to the report when the notebook runs under
    ``dwcpkit run`` (``$DWCPKIT_RUN_DIR/figures``), otherwise nowhere (returns ``[]``).
    """
    if folder is None or str(folder) == "":
        run_dir = os.environ.get(RUN_DIR_ENV)
        if not run_dir:
            return []
        folder = Path(run_dir) / "figures"
    return [p for name, chart in figures.items() for p in save(chart, folder, name, formats)]


def line(frame: pl.DataFrame, *, x: str, y: str, title: str, x_title: str, y_title: str,
         color: str | None = None, reference: float | None = None, width: int = 640, height: int = 220) -> alt.TopLevelMixin:
    """Line chart over a quantitative (non-time) ``x``, one line per ``color``; optional rule at ``y = reference``."""
    enc: dict[str, Any] = {"x": alt.X(f"{x}:Q", title=x_title), "y": alt.Y(f"{y}:Q", title=y_title)}
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=color)
    chart = alt.Chart(_prepare(frame), title=title, width=width, height=height).mark_line().encode(**enc)
    if reference is None:
        return chart
    rule = alt.Chart(pl.DataFrame({"y": [float(reference)]})).mark_rule(color="#57606a").encode(y="y:Q")
    return alt.layer(chart, rule)


def tornado(frame: pl.DataFrame, *, base: float, title: str, x_title: str, label: str = "input",
            low: str = "low", high: str = "high", low_name: str = "input lowered", high_name: str = "input raised",
            width: int = 480) -> alt.LayerChart:
    """Tornado (sensitivity) chart: per ``label`` row, a bar from ``base`` to the outcome ``low`` and one to ``high``.

    Rows are drawn in the frame's order (sort it by swing first); a rule marks ``base``.
    """
    order = frame[label].to_list()
    long = pl.concat([
        frame.select(pl.col(label).alias("input"), pl.col(low).cast(pl.Float64).alias("outcome"), pl.lit(low_name).alias("change")),
        frame.select(pl.col(label).alias("input"), pl.col(high).cast(pl.Float64).alias("outcome"), pl.lit(high_name).alias("change")),
    ]).with_columns(pl.lit(float(base)).alias("base"))
    bars = alt.Chart(long, title=title, width=width).mark_bar(opacity=0.85).encode(
        y=alt.Y("input:N", sort=order, title=None),
        x=alt.X("outcome:Q", title=x_title),
        x2="base:Q",
        color=alt.Color("change:N", title=None, scale=alt.Scale(domain=[low_name, high_name], range=["#cf222e", "#1a7f37"])),
        tooltip=["input:N", "change:N", "outcome:Q"],
    )
    rule = alt.Chart(pl.DataFrame({"base": [float(base)]})).mark_rule(color="#24292f").encode(x="base:Q")
    return alt.layer(bars, rule)


def interval_chart(frame: pl.DataFrame, *, y: str, value: str, lo: str, hi: str, title: str, x_title: str,
                   color: str | None = None, reference: float | None = None, log: bool = False,
                   width: int = 480) -> alt.LayerChart:
    """Point estimate with its interval (``lo`` to ``hi``) per ``y`` row, e.g. a bootstrap confidence interval.

    ``color`` splits the points (e.g. by version or assessment); ``reference`` draws a rule at that x
    (e.g. 1 for a ratio); ``log`` uses a log x scale (ratios).
    """
    scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
    base = alt.Chart(_prepare(frame), title=title, width=width)
    enc: dict[str, Any] = {"y": alt.Y(f"{y}:N", sort=None, title=None)}
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=color)
        enc["yOffset"] = alt.YOffset(f"{color}:N")
    layers = [
        base.mark_rule(strokeWidth=2).encode(x=alt.X(f"{lo}:Q", scale=scale, title=x_title), x2=f"{hi}:Q", **enc),
        base.mark_point(filled=True, size=60).encode(x=alt.X(f"{value}:Q", scale=scale), **enc,
                                                     tooltip=[f"{y}:N", f"{value}:Q", f"{lo}:Q", f"{hi}:Q"]),
    ]
    if reference is not None:
        layers.append(alt.Chart(pl.DataFrame({"x": [float(reference)]})).mark_rule(strokeDash=[6, 4], color="#57606a")
                      .encode(x="x:Q"))
    return alt.layer(*layers)
