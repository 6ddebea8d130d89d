"""A corpus of well-formed poison sent through the whole pipeline against the real stack: the
gateway (MLLP over mutual TLS) refuses what no service could store, so none of it reaches a dead
letter; a care team of 300 is taken and emailed to a bounded list; every service stays up; and
the admission sent after it is emailed.

The services run as processes, as in production. The gateway runs in the test process: its
topics can be chosen only in code (as a process it writes to the shared ``stays.raw.*``), and its
clock is the messages' day (``tests.gateway.support.messages_day_clock``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.gateway.bootstrap import GatewayConfig
from services.gateway.handler import Topics
from services.gateway.intake import PATIENT_MERGE_SCHEMA, RAW_MESSAGE_SCHEMA, STAY_EVENT_SCHEMA
from tests.analytics.support import analytics_env
from tests.dedup.support import PrivateTopics, private_topics
from tests.enrich.builders import practitioner
from tests.gateway.messages import GP, Practitioner, movement
from tests.gateway.support import Ack, MllpClient, Records, read_ack, read_topic, running_gateway
from tests.support import (
    MailServer,
    ServiceProcess,
    assert_alive_and_healthy,
    eventually,
    stack_env,
)

pytestmark = pytest.mark.integration

GP_ADDRESS = "jeanne.martin@medecin.mssante.fr"
CARE_TEAM_SIZE = 300
KNOWN_OTHERS = 11
"""Referring practitioners of the 300-strong care team that the directory knows, with a secure
address each: with the GP, two past notify's cap of ten recipients per event."""
MAX_RECIPIENTS = 10


def referring(number: int) -> Practitioner:
    return ("RP", f"2{number:010d}", "Médecin", f"Référent{number}")


@dataclass
class Pipeline:
    topics: Topics
    """The gateway's: one raw stays topic for chrunancy, merges, archive."""
    internal: dict[str, str]
    services: list[ServiceProcess]


