"""Input records to observations: decoding by topic, waiting out an unreachable registry, and the
dead-letter form of a record that cannot be read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.analytics.counting import Observation, status_observations, stay_observations
from services.common.deadletter import error_headers
from services.common.poison import Fault, classify, describe
from services.common.records import (
    EnrichedStayEvent,
    NotificationStatus,
    StayEvent,
    UnroutableStayEvent,
)
from services.common.serde import AvroSerde, RecordSerde, UndecodableValue

Reader = Callable[[str, bytes], list[Observation]]
"""A topic's record (topic, value) decoded into its type and observed."""


class Undecodable(Exception):
    """The record itself cannot be read: it goes to the dead-letter topic."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def readers(
    registry: SchemaRegistryClient, enriched: str, unroutable: str, statuses: str
) -> dict[str, Reader]:
    """How each input topic is decoded and observed.

    Of an enriched or unroutable event only the StayEvent it embeds is counted: the whole value
    is read (a record that does not read is dead-lettered whole), but only that event is made a
    record, not the recipients that analytics never looks at."""
    enriched_serde = AvroSerde(registry, EnrichedStayEvent.SCHEMA)
    unroutable_serde = AvroSerde(registry, UnroutableStayEvent.SCHEMA)
    status_serde = RecordSerde(registry, NotificationStatus)
    embedded = StayEvent.adopt_avro
    return {
        enriched: lambda topic, value: stay_observations(
            embedded(enriched_serde.deserialize(topic, value)["event"]), routed=True
        ),
        unroutable: lambda topic, value: stay_observations(
            embedded(unroutable_serde.deserialize(topic, value)["event"]), routed=False
        ),
        statuses: lambda topic, value: status_observations(status_serde.deserialize(topic, value)),
    }


class RecordReader:
    def __init__(self, readers: Mapping[str, Reader], log: structlog.stdlib.BoundLogger) -> None:
        self.readers = dict(readers)
        self.log = log
        self.max_pause = 30.0

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self.readers)

    async def observations(self, topic: str, value: bytes | None) -> list[Observation]:
        """What the record counts in; raises ``Undecodable`` when the record is at fault."""
        read = self.readers[topic]
        pause = 0.5
        while True:
            try:
                if value is None:
                    raise ValueError("the record has no value")
                return read(topic, value)
            except Exception as error:
                if record_at_fault(error):
                    raise Undecodable(error) from error
                # Not the record's fault: nothing is committed past it until it is read.
                self.log.warning(
                    "analytics.registry_unavailable", error=type(error).__name__, retry_in=pause
                )
                await asyncio.sleep(pause)
                pause = min(self.max_pause, pause * 2)


def record_at_fault(error: BaseException) -> bool:
    """True when the record itself cannot be read or counted (``UndecodableValue``: not Avro, an
    unknown schema id, a body that does not read; or a value the counting does not expect);
    False when the registry is unreachable or failing, which waiting cures."""
    return classify(error) is Fault.RECORD


def dead_letter_headers(
    headers: Any, error: BaseException, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """The record's own headers, then where it came from and why it could not be read."""
    items = headers.items() if isinstance(headers, dict) else headers or ()
    decoded = not isinstance(error, UndecodableValue)
    reasons = error_headers(
        service="analytics",
        reason="handling failed" if decoded else "undecodable value",
        error=error,
        source_topic=topic,
        partition=partition,
        offset=offset,
        # A decoded record's error may quote what it holds.
        description=describe(error) if decoded else None,
    )
    return [
        (name, value.encode("utf-8") if isinstance(value, str) else value or b"")
        for name, value in [*items, *reasons]
    ]
