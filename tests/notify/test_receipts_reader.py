"""The receipts reader in this process against a real IMAP server (Dovecot) and a real ledger
(PostgreSQL): what a hostile or foreign mailbox holds never stops it, and a notice no report
confirmed in time is counted."""

from __future__ import annotations

import dataclasses
import datetime as dt
import smtplib
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common import outbox
from services.common.records import NotificationStatus
from services.common.serde import RecordSerde
from services.common.settings import Settings
from services.notify import ledger
from services.notify.receipts import MAX_RECEIPT_BYTES
from services.notify.receipts_reader import ReceiptsReader
from services.notify.status import StatusRecorder
from services.stack.components import Imap
from services.stack.layout import StackLayout
from tests.notify.builders import put_notice
from tests.notify.test_receipts import DELIVERED_DSN, NOTICE, crlf
from tests.support import free_port, mailbox_messages

pytestmark = pytest.mark.integration


@pytest.fixture
def statuses(topic_factory: Callable[..., str], registry: SchemaRegistryClient) -> StatusRecorder:
    return StatusRecorder(
        RecordSerde(registry, NotificationStatus), topic_factory("harpicoop.NotificationStatus")
    )


@pytest.fixture
def reader(
    stack: Settings, imap_server: Imap, ledger_conn: outbox.Conn, statuses: StatusRecorder
) -> ReceiptsReader:
    settings = dataclasses.replace(
        stack,
        imap_host="localhost",
        imap_port=imap_server.port,
        imap_user=imap_server.mailbox,
        imap_password=imap_server.password(),
        imap_security="none",
    )
    return ReceiptsReader(
        settings=settings,
        conn=ledger_conn,
        statuses=statuses,
        log=structlog.get_logger(),
        unconfirmed_after=dt.timedelta(seconds=1),
    )


def deliver(imap: Imap, message: bytes) -> None:
    with smtplib.LMTP(str(imap.lmtp_socket)) as lmtp:
        lmtp.sendmail("", [imap.mailbox], message)


def test_hostile_and_foreign_messages_are_kept_apart_and_the_reader_goes_on(
    reader: ReceiptsReader, imap_server: Imap, ledger_conn: outbox.Conn
) -> None:
    deliver(imap_server, b"Subject: big\r\n\r\n" + b"A" * (MAX_RECEIPT_BYTES + 10) + b"\r\n")
    deliver(
        imap_server,
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
        + b"--x\r\nContent-Type: message/delivery-status\r\n\r\n\xff\xfe\x00" * 50,
    )
    # A DSN of ours for a notice this ledger does not have (another environment's).
    deliver(imap_server, crlf(DELIVERED_DSN))
    assert reader.read_once() == {"unmatched": 3}
    assert mailbox_messages(imap_server) == []
    assert len(mailbox_messages(imap_server, "Unmatched")) == 3
    kinds = ledger_conn.execute(
        "SELECT kind, count(*) FROM notification_receipt GROUP BY kind"
    ).fetchall()
    assert kinds == [("UNMATCHED", 3)]
    assert reader.read_once() == {}, "nothing left to read"


def test_a_sent_notice_without_a_report_past_the_window_is_counted_until_one_comes(
    reader: ReceiptsReader, imap_server: Imap, ledger_conn: outbox.Conn, statuses: StatusRecorder
) -> None:
    notice = put_notice(ledger_conn, statuses, "10101010900", "dr.x@medecin.mssante.fr")
    # Sent an hour ago, with no report since.
    ledger.finish(ledger_conn, statuses, notice, "sent", smtp_code=250)
    ledger_conn.execute(
        "UPDATE notification SET sent_at = now() - interval '1 hour' WHERE notification_id = %s",
        (notice,),
    )
    assert reader.count_unconfirmed() == {"chrunancy": 1}
    deliver(imap_server, crlf(DELIVERED_DSN.replace(NOTICE.upper(), notice)))
    assert reader.read_once() == {"recorded": 1}
    assert reader.count_unconfirmed() == {}


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_the_mailbox_is_read_over_tls_as_at_an_operator(
    security: str,
    tmp_path: Path,
    certificates: dict[str, Path],
    stack: Settings,
    ledger_conn: outbox.Conn,
    statuses: StatusRecorder,
) -> None:
    layout = StackLayout(tmp_path / "imap-tls")
    layout.make_dirs()
    server = Imap(
        layout,
        port=free_port(),
        tls_port=free_port(),
        certificate=(certificates["server"], certificates["server_key"]),
    )
    server.install()
    server.start()
    try:
        server.wait_healthy()
        deliver(server, crlf(DELIVERED_DSN))
        settings = dataclasses.replace(
            stack,
            imap_host="localhost",
            imap_port=server.tls_port if security == "tls" else server.port,  # type: ignore[arg-type]
            imap_user=server.mailbox,
            imap_password=server.password(),
            imap_security=security,  # type: ignore[arg-type]
            imap_ca_file=str(certificates["ca"]),
        )
        reader = ReceiptsReader(
            settings=settings, conn=ledger_conn, statuses=statuses, log=structlog.get_logger()
        )
        assert reader.read_once() == {"unmatched": 1}
        # A server whose certificate is not from the expected CA is not trusted.
        untrusting = dataclasses.replace(settings, imap_ca_file=None)
        with pytest.raises(ssl.SSLError):
            ReceiptsReader(
                settings=untrusting,
                conn=ledger_conn,
                statuses=statuses,
                log=structlog.get_logger(),
            ).read_once()
    finally:
        server.stop()
        server.forget()


def test_reports_recorded_long_ago_leave_the_mailbox_and_recent_ones_stay(
    reader: ReceiptsReader, imap_server: Imap
) -> None:
    """A report is read once and its outcome kept on the ledger; the message itself (which a
    relay ignoring RET=HDRS may have filled with the whole notice) goes after the retention."""
    import imaplib
    import time

    reader.read_once()  # makes the folders
    client = imaplib.IMAP4("localhost", imap_server.port)
    client.login(imap_server.mailbox, imap_server.password())
    for age_days, subject in ((40, b"old"), (29, b"recent"), (0, b"today")):
        arrived = imaplib.Time2Internaldate(time.time() - age_days * 86400)
        client.append("Processed", None, arrived, b"Subject: " + subject + b"\r\n\r\nx\r\n")
    client.logout()

    reader.retention = None
    assert reader.purge_processed() == 0  # no retention given: kept
    reader.retention = dt.timedelta(days=30)
    assert reader.purge_processed() == 1
    assert [
        message.split(b"\r\n")[0] for message in mailbox_messages(imap_server, "Processed")
    ] == [
        b"Subject: recent",
        b"Subject: today",
    ]
    assert reader.purge_processed() == 0
