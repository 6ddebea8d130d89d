"""Practitioner records on their way to the compacted ``practitioners`` topic, through the
platform's transactional outbox (``services.common.outbox``).

``queue`` serialises each changed practitioner's whole current state (a tombstone once they
have left) into the outbox, inside the transaction that changed them; ``publish_queued`` has the
outbox relay send the rows and delete them only once Kafka has acknowledged every one. Keys are
RPPS numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

from services.common import outbox
from services.common.records import Practitioner
from services.common.serde import RecordSerde
from services.directory.records import practitioner_record
from services.directory.store import PractitionerState

OUTBOX_OWNER = "directory"


class PublishError(RuntimeError):
    """Kafka did not acknowledge the queued records; they stay queued for the next run."""


class PractitionerPublisher:
    def __init__(
        self,
        conn: psycopg.Connection[Any],
        serde: RecordSerde[Practitioner],
        topic: str,
        relay: outbox.OutboxRelay,
        *,
        batch_size: int = 10_000,
    ) -> None:
        self.conn = conn
        self.serde = serde
        self.topic = topic
        self.relay = relay
        self.batch_size = batch_size

    def queue(self, states: Iterable[PractitionerState]) -> int:
        """Add records to the outbox; part of the caller's transaction. How many were queued.

        A first import queues every practitioner: the rows go in by COPY, what
        ``outbox.enqueue`` would insert one statement at a time (a hundred times slower here).
        """
        queued = 0
        with (
            self.conn.cursor() as cursor,
            cursor.copy(
                "COPY outbox (owner, topic, key, value) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["text", "text", "bytea", "bytea"])
            for rpps, state in states:
                value = (
                    None
                    if state is None
                    else self.serde.serialize(self.topic, practitioner_record(state))
                )
                copy.write_row((OUTBOX_OWNER, self.topic, rpps.encode("ascii"), value))
                queued += 1
        return queued

    def publish_queued(self, progress: Callable[[int], None] | None = None) -> int:
        """Send everything queued; returns how many records Kafka acknowledged.

        Stops early, without error, if another process is publishing the same outbox: it
        sends the rest.
        """
        published, failed_rounds = 0, 0
        while True:
            try:
                sent = self.relay.publish_pending(self.batch_size)
            except Exception as error:  # the relay has rolled back: nothing was lost
                failed_rounds += 1
                # A row Kafka refuses is set aside after a few rounds: give it those rounds.
                if (
                    isinstance(error, outbox.RoundFailed)
                    and failed_rounds <= self.relay.attempts.policy.attempts
                ):
                    time.sleep(min(5.0, 0.5 * failed_rounds))
                    continue
                raise PublishError(
                    f"Kafka did not acknowledge the records for {self.topic}; "
                    f"{self.pending():,} stay queued"
                ) from error
            if not sent:
                return published
            published += sent
            if progress is not None:
                progress(published)

    def pending(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM outbox WHERE owner = %s", (OUTBOX_OWNER,)
        ).fetchone()
        return int(row[0]) if row else 0
