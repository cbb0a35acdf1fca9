"""Reads: models, metrics, backtests, runs (and running one now), triage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query, Request

from watchkeeper.server.http import (
    finite,
    finite_deep,
    query_duration,
    query_time,
)
from watchkeeper.server.models import (
    BacktestOut,
    ErrorResponse,
    MetricRow,
    ModelInfo,
    RunIn,
    RunOut,
    RunResultOut,
)
from watchkeeper.server.service import Service
from watchkeeper.workspace import Workspace


def add(app: FastAPI, service: Service) -> None:

    @app.get("/api/v1/models", response_model=list[ModelInfo], tags=["read"])
    def models(request: Request) -> list[ModelInfo]:
        """The configured models, their versions and what is stored."""
        service.authorize(request, "read")

        def build(ws: Workspace) -> list[ModelInfo]:
            out = []
            for m in ws.config.models:
                out.append(
                    ModelInfo(
                        name=m.name,
                        task=m.task,
                        owner=m.owner,
                        version=m.version,
                        versions=ws.versions(m.name),
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
        service.model_or_404(model)
        table = service.read(
            lambda ws: ws.metrics(
                model,
                metric=metric,
                column=column,
                segment=segment,
                since=query_time(since, "since"),
                until=query_time(until, "until"),
                window=query_duration(window),
            )
        )
        rows = table.slice(0, limit).to_pylist()
        return [MetricRow(**finite(r)) for r in rows]

    @app.get("/api/v1/models/{model}/backtest", response_model=list[BacktestOut], tags=["read"])
    def backtest(
        model: str,
        request: Request,
        last: Annotated[int, Query(ge=1, le=10_000)] = 30,
    ) -> list[BacktestOut]:
        """How far to trust the performance estimated without labels."""
        service.authorize(request, "read")
        service.model_or_404(model)
        found = service.read(lambda ws: ws.backtest(model, last=last))
        return [BacktestOut(**finite(b.to_dict())) for b in found.values()]

    @app.get("/api/v1/runs", response_model=list[RunOut], tags=["read"])
    def runs(
        request: Request,
        model: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[RunOut]:
        """Recent runs, newest first, with their status."""
        service.authorize(request, "read")
        if model is not None:
            service.model_or_404(model)

        found = service.read(lambda ws: ws.runs(model, limit=limit))
        return [RunOut(**{**r, "detail": r["detail"] or ""}) for r in found]

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
        service.model_or_404(model)
        with service.run_lock:
            result = service.scheduler_ws.cycle([model]).runs[model]
        return RunResultOut(
            model=model,
            windows=len(result.windows),
            metrics=result.metric_count,
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
        service.model_or_404(model)
        when = query_time(at, "at")
        found = service.read(lambda ws: ws.triage(model, metric=metric, at=when, alert=alert))
        cleaned: dict[str, Any] = finite_deep(found.to_dict())
        return cleaned
