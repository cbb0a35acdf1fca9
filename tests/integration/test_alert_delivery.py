"""Delivery for real: a page through a real Alertmanager (Debian's, on loopback) to a
webhook receiver, and its resolution; and the outbox surviving a process killed
mid-delivery, every notification reaching the receiver exactly once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import watchkeeper
from tests.helpers import ALERTS_T0 as T0
from tests.helpers import HOUR, Clock, free_port, need, write_series
from watchkeeper.config import parse_config


class Hook:
    """A webhook receiver on loopback that records every request (and can be slow)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[tuple[dict[str, str], Any]] = []
        self.delay = delay
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.received.append((dict(self.headers), body))
                time.sleep(hook.delay)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, check: Any, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [b for _, b in self.received if check(b)]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"not received in {timeout}s: {self.received}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def alertmanager_binary() -> str | None:
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Hook]]:
    binary = alertmanager_binary()
    need(binary is not None, "Alertmanager (Debian package prometheus-alertmanager)")
    assert binary is not None
    hook = Hook()
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""\
global:
  resolve_timeout: 3s  # short, so an alert that is not re-sent resolves within a test
route:
  receiver: fallback
  group_by: [alertname, model]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['severity="page"', 'owner="infrastructure"']
      receiver: oncall
receivers:
  - name: fallback
  - name: oncall
    webhook_configs:
      - url: {hook.url}
        send_resolved: true
"""
    )
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    text = (tmp_path / "alertmanager.log").read_text()
                    raise AssertionError(f"Alertmanager did not start: {text}") from None
                time.sleep(0.1)
        yield url, hook
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        hook.close()


YAML = """\
engine: {{path: store.duckdb}}
models:
  - name: fraud
    task: binary_classification
    columns:
      features: [{{name: amount, kind: numeric}}]
      score: score
alerting:
  rules:
    - name: error_rate
      severity: page
      owner: infrastructure
      description: the model service fails requests
      conditions:
        - {{metric: error_rate, above: 0.05}}
    - name: missing_amount
      severity: ticket
      owner: data
      conditions:
        - {{metric: missing_rate, column: amount, above: 0.1}}
  receivers:
    - {{name: oncall, type: alertmanager, url: "{url}", match: {{severity: page}}}}
"""


def test_a_page_reaches_the_receiver_through_alertmanager_and_resolves(
    tmp_path: Path, alertmanager: tuple[str, Hook]
) -> None:
    url, hook = alertmanager
    # Windows ending in the recent past, so Alertmanager sees a current alert.
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 6 * HOUR
    clock = Clock(t0)
    with watchkeeper.open(parse_config(YAML.format(url=url), base_dir=tmp_path), clock=clock) as ws:
        write_series(ws, "fraud", "error_rate", "", [0.01, 0.3, 0.3], start=_hours(t0))
        write_series(ws, "fraud", "missing_rate", "amount", [0.5, 0.5, 0.5], start=_hours(t0))
        clock.now = t0 + 3 * HOUR
        ws.evaluate_alerts("fraud")
        assert ws.deliver_notifications().delivered == 1  # the page; the ticket is not routed here
        firing = hook.wait_for(lambda b: b["status"] == "firing")[0]
        [alert] = firing["alerts"]
        assert alert["labels"]["alertname"] == "error_rate"
        assert alert["labels"]["severity"] == "page" and alert["labels"]["model"] == "fraud"
        assert alert["annotations"]["summary"] == (
            "fraud: error rate is 0.3, above 0.05 (the model service fails requests)"
        )
        assert alert["annotations"]["dashboard"].startswith("http://127.0.0.1:8765/models/fraud")
        write_series(ws, "fraud", "error_rate", "", [0.01], start=_hours(t0) + 3)
        clock.now = t0 + 4 * HOUR
        assert [e.kind for e in ws.evaluate_alerts("fraud").events] == ["resolved"]
        assert ws.deliver_notifications().delivered == 1
        resolved = hook.wait_for(lambda b: b["status"] == "resolved")[0]
        assert resolved["alerts"][0]["labels"]["alertname"] == "error_rate"


def test_a_firing_page_is_re_sent_so_alertmanager_keeps_it_active(
    tmp_path: Path, alertmanager: tuple[str, Hook]
) -> None:
    """Alertmanager resolves an alert a client stops sending after its resolve_timeout
    (3 s here): a page that still fires here is sent again every resend_every (1 s)."""
    import json
    import urllib.request

    url, hook = alertmanager
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 6 * HOUR
    clock = Clock(t0 + 3 * HOUR)
    yaml = YAML.format(url=url) + "  resend_every: 1s\n"
    with watchkeeper.open(parse_config(yaml, base_dir=tmp_path), clock=clock) as ws:
        write_series(ws, "fraud", "error_rate", "", [0.01, 0.3, 0.3], start=_hours(t0))
        ws.evaluate_alerts("fraud")
        assert ws.deliver_notifications().delivered == 1
        hook.wait_for(lambda b: b["status"] == "firing")
        sent = 1
        ends = time.monotonic() + 8
        while time.monotonic() < ends:
            time.sleep(0.5)
            clock.now = t0 + 3 * HOUR + timedelta(seconds=time.monotonic() - ends + 8)
            sent += ws.deliver_notifications().delivered
        assert sent >= 5, sent  # about one a second, not one for each delivery call
        with urllib.request.urlopen(f"{url}/api/v2/alerts?active=true", timeout=5) as answer:
            active = json.loads(answer.read())
        assert [a["labels"]["alertname"] for a in active] == ["error_rate"], active
        assert not [b for _, b in hook.received if b["status"] == "resolved"]
        # Resolved here: one resolution with its endsAt, and no refresh re-opens it.
        write_series(ws, "fraud", "error_rate", "", [0.01], start=_hours(t0) + 3)
        clock.now = t0 + 4 * HOUR
        assert [e.kind for e in ws.evaluate_alerts("fraud").events] == ["resolved"]
        ws.deliver_notifications()
        hook.wait_for(lambda b: b["status"] == "resolved")
        clock.now += timedelta(minutes=5)
        assert ws.deliver_notifications().delivered == 0


def _hours(t: datetime) -> int:
    return int((t - T0) / HOUR)


CHILD = """
import sys
from datetime import datetime, timedelta, UTC
import watchkeeper
from watchkeeper.config import parse_config
config = parse_config(open(sys.argv[1]).read(), base_dir=__import__("pathlib").Path(sys.argv[2]))
now = datetime.fromisoformat(sys.argv[3])
with watchkeeper.open(config, clock=lambda: now) as ws:
    if sys.argv[4] == "evaluate":
        ws.evaluate_alerts()
    print(ws.deliver_notifications(), flush=True)
