"""``python -m services.gateway``: the MLLP gateway on MLLP_HOST:MLLP_PORT (default 2575)."""

import asyncio
import logging
import sys

import structlog

from services.common.logging import configure_logging
from services.common.settings import Settings, SettingsError
from services.gateway.bootstrap import GatewayConfig, serve


def main() -> None:
    configure_logging("gateway")
    # Module loggers are created before logging is configured: the service name goes in the
    # context, which every task of the event loop inherits.
    structlog.contextvars.bind_contextvars(service="gateway")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per registry lookup
    settings = Settings.from_env(principal="gateway")
    try:
        config = GatewayConfig.from_settings(settings)
        config.tls.server_context()  # refuse to start, saying what to set, before any work
    except SettingsError as error:
        structlog.get_logger("gateway").error("cannot start", error=error)
        print(f"gateway: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    asyncio.run(serve(settings, config))


if __name__ == "__main__":
    main()
