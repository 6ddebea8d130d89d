"""Builds the dashboard from its settings and serves it until SIGINT or SIGTERM.

The page and its JSON on ``DASHBOARD_HOST:DASHBOARD_PORT``; ``/metrics`` and ``/health`` on
``METRICS_PORT`` (9408), like every other service, where ``harpicoop status`` and Prometheus
look for them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from services.common.establishments import load_establishments
from services.common.observability import ObservabilityServer, metrics_port
from services.common.settings import Settings
from services.dashboard.config import DashboardConfig
from services.dashboard.lag_watch import LagWatch
from services.dashboard.store import DashboardStore
from services.dashboard.web import make_app


def run(settings: Settings, config: DashboardConfig, log: structlog.stdlib.BoundLogger) -> None:
    store = DashboardStore(settings.database_url, config.dsn_window)
    lag = LagWatch(settings, config.groups, config.lag_interval, log)
    app = make_app(store, lag, config, load_establishments(), log)

    async def background(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(lag.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()

    app.cleanup_ctx.append(background)
    observability = ObservabilityServer(
        "dashboard", metrics_port("dashboard"), {"database": store.reachable}
    ).start()
    log.info("observability endpoint", port=observability.port)
    try:
        # aiohttp turns SIGINT and SIGTERM into a clean stop; one line per request is noise.
        web.run_app(
            app,
            host=config.host,
            port=config.port,
            access_log=None,
            # Said once the socket is bound: from then on the URL answers.
            print=lambda _banner: log.info("dashboard listening", url=config.url),
            shutdown_timeout=5,
        )
    except OSError as error:  # most often: the port is taken, by another dashboard perhaps
        log.error("cannot listen", host=config.host, port=config.port, error=error)
        raise SystemExit(1) from None
    finally:
        observability.stop()
        log.info("dashboard stopped")
