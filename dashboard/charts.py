"""One rule's rate for a tutor over time: three windows, the rule's threshold, and its flagged periods shaded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import holoviews as hv
import hvplot.pandas  # noqa: F401 - registers DataFrame.hvplot
import pandas as pd

from dashboard.store import Measure
from dashboard.theme import CHART_COLOURS
from engine.config import WINDOW_DAYS

hv.renderer("bokeh").webgl = False  # a 90-point chart draws faster on a canvas than after WebGL starts up

LINE_STYLES = {7: ("dotted", 2), 30: ("solid", 3), 90: ("dashed", 2)}  # not told apart by colour alone
SVG_DASHES = {"dotted": "2 3", "solid": "", "dashed": "6 4"}


def chart_legend(threshold: float | None) -> str:
    """The legend as HTML under the chart: it wraps on a phone, which Bokeh's legend does not."""
    def sample(colour: str, dash: str, width: int) -> str:
        return (f'<svg width="28" height="10" aria-hidden="true"><line x1="0" y1="5" x2="28" y2="5" stroke="{colour}" '
                f'stroke-width="{width}" stroke-dasharray="{SVG_DASHES[dash]}"/></svg>')
    items = [f'{sample(CHART_COLOURS[f"line_{d}d"], *LINE_STYLES[d])} {d}-day rate' for d in WINDOW_DAYS]
    if threshold is not None:
        items.append(f'{sample(CHART_COLOURS["threshold"], "dashed", 2)} {threshold:g}% threshold')
    items.append(f'<span class="tq-swatch" style="background:{CHART_COLOURS["flagged_span"]}"></span> flagged')
    return '<ul class="tq-chart-legend">' + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def flagged_spans(points: Sequence[dict[str, Any]], rule: str) -> list[tuple[dt.datetime, dt.datetime]]:
    """Runs of consecutive days the rule flagged as (first day, day after the last), for shading."""
    spans, start = [], None
    for point in points:
        day = dt.datetime.fromisoformat(point["date"])
        flagged = (point.get("flags") or {}).get(rule, False)
        if flagged and start is None:
            start = day
        elif not flagged and start is not None:
            spans.append((start, day))
            start = None
    if start is not None:
        spans.append((start, dt.datetime.fromisoformat(points[-1]["date"]) + dt.timedelta(days=1)))
    return spans


def rate_chart(points: Sequence[dict[str, Any]], measure: Measure, threshold: float | None) -> hv.Overlay | None:
    """None when there is nothing to draw (no points, or none carries the rate)."""
    names = {days: measure.rate.metric(days) for days in WINDOW_DAYS}
    if not points or not any(name in points[0] for name in names.values()):
        return None
    frame = pd.DataFrame({"date": pd.to_datetime([p["date"] for p in points])})
    for days, name in names.items():
        frame[f"{days}-day"] = pd.to_numeric(pd.Series([p.get(name) for p in points]), errors="coerce")
    top = max((threshold or 0) * 2, float(frame[[f"{d}-day" for d in WINDOW_DAYS]].max().max() or 0) * 1.1, 10)
    spans = flagged_spans(points, measure.rule)
    layers: list[Any] = [hv.VSpans(spans, label="flagged").opts(
        color=CHART_COLOURS["flagged_span"], alpha=0.35, line_width=0)] if spans else []
    for days in WINDOW_DAYS:
        dash, width = LINE_STYLES[days]
        layers.append(frame.hvplot.line(
            x="date", y=f"{days}-day", label=f"{days}-day rate", color=CHART_COLOURS[f"line_{days}d"],
            line_dash=dash, line_width=width, responsive=True, height=300,
        ))
    if threshold is not None:
        layers.append(hv.HLine(threshold, label=f"threshold {threshold:g}%").opts(
            color=CHART_COLOURS["threshold"], line_dash="dashed", line_width=2))
    return hv.Overlay(layers).opts(
        responsive=True, height=300, min_height=260, ylim=(0, top), xlabel="", ylabel=f"{measure.rate.label} (%)",
        show_legend=False, toolbar=None, show_grid=True, active_tools=[], fontscale=1.05,
        title="",
    )

