"""``python -m services.covid``: follow-up of Covid-positive or suspected discharges."""

from __future__ import annotations

import structlog

from services.common.runner import ServiceThreads, run_service
from services.common.settings import Settings
from services.covid.config import CovidConfig
from services.covid.service import CovidService


def start(settings: Settings, log: structlog.stdlib.BoundLogger) -> ServiceThreads:
    service = CovidService(settings, CovidConfig.from_env(), log)
    service.start()
    return service.threads


if __name__ == "__main__":
    run_service("covid", start)
