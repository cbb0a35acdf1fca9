"""Ingestion: rows in any of the accepted formats, group-committed by the writer."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import FastAPI, Query, Request

from watchkeeper.ingest.readers import open_bytes
from watchkeeper.server.http import body_format, read_body
from watchkeeper.server.models import ErrorResponse, IngestResponse
from watchkeeper.server.service import Service


def add(app: FastAPI, service: Service) -> None:

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
        fmt = body_format(request.headers.get("content-type", "application/json"))
        server = service.config.server
        body = await read_body(request, server.max_body_bytes, server.body_timeout.total_seconds())
        if isinstance(body, bytes):
            future = service.writer.submit(cfg, kind, open_bytes(body, fmt), version)
        else:  # a large body, on disk: the writer reads it as it stores it, then it goes
            try:
                future = service.writer.submit(cfg, kind, open_bytes(body, fmt), version)
            except BaseException:
                body.close()
                raise
            future.add_done_callback(lambda _: body.close())
        result = await asyncio.wrap_future(future)
        return IngestResponse(**result.to_dict())
