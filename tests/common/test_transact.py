"""The transactional loop against the real broker: a batch's outputs and offsets commit together,
an outage aborts the batch and reads it again, poison goes to the dead-letter topic in the same
transaction, and a changelog is read back to its end, committed records only."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from services.common.deadletter import read_error_headers
from services.common.kafka import CommittedOffsets, make_consumer, make_producer
from services.common.poison import PoisonPolicy
from services.common.serde import UndecodableValue
from services.common.settings import Settings
from services.common.transact import Batch, Stage, TransactionalLoop, read_to_end
from tests.support import eventually

pytestmark = pytest.mark.integration


class Shout(Stage[bytes]):
    """Writes each value in capitals; ``garbled`` cannot be decoded, ``bad`` fails on its
    content every time, ``flaky`` meets an outage the first time it is handled."""

    service = "shout"

    def __init__(self, output: str) -> None:
        self.output = output
        self.outages_left = 1
        self.committed_batches = 0
        self.aborted_batches = 0

    def decode(self, message: Message) -> bytes:
        value = message.value() or b""
        if value == b"garbled":
            raise UndecodableValue("garbled")
        return value

    def handle(self, message: Message, value: bytes, batch: Batch) -> None:
        if value == b"bad":
            raise ValueError("content the stage cannot handle")
        if value == b"flaky" and self.outages_left:
            self.outages_left -= 1
            raise OSError("a component went away")
        batch.produce(self.output, message.key(), value.upper(), partition=message.partition())
        batch.count("shouted", int(message.partition() or 0))

    def committed(self, batch: Batch) -> None:
        self.committed_batches += 1

    def aborted(self) -> None:
        self.aborted_batches += 1


@contextmanager
def running(loop: TransactionalLoop, topic: str) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop, [topic]), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def read_all(consumer: Consumer, count: int) -> list[Message]:
    seen: list[Message] = []

    def enough() -> bool:
        seen.extend(m for m in consumer.consume(100, timeout=0.5) if m.error() is None)
        return len(seen) >= count

    eventually(enough, timeout=60, what=f"{count} records")
    # Then a moment more: nothing else may come.
    seen.extend(m for m in consumer.consume(100, timeout=2.0) if m.error() is None)
    return seen


def test_outputs_and_offsets_commit_together_through_an_outage_and_poison(
    stack: Settings,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
    group_factory: Callable[[], str],
) -> None:
    source, output, dead = topic_factory(partitions=1), topic_factory(), topic_factory()
    values = [b"one", b"garbled", b"two", b"flaky", b"bad", b"three"]
    producer = producer_factory()
    for value in values:
        producer.produce(source, key=b"k", value=value)
    assert producer.flush(10) == 0

    group = group_factory()
    stage = Shout(output)
    loop = TransactionalLoop(
        stage=stage,
        consumer=make_consumer(stack, "test-loop", group),
        producer=make_producer(
            stack, "test-loop", **{"transactional.id": f"test-loop-{uuid.uuid4().hex[:8]}"}
        ),
        dead_letter_topic=dead,
        log=structlog.get_logger("test"),
        policy=PoisonPolicy(
            attempts=2,
            backoff=dt.timedelta(0),
            outage_backoff_max=dt.timedelta(seconds=0.5),
        ),
    )
    with running(loop, source):
        shouted = read_all(consumer_factory(output), 4)
        dead_letters = read_all(consumer_factory(dead), 2)
        with CommittedOffsets(stack, "test-loop") as offsets:
            eventually(
                lambda: offsets.of(group, [(source, 0)]) == {(source, 0): len(values)},
                timeout=30,
                what="the offsets committed",
            )

    # The batch the outage aborted was read again: every output once, in order.
    assert [m.value() for m in shouted] == [b"ONE", b"TWO", b"FLAKY", b"THREE"]
    assert stage.aborted_batches >= 1 and stage.committed_batches >= 1
    assert [m.value() for m in dead_letters] == [b"garbled", b"bad"]
    reasons = [read_error_headers(m.headers())["reason"] for m in dead_letters]
    assert reasons == ["undecodable value", "handling failed"]
    for message in dead_letters:
        errors = read_error_headers(message.headers())
        assert (errors["service"], errors["topic"]) == ("shout", source)


def test_a_changelog_is_read_to_its_end_committed_records_only(
    stack: Settings,
    topic_factory: Callable[..., str],
    consumer_factory: Callable[..., Consumer],
) -> None:
    changelog = topic_factory(partitions=2, compacted=True)
    producer = make_producer(
        stack, "test-changelog", **{"transactional.id": f"test-changelog-{uuid.uuid4().hex[:8]}"}
    )
    producer.init_transactions()

    def transaction(records: list[tuple[int, bytes, bytes | None]], *, commit: bool) -> None:
        producer.begin_transaction()
        for partition, key, value in records:
            producer.produce(changelog, key=key, value=value, partition=partition)
        if commit:
            producer.commit_transaction()
        else:
            producer.flush(10)
            producer.abort_transaction()

    transaction([(0, b"a", b"1"), (1, b"b", b"1")], commit=True)
    transaction([(0, b"a", b"aborted"), (0, b"c", b"aborted")], commit=False)
    transaction([(0, b"a", None), (0, b"d", b"2")], commit=True)

    reader: Any = consumer_factory()
    read = [
        (m.partition(), m.key(), m.value())
        for m in read_to_end(reader, [TopicPartition(changelog, 0), TopicPartition(changelog, 1)])
    ]
    # Each partition's records in order (the partitions interleave as they come).
    assert [r for r in read if r[0] == 0] == [(0, b"a", b"1"), (0, b"a", None), (0, b"d", b"2")]
    assert [r for r in read if r[0] == 1] == [(1, b"b", b"1")]
    # An empty partition, or none, ends at once.
    assert list(read_to_end(reader, [TopicPartition(topic_factory(partitions=1), 0)])) == []
