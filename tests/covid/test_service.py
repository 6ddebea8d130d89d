"""The Covid-19 follow-up lifecycle against the real stack, and the GP's emails through notify."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from services.common.db import connect
from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.gateway.bootstrap import GatewayConfig
from services.gateway.handler import Topics
from services.gateway.intake import RAW_MESSAGE_SCHEMA, STAY_EVENT_SCHEMA
from tests.covid.builders import patient_merge, survivor
from tests.gateway.messages import identity
from tests.gateway.support import MllpClient, read_ack, running_gateway
from tests.notify.builders import enriched, recipient
from tests.support import (
    MailServer,
    ServiceProcess,
    assert_alive_and_healthy,
    assert_poison_dead_lettered,
    dead_letters_on,
    eventually,
    poison_events,
    stack_env,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def covid_factory(
    stack: Settings,
    topic_factory: Callable[..., str],
    group_factory: Callable[[], str],
    empty_database: str,
    service_factory: Callable[..., ServiceProcess],
) -> Callable[..., ServiceProcess]:
    def create(**extra_env: str) -> ServiceProcess:
        topics = {
            "enriched": topic_factory("harpicoop.EnrichedStayEvent"),
            "unroutable": topic_factory("harpicoop.UnroutableStayEvent"),
            "followups": topic_factory("harpicoop.CovidFollowup", compacted=True),
            "merges": topic_factory("harpicoop.PatientMerge"),
            "dead_letter": topic_factory(),
        }
        env = stack_env(
            stack,
            DATABASE_URL=empty_database,
            COVID_ENRICHED_TOPIC=topics["enriched"],
            COVID_UNROUTABLE_TOPIC=topics["unroutable"],
            COVID_FOLLOWUPS_TOPIC=topics["followups"],
            COVID_MERGES_TOPIC=topics["merges"],
            COVID_DEADLETTER_TOPIC=topics["dead_letter"],
            COVID_GROUP_ID=group_factory(),
            COVID_TIMER_INTERVAL_SECONDS="0.2",
            **extra_env,
        )
        return service_factory("covid", env, topics)

    return create


class Followups:
    def __init__(self, consumer: Consumer, serde: AvroSerde) -> None:
        self.consumer, self.serde, self.seen = consumer, serde, list[dict[str, Any]]()

    def read(self) -> list[dict[str, Any]]:
        for message in self.consumer.consume(100, timeout=0.5):
            if message.error() is None and message.value() is not None:
                self.seen.append(
                    self.serde.deserialize(str(message.topic()), message.value() or b"")
                )
        return self.seen

    def states(self) -> list[tuple[str, str | None, int]]:
        return [
            (item["state"], item["close_reason"], item["reminders_sent"]) for item in self.read()
        ]


@pytest.fixture
def followups_of(
    consumer_factory: Callable[..., Consumer], serde_factory: Callable[[str], AvroSerde]
) -> Callable[[ServiceProcess], Followups]:
    return lambda service: Followups(
        consumer_factory(service.topics["followups"]), serde_factory("harpicoop.CovidFollowup")
    )


@pytest.fixture
def publish(
    producer_factory: Callable[..., Producer], serde_factory: Callable[[str], AvroSerde]
) -> Callable[[str, dict[str, Any]], None]:
    producer = producer_factory()

    def send(topic: str, value: dict[str, Any]) -> None:
        if "merged_ipp" in value:  # keyed as the gateway keys it: by the surviving record
            schema, key = (
                "harpicoop.PatientMerge",
                f"{value['establishment']}:{value['patient']['ipp']}",
            )
        elif "reason" in value:
            schema, key = "harpicoop.UnroutableStayEvent", value["event"]["stay_key"]
        else:
            schema, key = "harpicoop.EnrichedStayEvent", value["event"]["stay_key"]
        producer.produce(topic, key=key, value=serde_factory(schema).serialize(topic, value))
        assert producer.flush(10) == 0

    return send


def discharge(
    visit: str, status: str, gp: dict[str, Any], at: dt.datetime, **kwargs: Any
) -> dict[str, Any]:
    value = enriched(
        visit, [gp], kind="DISCHARGE", covid_status=status, movement_id=f"MVT-{visit}", **kwargs
    )
    value["event"]["movement"]["occurred_at"] = at
    return value


def readmission(visit: str, at: dt.datetime, establishment: str) -> dict[str, Any]:
    value = enriched(visit, [], kind="ADMISSION", movement_id=f"MVT-{visit}")
    event = value["event"]
    event["establishment"], event["stay_key"] = establishment, f"{establishment}:{visit}"
    event["event_id"] = f"{establishment}:{event['message_control_id']}"
    event["patient"]["ipp"] = "IPP-ELSEWHERE"  # another establishment, another IPP
    event["patient"]["family_name"] = "LEFEVRE"  # typed without the accent there
    event["movement"]["occurred_at"] = at
    return {
        "event": event,
        "reason": "NO_GP",
        "gp_rpps": None,
        "detail": "no GP",
        "detected_at": at,
    }


GP = recipient("10101010101", "jeanne.martin@medecin.mssante.fr")


def test_a_positive_discharge_opens_a_case_that_a_readmission_elsewhere_closes(
    covid_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    followups_of: Callable[[ServiceProcess], Followups],
) -> None:
    service = covid_factory()
    now = dt.datetime.now(dt.UTC)
    publish(service.topics["enriched"], discharge("V1", "POSITIVE", GP, now))
    followups = followups_of(service)
    eventually(lambda: followups.states() == [("OPEN", None, 0)], what="the case opened")
    opened = followups.seen[0]
    assert opened["gp"]["rpps"] == GP["rpps"] and opened["covid_status"] == "POSITIVE"

    # Readmitted at another establishment, known there under another IPP: an unroutable event.
    publish(
        service.topics["unroutable"], readmission("W9", now + dt.timedelta(days=2), "luneville")
    )
    eventually(
        lambda: followups.states()[-1] == ("CLOSED", "READMISSION", 0), what="closed by readmission"
    )


def test_a_later_negative_result_or_a_cancelled_discharge_closes_the_case(
    covid_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    followups_of: Callable[[ServiceProcess], Followups],
) -> None:
    service = covid_factory()
    now = dt.datetime.now(dt.UTC)
    publish(service.topics["enriched"], discharge("V2", "SUSPECTED", GP, now))
    followups = followups_of(service)
    eventually(lambda: followups.states() == [("OPEN", None, 0)], what="the case opened")
    negative = enriched("V3", [GP], kind="TRANSFER", covid_status="NEGATIVE", movement_id="MVT-V3")
    negative["event"]["movement"]["occurred_at"] = now + dt.timedelta(hours=5)
    publish(service.topics["enriched"], negative)
    eventually(
        lambda: followups.states()[-1] == ("CLOSED", "NEGATIVE_RESULT", 0),
        what="closed by the negative result",
    )

    other = recipient("10101010102", "paul.roux@medecin.mssante.fr")
    publish(service.topics["enriched"], discharge("V4", "POSITIVE", other, now))
    eventually(lambda: followups.states()[-1] == ("OPEN", None, 0), what="a second case")
    publish(service.topics["enriched"], discharge("V4", "POSITIVE", other, now, action="CANCEL"))
    eventually(
        lambda: followups.states()[-1] == ("CLOSED", "DISCHARGE_CANCELLED", 0),
        what="closed by the cancellation",
    )


def test_a_correction_to_a_discharge_by_death_closes_the_case_it_had_opened(
    covid_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    followups_of: Callable[[ServiceProcess], Followups],
) -> None:
    service = covid_factory()
    now = dt.datetime.now(dt.UTC)
    publish(service.topics["enriched"], discharge("V6", "POSITIVE", GP, now))
    followups = followups_of(service)
    eventually(lambda: followups.states() == [("OPEN", None, 0)], what="the case opened")

    # The establishment corrects the discharge: the patient died (PMSI mode de sortie 9).
    died = discharge("V6", "POSITIVE", GP, now, action="UPDATE", disposition="9")
    publish(service.topics["enriched"], died)
    eventually(
        lambda: followups.states()[-1] == ("CLOSED", "DECEASED", 0), what="closed, no reminder"
    )
    # And a discharge by death opens no case at all.
    publish(service.topics["enriched"], discharge("V7", "POSITIVE", GP, now, disposition="9"))
    # Discharged after the death's time, so the death closes it not, in whatever order
    # the two stays' partitions are read.
    marker = discharge("V8", "SUSPECTED", GP, now + dt.timedelta(hours=1))
    publish(service.topics["enriched"], marker)
    eventually(lambda: len(followups.states()) == 3, what="the next discharge's case")
    assert followups.states()[-1] == ("OPEN", None, 0)
    assert [state for state, _, _ in followups.states()].count("OPEN") == 2


def test_a_discharge_too_late_for_its_reminder_sends_the_follow_up_alone(
    covid_factory: Callable[..., ServiceProcess],
    notify_factory: Callable[..., ServiceProcess],
    mail_server: MailServer,
    publish: Callable[..., None],
    followups_of: Callable[[ServiceProcess], Followups],
) -> None:
    service = covid_factory(COVID_REMINDER_DELAY_SECONDS="60", COVID_COMPLETE_AFTER_SECONDS="3")
    address = f"dr.{uuid.uuid4().hex[:8]}@medecin.mssante.fr"
    gp = recipient("10101010104", address)
    notify_factory(mail_server, followups_topic=service.topics["followups"])
    # Replayed, or sent late by its engine: its reminder was due an hour ago.
    late = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    publish(service.topics["enriched"], discharge("V9", "POSITIVE", gp, late))
    followups = followups_of(service)
    eventually(
        lambda: followups.states()[-1:] == [("CLOSED", "FOLLOWUP_COMPLETE", 0)],
        what="opened, never reminded, then complete",
    )
    assert followups.states() == [("OPEN", None, 0), ("CLOSED", "FOLLOWUP_COMPLETE", 0)]
    [email] = eventually(lambda: mail_server.to(address), what="the follow-up email")
    assert email["Subject"].startswith("Suivi Covid-19 de votre patient(e)")
    time.sleep(2)  # a reminder, were one sent, would be on its way by now
    assert len(mail_server.to(address)) == 1


def test_a_reminder_pending_across_a_restart_fires_once_and_the_gp_gets_both_emails(
    covid_factory: Callable[..., ServiceProcess],
    notify_factory: Callable[..., ServiceProcess],
    mail_server: MailServer,
    publish: Callable[..., None],
    followups_of: Callable[[ServiceProcess], Followups],
) -> None:
    service = covid_factory(COVID_REMINDER_DELAY_SECONDS="6", COVID_COMPLETE_AFTER_SECONDS="2")
    address = f"dr.{uuid.uuid4().hex[:8]}@medecin.mssante.fr"
    gp = recipient("10101010103", address)
    notify_factory(mail_server, followups_topic=service.topics["followups"])
    publish(service.topics["enriched"], discharge("V5", "POSITIVE", gp, dt.datetime.now(dt.UTC)))
    followups = followups_of(service)
    eventually(lambda: followups.states() == [("OPEN", None, 0)], what="the case opened")

    service.kill()  # the reminder is pending in the database, not in the process
    eventually(lambda: mail_server.to(address), what="the follow-up email")
    service.start()

    eventually(
        lambda: (
            followups.states()[-2:] == [("REMINDED", None, 1), ("CLOSED", "FOLLOWUP_COMPLETE", 1)]
        ),
        what="reminded once, then complete",
    )
    assert [state for state, _, _ in followups.states()].count("REMINDED") == 1
    emails = eventually(
        lambda: len(mail_server.to(address)) == 2 and mail_server.to(address),
        what="the reminder email",
    )
    assert emails[0]["Subject"].startswith("Suivi Covid-19 de votre patient(e)")
    assert emails[1]["Subject"].startswith("Rappel : suivi Covid-19")
    assert "statut Covid-19 positif" in emails[1].get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_poison_records_are_dead_lettered_and_the_next_discharge_opens_its_case(
    covid_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    followups_of: Callable[[ServiceProcess], Followups],
    consumer_factory: Callable[..., Consumer],
) -> None:
    service = covid_factory(POISON_BACKOFF_SECONDS="0.05")
    now = dt.datetime.now(dt.UTC)
    poison = poison_events(lambda visit: discharge(visit, "POSITIVE", GP, now))
    for value in [*poison, discharge("V9003", "POSITIVE", GP, now)]:
        publish(service.topics["enriched"], value)

    followups = followups_of(service)
    eventually(lambda: followups.states() == [("OPEN", None, 0)], what="the case opened")
    assert followups.seen[0]["stay_key"] == "chrunancy:V9003"
    dead = dead_letters_on(consumer_factory(service.topics["dead_letter"]), 2)
    assert_poison_dead_lettered(dead, service.topics["enriched"], "covid")
    assert_alive_and_healthy(service)


def test_a_closed_case_is_purged_with_a_tombstone_and_notify_forgets_it(
    covid_factory: Callable[..., ServiceProcess],
    notify_factory: Callable[..., ServiceProcess],
    mail_server: MailServer,
    publish: Callable[..., None],
    followups_of: Callable[[ServiceProcess], Followups],
    consumer_factory: Callable[..., Consumer],
    empty_database: str,
) -> None:
    service = covid_factory(COVID_RETENTION_SECONDS="3", COVID_PURGE_INTERVAL_SECONDS="0.2")
    address = f"dr.{uuid.uuid4().hex[:8]}@medecin.mssante.fr"
    gp = recipient("10101010104", address)
    notifier = notify_factory(mail_server, followups_topic=service.topics["followups"])
    now = dt.datetime.now(dt.UTC)
    publish(service.topics["enriched"], discharge("V6", "POSITIVE", gp, now))
    followups = followups_of(service)
    eventually(lambda: followups.states() == [("OPEN", None, 0)], what="the case opened")
    case_id = followups.seen[0]["case_id"]
    eventually(lambda: mail_server.to(address), what="the follow-up email")

    publish(service.topics["enriched"], discharge("V6", "POSITIVE", gp, now, action="CANCEL"))
    records = consumer_factory(service.topics["followups"])
    seen: list[tuple[bytes | None, bool]] = []

    def tombstone() -> bool:
        for message in records.consume(100, timeout=0.5):
            if message.error() is None:
                seen.append((message.key(), message.value() is None))
        return (case_id.encode(), True) in seen

    eventually(tombstone, timeout=60, what="the tombstone of the purged case")
    assert seen[-1] == (case_id.encode(), True) and seen.count((case_id.encode(), True)) == 1
    with connect(empty_database) as conn:
        assert conn.execute("SELECT count(*) FROM covid_case").fetchone() == (0,)
        assert conn.execute("SELECT case_id::text FROM covid_case_purged").fetchall() == [
            (case_id,)
        ]

        # Notify reads the tombstone past (no dead letter) and forgets the case's message.
        def forgotten() -> bool:
            rows = conn.execute(
                "SELECT state, message FROM notification WHERE movement_key = %s",
                (f"covid:{case_id}",),
            ).fetchall()
            return rows == [("sent", None)]

        eventually(forgotten, timeout=60, what="notify forgetting the purged case's email")
    assert_alive_and_healthy(notifier)
    assert '"record dead-lettered"' not in notifier.output()

    # The purged case's discharge replayed (a re-enrichment, say) does not open it again: the
    # next discharge of the same stay, behind it in the partition, is the only new case.
    publish(service.topics["enriched"], discharge("V6", "POSITIVE", gp, now))
    later = discharge("V6", "POSITIVE", gp, now, message_id="MSG-V6-later")
    later["event"]["movement"]["movement_id"] = "MVT-V6-later"
    publish(service.topics["enriched"], later)
    eventually(lambda: followups.states()[-1] == ("OPEN", None, 0), what="the later case")
    assert [item["state"] for item in followups.read() if item["case_id"] == case_id] == [
        "OPEN",
        "CLOSED",
    ]


def of_record(value: dict[str, Any], ipp: str, **patient: Any) -> dict[str, Any]:
    """``value``'s event, about the patient record ``ipp`` (and these patient fields)."""
    value["event"]["patient"] = {**value["event"]["patient"], "ipp": ipp, **patient}
    return value


