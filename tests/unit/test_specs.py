"""The charts' Vega-Lite specs, rendered as the report renders them (vl-convert, the same
Vega-Lite the dashboard loads): axes with ticks and units, levels, annotations, hollow
provisional points, readable bins, and data drawn as text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np

from watchkeeper.report.charts import display_bins
from watchkeeper.report.specs import (
    Level,
    Line,
    Mark,
    Point,
    SeriesChart,
    bars_spec,
    heatmap_spec,
    series_spec,
    svg,
)

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _group(drawn: str, name: str) -> str:
    """The SVG of the mark group named ``name`` (Vega names its class after the layer)."""
    found = re.search(rf'<g class="[^"]*\b{name}\b[^"]*"[^>]*>(.*?)</g>', drawn, re.S)
    return found.group(1) if found else ""


def _texts(drawn: str, role: str) -> list[str]:
    out = []
    for block in re.findall(rf'class="mark-text role-{role}"[^>]*>(.*?)</g>', drawn, re.S):
        out += re.findall(r"<text[^>]*>([^<]*)</text>", block)
    return out


def _chart(**kw: object) -> SeriesChart:
    realized = [
        Point(T0 + timedelta(days=i), 0.1 + 0.01 * i, i >= 8, 0.08 + 0.01 * i, 0.12 + 0.01 * i)
        for i in range(10)
    ]
    estimated = [Point(T0 + timedelta(days=i), 0.11) for i in range(10)]
    return SeriesChart(
        "missing_rate",
        "ratio",
        [Line("from labels", realized), Line("estimated", estimated)],
        **kw,  # type: ignore[arg-type]
    )


def test_a_series_has_ticks_units_a_legend_and_hollow_provisional_points() -> None:
    drawn = svg(series_spec(_chart()), "missing rate")
    assert len(_texts(drawn, "axis-label")) >= 8  # ticks on both axes, not just the ends
    assert "missing rate (share)" in _texts(drawn, "axis-title")
    assert "window (UTC)" in _texts(drawn, "axis-title")
    assert any(t.endswith("%") for t in _texts(drawn, "axis-label"))  # a share reads as one
    assert _texts(drawn, "legend-label") == ["from labels", "estimated"]
    final = _group(drawn, "final_points_marks")
    hollow = _group(drawn, "provisional_points_marks")
    assert final.count("<path") == 18 and hollow.count("<path") == 2
    assert ' fill="#' not in hollow and " stroke=" in hollow  # outlined, not filled
    assert ' fill="#' in final
    assert hollow.count("provisional (labels still arriving)") == 2  # said in the tooltip
    assert _group(drawn, "band_marks").count("<path") == 1  # the realized line's intervals
    assert "<script" not in drawn and "xmlns" not in drawn and 'class="marks chart"' in drawn


def test_levels_and_annotations_are_drawn_with_their_words() -> None:
    chart = _chart(
        levels=[Level(0.25, "input_broken (page)"), Level(0.05, "reference 0.05", "reference")],
        marks=[
            Mark(T0 + timedelta(days=3), "input_broken (page, firing)"),
            Mark(T0 + timedelta(days=5), "version 2", "version"),
        ],
    )
    drawn = svg(series_spec(chart), "x")
    assert _group(drawn, "thresholds_layer_0_marks").count("<line") == 1
    assert _group(drawn, "references_layer_0_marks").count("<line") == 1
    assert _group(drawn, "alert_marks_layer_0_marks").count("<line") == 1
    assert _group(drawn, "version_marks_layer_0_marks").count("<line") == 1
    words = re.findall(r"<text[^>]*>([^<]*)</text>", drawn)
    assert "input_broken (page)" in words and "version 2" in words
    assert "input_broken (page, firing)" not in words  # an alert's words are in its tooltip
    assert "input_broken (page, firing)" in _group(drawn, "alert_marks_layer_0_marks")
    # The threshold is inside the y domain: the axis reaches it.
    ticks = [float(t.rstrip("%")) / 100 for t in _texts(drawn, "axis-label") if t.endswith("%")]
    assert max(ticks) >= 0.25


def test_data_is_drawn_as_text_and_bars_pair_each_bin() -> None:
    hostile = "<script>alert(1)</script>"
    drawn = svg(bars_spec([hostile, "b", "c"], [0.2, 0.5, 0.3], [0.1, 0.6, 0.3]), hostile)
    assert hostile not in drawn and "&lt;script&gt;" in drawn
    assert _group(drawn, "bars_marks").count("<path") == 6
    twice = svg(bars_spec(["0.1 to 0.1", "0.1 to 0.1"], [0.5, 0.5], [0.4, 0.6]), "t")
    assert _group(twice, "bars_marks").count("<path") == 4  # two bins, not one stacked
    assert _texts(drawn, "legend-label") == ["training data", "this window"]
    cells = [
        {"feature": f, "t": T0 + timedelta(days=d), "value": d / 10, "status": "ok"}
        for f in ("a", "b")
        for d in range(5)
    ]
    assert _group(svg(heatmap_spec(cells), "h"), "heatmap_marks").count("<path") == 10


def test_bins_read_as_numbers_people_write_in_order() -> None:
    from dataclasses import replace

    from watchkeeper.profiles.binning import Binning, coarse_grid, numeric_edges

    values = np.random.default_rng(3).lognormal(4, 1.2, 5000)  # 0.3 to 5,000: wide
    edges = numeric_edges(list(np.quantile(values, np.linspace(0, 1, 101))), None)
    inner = np.histogram(values, bins=np.asarray(edges))[0]
    fine = np.concatenate([[0], inner, [0]])
    binning = Binning("amount", "numeric", "feature", edges)
    binning = replace(binning, coarse=coarse_grid(edges, fine))
    labels, ref, live = display_bins(binning, fine, fine)
    assert not any("e+" in lab or "e-" in lab for lab in labels), labels
    ranges = [lab for lab in labels if " to " in lab]
    starts = [float(lab.split(" to ")[0].replace(",", "")) for lab in ranges]
    assert len(ranges) >= 5 and starts == sorted(starts)
    assert any("," in lab for lab in ranges)  # thousands written as such
    assert abs(sum(ref) - 1) < 1e-9 and ref == live


def test_a_chart_s_data_cannot_end_its_script_element_nor_break_its_parse() -> None:
    import json

    from watchkeeper.server.pages.html import json_script

    hostile = {"label": "</script><!--<script>alert(1)</script>&", "value": float("nan")}
    html = json_script("spec", hostile)
    inner = html.removeprefix('<script type="application/json" id="spec">').removesuffix(
        "</script>"
    )
    assert "<" not in inner and ">" not in inner and "&" not in inner
    assert json.loads(inner) == {"label": hostile["label"], "value": None}  # NaN: null
