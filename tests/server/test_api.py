"""The HTTP API in-process (the ASGI app through httpx): every endpoint's happy path and
bad input, API keys and scopes, group commit, and the Prometheus exposition."""

from __future__ import annotations

import gzip
import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.helpers import MODEL_YAML, NOW, SERVER, Clock, event, with_reference
from watchkeeper.config import parse_config
from watchkeeper.server import create_app
from watchkeeper.server.auth import new_key


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def client(tmp_path: Path, clock: Clock) -> Iterator[TestClient]:
    config = with_reference(parse_config(MODEL_YAML + SERVER, base_dir=tmp_path))
    with TestClient(create_app(config, clock=clock)) as c:
        yield c


def events(n: int, start: int = 0, **overrides: Any) -> list[dict[str, Any]]:
    return [event(i, **overrides) for i in range(start, start + n)]


def test_ingest_a_json_array_and_a_retry_is_stored_once(client: TestClient) -> None:
    rows = [*events(20), event(99, amount=-5)]  # one out of range
    first = client.post("/api/v1/models/fraud/events", json=rows)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["rows"], body["accepted"], body["quarantined"]) == (21, 20, {"out_of_range": 1})
    again = client.post("/api/v1/models/fraud/events", json=rows[:20])
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 20)


def test_ingest_json_lines_arrow_parquet_and_gzip(client: TestClient) -> None:
    lines = "\n".join(json.dumps(r) for r in events(5)) + "\n{broken\n"
    found = client.post(
        "/api/v1/models/fraud/events",
        content=lines,
        headers={"Content-Type": "application/x-ndjson"},
    ).json()
    assert found["accepted"] == 5 and found["quarantined"] == {"unparseable_row": 1}
    table = pa.Table.from_pylist(events(5, start=10))
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    arrow = client.post(
        "/api/v1/models/fraud/events",
        content=sink.getvalue(),
        headers={"Content-Type": "application/vnd.apache.arrow.stream"},
    )
    assert arrow.json()["accepted"] == 5, arrow.text
    parquet = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(events(5, start=20)), parquet)
    found = client.post(
        "/api/v1/models/fraud/events",
        content=parquet.getvalue(),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    ).json()
    assert found["accepted"] == 5
    zipped = client.post(
        "/api/v1/models/fraud/events",
        content=gzip.compress(json.dumps(events(5, start=30)).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert zipped.json()["accepted"] == 5
    labels = client.post(
        "/api/v1/models/fraud/labels",
        json=[{"id": "e0", "is_fraud": 1}, {"id": "nope", "is_fraud": 1}],
    ).json()
    assert labels["accepted"] == 2  # a label may arrive before its event


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "says"),
    [
        ("/api/v1/models/nope/events", {"json": []}, 404, "unknown model"),
        ("/api/v1/models/fraud/things", {"json": []}, 422, "kind"),
        (
            "/api/v1/models/fraud/events",
            {"content": b"[1, 2]", "headers": {"Content-Type": "application/json"}},
            400,
            "array of objects",
        ),
        (
            "/api/v1/models/fraud/events",
            {"content": b"{", "headers": {"Content-Type": "application/json"}},
            400,
            "not valid JSON",
        ),
        (
            "/api/v1/models/fraud/events",
            {"content": b"a,b", "headers": {"Content-Type": "text/csv"}},
            415,
            "unsupported content type",
        ),
        (
            "/api/v1/models/fraud/events",
            {"content": b"xx", "headers": {"Content-Type": "application/vnd.apache.parquet"}},
            400,
            "cannot read it as parquet",
        ),
        (
            "/api/v1/models/fraud/events",
            {
                "content": b"xx",
                "headers": {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            },
            400,
            "not valid gzip",
        ),
        (
            "/api/v1/models/fraud/events",
            {"content": b"", "headers": {"Content-Type": "application/json"}},
            400,
            "empty",
        ),
    ],
)
def test_bad_input_gets_a_4xx_that_says_what_is_wrong(
    client: TestClient, path: str, kwargs: dict[str, Any], status: int, says: str
) -> None:
    answer = client.post(path, **kwargs)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]["message"] or says in answer.json()["error"]["where"]


