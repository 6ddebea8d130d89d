"""A measurement, not a test (no ``test_`` prefix: the suite never collects it): admissions sent
over MLLP at a fixed rate through the gateway, dedup, enrich and notify on topics and a database
of its own, then the latency of every notice from the gateway's receipt to the SMTP server's
acceptance (the ledger's ``received_at`` and ``sent_at``), and each hop's share
(``services.cli.hops``).

    PYTHONPATH=. HARPICOOP_STACK_DIR=.stack python -m pytest -q -s -p no:cacheprovider \\
        tests/bench/probe_latency.py   # PROBE_MESSAGES, PROBE_RATE to change the load
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.cli import hops
from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.gateway.bootstrap import GatewayConfig
from services.gateway.handler import Topics
from services.gateway.intake import PATIENT_MERGE_SCHEMA, RAW_MESSAGE_SCHEMA, STAY_EVENT_SCHEMA
from tests.dedup.support import private_topics
from tests.enrich.builders import practitioner
from tests.gateway.messages import GP, movement
from tests.gateway.support import MllpClient, read_ack, running_gateway
from tests.support import MailServer, ServiceProcess, eventually, stack_env

MESSAGES = int(os.environ.get("PROBE_MESSAGES", "300"))
RATE = float(os.environ.get("PROBE_RATE", "20"))


def test_probe(
    stack: Settings,
    admin: AdminClient,
    registry: SchemaRegistryClient,
    producer_factory: Callable[..., Producer],
    serde_factory: Callable[[str], AvroSerde],
    service_factory: Callable[..., ServiceProcess],
    empty_database: str,
    mail_server: MailServer,
    tmp_path: Path,
) -> None:
    with private_topics(admin, registry) as made:
        since = dt.datetime.now(dt.UTC)
        raw_topic = made.create("stays.raw.chrunancy", STAY_EVENT_SCHEMA)
        topics = Topics(
            stays=raw_topic.replace("chrunancy", "{establishment}"),
            merges=made.create("patients.merges", PATIENT_MERGE_SCHEMA),
            archive=made.create("hl7.archive", RAW_MESSAGE_SCHEMA, partitions=1),
        )
        unique = made.create("stays.unique", STAY_EVENT_SCHEMA)
        directory = made.create("practitioners", "harpicoop.Practitioner", compacted=True)
        enriched = made.create("stays.enriched", "harpicoop.EnrichedStayEvent")
        producer = producer_factory()
        serde = serde_factory("harpicoop.Practitioner")
        gp = practitioner(GP[1], ("PER", "jeanne.martin@medecin.mssante.fr"))
        producer.produce(directory, key=gp["rpps"], value=serde.serialize(directory, gp))
        assert producer.flush(10) == 0
        group = made.prefix
        envs = {
            "dedup": stack_env(
                stack,
                DEDUP_INPUT_PATTERN=rf"{made.prefix}\.stays\.raw\..+",
                DEDUP_OUTPUT_TOPIC=unique,
                DEDUP_DEADLETTER_TOPIC=made.create("deadletter.dedup"),
                DEDUP_GROUP_ID=f"{group}-dedup",
                DEDUP_DATA_DIR=str(tmp_path / "dedup"),
                DEDUP_TOPIC_REFRESH_SECONDS="1",
                DEDUP_RESUBSCRIBE_SECONDS="0.5",
            ),
            "enrich": stack_env(
                stack,
                ENRICH_INPUT_TOPIC=unique,
                ENRICH_PRACTITIONERS_TOPIC=directory,
                ENRICH_ENRICHED_TOPIC=enriched,
                ENRICH_UNROUTABLE_TOPIC=made.create(
                    "stays.unroutable", "harpicoop.UnroutableStayEvent"
                ),
                ENRICH_DEADLETTER_TOPIC=made.create("deadletter.enrich"),
                ENRICH_GROUP_ID=f"{group}-enrich",
                ENRICH_TRANSACTIONAL_ID=f"enrich-probe-{uuid.uuid4().hex[:8]}",
            ),
            "notify": stack_env(
                stack,
                DATABASE_URL=empty_database,
                SMTP_HOST="localhost",
                SMTP_PORT=str(mail_server.port),
                SMTP_SECURITY=mail_server.security,
                NOTIFY_INPUT_TOPIC=enriched,
                NOTIFY_FOLLOWUPS_TOPIC=made.create("covid.followups", "harpicoop.CovidFollowup"),
                NOTIFY_UNROUTABLE_TOPIC=made.create(
                    "stays.unroutable.n", "harpicoop.UnroutableStayEvent"
                ),
                NOTIFY_STATUS_TOPIC=made.create(
                    "notifications.status", "harpicoop.NotificationStatus"
                ),
                NOTIFY_DEADLETTER_TOPIC=made.create("deadletter.notify"),
                NOTIFY_GROUP_ID=f"{group}-notify",
                NOTIFY_RECEIPTS_READER="off",
            ),
        }
        services = [service_factory(name, env, {}) for name, env in envs.items()]
        config = GatewayConfig(host="127.0.0.1", port=0, topics=topics)
        # The wall clock, not the messages' day: received_at is a hop's starting point.
        gateway_at = running_gateway(stack, config, lambda: dt.datetime.now(dt.UTC))
        with gateway_at as gateway, MllpClient(gateway.port) as engine:
            # A first admission, waited for: every service is up and subscribed before timing.
            assert read_ack(engine.send(movement(control_id="W0", visit="W0"))).code == "AA"
            eventually(lambda: _sent(empty_database) >= 1, 180, "the warm-up email")
            started = time.monotonic()
            for number in range(MESSAGES):
                raw = movement(control_id=f"P{number}", visit=f"V{number}", ipp=f"I{number}")
                assert read_ack(engine.send(raw)).code == "AA"
                pause = started + (number + 1) / RATE - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            eventually(lambda: _sent(empty_database) >= MESSAGES + 1, 300, "every email")
        with psycopg.connect(empty_database) as conn:
            report = hops.measure(
                stack,
                conn,
                {"raw": [raw_topic], "unique": [unique], "enriched": [enriched]},
                since,
                exclude_event_ids={"chrunancy:W0"},
            )
        print(f"\n{MESSAGES} admissions at {RATE}/s offered")
        print(hops.render(report))
        for service in services:
            service.stop()


def _sent(database: str) -> int:
    with psycopg.connect(database) as conn:
        try:
            row = conn.execute(
                "SELECT count(*) FROM notify.v_notices WHERE state = 'sent'"
            ).fetchone()
        except psycopg.errors.UndefinedTable:  # notify has not created its ledger yet
            return 0
    return int(row[0]) if row else 0
