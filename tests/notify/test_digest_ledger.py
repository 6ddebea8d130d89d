"""Digests in the real ledger: intake defers, the delivery worker sends at the hour, once.

Intake and the delivery worker as the service builds them, on a fresh PostgreSQL database and a
real SMTP server writing one file per accepted message. Event times are set in the past so that
a digest is already due ("its hour has come"), or now so that it is not.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from typing import Any

import pytest
import structlog

from services.common import outbox
from services.common.preferences import DeliveryChoices, EventChoice, Mode
from services.common.records import EnrichedStayEvent
from services.notify.config import NotifyConfig
from services.notify.delivery import DeliveryWorker
from services.notify.digests import DIGEST_LINES_HEADER, PARIS
from services.notify.intake import Intake
from services.notify.wording import Vocabulary, fields_without_words
from tests.notify.builders import at, enriched, recipient, send_digests_now, timed
from tests.support import MailServer

pytestmark = pytest.mark.integration

GP_ADDRESS = "jeanne.martin@medecin.mssante.fr"
GP = recipient(
    "10101010101",
    GP_ADDRESS,
    choices=DeliveryChoices(kinds=frozenset(EventChoice), mode=Mode.DIGEST, digest_hour=18),
)
YESTERDAY = dt.datetime.now(PARIS).date() - dt.timedelta(days=1)


def event(
    visit: str,
    kind: str,
    movement: str,
    occurred: dt.datetime,
    received: dt.datetime,
    *,
    action: str = "INSERT",
    admission_mode: str = "SCHEDULED",
) -> dict[str, Any]:
    value = enriched(
        visit,
        [GP],
        kind=kind,
        action=action,
        movement_id=movement,
        admission_mode=admission_mode,
        message_id=f"MSG-{visit}-{kind}-{action}-{movement}",
    )
    return timed(value, occurred, received)


@pytest.fixture
def intake(worker: DeliveryWorker, ledger_conn: outbox.Conn) -> Intake:
    return Intake(
        config=NotifyConfig(),
        sender_address=worker.sender_address,
        conn=ledger_conn,
        establishment_names={"chrunancy": "CHRU de Nancy"},
        statuses=worker.statuses,
        log=structlog.get_logger(),
        vocabulary=Vocabulary(),
    )


def take_in(intake: Intake, *values: dict[str, Any]) -> None:
    """One batch of intake: one transaction, as the service's consumer runs it."""
    with intake.conn.transaction():
        for value in values:
            intake.handle("stays.enriched", EnrichedStayEvent.from_avro(value))


def deliver_all(worker: DeliveryWorker) -> None:
    while worker.deliver_due():
        pass


def digests(mail: MailServer) -> list[EmailMessage]:
    return [message for message in mail.to(GP_ADDRESS) if message[DIGEST_LINES_HEADER]]


def text(message: EmailMessage) -> str:
    return str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def states(conn: outbox.Conn) -> dict[str, int]:
    rows = conn.execute("SELECT state, count(*) FROM notification GROUP BY state").fetchall()
    return {str(state): int(count) for state, count in rows}


