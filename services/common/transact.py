"""The transactional stream loop: records in, decided one by one, and the outputs, the state
changes and the input offsets out together, in one Kafka transaction per batch.

Readers of committed records (every consumer of the platform: ``isolation.level`` is
``read_committed``) see a batch whole or not at all, so a stage killed anywhere neither loses a
record (its offset was not committed) nor lets one through twice (its outputs were aborted with
the offsets). A stage supplies only its per-record decision (``Stage.handle``), and, when it keeps
state, what to do as partitions come and go and as a batch commits or aborts (``Stage``'s other
hooks). The loop owns the rest, the same for every stage:

- batches from ``services.common.consume.fetch_batch``: out as soon as records are there;
- begin, produce, ``send_offsets_to_transaction``, commit;
- a record that cannot be decoded, or whose handling fails ``POISON_ATTEMPTS`` times on its
  content (``services.common.poison``), goes whole to the dead-letter topic, inside the batch's
  transaction like any other output;
- an outage aborts the batch, which is read again from its first offsets after a backoff; a
  fatal error (a producer fenced by a newer instance of itself) is raised: only a restart clears
  it;
- counting: ``harpicoop_records_processed_total`` per outcome and one INFO line per batch, once
  the batch is committed, so an aborted batch read again is not counted twice and the hot path
  holds no metric or log call per record.

``read_to_end`` rebuilds a stage's state from its compacted changelog.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from services.common.consume import fetch_batch
from services.common.deadletter import error_headers, log_dead_lettered
from services.common.observability import PROCESSED
from services.common.poison import Fault, PoisonPolicy, RecordAttempts, classify, describe
from services.common.serde import UndecodableValue
from services.common.streams import header_pairs

Headers = list[tuple[str, str | bytes | None]]


class Batch:
    """One transaction's work: a stage produces through it and counts what became of each record.

    Everything produced here is part of the transaction: committed with the batch's offsets or
    aborted with them.
    """

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.by_partition: dict[int, collections.Counter[str]] = {}
        """The outcomes of each input partition's records (partition numbers, any topic)."""

    def produce(
        self,
        topic: str,
        key: bytes | str | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        where: dict[str, Any] = {} if partition is None else {"partition": partition}
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, headers=headers, **where)
                return
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                self.producer.poll(0.05)

    def count(self, outcome: str, partition: int) -> None:
        self.outcomes[outcome] += 1
        self.by_partition.setdefault(partition, collections.Counter())[outcome] += 1


V = TypeVar("V")
"""What a stage decodes its records into (a record type of ``services.common.records``)."""


