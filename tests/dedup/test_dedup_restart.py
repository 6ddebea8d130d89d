"""Killing the dedup worker mid-stream loses nothing and lets no duplicate through.

The worker is killed with SIGKILL twice while it works through a backlog, and restarted each
time with nothing of its former self but its name: its claims are in memory only, so each
restart rebuilds them from the changelog topic alone (as a worker taking the partitions over on
another machine would). Batches are kept to five records, so that the backlog takes hundreds of
transactions and each kill falls mid-stream, most likely with one open: its outputs, claims and
offsets are aborted together and its records processed again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.kafka import make_producer
from services.common.serde import AvroSerde
from services.common.settings import Settings
from tests.dedup.support import (
    BASE_TIME,
    collect,
    decoded,
    event,
    once_per_source,
    private_topics,
    produce_events,
    reader,
)
from tests.support import ServiceProcess, stack_env

pytestmark = pytest.mark.integration

STAYS = 150
MOVEMENTS = 8


def backlog() -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Every stay's movements, with resends and repeated movements among them; and what must
    come out: each stay's unique events, in order."""
    sent: list[dict[str, Any]] = []
    expected: dict[str, list[str]] = {}
    for stay in range(STAYS):
        establishment = "alpha" if stay % 2 else "beta"
        visit = f"V{stay:04}"
        for step in range(MOVEMENTS):
            value = event(
                establishment,
                visit,
                f"S{stay}-{step}",
                f"S{stay}-MVT{step}",
                kind="TRANSFER",
                trigger="A02",
                received_at=BASE_TIME + dt.timedelta(minutes=step),
            )
            sent.append(value)
            expected.setdefault(value["stay_key"], []).append(value["event_id"])
            if step % 3 == 1:
                sent.append(value)  # resent as is
            if step % 4 == 2:
                repeated = f"S{stay}-{step}-again"
                sent.append({**value, "message_control_id": repeated, "event_id": repeated})
    return sent, expected


def test_a_killed_worker_restarts_without_losing_or_repeating_an_event(
    stack: Settings,
    admin: AdminClient,
    registry: SchemaRegistryClient,
    service_factory: Callable[..., ServiceProcess],
) -> None:
    sent, expected = backlog()
    total = sum(map(len, expected.values()))
    serde = AvroSerde(registry, "harpicoop.StayEvent")
    producer = make_producer(stack, "test-dedup-restart")
    with private_topics(admin, registry) as topics:
        raw = {
            code: topics.create(f"stays.raw.{code}", "harpicoop.StayEvent")
            for code in ("alpha", "beta")
        }
        unique = topics.create("stays.unique", "harpicoop.StayEvent")
        env = stack_env(
            stack,
            DEDUP_INPUT_PATTERN=rf"{topics.prefix}\.stays\.raw\..+",
            DEDUP_OUTPUT_TOPIC=unique,
            DEDUP_DEADLETTER_TOPIC=topics.create("deadletter.dedup"),
            DEDUP_GROUP_ID=f"{topics.prefix}-dedup",
            DEDUP_BATCH_SIZE="5",
        )
        produce_by_establishment(producer, serde, raw, sent)
        output = reader(stack, unique)
        received: list[Message] = []

        def at_least(count: int) -> Callable[[list[Message]], bool]:
            return lambda got: len(received) + len(got) >= count

        started: list[ServiceProcess] = []
        try:
            started.append(service_factory("dedup", env, {}))
            received += collect(output, at_least(total // 4))
            started[-1].kill()

            started.append(service_factory("dedup", env, {}))
            received += collect(output, at_least(len(received) + total // 4))
            started[-1].kill()

            started.append(service_factory("dedup", env, {}))
            received += collect(output, at_least(total))
            # Resent again after all this, each followed in its stay by a new last event.
            late = []
            for value in sent[:: MOVEMENTS * 7]:
                closing = event(
                    value["establishment"],
                    value["stay"]["visit_number"],
                    f"{value['message_control_id']}-closing",
                    f"{value['movement']['movement_id']}-closing",
                    kind="DISCHARGE",
                    trigger="A03",
                    received_at=BASE_TIME + dt.timedelta(hours=2),
                )
                late += [value, closing]
                expected[value["stay_key"]].append(closing["event_id"])
            produce_by_establishment(producer, serde, raw, late)
            received += collect(output, at_least(total + len(late) // 2), settle=3.0)
        finally:
            # Stopped before their topics go; the fixture would stop them only afterwards.
            for service in started:
                service.stop()
            output.close()

    by_stay: dict[str, list[str]] = {}
    for value in decoded(serde, once_per_source(received)):
        by_stay.setdefault(value["stay_key"], []).append(value["event_id"])
    wrong = [
        f"{stay}: got {by_stay.get(stay)}, expected {events}"
        for stay, events in expected.items()
        if by_stay.get(stay) != events
    ]
    assert not wrong, "\n".join(wrong)
    assert by_stay.keys() == expected.keys()


def produce_by_establishment(
    producer: Producer, serde: AvroSerde, raw: dict[str, str], values: list[dict[str, Any]]
) -> None:
    for code, topic in raw.items():
        produce_events(producer, serde, topic, [v for v in values if v["establishment"] == code])