def test_a_digest_lists_the_days_events_in_order_once_and_discharges_go_at_once(
    intake: Intake,
    worker: DeliveryWorker,
    ledger_conn: outbox.Conn,
    mail_server: MailServer,
    empty_database: str,
) -> None:
    day = [
        # Stay A: admitted, moved, discharged; stay B's admission happened first but came in
        # late; stay C's admission was cancelled before the digest went.
        event("VA", "ADMISSION", "A1", at(YESTERDAY, 9), at(YESTERDAY, 9, 1)),
        event("VA", "TRANSFER", "A2", at(YESTERDAY, 10, 30), at(YESTERDAY, 10, 31)),
        event("VB", "ADMISSION", "B1", at(YESTERDAY, 8), at(YESTERDAY, 10, 45)),
        event("VC", "ADMISSION", "C1", at(YESTERDAY, 10, 40), at(YESTERDAY, 10, 41)),
        event(
            "VC", "ADMISSION", "C1", at(YESTERDAY, 10, 40), at(YESTERDAY, 10, 50), action="CANCEL"
        ),
        event("VA", "DISCHARGE", "A3", at(YESTERDAY, 11), at(YESTERDAY, 11, 1)),
    ]
    take_in(intake, *day[:3])
    take_in(intake, *day[3:])
    # C's line withdrawn, and its retraction recorded as not sent; the digest and the discharge
    # wait to go.
    assert states(ledger_conn) == {"deferred": 3, "skipped": 2, "pending": 2}

    # Yesterday's 18:00 has passed: the digest is due, and goes with the discharge.
    deliver_all(worker)
    emails = mail_server.to(GP_ADDRESS)
    assert len(emails) == 2
    [digest] = digests(mail_server)
    [discharge] = [item for item in emails if not item[DIGEST_LINES_HEADER]]
    assert discharge["Subject"].startswith("Sortie d'hospitalisation")
    assert digest["Subject"] == (
        f"Résumé du {YESTERDAY:%d/%m/%Y} : 3 événements concernant vos patient(e)s"
    )
    body = text(digest)
    lines = [line for line in body.splitlines() if line[:2] in ("1.", "2.", "3.", "4.")]
    assert lines == [
        f"1. {YESTERDAY:%d/%m/%Y} à 08:00 — Hospitalisation programmée",
        f"2. {YESTERDAY:%d/%m/%Y} à 09:00 — Hospitalisation programmée",
        f"3. {YESTERDAY:%d/%m/%Y} à 10:30 — Transfert dans un autre service",
    ]
    assert "MSG-VC" not in body, "the cancelled admission's line was withdrawn"
    assert "Mme LEFÈVRE Hélène" in body and "Service : Cardiologie" in body
    assert fields_without_words(body) == []
    assert len(digest[DIGEST_LINES_HEADER].split()) == 3

    # The admission of A, already told in the sent digest, is cancelled today: the
    # retraction waits for the next digest, which is not due yet.
    cancel = event(
        "VA", "ADMISSION", "A1", at(YESTERDAY, 9), dt.datetime.now(dt.UTC), action="CANCEL"
    )
    take_in(intake, cancel)
    deliver_all(worker)
    assert len(digests(mail_server)) == 1, "the next digest waits for its hour"

    assert send_digests_now(empty_database) == 1
    deliver_all(worker)
    first, second = sorted(digests(mail_server), key=lambda item: item["Date"])
    assert "Annulation par l'établissement (admission)" in text(second)
    assert first["Message-ID"] != second["Message-ID"]

    # A replay of everything (a restart, a rebalance) records nothing new and sends nothing.
    take_in(intake, *day, cancel)
    assert send_digests_now(empty_database) == 0
    deliver_all(worker)
    assert len(mail_server.to(GP_ADDRESS)) == 3


def test_a_digest_whose_every_line_is_withdrawn_is_not_sent(
    intake: Intake, worker: DeliveryWorker, ledger_conn: outbox.Conn, mail_server: MailServer
) -> None:
    admission = event("VD", "ADMISSION", "D1", at(YESTERDAY, 9), at(YESTERDAY, 9, 1))
    cancel = event("VD", "ADMISSION", "D1", at(YESTERDAY, 9), at(YESTERDAY, 9, 5), action="CANCEL")
    take_in(intake, admission)
    take_in(intake, cancel)
    deliver_all(worker)
    assert mail_server.to(GP_ADDRESS) == []
    [(detail,)] = ledger_conn.execute(
        "SELECT detail FROM notification WHERE kind = 'DIGEST' AND state = 'skipped'"
    ).fetchall()
    assert detail == "every event it was to list was withdrawn before it was sent"


def test_a_correction_replaces_its_line_and_a_late_event_goes_in_the_next_digest(
    intake: Intake,
    worker: DeliveryWorker,
    ledger_conn: outbox.Conn,
    mail_server: MailServer,
    empty_database: str,
) -> None:
    admission = event("VE", "ADMISSION", "E1", at(YESTERDAY, 9), at(YESTERDAY, 9, 1))
    corrected = event("VE", "ADMISSION", "E1", at(YESTERDAY, 9, 30), at(YESTERDAY, 9, 40))
    corrected["event"]["action"] = "UPDATE"
    corrected["event"]["event_id"] += "-UPDATE"
    take_in(intake, admission)
    take_in(intake, corrected)
    deliver_all(worker)
    [digest] = digests(mail_server)
    assert f"1. {YESTERDAY:%d/%m/%Y} à 09:30 — Hospitalisation programmée" in text(digest)
    assert "2. " not in text(digest), "the corrected line replaced the first"

    # An event of yesterday morning that comes in after yesterday's digest went: next digest.
    late = event("VF", "ADMISSION", "F1", at(YESTERDAY, 8), at(YESTERDAY, 8, 5))
    take_in(intake, late)
    [(digest_of_late,)] = ledger_conn.execute(
        "SELECT digest_id::text FROM notification WHERE event_id = %s",
        (late["event"]["event_id"],),
    ).fetchall()
    assert digest_of_late != digest["X-Harpicoop-Notification-Id"]
    deliver_all(worker)
    assert len(digests(mail_server)) == 1
    assert send_digests_now(empty_database) == 1
    deliver_all(worker)
    assert len(digests(mail_server)) == 2
