"""The gateway end to end: PAM FR messages per second acknowledged (AA after Kafka confirmed the
StayEvent and the archive entry), over one engine connection and over eleven at once (one per
establishment), all over mutually authenticated TLS; and what one TLS handshake costs (a fresh
connection with its client certificate, up to the gateway's first byte). Engines behave as real
ones: each waits for its ACK before the next message.

The gateway runs in its own process, as in production, writing to fresh topics; the engines are
threads of this process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from confluent_kafka import TopicPartition

from services.cli.hops import percentile
from services.common.establishments import load_establishments
from services.common.kafka import make_admin, make_consumer
from services.common.logging import configure_logging
from services.common.serde import make_registry_client
from services.common.settings import Settings
from services.gateway.bootstrap import GatewayConfig, build_gateway
from services.gateway.handler import Topics as GatewayTopics
from services.gateway.mllp import frame
from services.gateway.tls import MllpTls
from tests.gateway.messages import movement
from tests.gateway.support import (
    create_gateway_topics,
    gateway_tls,
    messages_day_clock,
    session_pki,
)

WARM_UP = 50
HANDSHAKES = 200
ONE_CONNECTION = 1500
PER_ESTABLISHMENT = 300
CHARSETS = ["8859/1", "UNICODE UTF-8"]
# A stay's life: admission, transfer, a correction, discharge with the Covid-19 status.
TRIGGERS = [("A01", ""), ("A02", ""), ("Z99", "A02"), ("A03", "")]


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _serve(
    settings: Settings, config: GatewayConfig, ready: Queue[Any], stop: Event, wall: bool
) -> None:
    """The gateway process: logs as in production, but to nowhere. Its clock is the messages'
    day, or with ``wall`` the real one (a latency measured from the receipt it stamps)."""
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (for the life of the process)
    configure_logging("gateway")

    async def main() -> None:
        gateway = build_gateway(settings, config, wall_clock if wall else messages_day_clock)
        await gateway.start()
        ready.put(gateway.port)
        await asyncio.to_thread(stop.wait)
        await gateway.stop()
        ready.put(dict(gateway.counters))

    asyncio.run(main())


def _messages(facility: str, count: int, prefix: str) -> list[bytes]:
    messages = []
    for index in range(count):
        trigger, original = TRIGGERS[index % len(TRIGGERS)]
        messages.append(
            frame(
                movement(
                    trigger,
                    original_trigger=original,
                    facility=facility,
                    control_id=f"{prefix}{index:06}",
                    visit=f"{prefix}V{index // len(TRIGGERS):05}",
                    movement_id=f"{prefix}M{index:06}",
                    charset=CHARSETS[index % len(CHARSETS)],
                    covid=("94500-6", "260415000") if trigger == "A03" else None,
                )
            )
        )
    return messages


def _connect(port: int, code: str, tls: bool = True) -> socket.socket:
    """A connection with the establishment's client certificate, or in clear to a gateway
    listening with MLLP_TLS=off."""
    plain = socket.create_connection(("127.0.0.1", port), timeout=60)
    if not tls:
        return plain
    return session_pki().client_context(code).wrap_socket(plain, server_hostname="127.0.0.1")


def _handshakes(port: int, code: str, count: int, tls: bool = True) -> list[float]:
    """Seconds from connect to the client's finished handshake (TCP connect included; with
    TLS 1.3 the gateway checks the client's certificate just after, in parallel)."""
    took = []
    for _ in range(count):
        started = time.perf_counter()
        with _connect(port, code, tls):
            took.append(time.perf_counter() - started)
    return took


def _engine(
    port: int,
    code: str,
    messages: list[bytes],
    tls: bool = True,
    *,
    every: float = 0.0,
    start: float | None = None,
) -> list[float]:
    """Send each message and wait for its ACK; the round trips in seconds. With ``every``, the
    messages are offered at that interval from ``start`` (``time.monotonic()``), as an engine
    sending a steady flow does; a late ACK delays the next message, never skips it."""
    latencies = []
    with _connect(port, code, tls) as sock:
        began = time.monotonic() if start is None else start
        for number, message in enumerate(messages):
            pause = began + number * every - time.monotonic()
            if every and pause > 0:
                time.sleep(pause)
            started = time.perf_counter()
            sock.sendall(message)
            reply = b""
            while not reply.endswith(b"\x1c\r"):
                chunk = sock.recv(4096)
                if not chunk:
                    raise RuntimeError("the gateway closed the connection")
                reply += chunk
            latencies.append(time.perf_counter() - started)
            if b"\rMSA|AA|" not in reply:
                raise RuntimeError(f"not accepted: {reply[:300]!r}")
    return latencies


