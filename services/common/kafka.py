"""Kafka client factories with the platform's delivery settings in one place.

Producers are idempotent with ``acks=all``: a write is confirmed only once every in-sync replica
has it, and a retried send cannot duplicate or reorder. Consumers never auto-commit: a service
commits an offset only after the record's effects are durable (at-least-once).
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from services.common.settings import Settings


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
