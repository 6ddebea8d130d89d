"""The MLLP server over real sockets: framing across reads, oversized frames, slow and vanished
clients, many engines at once. Short time-outs make the slow-client cases quick."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.establishments import load_establishments
from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.gateway.bootstrap import Gateway, GatewayConfig
from services.gateway.handler import Topics
from services.gateway.intake import STAY_EVENT_SCHEMA
from services.gateway.mllp import frame
from services.gateway.server import ServerLimits
from tests.gateway.messages import movement
from tests.gateway.support import MllpClient, Records, read_ack, read_topic, running_gateway

pytestmark = pytest.mark.integration

# All engines connect from 127.0.0.1 here, standing for eleven establishments' addresses.
LIMITS = ServerLimits(
    max_frame_bytes=16_384, frame_timeout=1.0, idle_timeout=2.0, max_connections_per_address=64
)


@pytest.fixture(scope="module")
def gateway(stack: Settings, module_topics: Topics) -> Iterator[Gateway]:
    config = GatewayConfig(host="127.0.0.1", port=0, topics=module_topics, limits=LIMITS)
    with running_gateway(stack, config) as running:
        yield running


def test_several_messages_in_one_write_are_answered_in_order(gateway: Gateway) -> None:
    ids = [f"BATCH{index}" for index in range(5)]
    with MllpClient(gateway.port) as engine:
        engine.send_raw(b"".join(frame(movement(control_id=item)) for item in ids))
        acks = [read_ack(engine.receive()) for _ in ids]
    assert [(ack.code, ack.control_id) for ack in acks] == [("AA", item) for item in ids]


def test_a_message_trickling_in_small_pieces_is_answered_once(gateway: Gateway) -> None:
    data = b"\r\n" + frame(movement(control_id="SLOW1"))  # noise before the start block too
    with MllpClient(gateway.port) as engine:
        for start in range(0, len(data), 40):
            engine.send_raw(data[start : start + 40])
            time.sleep(0.005)
        ack = read_ack(engine.receive())
    assert (ack.code, ack.control_id) == ("AA", "SLOW1")


def test_an_oversized_message_gets_ar_and_the_connection_goes_on(gateway: Gateway) -> None:
    notes = [f"NTE|{index}||{'Compte rendu très long. ' * 40}" for index in range(40)]
    big = movement(control_id="BIG1", extra=notes)
    assert len(big) > LIMITS.max_frame_bytes
    with MllpClient(gateway.port) as engine:
        refused = read_ack(engine.send(big))
        after = read_ack(engine.send(movement(control_id="AFTERBIG")))
    assert (refused.code, refused.control_id) == ("AR", "BIG1")
    assert "over the gateway's limit" in refused.errors[0]["text"]
    assert (after.code, after.control_id) == ("AA", "AFTERBIG")
    assert gateway.counters["frames_oversized"] >= 1


def test_a_frame_that_never_ends_is_cut_off_without_an_answer(gateway: Gateway) -> None:
    with MllpClient(gateway.port, timeout=10) as engine:
        engine.send_raw(frame(movement(control_id="HALF"))[:200])
        assert engine.closed_by_peer()


def test_a_frame_dribbled_byte_by_byte_is_cut_off_too(gateway: Gateway) -> None:
    data = frame(movement(control_id="DRIP"))
    hung_up = False
    with MllpClient(gateway.port, timeout=10) as engine:
        engine.send_raw(data[:50])
        for byte in data[50:80]:  # one byte every 0.2 s: each read is quick, the frame is not
            time.sleep(0.2)
            try:
                engine.send_raw(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                hung_up = True
                break
    assert hung_up


def test_a_quiet_connection_is_closed_and_a_new_one_is_served(gateway: Gateway) -> None:
    with MllpClient(gateway.port, timeout=10) as quiet:
        assert read_ack(quiet.send(movement(control_id="QUIET1"))).code == "AA"
        assert quiet.closed_by_peer()  # after idle_timeout
    with MllpClient(gateway.port) as engine:
        assert read_ack(engine.send(movement(control_id="QUIET2"))).code == "AA"


def test_a_client_leaving_before_its_ack_does_not_lose_the_message(
    gateway: Gateway, stack: Settings, registry: SchemaRegistryClient, module_topics: Topics
) -> None:
    with MllpClient(gateway.port) as hasty:
        hasty.send_raw(frame(movement(control_id="GONE1", visit="GONE")))
    with MllpClient(gateway.port) as engine:
        assert read_ack(engine.send(movement(control_id="STAY1"))).code == "AA"

    def arrived(records: Records) -> bool:
        return any(value["event_id"] == "chrunancy:GONE1" for _key, value in records)

    records = read_topic(
        stack, module_topics.stays, AvroSerde(registry, STAY_EVENT_SCHEMA), arrived
    )
    assert arrived(records)


def test_eleven_engines_at_once_each_get_their_own_acks(gateway: Gateway) -> None:
    establishments = {item.sending_facility: item.code for item in load_establishments()}
    facilities = list(establishments)

    def engine_day(facility: str) -> list[tuple[str, str]]:
        with MllpClient(gateway.port, establishment=establishments[facility]) as engine:
            return [
                (ack.code, ack.control_id)
                for ack in (
                    read_ack(engine.send(movement(facility=facility, control_id=f"{facility}-{n}")))
                    for n in range(10)
                )
            ]

    with ThreadPoolExecutor(len(facilities) * 3) as pool:
        # Three connections per establishment: 33 engines, 330 messages.
        results = list(pool.map(engine_day, facilities * 3))
    for facility, acks in zip(facilities * 3, results, strict=True):
        assert acks == [("AA", f"{facility}-{n}") for n in range(10)]
