"""Analytics' own settings, beside the platform's: each an environment variable with a default."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.paths import PROJECT_ROOT
from services.common.settings import SettingsError, read_config, setting


class AnalyticsConfigError(SettingsError):
    """The windows cannot keep what the grace period promises."""


@dataclass(frozen=True)
class AnalyticsConfig:
    enriched_topic: str = setting("stays.enriched", "ANALYTICS_ENRICHED_TOPIC")
    unroutable_topic: str = setting("stays.unroutable", "ANALYTICS_UNROUTABLE_TOPIC")
    status_topic: str = setting("notifications.status", "ANALYTICS_STATUS_TOPIC")
    stay_events_topic: str = setting("analytics.stay_events", "ANALYTICS_STAY_EVENTS_TOPIC")
    notifications_topic: str = setting("analytics.notifications", "ANALYTICS_NOTIFICATIONS_TOPIC")
    covid_discharges_topic: str = setting(
        "analytics.covid_discharges", "ANALYTICS_COVID_DISCHARGES_TOPIC"
    )
    dead_letter_topic: str = setting("deadletter.analytics", "ANALYTICS_DEADLETTER_TOPIC")
    group_id: str = setting("analytics", "ANALYTICS_GROUP_ID")
    """The faust app id: its consumer group and the prefix of its internal topics."""
    sql_group_id: str = setting("analytics-sql", "ANALYTICS_SQL_GROUP_ID")
    """The consumer group of the PostgreSQL mirror of the ``analytics.*`` topics."""
    batch_size: int = setting(2000, "ANALYTICS_BATCH_SIZE", minimum=1)
    """Records counted together: each window they change is written and published once."""
    batch_wait: dt.timedelta = setting(
        dt.timedelta(seconds=0.5), "ANALYTICS_BATCH_SECONDS", minimum=0.01
    )
    """How long a batch waits to fill up before it is counted as it is."""
    grace: dt.timedelta = setting(dt.timedelta(hours=48), "ANALYTICS_GRACE_SECONDS", minimum=0)
    """How far behind the latest event time of its input partition an event may be and count."""
    expires: dt.timedelta = setting(dt.timedelta(days=4), "ANALYTICS_EXPIRES_DAYS", minimum=0)
    """How long windows stay in the tables (faust drops them by the wall clock after that)."""
    data_dir: Path = setting(PROJECT_ROOT / ".stack" / "analytics", "ANALYTICS_DATA_DIR")
    """Where the RocksDB tables live; a lost folder is rebuilt from the changelogs."""
    commit_interval: dt.timedelta = setting(
        dt.timedelta(seconds=1), "ANALYTICS_COMMIT_SECONDS", minimum=0.01
    )
    session_timeout: dt.timedelta = setting(
        dt.timedelta(seconds=30), "ANALYTICS_SESSION_TIMEOUT_SECONDS", minimum=1
    )
    """How long the partitions of a worker that died unannounced wait before others take them."""
    report_interval: dt.timedelta = setting(
        dt.timedelta(seconds=60), "ANALYTICS_REPORT_SECONDS", minimum=0.1
    )
    web_port: int | None = setting(None, "ANALYTICS_WEB_PORT", minimum=1)
    """faust's web server (statistics), off unless a port is given."""

    def __post_init__(self) -> None:
        # A window must outlive every event that may still count in it: see ``EventClock``.
        if self.expires < self.grace + dt.timedelta(days=2):
            raise AnalyticsConfigError(
                f"ANALYTICS_EXPIRES_DAYS ({self.expires}) must exceed the grace period "
                f"({self.grace}) by two days at least"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AnalyticsConfig:
        return read_config(cls, environ)
