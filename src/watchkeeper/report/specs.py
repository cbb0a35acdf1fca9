"""The charts, as Vega-Lite specifications: one spec per chart, drawn by vega-embed in the
dashboard (vendored in the package, so it works offline) and rendered to static SVG for the
report (``svg``, through vl-convert, so the report stays script-free). Both faces show the
same thing: axes with ticks and the metric's unit, a legend, the reference value and rule
thresholds as lines, intervals as bands, the alerts of the rule being viewed and new model
versions as annotations, provisional windows drawn hollow.

Times are drawn in UTC, as the rest of watchkeeper states them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watchkeeper.report.html import esc

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
VEGA_LITE = "6.4"  # the version vl-convert renders with (the one vendored for the dashboard)
WIDTH, HEIGHT = 660, 220
ALERT = "#b91c1c"
VERSION = "#6b7280"

# How an axis states each catalogue unit (its title's words and d3's number format).
UNITS: dict[str, tuple[str, str]] = {
    "ratio": ("share", ".3~%"),
    "score": ("", ".3~g"),
    "count": ("count", ",.4~g"),
    "ms": ("milliseconds", ",.4~g"),
    "seconds": ("seconds", ",.4~g"),
    "currency": ("", ",.4~g"),
    "value": ("", ",.4~g"),
    "difference": ("difference", "+.3~g"),
    "times_usual": ("times the usual level", ".3~g"),
}


@dataclass(frozen=True)
class Point:
    t: datetime
    value: float
    provisional: bool = False
    lower: float | None = None
    upper: float | None = None
    events: int | None = None  # the window's sample size, where the tooltip should say it


@dataclass(frozen=True)
class Line:
    name: str
    points: Sequence[Point]


@dataclass(frozen=True)
class Mark:
    """A moment annotated on a series: an alert of the rule being viewed, or a new version."""

    t: datetime
    label: str
    kind: str = "alert"  # or "version", "change"


@dataclass(frozen=True)
class Level:
    """A horizontal line: a rule's threshold or the reference value."""

    value: float
    label: str
    kind: str = "threshold"  # or "reference"


@dataclass
class SeriesChart:
    metric: str
    unit: str
    lines: list[Line]
    levels: list[Level] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    title: str = ""
    currency: str = ""


