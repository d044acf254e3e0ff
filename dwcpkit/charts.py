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

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# jsonschema (imported by altair) loads the optional rfc3987_syntax package, installed here by
# jupyterlab's jupyter-events, only to check the "iri" string format, which Vega-Lite specs never
# use; building its grammar costs ~1.7 s per kernel. Blocking it keeps runbooks starting fast.
if "rfc3987_syntax" not in sys.modules and "jsonschema" not in sys.modules:
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]

import altair as alt  # noqa: E402
import polars as pl

__all__ = ["enable", "time_series", "with_threshold", "with_windows", "stack", "gate_chart", "heatmap", "save", "RENDERER"]

RENDERER = "dwcpkit"
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
