"""The transactional outbox: a state change and the record announcing it commit together.

A service writes the already-serialised record into the ``outbox`` table in the transaction that
changes its state; a relay publishes the rows in order and deletes them only once Kafka has
confirmed every one. A crash between the two publishes some records again (at-least-once), which
consumers of keyed, compacted or idempotently handled topics absorb. One relay per owner
publishes at a time (an advisory lock), so records of one key keep their order even with several
replicas of a service. A row Kafka refuses on its own account (too large, invalid: see
``services.common.poison.refusal``) ``POISON_ATTEMPTS`` rounds in a row is set aside whole in
``outbox_refused``, so that the rows behind it go out; any other failure keeps every row queued.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg
import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from psycopg.rows import dict_row

from services.common.db import apply_migrations
from services.common.observability import PROCESSED
from services.common.poison import Fault, Next, PoisonPolicy, RecordAttempts, refusal

MIGRATIONS = Path(__file__).parent / "migrations"

Conn = psycopg.Connection[Any]


def migrate(conn: Conn) -> None:
    """The outbox table, for services that use it (``make up`` applies it too)."""
    apply_migrations(conn, "common", MIGRATIONS)


def _bytes(value: str | bytes | None) -> bytes | None:
    return value.encode("utf-8") if isinstance(value, str) else value


def enqueue(
    conn: Conn, owner: str, topic: str, key: str | bytes | None, value: bytes | None
) -> None:
    """Add a record to publish; ``value`` None is a tombstone. Part of the caller's transaction."""
    conn.execute(
        "INSERT INTO outbox (owner, topic, key, value) VALUES (%s, %s, %s, %s)",
        (owner, topic, _bytes(key), value),
    )


def change_and_announce(
    conn: Conn,
    sql: str,
    params: tuple[Any, ...],
    returning: str,
    announce: Callable[[Conn, Mapping[str, Any]], None],
) -> int:
    """Run an INSERT, UPDATE or DELETE ``sql`` with ``RETURNING returning`` and hand each row
    to ``announce`` (which enqueues its record) in the caller's transaction; how many rows
    changed. A row the statement left alone (an ``ON CONFLICT ... WHERE`` that did not match)
    announces nothing."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(f"{sql} RETURNING {returning}", params).fetchall()  # type: ignore[arg-type]
    for row in rows:
        announce(conn, row)
    return len(rows)


class OutboxRelay:
    """Publishes one owner's outbox rows to Kafka, oldest first."""

    def __init__(
        self,
        conn: Conn,
        producer: Producer,
        owner: str,
        log: structlog.stdlib.BoundLogger,
        policy: PoisonPolicy | None = None,
    ) -> None:
        self.conn = conn
        self.producer = producer
        self.owner = owner
        self.log = log
        self.attempts = RecordAttempts(policy or PoisonPolicy.from_env())
        self._lock_id = zlib.crc32(f"outbox:{owner}".encode())
        self.published = 0

    def publish_pending(self, limit: int = 500) -> int:
        """Publish up to ``limit`` rows; how many (0 when another relay holds the lock)."""
        errors: dict[int, KafkaError] = {}

        def delivered_for(row_id: int) -> Callable[[KafkaError | None, Message], None]:
            def delivered(error: KafkaError | None, _message: Message) -> None:
                if error is not None:
                    errors[row_id] = error

            return delivered

        with self.conn.transaction():
            locked = self.conn.execute(
                "SELECT pg_try_advisory_xact_lock(%s)", (self._lock_id,)
            ).fetchone()
            if not locked or not locked[0]:
                return 0
            rows = self.conn.execute(
                "SELECT id, topic, key, value FROM outbox WHERE owner = %s ORDER BY id LIMIT %s",
                (self.owner, limit),
            ).fetchall()
            if not rows:
                return 0
            for row_id, topic, key, value in rows:
                try:
                    self.producer.produce(
                        topic,
                        key=bytes(key) if key is not None else None,
                        value=bytes(value) if value is not None else None,
                        on_delivery=delivered_for(row_id),
                    )
                except KafkaException as raised:
                    # Refused before it left (too large for the client): a delivery error too.
                    errors[row_id] = raised.args[0]
                self.producer.poll(0)
            unconfirmed = self.producer.flush(30)
            refused = self._refused(errors) if not unconfirmed else []
            if unconfirmed or len(refused) < len(errors):
                # Rolled back: nothing deleted, everything published again next round.
                self.log.error(
                    "outbox publication failed",
                    owner=self.owner,
                    unconfirmed=unconfirmed,
                    errors=list(errors.values())[:3],
                )
                raise RoundFailed
            if refused:
                self._set_aside(refused, errors)
            self.conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", ([row[0] for row in rows],))
        self.published += len(rows) - len(refused)
        return len(rows)

    def _refused(self, errors: Mapping[int, KafkaError]) -> list[int]:
        """The rows refused for good: refused on their own account ``POISON_ATTEMPTS`` rounds;
        every other failure (an outage, or a row with rounds left) is counted for next time."""
        return [
            row_id
            for row_id, error in errors.items()
            if refusal(error) is Fault.RECORD
            and self.attempts.failed(row_id, KafkaException(error)).next is Next.DEAD_LETTER
        ]

    def _set_aside(self, refused: list[int], errors: Mapping[int, KafkaError]) -> None:
        for row_id in refused:
            self.conn.execute(
                "INSERT INTO outbox_refused "
                "(id, owner, topic, key, value, created_at, error_code) "
                "SELECT id, owner, topic, key, value, created_at, %s FROM outbox WHERE id = %s "
                "ON CONFLICT (id) DO NOTHING",
                (errors[row_id].name(), row_id),
            )
            PROCESSED.labels(self.owner, "outbox_refused").inc()
            self.log.error(
                "outbox row refused by Kafka; set aside in outbox_refused",
                owner=self.owner,
                row_id=row_id,
                error=errors[row_id].name(),
            )

    def run(self, stop: threading.Event, interval: float = 0.2) -> None:
        while not stop.is_set():
            try:
                published = self.publish_pending()
            except RoundFailed:
                published = 0
            if not published:
                stop.wait(interval)
        with contextlib.suppress(RoundFailed):
            self.publish_pending()


class RoundFailed(Exception):
    """A round of publication failed and was rolled back: nothing unconfirmed was deleted, and
    every row is published again next round."""
