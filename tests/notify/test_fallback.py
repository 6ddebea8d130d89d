"""Fallback chains in the real ledger: a bounce or a permanent refusal moves a notice to the next
address of its recipient's chain, once per step, and what no step could deliver lands on the
worklist. The delivery worker as the service builds it sends through a real SMTP server that
refuses chosen addresses; bounces are recorded as the receipts reader records them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from services.common import outbox
from services.common.movements import movement_key
from services.common.records import EnrichedStayEvent, StayEvent
from services.common.skip_reasons import SkipReason
from services.notify import ledger, privacy
from services.notify.chain import Setback
from services.notify.delivery import DeliveryWorker
from services.notify.digests import DIGEST_LINES_HEADER
from services.notify.notices import Notice, NoticeKind, notification_id
from tests.notify.builders import enriched, recipient, step
from tests.support import MailServer

pytestmark = pytest.mark.integration

PERSONAL = "jeanne.martin@medecin.mssante.fr"
PRACTICE = "cabinet.martin@medecin.mssante.fr"
SUBSTITUTE = "paul.remplacant@medecin.mssante.fr"
GP, SUBS = "10101010101", "40404040404"
CHAIN = [step(GP, PRACTICE), step(SUBS, SUBSTITUTE, "PER", "SUBS")]


def notice_of(conn: outbox.Conn, worker: DeliveryWorker, value: dict[str, Any]) -> str:
    """Record the GP's admission notice of an enriched event, as intake does; its id."""
    enriched = EnrichedStayEvent.from_avro(value)
    event = enriched.event
    [gp] = enriched.recipients
    notice_id = notification_id(event.event_id, gp.rpps, NoticeKind.ADMISSION)
    message = (
        f"To: {gp.mssante_address}\r\nSubject: Hospitalisation\r\n"
        f"Message-ID: <{notice_id}@ght-sud-lorraine.fr>\r\n"
        f"X-Harpicoop-Notification-Id: {notice_id}\r\n\r\nBonjour\r\n"
    ).encode()
    notice = Notice(notice_id, NoticeKind.ADMISSION, gp)
    occurrence = ledger.Occurrence.of(event)
    assert ledger.record(
        conn, worker.statuses, notice, occurrence, movement_key(event), message, ""
    )
    return notice_id


def deliver_all(worker: DeliveryWorker) -> None:
    while worker.deliver_due():
        pass


def chain_of(conn: outbox.Conn, event_id: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT chain_step, recipient_rpps, recipient_address, state, successor_id::text, "
        "notification_id::text FROM notification WHERE event_id = %s ORDER BY chain_step",
        (event_id,),
    ).fetchall()


def bounce(conn: outbox.Conn, worker: DeliveryWorker, receipt: str, notice_id: str) -> str:
    return ledger.record_receipt(conn, worker.statuses, receipt, "BOUNCED", notice_id, "5.1.1")


def test_a_refusal_then_a_bounce_walk_the_chain_once_each_and_its_end_is_on_the_worklist(
    worker: DeliveryWorker, ledger_conn: outbox.Conn, mail_server: MailServer
) -> None:
    mail_server.refuse(PERSONAL)
    value = enriched("V800", [recipient(GP, PERSONAL, fallback=CHAIN)])
    value["event"]["movement"]["unit"] = "CARD2"
    first = notice_of(ledger_conn, worker, value)
    deliver_all(worker)

    # Refused for good at the personal address: the practice's mailbox has it.
    [at_practice] = mail_server.to(PRACTICE)
    steps = chain_of(ledger_conn, value["event"]["event_id"])
    assert [(s[0], s[1], s[2], s[3]) for s in steps] == [
        (0, GP, PERSONAL, "failed"),
        (1, GP, PRACTICE, "sent"),
    ]
    assert steps[0][4] == steps[1][5] == at_practice["X-Harpicoop-Notification-Id"]
    assert at_practice["Message-ID"] == f"<{steps[1][5]}@ght-sud-lorraine.fr>"
    assert at_practice["Subject"] == "Hospitalisation"

    # The practice's mailbox bounces; the same bounce read twice, then another report of it.
    assert bounce(ledger_conn, worker, "r1", steps[1][5]) == "recorded"
    assert bounce(ledger_conn, worker, "r1", steps[1][5]) == "known"
    assert bounce(ledger_conn, worker, "r2", steps[1][5]) == "known"
    mail_server.refuse(SUBSTITUTE)
    deliver_all(worker)
    steps = chain_of(ledger_conn, value["event"]["event_id"])
    assert [(s[0], s[1], s[3]) for s in steps] == [
        (0, GP, "failed"),
        (1, GP, "sent"),
        (2, SUBS, "failed"),
    ]
    assert steps[1][4] == steps[2][5] and steps[2][4] is None
    assert mail_server.to(SUBSTITUTE) == []
    # A late bounce of the first notice changes nothing: its step was taken.
    late = ledger.follow_chain(ledger_conn, worker.statuses, first, Setback.BOUNCED)
    assert late == "known"

    # The substitute refused too: nobody could be told, an operator's to follow up.
    [entry] = ledger_conn.execute(
        "SELECT establishment, unit, stay_key, event_id, notification_id::text, reason, detail "
        "FROM v_worklist"
    ).fetchall()
    event = value["event"]
    assert entry[:6] == (
        event["establishment"],
        "CARD2",
        event["stay_key"],
        event["event_id"],
        steps[2][5],
        "FAILED",
    )
    assert "step 2" in entry[6] and PERSONAL not in entry[6]
    assert len(ledger_conn.execute("SELECT * FROM notification").fetchall()) == 3


