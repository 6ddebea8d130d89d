"""Notify end to end: Kafka in, real SMTP server out, PostgreSQL ledger, statuses published."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from services.common.deadletter import read_error_headers
from services.common.serde import AvroSerde
from services.notify.notices import NoticeKind, notification_id
from services.notify.wording import fields_without_words
from tests.notify.builders import enriched, recipient
from tests.support import (
    MailServer,
    ServiceProcess,
    assert_alive_and_healthy,
    assert_poison_dead_lettered,
    dead_letters_on,
    eventually,
    poison_events,
    tls_mail_server,
)

pytestmark = pytest.mark.integration


def address() -> str:
    return f"dr.{uuid.uuid4().hex[:8]}@medecin.mssante.fr"


class Statuses:
    """Everything published on the service's status topic so far."""

    def __init__(self, consumer: Consumer, serde: AvroSerde) -> None:
        self.consumer, self.serde, self.seen = consumer, serde, list[dict[str, Any]]()

    def read(self) -> list[dict[str, Any]]:
        for message in self.consumer.consume(500, timeout=0.5):
            if message.error() is None:
                self.seen.append(
                    self.serde.deserialize(str(message.topic()), message.value() or b"")
                )
        return self.seen

    def with_status(self, status: str) -> list[dict[str, Any]]:
        return [item for item in self.read() if item["status"] == status]


@pytest.fixture
def statuses_of(
    consumer_factory: Callable[..., Consumer], serde_factory: Callable[[str], AvroSerde]
) -> Callable[[ServiceProcess], Statuses]:
    return lambda service: Statuses(
        consumer_factory(service.topics["status"]), serde_factory("harpicoop.NotificationStatus")
    )


def test_one_admission_gives_exactly_one_email_with_the_right_words(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    statuses_of: Callable[[ServiceProcess], Statuses],
) -> None:
    to = address()
    service = notify_factory(mail_server)
    publish(service.topics["input"], enriched("V100", [recipient("10101010101", to)]))

    [email] = eventually(lambda: mail_server.to(to), what="the admission email")
    assert email["Subject"] == "Hospitalisation en urgence de votre patient(e) — CHRU de Nancy"
    text = email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Bonjour Docteur Jeanne Martin" in text
    assert "hospitalisé(e) en urgence le 02/03/2026 à 09:15" in text  # Paris time
    assert "Mme LEFÈVRE Hélène" in text and "14/07/1948" in text
    assert "Service : Cardiologie" in text
    html = email.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<strong>hospitalisé(e) en urgence</strong>" in html

    status = statuses_of(service)
    [sent] = eventually(lambda: status.with_status("SENT"), what="the SENT status")
    assert sent["recipient_address"] == to and sent["kind"] == "ADMISSION"
    assert email["Message-ID"] == sent["message_id"]
    assert len(mail_server.to(to)) == 1


def test_a_discharge_carries_the_covid_status_and_the_destination_in_words(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
) -> None:
    to = address()
    service = notify_factory(mail_server)
    # A transfer out (PMSI mode 7) to an establishment of the FINESS sample in deploy/, from a
    # unit the message names by its code only: the words come from deploy/.
    discharge = enriched(
        "V101",
        [recipient("10101010102", to)],
        kind="DISCHARGE",
        covid_status="POSITIVE",
        disposition="7",
        destination="990000047",
    )
    discharge["event"]["movement"].update(unit="URGA", unit_name=None)
    publish(service.topics["input"], discharge)
    [email] = eventually(lambda: mail_server.to(to), what="the discharge email")
    text = email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert email["Subject"].startswith("Sortie d'hospitalisation de votre patient(e)")
    assert "Statut Covid-19 à la sortie : positif" in text
    assert "Service : Urgences adultes Central" in text
    assert "Mode de sortie : transfert vers un autre établissement" in text
    assert (
        "Destination : CENTRE HOSPITALIER REGIONAL METZ-THIONVILLE HOPITAL DE MERCY "
        "(57530 ARS LAQUENEXY)" in text
    )
    assert fields_without_words(text) == []