"""


def test_the_outbox_delivers_each_notification_once_across_a_kill(tmp_path: Path) -> None:
    hook = Hook(delay=0.2)  # slow enough to be killed mid-delivery
    try:
        yaml = f"""\
engine: {{path: store.duckdb}}
models:
  - name: fraud
    task: binary_classification
    columns:
      features: [{{name: amount, kind: numeric}}]
      score: score
      segments: [region]
alerting:
  rules:
    - name: missing
      severity: ticket
      owner: data
      conditions:
        - {{metric: missing_rate, column: "*", above: 0.1}}
  receivers:
    - {{name: hook, type: webhook, url: "{hook.url}"}}
"""
        (tmp_path / "watchkeeper.yaml").write_text(yaml)
        (tmp_path / "child.py").write_text(CHILD)
        clock = Clock(T0)
        with watchkeeper.open(parse_config(yaml, base_dir=tmp_path), clock=clock) as ws:
            for i in range(30):
                write_series(ws, "fraud", "missing_rate", f"column_{i}", [0.5])
        now = T0 + HOUR

        def child(mode: str, at: datetime) -> subprocess.Popen[str]:
            return subprocess.Popen(
                [
                    sys.executable,
                    str(tmp_path / "child.py"),
                    str(tmp_path / "watchkeeper.yaml"),
                    str(tmp_path),
                    at.isoformat(),
                    mode,
                ],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            )

        first = child("evaluate", now)
        deadline = time.monotonic() + 60
        while len(hook.received) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert first.stdout is not None
        first.stdout.close()
        assert 10 <= len(hook.received) < 30  # killed part-way through
        # Restarted later than the retry delay: the rest is delivered, nothing is lost.
        second = child("deliver", now + timedelta(seconds=10))
        out, _ = second.communicate(timeout=120)
        assert second.returncode == 0, out
        with watchkeeper.open(parse_config(yaml, base_dir=tmp_path), clock=clock) as ws:
            outbox = ws.store.execute(ws.store.table("outbox")).to_pylist()
        ids = {r["notification_id"] for r in outbox}
        assert len(ids) == 30 and all(r["delivered_at"] is not None for r in outbox)
        keys = [h["Idempotency-Key"] for h, _ in hook.received]
        # Each notification reached the receiver; a receiver that honours the key acts on
        # each once. At most the one in flight at the kill was sent twice.
        assert set(keys) == ids
        assert len(keys) - len(set(keys)) <= 1
        assert all(b["notification_id"] == h["Idempotency-Key"] for h, b in hook.received)
    finally:
        hook.close()
