"""Fixtures shared by every test: the real stack, and factories for isolated topics and groups.

Integration tests never share data: each one gets uniquely named topics, consumer groups and
databases from the factories below, so they can run in any order against one stack.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from services.common import outbox
from services.common.access import ADMIN, TESTS
from services.common.acls import apply_access
from services.common.db import apply_migrations
from services.common.kafka import make_admin, make_consumer, make_producer
from services.common.paths import PROJECT_ROOT
from services.common.schemas import expanded_schema_json
from services.common.serde import AvroSerde, make_registry_client
from services.common.settings import Settings
from services.common.topics import TopicSpec, ensure_topics
from services.stack.__main__ import clean
from services.stack.components import Imap, Kafka, Postgres
from services.stack.layout import StackLayout
from tests.support import (
    OWNERS,
    DatabaseServer,
    MailServer,
    ServiceProcess,
    as_principal,
    closed_layout,
    free_port,
    local_database_server,
    stack_env,
    started_imap,
    started_postgres,
)


def _docker_engine_available() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    """The platform's real components, started once for the whole session.

    Three ways, in order: ``KAFKA_BOOTSTRAP_SERVERS`` set means an existing cluster (with the
    other variables pointing at its registry and database); a Docker engine means
    testcontainers; otherwise the local stack of ``make up``, started here if it is not running
    and stopped at the end only if this session started it. The suite signs in as its own
    principal, ``tests`` (``deploy/access.toml``): broad, but no super user.
    """
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        settings = Settings.from_env(principal=TESTS)
        from services.stack.__main__ import deploy_contract

        deploy_contract(settings)
        yield settings
        return
    if _docker_engine_available() and os.environ.get("HARPICOOP_TESTCONTAINERS", "1") == "1":
        from tests.containers import containers_stack

        with containers_stack() as settings:
            yield settings
        return
    from services.stack.__main__ import down, up
    from services.stack.components import all_components

    layout = StackLayout.default()
    # Tests that read a mailbox start an IMAP server of their own (``imap_server``), as they do
    # SMTP servers: the suite neither needs nor starts the stack's.
    needed = [item for item in all_components(layout) if not isinstance(item, Imap)]
    started = up(layout, needed)
    try:
        yield Settings.from_env(principal=TESTS)
    finally:
        if started:
            down(layout, started)


@pytest.fixture
def tests_environment(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entrypoint called in this process (the CLI's ``main``) signs in as the suite's
    principal, as a service started by ``stack_env`` does, not as its own: the tests' topics are
    the tests'."""
    for name, value in stack.environment().items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def admin(stack: Settings) -> AdminClient:
    return make_admin(stack)


@pytest.fixture(scope="session")
def registry(stack: Settings) -> SchemaRegistryClient:
    return make_registry_client(stack)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic_factory(
    admin: AdminClient, registry: SchemaRegistryClient
) -> Iterator[Callable[..., str]]:
    """Create fresh topics (and register their value schema); deleted after the test."""
    created: list[str] = []

    def create(schema: str | None = None, *, partitions: int = 3, compacted: bool = False) -> str:
        name = unique("test")
        spec = TopicSpec(name, schema or "", partitions, compacted, retention_ms=3_600_000)
        ensure_topics(admin, [spec])
        if schema:
            registry.register_schema(spec.subject, Schema(expanded_schema_json(schema), "AVRO"))
        created.append(name)
        return name

    yield create
    if created:
        for future in admin.delete_topics(created, operation_timeout=10).values():
            future.result()


@pytest.fixture
def group_factory() -> Callable[[], str]:
    """Fresh consumer group ids, so a test never resumes another's offsets."""
    return lambda: unique("group")


@pytest.fixture
def producer_factory(stack: Settings) -> Iterator[Callable[..., Producer]]:
    producers: list[Producer] = []

    def create(**overrides: Any) -> Producer:
        producer = make_producer(stack, unique("test-producer"), **overrides)
        producers.append(producer)
        return producer

    yield create
    for producer in producers:
        producer.flush(10)


