"""A family that raises costs only its own metrics; a run that raises is recorded as failed;
the cycle is one call for every door, and the non-strict cycle (the scheduler's) goes on."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import watchkeeper
from tests.helpers import MONITOR_T0 as T0
from tests.helpers import MONITOR_YAML as YAML
from tests.helpers import Clock
from tests.helpers import monitor_rows as rows
from watchkeeper.catalogue import CATALOGUE
from watchkeeper.config import parse_config
from watchkeeper.errors import StoreError
from watchkeeper.metrics import family as family_module
from watchkeeper.metrics import registry


@pytest.fixture
def ws(tmp_path: Path, clock: Clock) -> Any:
    clock.now = T0 + timedelta(days=2)
    with watchkeeper.open(parse_config(YAML, base_dir=tmp_path), clock=clock) as w:
        w.set_reference("m", rows(3000, T0 - timedelta(days=30), 24, seed=1))
        w.ingest_events("m", rows(2400, T0, 24, seed=2))
        yield w


def runs(ws: watchkeeper.Workspace) -> list[dict[str, Any]]:
    return ws.runs("m")


def test_a_family_that_raises_leaves_an_error_row_and_the_others_go_on(
    ws: watchkeeper.Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(ctx: Any, agg: Any) -> Any:
        raise RuntimeError("the drift family broke")

    families = tuple(
        family_module.Family(f.key, f.description, f.emits, broken, f.history)
        if f.key == "drift"
        else f
        for f in registry.FAMILIES
    )
    monkeypatch.setattr("watchkeeper.monitor.runs.FAMILIES", families)
    result = ws.run("m")
    found = result.metrics.to_pylist()
    errors = [r for r in found if r["metric"] == "family_error"]
    assert {r["column"] for r in errors} == {"drift"}
    assert len(errors) == len(result.windows) == 4
    assert all(r["status"] == "error" and "the drift family broke" in r["detail"] for r in errors)
    assert not [r for r in found if r["metric"].startswith("drift")]
    assert [r for r in found if r["metric"] == "missing_rate"]  # the other families ran
    assert "the drift metrics failed" in "\n".join(result.notes)
    last = runs(ws)[0]
    assert last["status"] == "partial"
    assert "drift" in json.loads(last["detail"])["errors"]


def test_a_run_that_raises_is_recorded_as_failed(
    ws: watchkeeper.Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("the engine went away")

    monkeypatch.setattr("watchkeeper.monitor.runs.gather", broken)
    with pytest.raises(StoreError, match="went away"):
        ws.run("m")
    last = runs(ws)[0]
    assert last["status"] == "failed"
    assert "went away" in json.loads(last["detail"])["notes"][0]


def test_every_emitted_metric_is_catalogued(ws: watchkeeper.Workspace) -> None:
    names = {r["metric"] for r in ws.run("m", full=True).metrics.to_pylist()}
    assert names and names <= set(CATALOGUE)


def test_the_cycle_runs_evaluates_and_goes_on_past_a_failure(
    ws: watchkeeper.Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = ws.cycle()
    assert list(done.runs) == ["m"] and done.runs["m"].windows
    assert done.failed == {}

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("the engine went away")

    monkeypatch.setattr("watchkeeper.monitor.runs.gather", broken)
    ws.ingest_events("m", rows(100, T0 + timedelta(days=1), 1, seed=5))
    done = ws.cycle(strict=False)
    assert "went away" in done.failed["m"]
    with pytest.raises(StoreError):
        ws.cycle()


CHILD_RUN = """
import sys
from datetime import datetime
import watchkeeper
from watchkeeper.config import parse_config
config = parse_config(open(sys.argv[1]).read(), base_dir=__import__("pathlib").Path(sys.argv[2]))
now = datetime.fromisoformat(sys.argv[3])
with watchkeeper.open(config, clock=lambda: now) as ws:
    print("started", flush=True)
    ws.run("m")
    print("done", flush=True)
"""


def _metrics(path: Path) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            'SELECT window_start::VARCHAR, metric, "column", segment_column, segment_value, '
            "model_version, round(value, 9), sample_size FROM metrics ORDER BY ALL"
        ).fetchall()


def test_a_run_killed_midway_loses_nothing_and_doubles_nothing_after_restart(
    tmp_path: Path,
) -> None:
    """kill -9 during a run over many windows; the rerun's metrics equal those of a run
    that was never interrupted, each once."""
    import shutil
    import subprocess
    import sys
    import time

    yaml = YAML.replace("window: 6h", "window: 1h")
    (tmp_path / "watchkeeper.yaml").write_text(yaml)
    (tmp_path / "child.py").write_text(CHILD_RUN)
    now = T0 + timedelta(days=9)
    with watchkeeper.open(parse_config(yaml, base_dir=tmp_path), clock=Clock(now)) as w:
        w.set_reference("m", rows(3000, T0 - timedelta(days=30), 24, seed=1))
        w.ingest_events("m", rows(24_000, T0, 24 * 8, seed=2))
    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(tmp_path / "store.duckdb", clean / "store.duckdb")
    (clean / "watchkeeper.yaml").write_text(yaml)

    def child(where: Path) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(tmp_path / "child.py"), str(where / "watchkeeper.yaml"),
             str(where), now.isoformat()],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    whole = child(clean)
    began = time.monotonic()
    assert whole.communicate(timeout=600)[0].split() == ["started", "done"]
    took = time.monotonic() - began
    killed = child(tmp_path)
    assert killed.stdout is not None and killed.stdout.readline().strip() == "started"
    time.sleep(max(took * 0.4, 1.0))
    assert killed.poll() is None, "the run ended before it could be killed"
    killed.kill()  # SIGKILL: no cleanup of any kind
    killed.wait()
    killed.stdout.close()
    again = child(tmp_path)
    assert again.communicate(timeout=600)[0].split() == ["started", "done"]
    after, expected = _metrics(tmp_path / "store.duckdb"), _metrics(clean / "store.duckdb")
    assert len(after) == len(set(after)), "a metric row stored twice"
    keys = [r[:6] for r in after]
    assert len(keys) == len(set(keys)), "a window's metric stored twice"
    assert after == expected
