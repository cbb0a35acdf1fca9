"""The serving SDK: the ASGI middleware and the decorator log each served prediction with
its latency and status (failed requests counted, not lost), and the asyncio logger sends
from the event loop without blocking it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

import watchkeeper
from tests.helpers import MODEL_YAML, event, free_port, serving
from watchkeeper.client import (
    AsyncLogger,
    DirectLogger,
    WatchkeeperMiddleware,
    current_event_id,
    record,
    watch,
)
from watchkeeper.client.logger import DEFAULT_NAMES
from watchkeeper.config import Config, parse_config


def _run(coroutine: Any) -> Any:
    """asyncio.run on a thread of its own, so a loop another fixture keeps open on the main
    thread (Playwright's sync API) cannot refuse it."""
    found: dict[str, Any] = {}

    def main() -> None:
        try:
            found["value"] = asyncio.run(coroutine)
        except BaseException as error:  # re-raised on the caller's thread
            found["error"] = error

    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
    if "error" in found:
        raise found["error"]
    return found.get("value")


FEATURES = {"amount": 12.5, "country": "US", "channel": "web", "is_new": False, "region": "north"}


def config(tmp_path: Path) -> Config:
    return parse_config(MODEL_YAML + "server:\n  schedule_every: null\n", base_dir=tmp_path)


class Rows:
    """A logger that keeps what it is given."""

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self.names = {**DEFAULT_NAMES, **(names or {})}
        self.rows: list[dict[str, Any]] = []

    def log_prediction(self, event: Mapping[str, Any]) -> bool:
        self.rows.append(dict(event))
        return True


def service(logger: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(WatchkeeperMiddleware, logger=logger, paths=["/predict"], version="3")

    @app.post("/predict")
    async def predict(features: dict[str, Any]) -> dict[str, Any]:
        if features.get("amount", 0) < 0:
            raise HTTPException(422, "amount must not be negative")
        if features.get("channel") == "broken":
            raise RuntimeError("the model crashed")
        if features.get("channel") == "slow":
            raise HTTPException(504, "the model timed out")
        score = 0.9 if features["amount"] > 100 else 0.1
        event_id = record(features, score=score, pred=int(score >= 0.5))
        return {"event_id": event_id, "score": score}

    @app.post("/predict/sync")
    def predict_sync(features: dict[str, Any]) -> dict[str, Any]:  # run in a thread pool
        record(features, score=0.2, pred=0)
        return {"event_id": current_event_id()}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"ok": "yes"}

    return app


def test_the_middleware_logs_served_and_failed_requests_into_the_store(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    with watchkeeper.open(cfg) as ws:
        logger = DirectLogger(ws, "fraud")
        with TestClient(service(logger), raise_server_exceptions=False) as client:
            ids = [
                client.post("/predict", json={**FEATURES, "amount": a}).json()["event_id"]
                for a in (5.0, 500.0, 50.0)
            ]
            sync_id = client.post("/predict/sync", json=FEATURES).json()["event_id"]
            assert (
                client.post("/predict", json={**FEATURES, "channel": "broken"}).status_code == 500
            )
            assert client.post("/predict", json={**FEATURES, "channel": "slow"}).status_code == 504
            assert client.post("/predict", json={**FEATURES, "amount": -1}).status_code == 422
            assert client.get("/health").status_code == 200
        logger.close()
        assert len(set(ids)) == 3 and sync_id and sync_id not in ids
        rows = ws.events("fraud").to_pyarrow().to_pylist()
        quarantined = ws.quarantine("fraud").to_pylist()
    # Served predictions with what the endpoint recorded, the config's column names, the
    # version and a latency; the crash and the timeout counted; health and the 422 not.
    assert not quarantined
    by_status: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_status.setdefault(row["status"], []).append(row)
    assert sorted(by_status) == ["error", "ok", "timeout"]
    assert len(by_status["ok"]) == 4 and len(by_status["error"]) == 1
    assert len(by_status["timeout"]) == 1
    served = {r["id"]: r for r in by_status["ok"]}
    assert set(served) == {*ids, sync_id}
    assert served[ids[1]]["score"] == pytest.approx(0.9) and served[ids[1]]["pred"] == 1
    assert all(r["wk_model_version"] == "3" and r["latency_ms"] > 0 for r in rows)
    assert all(r["ts"] is not None for r in rows)
    failed = by_status["error"][0]
    assert failed["score"] is None and failed["amount"] == 12.5  # its features from the body


def test_record_outside_a_watched_request_says_so() -> None:
    with pytest.raises(LookupError, match="WatchkeeperMiddleware"):
        record({"amount": 1.0})
    assert current_event_id() is None


def test_watch_logs_each_call_with_its_latency_and_reraises_failures() -> None:
    logger = Rows({"event_id": "id", "timestamp": "ts"})

    @watch(logger, version="7")
    def predict(features: Mapping[str, Any]) -> float:
        if features["amount"] < 0:
            raise ValueError("negative")
        time.sleep(0.01)
        return 0.75

    assert predict({"id": "given", "amount": 3.0}) == 0.75
    with pytest.raises(ValueError):
        predict({"amount": -1.0})
    ok, failed = logger.rows
    assert ok["id"] == "given" and ok["score"] == 0.75 and ok["status"] == "ok"
    assert ok["latency_ms"] >= 10 and ok["model_version"] == "7" and ok["ts"] is not None
    assert failed["status"] == "error" and "score" not in failed and len(failed["id"]) == 32


def test_watch_takes_async_functions_and_merges_a_mapping_result() -> None:
    logger = Rows()

    @watch(logger)
    async def predict(features: Mapping[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"score": 0.4, "prediction": 0}

    @watch(logger)
    async def stuck(features: Mapping[str, Any]) -> float:
        raise TimeoutError

    assert _run(predict({"amount": 1.0})) == {"score": 0.4, "prediction": 0}
    with pytest.raises(TimeoutError):
        _run(stuck({"amount": 2.0}))
    assert [r["status"] for r in logger.rows] == ["ok", "timeout"]
    assert logger.rows[0]["prediction"] == 0 and logger.rows[0]["amount"] == 1.0


def test_the_async_logger_sends_from_the_loop_and_waits_out_a_server_that_is_down(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    names = {"event_id": "id", "label": "is_fraud"}

    async def main() -> AsyncLogger:
        async with AsyncLogger(
            url, "fraud", batch_size=25, flush_interval=0.05, max_backoff=0.2, names=names
        ) as logger:
            ticks = 0

            async def tick() -> None:  # the loop keeps running while batches wait
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            ticker = asyncio.create_task(tick())
            started = time.perf_counter()
            for i in range(60):
                assert logger.log_prediction(event(i))
            assert time.perf_counter() - started < 0.5  # appends only
            # From another thread too (a sync endpoint in a thread pool).
            other = threading.Thread(
                target=lambda: [logger.log_prediction(event(i)) for i in range(60, 80)]
            )
            other.start()
            other.join()
            await asyncio.sleep(0.6)  # nobody listening: kept and retried
            assert logger.stats.sent == 0 and logger.stats.retries > 0 and ticks > 20
            with serving(cfg, port):
                assert await logger.flush(timeout=30)
            ticker.cancel()
        return logger

    logger = _run(main())
    assert logger.stats.sent == 80 and logger.stats.dropped == 0
    assert not logger.log_prediction(event(99))  # closed: refused and counted
    with watchkeeper.open(cfg) as ws:
        assert ws.count("fraud", "events") == 80
