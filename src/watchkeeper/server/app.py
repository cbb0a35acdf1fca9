"""The HTTP API: ingestion, reads, alert feedback, Prometheus metrics.

``create_app(config, clock=...)`` builds the app with no module-level state. Three doors
into the store, each with its own connection: the writer (ingestion, group-committed), the
scheduler (runs, alerts, delivery), and the reader (every GET and the alert feedback,
serialized by a lock).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from watchkeeper.config import Config
from watchkeeper.errors import WatchkeeperError
from watchkeeper.ingest.readers import open_bytes
from watchkeeper.server.auth import Denied, check, load_keys, presented_key
from watchkeeper.server.exporter import StoreCollector
from watchkeeper.server.http import ApiError
from watchkeeper.server.scheduler import Scheduler
from watchkeeper.server.writer import Writer
from watchkeeper.store import Store
from watchkeeper.workspace import Workspace

log = logging.getLogger("watchkeeper.server")
T = TypeVar("T")

CONTENT_TYPES = {
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json-lines": "jsonl",
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}


# -- response models (they make the OpenAPI spec) -------------------------------------------


class ErrorBody(BaseModel):
    status: int
    message: str
    where: str = ""


class ErrorResponse(BaseModel):
    error: ErrorBody


class IngestResponse(BaseModel):
    model: str
    kind: str
    batch: str
    rows: int
    accepted: int
    duplicates: int
    corrected: int
    quarantined: dict[str, int] = Field(description="rows refused, by reason code")
    missing_columns: list[str]
    unexpected_columns: list[str]


class ModelInfo(BaseModel):
    name: str
    task: str
    owner: str
    version: str
    versions: list[str]
    window: str
    events: int
    labels: int


class MetricRow(BaseModel):
    model: str
    model_version: str
    window_start: datetime
    window_end: datetime
    segment_column: str
    segment_value: str
    metric: str
    column: str
    value: float | None
    lower: float | None
    upper: float | None
    p_value: float | None
    threshold: float | None
    sample_size: int
    status: str
    provisional: bool
    detail: str


class AlertOut(BaseModel):
    alert_id: str
    rule: str
    model: str
    severity: str
    owner: str
    state: str
    labels: dict[str, str]
    evidence: list[dict[str, Any]]
    summary: str
    started_at: datetime | None
    resolved_at: datetime | None
    window_start: datetime | None
    muted: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    closed_at: datetime | None
    verdict: str | None
    comment: str | None


class AckIn(BaseModel):
    by: str = Field(default="", max_length=200)
    comment: str = Field(default="", max_length=5000)


class CloseIn(BaseModel):
    verdict: Literal["actionable", "noise", "expected_change"]
    comment: str = Field(default="", max_length=5000)
    by: str = Field(default="", max_length=200)


class RunOut(BaseModel):
    run_id: str
    model: str
    started_at: datetime | None
    finished_at: datetime | None
    status: str
    windows: int
    detail: str


class BacktestOut(BaseModel):
    metric: str
    windows: int
    covered: int
    coverage: float | None
    mean_error: float | None
    mean_absolute_error: float | None
    trust: str
    caveat: str


class RunIn(BaseModel):
    model: str = Field(max_length=200)


class RunResultOut(BaseModel):
    model: str
    windows: int
    metrics: int
    summary: str


class Health(BaseModel):
    status: str
    models: list[str]
    scheduler_ticks: int
    auth: bool


# -- the service ----------------------------------------------------------------------------


class Service:
    """The app's state: its workspaces, writer, scheduler and keys."""

    def __init__(
        self,
        config: Config,
        clock: Callable[[], datetime],
        schedule: bool,
        environ: dict[str, str] | None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.keys = load_keys(config, environ)  # a missing key variable stops us here
        self.read_lock = threading.Lock()
        self.run_lock = threading.Lock()
        self.schedule = schedule and config.server.schedule_every is not None
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(config, self.read, self.health))

    def start(self) -> None:
        """Open the store three times (reader, writer, scheduler) and start the threads."""
        config, clock = self.config, self.clock
        self.reader = Workspace.open(config, clock=clock)
        self.writer_ws = Workspace.open(config, clock=clock)
        self.writer = Writer(self.writer_ws.store, clock, config.server.group_commit_rows)
        self.scheduler_ws = Workspace.open(config, clock=clock)
        every = config.server.schedule_every
        self.scheduler = Scheduler(
            self.scheduler_ws, every.total_seconds() if every else 0.0, self.run_lock
        )
        self.writer.start()
        if self.schedule:
            self.scheduler.start()

    def stop(self) -> None:
        if self.schedule:
            self.scheduler.stop()
        self.writer.stop()
        for ws in (self.reader, self.writer_ws, self.scheduler_ws):
            ws.close()

    def read(self, fn: Callable[[Workspace], T]) -> T:
        with self.read_lock:
            return fn(self.reader)

    def read_store(self, fn: Callable[[Store], T]) -> T:
        with self.read_lock:
            return fn(self.reader.store)

    def health(self) -> dict[str, float]:
        return {
            "ingest_groups_total": float(self.writer.groups),
            "ingest_requests_total": float(self.writer.requests),
            "scheduler_ticks_total": float(self.scheduler.ticks),
            "scheduler_errors_total": float(self.scheduler.errors),
        }

    def authorize(self, request: Request, scope: str) -> None:
        try:
            check(self.keys, presented_key(request.headers, request.cookies), scope)
        except Denied as exc:
            raise ApiError(exc.status, exc.message, "authorization") from None


