"""Notify's ledger and delivery worker as the service builds them, on a fresh database and
fresh topics of the test's own."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common import outbox
from services.common.db import apply_migrations, connect
from services.common.deadletter import DeadLetters
from services.common.records import NotificationStatus
from services.common.serde import AvroSerde, RecordSerde
from services.common.settings import Settings
from services.notify.config import NotifyConfig
from services.notify.delivery import DeliveryWorker
from services.notify.service import MIGRATIONS
from services.notify.smtp import SmtpSender
from services.notify.status import StatusRecorder
from tests.support import MailServer, as_principal


@pytest.fixture
def ledger_conn(empty_database: str) -> Iterator[outbox.Conn]:
    """The notify ledger in a fresh PostgreSQL database, migrated as the service does at start,
    so claims, outcomes and their statuses are the real SQL (autocommit, as a worker's is)."""
    # As notify itself: its objects land in its schema, where the operator's resend names them.
    with connect(as_principal(empty_database, "notify"), autocommit=True) as conn:
        outbox.migrate(conn)
        apply_migrations(conn, "notify", MIGRATIONS)
        yield conn


@pytest.fixture
def dead_letter_topic(topic_factory: Callable[..., str]) -> str:
    """A fresh dead-letter topic of the test's own: the records read back are this test's."""
    return topic_factory()


@pytest.fixture
def worker(
    stack: Settings,
    mail_server: MailServer,
    ledger_conn: outbox.Conn,
    dead_letter_topic: str,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    registry: SchemaRegistryClient,
) -> DeliveryWorker:
    """The worker as the service builds it: the real SmtpSender pointed at ``mail_server`` (an
    SMTP server writing one .eml per accepted message), dead letters produced to Kafka, and
    statuses serialised against the registry for a fresh status topic."""
    settings = dataclasses.replace(
        stack, smtp_host="localhost", smtp_port=mail_server.port, smtp_security="none"
    )
    status_topic = topic_factory("harpicoop.NotificationStatus")
    return DeliveryWorker(
        config=NotifyConfig(),
        sender_address=settings.smtp_from,
        conn=ledger_conn,
        smtp=SmtpSender(settings),
        dead_letters=DeadLetters(producer_factory(), "notify", dead_letter_topic),
        statuses=StatusRecorder(RecordSerde(registry, NotificationStatus), status_topic),
        log=structlog.get_logger(),
    )


@pytest.fixture
def publish(
    producer_factory: Callable[..., Producer], serde_factory: Callable[[str], AvroSerde]
) -> Callable[[str, dict[str, Any]], None]:
    """Publish an enriched stay event as enrich does: keyed by its stay, so one stay's events
    are read in order."""
    producer = producer_factory()
    serde = serde_factory("harpicoop.EnrichedStayEvent")

    def send(topic: str, value: dict[str, Any]) -> None:
        producer.produce(topic, key=value["event"]["stay_key"], value=serde.serialize(topic, value))
        assert producer.flush(10) == 0

    return send
