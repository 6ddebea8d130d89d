"""Enrich against the real stack: routing, directory updates, dead letters, and a crash."""

from __future__ import annotations

import collections
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from services.common.deadletter import read_error_headers
from services.common.serde import AvroSerde
from services.common.settings import Settings
from tests.common.test_serde import stay_event
from tests.enrich.builders import practitioner
from tests.support import (
    POISON_STAY_KEYS,
    MailServer,
    ServiceProcess,
    assert_alive_and_healthy,
    eventually,
    poison_events,
    stack_env,
)

pytestmark = pytest.mark.integration

GP = practitioner("10101010101", ("PER", "jeanne.martin@medecin.mssante.fr"))


@pytest.fixture
def enrich_factory(
    stack: Settings,
    topic_factory: Callable[..., str],
    group_factory: Callable[[], str],
    service_factory: Callable[..., ServiceProcess],
) -> Callable[..., ServiceProcess]:
    """Enrich on fresh topics; ``enriched`` names the output topic when another service reads it
    (notify's input), so a test can run the two together."""

    def create(enriched: str | None = None) -> ServiceProcess:
        topics = {
            "input": topic_factory("harpicoop.StayEvent"),
            "practitioners": topic_factory("harpicoop.Practitioner", compacted=True),
            "enriched": enriched or topic_factory("harpicoop.EnrichedStayEvent"),
            "unroutable": topic_factory("harpicoop.UnroutableStayEvent"),
            "dead_letter": topic_factory(),
        }
        env = stack_env(
            stack,
            ENRICH_INPUT_TOPIC=topics["input"],
            ENRICH_PRACTITIONERS_TOPIC=topics["practitioners"],
            ENRICH_ENRICHED_TOPIC=topics["enriched"],
            ENRICH_UNROUTABLE_TOPIC=topics["unroutable"],
            ENRICH_DEADLETTER_TOPIC=topics["dead_letter"],
            ENRICH_GROUP_ID=group_factory(),
            ENRICH_TRANSACTIONAL_ID=f"enrich-test-{uuid.uuid4().hex[:8]}",
        )
        return service_factory("enrich", env, topics)

    return create


class Kafka:
    """Produces test inputs and reads the outputs (committed records only)."""

    def __init__(
        self,
        producer: Producer,
        serde: Callable[[str], AvroSerde],
        consumers: Callable[..., Consumer],
    ) -> None:
        self.producer, self.serde, self.consumers = producer, serde, consumers
        self.readers: dict[str, tuple[Consumer, list[Any]]] = {}

    def event(self, topic: str, value: dict[str, Any]) -> None:
        self.producer.produce(
            topic,
            key=value["stay_key"],
            value=self.serde("harpicoop.StayEvent").serialize(topic, value),
        )
        assert self.producer.flush(10) == 0

    def practitioner(self, topic: str, rpps: str, value: dict[str, Any] | None) -> None:
        data = (
            None if value is None else self.serde("harpicoop.Practitioner").serialize(topic, value)
        )
        self.producer.produce(topic, key=rpps, value=data)
        assert self.producer.flush(10) == 0

    def read(self, topic: str, schema: str | None) -> list[Any]:
        consumer, seen = self.readers.setdefault(topic, (self.consumers(topic), []))
        for message in consumer.consume(500, timeout=0.5):
            if message.error() is None:
                seen.append(
                    message
                    if schema is None
                    else self.serde(schema).deserialize(topic, message.value() or b"")
                )
        return seen


@pytest.fixture
def kafka(
    producer_factory: Callable[..., Producer],
    serde_factory: Callable[[str], AvroSerde],
    consumer_factory: Callable[..., Consumer],
) -> Kafka:
    return Kafka(producer_factory(), serde_factory, consumer_factory)


def visit_event(visit: str, gp: str | None, movement: str = "MVT1") -> dict[str, Any]:
    event = stay_event(visit)
    event["event_id"] = f"chrunancy:{visit}-{movement}"
    event["movement"]["movement_id"] = movement
    event["care_team"] = (
        [{"role": "ODRP", "rpps": gp, "family_name": "X", "given_name": "Y"}] if gp else []
    )
    return event


