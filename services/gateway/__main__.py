"""``python -m services.gateway``: the MLLP gateway on MLLP_HOST:MLLP_PORT (default 2575)."""

import asyncio
import logging

import structlog

from services.common.logging import configure_logging
from services.common.settings import Settings
from services.gateway.bootstrap import GatewayConfig, serve


def main() -> None:
    configure_logging("gateway")
    # Module loggers are created before logging is configured: the service name goes in the
    # context, which every task of the event loop inherits.
    structlog.contextvars.bind_contextvars(service="gateway")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per registry lookup
    settings = Settings.from_env()
    asyncio.run(serve(settings, GatewayConfig.from_settings(settings)))


if __name__ == "__main__":
    main()
