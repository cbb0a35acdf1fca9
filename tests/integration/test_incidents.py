"""The incident library: each class plants what it says, drawn differently by each seed,
and the replay lives through a history honestly (nothing known before it arrives) and
grades it against its truth."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from watchkeeper.config import load_config
from watchkeeper.incidents import CLASSES, QUIET, REGRESSION, draw
from watchkeeper.incidents.classes import START, Truth
from watchkeeper.incidents.replay import Raised, Replayed, config_for, replay


def after(frame: pd.DataFrame, start: datetime | None, column: str = "timestamp") -> pd.Series:
    return frame[column] >= pd.Timestamp(start)


@pytest.mark.parametrize("kind", [*CLASSES, *REGRESSION])
def test_every_class_draws_a_deterministic_history_with_its_truth(kind: str) -> None:
    a, b, other = draw(kind, 1, days=14), draw(kind, 1, days=14), draw(kind, 2, days=14)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert not a.events["event_id"].duplicated().any()
    assert a.truth.kind == kind
    if kind not in ("calm", "regression_calm"):
        assert a.truth.start is not None and START < a.truth.start < START + timedelta(days=14)
        assert other.truth != a.truth or not other.events.equals(a.events)
    assert (a.truth.severity is None) == (kind in QUIET or kind == "regression_calm")
    # The config init --from writes for the history loads, and names its label column.
    text = config_for(a)
    assert f"column: {a.label}" in text


def test_the_planted_changes_are_in_the_data() -> None:
    broken = draw("pipeline_break", 3, days=16)
    t = broken.truth
    ev = broken.events
    later, before = ev[after(ev, t.start)], ev[~after(ev, t.start)]
    moved = {
        "amount": abs(np.log(later["amount"].median() / before["amount"].median())) > 3,
        "tenure_days": later["tenure_days"].isna().mean() > 0.25,
        "channel": later["channel"].str.endswith("_v2").any(),
    }
    assert t.features and all(moved[f] for f in t.features)
    assert not any(moved[f] for f in moved if f not in t.features)

    rollout = draw("bad_rollout", 1, days=16)
    ev = rollout.events
    assert (ev.loc[~after(ev, rollout.truth.start), "model_version"] == "1").all()
    assert (ev.loc[after(ev, rollout.truth.start), "model_version"] == "2").mean() > 0.5

    serving = draw("serving", 1, days=14)
    ev, t = serving.events, serving.truth
    during = after(ev, t.start) & ~after(ev, t.end)
    assert ev.loc[during, "latency_ms"].median() > 2.5 * ev.loc[~during, "latency_ms"].median()
    assert (ev.loc[during, "status"] == "timeout").mean() > 0.04
    assert ev.loc[ev["status"] != "ok", "score"].isna().all()  # failed requests: no score

    stall = draw("label_stall", 1, days=20)
    assert (stall.labels["label_timestamp"] < pd.Timestamp(stall.truth.start)).all()

    # A concept shift: the same inputs and scores, a much worse ranking once it starts.
    concept = draw("concept_shift", 2, days=18)
    joined = concept.events.merge(concept.labels, on="event_id")
    late = after(joined, concept.truth.start)
    auc_before = roc_auc_score(joined.loc[~late, "label"], joined.loc[~late, "score"])
    auc_after = roc_auc_score(joined.loc[late, "label"], joined.loc[late, "score"])
    assert auc_before > 0.75 and auc_after < auc_before - 0.1
    assert abs(joined.loc[late, "score"].mean() - joined.loc[~late, "score"].mean()) < 0.02

    # The intersection is about 5% of traffic and fails there only.
    cross = draw("intersection", 1, days=18)
    joined = cross.events.merge(cross.labels, on="event_id")
    mask = (joined["region"] == "west") & (joined["device"] == "android")
    assert 0.03 < mask.mean() < 0.07
    late = after(joined, cross.truth.start) & mask
    assert roc_auc_score(joined.loc[late, "label"], joined.loc[late, "score"]) < 0.5

    trivial = draw("trivial_shift", 1, days=20)
    assert len(trivial.events) > 8 * len(draw("calm", 1, days=20).events)


def test_grading_follows_the_truth() -> None:
    start = START + timedelta(days=10)
    truth = Truth("serving", "infrastructure", "page", start, None, start + timedelta(hours=1))
    done = Replayed("serving/1", truth)
    done.raised = [
        Raised(start - timedelta(days=2), "firing", "a0", "feature_drift", "ticket", {}, start,
               "noise"),
        Raised(start + timedelta(minutes=50), "firing", "a1", "latency", "page", {}, start,
               "latency p99 up"),
    ]  # fmt: skip
    assert done.caught and done.hours_to_page == pytest.approx(50 / 60)
    assert done.count("ticket", before=True) == 1 and done.count("page") == 1
    slow = Raised(start + timedelta(hours=3), "firing", "a1", "latency", "page", {}, start, "")
    late = Replayed("serving/1", truth, [done.raised[0], slow])
    assert late.caught is False
    gap = Truth("fairness_gap", "model", "ticket", start, None, start + timedelta(days=7),
                segment="age_band=60+")  # fmt: skip
    day = start + timedelta(days=1)
    east = Raised(day, "firing", "b", "x", "ticket", {"segment": "region=east"}, start, "")
    old = Raised(day, "firing", "b", "x", "ticket", {"segment": "age_band=60+"}, start, "")
    unnamed, named = Replayed("f/1", gap, [east]), Replayed("f/1", gap, [old])
    assert unnamed.caught is False and named.caught is True


def test_a_serving_incident_replayed_hour_by_hour_pages_within_the_hour(tmp_path: Path) -> None:
    history = draw("serving", 4, days=5, start_day=4.3)
    done = replay(history, directory=tmp_path)
    assert done.caught, done.raised
    assert done.hours_to_page is not None and done.hours_to_page <= 1
    assert done.count("page", before=True) == 0
    assert done.triage is not None and done.triage["cause"] == "infrastructure"
    # Honest: every label was stored after it arrived, every event after its hour.
    import duckdb

    cfg = load_config(tmp_path / "watchkeeper.yaml")
    con = duckdb.connect(str(tmp_path / cfg.engine.path), read_only=True)
    tables = {r[0] for r in con.execute("show tables").fetchall()}
    labels = next(t for t in tables if t.startswith("labels"))
    late = con.execute(
        f"select count(*) from {labels} where wk_ingested_at < label_timestamp"
    ).fetchone()
    con.close()
    assert late == (0,)


def test_a_page_on_a_short_window_is_triaged_on_that_windows_evidence(tmp_path: Path) -> None:
    """A broken feature pages on six-hourly windows, before the day holding it closes:
    triage reads those windows (the feature, unseen or out of range) and blames the data."""
    from watchkeeper.incidents.replay import _Clock
    from watchkeeper.workspace import Workspace

    history = draw("pipeline_break", 4, days=11, start_day=9.25)  # a renamed category
    end = history.truth.start + timedelta(hours=16)  # type: ignore[operator]
    (tmp_path / "watchkeeper.yaml").write_text(config_for(history), encoding="utf-8")
    with Workspace.open(tmp_path / "watchkeeper.yaml", clock=_Clock(end)) as ws:
        ws.set_reference(history.model, history.reference)
        ws.ingest_events(history.model, history.events[~after(history.events, end)])
        arrived = history.labels["label_timestamp"] < pd.Timestamp(end)
        ws.ingest_labels(history.model, history.labels[arrived])
        ws.cycle([history.model], full=True)
        broken = [a for a in ws.alerts(history.model) if a["rule"] == "input_broken"]
        assert broken and all(a["severity"] == "page" for a in broken)
        found = ws.triage(history.model, alert=broken[0]["alert_id"])
    assert found.top.cause == "data", found.top
    assert "channel" in " ".join(found.top.evidence)
