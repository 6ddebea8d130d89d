"""fetch_batch against the real broker: a batch leaves as soon as records are there, and takes
what is already fetched, up to its size."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from services.common.consume import fetch_batch

pytestmark = pytest.mark.integration

LONG = 60.0
"""A timeout the calls below must never wait out: records are there before it."""


def test_a_batch_returns_with_the_records_there_without_waiting_for_its_size(
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    topic = topic_factory(partitions=1)
    producer = producer_factory()
    for number in range(30):
        producer.produce(topic, key=b"k", value=str(number).encode())
    assert producer.flush(10) == 0
    consumer = consumer_factory()
    consumer.assign([TopicPartition(topic, 0, 0)])

    started = time.monotonic()
    seen: list[bytes] = []
    while len(seen) < 30:
        batch = fetch_batch(consumer, 1000, timeout=LONG)
        assert batch, "nothing within the timeout"
        seen += [message.value() or b"" for message in batch if message.error() is None]
    # consume(1000, 60) alone would have waited the whole minute for a thousand records.
    assert time.monotonic() - started < LONG / 2
    assert seen == [str(number).encode() for number in range(30)]


def test_a_batch_holds_no_more_than_its_size_and_the_rest_follows_in_order(
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    topic = topic_factory(partitions=1)
    producer = producer_factory()
    for number in range(25):
        producer.produce(topic, value=str(number).encode())
    assert producer.flush(10) == 0
    consumer = consumer_factory()
    consumer.assign([TopicPartition(topic, 0, 0)])

    batches: list[list[bytes]] = []
    while sum(map(len, batches)) < 25:
        batch = fetch_batch(consumer, 10, timeout=LONG)
        assert batch, "nothing within the timeout"
        batches.append([message.value() or b"" for message in batch])
    assert all(len(batch) <= 10 for batch in batches)
    assert [value for batch in batches for value in batch] == [
        str(number).encode() for number in range(25)
    ]
    # Nothing more: an empty topic waits the timeout and returns nothing.
    assert fetch_batch(consumer, 10, timeout=0.5) == []
