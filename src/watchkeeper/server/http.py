"""The HTTP layer's own pieces: its errors (bad requests, keys, limits) with their place, the
error body, reading a request body within its limits, and query values that must parse."""

from __future__ import annotations

import asyncio
import math
import tempfile
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO

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


# A body up to this size is kept in memory; a larger one is written to a temporary file as
# it arrives, and read from there a batch at a time (the server's memory for a body is then
# about a batch's, whatever the body's size).
IN_MEMORY_BODY = 1 << 20
_INFLATE_PIECE = 1 << 20  # decompressed at most this much at a time (a small bomb stays small)


async def read_body(request: Request, limit: int, timeout: float = 30.0) -> bytes | BinaryIO:
    """The body, decompressed: bytes when small, else a temporary file at its start (the
    caller closes it). Refused past ``limit`` bytes (sent or decompressed), or when the
    client sends nothing of it for ``timeout`` seconds (408: a stalled body must not hold
    its connection forever)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is larger than the limit of {limit:,} bytes", "body")
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "deflate"):
        raise ApiError(415, f"unsupported content encoding {encoding!r}", "content-encoding")
    inflate = _Inflate(encoding) if encoding in ("gzip", "deflate") else None
    sink = _Sink(limit, "the decompressed body" if inflate else "the body")
    sent = 0
    stream = request.stream().__aiter__()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), timeout)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise ApiError(
                    408, f"the body stopped arriving for {timeout:g} s; send it whole", "body"
                ) from None
            sent += len(chunk)
            if sent > limit:
                raise ApiError(413, f"the body is larger than the limit of {limit:,} bytes", "body")
            for piece in inflate.feed(chunk) if inflate else (chunk,):
                sink.write(piece)
        if inflate:
            inflate.finish()
        if not sink.size:
            raise ApiError(400, "the body is empty", "body")
        return sink.result()
    except BaseException:
        sink.discard()
        raise


class _Sink:
    """Where a body goes as it arrives: memory, then a temporary file past IN_MEMORY_BODY."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what
        self.size = 0
        self.head = bytearray()
        self.file: BinaryIO | None = None

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise ApiError(
                413, f"{self.what} is larger than the limit of {self.limit:,} bytes", "body"
            )
        if self.file is None and self.size <= IN_MEMORY_BODY:
            self.head += data
            return
        if self.file is None:
            self.file = tempfile.TemporaryFile(prefix="watchkeeper-body-")  # noqa: SIM115
            self.file.write(self.head)
            self.head = bytearray()
        self.file.write(data)

    def result(self) -> bytes | BinaryIO:
        if self.file is None:
            return bytes(self.head)
        self.file.seek(0)
        return self.file

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()


class _Inflate:
    """A gzip (every member of it) or deflate body decompressed as it arrives."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        self.decoder = zlib.decompressobj(self.wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            try:
                piece = self.decoder.decompress(data, _INFLATE_PIECE)
            except zlib.error as exc:
                raise self._invalid(str(exc)) from None
            yield piece
            if self.decoder.eof:  # what follows the member (unconsumed_tail may repeat it)
                data = self.decoder.unused_data
                if not data:
                    return
                if self.encoding != "gzip":
                    raise self._invalid("data after its end")
                self.decoder = zlib.decompressobj(self.wbits)  # the next gzip member
                continue
            data = self.decoder.unconsumed_tail
            if data:
                continue
            if len(piece) < _INFLATE_PIECE:
                return  # all of the input is used and no output is pending

    def finish(self) -> None:
        if not self.decoder.eof:
            raise self._invalid("it is cut short")

    def _invalid(self, why: str) -> ApiError:
        return ApiError(400, f"the body is not valid {self.encoding}: {why}", "content-encoding")


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
