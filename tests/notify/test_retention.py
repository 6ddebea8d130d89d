"""Retention in notify's ledger, against the real PostgreSQL, SMTP server and Kafka: a notice's
rendered message goes ``NOTIFY_RETENTION_DAYS`` after its final status and its status trail
stays; its dead letter is a reference to the ledger, which the operator's replay resends while
the message is kept and reports as purged once it is not."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from services.cli.__main__ import main
from services.common import outbox
from services.common.db import connect
from services.common.deadletter import read_error_headers
from services.common.retention import Purge, purge_due
from services.common.serde import AvroSerde
from services.notify import ledger
from services.notify.config import NotifyConfig
from services.notify.delivery import REFERENCE_HEADER, DeliveryWorker
from services.notify.notices import followup_movement_key
from services.notify.status import StatusRecorder
from tests.notify.builders import enriched, put_notice, recipient
from tests.support import MailServer, ServiceProcess, as_principal, dead_letters_on, eventually

pytestmark = pytest.mark.integration

RETENTION = NotifyConfig().retention


def address() -> str:
    return f"dr.{uuid.uuid4().hex[:8]}@medecin.mssante.fr"


def age(conn: outbox.Conn, notification_id: str, by: dt.timedelta) -> None:
    """Time passing since the notice's final status: the stored timestamp drives the purge."""
    conn.execute(
        "UPDATE notification SET updated_at = updated_at - %s WHERE notification_id = %s",
        (by, notification_id),
    )


def row(conn: outbox.Conn, notification_id: str) -> dict[str, Any]:
    cursor = conn.execute(
        "SELECT notification_id::text, event_id, stay_key, kind, recipient_rpps, message_id, "
        "state, attempts, smtp_code, created_at, sent_at, message, message_purged_at "
        "FROM notification WHERE notification_id = %s",
        (notification_id,),
    )
    names = [column.name for column in cursor.description or []]
    found = cursor.fetchone()
    assert found is not None
    return dict(zip(names, found, strict=True))


def purge(conn: outbox.Conn, batch: int = 500) -> int:
    """A round of the retention timer, as the service runs it."""
    messages = Purge("notice messages", lambda n: ledger.purge_messages(conn, RETENTION, n), batch)
    return purge_due(messages)


def test_a_sent_notice_loses_its_message_after_retention_and_keeps_its_status_trail(
    worker: DeliveryWorker, ledger_conn: outbox.Conn, mail_server: MailServer
) -> None:
    notice = put_notice(ledger_conn, worker.statuses, "10101010201", address())
    assert worker.deliver_due() == 1
    # Recorded after the worker's claim (which takes every due notice, up to its batch size).
    waiting = put_notice(ledger_conn, worker.statuses, "10101010202", "a,b@x.mssante.fr")
    before = row(ledger_conn, notice)
    assert before["state"] == "sent" and b"Bonjour" in bytes(before["message"])

    age(ledger_conn, notice, RETENTION - dt.timedelta(hours=1))
    assert purge(ledger_conn) == 0, "purged before its retention ran out"

    age(ledger_conn, notice, dt.timedelta(hours=2))
    age(ledger_conn, waiting, RETENTION * 2)  # old, but still to send: it keeps its message
    assert purge(ledger_conn) == 1
    after = row(ledger_conn, notice)
    assert after["message"] is None and after["message_purged_at"] is not None
    trail = (
        *("notification_id", "event_id", "stay_key", "kind", "recipient_rpps", "message_id"),
        *("state", "attempts", "smtp_code", "created_at", "sent_at"),
    )
    assert {key: after[key] for key in trail} == {key: before[key] for key in trail}
    assert row(ledger_conn, waiting)["message"] is not None
    assert purge(ledger_conn) == 0  # idempotent


def test_a_purge_stopped_half_way_is_finished_at_the_next_start(
    worker: DeliveryWorker, ledger_conn: outbox.Conn, empty_database: str
) -> None:
    ids = [put_notice(ledger_conn, worker.statuses, f"1010101030{n}", address()) for n in range(7)]
    for notice in ids:
        ledger.finish(ledger_conn, worker.statuses, notice, "failed", detail="550")
        age(ledger_conn, notice, RETENTION + dt.timedelta(minutes=1))

    stop, batches = threading.Event(), []

    def killed_after_two_batches(limit: int) -> int:
        purged = ledger.purge_messages(ledger_conn, RETENTION, limit)
        batches.append(purged)
        if len(batches) == 2:
            stop.set()
        return purged

    assert purge_due(Purge("notice messages", killed_after_two_batches, 2), stop) == 4
    kept = ledger_conn.execute("SELECT count(*) FROM notification WHERE message IS NOT NULL")
    assert kept.fetchone() == (3,)  # the two committed batches stay done

    with connect(empty_database, autocommit=True) as restarted:
        assert purge(restarted, batch=2) == 3
        assert purge(restarted) == 0
    states = ledger_conn.execute("SELECT DISTINCT state FROM notification").fetchall()
    assert states == [("failed",)]


