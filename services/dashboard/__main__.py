"""``python -m services.dashboard``: the web dashboard for analysts and operators."""

from __future__ import annotations

from services.common.logging import configure_logging
from services.common.settings import Settings
from services.dashboard.app import run
from services.dashboard.config import DashboardConfig


def main() -> None:
    log = configure_logging("dashboard")
    run(Settings.from_env(principal="dashboard"), DashboardConfig.from_env(), log)


if __name__ == "__main__":
    main()
