"""Broker outage: while Kafka is down the gateway sends no AA (it closes the connection without
an ACK, so the engine resends), and once Kafka is back the resent message is accepted and
written. Runs against a throwaway broker that the test stops and starts."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.kafka import make_admin
from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.gateway.bootstrap import GatewayConfig
from services.gateway.intake import STAY_EVENT_SCHEMA
from services.stack.components import Kafka
from tests.conftest import on_broker
from tests.gateway.messages import movement
from tests.gateway.support import (
    ConnectionClosed,
    MllpClient,
    create_gateway_topics,
    read_ack,
    read_topic,
    running_gateway,
)

pytestmark = pytest.mark.integration

ACK_TIMEOUT = 3.0


def send_like_an_engine(port: int, message: bytes, give_up_after: float) -> tuple[str, int]:
    """Send until an ACK comes, reconnecting after each silence; the ACK code and the tries."""
    deadline = time.monotonic() + give_up_after
    tries = 0
    while time.monotonic() < deadline:
        tries += 1
        try:
            with MllpClient(port, timeout=ACK_TIMEOUT * 3) as engine:
                return read_ack(engine.send(message)).code, tries
        except (ConnectionClosed, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise AssertionError(f"no ACK after {tries} tries")


def test_no_aa_while_the_broker_is_down_and_acceptance_once_it_is_back(
    stack: Settings, registry: SchemaRegistryClient, private_kafka: Kafka
) -> None:
    settings = on_broker(stack, private_kafka)
    topics, _names = create_gateway_topics(make_admin(settings), registry, partitions=1)
    config = GatewayConfig(host="127.0.0.1", port=0, topics=topics, ack_timeout=ACK_TIMEOUT)
    during_outage = movement("A03", control_id="OUTAGE1", visit="V-OUTAGE")
    with running_gateway(settings, config) as gateway:
        before = movement("A01", control_id="BEFORE1", visit="V-OUTAGE")
        assert send_like_an_engine(gateway.port, before, 30)[0] == "AA"

        private_kafka.stop()
        with (
            MllpClient(gateway.port, timeout=ACK_TIMEOUT * 3) as engine,
            pytest.raises(ConnectionClosed),
        ):
            engine.send(during_outage)
        assert gateway.counters["messages_unconfirmed"] >= 1

        private_kafka.start()
        private_kafka.wait_healthy()
        code, tries = send_like_an_engine(gateway.port, during_outage, 90)
        assert code == "AA" and tries >= 1

    records = read_topic(settings, topics.stays, AvroSerde(registry, STAY_EVENT_SCHEMA), 2)
    event_ids = {value["event_id"] for _key, value in records}
    assert {"chrunancy:BEFORE1", "chrunancy:OUTAGE1"} <= event_ids
    assert {key for key, _value in records} == {"chrunancy:V-OUTAGE"}
