"""The SDK logger: never blocks the request path, drops (and counts) when its queue is
full, keeps batches while the server is down and sends them when it comes back."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import watchkeeper
from tests.helpers import MODEL_YAML, NOW, Clock, event, free_port, serving
from watchkeeper.client import DirectLogger, Logger
from watchkeeper.config import Config, parse_config


def config(tmp_path: Path) -> Config:
    return parse_config(MODEL_YAML + "server:\n  schedule_every: null\n", base_dir=tmp_path)


def test_the_logger_waits_out_a_server_that_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path)
    port = free_port()
    senders: list[str] = []  # the thread that made each request
    urlopen = urllib.request.urlopen

    def recorded(request: Any, timeout: float) -> Any:
        senders.append(threading.current_thread().name)
        return urlopen(request, timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", recorded)
    logger = Logger(
        f"http://127.0.0.1:{port}",
        "fraud",
        batch_size=40,
        flush_interval=0.05,
        max_backoff=0.2,
        names={"event_id": "id", "label": "is_fraud"},  # this config's column names
    )
    for i in range(100):
        assert logger.log_prediction(event(i))
        assert logger.stats.queued == i + 1  # queued by the time the call returns
    # The request path only appends: nothing sent or dropped, and no request made from the
    # caller's thread (the background sender makes them all).
    assert logger.stats.sent == 0 and logger.stats.dropped == 0
    assert threading.current_thread().name not in senders
    assert set(senders) <= {"watchkeeper-logger"}
    assert logger.log_label("e1", 1) and logger.log_outcome("e1", "chargeback", 1.0)
    time.sleep(0.5)  # nobody listening: batches are kept and retried
    assert logger.stats.sent == 0 and logger.stats.retries > 0
    assert senders and set(senders) == {"watchkeeper-logger"}
    with serving(cfg, port):
        assert logger.flush(timeout=30)
        logger.close()
    assert logger.stats.sent == 102 and logger.stats.dropped == 0
    with watchkeeper.open(cfg) as ws:
        assert ws.count("fraud", "events") == 100 and ws.count("fraud", "labels") == 1
        assert ws.count("fraud", "outcomes") == 1


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    logger = Logger(f"http://127.0.0.1:{free_port()}", "fraud", max_queue=10, flush_interval=60)
    accepted = [logger.log_prediction(event(i)) for i in range(25)]
    assert accepted.count(True) == 10 and logger.stats.dropped == 15
    logger.close(timeout=0.1)


def test_a_batch_the_server_refuses_is_counted_not_retried_forever(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    port = free_port()
    with serving(cfg, port):
        logger = Logger(f"http://127.0.0.1:{port}", "no_such_model", flush_interval=0.05)
        logger.log_prediction(event(1))
        assert logger.flush(timeout=10)
        logger.close()
    assert logger.stats.rejected == 1 and logger.stats.sent == 0


def test_the_direct_logger_writes_to_the_store(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    with watchkeeper.open(cfg, clock=Clock(NOW)) as ws:
        logger = DirectLogger(ws, "fraud", batch_size=30)
        for i in range(70):
            logger.log_prediction(event(i))
        logger.log_label("e3", 1)
        logger.close()
        assert ws.count("fraud", "events") == 70 and ws.count("fraud", "labels") == 1


def test_the_logger_counts_and_warns_about_quarantined_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(tmp_path)
    port = free_port()
    with serving(cfg, port):
        logger = Logger(f"http://127.0.0.1:{port}", "fraud", flush_interval=0.05)
        logger.log_prediction(event(1))
        logger.log_prediction(event(2, amount=-5.0))
        logger.log_prediction({k: v for k, v in event(3).items() if k != "score"})
        assert logger.flush(timeout=20)
        logger.close()
    assert logger.stats.sent == 3 and logger.stats.quarantined == 2
    assert logger.stats.reasons == {"out_of_range": 1, "null_in_required": 1}
    assert "quarantined 2 of 3 events" in caplog.text and "amount: outside" in caplog.text


def test_the_readme_example_is_stored_under_the_example_config(tmp_path: Path) -> None:
    import ast
    import re

    from watchkeeper.config import EXAMPLE_CONFIG

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    found = re.search(r"log\.log_prediction\((\{.*?\})\)", readme, re.S)
    assert found, "the README shows log.log_prediction"
    row = ast.literal_eval(found.group(1))
    cfg = parse_config(EXAMPLE_CONFIG, base_dir=tmp_path)
    with watchkeeper.open(cfg, clock=Clock(NOW)) as ws:
        logger = DirectLogger(ws, "fraud")
        logger.log_prediction(row)
        logger.close()
        assert logger.stats.quarantined == 0, ws.quarantine("fraud").to_pylist()
        assert ws.count("fraud", "events") == 1
