"""Property: whatever bytes an engine sends, the gateway answers with an ACK or closes cleanly,
and keeps serving the next engine. Inputs are random bytes, HL7-looking text, and valid PAM FR
messages with random damage (cut, spliced, bytes flipped, delimiters swapped)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.settings import Settings
from services.gateway.bootstrap import Gateway, GatewayConfig
from services.gateway.handler import Topics
from services.gateway.hl7 import parse
from services.gateway.mllp import END_BLOCK, START_BLOCK, Frame, MllpDecoder, frame
from services.gateway.server import ServerLimits
from services.gateway.tls import MllpTls
from tests.gateway.messages import identity, movement
from tests.gateway.support import MllpClient, read_ack, running_gateway

pytestmark = pytest.mark.integration

ACK_CODES = {"AA", "AE", "AR", "CA", "CE", "CR"}
VALID = [
    movement(),
    movement("A03", charset="UNICODE UTF-8", covid=("94500-6", "POS"), accept_ack="AL"),
    movement("A11", original_trigger="A01", segment_end="\r\n"),
    movement("Z99", original_trigger="A02", charset="8859/15", family="Cœur"),
    identity("A40"),
]
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        damage = draw(st.sampled_from(["cut", "insert", "flip", "truncate", "delimiter"]))
        if damage == "cut":
            del data[position : position + draw(st.integers(1, 40))]
        elif damage == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=20))
        elif damage == "flip" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif damage == "truncate":
            del data[position:]
        elif damage == "delimiter":
            old, new = (
                draw(st.sampled_from([b"|", b"^", b"~", b"\\", b"&", b"\r"])),
                draw(st.sampled_from([b"|", b"^", b"#", b"\\", b"", b"\n", b"\r\r"])),
            )
            data = bytearray(bytes(data).replace(old, new, draw(st.integers(1, 30))))
    return bytes(data)


HL7_LIKE = st.text(
    alphabet=st.sampled_from(list("MSHPIDVZBEROLX|^~\\&\r\n 0123456789ADTéÈ.-+")), max_size=400
).map(lambda text: ("MSH|^~\\&|" + text).encode("utf-8"))
INPUTS = st.one_of(st.binary(max_size=600), HL7_LIKE, damaged())


@pytest.fixture(scope="module")
def gateway(stack: Settings, module_topics: Topics) -> Iterator[Gateway]:
    limits = ServerLimits(max_frame_bytes=4096, frame_timeout=2.0, idle_timeout=5.0)
    # In clear: the framing is what is under test, and a half-closed TLS stream is not a thing.
    config = GatewayConfig(
        host="127.0.0.1", port=0, topics=module_topics, limits=limits, tls=MllpTls(mode="off")
    )
    with running_gateway(stack, config) as running:
        yield running


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, say we are done writing, and read what comes back until the gateway
    closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


@PROPERTY
@given(payload=INPUTS)
def test_any_framed_input_gets_acks_or_a_clean_close(gateway: Gateway, payload: bytes) -> None:
    replies = MllpDecoder(1 << 20).feed(exchange(gateway.port, frame(payload)))
    acks = [read_ack(reply.payload) for reply in replies if isinstance(reply, Frame)]
    assert len(acks) == len(replies)
    assert {ack.code for ack in acks} <= ACK_CODES
    if START_BLOCK not in payload and END_BLOCK not in payload:  # exactly one frame was sent
        assert len(acks) == 1 or (acks == [] and _no_ack_wanted(payload))


def _no_ack_wanted(payload: bytes) -> bool:
    """Enhanced mode with MSH-15 NE, ER or SU may ask for no commit ACK."""
    try:
        return parse(payload).header.get(15).upper() in {"NE", "ER", "SU"}
    except Exception:
        return False


@PROPERTY
@given(stream=st.binary(max_size=2000))
def test_an_unframed_byte_stream_never_breaks_the_gateway(gateway: Gateway, stream: bytes) -> None:
    exchange(gateway.port, stream)  # whatever it answers, it must go on serving
    with MllpClient(gateway.port, clear=True) as engine:
        assert read_ack(engine.send(movement(control_id="AFTER"))).code == "AA"
