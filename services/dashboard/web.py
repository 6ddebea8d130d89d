"""The HTTP side: the page, its own stylesheet and script, and the JSON it refreshes from.

    GET /                       the page (French)
    GET /static/<file>          dashboard.css, dashboard.js: served from here, no CDN
    GET /api/overview[?day=D]   the figures of local day D (YYYY-MM-DD); by default today, or
                                the last day with stay events when today has none yet

Hospitals' networks are closed: the page loads nothing from elsewhere, and the Content
Security Policy says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import psycopg
import structlog
from aiohttp import web

from services.common.establishments import Establishment
from services.common.observability import FAILED, PROCESSED
from services.dashboard.config import DashboardConfig
from services.dashboard.lag_watch import LagWatch
from services.dashboard.overview import local_day, overview
from services.dashboard.store import DashboardStore

STATIC_DIR = Path(__file__).with_name("static")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    # Figures change every few seconds: never from a cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def make_app(
    store: DashboardStore,
    lag: LagWatch,
    config: DashboardConfig,
    establishments: Sequence[Establishment],
    log: structlog.stdlib.BoundLogger,
) -> web.Application:
    async def page(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def api_overview(request: web.Request) -> web.StreamResponse:
        day: dt.date | None = None
        if raw := request.query.get("day"):
            try:
                day = dt.date.fromisoformat(raw)
            except ValueError:
                return web.json_response(
                    {"error": f"jour invalide : {raw!r} (attendu AAAA-MM-JJ)"}, status=400
                )
        now = dt.datetime.now(dt.UTC)
        try:
            rows = await store.read_day(day, local_day(now))
        except psycopg.Error as error:
            FAILED.labels("dashboard", "database").inc()
            log.warning("figures unavailable", error=type(error).__name__)
            return web.json_response({"error": "base de données indisponible"}, status=503)
        PROCESSED.labels("dashboard", "overview").inc()
        figures = overview(
            rows, establishments, lag.latest, config.lag_threshold, now, config.refresh_seconds
        )
        return web.json_response(figures)

    app = web.Application(middlewares=[security_headers])
    app.router.add_get("/", page)
    app.router.add_get("/api/overview", api_overview)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    return app
