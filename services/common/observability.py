"""Prometheus metrics and a health endpoint for every service.

Each service serves ``/metrics`` (Prometheus text format) and ``/health`` (JSON, 200 when every
check passes, 503 otherwise) on ``METRICS_PORT`` — by default a port of its own, so that all
services can run side by side on one machine; ``0`` picks a free port. Metric names are shared by
every service and labelled with it, so one dashboard reads them all. Labels carry ids and
categories, never patient data.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from services.common.ports import local_port

DEFAULT_PORTS = {
    "gateway": local_port(9401),
    "dedup": local_port(9402),
    "enrich": local_port(9403),
    "notify": local_port(9404),
    "analytics": local_port(9405),
    "covid": local_port(9406),
    "directory": local_port(9407),
    "dashboard": local_port(9408),
}

PROCESSED = Counter(
    "harpicoop_records_processed_total",
    "Records a service has finished with, by outcome.",
    ["service", "outcome"],
)
FAILED = Counter(
    "harpicoop_failures_total", "Failures, by reason (one word, no data).", ["service", "reason"]
)
RECEIVED = Counter(
    "harpicoop_messages_received_total",
    "Messages received from establishments, by establishment code and outcome.",
    ["service", "establishment", "outcome"],
)
REFUSED = Counter(
    "harpicoop_edge_refusals_total",
    "Connections and frames refused or cut off at a service's edge, by reason (one word).",
    ["service", "reason"],
)
UNARCHIVED = Counter(
    "harpicoop_refused_unarchived_total",
    "Refused frames answered but not archived, their source address being over its budget.",
    ["service"],
)
RECEIPTS = Counter(
    "harpicoop_notify_receipts_total",
    "Messages read from the platform's mailbox, by outcome (recorded, known, unmatched).",
    ["outcome"],
)
UNCONFIRMED = Gauge(
    "harpicoop_notify_unconfirmed",
    "Notices sent longer ago than NOTIFY_DSN_WINDOW_SECONDS with no delivery report or bounce.",
    ["establishment"],
)
LAG = Gauge(
    "harpicoop_consumer_lag",
    "Records not yet consumed, per input partition.",
    ["service", "topic", "partition"],
)
LATENCY = Histogram(
    "harpicoop_latency_seconds",
    "Time from an event's receipt by the platform to a stage, in seconds.",
    ["service", "stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)

HealthCheck = Callable[[], bool]


def metrics_port(service: str, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    raw = env.get("METRICS_PORT")
    return int(raw) if raw else DEFAULT_PORTS.get(service, local_port(9400))


class ObservabilityServer:
    """``/metrics`` and ``/health`` over HTTP, in a daemon thread."""

    def __init__(self, service: str, port: int, checks: Mapping[str, HealthCheck]) -> None:
        self.service = service
        self.checks = dict(checks)
        handler = self._handler()
        self._server = ThreadingHTTPServer(("0.0.0.0", port), handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{service}-observability", daemon=True
        )

    def health(self) -> dict[str, Any]:
        results = {}
        for name, check in self.checks.items():
            try:
                results[name] = bool(check())
            except Exception:
                results[name] = False
        return {"service": self.service, "healthy": all(results.values()), "checks": results}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/metrics"):
                    body, status, kind = generate_latest(), 200, CONTENT_TYPE_LATEST
                elif self.path.startswith("/health"):
                    report = owner.health()
                    body = json.dumps(report).encode()
                    status, kind = (200 if report["healthy"] else 503), "application/json"
                else:
                    body, status, kind = b"not found\n", 404, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:  # scrapes are not worth a log line each
                pass

        return Handler

    def start(self) -> ObservabilityServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def lag_from_statistics(service: str) -> Callable[[str], None]:
    """A confluent-kafka ``stats_cb`` that keeps the consumer-lag gauge up to date.

    Use with ``statistics.interval.ms``: librdkafka reports each assigned partition's lag.
    """

    def on_statistics(raw: str) -> None:
        statistics = json.loads(raw)
        for topic, details in statistics.get("topics", {}).items():
            for partition, numbers in details.get("partitions", {}).items():
                lag = numbers.get("consumer_lag", -1)
                if partition != "-1" and lag >= 0:
                    LAG.labels(service, topic, partition).set(lag)

    return on_statistics
