"""The dashboard in Debian's Chromium (Playwright) on the demo's data: every page renders
without console errors, shows what the API returns, and acknowledging an alert works."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

import watchkeeper
from tests.helpers import artifact, free_port, texts
from watchkeeper.config import load_config
from watchkeeper.demo import START
from watchkeeper.demo.scenario import DAYS
from watchkeeper.server import create_app
from watchkeeper.server.pages.segments import ON_SEGMENTS


@pytest.fixture(scope="module")
def site(demo: tuple[Path, watchkeeper.Workspace]) -> Iterator[str]:
    folder, _ = demo
    config = load_config(folder / "watchkeeper.yaml")
    now = START + timedelta(days=DAYS, hours=1)
    port = free_port()
    app = create_app(config, clock=lambda: now, schedule=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def api(site: str, path: str) -> Any:
    with urllib.request.urlopen(site + path, timeout=30) as answer:
        return json.loads(answer.read())


def visit(page: Any, url: str, name: str) -> None:
    # The page is served and loads (how fast is measured in bench/dashboard.py).
    answer = page.goto(url)
    assert answer is not None and answer.ok, f"{url}: {answer and answer.status}"
    page.wait_for_load_state("load")
    drawn(page)
    page.screenshot(path=str(artifact(f"dashboard-{name}.png")), full_page=True)


def test_the_overview_shows_every_model_and_its_open_alerts(
    site: str, page: tuple[Any, list[str]]
) -> None:
    p, errors = page
    visit(p, site + "/", "overview")
    assert p.locator("section.model-card").count() == 2
    firing = [a for a in api(site, "/api/v1/alerts?state=firing&model=fraud")]
    card = p.locator('section.model-card[data-model="fraud"]')
    shown = card.locator("li")
    assert sum(int(shown.nth(i).get_attribute("data-open")) for i in range(shown.count())) == len(
        firing
    )
    colours = {
        lane: card.locator(f'div.lane[data-lane="{lane}"]').get_attribute("class")
        for lane in ("health", "performance", "business")
    }
    assert "red" in colours["performance"]  # the worse version's page is open
    # It leads with what is firing, pages named.
    pages = [a for a in api(site, "/api/v1/alerts?state=firing") if a["severity"] == "page"]
    lead = p.locator("section.firing")
    assert f"Firing now: {len(pages)} page(s)" in lead.inner_text()
    assert lead.locator("li").count() == len(pages) >= 1
    # What is measured and what is estimated, each said as such and dated.
    lane = card.locator('div.lane[data-lane="performance"] p').inner_text()
    assert "measured from labels for 2026-" in lane and "estimated" in lane, lane
    assert "as of 2026-" in card.locator("h2").inner_text()
    assert card.locator(".chart-host svg").count() == 1  # the headline's sparkline
    assert errors == []


def drawn(page: Any) -> None:
    """Wait until vega-embed has drawn every chart of the page."""
    page.wait_for_function(
        "[...document.querySelectorAll('.chart-host')].every(h => h.dataset.drawn === 'true')"
    )


def points_of(page: Any, series: str) -> int:
    found = page.locator("g.final_points_marks path, g.provisional_points_marks path")
    labels = found.evaluate_all("ps => ps.map(p => p.getAttribute('aria-label'))")
    return sum(f"series: {series};" in label for label in labels)


def test_the_model_page_draws_the_series_the_api_returns(
    site: str, page: tuple[Any, list[str]]
) -> None:
    p, errors = page
    visit(p, site + "/models/fraud?metric=roc_auc", "model")
    drawn(p)
    rows = api(site, "/api/v1/models/fraud/metrics?metric=roc_auc&segment=*")
    windows = {r["window_start"] for r in rows if r["value"] is not None}
    assert points_of(p, "roc auc from labels") == len(windows)
    # The alerts of the rule on this series, and no other rule's.
    mine = [a for a in api(site, "/api/v1/alerts?model=fraud") if a["rule"] == "performance_drop"]
    assert p.locator("g.alert_marks_layer_0_marks line").count() == len(mine) >= 1
    assert p.locator("g.version_marks_layer_0_marks line").count() == 1  # version 2 rolled out
    assert p.locator("g.provisional_points_marks path").count() > 0  # labels still arriving
    assert p.locator("g.band_marks path").count() >= 1  # the intervals
    ticks = texts(p.locator("g.role-axis-label text"))
    assert len(ticks) >= 8, ticks  # both axes have ticks, not just their ends
    assert "roc auc" in texts(p.locator("g.role-axis-title text"))
    # Tooltips state the window, value and interval of a point.
    label = p.locator("g.final_points_marks path").first.get_attribute("aria-label")
    assert "interval from" in label and "window:" in label
    visit(p, site + "/models/fraud?metric=latency_p99&column=latency_ms", "model-latency")
    drawn(p)
    legend = " ".join(texts(p.locator("g.role-legend-label text")))
    assert "usual level (latency)" in legend  # the baseline the latency rule compares with
    assert "milliseconds" in " ".join(texts(p.locator("g.role-axis-title text")))
    assert p.locator("g.thresholds_layer_0_marks line").count() == 0
    assert errors == []


def test_a_per_column_metric_from_the_menu_and_a_time_range_show_their_data(
    site: str, page: tuple[Any, list[str]]
) -> None:
    p, errors = page
    visit(p, site + "/models/fraud?metric=latency_p99", "model-menu")  # no column given
    drawn(p)
    assert points_of(p, "latency p99 from labels") > 10
    assert p.locator("select[name=column] option[selected]").inner_text() == "latency_ms"
    everything = points_of(p, "latency p99 from labels")
    visit(p, site + "/models/fraud?metric=latency_p99&days=7", "model-week")
    drawn(p)
    assert 0 < points_of(p, "latency p99 from labels") <= 8 < everything
    assert errors == []


def test_the_drift_page_ranks_features_and_compares_distributions(
    site: str, page: tuple[Any, list[str]]
) -> None:
    p, errors = page
    visit(p, site + "/models/fraud/drift", "drift")
    drawn(p)
    first = p.locator("table.drift tbody tr").first.locator("td")
    assert first.first.inner_text() == "amount"  # the feature the product change moved
    heads = texts(p.locator("table.drift thead th"))
    assert heads[:4] == ["column", "version", "method", "effect size"]
    assert "psi" in first.nth(2).inner_text() or "test" in first.nth(2).inner_text()
    assert p.locator("g.bars_marks path").count() > 4
    features = p.locator("table.drift tbody tr").count()
    assert p.locator("g.heatmap_marks path").count() > features  # features × windows
    labels = texts(p.locator("g.role-axis-label text"))
    assert not any("e+" in t for t in labels), labels  # bins read as numbers people write
    assert errors == []


def axis_ticks(host: Any) -> list[list[str]]:
    """The tick labels of each labelled axis of one drawn chart (grids are axes too)."""
    found = [texts(a.locator("g.role-axis-label text")) for a in host.locator("g.role-axis").all()]
    labelled = [ticks for ticks in found if ticks]
    assert len(labelled) == 2, found  # time and value
    return labelled


def test_the_segments_page_agrees_with_the_alerts_and_the_api(
    site: str, page: tuple[Any, list[str]]
) -> None:
    p, errors = page
    visit(p, site + "/models/fraud/segments", "segments")
    text = p.locator("table.segments").inner_text()
    assert "region=asia" in text
    # Every row has a value: a segment whose newest window has no labels yet shows its
    # newest window that has.
    values = [
        r.locator("td").nth(3).inner_text() for r in p.locator("table.segments tbody tr").all()
    ]
    assert values and all(v not in ("", "–") for v in values), values
    # Every alert open on a segment or a group is listed, and its gap row says so.
    firing = api(site, "/api/v1/alerts?state=firing&model=fraud")
    on_segments = [
        a for a in firing
        if a["labels"].get("segment", "*") != "*" or a["labels"].get("metric") in ON_SEGMENTS
    ]  # fmt: skip
    assert len(on_segments) >= 1  # the demo's segment-gap alerts
    listed = p.locator("table.segment-alerts tbody tr:has(a)")
    assert listed.count() == len(on_segments)
    flagged = [
        (row.locator("td").nth(0).inner_text(), row.locator("td").nth(1).inner_text())
        for row in p.locator("table.gaps tbody tr").all()
        if row.locator("td").last.inner_text() == "yes"
    ]
    # The demo's segment_gap rule groups by segment: its alerts name the segment alone.
    gap_alerts = {a["labels"]["segment"] for a in on_segments if a["rule"] == "segment_gap"}
    assert gap_alerts and {segment for segment, _ in flagged} == gap_alerts
    # The values are the API's for the same window.
    for row in p.locator("table.gaps tbody tr").all()[:3]:
        cells = [c.inner_text() for c in row.locator("td").all()]
        rows = api(site, f"/api/v1/models/fraud/metrics?metric=segment_gap&segment={cells[0]}")
        at = [
            r
            for r in rows
            if r["column"] == cells[1] and r["window_start"][:16].replace("T", " ") == cells[2]
        ]
        assert at and f"{at[0]['value']:.3g}" == cells[3], (cells, at)
    # The headline by segment over time: one line per region, intervals, events, ticks.
    host = p.locator('.chart-host[data-spec="segments-region"]')
    assert host.count() == 1
    legend = texts(host.locator("g.role-legend-label text"))
    assert {"region=asia", "region=europe"} <= set(legend), legend
    assert host.locator("g.band_marks path").count() >= 1
    label = host.locator("g.final_points_marks path").first.get_attribute("aria-label")
    assert "events:" in label, label
    assert all(len(ticks) >= 4 for ticks in axis_ticks(host)), axis_ticks(host)
    assert errors == []


def test_an_alert_page_draws_the_series_around_its_alert(
    site: str, page: tuple[Any, list[str]]
) -> None:
    p, errors = page
    alert = next(
        a for a in api(site, "/api/v1/alerts?model=fraud") if a["rule"] == "performance_drop"
    )
    visit(p, site + f"/models/fraud/alerts/{alert['alert_id']}", "alert-around")
    host = p.locator('.chart-host[data-spec="around"]')
    assert host.count() == 1
    assert host.locator("g.alert_marks_layer_0_marks line").count() == 1  # this alert only
    assert host.locator("g.final_points_marks path, g.provisional_points_marks path").count() > 5
    assert all(len(ticks) >= 4 for ticks in axis_ticks(host)), axis_ticks(host)
    assert errors == []


def test_a_series_can_be_picked_by_segment_and_version(
    site: str, page: tuple[Any, list[str]]
) -> None:
    p, errors = page
    visit(p, site + "/models/fraud?metric=roc_auc", "model-pickers")
    segments = p.locator("select[name=segment] option").all_inner_texts()
    assert "all traffic" in segments and "region=asia" in segments, segments
    versions = p.locator("select[name=version] option").all_inner_texts()
    assert versions[0] == "all" and len(versions) >= 3, versions  # versions 1 and 2
    with p.expect_navigation():
        p.locator("select[name=segment]").select_option("region=asia")
    drawn(p)
    rows = api(site, "/api/v1/models/fraud/metrics?metric=roc_auc&segment=region=asia")
    windows = {r["window_start"] for r in rows if r["value"] is not None}
    assert points_of(p, "roc auc from labels") == len(windows) > 0
    assert "for region=asia" in p.locator("h1").inner_text()
    visit(p, site + f"/models/fraud?metric=roc_auc&version={versions[-1]}", "model-version")
    rows = api(site, "/api/v1/models/fraud/metrics?metric=roc_auc&segment=*")
    mine = {
        r["window_start"]
        for r in rows
        if r["value"] is not None and r["model_version"] == versions[-1]
    }
    assert points_of(p, "roc auc from labels") == len(mine) > 0
    assert errors == []


def test_an_alert_can_be_acknowledged_and_closed_from_the_alerts_page(
    site: str, page: tuple[Any, list[str]]
) -> None:
    p, errors = page
    visit(p, site + "/alerts?model=fraud", "alerts")
    open_alerts = api(site, "/api/v1/alerts?state=firing&model=fraud")
    assert p.locator("table.open tbody tr").count() == len(open_alerts)
    target = p.locator("table.open tbody tr").first
    alert_id = target.locator("a").first.get_attribute("href").rsplit("/", 1)[1]
    with p.expect_navigation():
        target.locator("button.ack").click()
    assert api(site, f"/api/v1/alerts/{alert_id}")["acknowledged_by"] == "dashboard"
    row = p.locator(f'table.open tbody tr:has(a[href$="/{alert_id}"])')
    assert "acknowledged" in row.inner_text()
    row.locator("select").select_option("actionable")
    with p.expect_navigation():
        row.locator("button.close").click()
    assert api(site, f"/api/v1/alerts/{alert_id}")["verdict"] == "actionable"
    visit(p, site + f"/models/fraud/alerts/{alert_id}", "alert")
    assert p.locator("ol.hypotheses li").count() == 5  # the triage, on the alert's page
    assert errors == []


def test_the_api_reference_renders_offline_from_the_package(
    site: str, page: tuple[Any, list[str]]
) -> None:
    """/docs is Swagger UI from the installed package: its operations render, and no
    request leaves the machine (no CDN, no validator badge)."""
    p, errors = page
    asked: list[str] = []
    p.on("request", lambda r: asked.append(r.url))
    visit(p, site + "/docs", "api-docs")
    p.wait_for_selector(".opblock", timeout=30_000)
    assert p.locator(".opblock").count() > 10  # the API's operations, read from /openapi.json
    assert "watchkeeper" in p.locator(".info .title").inner_text()
    outside = [u for u in asked if not u.startswith((site, "data:"))]
    assert outside == [], outside
    assert errors == []


def test_the_alerts_list_filters_and_offers_only_the_actions_that_apply(
    site: str, page: tuple[Any, list[str]]
) -> None:
    p, errors = page
    everything = api(site, "/api/v1/alerts?model=fraud")
    severities = sorted({a["severity"] for a in everything})
    assert len(severities) >= 2  # the demo raises pages and tickets
    visit(p, site + f"/alerts?model=fraud&severity={severities[0]}", "alerts-filtered")
    shown = p.locator("table.alerts tbody tr:has(span.sev)")
    assert shown.count() == sum(a["severity"] == severities[0] for a in everything)
    assert {s.inner_text() for s in p.locator("table.alerts span.sev").all()} == {severities[0]}
    assert p.locator('select[name="severity"] option[selected]').inner_text() == severities[0]
    visit(p, site + "/alerts?model=fraud", "alerts-all")
    for row in p.locator("table.alerts tbody tr:has(span.sev)").all():
        cells = row.locator("td").all()
        summary, state = cells[4].inner_text(), cells[5].inner_text()
        first = summary.split("\n")[0]
        assert summary.count(first) == 1, summary  # the summary once, not again as evidence
        if not state.startswith("firing"):
            assert row.locator("button.ack").count() == 0, state  # nothing to acknowledge
    assert errors == []
