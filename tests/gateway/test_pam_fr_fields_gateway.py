"""Published PAM FR shapes through a running gateway and the real broker: a GP whose ROL-4 lists
an ADELI number before the RPPS, with the unit in ZBE-8 and a used name without a family name,
gets an event with the RPPS; the spec's own A31 example is acknowledged and archived."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.gateway.bootstrap import Gateway, GatewayConfig
from services.gateway.handler import Topics
from services.gateway.intake import RAW_MESSAGE_SCHEMA, STAY_EVENT_SCHEMA
from tests.gateway.messages import movement
from tests.gateway.published import (
    RPPS,
    SPEC_A31_INS_NIR,
    XCN_ADELI,
    XCN_RPPS,
    as_establishment,
    with_fields,
)
from tests.gateway.support import MllpClient, read_ack, read_topic, running_gateway

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(stack: Settings, module_topics: Topics) -> Iterator[Gateway]:
    config = GatewayConfig(host="127.0.0.1", port=0, topics=module_topics)
    with running_gateway(stack, config) as running:
        yield running


def test_published_shapes_are_accepted_and_the_gp_keeps_the_rpps(
    gateway: Gateway, stack: Settings, registry: SchemaRegistryClient, module_topics: Topics
) -> None:
    admission = movement(
        control_id="FIELDS-ADELI-RPPS",
        charset="UNICODE UTF-8",
        care_team=[],
        extra=[f"ROL|1|UC|ODRP^^IHE_FR|{XCN_ADELI}~{XCN_RPPS}"],
    )
    admission = with_fields(admission, "ZBE", {7: '""', 8: "Urgences^^^^^^UF^^^8782"})
    admission = with_fields(admission, "PID", {5: "^Hélène^^^^^D~Lefèvre^Hélène^^^^^L"})
    a31 = as_establishment(SPEC_A31_INS_NIR)
    with MllpClient(gateway.port, establishment="chrunancy") as engine:
        acks = [read_ack(engine.send(message)) for message in (admission, a31)]
    assert [(ack.code, ack.control_id, ack.errors) for ack in acks] == [
        ("AA", "FIELDS-ADELI-RPPS", []),
        ("AA", "20210318151910", []),
    ]

    stays = read_topic(stack, module_topics.stays, AvroSerde(registry, STAY_EVENT_SCHEMA), 1)
    assert len(stays) == 1  # the A31 publishes nothing
    _key, event = stays[0]
    assert event["event_id"] == "chrunancy:FIELDS-ADELI-RPPS"
    assert event["care_team"] == [
        {"role": "ODRP", "rpps": RPPS, "family_name": "Dupont", "given_name": "Jean"}
    ]
    assert (event["movement"]["unit"], event["movement"]["unit_name"]) == ("8782", "Urgences")
    assert (event["patient"]["family_name"], event["patient"]["given_name"]) == (
        "Lefèvre",
        "Hélène",
    )

    archive = read_topic(stack, module_topics.archive, AvroSerde(registry, RAW_MESSAGE_SCHEMA), 2)
    outcomes = {value["message_control_id"]: value["outcome"] for _key, value in archive}
    assert outcomes == {"FIELDS-ADELI-RPPS": "PUBLISHED", "20210318151910": "KEPT"}
