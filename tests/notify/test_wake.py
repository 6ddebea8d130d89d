"""Delivery workers are woken by the commit that records a notice, and claims not handed to SMTP
are given back as they were (the real ledger, SMTP server and PostgreSQL notifications)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time

import pytest
import structlog
from structlog.testing import capture_logs

from services.common import outbox
from services.common.db import connect
from services.common.records import EnrichedStayEvent
from services.notify import ledger
from services.notify.config import NotifyConfig
from services.notify.delivery import DeliveryWorker
from services.notify.intake import Intake
from services.notify.wording import Vocabulary
from tests.notify.builders import enriched, put_notice, recipient
from tests.support import MailServer, as_principal, eventually

pytestmark = pytest.mark.integration

ADDRESS = "dr.martin@chru-nancy.mssante.fr"
OTHER = "dr.durand@chru-nancy.mssante.fr"
NEVER = 600.0
"""A poll interval no test waits out: only a wake-up can explain a prompt send."""


def test_a_worker_sends_a_notice_on_the_commit_that_records_it_not_at_its_next_poll(
    worker: DeliveryWorker,
    ledger_conn: outbox.Conn,
    empty_database: str,
    mail_server: MailServer,
) -> None:
    stop = threading.Event()
    with connect(as_principal(empty_database, "notify"), autocommit=True) as own:
        listening = DeliveryWorker(
            config=dataclasses.replace(worker.config, poll_interval=NEVER),
            sender_address=worker.sender_address,
            conn=own,
            smtp=worker.smtp,
            dead_letters=worker.dead_letters,
            statuses=worker.statuses,
            log=worker.log,
        )
        thread = threading.Thread(target=listening.run, args=(stop,), daemon=True)
        thread.start()
        try:
            time.sleep(1.0)  # listening and waiting: its first look found nothing
            recorded = time.monotonic()
            with ledger_conn.transaction():
                notice = put_notice(ledger_conn, worker.statuses, "10101010101", ADDRESS)
                time.sleep(0.5)  # not before the commit: the wake-up waits for it
                assert mail_server.messages() == []
            eventually(lambda: mail_server.messages(), 30, "the email")
            assert time.monotonic() - recorded < NEVER / 10
        finally:
            stop.set()
            ledger.wake_senders(ledger_conn)  # so that it sees the stop now
            thread.join(30)
    assert not thread.is_alive()
    [row] = ledger_conn.execute(
        "SELECT state FROM notification WHERE notification_id = %s", (notice,)
    ).fetchall()
    assert row == ("sent",)


def test_claims_given_back_are_due_again_as_they_were_before_their_claim(
    worker: DeliveryWorker, ledger_conn: outbox.Conn
) -> None:
    fresh = put_notice(ledger_conn, worker.statuses, "10101010101", ADDRESS)
    # To another address: the same stay's notices to one address wait for each other.
    tried = put_notice(ledger_conn, worker.statuses, "10101010102", OTHER)
    [first] = [n for n in ledger.claim_due(ledger_conn, limit=10) if n.notification_id == tried]
    ledger.finish(
        ledger_conn,
        worker.statuses,
        tried,
        "retrying",
        detail="421 busy",
        retry_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
    )
    ledger.release(ledger_conn, [fresh])  # the other claim of that batch, never handed over

    claims = {n.notification_id: n.attempts for n in ledger.claim_due(ledger_conn, limit=10)}
    assert claims == {fresh: 1, tried: 2}, "both due again, each attempt counted once"
    assert first.attempts == 1
    assert ledger.release(ledger_conn, [fresh, tried]) == 2
    rows = dict(
        ledger_conn.execute("SELECT notification_id::text, state FROM notification").fetchall()
    )
    assert rows == {fresh: "pending", tried: "retrying"}


def test_an_intake_batch_wakes_the_workers_once_on_its_commit_and_logs_one_line(
    worker: DeliveryWorker, ledger_conn: outbox.Conn, empty_database: str
) -> None:
    intake = Intake(
        config=NotifyConfig(),
        sender_address=worker.sender_address,
        conn=ledger_conn,
        establishment_names={},
        statuses=worker.statuses,
        log=structlog.get_logger(),
        vocabulary=Vocabulary(),
    )
    gps = [recipient(f"1010101010{n}", f"dr{n}@medecin.mssante.fr") for n in range(3)]
    with connect(as_principal(empty_database, "notify"), autocommit=True) as listener:
        ledger.listen(listener)
        with capture_logs() as logs:
            # As BatchConsumer runs a batch: hooks around the records, in one transaction.
            intake.begin()
            with ledger_conn.transaction():
                for number, gp in enumerate(gps):
                    intake.handle(
                        "stays.enriched", EnrichedStayEvent.from_avro(enriched(f"W{number}", [gp]))
                    )
                intake.before_commit()
                assert list(listener.notifies(timeout=0.5, stop_after=1)) == []
            intake.committed()
        woken = list(listener.notifies(timeout=5, stop_after=3))
    assert [note.channel for note in woken] == [ledger.WAKE_CHANNEL]
    assert [entry for entry in logs if entry["log_level"] == "info"] == [
        {"event": "intake batch committed", "counts": {"recorded": 3}, "log_level": "info"}
    ]
    assert intake.recorded == 3
