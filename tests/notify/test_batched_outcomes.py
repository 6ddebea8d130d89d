"""A delivery worker records the outcomes of the notices it claimed together, in one transaction,
against the real ledger and SMTP server; and that keeps every email at most once: a worker that
dies after the server accepted a batch but before its outcomes commit sends none of them again,
and an outcome the ledger refuses never gives a notice the server accepted a second chance."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from services.common import outbox
from services.notify import ledger
from services.notify.delivery import DeliveryWorker
from tests.notify.builders import put_notice
from tests.support import MailServer

pytestmark = pytest.mark.integration

ADDRESSES = [f"dr.martin{index}@chru-nancy.mssante.fr" for index in range(3)]


def _notices(worker: DeliveryWorker, conn: outbox.Conn) -> list[str]:
    return [
        put_notice(conn, worker.statuses, f"101010101{index:02}", address)
        for index, address in enumerate(ADDRESSES)
    ]


def _states(conn: outbox.Conn) -> dict[str, str]:
    rows = conn.execute("SELECT notification_id::text, state FROM notification").fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


def _sweep_every_claim(worker: DeliveryWorker, conn: outbox.Conn) -> int:
    """The sweeper, as if the lease of every claim had run out."""
    return ledger.expire_stale_claims(conn, worker.statuses, dt.timedelta(0))


def test_a_batch_s_outcomes_are_recorded_in_one_transaction(
    worker: DeliveryWorker, ledger_conn: outbox.Conn, mail_server: MailServer
) -> None:
    ids = _notices(worker, ledger_conn)
    assert worker.deliver_due() == len(ids)
    worker.smtp.close()

    rows = ledger_conn.execute(
        "SELECT state, sent_at IS NOT NULL, xmin::text FROM notification"
    ).fetchall()
    assert [(state, stamped) for state, stamped, _ in rows] == [("sent", True)] * len(ids)
    assert len({writer for _, _, writer in rows}) == 1  # one transaction wrote them all
    assert len(mail_server.messages()) == len(ids)


def test_a_worker_dying_before_its_batch_is_recorded_sends_none_of_it_again(
    worker: DeliveryWorker,
    ledger_conn: outbox.Conn,
    mail_server: MailServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = _notices(worker, ledger_conn)

    def dies(*_args: object) -> dict[str, dt.timedelta]:
        raise SystemExit("killed after SMTP accepted the batch, before its outcomes commit")

    with monkeypatch.context() as patch:
        patch.setattr(ledger, "complete", dies)
        with pytest.raises(SystemExit):
            worker.deliver_due()
    worker.smtp.close()
    assert len(mail_server.messages()) == len(ids)
    assert set(_states(ledger_conn).values()) == {"sending"}

    assert _sweep_every_claim(worker, ledger_conn) == len(ids)
    assert worker.deliver_due() == 0
    assert set(_states(ledger_conn).values()) == {"uncertain"}
    assert sorted(email["To"] for email in mail_server.messages()) == ADDRESSES


def test_an_outcome_the_ledger_refuses_holds_back_none_of_its_batch_and_is_never_retried(
    worker: DeliveryWorker,
    ledger_conn: outbox.Conn,
    mail_server: MailServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = _notices(worker, ledger_conn)
    refused = ids[1]
    attempt = worker._attempt

    def with_a_nul_in_one_reply(notice: ledger.Claimed) -> ledger.Completion | None:
        outcome = attempt(notice)
        if outcome is not None and notice.notification_id == refused:
            return dataclasses.replace(outcome, detail="250 ok\x00")  # PostgreSQL refuses a NUL
        return outcome

    monkeypatch.setattr(worker, "_attempt", with_a_nul_in_one_reply)
    assert worker.deliver_due() == len(ids)
    worker.smtp.close()

    states = _states(ledger_conn)
    assert states.pop(refused) == "sending"
    assert set(states.values()) == {"sent"}
    _sweep_every_claim(worker, ledger_conn)
    assert worker.deliver_due() == 0
    assert _states(ledger_conn)[refused] == "uncertain"
    assert sorted(email["To"] for email in mail_server.messages()) == ADDRESSES
