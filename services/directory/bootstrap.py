"""Builds the directory from its settings: the one place where its collaborators are chosen."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.db import connect
from services.common.kafka import make_producer
from services.common.serde import AvroSerde, make_registry_client
from services.common.settings import Settings
from services.directory.publisher import PractitionerPublisher
from services.directory.store import DirectoryStore, migrate

PRACTITIONERS_TOPIC = "practitioners"
PRACTITIONER_SCHEMA = "harpicoop.Practitioner"


@dataclass
class Directory:
    store: DirectoryStore
    publisher: PractitionerPublisher

    def close(self) -> None:
        self.publisher.producer.flush(10)
        self.store.conn.close()


def build(
    settings: Settings, *, topic: str = PRACTITIONERS_TOPIC, client_id: str = "directory"
) -> Directory:
    """A connected directory with its tables migrated, publishing to ``topic``."""
    conn = connect(settings, autocommit=True)
    migrate(conn)
    serde = AvroSerde(make_registry_client(settings), PRACTITIONER_SCHEMA)
    publisher = PractitionerPublisher(make_producer(settings, client_id), serde, topic)
    return Directory(DirectoryStore(conn), publisher)
