"""Dedup's own settings, beside the platform's: each with an environment variable and a default."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.paths import PROJECT_ROOT
from services.common.settings import env_seconds


@dataclass(frozen=True)
class DedupConfig:
    input_pattern: str = r"stays\.raw\..+"
    """Every topic whose whole name matches is read; a new establishment needs no change."""
    output_topic: str = "stays.unique"
    dead_letter_topic: str = "deadletter.dedup"
    group_id: str = "dedup"
    """Consumer group, and the prefix of the tables' changelog topics."""
    horizon: dt.timedelta = dt.timedelta(days=7)
    """How long a message or a movement action is remembered; older ones may pass again."""
    data_dir: Path = PROJECT_ROOT / ".stack" / "dedup"
    """Where the RocksDB tables live; a lost folder is rebuilt from the changelogs."""
    topic_refresh: dt.timedelta = dt.timedelta(seconds=30)
    """How often the broker is asked for new topics matching ``input_pattern``."""
    resubscribe_delay: dt.timedelta = dt.timedelta(seconds=5)
    """Pause before subscribing to newly found topics, so that several are taken at once."""
    sweep_interval: dt.timedelta = dt.timedelta(minutes=10)
    """How often remembered entries older than the horizon are deleted."""
    report_interval: dt.timedelta = dt.timedelta(seconds=30)
    commit_interval: dt.timedelta = dt.timedelta(seconds=1)
    session_timeout: dt.timedelta = dt.timedelta(seconds=30)
    """How long the partitions of a worker that died for good wait before moving elsewhere."""
    instance_id: str = f"dedup@{socket.gethostname()}"
    """Static group membership: a restarted worker with the same id takes its partitions back at
    once, instead of waiting for the session of the killed one to expire. Defaults to
    ``<group>@<host>``; give each worker on one host its own (and its own ``data_dir``)."""
    web_port: int | None = None
    """faust's web server (statistics), off unless a port is given."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DedupConfig:
        env = os.environ if environ is None else environ
        default = cls()

        horizon_days = env.get("DEDUP_HORIZON_DAYS")
        web_port = env.get("DEDUP_WEB_PORT")
        group_id = env.get("DEDUP_GROUP_ID") or default.group_id
        return cls(
            input_pattern=env.get("DEDUP_INPUT_PATTERN") or default.input_pattern,
            output_topic=env.get("DEDUP_OUTPUT_TOPIC") or default.output_topic,
            dead_letter_topic=env.get("DEDUP_DEADLETTER_TOPIC") or default.dead_letter_topic,
            group_id=group_id,
            horizon=(dt.timedelta(days=float(horizon_days)) if horizon_days else default.horizon),
            data_dir=Path(env.get("DEDUP_DATA_DIR") or default.data_dir),
            topic_refresh=env_seconds(env, "DEDUP_TOPIC_REFRESH_SECONDS", default.topic_refresh),
            resubscribe_delay=env_seconds(
                env, "DEDUP_RESUBSCRIBE_SECONDS", default.resubscribe_delay
            ),
            sweep_interval=env_seconds(env, "DEDUP_SWEEP_SECONDS", default.sweep_interval),
            report_interval=env_seconds(env, "DEDUP_REPORT_SECONDS", default.report_interval),
            commit_interval=env_seconds(env, "DEDUP_COMMIT_SECONDS", default.commit_interval),
            session_timeout=env_seconds(
                env, "DEDUP_SESSION_TIMEOUT_SECONDS", default.session_timeout
            ),
            instance_id=env.get("DEDUP_INSTANCE_ID") or f"{group_id}@{socket.gethostname()}",
            web_port=int(web_port) if web_port else None,
        )
