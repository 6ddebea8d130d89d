"""The delivery worker's last word before SMTP, against the real ledger, SMTP server and Kafka: a
notice whose address is not one plain address of the trust space fails and is dead-lettered,
never sent; a good one goes out once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from confluent_kafka import Consumer, Producer

from services.common import outbox
from services.common.db import apply_migrations, connect
from services.common.deadletter import DeadLetters, read_error_headers
from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.notify import ledger
from services.notify.config import NotifyConfig
from services.notify.delivery import DeliveryWorker
from services.notify.notices import Notice, NoticeKind, movement_key, notification_id
from services.notify.service import MIGRATIONS
from services.notify.smtp import SmtpSender
from services.notify.status import StatusRecorder
from tests.notify.builders import enriched, recipient
from tests.support import MailServer, eventually

pytestmark = pytest.mark.integration

MALFORMED = "a,b@x.mssante.fr"  # smtplib would send RCPT TO:<a>
UNTRUSTED = "a@evil-mssante.fr"  # looks like the trust space, is not in it
VALID = "dr.martin@chru-nancy.mssante.fr"
REFUSAL = "refused before SMTP"


@pytest.fixture
def ledger_conn(empty_database: str) -> Iterator[outbox.Conn]:
    """The notify ledger in a fresh PostgreSQL database, migrated as the service does at start,
    so claims, outcomes and their statuses are the real SQL (autocommit, as a worker's is)."""
    with connect(empty_database, autocommit=True) as conn:
        outbox.migrate(conn)
        apply_migrations(conn, "notify", MIGRATIONS)
        yield conn


@pytest.fixture
def dead_letter_topic(topic_factory: Callable[..., str]) -> str:
    """A fresh dead-letter topic of the test's own: the records read back are this test's."""
    return topic_factory()


@pytest.fixture
def worker(
    stack: Settings,
    mail_server: MailServer,
    ledger_conn: outbox.Conn,
    dead_letter_topic: str,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    serde_factory: Callable[[str], AvroSerde],
) -> DeliveryWorker:
    """The worker as the service builds it: the real SmtpSender pointed at ``mail_server`` (an
    SMTP server writing one .eml per accepted message), dead letters produced to Kafka, and
    statuses serialised against the registry for a fresh status topic."""
    settings = dataclasses.replace(
        stack, smtp_host="localhost", smtp_port=mail_server.port, smtp_security="none"
    )
    status_topic = topic_factory("harpicoop.NotificationStatus")
    return DeliveryWorker(
        config=NotifyConfig(),
        sender_address=settings.smtp_from,
        conn=ledger_conn,
        smtp=SmtpSender(settings),
        dead_letters=DeadLetters(producer_factory(), "notify", dead_letter_topic),
        statuses=StatusRecorder(serde_factory("harpicoop.NotificationStatus"), status_topic),
        log=structlog.get_logger(),
    )


def put_notice(conn: outbox.Conn, statuses: StatusRecorder, rpps: str, address: str) -> str:
    """A pending admission notice in the ledger, as intake records it; its id."""
    event = enriched("V900", [])["event"]
    notice_id = notification_id(event["event_id"], rpps, NoticeKind.ADMISSION)
    notice = Notice(notice_id, NoticeKind.ADMISSION, recipient(rpps, address))
    message = f"To: {address}\r\nSubject: Hospitalisation\r\n\r\nBonjour\r\n".encode()
    assert ledger.record(conn, statuses, notice, event, movement_key(event), message, notice_id)
    return notice_id


def test_only_a_plain_address_of_the_trust_space_reaches_smtp(
    worker: DeliveryWorker,
    ledger_conn: outbox.Conn,
    mail_server: MailServer,
    dead_letter_topic: str,
    consumer_factory: Callable[..., Consumer],
) -> None:
    ids = {
        address: put_notice(ledger_conn, worker.statuses, f"101010101{index:02}", address)
        for index, address in enumerate([MALFORMED, UNTRUSTED, VALID])
    }
    while worker.deliver_due():
        pass
    worker.smtp.close()

    [email] = mail_server.messages()
    assert email["To"] == VALID
    assert email.get_all("X-Original-To") == [VALID]  # the server never saw RCPT TO:<a>

    rows = ledger_conn.execute(
        "SELECT recipient_address, state, detail FROM notification"
    ).fetchall()
    states = {address: (state, detail or "") for address, state, detail in rows}
    assert states[VALID] == ("sent", "")
    for bad in (MALFORMED, UNTRUSTED):
        state, detail = states[bad]
        assert state == "failed" and detail.startswith(REFUSAL)

    dead = consumer_factory(dead_letter_topic)
    letters: dict[bytes, Any] = {}

    def both_dead_lettered() -> bool:
        for record in dead.consume(10, timeout=0.5):
            if record.error() is None:
                letters[record.key() or b""] = record
        return len(letters) == 2

    eventually(both_dead_lettered, timeout=60, what="a dead letter for each refused notice")
    assert set(letters) == {ids[MALFORMED].encode(), ids[UNTRUSTED].encode()}
    for record in letters.values():
        assert REFUSAL in read_error_headers(record.headers())["reason"]