class Stage(Generic[V]):
    """What a stream service does with its records; the hooks other than ``decode`` and
    ``handle`` do nothing unless a stage keeps state of its own."""

    service: str
    """The service's name: in metrics, logs and dead-letter headers."""

    def decode(self, message: Message) -> V:
        """The record's value, decoded; ``UndecodableValue`` dead-letters it at once. Any other
        error is taken as an outage (the registry unreachable): the batch is read again."""
        raise NotImplementedError

    def handle(self, message: Message, value: V, batch: Batch) -> None:
        """Decide on one record: produce its outputs through ``batch`` and count its outcome.

        A failure on the record's content makes the loop call this again (then dead-letter the
        record): produce only once nothing can fail any more, and stage state changes so that
        ``aborted`` can take them back."""
        raise NotImplementedError

    def tick(self) -> bool:
        """Called on every turn of the loop, outside any transaction. True asks for a
        transaction even when no record came, for ``finish`` to do the stage's own work."""
        return False

    def finish(self, batch: Batch) -> None:
        """The last step of every transaction, after its records (state changes to write)."""

    def committed(self, batch: Batch) -> None:
        """The transaction is committed: staged changes become the stage's state."""

    def aborted(self) -> None:
        """The transaction is aborted: staged changes are dropped."""

    def assigned(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """Partitions given to this instance (before any of their records is read): the ones to
        read, which may be fewer. A stage with state rebuilds it here."""
        return partitions

    def revoked(self, partitions: list[TopicPartition], *, lost: bool) -> None:
        """Partitions taken away (``lost``: the group moved on without this instance, which may
        have missed what another did with them meanwhile)."""


class TransactionalLoop:
    def __init__(
        self,
        *,
        stage: Stage[Any],
        consumer: Consumer,
        producer: Producer,
        dead_letter_topic: str,
        log: structlog.stdlib.BoundLogger,
        policy: PoisonPolicy | None = None,
        batch_size: int = 500,
        wait: float = 0.5,
    ) -> None:
        """``producer`` has a ``transactional.id`` stable per instance (a restarted instance
        fences its former self and aborts its open transaction); ``consumer`` reads committed
        records and never commits on its own (``services.common.kafka.make_consumer``)."""
        self.stage = stage
        self.consumer = consumer
        self.producer = producer
        self.dead_letter_topic = dead_letter_topic
        self.log = log
        self.policy = policy or PoisonPolicy.from_env()
        self.attempts = RecordAttempts(self.policy)
        self.batch_size = batch_size
        self.wait = wait

    def run(self, stop: threading.Event, subscription: Sequence[str]) -> None:
        """Until ``stop``: ``subscription`` names topics, or regular expressions starting with
        ``^`` (librdkafka follows the topics that match, new ones included)."""
        self.producer.init_transactions()
        self.consumer.subscribe(
            list(subscription),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        outages = 0
        try:
            while not stop.is_set():
                wanted = self.stage.tick()
                messages = self._fetch()
                if not messages and not wanted:
                    continue
                try:
                    self.process(messages)
                    outages = 0
                except Exception as error:
                    if not passing(error):
                        raise
                    outages += 1
                    self._read_again(messages, outages, error)
                    stop.wait(self.policy.pause(outages, Fault.OUTAGE))
        finally:
            self.consumer.close()

    def _fetch(self) -> list[Message]:
        messages = []
        for message in fetch_batch(self.consumer, self.batch_size, timeout=self.wait):
            error = message.error()
            if error is None:
                messages.append(message)
            elif error.fatal():
                raise KafkaException(error)
            # Others are librdkafka's notices (a partition's end, a topic being created) that
            # it gets past on its own.
        return messages

    def process(self, messages: list[Message]) -> None:
        """One transaction: every output of the batch, the stage's state changes, and the
        batch's offsets."""
        batch = Batch(self.producer)
        self.producer.begin_transaction()
        try:
            for message in messages:
                self._one(message, batch)
            self.stage.finish(batch)
            if messages:
                self.producer.send_offsets_to_transaction(
                    _next_offsets(messages), self.consumer.consumer_group_metadata()
                )
            self.producer.commit_transaction()
        except Exception:
            # Nothing of the batch is visible downstream; it is read again (after an outage) or,
            # the service stopped and restarted, from the last committed offsets.
            self.stage.aborted()
            self.producer.abort_transaction()
            raise
        self.stage.committed(batch)
        for outcome, count in batch.outcomes.items():
            PROCESSED.labels(self.stage.service, outcome).inc(count)
        if messages:
            self.log.info("batch committed", records=len(messages), counts=dict(batch.outcomes))

    def _one(self, message: Message, batch: Batch) -> None:
        place = (str(message.topic()), message.partition(), message.offset())
        try:
            value = self.stage.decode(message)
            self.attempts.run(
                place,
                lambda: self.stage.handle(message, value, batch),
                lambda error: self._dead_letter(
                    message, batch, "handling failed", error, describe(error)
                ),
                self.log,
            )
        except UndecodableValue as error:
            self._dead_letter(message, batch, "undecodable value", error, None)
            return

    def _dead_letter(
        self,
        message: Message,
        batch: Batch,
        reason: str,
        error: BaseException,
        description: str | None,
    ) -> None:
        """The record as it came, its origin and the error in the headers; part of the batch's
        transaction, as its other outputs are."""
        batch.produce(
            self.dead_letter_topic,
            message.key(),
            message.value(),
            headers=[
                *header_pairs(message.headers()),
                *error_headers(
                    service=self.stage.service,
                    reason=reason,
                    error=error,
                    source_topic=message.topic(),
                    partition=message.partition(),
                    offset=message.offset(),
                    description=description,
                ),
            ],
        )
        batch.count("dead_lettered", int(message.partition() or 0))
        log_dead_lettered(self.log, message, reason, error)

    def _read_again(self, messages: list[Message], outages: int, error: Exception) -> None:
        """After an outage aborted the batch: back to its first offsets, to read it again."""
        first: dict[tuple[str, int], int] = {}
        for message in messages:
            place = (str(message.topic()), int(message.partition() or 0))
            offset = int(message.offset() or 0)
            first[place] = min(first.get(place, offset), offset)
        for (topic, partition), offset in first.items():
            self.consumer.seek(TopicPartition(topic, partition, offset))
        self.log.warning(
            "batch aborted during an outage; reading it again",
            error=type(error).__name__,
            outages=outages,
        )

    # librdkafka calls these from within ``consume``, between two transactions: a stage never
    # sees its partitions change under a batch.

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        kept = self.stage.assigned(partitions)
        if len(kept) != len(partitions):
            consumer.assign(kept)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.stage.revoked(partitions, lost=False)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.stage.revoked(partitions, lost=True)


def _next_offsets(messages: list[Message]) -> list[TopicPartition]:
    """Where each partition of the batch resumes: after its last record."""
    after: dict[tuple[str, int], int] = {}
    for message in messages:
        place = (str(message.topic()), int(message.partition() or 0))
        after[place] = max(after.get(place, 0), int(message.offset() or 0) + 1)
    return [TopicPartition(topic, number, offset) for (topic, number), offset in after.items()]


def passing(error: Exception) -> bool:
    """An outage that reading the batch again may get past: not a fatal producer error (a
    fenced transactional producer), which only a restart clears."""
    if classify(error) is not Fault.OUTAGE:
        return False
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError):
        return not error.args[0].fatal()
    return True


def read_to_end(
    consumer: Consumer, partitions: Sequence[TopicPartition], timeout: float = 120.0
) -> Iterator[Message]:
    """Every committed record of ``partitions``, from their beginning to their end as they are
    now: a stage's state, rebuilt from its compacted changelog. ``consumer`` reads committed
    records and is used for nothing else (it is assigned these partitions, then none).

    The end is reached by position, not by the last record seen: a changelog written in
    transactions ends with a commit marker, which is never handed over as a record. A
    transaction still open on a partition holds its end back (``read_committed``) until it is
    committed or aborted: what it holds cannot be known before.
    """
    ends: dict[tuple[str, int], int] = {}
    starts = []
    for place in partitions:
        low, high = consumer.get_watermark_offsets(place, timeout=timeout, cached=False)
        if high > low:
            ends[(place.topic, place.partition)] = high
            starts.append(TopicPartition(place.topic, place.partition, low))
    if not starts:
        return
    consumer.assign(starts)
    deadline = time.monotonic() + timeout
    try:
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"changelog not read to its end in {timeout} s: {ends}")
            for message in consumer.consume(1000, timeout=0.5):
                error = message.error()
                if error is not None:
                    if error.fatal():
                        raise KafkaException(error)
                    continue
                at = (str(message.topic()), int(message.partition() or 0))
                if at in ends and int(message.offset() or 0) < ends[at]:
                    yield message
            reached = consumer.position(
                [TopicPartition(topic, partition) for topic, partition in ends]
            )
            for place in reached:
                if place.offset >= ends[(place.topic, place.partition)]:
                    del ends[(place.topic, place.partition)]
    finally:
        consumer.unassign()
