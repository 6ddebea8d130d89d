"""A record written through the serde is read back, by a separate consumer, as it was written."""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.serialization import SerializationError
from fastavro import parse_schema, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.records import (
    CareRole,
    EnrichedStayEvent,
    EventKind,
    FallbackAddress,
    Recipient,
    StayEvent,
)
from services.common.schemas import expanded_schema_json, history
from services.common.serde import AvroSerde, RecordSerde

pytestmark = pytest.mark.integration

UTC = dt.UTC


def stay_event(visit: str) -> dict[str, Any]:
    at = dt.datetime(2026, 3, 2, 8, 15, 30, 250_000, tzinfo=UTC)
    return {
        "event_id": f"chrunancy:MSG-{visit}",
        "establishment": "chrunancy",
        "stay_key": f"chrunancy:{visit}",
        "kind": "ADMISSION",
        "action": "INSERT",
        "trigger_event": "A01",
        "original_trigger": None,
        "message_control_id": f"MSG-{visit}",
        "sent_at": at,
        "received_at": at + dt.timedelta(seconds=1),
        "movement": {
            "movement_id": "MVT1",
            "authority": "CHRU-NANCY-GAM",
            "occurred_at": at,
            "unit": "CARDIO",
            "unit_name": "Cardiologie",
        },
        "patient": {
            "ipp": "000123456",
            "ins": None,
            "family_name": "Lefèvre",
            "given_name": "Hélène",
            "birth_name": None,
            "birth_date": dt.date(1948, 7, 14),
            "sex": "F",
            "used_name": {
                "family_name": "Lefèvre",
                "given_name": "Hélène",
                "other_given_names": None,
            },
            "legal_name": None,
        },
        "stay": {
            "visit_number": visit,
            "billing_number": "NDA77",
            "patient_class": "I",
            "admission_type": "R",
            "admission_mode": "SCHEDULED",
            "admitted_at": at,
            "discharged_at": None,
            "discharge_disposition": None,
            "discharge_destination": None,
            "attending_doctor": {
                "rpps": "10101010102",
                "family_name": "Petit",
                "given_name": "Noé",
            },
            "referring_doctor": None,
            "admitting_doctor": None,
        },
        "care_team": [
            {"role": "ODRP", "rpps": "10101010101", "family_name": "Martin", "given_name": "Jeanne"}
        ],
        "covid_status": "UNKNOWN",
        "patient_protected": None,
        "stay_protected": None,
    }


def consume_one(consumer: Consumer, timeout: float = 30.0) -> Any:
    deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
    while dt.datetime.now() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            return message
    raise AssertionError("no record arrived")


def test_a_produced_stay_event_is_decoded_by_a_separate_consumer(
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
    serde_factory: Callable[[str], AvroSerde],
) -> None:
    topic = topic_factory("harpicoop.StayEvent")
    written = stay_event("V0001")
    producer = producer_factory()
    producer.produce(
        topic,
        key=written["stay_key"],
        value=serde_factory("harpicoop.StayEvent").serialize(topic, written),
    )
    assert producer.flush(10) == 0

    message = consume_one(consumer_factory(topic))
    assert message.key() == b"chrunancy:V0001"
    assert message.value()[0] == 0  # Confluent wire format: magic byte, then the schema id
    read = serde_factory("harpicoop.StayEvent").deserialize(topic, message.value())
    assert read == written


def test_bytes_that_are_not_avro_are_refused_with_a_serialization_error(
    topic_factory: Callable[..., str], serde_factory: Callable[[str], AvroSerde]
) -> None:
    topic = topic_factory("harpicoop.StayEvent")
    with pytest.raises(SerializationError):
        serde_factory("harpicoop.StayEvent").deserialize(topic, b"MSH|^~\\&|not avro")


def test_an_unknown_schema_id_is_the_records_fault(
    topic_factory: Callable[..., str], serde_factory: Callable[[str], AvroSerde]
) -> None:
    from services.common.serde import UndecodableValue

    topic = topic_factory("harpicoop.StayEvent")
    with pytest.raises(UndecodableValue, match="unknown schema id"):
        serde_factory("harpicoop.StayEvent").deserialize(topic, b"\x00\x00\x0f\x42\x40garbage")


def test_a_body_cut_short_or_corrupted_is_the_records_fault(
    topic_factory: Callable[..., str], serde_factory: Callable[[str], AvroSerde]
) -> None:
    from services.common.serde import UndecodableValue

    topic = topic_factory("harpicoop.StayEvent")
    serde = serde_factory("harpicoop.StayEvent")
    data = serde.serialize(topic, stay_event("V0002"))
    with pytest.raises(UndecodableValue, match="does not read"):
        serde.deserialize(topic, data[: len(data) // 2])
    # An enum index far out of range where the first field's length should be.
    with pytest.raises(UndecodableValue):
        serde.deserialize(topic, data[:5] + b"\x01" + data[6:])


@pytest.fixture
def written(
    topic_factory: Callable[..., str], serde_factory: Callable[[str], AvroSerde]
) -> tuple[AvroSerde, str, bytes]:
    """A serde, a topic, and a value written to it (made once for all of a test's examples)."""
    topic = topic_factory("harpicoop.StayEvent")
    serde = serde_factory("harpicoop.StayEvent")
    return serde, topic, serde.serialize(topic, stay_event("V0003"))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.integers(min_value=0),
    changes=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=4),
)
def test_any_damaged_value_decodes_or_is_named_undecodable(
    written: tuple[AvroSerde, str, bytes], cut: int, changes: list[tuple[int, int]]
) -> None:
    """Never another exception: a damaged record is dead-lettered, it never stops a consumer."""
    from services.common.serde import UndecodableValue

    serde, topic, value = written
    data = bytearray(value)
    for position, byte in changes:
        # The header stays: an unknown schema id is another case (above).
        data[5 + position % (len(data) - 5)] = byte
    damaged = bytes(data[: 6 + cut % (len(data) - 5)])
    try:
        decoded = serde.deserialize(topic, damaged)
    except UndecodableValue:
        return
    assert isinstance(decoded, dict)


