"""The threads of a service: started together, stopped together.

A part that fails stops the whole service, loudly: a half-working service (consuming but never
sending, say) is worse than one that restarts. ``python -m services.<name>`` turns SIGTERM and
SIGINT into a clean stop.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping

import structlog

from services.common.logging import configure_logging
from services.common.observability import HealthCheck, ObservabilityServer, metrics_port
from services.common.settings import Settings


class ServiceThreads:
    def __init__(self, name: str, log: structlog.stdlib.BoundLogger) -> None:
        self.name = name
        self.log = log
        self.stop = threading.Event()
        self.failed = threading.Event()
        """A part raised: the service stops, and its process must say it failed."""
        self.threads: list[threading.Thread] = []
        self.health_checks: dict[str, HealthCheck] = {}
        """Checks of the service's own, reported by ``/health`` beside the threads'."""

    def spawn(self, part: str, target: Callable[[threading.Event], None]) -> None:
        def guarded() -> None:
            try:
                target(self.stop)
            except Exception:
                self.log.exception("part failed; stopping", part=part)
                self.failed.set()
                self.stop.set()

        thread = threading.Thread(target=guarded, name=f"{self.name}-{part}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def alive(self) -> bool:
        """Every part still running: what the health endpoint reports."""
        return not self.stop.is_set() and all(thread.is_alive() for thread in self.threads)

    def serve_observability(
        self, checks: Mapping[str, HealthCheck] | None = None
    ) -> ObservabilityServer:
        """``/metrics`` and ``/health`` on the service's ``METRICS_PORT``."""
        server = ObservabilityServer(
            self.name,
            metrics_port(self.name),
            {"threads": self.alive, **self.health_checks, **(checks or {})},
        )
        self.log.info("observability endpoint", port=server.port)
        return server.start()

    def stop_on_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())

    def wait(self, grace_seconds: float = 30.0) -> None:
        self.stop.wait()
        for thread in self.threads:
            thread.join(timeout=grace_seconds)


def run_service(
    name: str, start: Callable[[Settings, structlog.stdlib.BoundLogger], ServiceThreads]
) -> None:
    """The body of ``python -m services.<name>`` for a service built on ``ServiceThreads``:
    JSON logs, settings from the environment (as the principal ``name``), ``/metrics`` and
    ``/health``, clean stop on SIGTERM or SIGINT. ``start`` builds and starts the service and
    returns its threads."""
    log = configure_logging(name)
    # Each service is the principal of its own name (deploy/access.toml).
    threads = start(Settings.from_env(principal=name), log)
    threads.stop_on_signals()
    threads.serve_observability()
    log.info("started")  # the service is bound to the logger
    threads.wait()
    if threads.failed.is_set():
        # A non-zero exit, so that a supervisor restarting failed services (systemd's
        # Restart=on-failure, a Kubernetes Job, ``make run``) sees a failure, not a clean stop.
        raise SystemExit(1)
