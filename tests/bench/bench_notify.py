"""Notify's throughput: enriched events in, emails accepted by a real SMTP server out, through the
PostgreSQL ledger (one row per notice, one status each), with the default four senders."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from services.common.kafka import make_admin, make_producer
from services.common.schemas import expanded_schema_json
from services.common.serde import AvroSerde, make_registry_client
from services.common.settings import Settings
from services.common.topics import TopicSpec, ensure_topics
from tests.notify.builders import enriched, recipient
from tests.support import MailServer, ServiceProcess, free_port, local_database_server, stack_env

EVENTS = 2_000


def _topic(settings: Settings, schema: str | None) -> str:
    from confluent_kafka.schema_registry import Schema

    name = f"bench-notify-{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(name, schema, 3, False, retention_ms=3_600_000)
    ensure_topics(make_admin(settings), [spec])
    if schema:
        make_registry_client(settings).register_schema(
            spec.subject, Schema(expanded_schema_json(schema), "AVRO")
        )
    return name


def run(settings: Settings) -> dict[str, Any]:
    database = f"bench_notify_{uuid.uuid4().hex[:8]}"
    database_server = local_database_server()
    database_url = database_server.create(database)
    topics = {
        "input": _topic(settings, "harpicoop.EnrichedStayEvent"),
        "followups": _topic(settings, "harpicoop.CovidFollowup"),
        "status": _topic(settings, "harpicoop.NotificationStatus"),
        "dead_letter": _topic(settings, None),
    }
    serde = AvroSerde(make_registry_client(settings), "harpicoop.EnrichedStayEvent")
    producer = make_producer(settings, "bench-notify")
    for index in range(EVENTS):
        value = enriched(
            f"B{index:05}", [recipient(f"1999{index:07}", f"dr{index}@medecin.mssante.fr")]
        )
        producer.produce(
            topics["input"],
            key=value["event"]["stay_key"],
            value=serde.serialize(topics["input"], value),
        )
        producer.poll(0)
    producer.flush(60)

    with tempfile.TemporaryDirectory() as folder:
        mail = MailServer(Path(folder) / "mail", free_port())
        mail.start()
        env = stack_env(
            settings,
            DATABASE_URL=database_url,
            SMTP_HOST="localhost",
            SMTP_PORT=str(mail.port),
            NOTIFY_INPUT_TOPIC=topics["input"],
            NOTIFY_FOLLOWUPS_TOPIC=topics["followups"],
            NOTIFY_STATUS_TOPIC=topics["status"],
            NOTIFY_DEADLETTER_TOPIC=topics["dead_letter"],
            NOTIFY_GROUP_ID=f"bench-{uuid.uuid4().hex[:8]}",
            NOTIFY_POLL_INTERVAL_SECONDS="0.05",
        )
        service = ServiceProcess("notify", env, Path(folder) / "notify.log", topics)
        started = time.perf_counter()
        service.start()
        sent = 0
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                deadline = started + 600
                while sent < EVENTS and time.perf_counter() < deadline:
                    time.sleep(0.5)
                    try:
                        row = conn.execute(
                            "SELECT count(*) FROM notification WHERE state = 'sent'"
                        ).fetchone()
                    except psycopg.errors.UndefinedTable:
                        continue
                    sent = int(row[0]) if row else 0
                seconds = time.perf_counter() - started
                wait = "extract(epoch FROM sent_at - created_at)"
                latency = conn.execute(
                    f"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {wait}), "
                    f"percentile_cont(0.99) WITHIN GROUP (ORDER BY {wait}) "
                    "FROM notification WHERE state = 'sent'"
                ).fetchone()
        finally:
            service.stop()
            mail.stop()
        on_disk = len(list((Path(folder) / "mail").glob("*.eml")))
    database_server.drop(database)
    make_admin(settings).delete_topics(list(topics.values()))
    return {
        "events": EVENTS,
        "emails_sent": sent,
        "emails_on_disk": on_disk,
        "emails_per_s_including_startup": round(sent / seconds, 1),
        "ledger_to_smtp_p50_ms": round(float(latency[0]) * 1000)
        if latency and latency[0] is not None
        else None,
        "ledger_to_smtp_p99_ms": round(float(latency[1]) * 1000)
        if latency and latency[1] is not None
        else None,
    }
