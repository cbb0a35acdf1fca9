"""Log what a service serves without writing the logging: a decorator for a predict
function, and ASGI middleware for FastAPI, Starlette or any ASGI app.

Both write one event per served prediction with an event id, the time, the latency and the
status (``ok``, ``error`` or ``timeout``), so a failed request is counted in ``error_rate``
instead of being missing; they use the logger's column names (``names``, or the config's
for ``DirectLogger``). Give them any logger (``Logger``, ``AsyncLogger``, ``DirectLogger``):
they only call ``log_prediction``, which appends to a queue and returns.

``watch``: the function's first argument, when it is a mapping, holds the features; its
result is merged in when it is a mapping, or written as the score when it is a number.

The middleware: an endpoint says what it predicted with ``record(features, score=...)``
(``current_event_id()`` gives the id to return to the caller, for the labels that come
later). A request on the watched paths that fails (an exception, a 5xx; 504 or a timeout
is ``timeout``) is logged even when nothing was recorded; one that succeeds is logged only
when the endpoint recorded something, so health checks and docs stay out. A failed request
that recorded nothing takes its fields from the request's JSON body (the features, in the
usual predict endpoint), so its row has the features the config requires and lands as an
error instead of in the quarantine. A 4xx (the caller's mistake) is logged only when
recorded, as ``ok``: the model did serve it.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
F = TypeVar("F", bound=Callable[..., Any])


class RowLogger(Protocol):
    names: dict[str, str]

    def log_prediction(self, event: Mapping[str, Any]) -> bool: ...


@dataclass
class _Served:
    """One request's event while it is being served."""

    event_id: str
    started: float  # perf_counter
    at: datetime
    fields: dict[str, Any] = field(default_factory=dict)
    recorded: bool = False


_current: ContextVar[_Served | None] = ContextVar("watchkeeper_served", default=None)


def _begin(event_id: str | None = None) -> _Served:
    return _Served(event_id or uuid.uuid4().hex, time.perf_counter(), datetime.now(UTC))


def record(features: Mapping[str, Any] | None = None, /, **fields: Any) -> str:
    """Attach what this request predicted (features, ``score=``, ``prediction=``, any
    column) to the event the middleware will log; returns its event id. Call it from an
    endpoint served under ``WatchkeeperMiddleware``."""
    served = _current.get()
    if served is None:
        raise LookupError(
            "watchkeeper.client.serving.record() was called outside a request watched by "
            "WatchkeeperMiddleware (add the middleware, or check its paths=)"
        )
    served.fields.update(features or {})
    served.fields.update(fields)
    served.recorded = True
    return served.event_id


def current_event_id() -> str | None:
    """The event id of the request being served under the middleware, if any."""
    served = _current.get()
    return served.event_id if served else None


def _log(logger: RowLogger, served: _Served, status: str, version: str | None) -> None:
    names = logger.names
    row = dict(served.fields)
    row.setdefault(names.get("event_id", "event_id"), served.event_id)
    row.setdefault(names.get("timestamp", "timestamp"), served.at)
    if names.get("latency"):
        row[names["latency"]] = (time.perf_counter() - served.started) * 1000.0
    if names.get("status"):
        row[names["status"]] = status
    if version is not None and names.get("model_version"):
        row.setdefault(names["model_version"], version)
    logger.log_prediction(row)


def _failure(exc: BaseException) -> str:
    return "timeout" if isinstance(exc, TimeoutError) else "error"


def watch(logger: RowLogger, *, version: str | None = None) -> Callable[[F], F]:
    """Decorate a predict function (plain or ``async``) so that each call is logged with
    its latency and status; the exception of a failed call is logged and raised again."""

    def decorate(fn: F) -> F:
        score = logger.names.get("score", "score")
        event_id = logger.names.get("event_id", "event_id")

        def begin(args: tuple[Any, ...]) -> _Served:
            features = args[0] if args and isinstance(args[0], Mapping) else {}
            served = _begin(str(features[event_id]) if event_id in features else None)
            served.fields.update(features)
            return served

        def done(served: _Served, result: Any) -> None:
            if isinstance(result, Mapping):
                served.fields.update(result)
            elif isinstance(result, int | float) and not isinstance(result, bool):
                served.fields[score] = float(result)
            _log(logger, served, "ok", version)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awaited(*args: Any, **kwargs: Any) -> Any:
                served = begin(args)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    _log(logger, served, _failure(exc), version)
                    raise
                done(served, result)
                return result

            return awaited  # type: ignore[return-value]

        @functools.wraps(fn)
        def called(*args: Any, **kwargs: Any) -> Any:
            served = begin(args)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                _log(logger, served, _failure(exc), version)
                raise
            done(served, result)
            return result

        return called  # type: ignore[return-value]

    return decorate


MAX_BODY = 1 << 20  # a failed request's body is read for its fields up to this size


def _from_body(served: _Served, body: bytes | bytearray) -> None:
    """A failed request that recorded nothing: the scalar fields of its JSON object body."""
    if served.recorded or not body or len(body) > MAX_BODY:
        return
    try:
        fields = json.loads(body)
    except ValueError:
        return
    if isinstance(fields, dict):
        served.fields.update(
            {k: v for k, v in fields.items() if v is None or isinstance(v, str | int | float)}
        )


class WatchkeeperMiddleware:
    """ASGI middleware: ``app.add_middleware(WatchkeeperMiddleware, logger=wk,
    paths=["/predict"])`` on FastAPI or Starlette, or ``WatchkeeperMiddleware(app, wk)``
    around any ASGI app. ``paths`` are prefixes (all paths when not given)."""

    def __init__(
        self,
        app: ASGIApp,
        logger: RowLogger,
        *,
        paths: Sequence[str] | None = None,
        version: str | None = None,
    ) -> None:
        self.app = app
        self.logger = logger
        self.paths = tuple(paths) if paths else None
        self.version = version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self.paths is not None and not str(scope.get("path", "")).startswith(self.paths)
        ):
            await self.app(scope, receive, send)
            return
        served = _begin()
        token = _current.set(served)
        code: list[int] = []
        body = bytearray()

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < MAX_BODY:
                body.extend(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                code.append(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        except BaseException as exc:
            _from_body(served, body)
            _log(self.logger, served, _failure(exc), self.version)
            raise
        finally:
            _current.reset(token)
        status = code[0] if code else 500
        if status >= 500:
            _from_body(served, body)
            _log(self.logger, served, "timeout" if status == 504 else "error", self.version)
        elif served.recorded:
            _log(self.logger, served, "ok", self.version)


__all__ = ["WatchkeeperMiddleware", "current_event_id", "record", "watch"]
