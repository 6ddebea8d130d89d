"""The dashboard's own settings, beside the platform's: each an environment variable with a
default."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from services.common.delivery_proof import DSN_WINDOW
from services.common.ports import local_port
from services.common.settings import read_config, setting


@dataclass(frozen=True)
class DashboardConfig:
    host: str = setting("127.0.0.1", "DASHBOARD_HOST")
    """Only this machine by default: the page shows activity figures, and a hospital decides
    who else may see them (``0.0.0.0`` behind its own access control)."""
    port: int = setting(local_port(8088), "DASHBOARD_PORT", minimum=1)
    groups: tuple[str, ...] = setting(
        ("dedup", "enrich", "notify", "covid", "analytics", "analytics-sql"), "DASHBOARD_GROUPS"
    )
    """The consumer groups whose lag is shown: one per service reading Kafka."""
    lag_threshold: int = setting(1000, "DASHBOARD_LAG_THRESHOLD", minimum=0)
    """Above this many records still to read, a group's bar turns red."""
    lag_interval: float = setting(5.0, "DASHBOARD_LAG_SECONDS", minimum=0.5)
    """Seconds between two readings of the consumer offsets."""
    refresh_seconds: float = setting(5.0, "DASHBOARD_REFRESH_SECONDS", minimum=1)
    """How often the page asks for new figures."""
    dsn_window: dt.timedelta = setting(DSN_WINDOW, "NOTIFY_DSN_WINDOW_SECONDS", minimum=1)
    """notify's own setting, read here too: a notice sent longer ago with no delivery report
    nor bounce is shown as unconfirmed."""

    @property
    def url(self) -> str:
        # Bound to every interface, it is reachable here as localhost.
        shown = "localhost" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{shown}:{self.port}/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DashboardConfig:
        return read_config(cls, environ)
