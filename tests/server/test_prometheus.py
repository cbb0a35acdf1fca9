"""A real Prometheus (Debian's, on loopback) scrapes `watchkeeper serve`; every query of the
exported Grafana dashboard returns data through Prometheus' query API, and the exported
alerting rules pass promtool."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from tests.helpers import MODEL_YAML, NOW, Clock, event, free_port, need, serving, with_reference
from watchkeeper.config import EXAMPLE_CONFIG, parse_config
from watchkeeper.server import create_app
from watchkeeper.server.exports import annotation_query, dashboard_queries, rules_yaml

YAML = (
    MODEL_YAML
    + """server:
  schedule_every: null
alerting:
  rules:
    - name: errors
      severity: page
      owner: infrastructure
      window: 1h
      conditions:
        - {metric: error_rate, above: 0.2}
"""
)


def query(base: str, expr: str) -> list[dict[str, object]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def test_prometheus_scrapes_serve_and_the_dashboard_queries_return_data(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    need(binary is not None, "Prometheus (Debian package prometheus)")
    assert binary is not None
    config = with_reference(parse_config(YAML, base_dir=tmp_path))
    clock = Clock(NOW)
    # One busy hour, a third of it failing.
    rows = [
        event(i, ts=f"2026-04-30T05:{i % 60:02d}:00Z", status="error" if i % 3 == 0 else "ok")
        for i in range(300)
    ]
    with TestClient(create_app(config, clock=clock)) as c:
        c.post("/api/v1/models/fraud/events", json=[*rows, event(999, amount=-1)])
        c.post(
            "/api/v1/models/fraud/labels",
            json=[{"id": f"e{i}", "is_fraud": i % 2} for i in range(100)],
        )
        clock.now = NOW + timedelta(days=2)
        assert c.post("/api/v1/runs", json={"model": "fraud"}).status_code == 200
    port, prom_port = free_port(), free_port()
    (tmp_path / "prometheus.yml").write_text(
        f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: watchkeeper
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""
    )
    with serving(config, port), (tmp_path / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        base = f"http://127.0.0.1:{prom_port}"
        try:
            deadline = time.monotonic() + 60
            scraped = 0
            while time.monotonic() < deadline:
                try:
                    found = query(base, 'count_over_time(up{job="watchkeeper"}[1m])')
                    scraped = int(float(found[0]["value"][1])) if found else 0  # type: ignore[index]
                except OSError:
                    pass
                if scraped >= 4:
                    break
                time.sleep(0.5)
            assert scraped >= 4, (tmp_path / "prometheus.log").read_text()[-2000:]
            assert query(base, 'up{job="watchkeeper"}')[0]["value"][1] == "1"  # type: ignore[index]
            empty = [q for q in dashboard_queries("fraud") if not query(base, q)]
            assert empty == [], empty
            # A version picked, and the annotation of firing alerts: valid and answered.
            assert query(base, dashboard_queries("fraud", version="3")[0])
            assert not query(base, dashboard_queries("fraud", version="9")[0])
            firing = query(base, annotation_query("fraud"))
            assert [r["metric"]["alertname"] for r in firing] == ["errors"]  # type: ignore[index]
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_the_exported_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    need(promtool is not None, "promtool (Debian package prometheus)")
    assert promtool is not None
    rules = tmp_path / "rules.yml"
    rules.write_text(rules_yaml(parse_config(EXAMPLE_CONFIG, base_dir=tmp_path)))
    checked = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout


def test_a_scrape_passes_promtool_check_metrics_with_one_series_per_alert(
    tmp_path: Path,
) -> None:
    """`promtool check metrics` finds nothing in a scrape (no summary-only label on a gauge),
    and the alerts of one rule on several segments are several series, not one written
    many times."""
    yaml = (
        YAML
        + """    - name: busy_regions
      severity: ticket
      owner: infrastructure
      window: 1h
      conditions:
        - {metric: error_rate, segment: "region=*", above: 0.2}
"""
    )
    config = with_reference(parse_config(yaml, base_dir=tmp_path))
    clock = Clock(NOW)
    rows = [
        event(
            i,
            ts=f"2026-04-30T05:{i % 60:02d}:00Z",
            status="error" if i % 3 == 0 else "ok",
            region=("eu", "us")[i % 2],
        )
        for i in range(300)
    ]
    with TestClient(create_app(config, clock=clock)) as c:
        assert c.post("/api/v1/models/fraud/events", json=rows).status_code == 200
        c.post(
            "/api/v1/models/fraud/labels",
            json=[{"id": f"e{i}", "is_fraud": i % 2} for i in range(100)],
        )
        clock.now = NOW + timedelta(days=2)
        assert c.post("/api/v1/runs", json={"model": "fraud"}).status_code == 200
        c.post("/api/v1/alerts/evaluate", json={"model": "fraud"})
        text = c.get("/metrics").text
    series = [line.split(" ")[0] for line in text.splitlines() if not line.startswith("#")]
    assert len(series) == len(set(series)), sorted(s for s in series if series.count(s) > 1)
    regional = [s for s in series if 'alertname="busy_regions"' in s]
    assert len(regional) >= 2 and all('segment="region=' in s for s in regional), regional
    assert "watchkeeper_label_lag_seconds{" in text
    promtool = shutil.which("promtool")
    need(promtool is not None, "promtool (Debian package prometheus)")
    assert promtool is not None
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
