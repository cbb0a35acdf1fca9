"""The HTTP API: ingestion, reads, alert feedback, Prometheus metrics.

``create_app(config, clock=...)`` builds the app with no module-level state. Three doors
into the store, each with its own connection: the writer (ingestion, group-committed), the
scheduler (runs, alerts, delivery), and the reader (every GET and the alert feedback,
serialized by a lock).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from watchkeeper.config import Config
from watchkeeper.errors import WatchkeeperError
from watchkeeper.server import api_alerts, api_ingest, api_reads, api_service, dashboard
from watchkeeper.server.auth import same_origin
from watchkeeper.server.http import ApiError, error_response
from watchkeeper.server.models import ErrorResponse
from watchkeeper.server.service import Service


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
        docs_url=None,  # served below from the package's own Swagger UI, not a CDN
        redoc_url=None,
        responses={
            400: {"model": ErrorResponse, "description": "bad input"},
            401: {"model": ErrorResponse, "description": "no or wrong API key"},
            403: {"model": ErrorResponse, "description": "the key lacks the scope"},
        },
    )
    app.state.service = service

    @app.middleware("http")
    async def refuse_nul(request: Request, call_next: Any) -> Any:
        # No name, id or time holds a NUL; a query carrying one would reach SQL literals.
        if "\x00" in request.url.path or "%00" in str(request.url.query):
            where = "path" if "\x00" in request.url.path else "query"
            return error_response(400, f"the {where} holds a NUL character (%00)", where)
        # A browser's state-changing request from another site's page is refused whatever
        # it carries (the API is on loopback without keys, or a session cookie is sent).
        if request.method not in ("GET", "HEAD", "OPTIONS") and not same_origin(
            request.headers, request.url.scheme
        ):
            return error_response(
                403, f"a request from {request.headers.get('origin')} is not allowed", "origin"
            )
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def apierror_response(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.where)

    @app.exception_handler(WatchkeeperError)
    async def libraryerror_response(request: Request, exc: WatchkeeperError) -> JSONResponse:
        return error_response(exc.http_status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validationerror_response(
        request: Request, exc: RequestValidationError
    ) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(422, str(first.get("msg", "invalid request")), where)

    @app.exception_handler(StarletteHTTPException)
    async def httperror_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    # The routes, in the order the OpenAPI spec lists them.
    for group in (api_service, api_ingest, api_reads, api_alerts):
        group.add(app, service)
    dashboard.mount(app, service)
    return app


__all__ = ["create_app"]
