"""Fixtures for notify: a private SMTP server per test, fresh topics and database, the service
run as a real process (``python -m services.notify``) that a test may kill and restart."""

from __future__ import annotations

import email
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
import trustme

from services.common.paths import PROJECT_ROOT
from services.common.settings import Settings
from services.stack.smtp_sink import REFUSED_FILE, build_controller, tls_server_context


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def eventually(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
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
    controller: Any = field(default=None, repr=False)

    def start(self) -> None:
        self.controller = build_controller(
            "localhost", self.port, self.maildir, security=self.security, tls_context=self.tls
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def refuse(self, address: str) -> None:
        with open(self.maildir / REFUSED_FILE, "a", encoding="utf-8") as refused:
            refused.write(f"{address}\n")

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(path.read_bytes(), policy=default)  # type: ignore[misc]
            for path in sorted(self.maildir.glob("*.eml"))
        ]

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages() if message["X-Original-To"] == address]


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[MailServer]:
    server = MailServer(tmp_path / "mail", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost and a client certificate, as PEM files."""
    authority = trustme.CA()
    server = authority.issue_cert("localhost")
    client = authority.issue_cert("harpicoop@ght-sud-lorraine.mssante.fr")
    paths = {
        name: tmp_path / f"{name}.pem"
        for name in ("ca", "server", "server_key", "client", "client_key")
    }
    authority.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["server"]))
    server.private_key_pem.write_to_path(str(paths["server_key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    return paths


def tls_mail_server(tmp_path: Path, security: str, certificates: dict[str, Path]) -> MailServer:
    context = tls_server_context(
        certificates["server"], certificates["server_key"], certificates["ca"]
    )
    server = MailServer(tmp_path / "mail", free_port(), security=security, tls=context)
    server.start()
    return server


@dataclass
class NotifyUnderTest:
    """The service as a separate process, configured for one test's topics and database."""

    env: dict[str, str]
    input_topic: str
    status_topic: str
    dead_letter_topic: str
    database_url: str
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self) -> None:
        assert self.log is not None
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.notify"],
                env=self.env,
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


@pytest.fixture
def notify_factory(
    stack: Settings,
    topic_factory: Callable[..., str],
    group_factory: Callable[[], str],
    empty_database: str,
    tmp_path: Path,
) -> Iterator[Callable[..., NotifyUnderTest]]:
    started: list[NotifyUnderTest] = []

    def create(mail: MailServer, **extra_env: str) -> NotifyUnderTest:
        input_topic = topic_factory("harpicoop.EnrichedStayEvent")
        status_topic = topic_factory("harpicoop.NotificationStatus")
        dead_letter_topic = topic_factory()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap_servers,
            "SCHEMA_REGISTRY_URL": stack.schema_registry_url,
            "DATABASE_URL": empty_database,
            "SMTP_HOST": "localhost",
            "SMTP_PORT": str(mail.port),
            "SMTP_SECURITY": mail.security,
            "NOTIFY_INPUT_TOPIC": input_topic,
            "NOTIFY_STATUS_TOPIC": status_topic,
            "NOTIFY_DEADLETTER_TOPIC": dead_letter_topic,
            "NOTIFY_GROUP_ID": group_factory(),
            "NOTIFY_RETRY_INITIAL_SECONDS": "0.5",
            "NOTIFY_RETRY_MAX_SECONDS": "2",
            "NOTIFY_POLL_INTERVAL_SECONDS": "0.1",
            **extra_env,
        }
        service = NotifyUnderTest(
            env,
            input_topic,
            status_topic,
            dead_letter_topic,
            empty_database,
            log=tmp_path / "notify.log",
        )
        started.append(service)
        service.start()
        return service

    yield create
    for service in started:
        service.stop()
        # Shown by pytest when the test failed: the service's own account of what it did.
        if service.log is not None and service.log.exists():
            print(service.log.read_text(encoding="utf-8", errors="replace")[-20_000:])
