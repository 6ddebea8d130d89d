"""The loop of a service whose effects live in PostgreSQL: a batch of records, one transaction,
then the offsets.

Offsets are committed only after the transaction that holds the batch's effects has committed,
so a crash anywhere replays the batch (at-least-once); handlers make the replay harmless with
deterministic keys (``ON CONFLICT DO NOTHING`` and the like). A record that cannot be decoded,
or whose handling fails ``POISON_ATTEMPTS`` times because of what it holds
(``services.common.poison``), is dead-lettered with its origin before its offset is committed, and
the stream goes on. A batch is first handled whole, without a savepoint per record (two round
trips each to the database); should one of its records fail on its content, the transaction is
rolled back and the batch handled again one record at a time, each in a savepoint, so a poison
record's half-done effects go, the batch's others stay. An outage (the registry unreachable,
say) rolls the batch back and tries it again, with backoff, until the outage ends; a lost
database connection stops the service, which reconnects when restarted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import structlog
from confluent_kafka import Consumer, Message, TopicPartition
from psycopg.pq import TransactionStatus

from services.common.deadletter import DeadLetters, log_dead_lettered
from services.common.observability import PROCESSED
from services.common.outbox import Conn
from services.common.poison import Fault, PoisonPolicy, RecordAttempts, classify, describe
from services.common.serde import UndecodableValue


class Decoder(Protocol):
    """What reads a topic's values: an ``AvroSerde`` (dicts) or a ``RecordSerde`` (records)."""

    def deserialize(self, topic: str, data: bytes) -> Any: ...


Handler = Callable[[str, Any], None]
"""Called with the record's topic and decoded value (of its topic's decoder), inside the batch's
transaction."""
TombstoneHandler = Callable[[str, bytes | None], None]
"""Called with the topic and key of a tombstone (a null value: the key's record is deleted, on a
compacted topic), inside the batch's transaction."""


class BatchHooks(Protocol):
    """What a handler does once per batch rather than once per record."""

    def begin(self) -> None:
        """A try of the batch starts: what an earlier try (rolled back) tallied is forgotten."""

    def before_commit(self) -> None:
        """Inside the batch's transaction, after its records: statements once per batch."""

    def committed(self) -> None:
        """The batch's transaction committed: its log line and counters."""


class SwallowedDatabaseError(Exception):
    """A handler went on after a statement failed: the transaction cannot commit (PostgreSQL
    would roll it back on COMMIT without an error, and the offsets would follow)."""


def fetch_batch(consumer: Consumer, max_records: int, timeout: float) -> list[Message]:
    """Up to ``max_records`` records: waits up to ``timeout`` for the first only, then takes what
    librdkafka has already fetched without waiting.

    ``consume(n, timeout)`` alone returns only at ``n`` records or at the timeout, so a quiet
    stream paid the whole timeout on every record; here a batch leaves as soon as something is
    there, and a busy stream still gets full batches from what is already in memory.
    """
    batch = consumer.consume(1, timeout=timeout)
    while batch and len(batch) < max_records:
        more = consumer.consume(max_records - len(batch), timeout=0)
        if not more:
            break
        batch.extend(more)
    return batch


