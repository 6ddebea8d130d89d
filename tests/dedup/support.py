"""What the dedup tests share: topics under a private prefix (so that a pattern matches this
test's topics only), stay events to produce, and reading a topic until the expected records
are there."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from services.common.kafka import make_consumer
from services.common.schemas import expanded_schema_json
from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.common.streams import SourceRecord
from services.common.topics import TopicSpec, ensure_topics
from tests.common.test_serde import stay_event
from tests.support import ServiceProcess

UTC = dt.UTC
BASE_TIME = dt.datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def log_events(service: ServiceProcess, event: str) -> list[dict[str, Any]]:
    """The JSON lines of the service's log with this ``event`` name."""
    found = []
    for line in service.output().splitlines():
        if line.startswith("{") and f'"{event}"' in line:
            record = json.loads(line)
            if record.get("event") == event:
                found.append(record)
    return found


def running(service: ServiceProcess) -> bool:
    return service.process is not None and service.process.poll() is None


@dataclass
class PrivateTopics:
    """Topics named ``<prefix>.<name>``, so a pattern can match this test's topics only; name
    the processors' groups ``<prefix>-<service>`` so that the topics they make for themselves
    (dedup's ``<group>-claims``) go with them."""

    admin: AdminClient
    registry: SchemaRegistryClient
    prefix: str
    created: list[str]

    def create(
        self, name: str, schema: str | None = None, *, partitions: int = 3, compacted: bool = False
    ) -> str:
        topic = f"{self.prefix}.{name}"
        spec = TopicSpec(topic, schema, partitions, compacted, retention_ms=3_600_000)
        ensure_topics(self.admin, [spec])
        if schema:
            self.registry.register_schema(
                spec.subject, Schema(expanded_schema_json(schema), "AVRO")
            )
        self.created.append(topic)
        return topic

    def delete_all(self) -> None:
        """This test's topics, and those a processor made for a group named after the prefix."""
        prefixes = (f"{self.prefix}.", f"{self.prefix}-")
        existing = self.admin.list_topics(timeout=30).topics
        doomed = sorted({*self.created, *(name for name in existing if name.startswith(prefixes))})
        if doomed:
            for future in self.admin.delete_topics(doomed, operation_timeout=30).values():
                future.result()


@contextmanager
def private_topics(admin: AdminClient, registry: SchemaRegistryClient) -> Iterator[PrivateTopics]:
    topics = PrivateTopics(admin, registry, f"t{uuid.uuid4().hex[:10]}", [])
    try:
        yield topics
    finally:
        topics.delete_all()


def event(
    establishment: str,
    visit: str,
    message_id: str,
    movement_id: str,
    *,
    kind: str = "ADMISSION",
    action: str = "INSERT",
    trigger: str = "A01",
    received_at: dt.datetime = BASE_TIME,
    unit: str = "CARDIO",
    gp_rpps: str | None = "10101010101",
    others: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """A valid StayEvent of one establishment's stay, varied where a test needs it."""
    value = stay_event(visit)
    value.update(
        event_id=f"{establishment}:{message_id}",
        establishment=establishment,
        stay_key=f"{establishment}:{visit}",
        kind=kind,
        action=action,
        trigger_event=trigger,
        message_control_id=message_id,
        received_at=received_at,
    )
    value["movement"] = {**value["movement"], "movement_id": movement_id, "unit": unit}
    team = [] if gp_rpps is None else [_member("ODRP", gp_rpps)]
    value["care_team"] = team + [_member(role, rpps) for role, rpps in others]
    return value


def _member(role: str, rpps: str) -> dict[str, Any]:
    return {"role": role, "rpps": rpps, "family_name": "Nom sent", "given_name": "Prénom sent"}


def produce_events(
    producer: Producer, serde: AvroSerde, topic: str, events: list[dict[str, Any]]
) -> None:
    for value in events:
        produce_bytes(producer, topic, value["stay_key"].encode(), serde.serialize(topic, value))
    assert producer.flush(30) == 0


def produce_bytes(producer: Producer, topic: str, key: bytes | None, value: bytes | None) -> None:
    while True:
        try:
            producer.produce(topic, key=key, value=value)
            break
        except BufferError:
            producer.poll(0.1)
    producer.poll(0)


def collect(
    consumer: Consumer,
    done: Callable[[list[Message]], bool],
    timeout: float = 60.0,
    settle: float = 0.0,
    stays: Collection[str] | None = None,
) -> list[Message]:
    """Records (of the given stays only, when given) until ``done`` says enough, then ``settle``
    seconds more, to see what must not come."""
    received: list[Message] = []
    keys = None if stays is None else {stay.encode() for stay in stays}

    def more(wait: float) -> None:
        for message in consumer.consume(500, timeout=wait):
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise AssertionError(str(error))
                continue
            if keys is None or message.key() in keys:
                received.append(message)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done(received):
        more(0.5)
    if not done(received):
        raise AssertionError(f"only {len(received)} records arrived in {timeout} s")
    settle_until = time.monotonic() + settle
    while time.monotonic() < settle_until:
        more(0.2)
    return received


def reader(settings: Settings, *topics: str) -> Consumer:
    consumer = make_consumer(settings, "test-reader", f"test-reader-{uuid.uuid4().hex[:10]}")
    consumer.subscribe(list(topics))
    return consumer


def once_per_source(messages: list[Message]) -> list[Message]:
    """The first output of each raw record. At-least-once: one raw record may come out twice (a
    producer's retry under load, a replay after a restart or a rebalance), which consumers absorb
    by event id; a resend or a repeated movement is another raw record, with a source of its
    own, and is still seen."""
    sources: set[str] = set()
    firsts = []
    for message in messages:
        origin = str(SourceRecord.from_headers(message.headers()))
        if origin not in sources:
            sources.add(origin)
            firsts.append(message)
    return firsts


def decoded(serde: AvroSerde, messages: list[Message]) -> list[dict[str, Any]]:
    values = []
    for message in messages:
        topic, value = message.topic(), message.value()
        assert topic is not None and value is not None
        values.append(serde.deserialize(topic, value))
    return values
