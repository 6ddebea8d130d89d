"""Dedup's own settings, beside the platform's: each with an environment variable and a default."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from services.common.settings import read_config, setting


@dataclass(frozen=True)
class DedupConfig:
    input_pattern: str = setting(r"stays\.raw\..+", "DEDUP_INPUT_PATTERN")
    """Every topic whose whole name matches is read; a new establishment needs no change."""
    output_topic: str = setting("stays.unique", "DEDUP_OUTPUT_TOPIC")
    dead_letter_topic: str = setting("deadletter.dedup", "DEDUP_DEADLETTER_TOPIC")
    group_id: str = setting("dedup", "DEDUP_GROUP_ID")
    """Consumer group."""
    claims_topic: str = setting("", "DEDUP_CLAIMS_TOPIC")
    """The compacted changelog of what dedup remembers; defaults to ``<group>-claims``."""
    horizon: dt.timedelta = setting(dt.timedelta(days=7), "DEDUP_HORIZON_DAYS", minimum=0)
    """How long a message or a movement action is remembered; older ones may pass again."""
    topic_refresh: dt.timedelta = setting(
        dt.timedelta(seconds=10), "DEDUP_TOPIC_REFRESH_SECONDS", minimum=0.1
    )
    """How often librdkafka asks the broker for new topics matching ``input_pattern``
    (``topic.metadata.refresh.interval.ms``)."""
    sweep_interval: dt.timedelta = setting(
        dt.timedelta(minutes=10), "DEDUP_SWEEP_SECONDS", minimum=0.1
    )
    """How often remembered entries older than the horizon are deleted."""
    report_interval: dt.timedelta = setting(
        dt.timedelta(seconds=30), "DEDUP_REPORT_SECONDS", minimum=0.1
    )
    batch_size: int = setting(500, "DEDUP_BATCH_SIZE", minimum=1)
    """The most records in one transaction."""
    session_timeout: dt.timedelta = setting(
        dt.timedelta(seconds=30), "DEDUP_SESSION_TIMEOUT_SECONDS", minimum=1
    )
    """How long the partitions of a worker that died for good wait before moving elsewhere."""
    instance_id: str = setting("", "DEDUP_INSTANCE_ID")
    """Static group membership and transactional id: a restarted worker with the same id takes
    its partitions back at once, instead of waiting for the session of the killed one to expire,
    and aborts the transaction it left open. Defaults to ``<group>@<host>``; give each worker on
    one host its own."""

    def __post_init__(self) -> None:
        if not self.instance_id:
            object.__setattr__(self, "instance_id", f"{self.group_id}@{socket.gethostname()}")
        if not self.claims_topic:
            object.__setattr__(self, "claims_topic", f"{self.group_id}-claims")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DedupConfig:
        return read_config(cls, environ)
