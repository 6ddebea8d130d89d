"""Consumer lag per group, read from the broker: what each service still has to read."""

from __future__ import annotations

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
        for group in groups:
            future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
            committed: list[TopicPartition] = future.result().topic_partitions or []
            lag = 0
            for place in committed:
                _, high = watermarks.get_watermark_offsets(
                    TopicPartition(place.topic, place.partition), timeout=10
                )
                lag += max(0, high - place.offset) if place.offset >= 0 else high
            results.append(GroupLag(group, lag, len(committed)))
    finally:
        watermarks.close()
    return results