def test_events_are_routed_or_unroutable_with_the_reason_and_poison_is_dead_lettered(
    enrich_factory: Callable[..., ServiceProcess], kafka: Kafka
) -> None:
    service = enrich_factory()
    topics = service.topics
    kafka.practitioner(topics["practitioners"], GP["rpps"], GP)
    kafka.practitioner(topics["practitioners"], "30303030303", practitioner("30303030303"))
    kafka.event(topics["input"], visit_event("V1", GP["rpps"]))
    kafka.event(topics["input"], visit_event("V2", None))
    kafka.event(topics["input"], visit_event("V3", "19990000000"))
    kafka.event(topics["input"], visit_event("V4", "30303030303"))
    kafka.producer.produce(
        topics["input"], key=b"chrunancy:V5", value=b"\x00\x00\x00\x00\x63garbage"
    )
    kafka.producer.flush(10)

    [enriched] = eventually(
        lambda: kafka.read(topics["enriched"], "harpicoop.EnrichedStayEvent"),
        what="the enriched event",
    )
    assert enriched["event"]["stay_key"] == "chrunancy:V1"
    assert enriched["recipients"][0]["mssante_address"] == "jeanne.martin@medecin.mssante.fr"
    unroutable = eventually(
        lambda: (
            len(kafka.read(topics["unroutable"], "harpicoop.UnroutableStayEvent")) == 3
            and kafka.read(topics["unroutable"], "harpicoop.UnroutableStayEvent")
        ),
        what="three unroutable",
    )
    assert {u["event"]["stay_key"]: u["reason"] for u in unroutable} == {
        "chrunancy:V2": "NO_GP",
        "chrunancy:V3": "UNKNOWN_RPPS",
        "chrunancy:V4": "NO_SECURE_ADDRESS",
    }
    [dead] = eventually(lambda: kafka.read(topics["dead_letter"], None), what="the dead letter")
    assert dead.key() == b"chrunancy:V5"
    assert read_error_headers(dead.headers())["topic"] == topics["input"]


def test_a_practitioner_added_later_routes_later_events_and_a_removal_unroutes_them(
    enrich_factory: Callable[..., ServiceProcess], kafka: Kafka
) -> None:
    service = enrich_factory()
    topics = service.topics
    newcomer = practitioner("40404040404", ("PER", "nouveau@medecin.mssante.fr"))
    kafka.event(topics["input"], visit_event("V1", newcomer["rpps"]))
    eventually(
        lambda: kafka.read(topics["unroutable"], "harpicoop.UnroutableStayEvent"),
        what="unknown at first",
    )

    kafka.practitioner(topics["practitioners"], newcomer["rpps"], newcomer)

    def routed() -> bool:
        kafka.event(
            topics["input"], visit_event("V2", newcomer["rpps"], movement=uuid.uuid4().hex[:6])
        )
        return bool(kafka.read(topics["enriched"], "harpicoop.EnrichedStayEvent"))

    eventually(routed, what="routed once the directory knows the GP")

    kafka.practitioner(topics["practitioners"], newcomer["rpps"], None)  # removed: a tombstone
    before = len(kafka.read(topics["unroutable"], "harpicoop.UnroutableStayEvent"))

    def unrouted() -> bool:
        kafka.event(
            topics["input"], visit_event("V3", newcomer["rpps"], movement=uuid.uuid4().hex[:6])
        )
        return len(kafka.read(topics["unroutable"], "harpicoop.UnroutableStayEvent")) > before

    eventually(unrouted, what="unroutable again after the removal")


def test_a_killed_enrich_loses_nothing_and_lets_no_duplicate_through_in_stay_order(
    enrich_factory: Callable[..., ServiceProcess], kafka: Kafka
) -> None:
    service = enrich_factory()
    topics = service.topics
    kafka.practitioner(topics["practitioners"], GP["rpps"], GP)
    serde = kafka.serde("harpicoop.StayEvent")
    sent = []
    for visit in range(40):
        for step in range(10):
            event = visit_event(
                f"V{visit:03}", GP["rpps"] if visit % 4 else None, movement=f"M{step}"
            )
            sent.append(event["event_id"])
            kafka.producer.produce(
                topics["input"],
                key=event["stay_key"],
                value=serde.serialize(topics["input"], event),
            )
    kafka.producer.flush(30)

    def outputs() -> list[dict[str, Any]]:
        return kafka.read(topics["enriched"], "harpicoop.EnrichedStayEvent") + kafka.read(
            topics["unroutable"], "harpicoop.UnroutableStayEvent"
        )

    eventually(lambda: len(outputs()) >= 50, what="the first outputs")
    service.kill()
    service.start()
    eventually(lambda: len(outputs()) >= len(sent), timeout=120, what="every event out")
    ids = [item["event"]["event_id"] for item in outputs()]
    duplicates = [event_id for event_id, count in collections.Counter(ids).items() if count > 1]
    assert duplicates == [] and sorted(ids) == sorted(sent)
    by_stay: dict[str, list[str]] = collections.defaultdict(list)
    for item in kafka.read(topics["enriched"], "harpicoop.EnrichedStayEvent"):
        by_stay[item["event"]["stay_key"]].append(item["event"]["movement"]["movement_id"])
    assert all(steps == sorted(steps) for steps in by_stay.values())


