"""The dashboard's own settings, beside the platform's: each an environment variable with a
default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class DashboardConfigError(ValueError):
    """A DASHBOARD_* variable holds a value the dashboard cannot use."""


@dataclass(frozen=True)
class DashboardConfig:
    host: str = "127.0.0.1"
    """Only this machine by default: the page shows activity figures, and a hospital decides
    who else may see them (``0.0.0.0`` behind its own access control)."""
    port: int = 8088
    groups: tuple[str, ...] = ("dedup", "enrich", "notify", "covid", "analytics", "analytics-sql")
    """The consumer groups whose lag is shown: one per service reading Kafka."""
    lag_threshold: int = 1000
    """Above this many records still to read, a group's bar turns red."""
    lag_interval: float = 5.0
    """Seconds between two readings of the consumer offsets."""
    refresh_seconds: float = 5.0
    """How often the page asks for new figures."""

    @property
    def url(self) -> str:
        # Bound to every interface, it is reachable here as localhost.
        shown = "localhost" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{shown}:{self.port}/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DashboardConfig:
        env = os.environ if environ is None else environ
        default = cls()

        def number(name: str, value: float, minimum: float) -> float:
            raw = env.get(name)
            if not raw:
                return value
            try:
                parsed = float(raw)
            except ValueError:
                raise DashboardConfigError(f"{name}={raw!r} is not a number") from None
            if parsed < minimum:
                raise DashboardConfigError(f"{name}={raw!r} must be at least {minimum:g}")
            return parsed

        groups = env.get("DASHBOARD_GROUPS")
        return cls(
            host=env.get("DASHBOARD_HOST") or default.host,
            port=int(number("DASHBOARD_PORT", default.port, 1)),
            groups=(
                tuple(item.strip() for item in groups.split(",") if item.strip())
                if groups
                else default.groups
            ),
            lag_threshold=int(number("DASHBOARD_LAG_THRESHOLD", default.lag_threshold, 0)),
            lag_interval=number("DASHBOARD_LAG_SECONDS", default.lag_interval, 0.5),
            refresh_seconds=number("DASHBOARD_REFRESH_SECONDS", default.refresh_seconds, 1),
        )
