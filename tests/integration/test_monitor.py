"""Runs on a real DuckDB store: planted drift found, calm windows quiet, incremental runs
equal full recomputation, re-runs replace rows, result size independent of row count."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import watchkeeper
from tests.helpers import MONITOR_T0 as T0
from tests.helpers import MONITOR_YAML as YAML
from tests.helpers import Clock
from tests.helpers import monitor_rows as rows
from watchkeeper.config import parse_config
from watchkeeper.errors import NoReferenceError
from watchkeeper.store import Store
from watchkeeper.store.tables import WINDOW_PROFILES


def open_ws(tmp_path: Path, clock: Clock) -> watchkeeper.Workspace:
    return watchkeeper.open(parse_config(YAML, base_dir=tmp_path), clock=clock)


@pytest.fixture
def ws(tmp_path: Path, clock: Clock) -> Any:
    clock.now = T0 + timedelta(days=10)
    with open_ws(tmp_path, clock) as w:
        w.set_reference("m", rows(6000, T0 - timedelta(days=30), 24, seed=1))
        yield w


def drift_flags(table: pa.Table) -> set[tuple[datetime, str, str, str]]:
    out = set()
    for r in table.to_pylist():
        if r["metric"] == "drift" and r["status"] == "drifted":
            out.add((r["window_start"], r["segment_column"], r["segment_value"], r["column"]))
    return out


def test_planted_drift_is_found_where_it_is_and_nowhere_else(ws: watchkeeper.Workspace) -> None:
    ws.ingest_events("m", rows(2400, T0, 24, seed=2))  # a calm day
    ws.ingest_events("m", rows(2400, T0 + timedelta(days=1), 24, seed=3, shift_b=1.0))
    result = ws.run("m")
    flags = drift_flags(result.metrics)
    calm = {f for f in flags if f[0] < T0 + timedelta(days=1)}
    assert calm == set()
    shifted_windows = [T0 + timedelta(days=1, hours=h) for h in (0, 6, 12, 18)]
    for start in shifted_windows:
        assert (start, "region", "b", "x") in flags
        assert (start, "region", "a", "x") not in flags
        assert (start, "*", "*", "x") in flags  # half the traffic moved by one std
    assert {f[3] for f in flags} == {"x"}
    assert "drift in x (4 windows)" in result.summary()


def test_quality_metrics_are_right(ws: watchkeeper.Workspace) -> None:
    data = rows(1000, T0, 6, seed=4)
    x = data["x"].to_numpy().copy()
    x[:100] = np.nan
    data = data.set_column(data.schema.get_field_index("x"), "x", pa.array(x, from_pandas=True))
    ws.ingest_events("m", data)
    m = ws.run("m").to_pandas()
    overall = m[(m.segment_column == "*") & (m.window_start == T0)].set_index(["metric", "column"])
    assert overall.loc[("row_count", ""), "value"] == 1000
    assert overall.loc[("missing_rate", "x"), "value"] == pytest.approx(0.1)
    errors = (data["status"].to_numpy() == "error").mean()
    assert overall.loc[("error_rate", ""), "value"] == pytest.approx(errors)
    present = x[~np.isnan(x)]
    assert overall.loc[("mean", "x"), "value"] == pytest.approx(present.mean())
    assert overall.loc[("std", "x"), "value"] == pytest.approx(present.std())
    assert overall.loc[("unseen_rate", "c"), "value"] == 0.0


def test_small_windows_are_insufficient_not_numbers(ws: watchkeeper.Workspace) -> None:
    ws.ingest_events("m", rows(30, T0, 6, seed=5))
    m = ws.run("m").to_pandas()
    drift = m[m.metric.str.startswith("drift")]
    assert set(drift.status) == {"insufficient_data"}
    assert drift.value.isna().all()


def test_rerunning_replaces_rows(ws: watchkeeper.Workspace, clock: Clock) -> None:
    ws.ingest_events("m", rows(1200, T0, 12, seed=6))
    first = ws.run("m", full=True)
    clock.now += timedelta(hours=1)
    second = ws.run("m", full=True)
    assert second.metrics.num_rows == first.metrics.num_rows
    assert ws.metrics("m").num_rows == first.metrics.num_rows
    stored = ws.store.execute(ws.store.table(WINDOW_PROFILES)).num_rows
    clock.now += timedelta(hours=1)
    ws.run("m", full=True)
    assert ws.store.execute(ws.store.table(WINDOW_PROFILES)).num_rows == stored


# Windowed by when data arrived, not by event time: they differ between two stores that
# received the same data at different times, by design.
ARRIVAL_METRICS = {"quarantined_rows", "schema_changes"}


def comparable(table: pa.Table) -> list[tuple[Any, ...]]:
    keys = ["window_start", "model_version", "segment_column", "segment_value", "metric", "column"]
    out = []
    for r in table.to_pylist():
        if r["metric"] in ARRIVAL_METRICS:
            continue
        value = None if r["value"] is None else round(r["value"], 9)
        p = None if r["p_value"] is None else round(r["p_value"], 9)
        out.append((*[r[k] for k in keys], value, p, r["sample_size"], r["status"]))
    return sorted(out, key=repr)


def test_incremental_runs_equal_a_full_recomputation(tmp_path: Path, clock: Clock) -> None:
    ref = rows(6000, T0 - timedelta(days=30), 24, seed=1)
    day1 = rows(2400, T0, 24, seed=7)
    late = rows(300, T0 + timedelta(hours=7), 2, seed=8, prefix="late")
    day2 = rows(1200, T0 + timedelta(days=1), 12, seed=9, shift_b=0.7)
    labels = [
        {"id": i, "label": int(v)}
        for i, v in zip(day1["id"].to_pylist()[:500], day1["label"].to_pylist()[:500], strict=True)
    ]

    clock.now = T0 + timedelta(days=1)
    (tmp_path / "inc").mkdir()
    with open_ws(tmp_path / "inc", clock) as inc:
        inc.set_reference("m", ref)
        inc.ingest_events("m", day1)
        first = inc.run("m")
        assert len(first.windows) == 4
        clock.now = T0 + timedelta(days=2)
        inc.ingest_events("m", late)  # late events for 06:00-12:00 of day 1
        inc.ingest_labels("m", labels)  # late labels for day 1's first hours
        inc.ingest_events("m", day2)
        second = inc.run("m")
        # Only the windows that changed or closed since are recomputed.
        assert second.windows == [
            T0,  # late labels
            T0 + timedelta(hours=6),  # late events
            T0 + timedelta(days=1),  # new and closed
            T0 + timedelta(days=1, hours=6),
        ]
        incremental = inc.metrics("m")

    (tmp_path / "full").mkdir()
    with open_ws(tmp_path / "full", clock) as full:
        full.set_reference("m", ref)
        for part in (day1, late, day2):
            full.ingest_events("m", part)
        full.ingest_labels("m", labels)
        everything = full.run("m", full=True)
    assert comparable(incremental) == comparable(everything.metrics)


def test_late_labels_re_judge_a_window_at_most_every_quarter_of_it(
    tmp_path: Path, clock: Clock
) -> None:
    """A window only late labels touched is recomputed once a quarter of its size has passed
    since its last computation; late events recompute it at once."""
    ref = rows(6000, T0 - timedelta(days=30), 24, seed=1)
    day1 = rows(2400, T0, 24, seed=7)
    ids, values = day1["id"].to_pylist(), day1["label"].to_pylist()
    labels = [{"id": i, "label": int(v)} for i, v in zip(ids[:300], values[:300], strict=True)]
    more = [{"id": i, "label": int(v)} for i, v in zip(ids[300:500], values[300:500], strict=True)]
    clock.now = T0 + timedelta(days=1)
    with open_ws(tmp_path, clock) as ws:
        ws.set_reference("m", ref)
        ws.ingest_events("m", day1)
        assert len(ws.run("m").windows) == 4  # 6-hour windows
        clock.now += timedelta(minutes=30)
        ws.ingest_labels("m", labels)
        assert ws.run("m").windows == []  # computed 30 minutes ago: not yet
        clock.now += timedelta(hours=1, minutes=5)
        assert ws.run("m").windows == [T0]  # a quarter of six hours has passed
        clock.now += timedelta(minutes=10)
        ws.ingest_labels("m", more)
        assert ws.run("m").windows == []
        ws.ingest_events("m", rows(50, T0 + timedelta(hours=1), 1, seed=5, prefix="late"))
        assert ws.run("m").windows == [T0]  # new events: at once


def test_result_size_does_not_grow_with_rows(tmp_path: Path, clock: Clock) -> None:
    sizes = []
    for n in (1500, 15000):
        folder = tmp_path / str(n)
        folder.mkdir()
        clock.now = T0 + timedelta(days=2)
        with open_ws(folder, clock) as w:
            w.set_reference("m", rows(6000, T0 - timedelta(days=30), 24, seed=1))
            w.ingest_events("m", rows(n, T0, 24, seed=10))
            result = w.run("m")
            profiles = w.store.execute(w.store.table(WINDOW_PROFILES))
            sizes.append(
                (
                    result.metrics.num_rows,
                    profiles.num_rows,
                    sum(len(p) for p in profiles["profile"].to_pylist()),
                )
            )
    (m1, p1, b1), (m2, p2, b2) = sizes
    assert (m1, p1) == (m2, p2)
    assert b2 < b1 * 1.2  # the stored counts grow in digits, not in number


def test_a_model_without_reference_says_how_to_add_one(tmp_path: Path, clock: Clock) -> None:
    clock.now = T0 + timedelta(days=2)
    with open_ws(tmp_path, clock) as w:
        w.ingest_events("m", rows(100, T0, 6, seed=11))
        with pytest.raises(NoReferenceError, match="watchkeeper reference set --model m"):
            w.run("m")


def test_each_version_is_compared_with_its_own_reference(ws: watchkeeper.Workspace) -> None:
    # version 2 was trained on shifted data: its events are normal for it
    ref2 = rows(6000, T0 - timedelta(days=30), 24, seed=13, shift_b=2.0)
    cfg = ws.config.model("m")
    assert cfg.columns.model_version is None
    ws.set_reference("m", ref2, version="2")
    ws.ingest_events("m", rows(1200, T0, 6, seed=12, shift_b=2.0, prefix="v2"), version="2")
    ws.ingest_events("m", rows(1200, T0, 6, seed=14, prefix="v1"))
    m = ws.run("m").to_pandas()
    flagged = m[(m.metric == "drift") & (m.status == "drifted")]
    assert flagged.empty, flagged[
        ["model_version", "segment_column", "segment_value", "column", "detail"]
    ]
    assert set(m.model_version) == {"1", "2"}


def test_benjamini_hochberg_matches_scipy() -> None:
    from scipy.stats import false_discovery_control

    from watchkeeper.stats.multiple import benjamini_hochberg

    p = np.random.default_rng(0).uniform(size=50) ** 3
    assert benjamini_hochberg(list(p)) == pytest.approx(list(false_discovery_control(p)))


def test_quarantine_and_schema_changes_are_metrics_of_their_arrival_window(
    ws: watchkeeper.Workspace, clock: Clock
) -> None:
    data = rows(600, T0, 6, seed=15).append_column("surprise", pa.array([1] * 600))
    bad = rows(3, T0, 1, seed=16, prefix="bad").to_pylist()
    for r in bad:
        r["x"] = "not a number"
    clock.now = T0 + timedelta(hours=2)  # they arrive during the first window
    ws.ingest_events("m", data)
    ws.ingest_events("m", bad)
    clock.now = T0 + timedelta(days=1)
    m = ws.run("m").to_pandas()
    q = m[m.metric == "quarantined_rows"]
    assert q[["window_start", "column", "value"]].values.tolist() == [[T0, "bad_type", 3.0]]
    s = m[m.metric == "schema_changes"].iloc[0]
    assert (s.window_start, s.status) == (T0, "changed")
    assert "unexpected: label, surprise" in s.detail


@pytest.mark.parametrize("full", [False, True])
def test_a_run_in_batches_of_windows_equals_one_batch(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch, full: bool
) -> None:
    """A backfill computes its windows a batch at a time (bounded memory); the metrics are
    the same as computing them all at once, and every window is computed once."""
    from watchkeeper.monitor import runs

    ref = rows(6000, T0 - timedelta(days=30), 24, seed=1)
    events = rows(4800, T0, 48, seed=2, shift_b=0.5)
    clock.now = T0 + timedelta(days=3)
    results = {}
    shed: list[int] = []
    monkeypatch.setattr(Store, "shed_cache", lambda self: shed.append(1))
    for batch in (1_000, 3):
        monkeypatch.setattr(runs, "BATCH_WINDOWS", batch)
        (tmp_path / str(batch)).mkdir()
        with open_ws(tmp_path / str(batch), clock) as w:
            w.set_reference("m", ref)
            w.ingest_events("m", events)
            shed.clear()
            result = w.run("m", full=full)
            # Between batches the run gives back DuckDB's cache; one batch has nothing to.
            assert len(shed) == (0 if batch == 1_000 else 3)
            assert result.windows == sorted(set(result.windows))
            assert len(result.windows) == 8  # two days of 6-hour windows
            results[batch] = (
                result.windows,
                comparable(result.metrics),
                comparable(w.metrics("m")),
                result.metric_count,
                sorted(result.drifted(), key=repr),
            )
    assert results[3] == results[1_000]
    assert results[3][1] == results[3][2]  # what the run returns is what it stored
    assert results[3][3] == len(results[3][1]) and results[3][4]  # planted drift found
