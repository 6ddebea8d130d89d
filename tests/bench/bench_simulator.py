"""The simulator's cost and pace: building and rendering a typical Monday of the eleven
establishments, then sending it as fast as the gateway acknowledges (eleven connections, one
message at a time each), through a gateway in this process into fresh topics of the broker."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

from services.common.kafka import make_admin
from services.common.serde import make_registry_client
from services.common.settings import Settings
from services.gateway.bootstrap import GatewayConfig
from services.simulator.app import outbound, plan_day, send_day
from services.simulator.engine import EngineSettings
from services.simulator.scenario import DayConfig
from services.simulator.stats import EngineStats
from tests.gateway.support import running_gateway, session_pki
from tests.simulator.support import create_simulator_topics

MONDAY = dt.date(2026, 3, 2)


def run(settings: Settings) -> dict[str, Any]:
    started = time.perf_counter()
    plan = plan_day(DayConfig(MONDAY, seed="bench"))
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    wire = outbound(plan)
    render_seconds = time.perf_counter() - started
    messages = sum(len(items) for items in wire.values())

    admin = make_admin(settings)
    topics, names = create_simulator_topics(
        admin, make_registry_client(settings), f"bench-simulator-{uuid.uuid4().hex[:8]}", 3
    )
    stats: list[EngineStats] = []
    try:
        config = GatewayConfig(host="127.0.0.1", port=0, topics=topics)
        with running_gateway(settings, config) as gateway:
            engines = EngineSettings(
                "127.0.0.1", gateway.port, ack_timeout=30.0, tls=session_pki().folder
            )
            started = time.perf_counter()
            asyncio.run(send_day(plan, engines, speed=None, stats=stats))
            send_seconds = time.perf_counter() - started
    finally:
        admin.delete_topics(names, operation_timeout=30)
    acked = sum(item.acked for item in stats)
    largest = max(stats, key=lambda item: item.messages)
    return {
        "messages": messages,
        "build_day_per_s": round(messages / build_seconds),
        "render_per_s": round(messages / render_seconds),
        "acked": acked,
        "sent": sum(item.sent for item in stats),
        "acked_per_s_eleven_connections": round(acked / send_seconds),
        "day_sent_seconds": round(send_seconds, 1),
        "largest_establishment": largest.establishment,
        "largest_establishment_messages": largest.messages,
    }