def test_duplicate_deliveries_and_a_crash_mid_batch_still_give_one_email_each(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    statuses_of: Callable[[ServiceProcess], Statuses],
) -> None:
    addresses = [address() for _ in range(40)]
    service = notify_factory(mail_server, NOTIFY_SENDING_LEASE_SECONDS="2")
    for index, to in enumerate(addresses):
        event = enriched(f"V2{index:02}", [recipient(f"1010101{index:04}", to)])
        publish(service.topics["input"], event)
        publish(service.topics["input"], event)  # a duplicate delivery from upstream

    eventually(lambda: len(mail_server.messages()) >= 10, what="the first emails")
    service.kill()
    service.start()

    status = statuses_of(service)

    def settled() -> bool:
        done = {
            item["recipient_address"]
            for item in status.read()
            if item["status"] in ("SENT", "FAILED")
        }
        return done >= set(addresses)

    eventually(settled, timeout=120, what="every notice settled")
    for to in addresses:
        assert len(mail_server.to(to)) <= 1, f"{to} received the same notice twice"
    failed = status.with_status("FAILED")
    # Only a notice caught mid-hand-off by the kill may be unsent: it is reported, never resent.
    assert all("interrupted while being handed" in (item["detail"] or "") for item in failed)
    assert len(mail_server.messages()) + len(failed) >= len(addresses)


def test_a_cancelled_admission_is_retracted(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
) -> None:
    to = address()
    service = notify_factory(mail_server)
    gp = recipient("10101010103", to)
    publish(service.topics["input"], enriched("V300", [gp], movement_id="MVT300"))
    eventually(lambda: mail_server.to(to), what="the admission email")

    publish(service.topics["input"], enriched("V300", [gp], movement_id="MVT300", action="CANCEL"))
    emails = eventually(
        lambda: len(mail_server.to(to)) == 2 and mail_server.to(to), what="the retraction"
    )
    retraction = emails[1]
    assert retraction["Subject"].startswith("Annulation d'une information sur votre patient(e)")
    assert (
        "Merci de ne pas tenir compte du message précédent"
        in retraction.get_body(("plain",)).get_content()
    )  # type: ignore[union-attr]


def test_a_cancellation_withdraws_its_own_stays_movement_only(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    statuses_of: Callable[[ServiceProcess], Statuses],
) -> None:
    # Engines number movements per stay: two stays of one GP both have a movement 312. Both
    # admissions wait (the server is down) when the second stay's 312 is cancelled.
    mail_server.stop()
    to = address()
    service = notify_factory(mail_server)
    gp = recipient("10101010109", to)
    for visit in ("V310", "V311"):
        publish(service.topics["input"], enriched(visit, [gp], movement_id="312"))
    status = statuses_of(service)
    eventually(lambda: len(status.with_status("RETRYING")) >= 2, what="both admissions waiting")
    publish(service.topics["input"], enriched("V311", [gp], movement_id="312", action="CANCEL"))
    eventually(lambda: status.with_status("SKIPPED"), what="the cancelled stay's notice withdrawn")

    mail_server.start()
    emails = eventually(lambda: mail_server.to(to), what="the other stay's admission")
    eventually(lambda: status.with_status("SENT"), what="its SENT status")
    assert len(mail_server.to(to)) == 1
    first_stay = notification_id(
        "chrunancy:MSG-V310-ADMISSION-INSERT", gp["rpps"], NoticeKind.ADMISSION
    )
    assert emails[0]["X-Harpicoop-Notification-Id"] == first_stay
    assert {item["stay_key"] for item in status.with_status("SKIPPED")} == {"chrunancy:V311"}


def test_while_the_smtp_server_is_down_nothing_is_lost(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    statuses_of: Callable[[ServiceProcess], Statuses],
) -> None:
    mail_server.stop()
    addresses = [address() for _ in range(5)]
    service = notify_factory(mail_server)
    for index, to in enumerate(addresses):
        publish(
            service.topics["input"],
            enriched(f"V4{index:02}", [recipient(f"1020202{index:04}", to)]),
        )
    status = statuses_of(service)
    eventually(
        lambda: len({item["recipient_address"] for item in status.with_status("RETRYING")}) == 5,
        what="retries",
    )

    mail_server.start()
    eventually(
        lambda: all(mail_server.to(to) for to in addresses),
        what="every email once the server is back",
    )
    eventually(lambda: len(status.with_status("SENT")) == 5, what="five SENT statuses")
    assert all(len(mail_server.to(to)) == 1 for to in addresses)


