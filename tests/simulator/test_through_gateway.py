"""The simulator's engines against the real gateway, writing into the real broker: a simulated day
reaches every establishment's raw topic, a refused message is sent again under the same id, a
lost ACK makes a duplicate, and an engine reconnects when the gateway restarts."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.establishments import load_establishments
from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.gateway.bootstrap import Gateway, GatewayConfig
from services.gateway.handler import Topics
from services.gateway.intake import RAW_MESSAGE_SCHEMA, STAY_EVENT_SCHEMA
from services.simulator.app import Plan, outbound, plan_day, send_day
from services.simulator.engine import Engine, EngineSettings, Outbound, Pacer
from services.simulator.hl7 import message_bytes
from services.simulator.profiles import Profile
from services.simulator.scenario import DayConfig
from services.simulator.stats import EngineStats
from tests.conftest import unique
from tests.gateway.support import read_topic, running_gateway, session_pki
from tests.simulator.conftest import MONDAY
from tests.simulator.support import create_simulator_topics

pytestmark = pytest.mark.integration

CODES = {item.code for item in load_establishments()}


@dataclasses.dataclass(frozen=True)
class SimulatorTopics:
    topics: Topics

    def stays(self, code: str) -> str:
        return self.topics.stays.format(establishment=code)


@pytest.fixture(scope="module")
def simulator_topics(
    admin: AdminClient, registry: SchemaRegistryClient
) -> Iterator[SimulatorTopics]:
    """Eleven fresh raw topics and the gateway's own, shared by this module's tests, which
    send distinct message ids."""
    topics, names = create_simulator_topics(admin, registry, unique("test-sim"))
    yield SimulatorTopics(topics)
    for future in admin.delete_topics(names, operation_timeout=10).values():
        future.result()


@pytest.fixture
def gateway(stack: Settings, simulator_topics: SimulatorTopics) -> Iterator[Gateway]:
    config = GatewayConfig(host="127.0.0.1", port=0, topics=simulator_topics.topics)
    with running_gateway(stack, config) as running:
        yield running


@pytest.fixture
def stay_serde(serde_factory: Callable[[str], AvroSerde]) -> AvroSerde:
    return serde_factory(STAY_EVENT_SCHEMA)


def engine_settings(port: int) -> EngineSettings:
    return EngineSettings(
        "127.0.0.1",
        port,
        ack_timeout=30.0,
        retry_pause=0.05,
        max_pause=0.5,
        tls=session_pki().folder,
    )


def test_a_simulated_day_reaches_every_establishment_topic(
    stack: Settings, gateway: Gateway, simulator_topics: SimulatorTopics, stay_serde: AvroSerde
) -> None:
    config = DayConfig(MONDAY, seed="through-gateway", rate=0.04, ack_lost_share=0.1)
    plan = plan_day(config)
    assert set(plan.day.messages) == CODES and len(CODES) == 11
    stats: list[EngineStats] = []

    asyncio.run(send_day(plan, engine_settings(gateway.port), speed=None, stats=stats))

    by_code = {item.establishment: item for item in stats}
    for code, messages in plan.day.messages.items():
        engine = by_code[code]
        lost = sum(1 for item in messages if item.ack_lost)
        assert (engine.acked, engine.rejected, engine.given_up) == (len(messages), 0, 0)
        assert engine.resent == lost
        # Every send was written before its AA: a message whose ACK was lost is there twice.
        expected = len(messages) + lost
        records = read_topic(stack, simulator_topics.stays(code), stay_serde, expected)
        event_ids = Counter(value["event_id"] for _, value in records)
        assert sum(event_ids.values()) == expected
        assert set(event_ids) == {f"{code}:{item.control_id}" for item in messages}
        assert sum(1 for count in event_ids.values() if count == 2) == lost
        assert {key for key, _ in records} == {item.stay_key for item in messages}


def one_establishment(code: str, seed: str) -> tuple[Plan, Profile, list[Outbound]]:
    plan = plan_day(DayConfig(MONDAY, seed=seed, rate=0.3, ack_lost_share=0.0), [code])
    return plan, plan.profiles[0], outbound(plan)[code]


def test_a_refused_message_is_sent_again_under_the_same_id_then_given_up(
    stack: Settings,
    simulator_topics: SimulatorTopics,
    topic_factory: Callable[..., str],
    serde_factory: Callable[[str], AvroSerde],
) -> None:
    plan, profile, _ = one_establishment("toul", "refused")
    # No visit number: the gateway answers AE (a required field is missing).
    sound = plan.day.messages["toul"][0]
    broken = dataclasses.replace(sound, visit=dataclasses.replace(sound.visit, visit_number=""))
    message = Outbound(
        broken.control_id, broken.trigger, broken.sent_at, message_bytes(broken, profile)
    )
    stats = EngineStats("toul", 1)
    archive = topic_factory(RAW_MESSAGE_SCHEMA)
    topics = dataclasses.replace(simulator_topics.topics, archive=archive)

    with running_gateway(stack, GatewayConfig(host="127.0.0.1", port=0, topics=topics)) as gateway:
        settings = dataclasses.replace(engine_settings(gateway.port), max_refusals=3)
        asyncio.run(Engine("toul", [message], settings, Pacer(broken.sent_at, None), stats).run())

    assert stats.ack_codes == Counter({"AE": 3})
    assert (stats.sent, stats.resent, stats.given_up, stats.acked) == (3, 2, 1, 0)
    kept = read_topic(stack, archive, serde_factory(RAW_MESSAGE_SCHEMA), 3)
    assert [value["message_control_id"] for _, value in kept] == [broken.control_id] * 3
    assert {value["ack_code"] for _, value in kept} == {"AE"}


def test_an_engine_reconnects_when_the_gateway_restarts_and_loses_nothing(
    stack: Settings,
    simulator_topics: SimulatorTopics,
    topic_factory: Callable[..., str],
    stay_serde: AvroSerde,
) -> None:
    _, _, messages = one_establishment("pam", "restart")
    messages = messages[:10]
    # Five messages at once, then five more three seconds later: the gateway restarts between.
    start = messages[0].sent_at
    paced = [
        dataclasses.replace(item, sent_at=start + dt.timedelta(seconds=0 if index < 5 else 3))
        for index, item in enumerate(messages)
    ]
    stats = EngineStats("pam", len(paced))
    stays = topic_factory(STAY_EVENT_SCHEMA)
    topics = dataclasses.replace(simulator_topics.topics, stays=stays)
    config = GatewayConfig(host="127.0.0.1", port=0, topics=topics)

    async def scenario() -> None:
        with running_gateway(stack, config) as first:
            port = first.port
            engine = Engine("pam", paced, engine_settings(port), Pacer(start, 1.0), stats)
            task = asyncio.create_task(engine.run())
            while stats.acked < 5:
                await asyncio.sleep(0.05)
        # The first gateway is gone, taking the engine's connection with it.
        restarted = dataclasses.replace(config, port=port)
        with running_gateway(stack, restarted):
            await asyncio.wait_for(task, 60)

    asyncio.run(scenario())

    assert stats.acked == 10 and stats.given_up == 0
    assert stats.connects >= 2
    records = read_topic(stack, stays, stay_serde, 10)
    assert {value["event_id"] for _, value in records} == {
        f"pam:{item.control_id}" for item in paced
    }