@pytest.fixture
def pipeline(
    stack: Settings,
    admin: AdminClient,
    registry: SchemaRegistryClient,
    producer_factory: Callable[..., Producer],
    serde_factory: Callable[[str], AvroSerde],
    service_factory: Callable[..., ServiceProcess],
    empty_database: str,
    mail_server: MailServer,
    tmp_path: Path,
) -> Iterator[Pipeline]:
    """Dedup, enrich, notify, covid and analytics on topics of this test's own (under one
    prefix, so faust's internal topics go with them), sharing one database as in production,
    with a directory of the GP and eleven referring practitioners."""
    with private_topics(admin, registry) as made:
        topics, internal = _topics(made)
        _fill_directory(
            producer_factory(), serde_factory("harpicoop.Practitioner"), internal["practitioners"]
        )
        group = made.prefix
        quick_poison = {"POISON_BACKOFF_SECONDS": "0.05"}
        envs = {
            "dedup": stack_env(
                stack,
                DEDUP_INPUT_PATTERN=rf"{made.prefix}\.stays\.raw\..+",
                DEDUP_OUTPUT_TOPIC=internal["unique"],
                DEDUP_DEADLETTER_TOPIC=internal["dead_dedup"],
                DEDUP_GROUP_ID=f"{group}-dedup",
                DEDUP_TOPIC_REFRESH_SECONDS="1",
                **quick_poison,
            ),
            "enrich": stack_env(
                stack,
                ENRICH_INPUT_TOPIC=internal["unique"],
                ENRICH_PRACTITIONERS_TOPIC=internal["practitioners"],
                ENRICH_ENRICHED_TOPIC=internal["enriched"],
                ENRICH_UNROUTABLE_TOPIC=internal["unroutable"],
                ENRICH_DEADLETTER_TOPIC=internal["dead_enrich"],
                ENRICH_GROUP_ID=f"{group}-enrich",
                ENRICH_TRANSACTIONAL_ID=f"enrich-test-{uuid.uuid4().hex[:8]}",
                **quick_poison,
            ),
            "notify": stack_env(
                stack,
                DATABASE_URL=empty_database,
                SMTP_HOST="localhost",
                SMTP_PORT=str(mail_server.port),
                SMTP_SECURITY=mail_server.security,
                NOTIFY_INPUT_TOPIC=internal["enriched"],
                NOTIFY_FOLLOWUPS_TOPIC=internal["followups"],
                NOTIFY_STATUS_TOPIC=internal["status"],
                NOTIFY_DEADLETTER_TOPIC=internal["dead_notify"],
                NOTIFY_GROUP_ID=f"{group}-notify",
                NOTIFY_MAX_RECIPIENTS=str(MAX_RECIPIENTS),
                NOTIFY_POLL_INTERVAL_SECONDS="0.1",
                **quick_poison,
            ),
            "covid": stack_env(
                stack,
                DATABASE_URL=empty_database,
                COVID_ENRICHED_TOPIC=internal["enriched"],
                COVID_UNROUTABLE_TOPIC=internal["unroutable"],
                COVID_MERGES_TOPIC=topics.merges,
                COVID_FOLLOWUPS_TOPIC=internal["followups"],
                COVID_DEADLETTER_TOPIC=internal["dead_covid"],
                COVID_GROUP_ID=f"{group}-covid",
                **quick_poison,
            ),
            "analytics": analytics_env(
                stack,
                {
                    "enriched": internal["enriched"],
                    "unroutable": internal["unroutable"],
                    "status": internal["status"],
                    "stay_events": internal["counts_stays"],
                    "notifications": internal["counts_notifications"],
                    "covid_discharges": internal["counts_covid"],
                    "deadletter": internal["dead_analytics"],
                },
                f"{group}-analytics",
                empty_database,
                ANALYTICS_DATA_DIR=str(tmp_path / "analytics"),
                **quick_poison,
            ),
        }
        services = [service_factory(name, env, internal) for name, env in envs.items()]
        try:
            yield Pipeline(topics, internal, services)
        finally:
            # faust's internal topics are deleted with the prefix's once their workers are gone.
            for service in services:
                service.stop()


def _topics(made: PrivateTopics) -> tuple[Topics, dict[str, str]]:
    # Dedup reads its inputs co-partitioned, three partitions each.
    stays = made.create("stays.raw.chrunancy", STAY_EVENT_SCHEMA)
    gateway = Topics(
        stays=stays.replace("chrunancy", "{establishment}"),
        merges=made.create("patients.merges", PATIENT_MERGE_SCHEMA),
        archive=made.create("hl7.archive", RAW_MESSAGE_SCHEMA, partitions=1),
    )
    internal = {
        "unique": made.create("stays.unique", STAY_EVENT_SCHEMA),
        "practitioners": made.create("practitioners", "harpicoop.Practitioner", compacted=True),
        "enriched": made.create("stays.enriched", "harpicoop.EnrichedStayEvent"),
        "unroutable": made.create("stays.unroutable", "harpicoop.UnroutableStayEvent"),
        "followups": made.create("covid.followups", "harpicoop.CovidFollowup", compacted=True),
        "status": made.create("notifications.status", "harpicoop.NotificationStatus"),
    }
    for name in ("stays", "notifications", "covid"):
        internal[f"counts_{name}"] = made.create(
            f"analytics.{name}", "harpicoop.AnalyticsCount", partitions=1, compacted=True
        )
    for service in ("dedup", "enrich", "notify", "covid", "analytics"):
        internal[f"dead_{service}"] = made.create(f"deadletter.{service}")
    return gateway, internal


