"""The contract's cost: Avro encode and decode of a StayEvent, and a produce-consume round trip
through the broker with the platform's producer settings (acks=all, idempotent)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from services.common.kafka import make_admin, make_consumer, make_producer
from services.common.serde import AvroSerde, make_registry_client
from services.common.settings import Settings
from services.common.topics import TopicSpec, ensure_topics
from tests.common.test_serde import stay_event

RECORDS = 20_000


def run(settings: Settings) -> dict[str, Any]:
    registry = make_registry_client(settings)
    serde = AvroSerde(registry, "harpicoop.StayEvent")
    topic = f"bench-serde-{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(topic, "harpicoop.StayEvent", 3, False, retention_ms=3_600_000)
    admin = make_admin(settings)
    ensure_topics(admin, [spec])
    from confluent_kafka.schema_registry import Schema

    from services.common.schemas import expanded_schema_json

    registry.register_schema(spec.subject, Schema(expanded_schema_json(spec.value_schema), "AVRO"))
    events = [stay_event(f"V{index:06}") for index in range(RECORDS)]
    try:
        started = time.perf_counter()
        encoded = [serde.serialize(topic, event) for event in events]
        encode_seconds = time.perf_counter() - started

        started = time.perf_counter()
        for data in encoded:
            serde.deserialize(topic, data)
        decode_seconds = time.perf_counter() - started

        producer = make_producer(settings, "bench-serde")
        started = time.perf_counter()
        for event, data in zip(events, encoded, strict=True):
            while True:
                try:
                    producer.produce(topic, key=event["stay_key"], value=data)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        producer.flush(60)
        produce_seconds = time.perf_counter() - started

        consumer = make_consumer(settings, "bench-serde", f"bench-{uuid.uuid4().hex[:8]}")
        consumer.subscribe([topic])
        received = 0
        started = time.perf_counter()
        deadline = started + 120
        while received < RECORDS and time.perf_counter() < deadline:
            for message in consumer.consume(1000, timeout=1.0):
                if message.error() is None:
                    received += 1
        consume_seconds = time.perf_counter() - started
        consumer.close()
    finally:
        admin.delete_topics([topic])
    return {
        "records": RECORDS,
        "avg_record_bytes": round(sum(map(len, encoded)) / RECORDS),
        "encode_per_s": round(RECORDS / encode_seconds),
        "decode_per_s": round(RECORDS / decode_seconds),
        "produce_acks_all_per_s": round(RECORDS / produce_seconds),
        "consume_per_s": round(received / consume_seconds),
        "consumed": received,
    }
