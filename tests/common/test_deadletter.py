"""A record that cannot be processed is kept whole on a dead-letter topic, saying where and why."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer

from services.common.deadletter import DeadLetters, read_error_headers
from tests.common.test_serde import consume_one

pytestmark = pytest.mark.integration


def test_a_poison_record_is_dead_lettered_with_its_origin_and_reason(
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    source, dead = topic_factory(), topic_factory()
    producer = producer_factory()
    producer.produce(
        source, key=b"chrunancy:V9", value=b"\x00\x00\x00\x27not avro", headers=[("trace", b"t-1")]
    )
    producer.flush(10)
    poison = consume_one(consumer_factory(source))

    DeadLetters(producer, "enrich", topic=dead).send_message(
        poison, "undecodable value", ValueError("'DUPONT Marie' is not a valid enum symbol")
    )

    kept = consume_one(consumer_factory(dead))
    assert (kept.key(), kept.value()) == (b"chrunancy:V9", b"\x00\x00\x00\x27not avro")
    headers = kept.headers() or []
    assert ("trace", b"t-1") in headers
    errors = read_error_headers(headers)
    assert errors["topic"] == source
    assert errors["partition"] == str(poison.partition())
    assert errors["offset"] == str(poison.offset())
    assert errors["service"] == "enrich"
    assert errors["reason"] == "undecodable value"
    assert errors["exception.class.name"] == "ValueError"
    # What the error is, never what it says: a decoder's message may quote the record.
    assert errors["exception.message"] == "ValueError"
    assert not any("DUPONT" in value for value in errors.values())