def _fill_directory(producer: Producer, serde: AvroSerde, topic: str) -> None:
    people = [practitioner(GP[1], ("PER", GP_ADDRESS))]
    for number in range(KNOWN_OTHERS):
        rpps = referring(number)[1]
        people.append(practitioner(rpps, ("PER", f"referent{number}@medecin.mssante.fr")))
    for person in people:
        producer.produce(topic, key=person["rpps"], value=serde.serialize(topic, person))
    assert producer.flush(10) == 0


def statuses(consumer: Consumer, serde: AvroSerde, seen: list[dict[str, Any]]) -> None:
    for message in consumer.consume(500, timeout=0.5):
        if message.error() is None and message.value() is not None:
            seen.append(serde.deserialize(str(message.topic()), message.value() or b""))


def test_poison_is_refused_or_bounded_every_service_stays_up_and_an_admission_is_emailed(
    stack: Settings,
    pipeline: Pipeline,
    mail_server: MailServer,
    serde_factory: Callable[[str], AvroSerde],
    consumer_factory: Callable[..., Consumer],
) -> None:
    crowd: list[Practitioner] = [GP, *(referring(n) for n in range(CARE_TEAM_SIZE - 1))]
    corpus = {
        "NUL": movement(control_id="P-NUL", visit="V\\X00\\1", movement_id="M1"),
        "9999": movement(control_id="P-9999", visit="V2", moved_at="99991231233000"),
        "CRLF": movement(control_id="P-CRLF", visit="V3", family="Dupont\\X0D\\\\X0A\\MSH|"),
        "TWO": movement(control_id="P-TWO1", visit="V4")
        + movement("A03", control_id="P-TWO2", visit="V4"),
        "ROL": movement(control_id="P-ROL", visit="V5", care_team=crowd),
    }
    normal = movement(control_id="P-OK", visit="V6", movement_id="M6")

    config = GatewayConfig(host="127.0.0.1", port=0, topics=pipeline.topics)
    with running_gateway(stack, config) as gateway, MllpClient(gateway.port) as engine:
        acks: dict[str, Ack] = {name: read_ack(engine.send(raw)) for name, raw in corpus.items()}
        after = read_ack(engine.send(normal))

    # What the engine's operator reads: AE naming the field and why, for each refused value.
    refused = {
        name: (ack.code, ack.control_id, ack.errors[0]["code"], ack.errors[0]["location"])
        for name, ack in acks.items()
        if name != "ROL"
    }
    assert refused == {
        "NUL": ("AE", "P-NUL", "102", "PV1^1^19^1"),
        "9999": ("AE", "P-9999", "102", "ZBE^1^2^1"),
        "CRLF": ("AE", "P-CRLF", "102", "PID^1^5^1"),
        "TWO": ("AE", "P-TWO1", "100", "MSH^2"),
    }
    assert "control character" in acks["NUL"].errors[0]["text"]
    assert "more than a day after" in acks["9999"].errors[0]["text"]
    assert "control character" in acks["CRLF"].errors[0]["text"]
    assert acks["TWO"].errors[0]["text"].startswith("the frame holds 2 messages")
    # A care team of 300 is a well-formed message: taken, and bounded further down.
    assert (acks["ROL"].code, acks["ROL"].control_id) == ("AA", "P-ROL")
    assert (after.code, after.control_id) == ("AA", "P-OK")

    # Nothing refused was published: the archive (one partition, in the order received) says
    # so of each, and the raw topic holds the two taken only.
    archive = read_topic(stack, pipeline.topics.archive, serde_factory(RAW_MESSAGE_SCHEMA), 6)
    assert [
        (value["message_control_id"], value["outcome"], value["error_code"], value["topic"])
        for _key, value in archive
    ] == [
        ("P-NUL", "ERROR", "102", None),
        ("P-9999", "ERROR", "102", None),
        ("P-CRLF", "ERROR", "102", None),
        ("P-TWO1", "ERROR", "100", None),
        ("P-ROL", "PUBLISHED", None, pipeline.topics.stays.format(establishment="chrunancy")),
        ("P-OK", "PUBLISHED", None, pipeline.topics.stays.format(establishment="chrunancy")),
    ]

    def both_published(records: Records) -> bool:
        ids = {value["event_id"] for _key, value in records}
        return {"chrunancy:P-ROL", "chrunancy:P-OK"} <= ids

    raw = read_topic(
        stack,
        pipeline.topics.stays.format(establishment="chrunancy"),
        serde_factory(STAY_EVENT_SCHEMA),
        both_published,
    )
    assert sorted(value["event_id"] for _key, value in raw) == [
        "chrunancy:P-OK",
        "chrunancy:P-ROL",
    ]
    crowd_event = next(value for _key, value in raw if value["event_id"] == "chrunancy:P-ROL")
    assert len(crowd_event["care_team"]) == CARE_TEAM_SIZE

    # The admission after the corpus is emailed to the GP: the email on the SMTP server is the
    # one notify says it sent for that event.
    seen: list[dict[str, Any]] = []
    status_reader = consumer_factory(pipeline.internal["status"])
    status_serde = serde_factory("harpicoop.NotificationStatus")

    def admission_sent() -> list[dict[str, Any]]:
        statuses(status_reader, status_serde, seen)
        return [
            item
            for item in seen
            if item["event_id"] == "chrunancy:P-OK" and item["status"] == "SENT"
        ]

    [sent] = eventually(admission_sent, 60, "the admission's email sent")
    assert (sent["recipient_rpps"], sent["recipient_address"]) == (GP[1], GP_ADDRESS)
    [email] = [
        item for item in mail_server.to(GP_ADDRESS) if item["Message-ID"] == sent["message_id"]
    ]
    assert email["Subject"].startswith("Hospitalisation")

    # The 300-strong care team: the GP and the first nine known referring practitioners are
    # emailed; the two known ones past the cap are recorded skipped, and nobody else is mailed.

    def crowd_settled() -> list[dict[str, Any]]:
        statuses(status_reader, status_serde, seen)
        final = [
            item
            for item in seen
            if item["event_id"] == "chrunancy:P-ROL" and item["status"] in ("SENT", "SKIPPED")
        ]
        return final if len(final) >= 1 + KNOWN_OTHERS else []

    final = eventually(crowd_settled, 30, "every recipient of the crowd's event settled")
    by_status = {
        status: sorted(item["recipient_rpps"] for item in final if item["status"] == status)
        for status in ("SENT", "SKIPPED")
    }
    known = [GP[1], *(referring(n)[1] for n in range(KNOWN_OTHERS))]
    assert by_status["SENT"] == sorted(known[:MAX_RECIPIENTS])
    assert by_status["SKIPPED"] == sorted(known[MAX_RECIPIENTS:])
    assert {item["detail"] for item in final if item["status"] == "SKIPPED"} == {
        f"past the first {MAX_RECIPIENTS} recipients of the event"
    }
    addresses = [message["X-Original-To"] for message in mail_server.messages()]
    assert len(addresses) == MAX_RECIPIENTS + 1  # the crowd's ten, and the admission's one
    assert sorted(set(addresses)) == sorted(
        [GP_ADDRESS, *(f"referent{n}@medecin.mssante.fr" for n in range(MAX_RECIPIENTS - 1))]
    )

    # Every service is still running and says it is healthy, with nothing to dead-letter: the
    # gateway kept every unstorable value out.
    for service in pipeline.services:
        assert_alive_and_healthy(service)
    watermarks = consumer_factory()
    for name in ("dedup", "enrich", "notify", "covid", "analytics"):
        topic = pipeline.internal[f"dead_{name}"]
        partitions = watermarks.list_topics(topic, timeout=10).topics[topic].partitions
        written = sum(
            watermarks.get_watermark_offsets(TopicPartition(topic, number), timeout=10)[1]
            for number in partitions
        )
        assert written == 0, f"{name} dead-lettered {written} records"
