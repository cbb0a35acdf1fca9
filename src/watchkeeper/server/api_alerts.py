"""Alerts: list, read, acknowledge, close with a verdict."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request

from watchkeeper.server.http import (
    query_time,
)
from watchkeeper.server.models import (
    AckIn,
    AlertOut,
    CloseIn,
    ErrorResponse,
    alert_out,
)
from watchkeeper.server.service import Service
from watchkeeper.workspace import Workspace


def add(app: FastAPI, service: Service) -> None:

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
            service.model_or_404(model)
        start = query_time(since, "since")
        rows = service.read(lambda ws: ws.alerts(model, state=state, since=start))
        return [alert_out(r) for r in rows]

    @app.get(
        "/api/v1/alerts/{alert_id}",
        response_model=AlertOut,
        tags=["alerts"],
        responses={404: {"model": ErrorResponse, "description": "unknown alert"}},
    )
    def alert(alert_id: str, request: Request) -> AlertOut:
        service.authorize(request, "read")
        return alert_out(service.read(lambda ws: ws.alert(alert_id)))

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

        return alert_out(service.read(do))

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

        return alert_out(service.read(do))