def test_a_merge_moves_the_merged_records_case_to_the_survivor_whose_death_closes_it(
    covid_factory: Callable[..., ServiceProcess],
    notify_factory: Callable[..., ServiceProcess],
    mail_server: MailServer,
    publish: Callable[..., None],
    followups_of: Callable[[ServiceProcess], Followups],
    empty_database: str,
) -> None:
    service = covid_factory()
    address = f"dr.{uuid.uuid4().hex[:8]}@medecin.mssante.fr"
    gp = recipient("10101010105", address)
    notify_factory(mail_server, followups_topic=service.topics["followups"])
    now = dt.datetime.now(dt.UTC)
    # Record B (the builders' Hélène Lefèvre) leaves Covid-positive; A is who she really is.
    publish(service.topics["enriched"], of_record(discharge("M1", "POSITIVE", gp, now), "IPP-B"))
    followups = followups_of(service)
    eventually(lambda: followups.states() == [("OPEN", None, 0)], what="B's case opened")
    case_id = followups.seen[0]["case_id"]
    assert followups.seen[0]["patient"]["ipp"] == "IPP-B"

    a = survivor("IPP-A", ins="248077514812345")
    merge = patient_merge(a, "IPP-B")
    publish(service.topics["merges"], merge)
    eventually(lambda: len(followups.states()) == 2, what="the case moved")
    moved = followups.seen[1]
    assert (moved["case_id"], moved["state"], moved["reminders_sent"]) == (case_id, "OPEN", 0)
    assert moved["patient"] == a and moved["gp"] == followups.seen[0]["gp"]
    with connect(empty_database) as conn:
        assert conn.execute("SELECT ins, patient ->> 'ipp' FROM covid_case").fetchall() == [
            ("248077514812345", "IPP-A")
        ]

    # The merge replayed changes nothing; record C merged after it (same partition: same
    # survivor) shows the replay was read.
    publish(service.topics["enriched"], of_record(discharge("M2", "SUSPECTED", gp, now), "IPP-C"))
    eventually(lambda: len(followups.states()) == 3, what="C's case opened")
    publish(service.topics["merges"], merge)
    publish(service.topics["merges"], patient_merge(a, "IPP-C"))
    eventually(lambda: len(followups.states()) == 4, what="C's case moved")
    assert [item["patient"]["ipp"] for item in followups.seen] == [
        "IPP-B",
        "IPP-A",
        "IPP-C",
        "IPP-A",
    ]

    # A dies in another establishment, known there by her name only (no qualified INS): both
    # moved cases are hers, and close without a reminder.
    death = discharge("M3", "POSITIVE", gp, now + dt.timedelta(days=1), disposition="9")
    event = death["event"]
    event["establishment"], event["stay_key"] = "luneville", "luneville:M3"
    event["event_id"] = f"luneville:{event['message_control_id']}"
    event["patient"] = survivor("IPP-LUN", family_name="DURAND")
    publish(service.topics["enriched"], death)
    eventually(
        lambda: followups.states()[-2:] == [("CLOSED", "DECEASED", 0)] * 2,
        what="both moved cases closed by the survivor's death",
    )
    assert len(followups.states()) == 6

    # The GP was told once of each case: the move is no new follow-up.
    eventually(lambda: len(mail_server.to(address)) == 2, what="the two follow-up emails")
    time.sleep(2)
    assert len(mail_server.to(address)) == 2


