"""The PostgreSQL mirror of the ``analytics.*`` topics, for analysts who use SQL.

It runs beside the counting, on a consumer of its own. Each batch of records read keeps the
latest of each key and writes them as rows of ``analytics_counts`` in one upsert statement run
over the batch (``executemany``), in one transaction; offsets are committed after it. The
topics are compacted and each has one partition, so the rows follow the records of a key in
order: reading the topics again, from anywhere, leaves the same rows. A record that does not
decode, or that PostgreSQL refuses, is dead-lettered and the others written. When PostgreSQL
or Kafka fails, the mirror starts over from the last committed offsets after a pause; the
counting goes on meanwhile.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from confluent_kafka import Consumer, Message, TopicPartition

from services.analytics.config import AnalyticsConfig
from services.analytics.counting import DIMENSIONS, count_key
from services.common.consume import fetch_batch
from services.common.db import apply_migrations, connect
from services.common.deadletter import DeadLetters
from services.common.kafka import make_consumer, make_producer
from services.common.observability import PROCESSED
from services.common.outbox import Conn
from services.common.paths import PROJECT_ROOT
from services.common.poison import Fault, classify, describe
from services.common.records import AnalyticsCount
from services.common.serde import RecordSerde, UndecodableValue, make_registry_client
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


Row = dict[str, Any]


def count_row(count: AnalyticsCount) -> Row:
    """The row of one count."""
    return {
        **{name: getattr(count, name) for name in _COLUMNS if name != "key"},
        "key": count_key(count),
    }


def upsert_rows(conn: Conn, rows: list[Row]) -> None:
    """Write each row as the row of its key, in one statement run over them all."""
    with conn.cursor() as cursor:
        cursor.executemany(UPSERT, rows)


class SqlMirror:
    def __init__(
        self, settings: Settings, config: AnalyticsConfig, log: structlog.stdlib.BoundLogger
    ) -> None:
        self.settings = settings
        self.config = config
        self.log = log
        self.retry_pause = 5.0
        self.batch_size = 2000

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
        serde = RecordSerde(make_registry_client(self.settings), AnalyticsCount)
        session_ms = int(self.config.session_timeout.total_seconds() * 1000)
        consumer = make_consumer(
            self.settings,
            "analytics-sql",
            self.config.sql_group_id,
            **{"session.timeout.ms": session_ms},
        )
        dead_letters = DeadLetters(
            make_producer(self.settings, "analytics-sql"),
            "analytics",
            self.config.dead_letter_topic,
        )
        try:
            consumer.subscribe(list(self.topics))
            self.log.info("analytics.mirror_started", topics=list(self.topics))
            with connect(self.settings) as conn:
                while not stop.is_set():
                    messages = fetch_batch(consumer, self.batch_size, timeout=0.5)
                    if messages:
                        self._write(conn, consumer, serde, dead_letters, messages)
        finally:
            consumer.close()

    def _write(
        self,
        conn: Conn,
        consumer: Consumer,
        serde: RecordSerde[AnalyticsCount],
        dead_letters: DeadLetters,
        messages: list[Message],
    ) -> None:
        latest: dict[str, tuple[Message, Row]] = {}
        offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.error() is not None:
                self.log.warning("analytics.mirror_consumer_error", error=str(message.error()))
                continue
            topic, raw = str(message.topic()), message.value()
            offsets[(topic, int(message.partition() or 0))] = int(message.offset() or 0) + 1
            if raw is None:
                continue  # a tombstone: the mirror keeps rows for analysts
            try:
                row = count_row(serde.deserialize(topic, raw))
            except UndecodableValue as error:
                self._dead_letter(dead_letters, message, "undecodable value", error, None)
                continue
            latest[row["key"]] = (message, row)
        try:
            with conn.transaction():
                upsert_rows(conn, [row for _, row in latest.values()])
        except Exception as error:
            if classify(error) is not Fault.RECORD or conn.closed or conn.broken:
                raise
            # Some row is refused: each is written on its own, and the refused ones set aside.
            for message, row in latest.values():
                try:
                    with conn.transaction():
                        upsert_rows(conn, [row])
                except Exception as refused:
                    if classify(refused) is not Fault.RECORD or conn.closed or conn.broken:
                        raise
                    self._dead_letter(
                        dead_letters, message, "handling failed", refused, describe(refused)
                    )
        if offsets:
            consumer.commit(
                offsets=[TopicPartition(t, p, offset) for (t, p), offset in offsets.items()],
                asynchronous=False,
            )
        PROCESSED.labels("analytics", "mirrored").inc(len(latest))

    def _dead_letter(
        self,
        dead_letters: DeadLetters,
        message: Message,
        reason: str,
        error: BaseException,
        description: str | None,
    ) -> None:
        dead_letters.send_message(message, reason, error, description)
        PROCESSED.labels("analytics", "dead_lettered").inc()
        self.log.error(
            "analytics.mirror_dead_lettered",
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            reason=reason,
            error=type(error).__name__,
        )