class BatchConsumer:
    def __init__(
        self,
        *,
        consumer: Consumer,
        topics: Mapping[str, Decoder],
        conn: Conn,
        dead_letters: DeadLetters,
        handle: Handler,
        log: structlog.stdlib.BoundLogger,
        policy: PoisonPolicy | None = None,
        handle_tombstone: TombstoneHandler | None = None,
        hooks: BatchHooks | None = None,
    ) -> None:
        """Without ``handle_tombstone``, tombstones are read past: a consumer that keeps nothing
        per key of that topic has nothing to forget. ``hooks`` are called around each try of a
        batch."""
        self.consumer = consumer
        self.topics = topics
        self.conn = conn
        self.dead_letters = dead_letters
        self.handle = handle
        self.handle_tombstone = handle_tombstone
        self.hooks = hooks
        self.log = log
        self.processed = 0
        self.policy = policy or PoisonPolicy.from_env()
        self.attempts = RecordAttempts(self.policy)
        self.service = dead_letters.service

    def run(self, stop: threading.Event, batch_size: int = 200) -> None:
        self.consumer.subscribe(list(self.topics))
        try:
            while not stop.is_set():
                messages = fetch_batch(self.consumer, batch_size, timeout=0.5)
                if messages:
                    self._process_through_outages(messages, stop)
        finally:
            self.consumer.close()

    def _process_through_outages(self, messages: list[Message], stop: threading.Event) -> None:
        outages = 0
        while True:
            try:
                self.process(messages)
                return
            except Exception as error:
                if classify(error) is not Fault.OUTAGE or self.conn.closed or self.conn.broken:
                    raise
                outages += 1
                pause = self.policy.pause(outages, Fault.OUTAGE)
                self.log.warning(
                    "batch rolled back during an outage; trying it again",
                    error=type(error).__name__,
                    outages=outages,
                    retry_in=pause,
                )
                if stop.wait(pause):
                    return

    def process(self, messages: list[Message]) -> None:
        """The batch's effects in one transaction, then its offsets: handled whole first, one
        record at a time (``_one``) should a record fail on its content."""
        offsets: dict[tuple[str, int], int] = {}
        records: list[Message] = []
        for message in messages:
            if message.error() is not None:
                self.log.warning("consumer error", error=message.error())
                continue
            records.append(message)
            place = (str(message.topic()), int(message.partition() or 0))
            offsets[place] = int(message.offset() or 0) + 1
        if records and not self._whole(records):
            self._begin()
            with self.conn.transaction():
                for message in records:
                    self._one(message)
                self._before_commit()
            self._committed()
        if offsets:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, offset) for (t, p), offset in offsets.items()],
                asynchronous=False,
            )

    def _whole(self, records: list[Message]) -> bool:
        """The batch in one transaction with no savepoint; False, rolled back, when a record
        failed on its content (decoding included), for ``_one`` to find which. An outage
        raises, as in ``_one``."""
        try:
            decoded = [(message, self._decode(message)) for message in records]
            self._begin()
            with self.conn.transaction():
                for message, value in decoded:
                    self._apply(str(message.topic()), message, value)
                self._before_commit()
                if self.conn.info.transaction_status is TransactionStatus.INERROR:
                    raise SwallowedDatabaseError
        except Exception as error:
            if classify(error) is Fault.OUTAGE or self.conn.closed or self.conn.broken:
                raise
            self.log.info(
                "batch failed on a record; handling it one record at a time",
                records=len(records),
                error=type(error).__name__,
            )
            return False
        self.processed += len(records)
        self._committed()
        return True

    def _decode(self, message: Message) -> Any:
        """The record's value, or None for a tombstone."""
        raw = message.value()
        if raw is None:
            return None
        topic = str(message.topic())
        return self.topics[topic].deserialize(topic, raw)

    def _apply(self, topic: str, message: Message, value: Any) -> None:
        if value is None:  # a tombstone, not a record
            if self.handle_tombstone is not None:
                self.handle_tombstone(topic, message.key())
            return
        self.handle(topic, value)

    def _begin(self) -> None:
        if self.hooks is not None:
            self.hooks.begin()

    def _before_commit(self) -> None:
        if self.hooks is not None:
            self.hooks.before_commit()

    def _committed(self) -> None:
        if self.hooks is not None:
            self.hooks.committed()

    def _one(self, message: Message) -> None:
        topic = str(message.topic())

        def attempt() -> None:
            # A savepoint: a failed record takes back its own effects, not the batch's.
            with self.conn.transaction():
                self._apply(topic, message, self._decode(message))

        def poison(error: BaseException) -> None:
            self._dead_letter(message, "handling failed", error, describe(error))

        place = (topic, message.partition(), message.offset())
        try:
            if self.attempts.run(place, attempt, poison, self.log):
                self.processed += 1
        except UndecodableValue as error:
            self._dead_letter(message, "undecodable value", error, None)

    def _dead_letter(
        self, message: Message, reason: str, error: BaseException, description: str | None
    ) -> None:
        self.dead_letters.send_message(message, reason, error, description)
        PROCESSED.labels(self.service, "dead_lettered").inc()
        log_dead_lettered(self.log, message, reason, error)
