"""Consumer lag counts records, not offsets: a group that read everything a transactional
producer wrote is not behind, whatever commit markers end its partitions."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from services.cli.lag import EXACT_BELOW, consumer_lag
from services.common.kafka import make_producer
from services.common.settings import Settings

pytestmark = pytest.mark.integration


def transactional_producer(settings: Settings) -> Producer:
    producer = make_producer(settings, "test-lag", **{"transactional.id": f"t-{uuid.uuid4().hex}"})
    producer.init_transactions(30)
    return producer


def write_in_transactions(producer: Producer, topic: str, batches: list[int]) -> None:
    for size in batches:
        producer.begin_transaction()
        for number in range(size):
            producer.produce(topic, key=b"k", value=b"v%d" % number, partition=0)
        producer.commit_transaction(30)


def read_and_commit(consumer: Consumer, topic: str, count: int) -> None:
    """Read ``count`` records and commit after the last, as the services do."""
    consumer.assign([TopicPartition(topic, 0, 0)])
    read = 0
    last = None
    while read < count:
        for message in consumer.consume(100, timeout=1.0):
            if message.error() is None:
                read, last = read + 1, message
                if read == count:
                    break
    assert last is not None
    consumer.commit(
        offsets=[TopicPartition(topic, 0, (last.offset() or 0) + 1)], asynchronous=False
    )


def test_commit_markers_are_no_lag_and_records_are(
    stack: Settings,
    topic_factory: Callable[..., str],
    consumer_factory: Callable[..., Consumer],
) -> None:
    topic, group = topic_factory(partitions=1), f"lag-{uuid.uuid4().hex[:8]}"
    producer = transactional_producer(stack)
    write_in_transactions(producer, topic, [3, 2])
    read_and_commit(consumer_factory(group_id=group), topic, 5)

    # Seven offsets (five records, two markers); the group stands at 6, before the last marker.
    [lag] = consumer_lag(stack, [group])
    assert (lag.lag, lag.partitions) == (0, 1)

    write_in_transactions(producer, topic, [2])
    [lag] = consumer_lag(stack, [group])
    assert lag.lag == 2

    # Another group, further back in the same partition: each counts its own records.
    slower = f"lag-{uuid.uuid4().hex[:8]}"
    read_and_commit(consumer_factory(group_id=slower), topic, 3)
    assert [item.lag for item in consumer_lag(stack, [group, slower])] == [2, 4]


def test_far_behind_the_offsets_are_the_measure(
    stack: Settings,
    topic_factory: Callable[..., str],
    consumer_factory: Callable[..., Consumer],
) -> None:
    topic, group = topic_factory(partitions=1), f"lag-{uuid.uuid4().hex[:8]}"
    write_in_transactions(transactional_producer(stack), topic, [1, EXACT_BELOW + 10])
    read_and_commit(consumer_factory(group_id=group), topic, 1)
    [lag] = consumer_lag(stack, [group])
    # From the group's offset to the end: the records, the last marker, and the marker of the
    # first transaction it stands before.
    assert lag.lag == EXACT_BELOW + 10 + 2
