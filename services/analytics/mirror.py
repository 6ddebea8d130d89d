"""The PostgreSQL mirror of the ``analytics.*`` topics, for analysts who use SQL.

Each record read becomes the row of its key in ``analytics_counts`` (an upsert), in the batch's
transaction; offsets are committed after it (``BatchConsumer``). The topics are compacted and
each has one partition, so the rows follow the records of a key in order: reading the topics
again, from anywhere, leaves the same rows. When PostgreSQL or Kafka fails, the mirror starts
over from the last committed offsets after a pause; the counting goes on meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import structlog

from services.analytics.config import AnalyticsConfig
from services.analytics.counting import DIMENSIONS, count_key
from services.common.consume import BatchConsumer
from services.common.db import apply_migrations, connect
from services.common.deadletter import DeadLetters
from services.common.kafka import make_consumer, make_producer
from services.common.outbox import Conn
from services.common.paths import PROJECT_ROOT
from services.common.serde import AvroSerde, make_registry_client
from services.common.settings import Settings

MIGRATIONS = PROJECT_ROOT / "services" / "analytics" / "migrations"

_COLUMNS = (
    "key",
    "metric",
    "granularity",
    "window_start",
    "window_end",
    "establishment",
    *DIMENSIONS,
    "count",
    "updated_at",
)

UPSERT = f"""
    INSERT INTO analytics_counts ({", ".join(_COLUMNS)})
    VALUES ({", ".join(f"%({name})s" for name in _COLUMNS)})
    ON CONFLICT (key) DO UPDATE SET count = EXCLUDED.count, updated_at = EXCLUDED.updated_at
"""


def upsert_count(conn: Conn, value: Mapping[str, Any]) -> None:
    """Write one ``AnalyticsCount`` as the row of its key."""
    row = {name: value.get(name) for name in _COLUMNS if name != "key"}
    conn.execute(UPSERT, {**row, "key": count_key(value)})


class SqlMirror:
    def __init__(
        self, settings: Settings, config: AnalyticsConfig, log: structlog.stdlib.BoundLogger
    ) -> None:
        self.settings = settings
        self.config = config
        self.log = log
        self.retry_pause = 5.0

    @property
    def topics(self) -> tuple[str, ...]:
        config = self.config
        return (
            config.stay_events_topic,
            config.notifications_topic,
            config.covid_discharges_topic,
        )

    def migrate(self) -> None:
        with connect(self.settings) as conn:
            apply_migrations(conn, "analytics", MIGRATIONS)

    def run(self, stop: threading.Event) -> None:
        """Mirror until ``stop`` is set, starting over after any failure."""
        while not stop.is_set():
            try:
                self.migrate()
                self._mirror(stop)
            except Exception:
                self.log.exception("analytics.mirror_failed", retry_in=self.retry_pause)
                stop.wait(self.retry_pause)

    def _mirror(self, stop: threading.Event) -> None:
        serde = AvroSerde(make_registry_client(self.settings), "harpicoop.AnalyticsCount")
        with connect(self.settings) as conn:
            consumer = BatchConsumer(
                consumer=make_consumer(
                    self.settings,
                    "analytics-sql",
                    self.config.sql_group_id,
                    **{
                        "session.timeout.ms": int(
                            self.config.session_timeout.total_seconds() * 1000
                        )
                    },
                ),
                topics=dict.fromkeys(self.topics, serde),
                conn=conn,
                dead_letters=DeadLetters(
                    make_producer(self.settings, "analytics-sql"),
                    "analytics",
                    self.config.dead_letter_topic,
                ),
                handle=lambda _topic, value: upsert_count(conn, value),
                log=self.log.bind(part="sql-mirror"),
            )
            self.log.info("analytics.mirror_started", topics=list(self.topics))
            consumer.run(stop, batch_size=500)
