"""Consumer lag per group, read from the broker: what each service still has to read.

Offsets are not records: behind a transactional producer (enrich) each transaction ends with a
commit marker in every partition it wrote, an offset no consumer is ever handed. A group that
has read everything stands before the last marker, one offset short of the end. So where a
partition is only a few offsets behind, those offsets are read to count the records really
there; far behind, the offsets are the measure (a marker or two make no difference there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from services.common.kafka import consumer_config
from services.common.settings import Settings


@dataclass(frozen=True)
class GroupLag:
    group: str
    lag: int
    partitions: int


def consumer_lag(
    settings: Settings, admin: AdminClient, groups: list[str] | None = None
) -> list[GroupLag]:
    """For each consumer group (all by default), records behind the end of its partitions."""
    if groups is None:
        listed = admin.list_consumer_groups(request_timeout=10).result()
        groups = sorted(item.group_id for item in listed.valid)
    if not groups:
        return []
    watermarks = Consumer(consumer_config(settings, "harpicoop-cli-lag", "harpicoop-cli-lag"))
    results = []
    try:
        behind: dict[str, dict[tuple[str, int], tuple[int, int]]] = {}
        read: dict[str, int] = {}
        for group in groups:
            future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
            committed: list[TopicPartition] = future.result().topic_partitions or []
            read[group] = len(committed)
            ranges = behind[group] = {}
            for place in committed:
                low, high = watermarks.get_watermark_offsets(
                    TopicPartition(place.topic, place.partition), timeout=10
                )
                start = place.offset if place.offset >= 0 else low
                if start < high:
                    ranges[(place.topic, place.partition)] = (start, high)
        wanted = {
            key: span
            for ranges in behind.values()
            for key, span in ranges.items()
            if span[1] - span[0] <= EXACT_BELOW
        }
        records = records_in(watermarks, wanted)
        for group, ranges in behind.items():
            lag = sum(records.get((key, span), span[1] - span[0]) for key, span in ranges.items())
            results.append(GroupLag(group, lag, read[group]))
    finally:
        watermarks.close()
    return results


EXACT_BELOW = 50
"""A partition at most this many offsets behind has its records counted one by one."""


def records_in(
    consumer: Consumer, spans: dict[tuple[str, int], tuple[int, int]], timeout: float = 5.0
) -> dict[tuple[tuple[str, int], tuple[int, int]], int]:
    """The records a consumer is handed in each ``[start, end)`` span (transaction markers and
    aborted records are not); a span not read to its end within ``timeout`` is left out."""
    if not spans:
        return {}
    counted = dict.fromkeys(spans, 0)
    consumer.assign(
        [TopicPartition(topic, part, start) for (topic, part), (start, _) in spans.items()]
    )
    pending = set(spans)
    deadline = time.monotonic() + timeout
    try:
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.2):
                key = (message.topic() or "", message.partition() or 0)
                offset = message.offset()
                if (
                    message.error() is None
                    and key in spans
                    and offset is not None
                    and offset < spans[key][1]
                ):
                    counted[key] += 1
            positions = consumer.position([TopicPartition(t, p) for t, p in pending])
            for place in positions:
                key = (place.topic, place.partition)
                # Past the last record, the reader also steps over the markers.
                if place.offset >= spans[key][1]:
                    pending.discard(key)
    finally:
        consumer.unassign()
    return {(key, spans[key]): counted[key] for key in spans if key not in pending}
