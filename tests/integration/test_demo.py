"""The demo catches each planted incident, and its calm stretch raises no page."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import watchkeeper
from watchkeeper.demo import INCIDENTS, START


def day(when: Any) -> int:
    return int((when - START) / timedelta(days=1))


def alerts(ws: watchkeeper.Workspace, rule: str) -> list[dict[str, Any]]:
    found = ws.alerts("fraud")
    for a in found:
        a["labels"] = json.loads(a["labels"]) if isinstance(a["labels"], str) else a["labels"]
    return [a for a in found if a["rule"] == rule]


def test_the_calm_stretch_raises_no_page(demo: tuple[Path, watchkeeper.Workspace]) -> None:
    _, ws = demo
    early = [a for a in ws.alerts() if a["severity"] == "page" and day(a["window_start"]) < 20]
    assert early == []


def test_the_product_change_for_new_users_is_caught(
    demo: tuple[Path, watchkeeper.Workspace],
) -> None:
    _, ws = demo
    first = INCIDENTS["product_change"][0]
    drift = [a for a in alerts(ws, "feature_drift") if a["labels"]["column"] == "amount"]
    assert drift and first <= min(day(a["window_start"]) for a in drift) <= first + 3
    # The drift is the new users' own: their amounts moved, the returning users' did not.
    drift = ws.metrics("fraud", metric="drift", column="amount", segment="user_type").to_pylist()
    drifted = {
        (r["segment_value"], day(r["window_start"]) >= first)
        for r in drift
        if r["status"] == "drifted"
    }
    assert ("new", True) in drifted and ("returning", True) not in drifted
    assert ("new", False) not in drifted


def test_the_latency_incident_pages_infrastructure(
    demo: tuple[Path, watchkeeper.Workspace],
) -> None:
    _, ws = demo
    first, last = INCIDENTS["latency"]
    pages = alerts(ws, "latency") + alerts(ws, "error_rate")
    assert pages and all(first <= day(a["window_start"]) < last + 1 for a in pages)
    assert {a["owner"] for a in pages} == {"infrastructure"}
    triage = ws.triage("fraud", alert=pages[0]["alert_id"])
    assert triage.top.cause == "infrastructure"


def test_the_region_where_the_model_quietly_fails_is_found(
    demo: tuple[Path, watchkeeper.Workspace],
) -> None:
    _, ws = demo
    first = INCIDENTS["segment_failure"][0]
    asia = [a for a in alerts(ws, "segment_gap") if a["labels"]["segment"] == "region=asia"]
    assert asia and min(day(a["window_start"]) for a in asia) >= first
    degrading = [a for a in alerts(ws, "model_degrading") if a["severity"] == "page"]
    assert degrading and min(day(a["window_start"]) for a in degrading) >= first
    triage = ws.triage("fraud", alert=degrading[0]["alert_id"])
    assert "region=asia" in triage.top.action


def test_the_worse_model_version_is_caught_and_rolled_back(
    demo: tuple[Path, watchkeeper.Workspace],
) -> None:
    _, ws = demo
    first = INCIDENTS["version_rollout"][0]
    drops = [a for a in alerts(ws, "performance_drop") if a["labels"].get("version") == "2"]
    assert drops and min(day(a["window_start"]) for a in drops) >= first
    triage = ws.triage("fraud", alert=drops[0]["alert_id"])
    assert triage.top.cause == "model" and "roll back to version 1" in triage.top.action
    # Before any label: the new version's scores differ from version 1's on the same traffic.
    changed = [a for a in alerts(ws, "model_change") if a["labels"].get("version") == "2"]
    assert changed and first <= min(day(a["window_start"]) for a in changed) < first + 1
    assert all(a["severity"] == "page" for a in changed)
    # Its triage reads the model's daily windows (the alert's six-hourly ones carry no
    # headline metric), with the short windows' version comparison as its evidence.
    early = ws.triage("fraud", alert=changed[0]["alert_id"])
    assert early.top.cause == "model" and "version 2" in " ".join(early.top.evidence)


def test_the_demo_writes_its_report_and_says_how_to_open_the_dashboard(
    demo: tuple[Path, watchkeeper.Workspace],
) -> None:
    folder, _ = demo
    text = (folder / "output.txt").read_text()
    assert "pages during the calm stretch (days 0-19): 0" in text
    assert "serve --now" in text and "http://127.0.0.1:8765/" in text
    report = (folder / "report.html").read_text()
    assert len(report.encode()) < 1_000_000 and "Needs action now" in report
