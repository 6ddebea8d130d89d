"""What mutual TLS costs the gateway: the same PAM FR messages, as many, over eleven concurrent
engine connections (one per establishment), once to a gateway requiring each establishment's
client certificate and once to a gateway started with MLLP_TLS=off; ACKs per second, ACK round
trip p50/p99 and the median connection set-up (TCP connect, plus the handshake under TLS), side
by side.

Each round has its own gateway process and fresh topics; the rounds run tls, clear, clear, tls,
so a change in the machine's other load over the run weighs on both modes alike.

    python -m tests.bench gateway_tls
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from services.cli.hops import percentile
from services.common.establishments import load_establishments
from services.common.settings import Settings
from services.gateway.tls import MllpTls
from tests.bench.bench_gateway import (
    WARM_UP,
    _engine,
    _handshakes,
    _messages,
    _records,
    gateway_process,
)
from tests.gateway.support import gateway_tls

# 11 x 91 messages a round, two rounds a mode: 2,002 messages a mode, well under a minute for
# both modes on a loaded two-core machine.
PER_ESTABLISHMENT = 91
CONNECTIONS_TIMED = 50
# tls, clear, clear, tls: whatever the machine's other load does over the run falls on both.
ROUNDS = [("tls", True), ("clear", False), ("clear", False), ("tls", True)]


@dataclass
class Measured:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    connects: list[float] = field(default_factory=list)
    sent: int = 0
    written: int = 0


def _round(settings: Settings, tls: bool, prefix: str, into: Measured) -> None:
    with gateway_process(settings, gateway_tls() if tls else MllpTls(mode="off")) as gateway:
        port, topics, ready, stop = gateway.port, gateway.topics, gateway.ready, gateway.stop
        establishments = load_establishments()
        first = establishments[0]
        _engine(port, first.code, _messages(first.sending_facility, WARM_UP, f"W{prefix}"), tls)
        into.connects += _handshakes(port, first.code, CONNECTIONS_TIMED, tls)

        batches = [
            _messages(item.sending_facility, PER_ESTABLISHMENT, prefix) for item in establishments
        ]
        started = time.perf_counter()
        with ThreadPoolExecutor(len(batches)) as pool:
            results = list(
                pool.map(
                    lambda code, batch: _engine(port, code, batch, tls),
                    [item.code for item in establishments],
                    batches,
                )
            )
        into.seconds += time.perf_counter() - started
        into.latencies += [latency for result in results for latency in result]
        into.sent += WARM_UP + PER_ESTABLISHMENT * len(establishments)
        stop.set()
        ready.get(timeout=60)
        into.written += _records(settings, topics.stays)


def run(settings: Settings) -> dict[str, Any]:
    measured = {name: Measured() for name, _ in dict(ROUNDS).items()}
    for number, (name, tls) in enumerate(ROUNDS):
        _round(settings, tls, f"{name[0].upper()}{number}", measured[name])
    figures: dict[str, Any] = {"connections": len(load_establishments())}
    for name, result in measured.items():
        latencies = result.latencies
        figures |= {
            f"{name}_messages": len(latencies),
            f"{name}_acked_per_s": round(len(latencies) / result.seconds),
            f"{name}_p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            f"{name}_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
            f"{name}_connect_p50_ms": round(statistics.median(result.connects) * 1000, 2),
            f"{name}_sent_with_warm_up": result.sent,
            f"{name}_stay_events_written": result.written,
        }
    figures["tls_over_clear_acked_ratio"] = round(
        figures["tls_acked_per_s"] / figures["clear_acked_per_s"], 3
    )
    # The gateway's benchmarks give no Kafka produce rate of their own; serde's
    # produce_acks_all_per_s is the raw figure, from its own run.
    return figures