def create_app(
    config: Config,
    *,
    clock: Callable[[], datetime] | None = None,
    schedule: bool = True,
    environ: dict[str, str] | None = None,
) -> FastAPI:
    """The watchkeeper HTTP app. ``clock`` is the evaluation clock (wall clock by default);
    ``schedule=False`` leaves runs to the API and the CLI."""
    service = Service(config, clock or (lambda: datetime.now(UTC)), schedule, environ)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(
        title="watchkeeper",
        version="0.1.0",
        description="Monitoring for machine-learning models in production.",
        lifespan=lifespan,
        responses={
            400: {"model": ErrorResponse, "description": "bad input"},
            401: {"model": ErrorResponse, "description": "no or wrong API key"},
            403: {"model": ErrorResponse, "description": "the key lacks the scope"},
        },
    )
    app.state.service = service

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.where)

    @app.exception_handler(WatchkeeperError)
    async def library_error(request: Request, exc: WatchkeeperError) -> JSONResponse:
        return _error(exc.http_status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, str(first.get("msg", "invalid request")), where)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    def model_or_404(name: str) -> None:
        service.config.model(name)  # UnknownModelError → 404

    # -- health and Prometheus -----------------------------------------------------------------

    @app.get("/healthz", response_model=Health, tags=["service"])
    def healthz() -> Health:
        """Liveness: answers without a key."""
        return Health(
            status="ok",
            models=[m.name for m in service.config.models],
            scheduler_ticks=service.scheduler.ticks,
            auth=bool(service.keys),
        )

    @app.get(
        "/metrics",
        tags=["service"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    def prometheus(request: Request) -> Response:
        """The monitored metrics, alert states and ingestion counters for Prometheus."""
        service.authorize(request, "read")
        return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)

    # -- ingestion -------------------------------------------------------------------------------

    body_doc = {
        "requestBody": {
            "required": True,
            "description": "Rows as a JSON array of objects, JSON Lines, an Arrow IPC stream "
            "or Parquet; gzip or deflate Content-Encoding accepted.",
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": {"type": "object"}},
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/vnd.apache.arrow.stream": {
                    "schema": {"type": "string", "format": "binary"}
                },
                "application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        }
    }

    @app.post(
        "/api/v1/models/{model}/{kind}",
        response_model=IngestResponse,
        tags=["ingest"],
        openapi_extra=body_doc,
        responses={
            404: {"model": ErrorResponse, "description": "unknown model"},
            413: {"model": ErrorResponse, "description": "body too large"},
            415: {"model": ErrorResponse, "description": "unknown content type"},
        },
    )
    async def ingest(
        model: str,
        kind: Literal["events", "labels", "outcomes"],
        request: Request,
        version: Annotated[str | None, Query(max_length=200)] = None,
    ) -> IngestResponse:
        """Validate and store rows. Answered only once they are committed: accepted,
        quarantined by reason, duplicates (rows already stored, e.g. a retry)."""
        service.authorize(request, "ingest")
        cfg = service.config.model(model)
        fmt = _format(request.headers.get("content-type", "application/json"))
        body = await _read_body(request, service.config.server.max_body_bytes)
        source = open_bytes(body, fmt)
        future = service.writer.submit(cfg, kind, source, version)
        result = await asyncio.wrap_future(future)
        return IngestResponse(**result.to_dict())

    # -- reads -----------------------------------------------------------------------------------

    @app.get("/api/v1/models", response_model=list[ModelInfo], tags=["read"])
    def models(request: Request) -> list[ModelInfo]:
        """The configured models, their versions and what is stored."""
        service.authorize(request, "read")

        def build(ws: Workspace) -> list[ModelInfo]:
            out = []
            for m in ws.config.models:
                events = ws.events(m.name)
                versions = ws.store.execute(events.select("wk_model_version").distinct())
                out.append(
                    ModelInfo(
                        name=m.name,
                        task=m.task,
                        owner=m.owner,
                        version=m.version,
                        versions=sorted(v for v in versions.column(0).to_pylist() if v),
                        window=str(m.monitoring.window),
                        events=ws.count(m.name, "events"),
                        labels=ws.count(m.name, "labels"),
                    )
                )
            return out

        return service.read(build)

    @app.get(
        "/api/v1/models/{model}/metrics",
        response_model=list[MetricRow],
        tags=["read"],
        responses={404: {"model": ErrorResponse, "description": "unknown model"}},
    )
    def metrics(
        model: str,
        request: Request,
        metric: Annotated[str | None, Query(max_length=200)] = None,
        column: Annotated[str | None, Query(max_length=500)] = None,
        segment: Annotated[
            str | None, Query(max_length=500, description="COLUMN=VALUE, COLUMN, or *")
        ] = None,
        since: Annotated[str | None, Query(max_length=64)] = None,
        until: Annotated[str | None, Query(max_length=64)] = None,
        window: Annotated[str | None, Query(max_length=32, description="e.g. 1h, 1d")] = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ) -> list[MetricRow]:
        """A model's metric series, oldest first."""
        service.authorize(request, "read")
        model_or_404(model)
        table = service.read(
            lambda ws: ws.metrics(
                model,
                metric=metric,
                column=column,
                segment=segment,
                since=_time(since, "since"),
                until=_time(until, "until"),
                window=_duration(window),
            )
        )
        rows = table.slice(0, limit).to_pylist()
        return [MetricRow(**_finite(r)) for r in rows]

    @app.get("/api/v1/models/{model}/backtest", response_model=list[BacktestOut], tags=["read"])
    def backtest(
        model: str,
        request: Request,
        last: Annotated[int, Query(ge=1, le=10_000)] = 30,
    ) -> list[BacktestOut]:
        """How far to trust the performance estimated without labels."""
        service.authorize(request, "read")
        model_or_404(model)
        found = service.read(lambda ws: ws.backtest(model, last=last))
        return [BacktestOut(**_finite(b.to_dict())) for b in found.values()]

    @app.get("/api/v1/runs", response_model=list[RunOut], tags=["read"])
    def runs(
        request: Request,
        model: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[RunOut]:
        """Recent runs, newest first, with their status."""
        service.authorize(request, "read")
        if model is not None:
            model_or_404(model)

        def build(ws: Workspace) -> list[dict[str, Any]]:
            import ibis

            t = ws.store.table("runs")
            expr = t if model is None else t.filter(t.model == model)
            return list(
                ws.store.execute(expr.order_by(ibis.desc("finished_at")).limit(limit)).to_pylist()
            )

        return [RunOut(**{**r, "detail": r["detail"] or ""}) for r in service.read(build)]

    @app.post(
        "/api/v1/runs",
        response_model=RunResultOut,
        tags=["admin"],
        responses={404: {"model": ErrorResponse, "description": "unknown model"}},
    )
    def run_now(body: RunIn, request: Request) -> RunResultOut:
        """Run a model now (its due and dirty windows), then evaluate its alert rules."""
        service.authorize(request, "admin")
        model = body.model
        model_or_404(model)
        with service.run_lock:
            result = service.scheduler_ws.cycle([model]).runs[model]
        return RunResultOut(
            model=model,
            windows=len(result.windows),
            metrics=result.metrics.num_rows,
            summary=result.summary(),
        )

    @app.get(
        "/api/v1/models/{model}/triage",
        tags=["read"],
        responses={404: {"model": ErrorResponse, "description": "unknown model or alert"}},
    )
    def triage(
        model: str,
        request: Request,
        metric: Annotated[str | None, Query(max_length=200)] = None,
        at: Annotated[str | None, Query(max_length=64)] = None,
        alert: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        """Triage of a drop: the steps with their evidence, and ranked hypotheses."""
        service.authorize(request, "read")
        model_or_404(model)
        when = _time(at, "at")
        found = service.read(lambda ws: ws.triage(model, metric=metric, at=when, alert=alert))
        cleaned: dict[str, Any] = _finite_deep(found.to_dict())
        return cleaned

    # -- alerts ----------------------------------------------------------------------------------

    @app.get("/api/v1/alerts", response_model=list[AlertOut], tags=["alerts"])
    def alerts(
        request: Request,
        model: Annotated[str | None, Query(max_length=200)] = None,
        state: Literal["firing", "resolved"] | None = None,
        since: Annotated[str | None, Query(max_length=64)] = None,
    ) -> list[AlertOut]:
        """Alerts with their evidence, oldest first."""
        service.authorize(request, "read")
        if model is not None:
            model_or_404(model)
        start = _time(since, "since")
        rows = service.read(lambda ws: ws.alerts(model, state=state, since=start))
        return [_alert(r) for r in rows]

    @app.get(
        "/api/v1/alerts/{alert_id}",
        response_model=AlertOut,
        tags=["alerts"],
        responses={404: {"model": ErrorResponse, "description": "unknown alert"}},
    )
    def alert(alert_id: str, request: Request) -> AlertOut:
        service.authorize(request, "read")
        return _alert(service.read(lambda ws: ws.alert(alert_id)))

    @app.post(
        "/api/v1/alerts/{alert_id}/ack",
        response_model=AlertOut,
        tags=["alerts"],
        responses={404: {"model": ErrorResponse, "description": "unknown alert"}},
    )
    def ack(alert_id: str, body: AckIn, request: Request) -> AlertOut:
        """Acknowledge: someone is on it."""
        service.authorize(request, "admin")

        def do(ws: Workspace) -> dict[str, Any]:
            ws.acknowledge(alert_id, by=body.by, comment=body.comment)
            return ws.alert(alert_id)

        return _alert(service.read(do))

    @app.post(
        "/api/v1/alerts/{alert_id}/close",
        response_model=AlertOut,
        tags=["alerts"],
        responses={404: {"model": ErrorResponse, "description": "unknown alert"}},
    )
    def close(alert_id: str, body: CloseIn, request: Request) -> AlertOut:
        """Close with a verdict: actionable, noise or expected_change."""
        service.authorize(request, "admin")

        def do(ws: Workspace) -> dict[str, Any]:
            ws.close_alert(alert_id, body.verdict, comment=body.comment, by=body.by)
            return ws.alert(alert_id)

        return _alert(service.read(do))

    from watchkeeper.server.dashboard import mount

    mount(app, service)
    return app


# -- helpers --------------------------------------------------------------------------------------


def _error(status: int, message: str, where: str = "") -> JSONResponse:
    return JSONResponse(
        {"error": {"status": status, "message": message, "where": where}}, status_code=status
    )


def _format(content_type: str) -> str:
    base = content_type.split(";")[0].strip().lower()
    if base in CONTENT_TYPES:
        return CONTENT_TYPES[base]
    raise ApiError(
        415,
        f"unsupported content type {base!r}; use one of {', '.join(sorted(CONTENT_TYPES))}",
        "content-type",
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is larger than the limit of {limit:,} bytes", "body")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is larger than the limit of {limit:,} bytes", "body")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "deflate"):
        try:
            decoder = (
                zlib.decompressobj(16 + zlib.MAX_WBITS)
                if encoding == "gzip"
                else zlib.decompressobj()
            )
            body = decoder.decompress(body, limit + 1)
        except zlib.error as exc:
            raise ApiError(
                400, f"the body is not valid {encoding}: {exc}", "content-encoding"
            ) from None
        if len(body) > limit or decoder.unconsumed_tail:
            raise ApiError(413, f"the decompressed body is larger than {limit:,} bytes", "body")
    elif encoding not in ("", "identity"):
        raise ApiError(415, f"unsupported content encoding {encoding!r}", "content-encoding")
    if not body:
        raise ApiError(400, "the body is empty", "body")
    return body


def _time(text: str | None, where: str) -> datetime | None:
    if text is None:
        return None
    from watchkeeper.windows import parse_time

    try:
        return parse_time(text)
    except (ValueError, WatchkeeperError) as exc:
        raise ApiError(400, str(exc), where) from None


def _duration(text: str | None) -> str | None:
    if text is None:
        return None
    from watchkeeper.windows import parse_duration

    try:
        parse_duration(text)
    except (ValueError, WatchkeeperError) as exc:
        raise ApiError(400, str(exc), "window") from None
    return text


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN or infinity: such values are sent as null."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }


def _finite_deep(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_deep(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _alert(row: dict[str, Any]) -> AlertOut:
    return AlertOut(
        **{
            **_finite(row),
            "labels": json.loads(row["labels"] or "{}"),
            "evidence": [_finite(e) for e in json.loads(row["evidence"] or "[]")],
            "owner": row["owner"] or "",
            "summary": row["summary"] or "",
        }
    )
