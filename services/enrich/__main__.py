"""``python -m services.enrich``: unique stay events joined with the practitioner directory."""

from __future__ import annotations

import structlog

from services.common.runner import ServiceThreads, run_service
from services.common.settings import Settings
from services.enrich.config import EnrichConfig
from services.enrich.service import EnrichService


def start(settings: Settings, log: structlog.stdlib.BoundLogger) -> ServiceThreads:
    service = EnrichService(settings, EnrichConfig.from_env(), log)
    service.start()
    return service.threads


if __name__ == "__main__":
    run_service("enrich", start)