def finite(data: Any) -> Any:
    """NaN and infinities as null: JSON has neither (a browser's JSON.parse refuses them)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


def _iso(t: datetime) -> str:
    return t.isoformat()


def axis_title(metric: str, unit: str, currency: str = "") -> str:
    words = currency if unit == "currency" and currency else UNITS.get(unit, ("", ""))[0]
    name = metric.replace("_", " ")
    return f"{name} ({words})" if words else name


def series_spec(chart: SeriesChart) -> dict[str, Any]:
    """Lines over time with their interval bands, levels, annotations and hollow provisional
    points; the tooltip of each point states its window, value, interval and whether it is
    provisional."""
    fmt = UNITS.get(chart.unit, ("", ".4~g"))[1]
    values = [
        {
            "t": _iso(p.t),
            "value": p.value,
            "series": line.name,
            "provisional": p.provisional,
            "lower": p.lower,
            "upper": p.upper,
            "events": p.events,
            "state": "provisional (labels still arriving)" if p.provisional else "final",
        }
        for line in chart.lines
        for p in line.points
    ]
    x = {
        "field": "t",
        "type": "temporal",
        "scale": {"type": "utc"},
        "title": "window (UTC)",
        "axis": {"grid": True, "tickCount": 8},
    }
    y = {
        "field": "value",
        "type": "quantitative",
        "scale": {"zero": False},
        "title": axis_title(chart.metric, chart.unit, chart.currency),
        "axis": {"format": fmt, "grid": True, "tickCount": 6},
    }
    color = {
        "field": "series",
        "type": "nominal",
        "legend": {
            "orient": "top",
            "title": None,
            "symbolType": "stroke",
            "symbolOpacity": 1,
            "symbolStrokeWidth": 2,
        },
        "scale": {"domain": [line.name for line in chart.lines]},
    }
    tooltip = [
        {"field": "series", "type": "nominal"},
        {"field": "t", "type": "temporal", "title": "window", "format": "%Y-%m-%d %H:%M"},
        {"field": "value", "type": "quantitative", "format": fmt},
        {"field": "lower", "type": "quantitative", "format": fmt, "title": "interval from"},
        {"field": "upper", "type": "quantitative", "format": fmt, "title": "interval to"},
        {"field": "state", "type": "nominal"},
    ]
    if any(p.events is not None for li in chart.lines for p in li.points):
        tooltip.insert(-1, {"field": "events", "type": "quantitative", "format": ",d"})
    banded = any(
        p.lower is not None and p.upper is not None for li in chart.lines for p in li.points
    )
    layers: list[dict[str, Any]] = [
        {
            "name": "band",
            "transform": [
                {"filter": "isValid(datum.lower) && isValid(datum.upper)"},
            ],
            "mark": {"type": "area", "opacity": 0.15},
            "encoding": {
                "x": x,
                "y": {"field": "lower", "type": "quantitative"},
                "y2": {"field": "upper"},
                "color": color,  # one legend with the lines' (drawn as strokes)
            },
        },
        {
            "name": "lines",
            "mark": {"type": "line", "strokeWidth": 1.6},
            "encoding": {"x": x, "y": y, "color": color},
        },
        {
            "name": "final_points",
            "transform": [{"filter": "!datum.provisional"}],
            "mark": {"type": "point", "filled": True, "size": 28},
            "encoding": {"x": x, "y": y, "color": color, "tooltip": tooltip},
        },
        {
            "name": "provisional_points",
            "transform": [{"filter": "datum.provisional"}],
            "mark": {"type": "point", "filled": False, "size": 40, "strokeWidth": 1.5},
            "encoding": {"x": x, "y": y, "color": color, "tooltip": tooltip},
        },
    ]
    # A layer with nothing to draw is left out (Vega warns of its empty extent).
    points = [p for li in chart.lines for p in li.points]
    empty = {
        "band": not banded,
        "final_points": all(p.provisional for p in points),
        "provisional_points": not any(p.provisional for p in points),
    }
    layers = [layer for layer in layers if not empty.get(layer["name"], False)]
    levels = [{"value": v.value, "label": v.label, "kind": v.kind} for v in chart.levels]
    for kind, stroke, dash in (("threshold", ALERT, [6, 3]), ("reference", VERSION, [2, 2])):
        mine = [v for v in levels if v["kind"] == kind]
        if not mine:
            continue
        level_y = {"field": "value", "type": "quantitative"}
        layers.append(
            {
                "name": f"{kind}s",
                "data": {"values": mine},
                "layer": [
                    {
                        "mark": {"type": "rule", "stroke": stroke, "strokeDash": dash},
                        "encoding": {"y": level_y, "tooltip": [{"field": "label"}]},
                    },
                    {
                        "mark": {
                            "type": "text",
                            "align": "right",
                            "dy": -5,
                            "fontSize": 10,
                            "fill": stroke,
                        },
                        "encoding": {
                            "y": level_y,
                            "x": {"value": "width"},
                            "text": {"field": "label"},
                        },
                    },
                ],
            }
        )
    marks: list[dict[str, Any]] = [
        {"t": _iso(m.t), "label": m.label, "kind": m.kind} for m in chart.marks
    ]
    for kind, stroke, dash in (
        ("alert", ALERT, [4, 3]),
        ("version", VERSION, []),
        ("change", VERSION, [6, 4]),
    ):
        mine = [m for m in marks if m["kind"] == kind]
        if not mine:
            continue
        mark_x = {"field": "t", "type": "temporal", "scale": {"type": "utc"}}
        tip = [
            {"field": "label", "title": kind},
            {"field": "t", "type": "temporal", "format": "%Y-%m-%d %H:%M", "title": "window"},
        ]
        layer: list[dict[str, Any]] = [
            {
                "mark": {"type": "rule", "stroke": stroke, "strokeDash": dash, "strokeWidth": 1.2},
                "encoding": {"x": mark_x, "tooltip": tip},
            }
        ]
        if kind != "alert":  # alerts are many: their words are in the tooltip, not on top
            layer.append(
                {
                    "mark": {
                        "type": "text",
                        "align": "left",
                        "dx": 3,
                        "dy": 2,
                        "baseline": "top",
                        "fontSize": 10,
                        "fill": stroke,
                    },
                    "encoding": {"x": mark_x, "y": {"value": 0}, "text": {"field": "label"}},
                }
            )
        layers.append({"name": f"{kind}_marks", "data": {"values": mine}, "layer": layer})
    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "width": WIDTH,
        "height": HEIGHT,
        "data": {"values": values},
        "layer": layers,
        "config": {"font": "sans-serif", "view": {"stroke": None}},
    }
    if chart.title:
        spec["title"] = chart.title
    return spec


def bars_spec(
    labels: Sequence[str],
    reference: Sequence[float],
    live: Sequence[float],
    *,
    title: str = "",
    reference_name: str = "training data",
    live_name: str = "this window",
) -> dict[str, Any]:
    """Two bars per bin, the reference's share of events beside the window's, the bins in
    their order, labelled below, the share on the y axis."""
    seen: dict[str, int] = {}
    unique = []
    for lab in labels:  # two bins written alike (close edges, rounded) stay two bars
        seen[lab] = seen.get(lab, 0) + 1
        unique.append(lab if seen[lab] == 1 else f"{lab} ({seen[lab]})")
    labels = unique
    values = [
        {"bin": lab, "order": i, "share": share, "side": side}
        for i, lab in enumerate(labels)
        for side, share in ((reference_name, reference[i]), (live_name, live[i]))
    ]
    x = {
        "field": "bin",
        "type": "nominal",
        "sort": labels,
        "title": None,
        "axis": {"labelAngle": -30, "labelLimit": 120, "labelOverlap": "greedy"},
    }
    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "width": WIDTH,
        "height": HEIGHT,
        "data": {"values": values},
        "name": "bars",
        "mark": {"type": "bar"},
        "encoding": {
            "x": x,
            "xOffset": {"field": "side", "sort": [reference_name, live_name]},
            "y": {
                "field": "share",
                "type": "quantitative",
                "title": "share of events",
                "axis": {"format": ".0%", "grid": True},
            },
            "color": {
                "field": "side",
                "type": "nominal",
                "sort": [reference_name, live_name],
                "scale": {"range": ["#9ca3af", "#2563eb"]},
                "legend": {"orient": "top", "title": None},
            },
            "tooltip": [
                {"field": "bin", "title": "values"},
                {"field": "side", "title": "data"},
                {"field": "share", "format": ".1%"},
            ],
        },
        "config": {"font": "sans-serif", "view": {"stroke": None}},
    }
    if title:
        spec["title"] = title
    return spec


def heatmap_spec(
    cells: Sequence[dict[str, Any]], *, title: str = "", effect: str = "effect size"
) -> dict[str, Any]:
    """Features × windows: each cell's colour is its drift effect size, drifted cells outlined;
    ``cells`` hold ``feature``, ``t`` (a datetime), ``value``, ``status``."""
    values = [
        {
            "feature": c["feature"],
            "t": _iso(c["t"]),
            "value": c["value"],
            "status": c["status"],
        }
        for c in cells
    ]
    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "width": WIDTH,
        "data": {"values": values},
        "name": "heatmap",
        "mark": {"type": "rect", "strokeWidth": 1.5},
        "encoding": {
            "x": {
                "field": "t",
                "type": "ordinal",
                "timeUnit": "utcyearmonthdatehoursminutes",
                "title": "window (UTC)",
                "axis": {"format": "%m-%d %H:%M", "labelAngle": -45, "labelOverlap": "greedy"},
            },
            "y": {"field": "feature", "type": "nominal", "title": None},
            "color": {
                "field": "value",
                "type": "quantitative",
                "title": effect,
                "scale": {"scheme": "orangered"},
            },
            "stroke": {
                "condition": {"test": "datum.status === 'drifted'", "value": "#111827"},
                "value": None,
            },
            "tooltip": [
                {"field": "feature"},
                {"field": "t", "type": "temporal", "format": "%Y-%m-%d %H:%M", "title": "window"},
                {"field": "value", "format": ".3~g", "title": effect},
                {"field": "status"},
            ],
        },
        "config": {"font": "sans-serif", "view": {"stroke": None}},
    }
    if title:
        spec["title"] = title
    return spec


_MARKS = re.compile(r'<svg ([^>]*?)class="marks"')
_XMLNS = re.compile(r'\s+xmlns(?::xlink)?="[^"]*"')


def svg(spec: dict[str, Any], label: str) -> str:
    """The spec drawn as static SVG (no script), for the report: vl-convert renders it with
    the same Vega-Lite the dashboard uses. Vega escapes the text it draws; the label given
    here is escaped too."""
    import vl_convert  # a 1.5 s engine start, paid only by a report

    drawn: str = vl_convert.vegalite_to_svg(finite(spec), vl_version=VEGA_LITE)
    # Inline in HTML, an SVG needs no namespace (and the report names no address at all).
    drawn = _XMLNS.sub("", drawn, count=2)
    return _MARKS.sub(
        lambda m: f'<svg {m.group(1)}class="marks chart" role="img" aria-label="{esc(label)}"',
        drawn,
        count=1,
    )


__all__ = [
    "Level",
    "Line",
    "Mark",
    "Point",
    "SeriesChart",
    "axis_title",
    "bars_spec",
    "finite",
    "heatmap_spec",
    "series_spec",
    "svg",
]
