"""``python -m services.enrich``: unique stay events joined with the practitioner directory."""

from __future__ import annotations

from services.common.logging import configure_logging
from services.common.settings import Settings
from services.enrich.config import EnrichConfig
from services.enrich.service import EnrichService


def main() -> None:
    log = configure_logging("enrich")
    service = EnrichService(Settings.from_env(), EnrichConfig.from_env(), log)
    service.threads.stop_on_signals()
    directory = service.start()
    service.threads.serve_observability({"directory_loaded": lambda: directory.wait_loaded(0)})
    log.info("enrich started")
    service.threads.wait()


if __name__ == "__main__":
    main()
