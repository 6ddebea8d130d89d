"""Reading receipts: delivery status notifications (RFC 3464), read receipts (RFC 8098) and plain
bounces, shaped as real servers and clients write them, matched to the notice they are about."""

from __future__ import annotations

import datetime as dt

import pytest

from services.notify.receipts import MAX_RECEIPT_BYTES, ReceiptKind, read_receipt
from services.notify.smtp import dsn_options, xtext
from services.stack.dsn import Outcome, RecipientDsn, delivery_report, xtext_decode

NOTICE = "3f2c5a1e-9b7d-4c61-8a2e-5d9f0b1c7e44"
OTHER = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

FAILED_DSN = f"""From: MAILER-DAEMON@mx.medecin.mssante.fr (Mail Delivery System)
To: harpicoop@ght-sud-lorraine.mssante.fr
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="RAA14128.773615765/CS.UTK.EDU"

--RAA14128.773615765/CS.UTK.EDU
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.medecin.mssante.fr.
I'm sorry to have to inform you that your message could not be delivered.

--RAA14128.773615765/CS.UTK.EDU
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.medecin.mssante.fr
X-Postfix-Queue-ID: 4Q9c2X0l7Cz9s
Original-Envelope-Id: {NOTICE}
Arrival-Date: Mon,  2 Mar 2026 09:16:02 +0100 (CET)

Original-Recipient: rfc822;dr.parti@medecin.mssante.fr
Final-Recipient: rfc822; dr.parti@medecin.mssante.fr
Action: failed
Status: 5.1.1
Remote-MTA: dns; mbox.medecin.mssante.fr
Diagnostic-Code: smtp; 550 5.1.1 <dr.parti@medecin.mssante.fr>: Recipient address
    rejected: User unknown in virtual mailbox table

--RAA14128.773615765/CS.UTK.EDU
Content-Type: text/rfc822-headers

Return-Path: <harpicoop@ght-sud-lorraine.mssante.fr>
From: harpicoop@ght-sud-lorraine.mssante.fr
To: dr.parti@medecin.mssante.fr
Subject: =?utf-8?q?Hospitalisation_de_votre_patient=28e=29?=
Message-ID: <{NOTICE}@ght-sud-lorraine.fr>
X-Harpicoop-Notification-Id: {NOTICE}

--RAA14128.773615765/CS.UTK.EDU--
"""

DELIVERED_DSN = f"""From: MAILER-DAEMON@mx.medecin.mssante.fr (Mail Delivery System)
To: harpicoop@ght-sud-lorraine.mssante.fr
Subject: Successful Mail Delivery Report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message was successfully delivered to the destination(s) listed below.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.medecin.mssante.fr
Original-Envelope-Id: {NOTICE.upper()}

Final-Recipient: rfc822; dr.martin@medecin.mssante.fr
Original-Recipient: rfc822;dr.martin@medecin.mssante.fr
Action: delivered
Status: 2.0.0
Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as 4Q9c2X0l7Cz9s

--B--
"""

READ_RECEIPT = f"""Date: Wed, 4 Mar 2026 08:32:10 +0100
From: Dr Jeanne Martin <dr.martin@medecin.mssante.fr>
Message-Id: <199509200019.12345@medecin.mssante.fr>
Subject: Disposition notification
To: harpicoop@ght-sud-lorraine.mssante.fr
In-Reply-To: <{NOTICE}@ght-sud-lorraine.fr>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification;
    boundary="RAA14128.773615765/medecin.mssante.fr"

--RAA14128.773615765/medecin.mssante.fr

The message sent on 2026-03-02 09:15 to dr.martin@medecin.mssante.fr has been displayed.
This is no guarantee that the message has been read or understood.

--RAA14128.773615765/medecin.mssante.fr
content-type: message/disposition-notification

Reporting-UA: martin-pc.medecin.mssante.fr; Thunderbird 128
Original-Recipient: rfc822;dr.martin@medecin.mssante.fr
Final-Recipient: rfc822;dr.martin@medecin.mssante.fr
Original-Message-ID: <{NOTICE}@ght-sud-lorraine.fr>
Disposition: manual-action/MDN-sent-manually; displayed

--RAA14128.773615765/medecin.mssante.fr--
"""

PLAIN_BOUNCE = f"""From: MAILER-DAEMON@old-relay.example.fr
To: harpicoop@ght-sud-lorraine.mssante.fr
Subject: failure notice
Content-Type: text/plain

Hi. This is the qmail-send program at old-relay.example.fr.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<dr.parti@medecin.mssante.fr>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <harpicoop@ght-sud-lorraine.mssante.fr>
Message-ID: <{NOTICE}@ght-sud-lorraine.fr>
Subject: Hospitalisation de votre patient(e)
"""


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def test_a_failed_dsn_is_a_bounce_of_the_notice_its_envelope_id_names() -> None:
    receipt = read_receipt(crlf(FAILED_DSN))
    assert receipt.kind is ReceiptKind.BOUNCED and receipt.notification_id == NOTICE
    assert "5.1.1" in receipt.detail and "parti" not in receipt.detail


