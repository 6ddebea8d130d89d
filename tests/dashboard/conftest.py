"""Fixtures for the dashboard's tests: a fresh database with the tables it reads, rows written as
the analytics, notify and covid services write them, a consumer group that lags, and the
dashboard itself run as ``python -m services.dashboard``."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from services.common.db import apply_migrations
from services.common.paths import PROJECT_ROOT
from services.common.settings import Settings
from services.dashboard.overview import PARIS
from tests.dashboard.browser import browser, chromium  # noqa: F401  # fixtures
from tests.support import ServiceProcess, as_principal, eventually, free_port, stack_env

# The services whose tables the dashboard reads; their own migrations create them.
READ_FROM = ("analytics", "notify", "covid")


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A local time in France on ``day``."""
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PARIS)


def today() -> dt.date:
    return dt.datetime.now(PARIS).date()


class PlatformRows:
    """Writes rows the way the services do, with only the columns the dashboard cares about
    filled with meaning; the rest are plausible placeholders."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)

    def count(
        self,
        metric: str,
        window_start: dt.datetime,
        establishment: str,
        count: int,
        granularity: str = "HOUR",
        **dimensions: str,
    ) -> None:
        """An ``analytics_counts`` row: ``count`` for one window and set of dimensions."""
        length = dt.timedelta(hours=1 if granularity == "HOUR" else 24)
        self.conn.execute(
            "INSERT INTO analytics_counts (key, metric, granularity, window_start, window_end, "
            "establishment, event_kind, action, admission_mode, delivery_status, covid_status, "
            "count, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())",
            (
                uuid.uuid4().hex,
                metric,
                granularity,
                window_start,
                window_start + length,
                establishment,
                dimensions.get("event_kind"),
                dimensions.get("action"),
                dimensions.get("admission_mode"),
                dimensions.get("delivery_status"),
                dimensions.get("covid_status"),
                count,
            ),
        )

    def stays(
        self, at: dt.datetime, establishment: str, count: int, kind: str, action: str = "INSERT"
    ) -> None:
        mode = {"ADMISSION": "SCHEDULED"}.get(kind)
        self.count(
            "stay_events", at, establishment, count, event_kind=kind, action=action,
            **({"admission_mode": mode} if mode else {}),
        )  # fmt: skip

    def notification(
        self,
        establishment: str,
        state: str,
        created_at: dt.datetime,
        latency: dt.timedelta | None = None,
        message: str = "Votre patient(e) est sorti(e).",
        receipts: tuple[str, ...] = (),
    ) -> None:
        """A notice of notify's ledger; ``latency`` from receipt to the SMTP server's acceptance;
        ``receipts`` what came back from the platform's mailbox (delivered, read, bounced)."""
        received_at = created_at - dt.timedelta(milliseconds=50)
        came_back = created_at + dt.timedelta(minutes=1)
        self.conn.execute(
            "INSERT INTO notification (notification_id, event_id, stay_key, establishment, "
            "movement_key, kind, recipient_rpps, recipient_address, message_id, message, state, "
            "created_at, received_at, sent_at, delivered_at, read_at, bounced_at) "
            "VALUES (%s, %s, %s, %s, %s, 'DISCHARGE', '10001234567', "
            "'dr.martin@medecin.mssante.fr', %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                uuid.uuid4(),
                uuid.uuid4().hex,
                f"{establishment}:V{uuid.uuid4().hex[:6]}",
                establishment,
                uuid.uuid4().hex,
                f"<{uuid.uuid4().hex}@harpicoop>",
                message.encode(),
                state,
                created_at,
                received_at,
                received_at + latency if latency is not None else None,
                *(
                    came_back if what in receipts else None
                    for what in ("delivered", "read", "bounced")
                ),
            ),
        )

    def worklist(
        self,
        establishment: str,
        unit: str | None,
        reason: str,
        occurred_at: dt.datetime,
        event_id: str | None = None,
    ) -> None:
        """An entry of notify's worklist: an unroutable event's, or (BOUNCED, FAILED) a notice's
        whose chain ended."""
        notice = uuid.uuid4() if reason in ("BOUNCED", "FAILED") else None
        self.conn.execute(
            "INSERT INTO worklist (entry_id, establishment, unit, stay_key, event_id, "
            "notification_id, reason, detail, occurred_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 'ids only', %s)",
            (
                uuid.uuid4().hex,
                establishment,
                unit,
                f"{establishment}:V{uuid.uuid4().hex[:6]}",
                event_id or f"{establishment}:{uuid.uuid4().hex}",
                notice,
                reason,
                occurred_at,
            ),
        )

    def covid_case(
        self,
        establishment: str,
        state: str,
        opened_at: dt.datetime,
        patient: dict[str, Any] | None = None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO covid_case (case_id, stay_key, establishment, discharge_event_id, "
            "movement_key, identity_key, patient, covid_status, state, opened_at, discharged_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 'POSITIVE', %s, %s, %s)",
            (
                uuid.uuid4(),
                f"{establishment}:V{uuid.uuid4().hex[:6]}",
                establishment,
                uuid.uuid4().hex,
                uuid.uuid4().hex,
                uuid.uuid4().hex,
                json.dumps(patient or {}),
                state,
                opened_at,
                opened_at,
            ),
        )

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def platform_rows(empty_database: str) -> Iterator[PlatformRows]:
    """A fresh database with the analytics, notify and covid tables and the views they publish,
    each migrated by its owner as ``make up`` does; rows are written as the tests' role."""
    for service in READ_FROM:
        with psycopg.connect(as_principal(empty_database, service), autocommit=True) as conn:
            apply_migrations(conn, service, PROJECT_ROOT / "services" / service / "migrations")
    rows = PlatformRows(empty_database)
    yield rows
    rows.close()


@pytest.fixture
def lagging_group(
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
    group_factory: Callable[[], str],
) -> tuple[str, int]:
    """A consumer group that has read 2 of the 7 records of its topic: 5 behind."""
    topic = topic_factory(partitions=1)
    producer = producer_factory()
    for number in range(7):
        producer.produce(topic, key=str(number), value=b"x")
    producer.flush(10)
    group = group_factory()
    consumer_factory(group_id=group).commit(
        offsets=[TopicPartition(topic, 0, 2)], asynchronous=False
    )
    return group, 5


@dataclass
class Dashboard:
    url: str
    process: ServiceProcess

    def overview(self, day: str | None = None) -> httpx.Response:
        params = {"day": day} if day else {}
        return httpx.get(f"{self.url}api/overview", params=params, timeout=10)


@pytest.fixture
def dashboard_factory(
    stack: Settings, service_factory: Callable[..., ServiceProcess]
) -> Callable[..., Dashboard]:
    """``python -m services.dashboard`` on a free port, reading the given database; ready once
    it answers."""

    def start(database_url: str, **extra_env: str) -> Dashboard:
        port = free_port()
        env = stack_env(
            stack,
            DATABASE_URL=database_url,
            DASHBOARD_PORT=str(port),
            DASHBOARD_REFRESH_SECONDS="1",
            DASHBOARD_LAG_SECONDS="0.5",
            **extra_env,
        )
        dashboard = Dashboard(f"http://127.0.0.1:{port}/", service_factory("dashboard", env, {}))

        def answers() -> bool:
            try:
                return dashboard.overview().status_code in (200, 503)
            except httpx.TransportError:
                return False

        eventually(answers, timeout=30, what="the dashboard answering")
        return dashboard

    return start
