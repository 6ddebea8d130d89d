"""Proof of delivery end to end: notify on the real stack (Kafka, registry, PostgreSQL) sends
through the stack's SMTP server, which reports deliveries and bounces to a real IMAP server
(Dovecot); notify's receipts reader reads them there and records DELIVERED, BOUNCED and READ
on the ledger and on the status topic, once each. The read receipts are sent by the simulated
GPs' mail client (``services.simulator.gp_mail``), as ``make run``'s GPs send them."""

from __future__ import annotations

import datetime as dt
import imaplib
import smtplib
import time
from collections.abc import Callable

import psycopg
import pytest

from services.cli.reconcile import receipts_check
from services.cli.run import awaiting_receipts
from services.common.settings import Settings
from services.simulator.gp_mail import GpMailClient
from services.stack.components import Imap
from tests.notify.builders import enriched, recipient
from tests.notify.test_service import Statuses, address, statuses_of  # noqa: F401
from tests.support import MailServer, ServiceProcess, eventually, mailbox_messages, reading_mailbox

pytestmark = pytest.mark.integration


def folder(imap: Imap, name: str) -> list[bytes]:
    return mailbox_messages(imap, name)


def copy_back(imap: Imap) -> None:
    """Put the processed receipts back in the INBOX, as a second reader's view would be."""
    client = imaplib.IMAP4("localhost", imap.port)
    client.login(imap.mailbox, imap.password())
    client.select("Processed")
    client.copy("1:*", "INBOX")
    client.logout()


def test_deliveries_bounces_and_readings_come_back_once_each(
    reporting_mail_server: MailServer,
    imap_server: Imap,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    statuses_of: Callable[[ServiceProcess], Statuses],  # noqa: F811
    empty_database: str,
) -> None:
    delivered_to, bouncing = address(), address()
    reporting_mail_server.bounce(bouncing)
    service = notify_factory(
        reporting_mail_server,
        NOTIFY_READ_RECEIPTS="*",
        **reading_mailbox(imap_server),
    )
    publish(service.topics["input"], enriched("V700", [recipient("10101010700", delivered_to)]))
    publish(service.topics["input"], enriched("V701", [recipient("10101010701", bouncing)]))
    status = statuses_of(service)

    [delivered] = eventually(lambda: status.with_status("DELIVERED"), what="DELIVERED")
    [bounced] = eventually(lambda: status.with_status("BOUNCED"), what="BOUNCED")
    assert delivered["recipient_address"] == delivered_to
    assert bounced["recipient_address"] == bouncing and "5.1.1" in (bounced["detail"] or "")
    # The bouncing address got nothing; the other its notice, asking for a read receipt.
    assert reporting_mail_server.to(bouncing) == []
    [notice] = reporting_mail_server.to(delivered_to)
    assert notice["Disposition-Notification-To"] == imap_server.mailbox
    assert notice["X-Harpicoop-Notification-Id"] == delivered["notification_id"]

    # The GP opens it: the client's read receipt goes through the operator to the mailbox.
    gp_client = GpMailClient("localhost", reporting_mail_server.port, share=1.0)
    assert gp_client.read(reporting_mail_server.maildir, 0) == [notice["Message-ID"]]
    [read] = eventually(lambda: status.with_status("READ"), what="READ")
    assert read["notification_id"] == delivered["notification_id"]

    # Something that is no receipt of ours stays in the mailbox, apart, and is counted.
    with smtplib.SMTP("localhost", reporting_mail_server.port, timeout=10) as client:
        client.sendmail(
            "secretariat@cabinet.mssante.fr",
            [imap_server.mailbox],
            b"Subject: Question\r\n\r\nPouvez-vous nous rappeler ?\r\n",
        )
    eventually(lambda: len(folder(imap_server, "Unmatched")) == 1, what="the unmatched message")
    eventually(lambda: folder(imap_server, "INBOX") == [], what="an empty INBOX")
    processed = len(folder(imap_server, "Processed"))
    assert processed == 3  # two DSNs and a read receipt

    # Read twice (a crash between recording and moving, or a copy): recorded once.
    copy_back(imap_server)
    eventually(lambda: len(folder(imap_server, "Processed")) == 2 * processed, what="re-read")
    eventually(lambda: folder(imap_server, "INBOX") == [], what="an empty INBOX again")
    with psycopg.connect(empty_database) as conn:
        rows = conn.execute(
            "SELECT recipient_rpps, delivered_at IS NOT NULL, read_at IS NOT NULL, "
            "bounced_at IS NOT NULL FROM notify.v_notices ORDER BY recipient_rpps"
        ).fetchall()
        kinds = conn.execute(
            "SELECT kind, count(*) FROM notify.notification_receipt GROUP BY kind ORDER BY kind"
        ).fetchall()
    assert rows == [("10101010700", True, True, False), ("10101010701", False, False, True)]
    assert kinds == [("BOUNCED", 1), ("DELIVERED", 1), ("READ", 1), ("UNMATCHED", 1)]
    for name in ("DELIVERED", "BOUNCED", "READ"):
        assert len(status.with_status(name)) == 1, name