def test_a_refused_address_fails_and_is_dead_lettered(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    statuses_of: Callable[[ServiceProcess], Statuses],
    consumer_factory: Callable[..., Consumer],
) -> None:
    to = address()
    mail_server.refuse(to)
    service = notify_factory(mail_server)
    publish(service.topics["input"], enriched("V500", [recipient("10101010105", to)]))

    status = statuses_of(service)
    [failed] = eventually(lambda: status.with_status("FAILED"), what="the FAILED status")
    assert failed["smtp_code"] == 550 and "unknown mailbox" in failed["detail"]
    dead = consumer_factory(service.topics["dead_letter"])
    record = eventually(
        lambda: next((m for m in dead.consume(10, timeout=0.5) if m.error() is None), None),
        what="the dead letter",
    )
    # A reference to the ledger row, never the rendered email (kept there, purged on time).
    assert record.key() == record.value() == failed["notification_id"].encode()
    assert "550" in read_error_headers(record.headers())["reason"]
    assert not any(word in str(record.headers()) for word in ("LEFÈVRE", "Hélène", "1948"))
    assert mail_server.to(to) == []


def test_opted_out_and_insecure_addresses_are_never_contacted(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    statuses_of: Callable[[ServiceProcess], Statuses],
) -> None:
    opted_out, insecure, fine = address(), "dr.house@gmail.com", address()
    service = notify_factory(mail_server)
    publish(
        service.topics["input"],
        enriched(
            "V600",
            [
                recipient("10101010106", opted_out, opted_out=True),
                recipient("10101010107", insecure, role="RP"),
                recipient("10101010108", fine, role="RT"),
            ],
        ),
    )
    eventually(lambda: mail_server.to(fine), what="the email to the secure address")
    status = statuses_of(service)
    skipped = eventually(
        lambda: len(status.with_status("SKIPPED")) == 2 and status.with_status("SKIPPED"),
        what="two SKIPPED statuses",
    )
    reasons = {item["recipient_rpps"]: item["detail"] for item in skipped}
    assert reasons == {
        "10101010106": "the practitioner opted out of notifications",
        "10101010107": "the address is outside the MSSanté secure domains",
    }
    assert [m["X-Original-To"] for m in mail_server.messages()] == [fine]


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_with_a_client_certificate(
    security: str,
    tmp_path: Path,
    certificates: dict[str, Path],
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
) -> None:
    server = tls_mail_server(tmp_path, security, certificates)
    try:
        to = address()
        service = notify_factory(
            server,
            SMTP_CA_FILE=str(certificates["ca"]),
            SMTP_CLIENT_CERT=str(certificates["client"]),
            SMTP_CLIENT_KEY=str(certificates["client_key"]),
        )
        publish(service.topics["input"], enriched("V700", [recipient("10101010109", to)]))
        eventually(lambda: server.to(to), what=f"the email over {security}")
    finally:
        server.stop()


def test_the_service_reports_its_health_and_counts_what_it_sent(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
) -> None:
    import httpx

    to = address()
    service = notify_factory(mail_server)
    publish(service.topics["input"], enriched("V800", [recipient("10101010110", to)]))
    eventually(lambda: mail_server.to(to), what="the email")
    port = eventually(service.observability_port, what="the observability endpoint")
    health = httpx.get(f"http://localhost:{port}/health").json()
    assert health["healthy"] is True
    metrics = httpx.get(f"http://localhost:{port}/metrics").text
    assert 'harpicoop_records_processed_total{outcome="sent",service="notify"} 1.0' in metrics
    assert 'harpicoop_latency_seconds_count{service="notify",stage="smtp_accepted"} 1.0' in metrics


def test_poison_records_are_dead_lettered_and_the_next_event_is_notified(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    consumer_factory: Callable[..., Consumer],
) -> None:
    service = notify_factory(mail_server, POISON_BACKOFF_SECONDS="0.05")
    poison = poison_events(
        lambda visit: enriched(visit, [recipient("10101010111", address())], kind="DISCHARGE")
    )
    to = address()
    for value in [*poison, enriched("V9003", [recipient("10101010112", to)])]:
        publish(service.topics["input"], value)

    [email] = eventually(lambda: mail_server.to(to), what="the email of the event after them")
    assert "Hospitalisation" in email["Subject"]
    dead = dead_letters_on(consumer_factory(service.topics["dead_letter"]), 2)
    assert_poison_dead_lettered(dead, service.topics["input"], "notify")
    assert_alive_and_healthy(service)
