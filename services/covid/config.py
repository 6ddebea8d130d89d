"""Covid's own settings, each with an environment variable and a default."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from services.common.settings import read_config, setting


@dataclass(frozen=True)
class CovidConfig:
    enriched_topic: str = setting("stays.enriched", "COVID_ENRICHED_TOPIC")
    unroutable_topic: str = setting("stays.unroutable", "COVID_UNROUTABLE_TOPIC")
    """Unroutable stays count too: a readmission no GP can be told of still closes a case."""
    merges_topic: str = setting("patients.merges", "COVID_MERGES_TOPIC")
    """Patient merges (A40): a merged record's open cases move to the surviving patient."""
    followups_topic: str = setting("covid.followups", "COVID_FOLLOWUPS_TOPIC")
    dead_letter_topic: str = setting("deadletter.covid", "COVID_DEADLETTER_TOPIC")
    group_id: str = setting("covid", "COVID_GROUP_ID")
    reminder_delay: dt.timedelta = setting(
        dt.timedelta(days=7), "COVID_REMINDER_DELAY_SECONDS", "COVID_REMINDER_DAYS", minimum=0
    )
    """How long after the discharge the GP is reminded, unless the case was closed."""
    complete_after: dt.timedelta = setting(
        dt.timedelta(days=7), "COVID_COMPLETE_AFTER_SECONDS", "COVID_COMPLETE_AFTER_DAYS", minimum=0
    )
    """How long after the reminder an untouched case is closed as complete."""
    timer_interval: float = setting(1.0, "COVID_TIMER_INTERVAL_SECONDS", minimum=0.01)
    retention: dt.timedelta = setting(
        dt.timedelta(days=30), "COVID_RETENTION_SECONDS", "COVID_RETENTION_DAYS", minimum=0
    )
    """How long after its closure a case is kept (for the GP's questions, a late correction);
    then it is deleted and a tombstone removes it from ``covid.followups``. A patient merge is
    kept as long after it was recorded."""
    purge_interval: float = setting(3600.0, "COVID_PURGE_INTERVAL_SECONDS", minimum=0.01)
    purge_batch: int = setting(500, "COVID_PURGE_BATCH", minimum=1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CovidConfig:
        return read_config(cls, environ)