def test_simulated_gps_answer_only_the_notices_that_asked_and_notify_records_them_read(
    reporting_mail_server: MailServer,
    imap_server: Imap,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    statuses_of: Callable[[ServiceProcess], Statuses],  # noqa: F811
    empty_database: str,
) -> None:
    """The GP listed in NOTIFY_READ_RECEIPTS gets notices asking for a read receipt, the other
    none; the simulated mail clients answer the first, once, and notify records it READ."""
    asking, silent = address(), address()
    started = time.time()
    service = notify_factory(
        reporting_mail_server,
        NOTIFY_READ_RECEIPTS="10101010710",
        **reading_mailbox(imap_server),
    )
    publish(service.topics["input"], enriched("V710", [recipient("10101010710", asking)]))
    publish(service.topics["input"], enriched("V711", [recipient("10101010711", silent)]))
    status = statuses_of(service)
    delivered = eventually(
        lambda: len(status.with_status("DELIVERED")) == 2 and status.with_status("DELIVERED"),
        what="both notices DELIVERED",
    )
    by_address = {item["recipient_address"]: item["notification_id"] for item in delivered}

    gp_clients = GpMailClient("localhost", reporting_mail_server.port, share=1.0)
    answered = gp_clients.read(reporting_mail_server.maildir, started)
    assert answered == [f"<{by_address[asking]}@ght-sud-lorraine.fr>"]
    # Read again later, the same mail: a client answers a notice once.
    assert gp_clients.read(reporting_mail_server.maildir, started) == []

    [read] = eventually(lambda: status.with_status("READ"), what="READ")
    assert read["notification_id"] == by_address[asking]
    eventually(lambda: len(folder(imap_server, "Processed")) == 3, what="2 DSNs and 1 MDN read")
    assert folder(imap_server, "Unmatched") == []
    with psycopg.connect(empty_database) as conn:
        rows = conn.execute(
            "SELECT recipient_address, delivered_at IS NOT NULL, read_at IS NOT NULL "
            "FROM notify.notification ORDER BY recipient_address = %s DESC",
            (asking,),
        ).fetchall()
    assert rows == [(asking, True, True), (silent, True, False)]

    # What make run then reads: nothing more to wait for, and its check holds.
    reader = Settings(database_url=empty_database)
    since = dt.datetime.fromtimestamp(started, dt.UTC)
    window = dt.timedelta(minutes=1)
    assert awaiting_receipts(reader, since, window, [by_address[asking]]) == 0
    with psycopg.connect(empty_database) as conn:
        sent = conn.execute(
            "SELECT notification_id::text, sent_at, delivered_at, read_at, bounced_at "
            "FROM notify.v_notices WHERE state = 'sent'"
        ).fetchall()
    result = receipts_check(sent, dt.datetime.now(dt.UTC), window)
    assert result.ok and "2 delivered, 0 bounced" in result.line()
