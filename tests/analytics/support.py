"""What the analytics tests and benchmark share: the records they send, the worker's environment,
and reading back the counts it published."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from confluent_kafka import Consumer, Message
from confluent_kafka.admin import AdminClient
from psycopg.rows import dict_row

from services.analytics.counting import DIMENSIONS
from services.common.serde import AvroSerde
from services.common.settings import Settings
from tests.common.test_serde import stay_event
from tests.support import stack_env

Row = tuple[str, str, dt.datetime, str, frozenset[tuple[str, str]]]
"""metric, granularity, window start, establishment, dimensions: what a count is of."""


def stay(
    establishment: str,
    visit: str,
    number: int,
    at: dt.datetime,
    *,
    kind: str = "ADMISSION",
    action: str = "INSERT",
    mode: str = "EMERGENCY",
    covid: str = "UNKNOWN",
    movement: str | None = None,
) -> dict[str, Any]:
    """A stay event of ``establishment`` that happened ``at``, message ``MSG<number>``, received
    ``number`` seconds after it; of movement ``MVT<number>`` unless it acts upon another."""
    event = stay_event(visit)
    event.update(
        event_id=f"{establishment}:MSG{number}",
        establishment=establishment,
        stay_key=f"{establishment}:{visit}",
        kind=kind,
        action=action,
        message_control_id=f"MSG{number}",
        covid_status=covid,
    )
    event["movement"] = {
        **event["movement"],
        "movement_id": movement or f"MVT{number}",
        "occurred_at": at,
    }
    event["received_at"] = at + dt.timedelta(seconds=number)
    event["stay"] = {**event["stay"], "admission_mode": mode}
    return event


def enriched(event: dict[str, Any]) -> dict[str, Any]:
    return {"event": event, "recipients": [], "enriched_at": event["received_at"]}


def unroutable(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": event,
        "reason": "NO_GP",
        "gp_rpps": None,
        "detail": f"{event['event_id']}: no ROL ODRP",
        "detected_at": event["received_at"],
    }


def status(
    notification_id: str, establishment: str, value: str, at: dt.datetime, attempt: int = 1
) -> dict[str, Any]:
    """One delivery step of notice ``notification_id``, as notify publishes it."""
    return {
        "notification_id": notification_id,
        "event_id": f"{establishment}:MSG-{notification_id}",
        "stay_key": f"{establishment}:V-{notification_id}",
        "establishment": establishment,
        "kind": "ADMISSION",
        "recipient_rpps": "10101010101",
        "recipient_address": "jeanne.martin@medecin.mssante.fr",
        "status": value,
        "attempt": attempt,
        "smtp_code": 250 if value == "SENT" else None,
        "detail": None,
        "message_id": None,
        "at": at,
    }


def analytics_env(
    settings: Settings, topics: Mapping[str, str], group: str, database_url: str, **extra: str
) -> dict[str, str]:
    """The worker's environment for these ``topics`` (by ``ANALYTICS_<NAME>_TOPIC`` name)."""
    return stack_env(
        settings,
        DATABASE_URL=database_url,
        ANALYTICS_GROUP_ID=group,
        ANALYTICS_SQL_GROUP_ID=f"{group}-sql",
        **{f"ANALYTICS_{name.upper()}_TOPIC": topic for name, topic in topics.items()},
        **extra,
    )


def delete_internal_topics(admin: AdminClient, group: str) -> None:
    """The topics faust made for the worker (observations, changelogs)."""
    internal = [
        name for name in admin.list_topics(timeout=10).topics if name.startswith(f"{group}-")
    ]
    if internal:
        for future in admin.delete_topics(internal, operation_timeout=10).values():
            future.result()


def row_of(value: Mapping[str, Any]) -> Row:
    dimensions = {name: value[name] for name in DIMENSIONS if value[name] is not None}
    return (
        value["metric"],
        value["granularity"],
        value["window_start"],
        value["establishment"],
        frozenset(dimensions.items()),
    )


def sql_counts(database_url: str) -> dict[Row, int]:
    """The counts of the PostgreSQL mirror (none before it has made its table)."""
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        try:
            rows = conn.execute("SELECT * FROM analytics_counts").fetchall()
        except psycopg.errors.UndefinedTable:
            return {}
    return {row_of(row): row["count"] for row in rows}


def total(counts: Mapping[Row, int], metric: str, granularity: str) -> int:
    return sum(count for row, count in counts.items() if row[:2] == (metric, granularity))


class Published:
    """The latest record of each key of the analytics topics, read from their beginning."""

    def __init__(self, consumer: Consumer, serde: AvroSerde) -> None:
        self.consumer = consumer
        self.serde = serde
        self.latest: dict[bytes, Message] = {}
        self.decoded: dict[bytes, tuple[str, dict[str, Any]]] = {}
        self.records = 0

    def read(self) -> Published:
        for message in self.consumer.consume(1000, timeout=0.5):
            if message.error() is None:
                key, topic = message.key() or b"", str(message.topic())
                self.latest[key] = message
                self.decoded[key] = (topic, self.serde.deserialize(topic, message.value() or b""))
                self.records += 1
        return self

    def values(self) -> Iterable[tuple[str, dict[str, Any]]]:
        return self.decoded.values()

    def counts(self) -> dict[Row, int]:
        return {row_of(value): value["count"] for _topic, value in self.values()}
