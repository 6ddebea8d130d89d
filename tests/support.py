"""Helpers for integration tests: waiting for an outcome, a real SMTP server of the test's own,
and a service run as a separate process that a test can kill and restart."""

from __future__ import annotations

import email
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from services.common.paths import PROJECT_ROOT
from services.common.settings import Settings
from services.stack.smtp_sink import REFUSED_FILE, build_controller, tls_server_context


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


def tls_mail_server(tmp_path: Path, security: str, certificates: dict[str, Path]) -> MailServer:
    context = tls_server_context(
        certificates["server"], certificates["server_key"], certificates["ca"]
    )
    server = MailServer(tmp_path / "mail", free_port(), security=security, tls=context)
    server.start()
    return server


def stack_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a service process pointed at the test's stack."""
    import os

    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "DATABASE_URL": settings.database_url,
        # A free port each: several services and tests run side by side.
        "METRICS_PORT": "0",
        **extra,
    }


@dataclass
class ServiceProcess:
    """``python -m services.<name>`` as a separate process, as production runs it."""

    name: str
    env: Mapping[str, str]
    log: Path
    topics: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}"],
                env=dict(self.env),
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
