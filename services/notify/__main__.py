"""``python -m services.notify``: emails practitioners from ``stays.enriched``."""

from __future__ import annotations

import structlog

from services.common.runner import ServiceThreads, run_service
from services.common.settings import Settings
from services.notify.config import NotifyConfig
from services.notify.service import NotifyService


def start(settings: Settings, log: structlog.stdlib.BoundLogger) -> ServiceThreads:
    service = NotifyService(settings, NotifyConfig.from_env(), log)
    service.start()
    return service.threads


if __name__ == "__main__":
    run_service("notify", start)
