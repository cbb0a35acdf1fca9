"""The HTTP layer's own pieces: its errors (bad requests, keys, limits) with their place, the
error body, reading a request body within its limits, and query values that must parse."""

from __future__ import annotations

import asyncio
import math
import zlib
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from watchkeeper.errors import WatchkeeperError
from watchkeeper.windows import parse_duration, parse_time

CONTENT_TYPES = {
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json-lines": "jsonl",
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, where: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.where = where


def error_response(status: int, message: str, where: str = "") -> JSONResponse:
    return JSONResponse(
        {"error": {"status": status, "message": message, "where": where}}, status_code=status
    )


def body_format(content_type: str) -> str:
    base = content_type.split(";")[0].strip().lower()
    if base in CONTENT_TYPES:
        return CONTENT_TYPES[base]
    raise ApiError(
        415,
        f"unsupported content type {base!r}; use one of {', '.join(sorted(CONTENT_TYPES))}",
        "content-type",
    )


async def read_body(request: Request, limit: int, timeout: float = 30.0) -> bytes:
    """The body, refused past ``limit`` bytes, or when the client sends nothing of it for
    ``timeout`` seconds (408: a stalled body must not hold its connection forever)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is larger than the limit of {limit:,} bytes", "body")
    chunks = []
    size = 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), timeout)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise ApiError(
                408, f"the body stopped arriving for {timeout:g} s; send it whole", "body"
            ) from None
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is larger than the limit of {limit:,} bytes", "body")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "deflate"):
        body = _decompressed(body, encoding, limit)
    elif encoding not in ("", "identity"):
        raise ApiError(415, f"unsupported content encoding {encoding!r}", "content-encoding")
    if not body:
        raise ApiError(400, "the body is empty", "body")
    return body


def _decompressed(body: bytes, encoding: str, limit: int) -> bytes:
    """A gzip (every member of it) or deflate body, whole, within ``limit`` bytes."""
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    out = bytearray()
    data = body
    while data:
        decoder = zlib.decompressobj(wbits)
        try:
            out += decoder.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise ApiError(
                400, f"the body is not valid {encoding}: {exc}", "content-encoding"
            ) from None
        if len(out) > limit or decoder.unconsumed_tail:
            raise ApiError(413, f"the decompressed body is larger than {limit:,} bytes", "body")
        if not decoder.eof:
            raise ApiError(
                400, f"the body is not valid {encoding}: it is cut short", "content-encoding"
            )
        data = decoder.unused_data
        if data and encoding != "gzip":
            raise ApiError(
                400, f"the body is not valid {encoding}: data after its end", "content-encoding"
            )
    return bytes(out)


def query_time(text: str | None, where: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except (ValueError, WatchkeeperError) as exc:
        raise ApiError(400, str(exc), where) from None


def query_duration(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        parse_duration(text)
    except (ValueError, WatchkeeperError) as exc:
        raise ApiError(400, str(exc), "window") from None
    return text


def finite(row: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN or infinity: such values are sent as null."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }


def finite_deep(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_deep(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


__all__ = [
    "CONTENT_TYPES",
    "ApiError",
    "body_format",
    "error_response",
    "finite",
    "finite_deep",
    "query_duration",
    "query_time",
    "read_body",
]
