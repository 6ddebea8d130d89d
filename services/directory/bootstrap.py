"""Builds the directory from its settings: the one place where its collaborators are chosen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.common import outbox
from services.common.db import connect
from services.common.kafka import make_producer
from services.common.logging import get_logger
from services.common.records import Practitioner
from services.common.serde import RecordSerde, make_registry_client
from services.common.settings import Settings
from services.directory.publisher import OUTBOX_OWNER, PractitionerPublisher
from services.directory.store import DirectoryStore, migrate

PRACTITIONERS_TOPIC = "practitioners"
PRACTITIONER_SCHEMA = Practitioner.SCHEMA


@dataclass
class Directory:
    store: DirectoryStore
    publisher: PractitionerPublisher

    def close(self) -> None:
        self.publisher.relay.producer.flush(10)
        self.store.conn.close()


def build(
    settings: Settings,
    *,
    topic: str = PRACTITIONERS_TOPIC,
    client_id: str = "directory",
    producer_overrides: Mapping[str, Any] | None = None,
) -> Directory:
    """A connected directory with its tables migrated, publishing to ``topic``; the producer
    settings may be overridden (shorter delivery timeouts, for instance)."""
    conn = connect(settings, autocommit=True)
    outbox.migrate(conn)
    migrate(conn)
    relay = outbox.OutboxRelay(
        conn,
        make_producer(settings, client_id, **(producer_overrides or {})),
        OUTBOX_OWNER,
        get_logger(service="directory"),
    )
    serde = RecordSerde(make_registry_client(settings), Practitioner)
    return Directory(DirectoryStore(conn), PractitionerPublisher(conn, serde, topic, relay))
