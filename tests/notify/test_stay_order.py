"""Notices of one stay reach a GP in the order their events came, whichever workers send them
(the real ledger in PostgreSQL: claims are its SQL)."""

from __future__ import annotations

import datetime as dt

from services.common import outbox
from services.common.movements import movement_key
from services.notify import ledger
from services.notify.delivery import DeliveryWorker
from services.notify.notices import Notice, NoticeKind, notification_id
from tests.notify.builders import enriched_record, recipient_record

GP = "10101010501"
ADDRESS = "jeanne.martin@medecin.mssante.fr"


def put(conn: outbox.Conn, worker: DeliveryWorker, visit: str, kind: str, movement: str) -> str:
    """A pending notice of ``kind`` for the stay ``visit``, as intake records it; its id."""
    event = enriched_record(visit, [], kind=kind, movement_id=movement).event
    notice_kind = NoticeKind(kind)
    notice_id = notification_id(event.event_id, GP, notice_kind)
    notice = Notice(notice_id, notice_kind, recipient_record(GP, ADDRESS))
    message = f"To: {ADDRESS}\r\nSubject: {kind}\r\n\r\nBonjour\r\n".encode()
    assert ledger.record(
        conn,
        worker.statuses,
        notice,
        ledger.Occurrence.of(event),
        movement_key(event),
        message,
        notice_id,
    )
    return notice_id


def claimed(conn: outbox.Conn) -> set[str]:
    return {notice.notification_id for notice in ledger.claim_due(conn, limit=10)}


def test_a_stays_discharge_waits_for_its_transfer_to_be_sent(
    worker: DeliveryWorker, ledger_conn: outbox.Conn
) -> None:
    # Recorded together, as one batch of intake does: the same transaction, the same now().
    with ledger_conn.transaction():
        transfer = put(ledger_conn, worker, "V501", "TRANSFER", "M1")
        discharge = put(ledger_conn, worker, "V501", "DISCHARGE", "M2")
        other_stay = put(ledger_conn, worker, "V502", "ADMISSION", "M1")

    assert claimed(ledger_conn) == {transfer, other_stay}, "the discharge waits; others do not"
    assert claimed(ledger_conn) == set(), "still waiting while the transfer is being sent"

    ledger.finish(ledger_conn, worker.statuses, transfer, "sent", smtp_code=250)
    assert claimed(ledger_conn) == {discharge}


def test_a_transfer_to_retry_holds_the_discharge_and_a_failed_one_lets_it_go(
    worker: DeliveryWorker, ledger_conn: outbox.Conn
) -> None:
    transfer = put(ledger_conn, worker, "V503", "TRANSFER", "M1")
    discharge = put(ledger_conn, worker, "V503", "DISCHARGE", "M2")
    assert claimed(ledger_conn) == {transfer}

    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    ledger.finish(ledger_conn, worker.statuses, transfer, "retrying", retry_at=later)
    assert claimed(ledger_conn) == set(), "the discharge is not sent before its transfer"

    ledger.finish(ledger_conn, worker.statuses, transfer, "failed", smtp_code=550)
    assert claimed(ledger_conn) == {discharge}, "a notice given up no longer holds the stay"
