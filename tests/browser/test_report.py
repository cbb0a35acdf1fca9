"""The stakeholder report in headless Chromium: the charts are drawn, the page has no
console errors, needs no network, stays under 1 MB, and shows data as text, not markup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import TRIAGE_T0 as T0
from tests.helpers import TRIAGE_YAML as YAML
from tests.helpers import Clock, artifact, simulate, texts


def test_the_report_renders_with_its_charts(tmp_path: Path, page: tuple[Any, list[str]]) -> None:
    ws, _ = simulate(tmp_path, "segment_shift", 4)
    try:
        html = ws.report("fraud")
    finally:
        ws.close()
    assert len(html.encode()) < 1_000_000
    segments = html[html.index("by segment") :].split("</table>")[0]
    assert segments.count("<tr>") > 3 and "no segment has" not in segments
    assert "Needs action now" not in html or "Most likely cause: not a real drop" not in html
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    p, errors = page
    p.route(
        "**/*",
        lambda route: (
            route.abort() if not route.request.url.startswith("file:") else route.continue_()
        ),
    )
    p.goto(path.as_uri())
    assert p.locator("svg.chart").count() == 3
    distribution, trend, business = p.locator("figure").all()[:3]
    bars = distribution.locator("svg.chart g.bars_marks path")
    assert bars.count() > 6 and bars.first.bounding_box()["height"] > 0  # drawn, not empty
    assert trend.locator("g.lines_marks path").count() == 2  # realized and estimated
    assert trend.locator("g.change_marks_layer_0_marks line").count() == 1  # the change
    # In business terms: the cost of mistakes in the configured currency and its usual
    # level, said in the caption too. Here the shift sends many more legitimate cases to
    # review (cheap) and misses fewer frauds (dear): the cost fell, and no change is dated.
    assert business.locator("g.lines_marks path").count() == 1
    axis = texts(business.locator("g.role-axis-title text"))
    assert any("EUR" in t for t in axis), axis
    caption = business.locator("figcaption").inner_text()
    assert "EUR 23,630 in the latest period against a usual EUR" in caption, caption
    changed = business.locator("g.change_marks_layer_0_marks line").count()
    assert changed == ("change began" in caption)
    for figure in (distribution, trend, business):
        ticks = texts(figure.locator("g.role-axis-label text"))
        assert len(ticks) >= 8, ticks  # axes with ticks on every chart
    legend = texts(p.locator("svg.chart g.role-legend-label text"))
    assert "training data" in legend and "measured from labels" in legend
    summary = p.locator("section.summary").inner_text()
    assert "x2" in summary and "device=android" in summary
    assert "legitimate cases sent to review" in summary and "cases missed" in summary
    p.screenshot(path=str(artifact("report.png")), full_page=True)
    assert errors == []


def test_data_is_shown_as_text_not_markup(tmp_path: Path, page: tuple[Any, list[str]]) -> None:
    from datetime import timedelta

    import numpy as np
    import pandas as pd

    import watchkeeper
    from watchkeeper.config import parse_config

    hostile = "<script>alert(1)</script>"
    rng = np.random.default_rng([8, 1])
    clock = Clock(T0 + timedelta(days=5))
    with watchkeeper.open(parse_config(YAML, base_dir=tmp_path), clock=clock) as ws:

        def frame(n: int, d: int) -> pd.DataFrame:
            x1 = rng.normal(0, 1, n)
            return pd.DataFrame(
                {
                    "id": [f"{d}-{i}" for i in range(n)],
                    "ts": [T0 + timedelta(days=d, minutes=int(m)) for m in rng.uniform(0, 1400, n)],
                    "x1": x1,
                    "x2": rng.normal(0, 1, n),
                    "device": rng.choice([hostile, "ios"], n),
                    "score": 1 / (1 + np.exp(-x1)),
                    "label": (rng.uniform(size=n) < 0.3).astype(int),
                }
            )

        ws.set_reference("fraud", frame(2000, -9).drop(columns=["id", "ts"]))
        for d in range(3):
            events = frame(500, d)
            ws.ingest_events("fraud", events.drop(columns=["label"]))
            ws.ingest_labels("fraud", events[["id", "label"]])
        ws.run("fraud", full=True)
        html = ws.report("fraud")
    assert hostile not in html and "&lt;script&gt;" in html
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    p, errors = page
    dialogs: list[str] = []
    p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    p.goto(path.as_uri())
    assert p.locator("script").count() == 0 and dialogs == []
    assert hostile in p.locator("body").inner_text()  # shown to the reader as text
    assert errors == []
