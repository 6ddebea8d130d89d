"""``python -m services.covid``: follow-up of Covid-positive or suspected discharges."""

from __future__ import annotations

from services.common.logging import configure_logging
from services.common.settings import Settings
from services.covid.config import CovidConfig
from services.covid.service import CovidService


def main() -> None:
    log = configure_logging("covid")
    service = CovidService(Settings.from_env(), CovidConfig.from_env(), log)
    service.threads.stop_on_signals()
    service.start()
    service.threads.serve_observability()
    service.threads.wait()


if __name__ == "__main__":
    main()
