"""Reading exactly what a topic received since a moment: for run summaries and checks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from confluent_kafka import Consumer, Message, TopicPartition

from services.common.kafka import consumer_config
from services.common.settings import Settings


def records_since(settings: Settings, topics: list[str], since_ms: int) -> Iterator[Message]:
    """Every record of ``topics`` written at or after ``since_ms``, up to their current end."""
    consumer = Consumer(
        consumer_config(settings, "harpicoop-reader", f"harpicoop-reader-{uuid.uuid4().hex[:8]}")
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        wanted = [
            TopicPartition(topic, partition, since_ms)
            for topic in topics
            if topic in metadata.topics
            for partition in metadata.topics[topic].partitions
        ]
        if not wanted:
            return
        starts = consumer.offsets_for_times(wanted, timeout=10)
        ends: dict[tuple[str, int], int] = {}
        assignment = []
        for start in starts:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(start.topic, start.partition), timeout=10
            )
            first = start.offset if start.offset >= 0 else high
            if first < high:
                ends[(start.topic, start.partition)] = high
                assignment.append(TopicPartition(start.topic, start.partition, first))
        if not assignment:
            return
        consumer.assign(assignment)
        while ends:
            message = consumer.poll(2.0)
            if message is None:
                break  # the ends were read at the start: a pause means we have them all
            if message.error() is not None:
                continue
            place = (str(message.topic()), int(message.partition() or 0))
            if place not in ends:
                continue
            yield message
            if int(message.offset() or 0) + 1 >= ends[place]:
                del ends[place]
    finally:
        consumer.close()
