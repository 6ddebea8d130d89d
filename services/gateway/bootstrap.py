"""Wiring: the gateway built from the settings (Kafka producer, registry, establishments, Covid
table, MLLP server), and its run until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import structlog

from services.common.establishments import establishments_by_client_cn, establishments_by_facility
from services.common.kafka import make_producer
from services.common.observability import ObservabilityServer, metrics_port
from services.common.ports import local_port
from services.common.records import PatientMerge, RawMessage, StayEvent
from services.common.serde import make_registry_client
from services.common.settings import Settings, read_config
from services.gateway.covid import load_covid_mapping
from services.gateway.handler import MessageHandler, Topics, utc_now
from services.gateway.intake import IntakeRules
from services.gateway.kafka_writer import KafkaWriter
from services.gateway.limits import RefusedArchiveBudget
from services.gateway.server import MllpServer, ServerLimits
from services.gateway.tls import ClientBinding, MllpTls

log = structlog.get_logger("gateway")


@dataclass(frozen=True)
class GatewayConfig:
    host: str = "0.0.0.0"
    port: int = local_port(2575)
    topics: Topics = field(default_factory=Topics)
    limits: ServerLimits = field(default_factory=ServerLimits)
    refused_budget: RefusedArchiveBudget = field(default_factory=RefusedArchiveBudget)
    ack_timeout: float = 20.0
    """Seconds to wait for Kafka's confirmation before closing without an ACK; engines
    commonly wait 30 to 60 seconds for one."""
    timezone: str = "Europe/Paris"
    """Of HL7 timestamps sent without an offset."""
    tls: MllpTls = field(default_factory=MllpTls)

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayConfig:
        return cls(
            host=settings.mllp_host,
            port=settings.mllp_port,
            limits=read_config(ServerLimits),
            refused_budget=read_config(RefusedArchiveBudget),
            tls=MllpTls.from_env(),
        )


class Gateway:
    """The MLLP server and its Kafka writer, started and stopped together."""

    def __init__(
        self,
        server: MllpServer,
        writer: KafkaWriter,
        config: GatewayConfig,
        counters: Counter[str],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.server = server
        self.writer = writer
        self.config = config
        self.counters = counters
        self.tls = tls

    async def start(self) -> None:
        self.writer.start()
        await self.server.start(self.config.host, self.config.port, self.tls)
        log.info(
            "gateway listening",
            host=self.config.host,
            port=self.server.port,
            tls=self.config.tls.enabled,
        )

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        await self.server.stop()
        left = await asyncio.to_thread(self.writer.close)
        log.info("gateway stopped", undelivered=left, counters=dict(self.counters))


def build_gateway(
    settings: Settings,
    config: GatewayConfig,
    clock: Callable[[], dt.datetime] = utc_now,
) -> Gateway:
    """``clock`` gives each message's receipt time, from which its dates are judged. Raises
    ``SettingsError`` when TLS is on and its files are not there."""
    tls = config.tls.server_context()
    if tls is None:
        log.warning("MLLP_TLS=off: listening in clear, any client may speak for any establishment")
    # Each ACK waits for its write: a short linger keeps one connection's round trip short,
    # while concurrent connections still share batches.
    producer = make_producer(settings, "harpicoop-gateway", **{"linger.ms": 1})
    writer = KafkaWriter(
        producer,
        make_registry_client(settings),
        [StayEvent, PatientMerge, RawMessage],
    )
    rules = IntakeRules(
        establishments_by_facility(), load_covid_mapping(), ZoneInfo(config.timezone)
    )
    counters: Counter[str] = Counter()
    handler = MessageHandler(
        writer,
        rules,
        config.topics,
        counters,
        ack_timeout=config.ack_timeout,
        max_frame_bytes=config.limits.max_frame_bytes,
        refused_budget=config.refused_budget,
        clock=clock,
    )
    clients = ClientBinding(establishments_by_client_cn()) if tls else None
    server = MllpServer(handler, config.limits, counters, clients)
    return Gateway(server, writer, config, counters, tls)


async def serve(settings: Settings, config: GatewayConfig) -> None:
    gateway = build_gateway(settings, config)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await gateway.start()
    observability = ObservabilityServer(
        "gateway",
        metrics_port("gateway"),
        {"listening": lambda: gateway.port > 0 and not stopping.is_set()},
    ).start()
    log.info("observability endpoint", port=observability.port)
    await stopping.wait()
    await gateway.stop()
    observability.stop()
