"""The published corpus (tests/gateway/corpus) through one running gateway and the real broker.

Each message goes over TLS MLLP on its establishment's own connection (MSH-4 rewritten to a GHT
establishment, the client certificate of that establishment), received when it says it was
sent. Checked: the ACK code the manifest expects, the ACK read by an independent HL7 parser
(hl7apy) with MSA-2 echoing the control id, the StayEvent each movement publishes on its
establishment's stays topic, the PatientMerge each A40 publishes, and the archive's outcome of
every message.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.serde import AvroSerde, register_schemas
from services.common.settings import Settings
from services.common.topics import TopicSpec, ensure_topics
from services.gateway.bootstrap import Gateway, GatewayConfig
from services.gateway.handler import Topics
from services.gateway.intake import PATIENT_MERGE_SCHEMA, RAW_MESSAGE_SCHEMA, STAY_EVENT_SCHEMA
from tests.conftest import unique
from tests.gateway.corpus import CORPUS, NO_DATE
from tests.gateway.independent import parse_ack
from tests.gateway.support import MllpClient, read_ack, read_topic, running_gateway
from tests.gateway.test_corpus import event_fields, expected_fields, merge_fields

pytestmark = pytest.mark.integration

PUBLISHING = sorted({item.establishment for item in CORPUS if item.outcome == "PUBLISHED"})


class ReceiptClock:
    """The gateway's clock, set by the test to each message's receipt time before it is sent
    (the engine waits for each ACK, so the gateway reads it for that message alone)."""

    def __init__(self) -> None:
        self.now = NO_DATE

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(scope="module")
def corpus_topics(admin: AdminClient, registry: SchemaRegistryClient) -> Iterator[Topics]:
    """A stays topic per establishment the corpus publishes for, as ``stays.raw.<code>`` is in
    production, so the test sees each movement land on its own establishment's topic."""
    prefix = unique("test-corpus")
    stays = [f"{prefix}-stays.{code}" for code in PUBLISHING]
    specs = [
        *(TopicSpec(name, STAY_EVENT_SCHEMA, 1, False, retention_ms=3_600_000) for name in stays),
        TopicSpec(f"{prefix}-merges", PATIENT_MERGE_SCHEMA, 1, False, retention_ms=3_600_000),
        TopicSpec(f"{prefix}-archive", RAW_MESSAGE_SCHEMA, 1, False, retention_ms=3_600_000),
    ]
    ensure_topics(admin, specs)
    register_schemas(registry, specs)
    yield Topics(
        stays=f"{prefix}-stays.{{establishment}}",
        merges=f"{prefix}-merges",
        archive=f"{prefix}-archive",
    )
    for future in admin.delete_topics([spec.name for spec in specs], operation_timeout=10).values():
        future.result()


@pytest.fixture(scope="module")
def clock() -> ReceiptClock:
    return ReceiptClock()


@pytest.fixture(scope="module")
def gateway(stack: Settings, corpus_topics: Topics, clock: ReceiptClock) -> Iterator[Gateway]:
    config = GatewayConfig(host="127.0.0.1", port=0, topics=corpus_topics)
    with running_gateway(stack, config, clock) as running:
        yield running


def test_every_published_message_gets_its_outcome_and_publishes_its_event(
    gateway: Gateway,
    clock: ReceiptClock,
    stack: Settings,
    registry: SchemaRegistryClient,
    corpus_topics: Topics,
) -> None:
    answered: list[tuple[str, str, str, str]] = []
    expected: list[tuple[str, str, str, str]] = []
    with ExitStack() as connections:
        engines: dict[str, MllpClient] = {}
        for published in CORPUS:
            code = published.establishment
            if code not in engines:
                engines[code] = connections.enter_context(
                    MllpClient(gateway.port, establishment=code)
                )
            clock.now = published.received_at
            payload = engines[code].send(published.raw)
            ack = read_ack(payload)
            codec = ack.message.codec
            independent = parse_ack(payload.decode(codec), strict=published.ack_strict)
            answered.append(
                (
                    published.file,
                    ack.code,
                    independent.msa.msa_1.value,
                    independent.msa.msa_2.value,
                )
            )
            expected.append(
                (published.file, published.ack, published.ack, published.echoed_control_id)
            )
    assert answered == expected

    movements = [item for item in CORPUS if item.event is not None]
    for code in PUBLISHING:
        topic = corpus_topics.stays.format(establishment=code)
        mine = [item for item in movements if item.establishment == code]
        records = read_topic(stack, topic, AvroSerde(registry, STAY_EVENT_SCHEMA), len(mine))
        by_event = {value["event_id"]: (key, value) for key, value in records}
        assert sorted(by_event) == sorted(item.event_id for item in mine), topic
        for item in mine:
            key, value = by_event[item.event_id]
            assert key == value["stay_key"]
            assert event_fields(value) == expected_fields(item), item.file

    merges = [item for item in CORPUS if item.merge is not None]
    if merges:
        records = read_topic(
            stack, corpus_topics.merges, AvroSerde(registry, PATIENT_MERGE_SCHEMA), len(merges)
        )
        by_merge = {value["event_id"]: (key, value) for key, value in records}
        assert sorted(by_merge) == sorted(item.event_id for item in merges)
        for item in merges:
            key, value = by_merge[item.event_id]
            assert key == f"{item.establishment}:{value['patient']['ipp']}"
            assert merge_fields(value) == item.merge, item.file

    archive = read_topic(
        stack, corpus_topics.archive, AvroSerde(registry, RAW_MESSAGE_SCHEMA), len(CORPUS)
    )
    assert Counter(archived(value) for _key, value in archive) == Counter(
        (item.echoed_control_id or None, item.outcome, item.error_code, item.error_location)
        for item in CORPUS
    )


def archived(value: dict[str, object]) -> tuple[object, ...]:
    return (
        value["message_control_id"],
        value["outcome"],
        value["error_code"],
        value["error_location"],
    )
