"""Reading exactly what a topic received since a moment: for run summaries and checks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from confluent_kafka import Consumer, Message, TopicPartition

from services.common.kafka import consumer_config
from services.common.settings import Settings


def records_since(
    settings: Settings, topics: list[str], since_ms: int, timeout: float = 300.0
) -> Iterator[Message]:
    """Every record of ``topics`` written at or after ``since_ms``, up to their current end.

    The ends are taken first; a pause in the reading (a loaded machine, a broker busy) does not
    cut it short, a reading that cannot reach them within ``timeout`` seconds fails.
    """
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
        deadline = time.monotonic() + timeout
        checked = time.monotonic()
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"could not read {', '.join(f'{t}[{p}]' for t, p in sorted(ends))} to their "
                    f"end within {timeout:.0f} s; is the broker overloaded or down?"
                )
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                place = (str(message.topic()), int(message.partition() or 0))
                if place in ends and int(message.offset() or 0) < ends[place]:
                    yield message
            # A partition is read to its end when the reader's position is: the position steps
            # over transaction markers, which are never handed over as records.
            if message is None or time.monotonic() - checked > 0.5:
                checked = time.monotonic()
                pending = [TopicPartition(topic, partition) for topic, partition in ends]
                for position in consumer.position(pending):
                    if position.offset >= ends[(position.topic, position.partition)]:
                        del ends[(position.topic, position.partition)]
    finally:
        consumer.close()