def test_a_delivered_dsn_is_a_delivery_whatever_the_case_of_its_envelope_id() -> None:
    receipt = read_receipt(crlf(DELIVERED_DSN))
    assert (receipt.kind, receipt.notification_id) == (ReceiptKind.DELIVERED, NOTICE)


def test_a_dsn_without_envelope_id_is_matched_by_the_returned_headers() -> None:
    without = FAILED_DSN.replace(f"Original-Envelope-Id: {NOTICE}\n", "")
    assert read_receipt(crlf(without)).notification_id == NOTICE
    only_message_id = without.replace(f"X-Harpicoop-Notification-Id: {NOTICE}\n", "")
    assert read_receipt(crlf(only_message_id)).notification_id == NOTICE


def test_a_delayed_dsn_says_nothing_final() -> None:
    delayed = DELIVERED_DSN.replace("Action: delivered", "Action: delayed").replace(
        "Status: 2.0.0", "Status: 4.4.1"
    )
    assert read_receipt(crlf(delayed)).kind is ReceiptKind.UNMATCHED


def test_another_senders_dsn_is_unmatched() -> None:
    theirs = DELIVERED_DSN.replace(
        f"Original-Envelope-Id: {NOTICE.upper()}", "Original-Envelope-Id: QQ314159"
    )
    assert read_receipt(crlf(theirs)).kind is ReceiptKind.UNMATCHED


def test_a_displayed_read_receipt_is_a_reading_of_the_notice() -> None:
    receipt = read_receipt(crlf(READ_RECEIPT))
    assert (receipt.kind, receipt.notification_id) == (ReceiptKind.READ, NOTICE)
    # Matched by In-Reply-To alone when the report part names no message.
    bare = READ_RECEIPT.replace(f"Original-Message-ID: <{NOTICE}@ght-sud-lorraine.fr>\n", "")
    assert read_receipt(crlf(bare)).notification_id == NOTICE


def test_a_receipt_of_a_deleted_unread_notice_is_not_a_reading() -> None:
    deleted = READ_RECEIPT.replace("displayed", "deleted")
    assert read_receipt(crlf(deleted)).kind is ReceiptKind.UNMATCHED


def test_a_plain_bounce_quoting_the_notice_is_a_bounce() -> None:
    receipt = read_receipt(crlf(PLAIN_BOUNCE))
    assert (receipt.kind, receipt.notification_id) == (ReceiptKind.BOUNCED, NOTICE)


def test_a_gps_reply_is_not_a_bounce() -> None:
    reply = (
        f"From: dr.martin@medecin.mssante.fr\nSubject: Re: Hospitalisation\n"
        f"In-Reply-To: <{NOTICE}@ght-sud-lorraine.fr>\n\nMerci, bien reçu.\n"
    )
    assert read_receipt(crlf(reply)).kind is ReceiptKind.UNMATCHED


@pytest.mark.parametrize(
    "hostile",
    [
        b"",
        b"\x00\xff\xfe garbage \r\n\r\n\xff",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x",
        crlf(FAILED_DSN).replace(b"Original-Envelope-Id", b"Original-Envelope-Id" * 5000),
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n" + b"--a\r\n\r\n" * 100_000,
        b"X" * (MAX_RECEIPT_BYTES + 1),
    ],
    ids=["empty", "binary", "truncated", "huge-field", "many-parts", "too-large"],
)
def test_a_hostile_message_is_unmatched_and_never_raises(hostile: bytes) -> None:
    receipt = read_receipt(hostile)
    assert receipt.kind is ReceiptKind.UNMATCHED or receipt.notification_id == NOTICE


def test_a_report_written_by_the_stacks_relay_reads_back_as_the_same_outcome() -> None:
    notice = f"Message-ID: <{OTHER}@ght-sud-lorraine.fr>\r\n\r\nbody\r\n".encode()
    for delivered, kind in ((True, ReceiptKind.DELIVERED), (False, ReceiptKind.BOUNCED)):
        report = delivery_report(
            sender="harpicoop@ght-sud-lorraine.mssante.fr",
            envelope_id=OTHER,
            outcomes=[Outcome(RecipientDsn("dr@m.mssante.fr", frozenset({"SUCCESS"})), delivered)],
            original=notice,
            full=False,
            arrived=dt.datetime.now(dt.UTC),
        )
        assert (read_receipt(report).kind, read_receipt(report).notification_id) == (kind, OTHER)


def test_notify_asks_for_reports_only_where_the_server_speaks_dsn() -> None:
    mail, rcpt = dsn_options(NOTICE, "dr+cardio@m.mssante.fr", server_speaks_dsn=True)
    assert mail == ["RET=HDRS", f"ENVID={NOTICE}"]
    assert rcpt == ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;dr+2Bcardio@m.mssante.fr"]
    assert dsn_options(NOTICE, "dr@m.mssante.fr", server_speaks_dsn=False) == ([], [])
    assert xtext_decode(xtext("a+b=c é")) == "a+b=c é"
