"""Writes practitioners to the compacted ``practitioners`` topic and waits for Kafka's word.

The producer is the platform's idempotent ``acks=all`` producer; ``publish`` returns only when
every record of the batch is acknowledged, and raises otherwise, so that the caller keeps the
batch in its outbox. Keys are RPPS numbers; a removed practitioner is a tombstone (null value).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from services.common.serde import AvroSerde


class PublishError(RuntimeError):
    """Kafka did not acknowledge every record of a batch."""


class PractitionerPublisher:
    def __init__(
        self, producer: Producer, serde: AvroSerde, topic: str, *, timeout: float = 60.0
    ) -> None:
        self.producer = producer
        self.serde = serde
        self.topic = topic
        self.timeout = timeout

    def publish(self, records: Iterable[tuple[str, dict[str, Any] | None]]) -> int:
        """Send (RPPS, value or None for a tombstone) pairs; returns how many were confirmed."""
        failures: list[KafkaError] = []
        sent = 0

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failures.append(error)

        for rpps, value in records:
            data = None if value is None else self.serde.serialize(self.topic, value)
            while True:
                try:
                    self.producer.produce(
                        self.topic, key=rpps.encode("ascii"), value=data, on_delivery=delivered
                    )
                    break
                except BufferError:
                    # The local queue is full: serve delivery reports until there is room.
                    self.producer.poll(0.1)
            self.producer.poll(0)
            sent += 1
        unsent = self.producer.flush(self.timeout)
        if unsent or failures:
            reason = failures[0].str() if failures else f"{unsent} still queued after flush"
            raise PublishError(
                f"{len(failures) + unsent} of {sent} records to {self.topic} were not "
                f"acknowledged ({reason})"
            )
        return sent