@pytest.mark.parametrize(
    ("schema", "rest"),
    [
        (
            "harpicoop.EnrichedStayEvent",
            {"recipients": [], "enriched_at": dt.datetime(2026, 3, 2, 8, 0, 1, tzinfo=UTC)},
        ),
        (
            "harpicoop.UnroutableStayEvent",
            {
                "reason": "NO_GP",
                "gp_rpps": None,
                "detail": "no GP in the care team",
                "detected_at": dt.datetime(2026, 3, 2, 8, 0, 1, tzinfo=UTC),
            },
        ),
    ],
)
def test_an_embedded_stay_event_written_with_our_schema_is_reused_byte_for_byte(
    topic_factory: Callable[..., str], registry: Any, schema: str, rest: dict[str, Any]
) -> None:
    source, target = topic_factory("harpicoop.StayEvent"), topic_factory(schema)
    events, outer = AvroSerde(registry, "harpicoop.StayEvent"), AvroSerde(registry, schema)
    event = stay_event("V0002")
    data = events.serialize(source, event)
    # Only a value it has decoded, so that it knows the writer's schema is its own.
    assert events.own_body(data) is None
    decoded = events.deserialize(source, data)
    assert events.own_body(b"\x00\x00") is None

    body = events.own_body(data)
    assert body == data[5:]
    spliced = outer.serialize_after(target, body, rest)
    assert spliced == outer.serialize(target, {"event": decoded, **rest})
    assert outer.deserialize(target, spliced) == {"event": event, **rest}


def test_a_typed_record_embedding_a_stay_event_reuses_its_bytes_byte_for_byte(
    topic_factory: Callable[..., str], registry: SchemaRegistryClient
) -> None:
    source, target = topic_factory("harpicoop.StayEvent"), topic_factory(EnrichedStayEvent.SCHEMA)
    events, outer = RecordSerde(registry, StayEvent), RecordSerde(registry, EnrichedStayEvent)
    data = events.avro.serialize(source, stay_event("V0005"))
    event = events.deserialize(source, data)
    recipient = Recipient(
        role=CareRole.ODRP,
        rpps="10101010101",
        family_name="Martin",
        given_name="Jeanne",
        mssante_address="jeanne.martin@medecin.mssante.fr",
        fallback=(
            FallbackAddress(
                rpps="10101010101",
                address="cabinet@medecin.mssante.fr",
                mailbox_type="CAB",
                role=CareRole.ODRP,
            ),
        ),
    )
    enriched = EnrichedStayEvent(
        event=event, recipients=(recipient,), enriched_at=dt.datetime(2026, 3, 2, 8, tzinfo=UTC)
    )
    body = events.avro.own_body(data)
    assert body is not None

    spliced = outer.serialize_after(target, body, enriched)

    assert spliced == outer.serialize(target, enriched)
    assert outer.deserialize(target, spliced) == enriched


def test_a_typed_serde_writes_and_reads_the_record_type(
    topic_factory: Callable[..., str], registry: SchemaRegistryClient
) -> None:
    topic = topic_factory("harpicoop.StayEvent")
    serde = RecordSerde(registry, StayEvent)
    event = StayEvent.from_avro(stay_event("V0004"))

    data = serde.serialize(topic, event)

    assert data == serde_of(registry).serialize(topic, stay_event("V0004"))
    assert serde.deserialize(topic, data) == event


def test_a_value_of_the_first_version_reads_into_the_latest_type(
    topic_factory: Callable[..., str], registry: SchemaRegistryClient
) -> None:
    """Producers move to a new version after their consumers: a consumer reads the old
    versions still on the topic into its type, the fields added since at their defaults."""
    topic = topic_factory()  # no schema yet: the first version is registered first
    first = history("harpicoop.StayEvent")[0].read_text(encoding="utf-8")
    registry.set_compatibility(f"{topic}-value", "BACKWARD")
    first_id = registry.register_schema(f"{topic}-value", Schema(first, "AVRO"))
    registry.register_schema(
        f"{topic}-value", Schema(expanded_schema_json("harpicoop.StayEvent"), "AVRO")
    )
    writer = parse_schema(json.loads(first), named_schemas={})
    # The Avro writer writes the fields its schema has and leaves the others out.
    value = stay_event("V0005")
    body = io.BytesIO()
    body.write(struct.pack(">bI", 0, first_id))
    schemaless_writer(body, writer, value)

    event = RecordSerde(registry, StayEvent).deserialize(topic, body.getvalue())

    assert event.event_id == "chrunancy:MSG-V0005"
    assert event.kind is EventKind.ADMISSION
    # Not in the first version: their defaults.
    assert event.movement.authority is None
    assert event.patient_protected is None


def serde_of(registry: SchemaRegistryClient) -> AvroSerde:
    return AvroSerde(registry, "harpicoop.StayEvent")