def test_the_api_reference_and_its_assets_are_served_from_the_package(
    client: TestClient,
) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/assets/swagger/swagger-ui-bundle.js" in docs.text
    assert "://" not in docs.text  # nothing from elsewhere: no CDN
    kinds = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
    for name, kind in kinds.items():
        answer = client.get(f"/assets/swagger/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
        assert len(answer.content) > 100_000
    assert client.get("/assets/swagger/LICENSE").status_code == 404  # only what /docs loads
    assert client.get("/assets/swagger/..%2Fcharts.js").status_code == 404
    assert client.get("/redoc").status_code == 404


def test_the_chart_libraries_are_served_from_the_package(client: TestClient) -> None:
    for name in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js"):
        answer = client.get(f"/assets/vega/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].startswith("text/javascript")
        assert len(answer.content) > 50_000
    assert client.get("/assets/vega/LICENSE-vega").status_code == 404  # only what pages load
    assert client.get("/assets/vega/..%2Fdashboard.css").status_code == 404


def test_a_body_over_the_limit_is_refused(tmp_path: Path, clock: Clock) -> None:
    config = parse_config(MODEL_YAML + SERVER + "  max_body_bytes: 2048\n", base_dir=tmp_path)
    with TestClient(create_app(config, clock=clock)) as c:
        big = c.post("/api/v1/models/fraud/events", json=events(100))
        assert big.status_code == 413 and "limit of 2,048 bytes" in big.json()["error"]["message"]
        bomb = gzip.compress(b"[" + b" " * 100_000 + b"]")
        zipped = c.post(
            "/api/v1/models/fraud/events",
            content=bomb,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert zipped.status_code == 413


def test_a_compressed_body_is_decompressed_as_it_arrives_as_zlib_does_at_once() -> None:
    """Gzip (of several members) and deflate, fed in chunks of every size: the same bytes
    as zlib's at once; cut short, or deflate with data after its end, refused."""
    import random
    import zlib

    from watchkeeper.server.http import ApiError, _Inflate

    rng = random.Random(3)

    def fed(body: bytes, encoding: str) -> bytes:
        inflate, out, i = _Inflate(encoding), b"", 0
        while i < len(body):
            step = rng.choice([1, 7, 100, 4096, 1 << 20])
            out += b"".join(inflate.feed(body[i : i + step]))
            i += step
        inflate.finish()
        return out

    for _ in range(30):
        parts = [rng.randbytes(rng.randint(0, 3000)) * rng.randint(1, 900) for _ in range(3)]
        members = b"".join(gzip.compress(p) for p in parts)
        assert fed(members, "gzip") == b"".join(parts)
        assert fed(zlib.compress(parts[0]), "deflate") == parts[0]
    whole = gzip.compress(b"x" * 5_000_000)  # 5 MB from a few kB: given a piece at a time
    assert len(fed(whole, "gzip")) == 5_000_000
    with pytest.raises(ApiError, match="cut short"):
        fed(whole[:-9], "gzip")
    with pytest.raises(ApiError, match="data after its end"):
        fed(zlib.compress(b"abc") + b"zz", "deflate")
    with pytest.raises(ApiError, match="not valid gzip"):
        fed(whole + b"garbage!", "gzip")


def test_reads_after_a_run(client: TestClient, clock: Clock) -> None:
    client.post("/api/v1/models/fraud/events", json=events(300))
    models = client.get("/api/v1/models").json()
    fraud = next(m for m in models if m["name"] == "fraud")
    assert fraud["events"] == 300 and fraud["versions"] == ["3"]
    clock.now = NOW + timedelta(days=2)
    ran = client.post("/api/v1/runs", json={"model": "fraud"})
    assert ran.status_code == 200, ran.text
    rows = client.get(
        "/api/v1/models/fraud/metrics", params={"metric": "row_count", "segment": "*"}
    ).json()
    assert sum(r["value"] for r in rows) == 300
    assert (
        client.get("/api/v1/models/fraud/metrics", params={"since": "yesterday-ish"}).status_code
        == 400
    )
    assert client.get("/api/v1/models/fraud/metrics", params={"window": "soon"}).status_code == 400
    runs = client.get("/api/v1/runs", params={"model": "fraud"}).json()
    assert runs[0]["status"] == "ok" and runs[0]["windows"] > 0
    assert client.get("/api/v1/models/fraud/backtest").status_code == 200
    assert client.get("/api/v1/alerts").json() == []
    assert client.get("/api/v1/alerts/nope").status_code == 404
    assert client.get("/healthz").json()["status"] == "ok"


def test_keys_and_scopes(tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    ingest_key, ingest_hash = new_key()
    read_key = "a-read-key-from-the-environment"
    yaml = (
        MODEL_YAML
        + SERVER
        + f"""  api_keys:
    - {{name: serving, scopes: [ingest], sha256: {ingest_hash}}}
    - {{name: dashboards, scopes: [read], env: WK_READ_KEY}}
"""
    )
    config = parse_config(yaml, base_dir=tmp_path)
    caplog.set_level(logging.DEBUG)
    app = create_app(config, clock=clock, environ={"WK_READ_KEY": read_key})
    with TestClient(app) as c:
        url = "/api/v1/models/fraud/events"
        assert c.post(url, json=events(2)).status_code == 401
        assert c.post(url, json=events(2), headers={"X-API-Key": "wrong"}).status_code == 401
        denied = c.post(url, json=events(2), headers={"Authorization": f"Bearer {read_key}"})
        assert (
            denied.status_code == 403
            and "lacks the 'ingest' scope" in denied.json()["error"]["message"]
        )
        ok = c.post(url, json=events(2), headers={"Authorization": f"Bearer {ingest_key}"})
        assert ok.status_code == 200
        assert c.get("/api/v1/models", headers={"X-API-Key": ingest_key}).status_code == 403
        assert c.get("/api/v1/models", headers={"X-API-Key": read_key}).status_code == 200
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"X-API-Key": read_key}).status_code == 200
        assert (
            c.post(
                "/api/v1/runs", json={"model": "fraud"}, headers={"X-API-Key": read_key}
            ).status_code
            == 403
        )
        assert c.get("/healthz").json()["auth"] is True
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert ingest_key not in logged and read_key not in logged
    # A key whose variable is missing stops the server at start, naming the place.
    with pytest.raises(
        Exception, match=r"server.api_keys\[1\].env: environment variable WK_READ_KEY"
    ):
        create_app(config, clock=clock, environ={})


def test_many_small_requests_are_committed_in_groups(client: TestClient) -> None:
    app = client.app
    service = app.state.service  # type: ignore[attr-defined]
    answers: list[int] = []

    def send(i: int) -> None:
        answer = client.post("/api/v1/models/fraud/events", json=events(5, start=i * 5))
        answers.append(answer.json()["accepted"])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(answers) == 200
    assert service.writer.requests == 40
    assert service.writer.groups < 40  # several requests shared a commit


def test_alert_feedback_over_http(tmp_path: Path, clock: Clock) -> None:
    yaml = (
        MODEL_YAML
        + SERVER
        + """alerting:
  rules:
    - name: errors
      severity: page
      owner: infrastructure
      window: 1h
      conditions:
        - {metric: error_rate, above: 0.2}
"""
    )
    config = with_reference(parse_config(yaml, base_dir=tmp_path))
    with TestClient(create_app(config, clock=clock)) as c:
        c.post("/api/v1/models/fraud/events", json=events(200, status="error"))
        clock.now = NOW + timedelta(days=2)
        assert c.post("/api/v1/runs", json={"model": "fraud"}).status_code == 200
        firing = c.get("/api/v1/alerts", params={"state": "firing"}).json()
        assert firing and firing[0]["labels"]["alertname"] == "errors"
        alert_id = firing[0]["alert_id"]
        assert firing[0]["evidence"][0]["value"] == 1.0
        acked = c.post(f"/api/v1/alerts/{alert_id}/ack", json={"by": "ana"}).json()
        assert acked["acknowledged_by"] == "ana"
        closed = c.post(f"/api/v1/alerts/{alert_id}/close", json={"verdict": "actionable"})
        assert closed.json()["verdict"] == "actionable"
        bad = c.post(f"/api/v1/alerts/{alert_id}/close", json={"verdict": "meh"})
        assert bad.status_code == 422 and "verdict" in bad.json()["error"]["where"]
        assert c.post("/api/v1/alerts/nope/ack", json={}).status_code == 404
        text = c.get("/metrics").text
        assert 'watchkeeper_alerts{alertname="errors",alertstate="firing"' in text


def test_prometheus_exposition(client: TestClient, clock: Clock) -> None:
    client.post("/api/v1/models/fraud/events", json=[*events(300), event(999, amount=-1)])
    clock.now = NOW + timedelta(days=2)
    client.post("/api/v1/runs", json={"model": "fraud"})
    text = client.get("/metrics").text
    assert (
        'watchkeeper_ingested_rows_total{kind="events",model="fraud",outcome="accepted"} 300.0'
        in text
    )
    assert (
        'watchkeeper_quarantined_rows_total{kind="events",model="fraud",reason="out_of_range"} 1.0'
        in text
    )
    assert (
        'watchkeeper_data_quality_ratio{check="missing",column="amount",model="fraud",segment="*"}'
        in text
    )
    assert 'watchkeeper_served_latency_seconds_bucket{le="0.02",model="fraud"}' in text
    assert 'watchkeeper_served_error_ratio{model="fraud"} 0.0' in text
    assert "watchkeeper_up 1.0" in text
    assert (
        'watchkeeper_model_performance{kind="estimated",metric="accuracy",model="fraud",'
        'segment="*",version="3"}' in text
    )


def test_a_series_carries_its_version_and_a_retired_version_is_not_exported(
    client: TestClient, clock: Clock
) -> None:
    # Version 2 served yesterday and was replaced by version 3 today: a canary is told
    # apart by its label, and the retired one's last value is not exported for ever.
    old = [
        event(i, id=f"old{i}", version="2", ts=f"2026-04-29T{i % 24:02d}:15:00Z")
        for i in range(300)
    ]
    for rows in (old, events(300)):
        answer = client.post("/api/v1/models/fraud/events", json=rows)
        assert answer.json()["accepted"] == 300, answer.text
    clock.now = NOW + timedelta(days=2)
    client.post("/api/v1/runs", json={"model": "fraud"})
    text = client.get("/metrics").text
    performance = [line for line in text.splitlines() if line.startswith("watchkeeper_model_perf")]
    assert performance
    assert all('version="3"' in line for line in performance), performance


def test_the_openapi_spec_in_the_repo_is_the_one_served(client: TestClient) -> None:
    served = client.get("/openapi.json").json()
    kept = json.loads((Path(__file__).parents[2] / "docs" / "openapi.json").read_text())
    assert kept == served, "run `python -m watchkeeper.server.openapi > docs/openapi.json`"


def test_the_scheduler_survives_a_restart_and_never_double_counts(
    tmp_path: Path, clock: Clock
) -> None:
    yaml = (
        MODEL_YAML
        + """server:
  schedule_every: 1h
alerting:
  rules:
    - name: errors
      severity: page
      owner: infrastructure
      conditions:
        - {metric: error_rate, above: 0.2}
"""
    )
    config = with_reference(parse_config(yaml, base_dir=tmp_path))
    rows = [event(i, ts=f"2026-04-30T05:{i % 60:02d}:00Z", status="error") for i in range(120)]

    def state(c: TestClient) -> tuple[float, int]:
        found = c.get(
            "/api/v1/models/fraud/metrics", params={"metric": "row_count", "segment": "*"}
        )
        return sum(r["value"] for r in found.json()), len(c.get("/api/v1/alerts").json())

    with TestClient(create_app(config, clock=clock)) as c:
        service = c.app.state.service  # type: ignore[attr-defined]
        c.post("/api/v1/models/fraud/events", json=rows)
        clock.now = NOW + timedelta(days=1)
        service.scheduler.tick()
        assert state(c) == (120, 1)
        service.scheduler.tick()  # nothing new: nothing changes
        assert state(c) == (120, 1)
    clock.now += timedelta(hours=1)
    with TestClient(create_app(config, clock=clock)) as c:  # a restart
        service = c.app.state.service  # type: ignore[attr-defined]
        service.scheduler.tick()
        assert state(c) == (120, 1)
        c.post("/api/v1/models/fraud/events", json=[event(500, ts="2026-04-30T05:30:00Z")])
        service.scheduler.tick()  # a late event: its window is recomputed, not added to
        assert state(c) == (121, 1)
        assert service.scheduler.errors == 0


def test_the_api_takes_a_key_from_headers_not_from_a_cookie(tmp_path: Path, clock: Clock) -> None:
    admin_key, admin_hash = new_key()
    yaml = (
        MODEL_YAML
        + SERVER
        + f"  api_keys:\n    - {{name: ops, scopes: [admin], sha256: {admin_hash}}}\n"
    )
    config = with_reference(parse_config(yaml, base_dir=tmp_path))
    with TestClient(create_app(config, clock=clock), base_url="http://testserver") as c:
        url = "/api/v1/models/fraud/events"
        body = json.dumps(events(2)).encode()
        # A page of another site makes the browser send the cookie: it is not a key.
        c.cookies.set("wk_session", admin_key)
        forged = c.post(url, content=body, headers={"Origin": "http://evil.example"})
        assert forged.status_code == 403 and "evil.example" in forged.json()["error"]["message"]
        assert (
            c.post(url, content=body, headers={"Content-Type": "application/json"}).status_code
            == 401
        )
        c.cookies.clear()
        # Signing in sets an HttpOnly session cookie and a CSRF token beside it.
        wrong = c.post("/login", data={"key": "nope"}, follow_redirects=False)
        assert wrong.status_code == 401 and "not valid" in wrong.text
        signed = c.post("/login", data={"key": admin_key}, follow_redirects=False)
        assert signed.status_code == 303
        cookies = signed.headers.get_list("set-cookie")
        session = next(x for x in cookies if x.startswith("wk_session="))
        assert "HttpOnly" in session and "SameSite=strict" in session
        token = signed.cookies["wk_csrf"]
        assert c.get("/").status_code == 200  # the dashboard's pages take the cookie
        json_type = {"Content-Type": "application/json"}
        assert c.post(url, content=body, headers=json_type).status_code == 401
        own = c.post(
            url,
            content=body,
            headers={**json_type, "X-CSRF-Token": token, "Origin": "http://testserver"},
        )
        assert own.status_code == 200, own.text
        bad_token = c.post(url, content=body, headers={**json_type, "X-CSRF-Token": "x"})
        assert bad_token.status_code == 401
        # Clients that are not browsers send no Origin and a header key, as before.
        c.cookies.clear()
        assert (
            c.post(url, json=events(2, start=5), headers={"X-API-Key": admin_key}).status_code
            == 200
        )


def test_a_stalled_body_is_answered_408_and_let_go(tmp_path: Path) -> None:
    import socket
    import time

    from tests.helpers import free_port, serving

    config = parse_config(MODEL_YAML + SERVER + "  body_timeout: 1s\n", base_dir=tmp_path)
    port = free_port()
    with serving(config, port):
        began = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                b"POST /api/v1/models/fraud/events HTTP/1.1\r\nHost: x\r\n"
                b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{"id"'
            )
            answer = ""
            while "stopped arriving" not in answer:  # the body may come in a later packet
                got = s.recv(4096).decode()
                if not got:
                    break
                answer += got
        assert answer.startswith("HTTP/1.1 408"), answer
        assert "stopped arriving" in answer
        assert time.monotonic() - began < 8
