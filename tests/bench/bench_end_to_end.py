"""End to end through every service: HL7 admissions over MLLP in, emails accepted by SMTP out.

The gateway, dedup, enrich and notify run as their own processes, as production runs them, on
topics and a database of their own, with an SMTP server process of their own (the stack's
shared mailbox stays untouched). Eleven engine connections (one per establishment, over mutual
TLS) send admissions whose GP is in the directory, so each one makes one email, save those of the
psychiatric centre, whose notices the sensitivity policy suppresses (one establishment in eleven,
as in production):

- steady: ``STEADY_RATE`` messages per second offered for ``STEADY_SECONDS``, spread over the
  eleven connections; the latency of each notice from the gateway's receipt to the SMTP
  server's acceptance (the ledger's ``received_at`` and ``sent_at``), with each hop's share
  (``services.cli.hops``);
- burst: ``BURST`` admissions sent as fast as the gateway acknowledges them; emails per second
  from the first message sent to the last email accepted.

Meanwhile the peak resident memory of the stack's processes (Kafka, the registry, PostgreSQL
with every backend, SMTP, IMAP) and of the services is sampled from /proc (``memory``).
"""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from services.cli import hops
from services.common.establishments import Establishment, load_establishments
from services.common.kafka import make_admin, make_producer
from services.common.paths import PROJECT_ROOT
from services.common.serde import AvroSerde, make_registry_client
from services.common.settings import Settings
from services.gateway.handler import Topics
from services.gateway.intake import PATIENT_MERGE_SCHEMA, RAW_MESSAGE_SCHEMA, STAY_EVENT_SCHEMA
from services.gateway.mllp import frame
from tests.bench.bench_gateway import _engine, gateway_process
from tests.bench.memory import PeakMemory, stack_pids
from tests.bench.support import keep_logs_only
from tests.dedup.support import PrivateTopics
from tests.enrich.builders import practitioner
from tests.gateway.messages import GP, movement
from tests.gateway.support import gateway_tls
from tests.support import ServiceProcess, eventually, free_port, local_database_server, stack_env

STEADY_RATE = 100.0
STEADY_SECONDS = 10
BURST = 5_000
GP_ADDRESS = "jeanne.martin@medecin.mssante.fr"


def admissions(item: Establishment, phase: str, count: int) -> list[bytes]:
    """``count`` admissions of distinct stays, each naming the directory's GP."""
    return [
        frame(
            movement(
                facility=item.sending_facility,
                control_id=f"{phase}{number:05}",
                visit=f"{phase}V{number:05}",
                ipp=f"{phase}I{number:05}",
                movement_id=f"{phase}M{number:05}",
            )
        )
        for number in range(count)
    ]


def send_all(port: int, batches: dict[str, list[bytes]], every: float = 0.0) -> float:
    """Each establishment's messages over its own connection, all at once; with ``every``, each
    connection offers one message per ``every`` seconds, the connections staggered evenly.
    Seconds from the first message offered to the last ACK."""
    start = time.monotonic() + 0.5  # the connections' handshakes done before the first message
    stagger = every / len(batches)
    with ThreadPoolExecutor(len(batches)) as pool:
        futures = [
            pool.submit(_engine, port, code, batch, every=every, start=start + index * stagger)
            for index, (code, batch) in enumerate(batches.items())
        ]
        for future in futures:
            future.result()
    return time.monotonic() - start


def shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` counts differing by one at most."""
    return [total // parts + (index < total % parts) for index in range(parts)]


def phase(establishments: list[Establishment], name: str, total: int) -> dict[str, list[bytes]]:
    """``total`` admissions shared between the establishments, by establishment code."""
    counts = shares(total, len(establishments))
    return {
        item.code: admissions(item, name, count)
        for item, count in zip(establishments, counts, strict=True)
    }


def listening(port: int) -> bool:
    try:
        socket.create_connection(("localhost", port), timeout=1).close()
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Settled:
    """A phase's notices in the ledger: decided (sent, or skipped by the sensitivity policy: the
    psychiatric centre's notices are suppressed), sent, and when the last one was sent."""

    settled: int
    sent: int
    last_sent: dt.datetime | None


def settled(database_url: str, phase: str) -> Settled:
    with psycopg.connect(database_url) as conn:
        try:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE state IN ('sent', 'skipped')), "
                "count(*) FILTER (WHERE state = 'sent'), max(sent_at) FROM notify.v_notices "
                "WHERE split_part(event_id, ':', 2) LIKE %s",
                (f"{phase}%",),
            ).fetchone()
        except psycopg.errors.UndefinedTable:  # notify has not made its ledger yet
            return Settled(0, 0, None)
    return Settled(int(row[0]), int(row[1]), row[2]) if row else Settled(0, 0, None)


def run(settings: Settings) -> dict[str, Any]:
    admin = make_admin(settings)
    registry = make_registry_client(settings)
    made = PrivateTopics(admin, registry, f"bench{uuid.uuid4().hex[:8]}", [])
    folder = Path(tempfile.mkdtemp(prefix="bench-end-to-end-"))
    database_server = local_database_server()
    database_url = database_server.create(made.prefix)
    establishments = load_establishments()
    services: list[ServiceProcess] = []
    port = free_port()
    smtp = [
        "-m",
        "services.stack.smtp_sink",
        "--port",
        str(port),
        "--maildir",
        str(folder / "mail"),
    ]
    mail = subprocess.Popen(
        [sys.executable, *smtp],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        eventually(lambda: listening(port), 30, "the SMTP server")
        raw = [made.create(f"stays.raw.{item.code}", STAY_EVENT_SCHEMA) for item in establishments]
        topics = Topics(
            stays=f"{made.prefix}.stays.raw.{{establishment}}",
            merges=made.create("patients.merges", PATIENT_MERGE_SCHEMA),
            archive=made.create("hl7.archive", RAW_MESSAGE_SCHEMA, partitions=1),
        )
        unique = made.create("stays.unique", STAY_EVENT_SCHEMA)
        directory = made.create("practitioners", "harpicoop.Practitioner", compacted=True)
        enriched = made.create("stays.enriched", "harpicoop.EnrichedStayEvent")
        producer = make_producer(settings, "bench-end-to-end")
        gp = practitioner(GP[1], ("PER", GP_ADDRESS))
        serde = AvroSerde(registry, "harpicoop.Practitioner")
        producer.produce(directory, key=gp["rpps"], value=serde.serialize(directory, gp))
        assert producer.flush(10) == 0
        envs = {
            "dedup": dict(
                DEDUP_INPUT_PATTERN=rf"{made.prefix}\.stays\.raw\..+",
                DEDUP_OUTPUT_TOPIC=unique,
                DEDUP_DEADLETTER_TOPIC=made.create("deadletter.dedup"),
                DEDUP_GROUP_ID=f"{made.prefix}-dedup",
            ),
            "enrich": dict(
                ENRICH_INPUT_TOPIC=unique,
                ENRICH_PRACTITIONERS_TOPIC=directory,
                ENRICH_ENRICHED_TOPIC=enriched,
                ENRICH_UNROUTABLE_TOPIC=made.create(
                    "stays.unroutable", "harpicoop.UnroutableStayEvent"
                ),
                ENRICH_DEADLETTER_TOPIC=made.create("deadletter.enrich"),
                ENRICH_GROUP_ID=f"{made.prefix}-enrich",
                ENRICH_TRANSACTIONAL_ID=f"{made.prefix}-enrich",
            ),
            "notify": dict(
                DATABASE_URL=database_url,
                SMTP_HOST="localhost",
                SMTP_PORT=str(port),
                SMTP_SECURITY="none",
                NOTIFY_INPUT_TOPIC=enriched,
                NOTIFY_FOLLOWUPS_TOPIC=made.create("covid.followups", "harpicoop.CovidFollowup"),
                NOTIFY_UNROUTABLE_TOPIC=made.create(
                    "stays.unroutable.notify", "harpicoop.UnroutableStayEvent"
                ),
                NOTIFY_STATUS_TOPIC=made.create(
                    "notifications.status", "harpicoop.NotificationStatus"
                ),
                NOTIFY_DEADLETTER_TOPIC=made.create("deadletter.notify"),
                NOTIFY_GROUP_ID=f"{made.prefix}-notify",
                NOTIFY_RECEIPTS_READER="off",
            ),
        }
        for name, env in envs.items():
            service = ServiceProcess(name, stack_env(settings, **env), folder / f"{name}.log")
            services.append(service)
            service.start()
        with gateway_process(settings, gateway_tls(), topics, wall=True) as gateway:
            memory = PeakMemory(
                {
                    "stack": lambda: [*stack_pids(), mail.pid],
                    "services": lambda: [
                        gateway.pid,
                        *(service.process.pid for service in services if service.process),
                    ],
                }
            ).start()
            try:
                print("    warming up (a first email from each establishment) ...", flush=True)
                send_all(gateway.port, phase(establishments, "W", len(establishments)))
                eventually(
                    lambda: settled(database_url, "W").settled >= len(establishments),
                    240,
                    "the warm-up",
                )

                steady = int(STEADY_RATE * STEADY_SECONDS)
                print(f"    steady: {steady} admissions at {STEADY_RATE:g}/s ...", flush=True)
                since = dt.datetime.now(dt.UTC)
                offered_seconds = send_all(
                    gateway.port,
                    phase(establishments, "S", steady),
                    every=len(establishments) / STEADY_RATE,
                )
                eventually(
                    lambda: settled(database_url, "S").settled >= steady, 180, "every steady email"
                )
                with psycopg.connect(database_url) as conn:
                    latency = hops.measure(
                        settings,
                        conn,
                        {"raw": raw, "unique": [unique], "enriched": [enriched]},
                        since,
                    )

                print(f"    burst: {BURST} admissions ...", flush=True)
                burst_started = dt.datetime.now(dt.UTC)
                send_all(gateway.port, phase(establishments, "B", BURST))
                acked = dt.datetime.now(dt.UTC)
                eventually(
                    lambda: settled(database_url, "B").settled >= BURST, 300, "every burst email"
                )
                burst = settled(database_url, "B")
            finally:
                memory.stop()
    finally:
        for service in services:
            service.stop()
        mail.terminate()
        mail.wait(30)
        made.delete_all()
        database_server.drop(made.prefix)

    assert burst.last_sent is not None
    burst_seconds = (burst.last_sent - burst_started).total_seconds()
    figures: dict[str, Any] = {
        "steady_offered_per_s": round(steady / offered_seconds, 1),
        "steady_notices": latency.notices,
        "steady_p50_ms": round(latency.total_p50_ms),
        "steady_p99_ms": round(latency.total_p99_ms),
    }
    for hop in latency.hops:
        key = hop.name.replace(" ", "_")
        figures[f"hop_{key}_p50_ms"] = round(hop.p50_ms)
        figures[f"hop_{key}_share"] = round(hop.share, 3)
    figures |= {
        "burst_admissions": burst.settled,
        "burst_emails": burst.sent,
        "burst_acked_per_s": round(BURST / (acked - burst_started).total_seconds()),
        "burst_admissions_per_s": round(burst.settled / burst_seconds),
        "burst_emails_per_s": round(burst.sent / burst_seconds),
        "peak_rss_bytes": memory.peak_total,
        "peak_rss_stack_bytes": memory.peaks["stack"],
        "peak_rss_services_bytes": memory.peaks["services"],
        "memory_samples": memory.samples,
        "logs": keep_logs_only(folder),
    }
    return figures