def merge_recorded(database: str, merged_ipp: str) -> bool:
    """Whether covid has recorded the merge of ``merged_ipp`` (a connection of its own per
    look: a transaction kept open would not see the table the service creates)."""
    with connect(database, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('covid_patient_merge')").fetchone() == (None,):
            return False  # the service has not migrated yet
        found = conn.execute(
            "SELECT 1 FROM covid_patient_merge WHERE merged_ipp = %s", (merged_ipp,)
        ).fetchone()
        return found is not None


def test_a_discharge_of_the_merged_record_arriving_after_the_merge_is_the_survivors(
    covid_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    followups_of: Callable[[ServiceProcess], Followups],
    empty_database: str,
) -> None:
    service = covid_factory()
    now = dt.datetime.now(dt.UTC)
    # The merge comes straight from the gateway; B's last discharge, sent before it, comes
    # through dedup and enrich and reaches covid after it (two topics: the test waits for the
    # merge to be taken, as the longer path makes it in the platform).
    a = survivor("IPP-A")
    publish(service.topics["merges"], patient_merge(a, "IPP-B"))
    eventually(lambda: merge_recorded(empty_database, "IPP-B"), what="the merge recorded")
    publish(service.topics["enriched"], of_record(discharge("L1", "POSITIVE", GP, now), "IPP-B"))
    followups = followups_of(service)
    eventually(lambda: followups.states() == [("OPEN", None, 0)], what="the case opened")
    assert followups.seen[0]["patient"] == a

    # A's readmission (under her own identity, no INS) finds it hers.
    readmitted = enriched("L2", [], kind="ADMISSION", movement_id="MVT-L2")
    readmitted["event"]["patient"] = a
    readmitted["event"]["movement"]["occurred_at"] = now + dt.timedelta(days=2)
    publish(service.topics["enriched"], readmitted)
    eventually(
        lambda: followups.states()[-1] == ("CLOSED", "READMISSION", 0), what="closed by A's return"
    )


def test_an_a40_sent_to_the_gateway_moves_the_case(
    stack: Settings,
    covid_factory: Callable[..., ServiceProcess],
    topic_factory: Callable[..., str],
    publish: Callable[..., None],
    followups_of: Callable[[ServiceProcess], Followups],
) -> None:
    service = covid_factory()
    now = dt.datetime.now(dt.UTC)
    publish(service.topics["enriched"], of_record(discharge("G1", "POSITIVE", GP, now), "IPP-B"))
    followups = followups_of(service)
    eventually(lambda: followups.states() == [("OPEN", None, 0)], what="B's case opened")

    # The CHRU's engine merges IPP-B into IPP-A, whose qualified identity carries the INS.
    topics = Topics(
        stays=topic_factory(STAY_EVENT_SCHEMA),
        merges=service.topics["merges"],
        archive=topic_factory(RAW_MESSAGE_SCHEMA),
    )
    merge = identity(
        "A40",
        control_id=f"MRG-{uuid.uuid4().hex[:8]}",
        ipp="IPP-A",
        family="Durand",
        given="Marie",
        ins="248077514812345",
        identity_status="VALI",
        merged_ipp="IPP-B",
    )
    config = GatewayConfig(host="127.0.0.1", port=0, topics=topics)
    with running_gateway(stack, config) as gateway, MllpClient(gateway.port) as engine:
        assert read_ack(engine.send(merge)).code == "AA"

    eventually(lambda: len(followups.states()) == 2, what="the case moved")
    moved = followups.seen[1]["patient"]
    assert (moved["ipp"], moved["ins"], moved["family_name"]) == (
        "IPP-A",
        "248077514812345",
        "Durand",
    )


def test_a_merge_is_forgotten_after_the_retention(
    covid_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    empty_database: str,
) -> None:
    # It holds the survivor's identity: kept only as long as a closed case.
    service = covid_factory(COVID_RETENTION_SECONDS="4", COVID_PURGE_INTERVAL_SECONDS="0.2")
    publish(service.topics["merges"], patient_merge(survivor("IPP-A"), "IPP-B"))
    eventually(lambda: merge_recorded(empty_database, "IPP-B"), what="the merge recorded")
    eventually(lambda: not merge_recorded(empty_database, "IPP-B"), what="the merge forgotten")
