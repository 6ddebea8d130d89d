"""Helpers for integration tests: waiting for an outcome, a real SMTP server of the test's own,
and a service run as a separate process that a test can kill and restart."""

from __future__ import annotations

import datetime as dt
import email
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import psycopg

from services.common.access import TESTS, LocalSecrets, declared_principals
from services.common.deadletter import read_error_headers
from services.common.paths import PROJECT_ROOT
from services.common.settings import Settings
from services.stack.components import Imap, Postgres
from services.stack.layout import StackLayout
from services.stack.roles import provision
from services.stack.smtp_sink import (
    BOUNCE_FILE,
    REFUSED_FILE,
    build_controller,
    tls_server_context,
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def eventually(check: Callable[[], Any], timeout: float = 120.0, what: str = "condition") -> Any:
    """Poll until ``check`` returns something truthy; the deadline only bounds a hung test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


@dataclass
class MailServer:
    """A real SMTP server (the stack's own implementation) on a free port, that can go down."""

    maildir: Path
    port: int
    security: str = "none"
    tls: Any = None
    imap: Imap | None = None
    """The IMAP server its delivery reports go to (and the mailbox it holds), if any."""
    controller: Any = field(default=None, repr=False)

    def start(self) -> None:
        self.controller = build_controller(
            "localhost",
            self.port,
            self.maildir,
            security=self.security,
            tls_context=self.tls,
            lmtp=self.imap.lmtp_socket if self.imap else None,
            mailboxes=(self.imap.mailbox,) if self.imap else (),
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def refuse(self, address: str) -> None:
        with open(self.maildir / REFUSED_FILE, "a", encoding="utf-8") as refused:
            refused.write(f"{address}\n")

    def bounce(self, address: str) -> None:
        """Mail to ``address`` is accepted, then bounces (a failed DSN to the sender)."""
        with open(self.maildir / BOUNCE_FILE, "a", encoding="utf-8") as bouncing:
            bouncing.write(f"{address}\n")

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(path.read_bytes(), policy=default)  # type: ignore[misc]
            for path in sorted(self.maildir.glob("*.eml"))
        ]

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages() if message["X-Original-To"] == address]


def tls_mail_server(tmp_path: Path, security: str, certificates: dict[str, Path]) -> MailServer:
    context = tls_server_context(
        certificates["server"], certificates["server_key"], certificates["ca"]
    )
    server = MailServer(tmp_path / "mail", free_port(), security=security, tls=context)
    server.start()
    return server


def stack_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a service process pointed at the test's stack, signed in as the
    test's principal (its credentials win over the service's own, ``Settings.from_env``)."""
    import os

    return {
        **os.environ,
        **settings.environment(),
        # A free port each: several services and tests run side by side.
        "METRICS_PORT": "0",
        **extra,
    }


def closed_layout() -> StackLayout:
    """A stack folder inside a 0700 folder, as a clone in root's home."""
    closed = Path(tempfile.mkdtemp(prefix="harpicoop-closed-"))
    os.chmod(closed, 0o700)
    layout = StackLayout(closed / "clone" / ".stack")
    layout.make_dirs()
    return layout


def reading_mailbox(imap: Imap) -> dict[str, str]:
    """Notify's settings to read the platform's mailbox on ``imap`` (its receipts reader on,
    looking every half second), as a test's notify process takes them."""
    return {
        "NOTIFY_RECEIPTS_READER": "on",
        "NOTIFY_RECEIPTS_POLL_INTERVAL_SECONDS": "0.5",
        "SMTP_FROM": imap.mailbox,
        "IMAP_HOST": "localhost",
        "IMAP_PORT": str(imap.port),
        "IMAP_USER": imap.mailbox,
        "IMAP_PASSWORD": imap.password(),
        "IMAP_SECURITY": "none",
    }


def started_imap(layout: StackLayout) -> Imap:
    """The stack's IMAP server on ``layout`` and a free port, started and healthy."""
    server = Imap(layout, port=free_port())
    server.install()
    server.start()
    server.wait_healthy()
    return server


def mailbox_messages(server: Imap, folder: str = "INBOX") -> list[bytes]:
    """Every message in a folder of the IMAP server's mailbox, as received, oldest first."""
    import imaplib

    client = imaplib.IMAP4("localhost", server.port)
    try:
        client.login(server.mailbox, server.password())
        client.select(folder, readonly=True)
        _, found = client.search(None, "ALL")
        messages = []
        for number in found[0].split():
            _, parts = client.fetch(number, "(BODY.PEEK[])")
            messages.append(bytes(parts[0][1]))  # type: ignore[index]
        return messages
    finally:
        client.logout()


def started_postgres(layout: StackLayout) -> Postgres:
    postgres = Postgres(layout, port=free_port())
    postgres.start()
    postgres.wait_healthy()
    return postgres


OWNERS = ("notify", "analytics", "covid", "directory")
"""The principals whose schemas hold the platform's state."""

PRINCIPAL_OF_MODULE = {"cli": "operator"}
"""The principal a ``python -m services.<module>`` runs as, where it is not the module's name."""


