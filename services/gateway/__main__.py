"""``python -m services.gateway``: the MLLP gateway on MLLP_HOST:MLLP_PORT (default 2575)."""

import asyncio

from services.common.logging import configure_logging
from services.common.settings import Settings
from services.gateway.bootstrap import GatewayConfig, serve


def main() -> None:
    configure_logging("gateway")
    settings = Settings.from_env()
    asyncio.run(serve(settings, GatewayConfig.from_settings(settings)))


if __name__ == "__main__":
    main()