def test_a_nul_in_the_ids_or_a_movement_in_9999_does_not_stop_enrich(
    enrich_factory: Callable[..., ServiceProcess], kafka: Kafka
) -> None:
    service = enrich_factory()
    topics = service.topics
    kafka.practitioner(topics["practitioners"], GP["rpps"], GP)
    poison = poison_events(lambda visit: {"event": visit_event(visit, GP["rpps"])})
    for value in [*poison, {"event": visit_event("V9003", GP["rpps"])}]:
        kafka.event(topics["input"], value["event"])

    # Nothing in enrich stores or computes with them: routed like any other, downstream judges.
    routed = eventually(
        lambda: (
            len(kafka.read(topics["enriched"], "harpicoop.EnrichedStayEvent")) >= 3
            and kafka.read(topics["enriched"], "harpicoop.EnrichedStayEvent")
        ),
        what="the three events enriched",
    )
    assert sorted(item["event"]["stay_key"] for item in routed) == sorted(
        [*POISON_STAY_KEYS, "chrunancy:V9003"]
    )
    assert kafka.read(topics["dead_letter"], None) == []
    assert_alive_and_healthy(service)


def test_a_list_or_foreign_mailbox_in_the_directory_never_gets_an_smtp_command(
    enrich_factory: Callable[..., ServiceProcess],
    notify_factory: Callable[..., ServiceProcess],
    mail_server: MailServer,
    kafka: Kafka,
) -> None:
    notify = notify_factory(mail_server)
    enrich = enrich_factory(enriched=notify.topics["input"])
    topics = enrich.topics
    good = f"dr.{uuid.uuid4().hex[:8]}@medecin.mssante.fr"
    # Read loosely, "a,b@x.mssante.fr" is two addresses, the first one a local mailbox "a".
    listed = practitioner("20202020202", ("PER", "a,b@x.mssante.fr"))
    foreign = practitioner("30303030303", ("PER", "dr@evil-mssante.fr"))
    gp = practitioner("10101010101", ("PER", good))
    for address in ("a", "a,b@x.mssante.fr", "b@x.mssante.fr", "dr@evil-mssante.fr"):
        mail_server.refuse(address)  # a RCPT for any of them would end FAILED 550, not SKIPPED
    for record in (listed, foreign, gp):
        kafka.practitioner(topics["practitioners"], record["rpps"], record)
    kafka.event(topics["input"], visit_event("V1", listed["rpps"]))
    kafka.event(topics["input"], visit_event("V2", foreign["rpps"]))
    kafka.event(topics["input"], visit_event("V3", gp["rpps"]))

    [unroutable] = eventually(
        lambda: kafka.read(topics["unroutable"], "harpicoop.UnroutableStayEvent"),
        what="the listed mailbox's event unroutable",
    )
    assert unroutable["event"]["stay_key"] == "chrunancy:V1"
    assert unroutable["reason"] == "NO_SECURE_ADDRESS"

    def settled() -> list[dict[str, Any]]:
        statuses = kafka.read(notify.topics["status"], "harpicoop.NotificationStatus")
        done = {item["recipient_rpps"] for item in statuses if item["status"] != "RETRYING"}
        return statuses if {foreign["rpps"], gp["rpps"]} <= done else []

    statuses = eventually(settled, what="a final status for the foreign GP and the valid one")
    final = {item["recipient_rpps"]: item for item in statuses if item["status"] != "RETRYING"}
    assert final[gp["rpps"]]["status"] == "SENT"
    assert final[foreign["rpps"]]["status"] == "SKIPPED"
    assert "outside the MSSanté secure domains" in final[foreign["rpps"]]["detail"]
    assert listed["rpps"] not in final

    [email] = mail_server.to(good)
    assert email["Message-ID"] == final[gp["rpps"]]["message_id"]
    # The server writes one X-Original-To per RCPT it accepted, and refuses the bad ones' RCPT.
    envelope = [
        str(to) for message in mail_server.messages() for to in message.get_all("X-Original-To", [])
    ]
    assert envelope == [good]
    assert [item for item in statuses if item["status"] == "FAILED"] == []
    assert_alive_and_healthy(enrich)
    assert_alive_and_healthy(notify)
