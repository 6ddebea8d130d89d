"""Analytics' own settings, beside the platform's: each an environment variable with a default."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.paths import PROJECT_ROOT
from services.common.settings import env_seconds


class AnalyticsConfigError(ValueError):
    """The windows cannot keep what the grace period promises."""


@dataclass(frozen=True)
class AnalyticsConfig:
    enriched_topic: str = "stays.enriched"
    unroutable_topic: str = "stays.unroutable"
    status_topic: str = "notifications.status"
    stay_events_topic: str = "analytics.stay_events"
    notifications_topic: str = "analytics.notifications"
    covid_discharges_topic: str = "analytics.covid_discharges"
    dead_letter_topic: str = "deadletter.analytics"
    group_id: str = "analytics"
    """The faust app id: its consumer group and the prefix of its internal topics."""
    sql_group_id: str = "analytics-sql"
    """The consumer group of the PostgreSQL mirror of the ``analytics.*`` topics."""
    partitions: int = 3
    """Of the internal topic of observations and of the tables."""
    grace: dt.timedelta = dt.timedelta(hours=48)
    """How far behind the latest event time of its input partition an event may be and count."""
    expires: dt.timedelta = dt.timedelta(days=4)
    """How long windows stay in the tables (faust drops them by the wall clock after that)."""
    data_dir: Path = PROJECT_ROOT / ".stack" / "analytics"
    """Where the RocksDB tables live; a lost folder is rebuilt from the changelogs."""
    commit_interval: dt.timedelta = dt.timedelta(seconds=1)
    session_timeout: dt.timedelta = dt.timedelta(seconds=30)
    """How long the partitions of a worker that died unannounced wait before others take them."""
    report_interval: dt.timedelta = dt.timedelta(seconds=60)
    web_port: int | None = None
    """faust's web server (statistics), off unless a port is given."""

    def __post_init__(self) -> None:
        # A window must outlive every event that may still count in it: see ``EventClock``.
        if self.expires < self.grace + dt.timedelta(days=2):
            raise AnalyticsConfigError(
                f"ANALYTICS_EXPIRES_DAYS ({self.expires}) must exceed the grace period "
                f"({self.grace}) by two days at least"
            )

    @property
    def observations_topic(self) -> str:
        """Internal topic, keyed by series, that brings each series to one table partition."""
        return f"{self.group_id}-observations"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AnalyticsConfig:
        env = os.environ if environ is None else environ
        default = cls()

        expires_days = env.get("ANALYTICS_EXPIRES_DAYS")
        data_dir = env.get("ANALYTICS_DATA_DIR")
        web_port = env.get("ANALYTICS_WEB_PORT")
        return cls(
            enriched_topic=env.get("ANALYTICS_ENRICHED_TOPIC") or default.enriched_topic,
            unroutable_topic=env.get("ANALYTICS_UNROUTABLE_TOPIC") or default.unroutable_topic,
            status_topic=env.get("ANALYTICS_STATUS_TOPIC") or default.status_topic,
            stay_events_topic=env.get("ANALYTICS_STAY_EVENTS_TOPIC") or default.stay_events_topic,
            notifications_topic=(
                env.get("ANALYTICS_NOTIFICATIONS_TOPIC") or default.notifications_topic
            ),
            covid_discharges_topic=(
                env.get("ANALYTICS_COVID_DISCHARGES_TOPIC") or default.covid_discharges_topic
            ),
            dead_letter_topic=env.get("ANALYTICS_DEADLETTER_TOPIC") or default.dead_letter_topic,
            group_id=env.get("ANALYTICS_GROUP_ID") or default.group_id,
            sql_group_id=env.get("ANALYTICS_SQL_GROUP_ID") or default.sql_group_id,
            partitions=int(env.get("ANALYTICS_PARTITIONS") or default.partitions),
            grace=env_seconds(env, "ANALYTICS_GRACE_SECONDS", default.grace),
            expires=(dt.timedelta(days=float(expires_days)) if expires_days else default.expires),
            data_dir=Path(data_dir or default.data_dir),
            commit_interval=env_seconds(env, "ANALYTICS_COMMIT_SECONDS", default.commit_interval),
            session_timeout=env_seconds(
                env, "ANALYTICS_SESSION_TIMEOUT_SECONDS", default.session_timeout
            ),
            report_interval=env_seconds(env, "ANALYTICS_REPORT_SECONDS", default.report_interval),
            web_port=int(web_port) if web_port else None,
        )