@pytest.mark.usefixtures("tests_environment")  # the CLI reads the test's dead-letter topic
def test_a_dead_letter_is_a_reference_resent_from_the_ledger_until_its_message_is_purged(
    worker: DeliveryWorker,
    ledger_conn: outbox.Conn,
    mail_server: MailServer,
    dead_letter_topic: str,
    consumer_factory: Callable[..., Consumer],
    empty_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    to, other = address(), address()
    mail_server.refuse(to)
    mail_server.refuse(other)
    first = put_notice(ledger_conn, worker.statuses, "10101010401", to)
    second = put_notice(ledger_conn, worker.statuses, "10101010402", other)
    while worker.deliver_due():
        pass

    letters = dead_letters_on(consumer_factory(dead_letter_topic), 2)
    for letter in letters:
        notice = letter.key().decode()
        assert letter.value() == notice.encode()  # the reference, nothing of the email
        assert dict(letter.headers())[REFERENCE_HEADER] == notice.encode()
        errors = read_error_headers(letter.headers())
        assert errors["service"] == "notify" and "550" in errors["reason"]
        assert not any(word in str(errors) for word in ("Bonjour", "Hospitalisation"))
    assert {letter.key().decode() for letter in letters} == {first, second}

    # The cause is fixed for the first; the second's message outlived its retention.
    (mail_server.maildir / "refused-recipients.txt").write_text("", encoding="utf-8")
    age(ledger_conn, second, RETENTION + dt.timedelta(minutes=1))
    assert purge(ledger_conn) == 1
    # The operator's role: it may call notify's resend, and nothing else on the ledger.
    monkeypatch.setenv("DATABASE_URL", as_principal(empty_database, "operator"))

    assert main(["replay-dead-letters", dead_letter_topic]) == 1
    out = capsys.readouterr().out
    assert f"notice {second}: not resent: its message was purged on" in out
    assert "resent 1 notice(s) from the ledger; 1 purged" in out
    assert row(ledger_conn, first)["state"] == "pending"
    assert worker.deliver_due() == 1
    [email] = mail_server.to(to)
    assert email["Subject"] == "Hospitalisation"
    assert row(ledger_conn, first)["state"] == "sent"

    assert main(["replay-dead-letters", dead_letter_topic]) == 0  # each dead letter once
    assert "replayed 0 record(s)" in capsys.readouterr().out


def test_a_restart_runs_the_purge_that_fell_due_while_notify_was_down(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    producer_factory: Callable[..., Producer],
    serde_factory: Callable[[str], AvroSerde],
    empty_database: str,
) -> None:
    to = address()
    service = notify_factory(
        mail_server, NOTIFY_RETENTION_SECONDS="4", NOTIFY_PURGE_INTERVAL_SECONDS="3600"
    )
    producer, serde = producer_factory(), serde_factory("harpicoop.EnrichedStayEvent")
    topic = service.topics["input"]
    value = enriched("V700", [recipient("10101010701", to)])
    producer.produce(topic, key="chrunancy:V700", value=serde.serialize(topic, value))
    assert producer.flush(10) == 0
    eventually(lambda: mail_server.to(to), what="the admission email")

    with connect(empty_database, autocommit=True) as conn:

        def ledger(sql: str) -> list[tuple[Any, ...]]:
            return conn.execute(sql).fetchall()  # type: ignore[arg-type]

        eventually(lambda: ledger("SELECT state FROM notification") == [("sent",)], what="sent")
        service.kill()  # the purge round at its start found nothing due; the next dies with it
        eventually(
            lambda: ledger(
                "SELECT 1 FROM notification WHERE updated_at < now() - interval '5 seconds'"
            ),
            what="the retention running out while notify is down",
        )
        assert ledger("SELECT message IS NOT NULL FROM notification") == [(True,)]

        service.start()
        eventually(
            lambda: ledger("SELECT state, message FROM notification") == [("sent", None)],
            timeout=60,
            what="the message purged at the restart",
        )
    assert "retention purge" in service.output()


def test_a_tombstone_of_a_followup_purges_the_messages_of_its_settled_notices(
    worker: DeliveryWorker, ledger_conn: outbox.Conn
) -> None:
    statuses: StatusRecorder = worker.statuses
    notice = put_notice(ledger_conn, statuses, "10101010801", address())
    case = str(uuid.uuid4())
    ledger_conn.execute(
        "UPDATE notification SET movement_key = %s WHERE notification_id = %s",
        (followup_movement_key(case), notice),
    )
    assert ledger.purge_messages_of(ledger_conn, followup_movement_key(case)) == 0  # not sent
    worker.deliver_due()
    assert ledger.purge_messages_of(ledger_conn, followup_movement_key(case)) == 1
    assert row(ledger_conn, notice)["message"] is None
