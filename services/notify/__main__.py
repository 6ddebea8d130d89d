"""``python -m services.notify``: emails practitioners from ``stays.enriched``."""

from __future__ import annotations

import sys

import structlog

from services.common.runner import ServiceThreads, run_service
from services.common.settings import Settings
from services.notify.config import NotifyConfig
from services.notify.service import NotifyService

SWITCH_INTERVAL = 0.0005
"""Seconds a thread holds the GIL before another may take it (5 ms by default). Intake renders
and writes notices on the CPU while the delivery workers mostly wait on SMTP replies: each
reply waited up to 5 ms for the GIL, four times per email, and a busy intake held delivery to a
fraction of its rate."""


def start(settings: Settings, log: structlog.stdlib.BoundLogger) -> ServiceThreads:
    sys.setswitchinterval(SWITCH_INTERVAL)
    service = NotifyService(settings, NotifyConfig.from_env(), log)
    service.start()
    return service.threads


if __name__ == "__main__":
    run_service("notify", start)
