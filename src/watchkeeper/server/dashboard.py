"""The web dashboard served by ``watchkeeper serve``: server-rendered pages whose charts are
drawn by Vega-Lite from their specs (the libraries served from the installed package under
/assets, never a CDN), so it works offline. The pages ask the library (the service's
reader workspace), never the store.
"""

from __future__ import annotations

import secrets
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from watchkeeper.server.auth import CSRF_COOKIE, SESSION_COOKIE, Denied, check
from watchkeeper.server.http import ApiError
from watchkeeper.server.pages.alerts import AlertsPage
from watchkeeper.server.pages.drift import DriftPage
from watchkeeper.server.pages.html import render
from watchkeeper.server.pages.overview import OverviewPage
from watchkeeper.server.pages.segments import SegmentsPage


class Pages(OverviewPage, DriftPage, SegmentsPage, AlertsPage):
    """Builds each page from a workspace."""


# Swagger UI (swagger-ui-dist from the npm registry, vendored with its licence in
# static/swagger), for /docs offline.
SWAGGER_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
# Vega, Vega-Lite and vega-embed (npm, vendored with their licences in static/vega).
VEGA_ASSETS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")


def _asset(name: str) -> bytes:
    path = resources.files("watchkeeper.server").joinpath("static", *name.split("/"))
    return path.read_bytes()


def login_page(said: str = "") -> str:
    return render("login.html", said=said)


def mount(app: FastAPI, service: Any) -> None:
    """Add the dashboard's routes and assets to the app."""

    def page(request: Request, build: Any) -> Response:
        try:
            service.authorize(request, "read")
        except ApiError:
            return RedirectResponse("/login", status_code=303)
        html = service.read(lambda ws: build(Pages(ws)))
        return HTMLResponse(html)

    @app.get("/", include_in_schema=False)
    def overview(request: Request) -> Response:
        return page(request, lambda p: p.overview())

    @app.get("/models/{model}", include_in_schema=False)
    def model_page(
        request: Request,
        model: str,
        metric: str | None = Query(default=None, max_length=200),
        column: str = Query(default="", max_length=500),
        days: int = Query(default=0, ge=0, le=3660),
        segment: str = Query(default="", max_length=500),
        version: str = Query(default="", max_length=200),
    ) -> Response:
        return page(request, lambda p: p.model_page(model, metric, column, days, segment, version))

    @app.get("/models/{model}/drift", include_in_schema=False)
    def drift(
        request: Request,
        model: str,
        window: str | None = Query(default=None, max_length=64),
        feature: str | None = Query(default=None, max_length=500),
    ) -> Response:
        return page(request, lambda p: p.drift_page(model, window, feature))

    @app.get("/models/{model}/segments", include_in_schema=False)
    def segments(request: Request, model: str) -> Response:
        return page(request, lambda p: p.segments_page(model))

    @app.get("/alerts", include_in_schema=False)
    def alerts(
        request: Request,
        model: str | None = Query(default=None, max_length=200),
        rule: str | None = Query(default=None, max_length=200),
        severity: str | None = Query(default=None, max_length=20),
        owner: str | None = Query(default=None, max_length=200),
        state: str | None = Query(default=None, max_length=20),
    ) -> Response:
        chosen = {"rule": rule, "severity": severity, "owner": owner, "state": state}
        return page(request, lambda p: p.alerts_page(model, chosen))

    @app.get("/models/{model}/alerts/{alert_id}", include_in_schema=False)
    def alert(request: Request, model: str, alert_id: str) -> Response:
        return page(request, lambda p: p.alert_page(model, alert_id))

    @app.get("/login", include_in_schema=False)
    def login() -> Response:
        return HTMLResponse(login_page())

    @app.post("/login", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        """Check the key, then keep it in an HttpOnly cookie (no script can read it) with a
        CSRF token beside it that the dashboard's own script echoes in a header."""
        body = (await request.body())[:4096].decode("utf-8", "replace")
        key = (parse_qs(body).get("key") or [""])[0].strip()
        try:
            check(service.keys, key, "read")
        except Denied as exc:
            return HTMLResponse(login_page(exc.message), status_code=exc.status)
        answer = RedirectResponse("/", status_code=303)
        secure = request.url.scheme == "https"
        answer.set_cookie(
            SESSION_COOKIE, key, httponly=True, samesite="strict", secure=secure, path="/"
        )
        answer.set_cookie(
            CSRF_COOKIE, secrets.token_urlsafe(24), samesite="strict", secure=secure, path="/"
        )
        return answer

    types = {"js": "text/javascript", "css": "text/css", "png": "image/png"}

    def served(path: str, allowed: tuple[str, ...], max_age: int) -> Response:
        """A file of the package's static folder, if it is one of those allowed."""
        name = path.rsplit("/", 1)[-1]
        if name not in allowed:
            return Response(status_code=404)
        return Response(
            _asset(path),
            media_type=types[name.rsplit(".", 1)[1]],
            headers={"Cache-Control": f"max-age={max_age}"},
        )

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        """The API's reference (Swagger UI), its script and style from the package."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="watchkeeper API",
            swagger_js_url="/assets/swagger/swagger-ui-bundle.js",
            swagger_css_url="/assets/swagger/swagger-ui.css",
            swagger_favicon_url="/assets/swagger/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no call to swagger.io's validator
        )

    @app.get("/assets/swagger/{name}", include_in_schema=False)
    def swagger_asset(name: str) -> Response:
        return served(f"swagger/{name}", SWAGGER_ASSETS, 86400)

    @app.get("/assets/vega/{name}", include_in_schema=False)
    def vega_asset(name: str) -> Response:
        return served(f"vega/{name}", VEGA_ASSETS, 86400)

    @app.get("/assets/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        return served(name, ("charts.js", "dashboard.css"), 3600)
