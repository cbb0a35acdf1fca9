"""Health and the Prometheus exposition."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from watchkeeper.server.models import Health
from watchkeeper.server.service import Service


def add(app: FastAPI, service: Service) -> None:

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