def as_principal(database_url: str, principal: str, secrets: LocalSecrets | None = None) -> str:
    """The test database ``database_url`` (the tests' role's) reached as ``principal``: its
    role, its password (from the local stack's ``secrets``). Any other URL is returned as it is
    (a test may point a service at a database that does not exist, or at another server)."""
    params = psycopg.conninfo.conninfo_to_dict(database_url)
    password = (secrets or LocalSecrets.default()).get(principal)
    if params.get("user") != TESTS or password is None or principal not in declared_principals():
        return database_url
    return (
        f"postgresql://{principal}:{password}@{params.get('host', 'localhost')}:"
        f"{params.get('port', 5432)}/{params['dbname']}"
    )


@dataclass
class DatabaseServer:
    """The PostgreSQL server of the test session: an administrator's connection (the local
    stack's superuser on its socket, or the ``DATABASE_URL`` of an existing cluster) that makes
    test databases, and the TCP address the principals log in at."""

    admin: str
    host: str
    port: int
    passwords_set: bool = False
    """Whether this session gave the roles their passwords yet (the local stack's ``make up``
    does; an existing cluster needs it once)."""
    secrets: LocalSecrets = field(default_factory=LocalSecrets.default)

    def create(self, name: str) -> str:
        """A new database provisioned as ``make up`` provisions the stack's; the tests' URL."""
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        with psycopg.connect(self.admin, dbname=name) as conn:
            provision(
                conn,
                declared_principals().values(),
                None if self.passwords_set else self.secrets.ensure,
            )
        self.passwords_set = True
        password = self.secrets.ensure(TESTS)
        return f"postgresql://{TESTS}:{password}@{self.host}:{self.port}/{name}"

    def drop(self, name: str) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def local_database_server() -> DatabaseServer:
    """The local stack's PostgreSQL: test databases made by its superuser, on its socket; the
    roles' passwords are the stack's, set by ``make up``."""
    postgres = Postgres(StackLayout.default())
    return DatabaseServer(postgres.superuser_conninfo(), "localhost", postgres.port, True)


@dataclass
class ServiceProcess:
    """``python -m services.<name>`` as a separate process, as production runs it.

    Pointed at a test database, it connects as its own principal's role, never as the tests':
    every service test proves the grants of ``deploy/access.toml`` along the way.
    """

    name: str
    env: Mapping[str, str]
    log: Path
    topics: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(self.env)
        if "DATABASE_URL" in env:
            principal = PRINCIPAL_OF_MODULE.get(self.name, self.name)
            env["DATABASE_URL"] = as_principal(env["DATABASE_URL"], principal)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}"],
                env=env,
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def observability_port(self) -> int | None:
        """The port the process serves /metrics and /health on, from its log."""
        import json

        for line in self.output().splitlines():
            if '"observability endpoint"' in line:
                return int(json.loads(line)["port"])
        return None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


POISON_STAY_KEYS = ("chrunancy:V9\x0001", "chrunancy:V9002")
"""The keys of ``poison_events``: a NUL in the visit number, then a movement dated 9999."""


def poison_events(build: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]]:
    """Two well-formed records (Avro accepts them) that the platform cannot handle: a NUL in the
    visit number and ids (PostgreSQL refuses it in text), and a movement at the very end of year
    9999 (date arithmetic overflows). ``build`` makes a valid EnrichedStayEvent for a visit."""
    nul = build("V9\x0001")
    late = build("V9002")
    end = dt.datetime(9999, 12, 31, 23, 30, tzinfo=dt.UTC)
    late["event"]["movement"]["occurred_at"] = end
    if late["event"]["stay"]["discharged_at"] is not None:
        late["event"]["stay"]["discharged_at"] = end
    return [nul, late]


def dead_letters_on(consumer: Any, count: int) -> list[Any]:
    """The first ``count`` records read from a dead-letter topic."""
    records: list[Any] = []

    def read() -> bool:
        records.extend(m for m in consumer.consume(10, timeout=0.5) if m.error() is None)
        return len(records) >= count

    eventually(read, what=f"{count} dead letters")
    return records


def assert_poison_dead_lettered(dead: list[Any], source_topic: str, service: str) -> None:
    """The records of ``poison_events`` on the service's dead-letter topic, with their origin
    and the error's class in the headers, and nothing of the patient there."""
    assert sorted(record.key() for record in dead) == sorted(
        key.encode() for key in POISON_STAY_KEYS
    )
    for record in dead:
        errors = read_error_headers(record.headers())
        assert errors["topic"] == source_topic
        assert errors["reason"] == "handling failed" and errors["service"] == service
        assert errors["exception.class.name"] in ("DataError", "OverflowError", "ValueError")
        assert not any(word in str(errors) for word in ("V9", "Lefèvre", "Hélène", "000123456"))


def assert_alive_and_healthy(service: ServiceProcess) -> None:
    import httpx

    assert service.process is not None and service.process.poll() is None, "the service stopped"
    port = eventually(service.observability_port, what="the observability endpoint")
    health = httpx.get(f"http://localhost:{port}/health", timeout=5).json()
    assert health["healthy"] is True, health
