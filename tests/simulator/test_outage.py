"""An engine through a broker outage behind the real gateway: no ACK comes in time, so the engine
sends the same message again (same MSH-10) on fresh connections until the broker is back, and
then every message of its day is accepted and written. Runs against a throwaway broker."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.kafka import make_admin
from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.gateway.bootstrap import GatewayConfig
from services.gateway.intake import STAY_EVENT_SCHEMA
from services.simulator.app import outbound, plan_day
from services.simulator.engine import Engine, EngineSettings, Pacer
from services.simulator.scenario import DayConfig
from services.simulator.stats import EngineStats
from services.stack.components import Kafka
from tests.conftest import on_broker, unique
from tests.gateway.support import read_topic, running_gateway, session_pki
from tests.simulator.conftest import MONDAY
from tests.simulator.support import create_simulator_topics

pytestmark = pytest.mark.integration


async def until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def test_an_engine_resends_through_a_broker_outage_and_loses_nothing(
    stack: Settings, registry: SchemaRegistryClient, private_kafka: Kafka
) -> None:
    settings = on_broker(stack, private_kafka)
    topics, _ = create_simulator_topics(make_admin(settings), registry, unique("test-sim-outage"))
    plan = plan_day(DayConfig(MONDAY, seed="outage", rate=0.3, ack_lost_share=0.0), ["toul"])
    messages = outbound(plan)["toul"][:6]
    # Two messages at once, four more a second later, once the broker is down.
    start = messages[0].sent_at
    paced = [
        dataclasses.replace(item, sent_at=start + dt.timedelta(seconds=0 if index < 2 else 1))
        for index, item in enumerate(messages)
    ]
    stats = EngineStats("toul", len(paced))
    # The engine waits less for its ACK than the gateway waits for the broker: it times out.
    config = GatewayConfig(host="127.0.0.1", port=0, topics=topics, ack_timeout=5.0)

    async def outage() -> None:
        with running_gateway(settings, config) as gateway:
            engine_settings = EngineSettings(
                "127.0.0.1",
                gateway.port,
                ack_timeout=1.0,
                retry_pause=0.2,
                max_pause=1.0,
                tls=session_pki().folder,
            )
            engine = Engine("toul", paced, engine_settings, Pacer(start, 1.0), stats)
            task = asyncio.create_task(engine.run())
            await until(lambda: stats.acked >= 2)
            await asyncio.to_thread(private_kafka.stop)
            await until(lambda: stats.timeouts >= 2)
            await asyncio.to_thread(private_kafka.start)
            await asyncio.to_thread(private_kafka.wait_healthy)
            await asyncio.wait_for(task, 120)

    asyncio.run(outage())

    assert (stats.acked, stats.given_up, stats.rejected) == (6, 0, 0)
    assert stats.timeouts >= 2 and stats.resent >= 2 and stats.connects >= 2
    expected = {f"toul:{item.control_id}" for item in paced}

    def arrived(records: list[tuple[str, dict[str, Any]]]) -> set[str]:
        return {value["event_id"] for _, value in records}

    serde = AvroSerde(registry, STAY_EVENT_SCHEMA)
    stays = topics.stays.format(establishment="toul")
    records = read_topic(settings, stays, serde, lambda records: arrived(records) >= expected)
    # Every message is there; one sent during the outage may be there twice, none is lost.
    assert arrived(records) == expected
