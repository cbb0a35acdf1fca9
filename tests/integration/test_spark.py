"""The same run on Spark (local[2], Ibis' pyspark backend) gives DuckDB's metrics: exactly
for counts and histograms, within a tight tolerance for floating sums."""

from __future__ import annotations

import gc
import importlib.util
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import watchkeeper
from tests.helpers import MONITOR_T0 as T0
from tests.helpers import MONITOR_YAML as YAML
from tests.helpers import Clock, need
from tests.helpers import monitor_rows as rows
from watchkeeper.config import parse_config

pytestmark = [
    pytest.mark.integration,
    # py4j leaves its sockets to the garbage collector
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    need(shutil.which("java") is not None, "Spark needs Java (Debian: openjdk-17-jre-headless)")
    need(importlib.util.find_spec("pyspark") is not None, "pyspark is not installed")
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Spark's Python workers must be this Python (another minor version is refused), not
    # whatever `python3` is on the PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("watchkeeper-test")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    # py4j's sockets are left to the garbage collector: collect them here, where their
    # ResourceWarning is ignored, not in whichever test runs next in this process.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def keyed(table: Any) -> dict[tuple[Any, ...], dict[str, Any]]:
    keys = ["window_start", "model_version", "segment_column", "segment_value", "metric", "column"]
    return {tuple(r[k] for k in keys): r for r in table.to_pylist()}


def test_a_run_on_spark_equals_the_run_on_duckdb(spark: Any, tmp_path: Path, clock: Clock) -> None:
    import ibis

    clock.now = T0 + timedelta(days=2)
    config = parse_config(YAML, base_dir=tmp_path)
    with watchkeeper.open(config, clock=clock) as ws:
        ws.set_reference("m", rows(6000, T0 - timedelta(days=30), 24, seed=1))
        ws.ingest_events("m", rows(3000, T0, 24, seed=2, shift_b=0.8))
        ws.ingest_labels("m", rows(3000, T0, 24, seed=2).select(["id", "label"]).slice(0, 2000))
        on_duckdb = ws.run("m", full=True).metrics
        # The team's pipeline wrote the same events and labels where Spark reads them.
        for kind in ("events", "labels"):
            path = tmp_path / f"{kind}.parquet"
            pq.write_table(ws.store.execute(ws.store.table(f"{kind}_m")), path)
            spark.read.parquet(str(path)).createOrReplaceTempView(f"{kind}_m")

    with watchkeeper.open(config, clock=clock, events_backend=ibis.pyspark.connect(spark)) as ws:
        assert ws.events_store.engine == "pyspark"
        on_spark = ws.run("m", full=True).metrics

    duck, sprk = keyed(on_duckdb), keyed(on_spark)
    assert duck.keys() == sprk.keys()
    assert len(duck) > 300
    for key, a in duck.items():
        b = sprk[key]
        assert (a["sample_size"], a["status"]) == (b["sample_size"], b["status"]), key
        for field in ("value", "p_value"):
            if a[field] is None:
                assert b[field] is None, key
            else:
                assert b[field] == pytest.approx(a[field], rel=1e-9, abs=1e-12), (key, field)
    drifted = [k for k, r in duck.items() if k[4] == "drift" and r["status"] == "drifted"]
    assert drifted  # the planted shift is found on both


def test_events_url_reads_events_from_another_engine(tmp_path: Path, clock: Clock) -> None:
    clock.now = T0 + timedelta(days=2)
    other = tmp_path / "lake.duckdb"
    config = parse_config(YAML, base_dir=tmp_path)
    with watchkeeper.open(config, clock=clock) as ws:
        ws.set_reference("m", rows(6000, T0 - timedelta(days=30), 24, seed=1))
        ws.ingest_events("m", rows(1200, T0, 12, seed=3))
        expected = ws.run("m", full=True).metrics
        events = ws.store.execute(ws.store.table("events_m"))
    import duckdb

    con = duckdb.connect(str(other))
    con.register("incoming", events)
    con.execute("CREATE TABLE events_m AS SELECT * FROM incoming")
    con.close()
    moved = parse_config(
        YAML.replace(
            "engine: {path: store.duckdb}",
            f"engine: {{path: metrics.duckdb, events_url: 'duckdb://{other}'}}",
        ),
        base_dir=tmp_path,
    )
    (tmp_path / "metrics.duckdb").unlink(missing_ok=True)
    with watchkeeper.open(moved, clock=clock) as ws:
        ws.set_reference("m", rows(6000, T0 - timedelta(days=30), 24, seed=1))
        assert ws.count("m", "events") == 0  # the store itself holds no events
        found = ws.run("m", full=True).metrics
    assert found.num_rows == expected.num_rows
    assert datetime(2026, 4, 1, tzinfo=UTC) in set(found["window_start"].to_pylist())


def test_rows_stream_from_spark_a_batch_at_a_time(spark: Any, tmp_path: Path) -> None:
    """What direct loss estimation reads: the rows of a query, in batches of at most the
    size asked, the same rows DuckDB gives."""
    import ibis

    from watchkeeper.store import Store

    table = rows(2_500, T0, 24, seed=4)
    spark.createDataFrame(table.to_pandas()).createOrReplaceTempView("wk_stream_test")
    store = Store(ibis.pyspark.connect(spark), "pyspark://")
    t = store.table("wk_stream_test")
    found = list(store.batches(t.filter(t.x > 0).select("id", "x"), rows=1_000))
    assert len(found) > 1 and all(b.num_rows <= 1_000 for b in found)
    streamed = sorted(r["id"] for b in found for r in b.to_pylist())
    local = table.to_pandas()
    assert streamed == sorted(local.loc[local["x"] > 0, "id"])


def test_closing_a_workspace_leaves_the_teams_spark_session_running(
    spark: Any, tmp_path: Path
) -> None:
    import ibis

    with watchkeeper.open(
        parse_config(YAML, base_dir=tmp_path), events_backend=ibis.pyspark.connect(spark)
    ):
        pass
    assert spark.range(3).count() == 3  # still usable
