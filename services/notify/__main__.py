"""``python -m services.notify``: emails practitioners from ``stays.enriched``."""

from __future__ import annotations

from services.common.logging import configure_logging
from services.common.settings import Settings
from services.notify.config import NotifyConfig
from services.notify.service import NotifyService


def main() -> None:
    log = configure_logging("notify")
    service = NotifyService(Settings.from_env(), NotifyConfig.from_env(), log)
    service.threads.stop_on_signals()
    service.start()
    service.threads.serve_observability()
    service.threads.wait()


if __name__ == "__main__":
    main()
