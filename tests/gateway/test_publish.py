"""Engines publishing StayEvents themselves: the Python API and the JSON lines CLI write the same
records to the same topic as the gateway would, and refuse what does not fit."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.paths import PROJECT_ROOT
from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.gateway.intake import STAY_EVENT_SCHEMA
from services.gateway.publish import InvalidStayEvent, StayEventPublisher, from_json
from tests.common.test_serde import stay_event
from tests.gateway.support import read_topic
from tests.support import stack_env

pytestmark = pytest.mark.integration


def as_json(event: dict[str, Any]) -> str:
    return json.dumps(event, default=lambda value: value.isoformat(), ensure_ascii=False)


def test_json_timestamps_and_dates_become_the_schema_types() -> None:
    event = from_json(json.loads(as_json(stay_event("V1"))))
    assert event["received_at"] == dt.datetime(2026, 3, 2, 8, 15, 31, 250_000, tzinfo=dt.UTC)
    assert event["patient"]["birth_date"] == dt.date(1948, 7, 14)
    assert event["stay"]["discharged_at"] is None


def test_the_api_publishes_keyed_by_stay_key(
    stack: Settings, registry: SchemaRegistryClient, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(STAY_EVENT_SCHEMA)
    with StayEventPublisher(stack, "chrunancy", topic=topic) as publisher:
        publisher.publish(stay_event("V100"))
        publisher.publish(json.loads(as_json(stay_event("V101"))))
    records = read_topic(stack, topic, AvroSerde(registry, STAY_EVENT_SCHEMA), 2)
    assert sorted(key for key, _value in records) == ["chrunancy:V100", "chrunancy:V101"]
    assert {value["patient"]["family_name"] for _key, value in records} == {"Lefèvre"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"establishment": "toul"}, "establishment is 'toul'"),
        ({"stay_key": "chrunancy:OTHER"}, "stay_key must be"),
        ({"event_id": "toul:MSG-1"}, "event_id must start with chrunancy:"),
        ({"kind": "BIRTH"}, "StayEvent.kind"),
        ({"movement": {"movement_id": "M1"}}, "occurred_at"),
    ],
)
def test_the_api_refuses_an_event_that_does_not_fit(
    stack: Settings, change: dict[str, Any], reason: str
) -> None:
    publisher = StayEventPublisher(stack, "chrunancy")
    with pytest.raises(InvalidStayEvent, match=reason) as raised:
        publisher.check({**stay_event("V1"), **change})
    assert "Lefèvre" not in str(raised.value)


def run_cli(stack: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.gateway.publish", *args],
        cwd=PROJECT_ROOT,
        env=stack_env(stack),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_publishes_a_json_lines_file(
    stack: Settings,
    registry: SchemaRegistryClient,
    topic_factory: Callable[..., str],
    tmp_path: Path,
) -> None:
    topic = topic_factory(STAY_EVENT_SCHEMA)
    events = [stay_event(f"V{index}") for index in range(3)]
    for event in events:
        event["establishment"] = "toul"
        event["stay_key"] = event["stay_key"].replace("chrunancy", "toul")
        event["event_id"] = event["event_id"].replace("chrunancy", "toul")
        del event["received_at"]  # filled in on publishing
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(as_json(event) for event in events) + "\n\n", encoding="utf-8")
    done = run_cli(stack, "--establishment", "toul", "--topic", topic, str(source))
    assert done.returncode == 0, done.stderr
    assert f"published 3 stay events to {topic}" in done.stdout
    records = read_topic(stack, topic, AvroSerde(registry, STAY_EVENT_SCHEMA), 3)
    assert sorted(key for key, _value in records) == ["toul:V0", "toul:V1", "toul:V2"]


def test_the_cli_publishes_nothing_when_a_line_is_invalid(
    stack: Settings,
    registry: SchemaRegistryClient,
    topic_factory: Callable[..., str],
    tmp_path: Path,
) -> None:
    topic = topic_factory(STAY_EVENT_SCHEMA)
    naive = {**stay_event("V2"), "sent_at": "2026-03-02T08:15:30"}
    source = tmp_path / "events.jsonl"
    source.write_text(as_json(stay_event("V1")) + "\n" + as_json(naive) + "\n", encoding="utf-8")
    done = run_cli(stack, "--establishment", "chrunancy", "--topic", topic, str(source))
    assert done.returncode == 1
    assert f"{source}:2:" in done.stderr and "sent_at" in done.stderr
    assert read_topic(stack, topic, AvroSerde(registry, STAY_EVENT_SCHEMA), 1, timeout=3) == []