def _figures(name: str, latencies: list[float], seconds: float) -> dict[str, Any]:
    return {
        f"{name}_messages": len(latencies),
        f"{name}_acked_per_s": round(len(latencies) / seconds),
        f"{name}_p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        f"{name}_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
    }


def _records(settings: Settings, topic: str) -> int:
    consumer = make_consumer(settings, "bench-gateway", f"bench-gateway-{time.time_ns()}")
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        total = 0
        for number in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, number), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


@dataclass
class GatewayProcess:
    """A gateway in a process of its own, on fresh topics: its port, its topics, and how to stop
    it (``stop``, then its counters come on ``ready``)."""

    port: int
    topics: GatewayTopics
    ready: Queue[Any]
    stop: Event
    pid: int


@contextmanager
def gateway_process(
    settings: Settings, tls: MllpTls, topics: GatewayTopics | None = None, *, wall: bool = False
) -> Iterator[GatewayProcess]:
    """A gateway listening in a spawned process, stopped afterwards; on fresh topics deleted
    afterwards unless given ``topics``. With ``wall``, it stamps receipts with the real clock."""
    admin = make_admin(settings)
    names: list[str] = []
    if topics is None:
        topics, names = create_gateway_topics(admin, make_registry_client(settings))
    config = GatewayConfig(host="127.0.0.1", port=0, topics=topics, tls=tls)
    context = multiprocessing.get_context("spawn")
    ready: Queue[Any] = context.Queue()
    stop = context.Event()
    process = context.Process(
        target=_serve, args=(settings, config, ready, stop, wall), daemon=True
    )
    process.start()
    try:
        yield GatewayProcess(int(ready.get(timeout=60)), topics, ready, stop, process.pid or 0)
    finally:
        stop.set()
        process.join(30)
        if process.is_alive():
            process.terminate()
        if names:
            admin.delete_topics(names)


def run(settings: Settings) -> dict[str, Any]:
    with gateway_process(settings, gateway_tls()) as gateway:
        port, topics, ready, stop = gateway.port, gateway.topics, gateway.ready, gateway.stop
        establishments = load_establishments()
        facilities = [item.sending_facility for item in establishments]
        code_of = {item.sending_facility: item.code for item in establishments}
        first = establishments[0].code
        _engine(port, first, _messages(facilities[0], WARM_UP, "W"))
        handshakes = _handshakes(port, first, HANDSHAKES)
        figures: dict[str, Any] = {
            "tls_handshakes": len(handshakes),
            "tls_handshake_p50_ms": round(percentile(handshakes, 0.5) * 1000, 2),
            "tls_handshake_p99_ms": round(percentile(handshakes, 0.99) * 1000, 2),
        }

        one = _messages(facilities[0], ONE_CONNECTION, "O")
        started = time.perf_counter()
        single = _engine(port, first, one)
        figures |= _figures("one_connection", single, time.perf_counter() - started)

        batches = [_messages(facility, PER_ESTABLISHMENT, "E") for facility in facilities]
        started = time.perf_counter()
        with ThreadPoolExecutor(len(batches)) as pool:
            results = list(
                pool.map(
                    lambda facility, batch: _engine(port, code_of[facility], batch),
                    facilities,
                    batches,
                )
            )
        eleven = [latency for result in results for latency in result]
        figures |= _figures("eleven_connections", eleven, time.perf_counter() - started)

        stop.set()
        counters = ready.get(timeout=60)
        sent = WARM_UP + ONE_CONNECTION + PER_ESTABLISHMENT * len(facilities)
        figures["stay_events_written"] = _records(settings, topics.stays)
        figures["archive_entries_written"] = _records(settings, topics.archive)
        figures["messages_sent"] = sent
        figures["gateway_messages_counted"] = counters.get("messages", 0)
        return figures
