"""Values the services downstream cannot store or compute with, sent to a running gateway and
the real broker: the engine gets AE naming the field, nothing reaches the stay topics, the
archive keeps the message as an error, and the connection goes on serving."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.gateway.bootstrap import GatewayConfig
from services.gateway.handler import Topics
from services.gateway.intake import RAW_MESSAGE_SCHEMA, STAY_EVENT_SCHEMA
from tests.gateway.messages import movement
from tests.gateway.support import (
    MllpClient,
    Records,
    create_gateway_topics,
    read_ack,
    read_topic,
    running_gateway,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def topics(admin: AdminClient, registry: SchemaRegistryClient) -> Iterator[Topics]:
    """Fresh topics with one partition each, so that a record written before the last one
    would be read before it: reading up to the last proves what was not written."""
    created, names = create_gateway_topics(admin, registry, partitions=1)
    yield created
    for future in admin.delete_topics(names, operation_timeout=10).values():
        future.result()


def test_a_nul_in_a_visit_number_and_a_movement_in_9999_are_refused_and_archived(
    stack: Settings, registry: SchemaRegistryClient, topics: Topics
) -> None:
    # The gateway receives on the messages' day (support.messages_day_clock): only the value
    # under test is wrong.
    nul_visit = movement(control_id="EDGE-NUL", visit="V\\X00\\42")
    far_future = movement(control_id="EDGE-9999", visit="V43", moved_at="99990101000000")
    normal = movement(control_id="EDGE-OK", visit="V44")
    config = GatewayConfig(host="127.0.0.1", port=0, topics=topics)
    with running_gateway(stack, config) as gateway, MllpClient(gateway.port) as engine:
        acks = [read_ack(engine.send(raw)) for raw in (nul_visit, far_future, normal)]

    assert [(ack.code, ack.control_id) for ack in acks] == [
        ("AE", "EDGE-NUL"),
        ("AE", "EDGE-9999"),
        ("AA", "EDGE-OK"),
    ]
    assert [(ack.errors[0]["code"], ack.errors[0]["location"]) for ack in acks[:2]] == [
        ("102", "PV1^1^19^1"),
        ("102", "ZBE^1^2^1"),
    ]
    assert "control character" in acks[0].errors[0]["text"]
    assert "more than a day after" in acks[1].errors[0]["text"]

    def normal_arrived(records: Records) -> bool:
        return any(value["event_id"] == "chrunancy:EDGE-OK" for _key, value in records)

    stays = read_topic(stack, topics.stays, AvroSerde(registry, STAY_EVENT_SCHEMA), normal_arrived)
    assert [value["event_id"] for _key, value in stays] == ["chrunancy:EDGE-OK"]

    archive = read_topic(stack, topics.archive, AvroSerde(registry, RAW_MESSAGE_SCHEMA), 3)
    archived = {value["raw"]: value for _key, value in archive}
    assert set(archived) == {nul_visit, far_future, normal}
    refused = [archived[nul_visit], archived[far_future]]
    assert [
        (item["outcome"], item["ack_code"], item["error_code"], item["error_location"])
        for item in refused
    ] == [("ERROR", "AE", "102", "PV1-19"), ("ERROR", "AE", "102", "ZBE-2")]
    assert all(item["event_id"] is None and item["topic"] is None for item in refused)
    assert (archived[normal]["outcome"], archived[normal]["ack_code"]) == ("PUBLISHED", "AA")