def test_an_objection_recorded_after_the_bounce_stops_the_next_step(
    worker: DeliveryWorker, ledger_conn: outbox.Conn, mail_server: MailServer
) -> None:
    value = enriched("V801", [recipient(GP, PERSONAL, fallback=CHAIN)])
    privacy.remember_stay(ledger_conn, StayEvent.from_avro(value["event"]))
    first = notice_of(ledger_conn, worker, value)
    deliver_all(worker)
    patient = value["event"]["patient"]
    privacy.record_opposition(
        ledger_conn, value["event"]["establishment"], patient.get("ins"), patient["ipp"]
    )

    assert bounce(ledger_conn, worker, "r3", first) == "recorded"
    deliver_all(worker)
    steps = chain_of(ledger_conn, value["event"]["event_id"])
    assert [(s[0], s[3]) for s in steps] == [(0, "sent"), (1, "skipped")]
    detail = ledger_conn.execute("SELECT detail FROM notification WHERE chain_step = 1").fetchone()
    assert detail == (SkipReason.OPPOSED.sentence,)
    assert mail_server.to(PRACTICE) == []
    assert ledger_conn.execute("SELECT count(*) FROM worklist").fetchone() == (0,)


def test_a_substitute_told_on_their_own_is_not_told_twice(
    worker: DeliveryWorker, ledger_conn: outbox.Conn, mail_server: MailServer
) -> None:
    value = enriched("V802", [recipient(GP, PERSONAL, fallback=[CHAIN[1]])])
    first = notice_of(ledger_conn, worker, value)
    own = enriched("V802", [recipient(SUBS, SUBSTITUTE, role="SUBS")])
    notice_of(ledger_conn, worker, own)
    deliver_all(worker)

    assert bounce(ledger_conn, worker, "r4", first) == "recorded"
    deliver_all(worker)
    assert len(mail_server.to(SUBSTITUTE)) == 1
    assert ledger_conn.execute(
        "SELECT state, detail FROM notification WHERE chain_step = 1"
    ).fetchall() == [("skipped", SkipReason.SUBSTITUTE_TOLD.sentence)]


def test_a_bounce_with_no_further_step_is_on_the_worklist_once(
    worker: DeliveryWorker, ledger_conn: outbox.Conn
) -> None:
    value = enriched("V803", [recipient(GP, PERSONAL)])
    first = notice_of(ledger_conn, worker, value)
    deliver_all(worker)
    assert bounce(ledger_conn, worker, "r5", first) == "recorded"
    assert bounce(ledger_conn, worker, "r6", first) == "known"
    assert ledger_conn.execute(
        "SELECT notification_id::text, reason FROM v_worklist"
    ).fetchall() == [(first, "BOUNCED")]


def test_a_bounced_digest_goes_on_to_the_practice_listing_the_same_notices(
    worker: DeliveryWorker, ledger_conn: outbox.Conn, mail_server: MailServer
) -> None:
    digest_id = "7d3c1f4e-2b6a-4c1d-9e8f-0a1b2c3d4e5f"
    message = (
        f"To: {PERSONAL}\r\nSubject: Vos patients du jour\r\n"
        f"Message-ID: <{digest_id}@ght-sud-lorraine.fr>\r\n"
        f"X-Harpicoop-Notification-Id: {digest_id}\r\n"
        f"{DIGEST_LINES_HEADER}: n1 n2\r\n\r\nBonjour\r\n"
    ).encode()
    ledger.put_digest(
        ledger_conn,
        worker.statuses,
        ledger.Digest(
            digest_id=digest_id,
            event_id=f"digest:{GP}:2026-03-09",
            stay_key=f"digest:{GP}",
            rpps=GP,
            address=PERSONAL,
            due_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
            fallback=[step(GP, PRACTICE)],
        ),
        message,
    )
    deliver_all(worker)
    assert bounce(ledger_conn, worker, "r7", digest_id) == "recorded"
    deliver_all(worker)
    [at_practice] = mail_server.to(PRACTICE)
    assert at_practice[DIGEST_LINES_HEADER] == "n1 n2"
    assert at_practice["X-Harpicoop-Notification-Id"] != digest_id
    assert ledger_conn.execute(
        "SELECT kind, chain_step, state FROM notification WHERE notification_id = %s",
        (at_practice["X-Harpicoop-Notification-Id"],),
    ).fetchall() == [("DIGEST", 1, "sent")]