@pytest.fixture
def consumer_factory(
    stack: Settings, group_factory: Callable[[], str]
) -> Iterator[Callable[..., Consumer]]:
    consumers: list[Consumer] = []

    def create(*topics: str, group_id: str | None = None, **overrides: Any) -> Consumer:
        consumer = make_consumer(
            stack, unique("test-consumer"), group_id or group_factory(), **overrides
        )
        if topics:
            consumer.subscribe(list(topics))
        consumers.append(consumer)
        return consumer

    yield create
    for consumer in consumers:
        consumer.close()


@pytest.fixture
def serde_factory(registry: SchemaRegistryClient) -> Callable[[str], AvroSerde]:
    return lambda schema: AvroSerde(registry, schema)


@pytest.fixture(scope="session")
def database_server(stack: Settings) -> DatabaseServer:
    """Who makes the test databases: the local stack's superuser on its socket; on an existing
    cluster or in containers, the ``DATABASE_URL``'s role, which must be allowed to create roles
    and databases. Services and tests never connect as it."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or not Postgres(StackLayout.default()).running():
        params = psycopg.conninfo.conninfo_to_dict(stack.database_url)
        host = str(params.get("host") or "localhost")
        return DatabaseServer(
            stack.database_url,
            "localhost" if host.startswith("/") else host,
            int(params.get("port") or 5432),
        )
    return local_database_server()


@pytest.fixture
def empty_database(database_server: DatabaseServer) -> Iterator[str]:
    """A brand-new PostgreSQL database, provisioned as the stack's is (a schema per owner, the
    grants of ``deploy/access.toml``) and empty; the tests' role's URL. Dropped after the test.

    The tests' role reads and writes every owner's tables (unqualified: its search path lists
    every owner's schema) and its own objects land in its own schema; a service started on it
    connects as itself (``tests.support.as_principal``, in ``ServiceProcess``).
    """
    name = unique("test").replace("-", "_")
    url = database_server.create(name)
    yield url
    database_server.drop(name)


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster started from a folder closed to other users, on a free port,
    bootstrapped as ``make up`` does (its own secrets, ``private_postgres.secrets``): for tests
    of what each role may do, which need neither the shared stack nor any change to it.
    Stopped and removed, its folder outside the stack's included, at the end."""
    layout = closed_layout()
    postgres = started_postgres(layout)
    try:
        postgres.bootstrap()
        yield postgres
    finally:
        postgres.stop()
        clean(layout)
        shutil.rmtree(layout.root.parent.parent, ignore_errors=True)


@pytest.fixture
def owners_database(private_postgres: Postgres) -> Iterator[Callable[[str], str]]:
    """A database of ``private_postgres`` made as ``empty_database`` makes one, each owner's
    migrations applied as that owner (the common outbox included, as the services do): how
    each principal reaches it, by name (``tests`` for the tests' role)."""
    server = DatabaseServer(
        private_postgres.superuser_conninfo(),
        "localhost",
        private_postgres.port,
        secrets=private_postgres.secrets,
    )
    name = unique("test").replace("-", "_")
    url = server.create(name)

    def as_(principal: str) -> str:
        return as_principal(url, principal, private_postgres.secrets)

    for owner in OWNERS:
        with psycopg.connect(as_(owner)) as conn:
            apply_migrations(conn, "common", outbox.MIGRATIONS)
            apply_migrations(conn, owner, PROJECT_ROOT / "services" / owner / "migrations")
    yield as_
    server.drop(name)


def throwaway_broker(tmp_path: Path) -> Kafka:
    """A new single-node broker of the stack's version on ports 19092/19093, not started yet
    (its data and its passwords under ``tmp_path``, the jars the local stack downloaded); it
    authenticates and authorizes as the stack's does (``grant_access`` once it is up)."""
    layout = StackLayout(tmp_path / "private-kafka", shared_dist=StackLayout.default().dist)
    layout.make_dirs()
    broker = Kafka(layout, port=19092, controller_port=19093)
    broker.install()
    return broker


def on_broker(settings: Settings, broker: Kafka, principal: str = TESTS) -> Settings:
    """``settings`` pointed at a throwaway broker, signed in there as ``principal``."""
    return dataclasses.replace(
        settings,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_security=broker.security(principal),
    )


def grant_access(broker: Kafka) -> None:
    """``deploy/access.toml`` on a throwaway broker, as ``make up`` applies it on the stack's."""
    apply_access(make_admin(on_broker(Settings(), broker, ADMIN)), local=broker.secrets)


@pytest.fixture
def private_kafka(stack: Settings, tmp_path: Path) -> Iterator[Kafka]:
    """A throwaway single-node broker of the same version, for tests that take a broker down.

    The shared broker cannot be stopped under other tests; this one can (``.stop()`` and
    ``.start()`` then ``.wait_healthy()``), with its data kept across restarts. It runs on
    ports 19092/19093, reuses the local stack's downloaded jars, and has the access
    declaration applied: reach it with ``on_broker(stack, private_kafka)``.
    """
    broker = throwaway_broker(tmp_path)
    broker.start()
    broker.wait_healthy()
    grant_access(broker)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[MailServer]:
    """A real SMTP server of the test's own (so it can be taken down), keeping .eml files."""
    server = MailServer(tmp_path / "mail", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def imap_server(tmp_path: Path) -> Iterator[Imap]:
    """A real IMAP server (Dovecot, as the stack runs it) of the test's own: its own folder,
    port and mailbox password (``imap_server.password()``); stopped and removed at the end."""
    layout = StackLayout(tmp_path / "imap-stack")
    layout.make_dirs()
    server = started_imap(layout)
    try:
        yield server
    finally:
        server.stop()
        server.forget()


@pytest.fixture
def reporting_mail_server(tmp_path: Path, imap_server: Imap) -> Iterator[MailServer]:
    """``mail_server``, returning delivery status notifications to ``imap_server``."""
    server = MailServer(tmp_path / "mail", free_port(), imap=imap_server)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost and a client certificate, as PEM files."""
    import trustme

    authority = trustme.CA()
    server = authority.issue_cert("localhost")
    client = authority.issue_cert("harpicoop@ght-sud-lorraine.mssante.fr")
    names = ("ca", "server", "server_key", "client", "client_key")
    paths = {name: tmp_path / f"{name}.pem" for name in names}
    authority.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["server"]))
    server.private_key_pem.write_to_path(str(paths["server_key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    return paths


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Services started as real processes; stopped after the test, their logs shown on failure."""
    started: list[ServiceProcess] = []

    def start(name: str, env: dict[str, str], topics: dict[str, str]) -> ServiceProcess:
        service = ServiceProcess(name, env, tmp_path / f"{name}-{len(started)}.log", topics)
        service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
        print(f"--- {service.name} ---\n{service.output()[-20_000:]}")


@pytest.fixture
def notify_factory(
    stack: Settings,
    topic_factory: Callable[..., str],
    group_factory: Callable[[], str],
    empty_database: str,
    service_factory: Callable[..., ServiceProcess],
) -> Callable[..., ServiceProcess]:
    """Notify on fresh topics and a fresh database, sending to the given SMTP server."""

    def create(mail: MailServer, **extra_env: str) -> ServiceProcess:
        topics = {
            "input": topic_factory("harpicoop.EnrichedStayEvent"),
            "followups": extra_env.pop("followups_topic", None)
            or topic_factory("harpicoop.CovidFollowup"),
            "status": topic_factory("harpicoop.NotificationStatus"),
            "dead_letter": topic_factory(),
            "unroutable": topic_factory("harpicoop.UnroutableStayEvent"),
        }
        env = stack_env(
            stack,
            DATABASE_URL=empty_database,
            SMTP_HOST="localhost",
            SMTP_PORT=str(mail.port),
            SMTP_SECURITY=mail.security,
            NOTIFY_INPUT_TOPIC=topics["input"],
            NOTIFY_FOLLOWUPS_TOPIC=topics["followups"],
            NOTIFY_STATUS_TOPIC=topics["status"],
            NOTIFY_DEADLETTER_TOPIC=topics["dead_letter"],
            NOTIFY_UNROUTABLE_TOPIC=topics["unroutable"],
            NOTIFY_GROUP_ID=group_factory(),
            NOTIFY_RETRY_INITIAL_SECONDS="0.5",
            NOTIFY_RETRY_MAX_SECONDS="2",
            NOTIFY_POLL_INTERVAL_SECONDS="0.1",
            # The platform's mailbox is read only by the tests that give it an IMAP server.
            **{"NOTIFY_RECEIPTS_READER": "off", **extra_env},
        )
        return service_factory("notify", env, topics)

    return create
