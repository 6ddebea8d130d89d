"""MLLP over TLS against the real stack: only an establishment's own certificate, signed by the
GHT's CA, gets in, and it may speak for that establishment only."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trustme
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.serde import AvroSerde
from services.common.settings import Settings, SettingsError
from services.common.tls import client_context
from services.gateway.bootstrap import Gateway, GatewayConfig
from services.gateway.handler import Topics
from services.gateway.intake import RAW_MESSAGE_SCHEMA, STAY_EVENT_SCHEMA
from services.gateway.tls import MllpTls
from tests.gateway.messages import movement
from tests.gateway.support import (
    ConnectionClosed,
    MllpClient,
    Records,
    read_ack,
    read_topic,
    running_gateway,
    session_pki,
)

pytestmark = pytest.mark.integration

REFUSED = (ssl.SSLError, ConnectionError, ConnectionClosed)


@pytest.fixture(scope="module")
def gateway(stack: Settings, module_topics: Topics) -> Iterator[Gateway]:
    config = GatewayConfig(host="127.0.0.1", port=0, topics=module_topics)
    with running_gateway(stack, config) as running:
        yield running


def _talk(port: int, context: ssl.SSLContext) -> bytes:
    """Connect and send one message; with TLS 1.3 a refused client learns it on its first read."""
    with MllpClient(port, timeout=10, context=context) as engine:
        return engine.send(movement(control_id="INTRUDER"))


def test_a_client_without_a_certificate_is_refused_at_the_handshake(gateway: Gateway) -> None:
    with pytest.raises(REFUSED):
        _talk(gateway.port, client_context(session_pki().ca, None, None))


def test_a_certificate_from_another_ca_is_refused_at_the_handshake(
    gateway: Gateway, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("other-ca")
    other = trustme.CA().issue_cert("mllp.chrunancy.ght-sud-lorraine.fr")  # the right CN, even
    cert, key = folder / "cert.pem", folder / "key.pem"
    other.cert_chain_pems[0].write_to_path(cert)
    other.private_key_pem.write_to_path(key)
    with pytest.raises(REFUSED):
        _talk(gateway.port, client_context(session_pki().ca, cert, key))


def test_an_establishment_speaking_for_another_gets_ar_and_nothing_is_published(
    gateway: Gateway, stack: Settings, registry: SchemaRegistryClient, module_topics: Topics
) -> None:
    with MllpClient(gateway.port, establishment="toul") as engine:
        refused = read_ack(engine.send(movement(facility="CHRU_NANCY", control_id="SPOOF1")))
        # A correct message on the same connection goes through, and tells us the writes are in.
        taken = read_ack(engine.send(movement(facility="CH_TOUL", control_id="TOUL1")))
    assert (refused.code, refused.control_id) == ("AR", "SPOOF1")
    assert (
        "not the establishment of this connection's certificate (toul)"
        in (refused.errors[0]["text"])
    )
    assert taken.code == "AA"

    def both_archived(records: Records) -> bool:
        ids = {value["message_control_id"] for _key, value in records}
        return {"SPOOF1", "TOUL1"} <= ids

    archive = read_topic(
        stack, module_topics.archive, AvroSerde(registry, RAW_MESSAGE_SCHEMA), both_archived
    )
    spoof = next(value for _key, value in archive if value["message_control_id"] == "SPOOF1")
    assert (spoof["outcome"], spoof["ack_code"]) == ("REJECTED", "AR")
    assert (spoof["establishment"], spoof["sending_facility"]) == ("toul", "CHRU_NANCY")
    assert spoof["event_id"] is None and spoof["topic"] is None

    def toul_published(records: Records) -> bool:
        return any(value["event_id"] == "toul:TOUL1" for _key, value in records)

    stays = read_topic(
        stack, module_topics.stays, AvroSerde(registry, STAY_EVENT_SCHEMA), toul_published
    )
    assert toul_published(stays)
    event_ids = {value["event_id"] for _key, value in stays}
    assert not any(event_id.endswith(":SPOOF1") for event_id in event_ids)


def test_an_establishment_with_its_own_certificate_gets_aa_and_its_event_published(
    gateway: Gateway, stack: Settings, registry: SchemaRegistryClient, module_topics: Topics
) -> None:
    with MllpClient(gateway.port, establishment="chrunancy") as engine:
        ack = read_ack(engine.send(movement(control_id="OWN1", visit="OWN")))
    assert (ack.code, ack.control_id) == ("AA", "OWN1")

    def arrived(records: Records) -> bool:
        return any(value["event_id"] == "chrunancy:OWN1" for _key, value in records)

    records = read_topic(
        stack, module_topics.stays, AvroSerde(registry, STAY_EVENT_SCHEMA), arrived
    )
    assert arrived(records)
    assert gateway.counters["connections"] >= 1


def test_tls_on_without_its_files_refuses_to_start_and_says_what_to_set() -> None:
    with pytest.raises(SettingsError) as refused:
        MllpTls.from_env({"MLLP_TLS_CERT": "/nowhere/gateway.pem"}).server_context()
    message = str(refused.value)
    assert "MLLP_TLS_CERT (/nowhere/gateway.pem not found)" in message
    assert "MLLP_TLS_KEY (not set)" in message and "MLLP_TLS_CLIENT_CA (not set)" in message
    assert "MLLP_TLS=off" in message
