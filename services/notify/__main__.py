"""``python -m services.notify``: emails practitioners from ``stays.enriched``."""

from __future__ import annotations

import signal
import sys

from services.common.logging import configure_logging
from services.common.settings import Settings
from services.notify.config import NotifyConfig
from services.notify.service import NotifyService


def main() -> None:
    log = configure_logging("notify")
    service = NotifyService(Settings.from_env(), NotifyConfig.from_env(), log)
    signal.signal(signal.SIGTERM, lambda *_: service.shutdown())
    signal.signal(signal.SIGINT, lambda *_: service.shutdown())
    service.start()
    service.wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
