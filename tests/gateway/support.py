"""A gateway running in the test process, and a blocking MLLP client that talks to it.

The gateway runs on its own event loop in a thread, on a free port, so a test can speak to it
through a real socket exactly as an establishment's engine would: over TLS, with the
establishment's client certificate from a CA made for the test session.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.kafka import make_consumer
from services.common.serde import AvroSerde, register_schemas
from services.common.settings import Settings
from services.common.tls import TlsFiles
from services.common.topics import TopicSpec, ensure_topics
from services.gateway.bootstrap import Gateway, GatewayConfig, build_gateway
from services.gateway.handler import Topics
from services.gateway.hl7 import Message, parse
from services.gateway.intake import PATIENT_MERGE_SCHEMA, RAW_MESSAGE_SCHEMA, STAY_EVENT_SCHEMA
from services.gateway.mllp import END_BLOCK, START_BLOCK, frame
from services.gateway.tls import MllpTls
from services.stack.tls import ensure_tls
from tests.conftest import unique

# The test messages (messages.py) and the simulator's test days are dated Monday 2026-03-02; the
# gateway judges dates from their receipt (a movement more than a year old is refused), so the
# gateways of the tests receive on that day, at noon in Paris, and the tests do not age.
MESSAGES_DAY_NOON = dt.datetime(2026, 3, 2, 11, 0, tzinfo=dt.UTC)
_STARTED = time.monotonic()


def messages_day_clock() -> dt.datetime:
    """Noon of the messages' day, advancing with real time."""
    return MESSAGES_DAY_NOON + dt.timedelta(seconds=time.monotonic() - _STARTED)


@cache
def session_pki() -> TlsFiles:
    """The session's CA, gateway certificate and one client certificate per establishment,
    written by the same code as ``make up``'s (the shared stack's own files stay untouched)."""
    folder = Path(tempfile.mkdtemp(prefix="harpicoop-tls-")) / "tls"
    ensure_tls(folder)
    return TlsFiles(folder)


def gateway_tls() -> MllpTls:
    files = session_pki()
    return MllpTls(cert=files.gateway_cert, key=files.gateway_key, client_ca=files.ca)


@contextmanager
def running_gateway(
    settings: Settings,
    config: GatewayConfig,
    clock: Callable[[], dt.datetime] = messages_day_clock,
) -> Iterator[Gateway]:
    """A config left with the default TLS settings is given the session's certificates."""
    if config.tls == MllpTls():
        config = dataclasses.replace(config, tls=gateway_tls())
    gateway = build_gateway(settings, config, clock)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway-loop", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(gateway.start(), loop).result(30)
    try:
        yield gateway
    finally:
        asyncio.run_coroutine_threadsafe(gateway.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class ConnectionClosed(Exception):
    """The gateway closed the connection before a whole ACK arrived."""


class MllpClient:
    """One engine connection: send a framed message, read the framed ACK. It speaks for
    ``establishment`` (its client certificate), or connects with ``context`` when given."""

    def __init__(
        self,
        port: int,
        timeout: float = 30.0,
        establishment: str = "chrunancy",
        context: ssl.SSLContext | None = None,
        clear: bool = False,
    ) -> None:
        plain = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._pending = b""
        if clear:  # to a gateway started with MLLP_TLS=off
            self.sock = plain
            return
        context = context or session_pki().client_context(establishment)
        try:
            self.sock = context.wrap_socket(plain, server_hostname="127.0.0.1")
        except BaseException:
            plain.close()
            raise

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, message: bytes) -> bytes:
        self.sock.sendall(frame(message))
        return self.receive()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self) -> bytes:
        """The next ACK's payload; raises ``ConnectionClosed`` if the connection ends first."""
        while END_BLOCK + b"\r" not in self._pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionClosed(f"closed with {self._pending!r} unanswered")
            self._pending += chunk
        end = self._pending.index(END_BLOCK + b"\r")
        payload = self._pending[:end]
        self._pending = self._pending[end + 2 :]
        return payload[payload.index(START_BLOCK) + 1 :]

    def closed_by_peer(self) -> bool:
        """True when the gateway closed the connection without sending anything more."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLEOFError):
            return True


@dataclass(frozen=True)
class Ack:
    code: str
    control_id: str
    errors: list[dict[str, str]]
    message: Message


def read_ack(payload: bytes) -> Ack:
    message = parse(payload)
    msa = message.first("MSA")
    assert message.header.get(9) == "ACK" and msa is not None, payload
    errors = [
        {
            "location": err.raw(2),
            "code": err.get(3, 1),
            "severity": err.get(4),
            "text": err.get(8),
        }
        for err in message.all("ERR")
    ]
    return Ack(msa.get(1), msa.get(2), errors, message)


Records = list[tuple[str, dict[str, Any]]]


def read_topic(
    settings: Settings,
    topic: str,
    serde: AvroSerde,
    expected: int | Callable[[Records], bool],
    timeout: float = 30.0,
) -> Records:
    """The records of ``topic`` as (key, decoded value), once ``expected`` have arrived (a
    count, or a test of what has arrived so far)."""
    done = expected if callable(expected) else lambda records: len(records) >= expected
    consumer = make_consumer(settings, "gateway-tests", f"gateway-tests-{time.time_ns()}")
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        consumer.assign([TopicPartition(topic, number, OFFSET_BEGINNING) for number in partitions])
        records: Records = []
        deadline = time.monotonic() + timeout
        while not done(records) and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.5):
                if message.error() is None:
                    key = message.key()
                    value = message.value()
                    assert key is not None and value is not None
                    records.append((key.decode(), serde.deserialize(topic, value)))
        return records
    finally:
        consumer.close()


def create_gateway_topics(
    admin: AdminClient, registry: SchemaRegistryClient, partitions: int = 3
) -> tuple[Topics, list[str]]:
    """One stays topic standing for all eleven raw topics, a merges and an archive topic."""
    specs = [
        TopicSpec(unique(f"test-gw-{stream}"), schema, partitions, False, retention_ms=3_600_000)
        for stream, schema in (
            ("stays", STAY_EVENT_SCHEMA),
            ("merges", PATIENT_MERGE_SCHEMA),
            ("archive", RAW_MESSAGE_SCHEMA),
        )
    ]
    ensure_topics(admin, specs)
    register_schemas(registry, specs)
    names = [spec.name for spec in specs]
    return Topics(stays=names[0], merges=names[1], archive=names[2]), names
