"""Covid's own settings, each with an environment variable and a default."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass

from services.common.settings import env_seconds


@dataclass(frozen=True)
class CovidConfig:
    enriched_topic: str = "stays.enriched"
    unroutable_topic: str = "stays.unroutable"
    """Unroutable stays count too: a readmission no GP can be told of still closes a case."""
    followups_topic: str = "covid.followups"
    dead_letter_topic: str = "deadletter.covid"
    group_id: str = "covid"
    reminder_delay: dt.timedelta = dt.timedelta(days=7)
    """How long after the discharge the GP is reminded, unless the case was closed."""
    complete_after: dt.timedelta = dt.timedelta(days=7)
    """How long after the reminder an untouched case is closed as complete."""
    timer_interval: float = 1.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CovidConfig:
        env = os.environ if environ is None else environ
        default = cls()

        def duration(name: str, days_name: str, value: dt.timedelta) -> dt.timedelta:
            if env.get(name):
                return env_seconds(env, name, value)
            if env.get(days_name):
                return dt.timedelta(days=float(env[days_name]))
            return value

        return cls(
            enriched_topic=env.get("COVID_ENRICHED_TOPIC") or default.enriched_topic,
            unroutable_topic=env.get("COVID_UNROUTABLE_TOPIC") or default.unroutable_topic,
            followups_topic=env.get("COVID_FOLLOWUPS_TOPIC") or default.followups_topic,
            dead_letter_topic=env.get("COVID_DEADLETTER_TOPIC") or default.dead_letter_topic,
            group_id=env.get("COVID_GROUP_ID") or default.group_id,
            reminder_delay=duration(
                "COVID_REMINDER_DELAY_SECONDS", "COVID_REMINDER_DAYS", default.reminder_delay
            ),
            complete_after=duration(
                "COVID_COMPLETE_AFTER_SECONDS", "COVID_COMPLETE_AFTER_DAYS", default.complete_after
            ),
            timer_interval=float(env.get("COVID_TIMER_INTERVAL_SECONDS") or default.timer_interval),
        )
