"""faust apps with the platform's choices in one place, for the services built on faust tables.

Every app is at-least-once (faust's exactly-once is not used: each service makes its effects
idempotent instead), keeps its tables in RocksDB with changelog topics, moves bytes (values are
Confluent-framed Avro, decoded by the service with ``AvroSerde``), and produces with ``acks=all``.
"""

from __future__ import annotations

import logging
import os
import ssl
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, cast

import faust
import faust.streams
from confluent_kafka.admin import AdminClient

from services.common.settings import KafkaSecurity, Settings


def broker_urls(settings: Settings) -> list[str]:
    return [f"kafka://{host.strip()}" for host in settings.kafka_bootstrap_servers.split(",")]


def broker_credentials(security: KafkaSecurity) -> Any:
    """faust's form of the platform's Kafka security settings (None for PLAINTEXT)."""
    protocol = security.protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    context = ssl.create_default_context(cafile=security.ssl_ca_location)
    if security.ssl_certificate_location:
        context.load_cert_chain(security.ssl_certificate_location, security.ssl_key_location)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=security.sasl_username,
        password=security.sasl_password,
        mechanism=security.sasl_mechanism or "PLAIN",
        ssl_context=context if protocol == "SASL_SSL" else None,
    )


def replication_factor(admin: AdminClient, timeout: float = 30.0) -> int:
    """For the topics faust creates (changelogs, repartitions): 3, or fewer brokers."""
    brokers = len(admin.list_topics(timeout=timeout).brokers)
    return min(3, max(1, brokers))


def make_faust_app(
    settings: Settings,
    app_id: str,
    *,
    data_dir: Path,
    partitions: int,
    replication: int,
    commit_interval: float = 1.0,
    session_timeout: float = 60.0,
    web_port: int | None = None,
    producer_linger: float = 0.0,
) -> faust.App:
    """An app named ``app_id`` (its consumer group and the prefix of its internal topics), with
    its tables under ``data_dir/app_id``. ``producer_linger``: how long, in seconds, records wait
    to be sent with others (an app that writes many small records at once sends fewer, larger
    requests)."""
    # faust creates the last folder only.
    data_dir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=broker_urls(settings),
        broker_credentials=broker_credentials(settings.kafka_security),
        store="rocksdb://",
        datadir=str(data_dir / app_id),
        processing_guarantee="at_least_once",
        broker_commit_interval=commit_interval,
        # How long a worker that died unannounced holds its partitions before others take them.
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=min(3.0, session_timeout / 3),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=producer_linger,
        topic_partitions=partitions,
        topic_replication_factor=replication,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        autodiscover=False,
    )


def quiet_client_logging() -> None:
    """The clients' own chatter stays out of the service's JSON log unless something goes wrong
    (httpx2 is the schema registry client's HTTP library)."""
    for name in ("faust", "mode", "aiokafka", "kafka", "httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)


def stop_without_commit() -> NoReturn:
    """Leave at once, committing nothing, for a supervisor to start the worker again; it then
    reads again from the last committed offsets.

    For an agent that failed on something other than a record's content (a broker gone mid-read,
    a store failure): faust logs an agent's crash and lets the worker run on without it, healthy
    to every probe and counting nothing more, and its own crash path may commit the offsets of
    records the agent never finished."""
    logging.shutdown()
    os._exit(70)


def run_worker(app: faust.App) -> None:
    """Run the app in this process until it is stopped (SIGTERM, SIGINT), as production does."""
    quiet_client_logging()
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, override_logging=False)
    worker.execute_from_commandline()


@dataclass(frozen=True)
class _PartitionMessage:
    topic: str
    partition: int


class _PartitionEvent:
    """What faust's tables read of the current event: its message's topic and partition."""

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _PartitionMessage(topic, partition)


@contextmanager
def in_table_partition(partition: int, source_topic: str) -> Iterator[None]:
    """Table reads and writes inside go to ``partition`` (its RocksDB store and its changelog
    partition), as if an event of ``source_topic`` and that partition were being handled.

    faust routes a table's reads and writes by the current event, which ``Stream.take_events``
    does not set in the agent's task; a service that handles a batch chooses the partition of
    each piece of its state this way. ``source_topic`` is one the app consumes, with as many
    partitions as the table (faust checks it)."""
    event = _PartitionEvent(source_topic, partition)
    token = faust.streams._current_event.set(weakref.ref(cast(Any, event)))
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)
