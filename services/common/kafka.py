"""Kafka client factories with the platform's delivery settings in one place.

Producers are idempotent with ``acks=all``: a write is confirmed only once every in-sync replica
has it, and a retried send cannot duplicate or reorder. Consumers never auto-commit: a service
commits an offset only after the record's effects are durable (at-least-once).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from services.common.settings import Settings

Partition = tuple[str, int]
"""A topic partition as a plain, hashable pair."""


def _base(settings: Settings, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": client_id,
        **settings.kafka_security.librdkafka_config(),
    }


def producer_config(settings: Settings, client_id: str, **overrides: Any) -> dict[str, Any]:
    config = {
        **_base(settings, client_id),
        "acks": "all",
        "enable.idempotence": True,
        # Small batches keep latency low; compression pays off on the repetitive Avro bodies.
        "linger.ms": 5,
        "compression.type": "zstd",
        # How long a send may keep retrying before its delivery callback reports a failure.
        "delivery.timeout.ms": 30_000,
        "request.timeout.ms": 10_000,
        "socket.timeout.ms": 10_000,
    }
    config.update(overrides)
    return config


def consumer_config(
    settings: Settings, client_id: str, group_id: str, **overrides: Any
) -> dict[str, Any]:
    config = {
        **_base(settings, client_id),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "session.timeout.ms": 30_000,
        "max.poll.interval.ms": 300_000,
        # A fresh topic created by pattern subscription is noticed within seconds.
        "topic.metadata.refresh.interval.ms": 10_000,
    }
    config.update(overrides)
    return config


def make_producer(settings: Settings, client_id: str, **overrides: Any) -> Producer:
    return Producer(producer_config(settings, client_id, **overrides))


def make_consumer(settings: Settings, client_id: str, group_id: str, **overrides: Any) -> Consumer:
    return Consumer(consumer_config(settings, client_id, group_id, **overrides))


def make_admin(settings: Settings) -> AdminClient:
    return AdminClient(_base(settings, "harpicoop-admin"))


class CommittedOffsets:
    """Reads what consumer groups have committed, through a consumer handle per group.

    Not through ``AdminClient.list_consumer_group_offsets``: librdkafka (2.16 and every release
    before it) crashes the whole process when an admin client's OffsetFetch is answered
    ``NOT_COORDINATOR`` or ``COORDINATOR_NOT_AVAILABLE``, which is what a broker says while its
    group coordinator is still loading (at start-up, after a restart or a leader change). To ask
    for the coordinator again it posts to the handle's consumer group, and an admin client has
    none: ``rd_kafka_cgrp_op(NULL, ...)`` from ``rd_kafka_handle_OffsetFetch``, SIGSEGV. A
    consumer handle bearing the group's id has that consumer group, so the same answer makes it
    look for the coordinator and ask again. It never subscribes, so it never joins the group nor
    disturbs its members.

    The handles are kept for the reader's life (a reading every few seconds reuses them); use it
    from one thread at a time and ``close`` it when done.
    """

    def __init__(self, settings: Settings, client_id: str, timeout: float = 30.0) -> None:
        self.settings = settings
        self.client_id = client_id
        self.timeout = timeout
        self._handles: dict[str, Consumer] = {}

    def _handle(self, group_id: str) -> Consumer:
        if group_id not in self._handles:
            self._handles[group_id] = make_consumer(
                self.settings,
                self.client_id,
                group_id,
                # Offsets the group committed, without waiting for a transaction still open to
                # settle (read_committed would make the broker hold the answer until it does).
                **{"isolation.level": "read_uncommitted"},
            )
        return self._handles[group_id]

    def of(
        self, group_id: str, partitions: Iterable[Partition] | None = None
    ) -> dict[Partition, int]:
        """The group's committed offset of each partition asked for (negative where it has
        committed none); by default, of every partition where it has committed one."""
        handle = self._handle(group_id)
        if partitions is None:
            metadata = handle.list_topics(timeout=self.timeout)
            asked = [
                TopicPartition(name, number)
                for name, topic in metadata.topics.items()
                if not name.startswith("__")  # the broker's own topics
                for number in topic.partitions
            ]
        else:
            asked = [TopicPartition(topic, number) for topic, number in partitions]
        if not asked:
            return {}
        found = handle.committed(asked, timeout=self.timeout)
        failed = [place for place in found if place.error is not None]
        if failed:
            raise KafkaException(failed[0].error)
        offsets = {(place.topic, place.partition): int(place.offset) for place in found}
        if partitions is None:
            return {key: offset for key, offset in offsets.items() if offset >= 0}
        return offsets

    def low_watermark(self, group_id: str, partition: Partition) -> int:
        """The first offset still in the partition."""
        low, _ = self._handle(group_id).get_watermark_offsets(
            TopicPartition(*partition), timeout=self.timeout
        )
        return int(low)

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def __enter__(self) -> CommittedOffsets:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
