"""Delivery status notifications (RFC 3464) as the stack's SMTP server writes them.

The local server stands in for the MSSanté operator's relay: once it has delivered a message (or
found that a mailbox bounces), it reports to the sender as a relay does, in a
``multipart/report; report-type=delivery-status`` message sent from the null sender. Only the
envelope's DSN parameters (RFC 3461: ``RET``, ``ENVID``, ``NOTIFY``, ``ORCPT``) say whether and
what to report.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime

REPORTING_MTA = "mssante.local"


@dataclass(frozen=True)
class RecipientDsn:
    """A recipient's ``RCPT`` DSN parameters."""

    address: str
    notify: frozenset[str] = frozenset()
    """``SUCCESS``, ``FAILURE``, ``DELAY`` or ``NEVER``; empty when the client gave none."""
    original: str | None = None
    """``ORCPT``, as given (``rfc822;address``)."""

    def wants(self, delivered: bool) -> bool:
        """Whether this outcome is to be reported. Without NOTIFY, failures are (RFC 3461 4.1:
        the relay's choice, and every relay reports failures)."""
        if "NEVER" in self.notify:
            return False
        if not self.notify:
            return not delivered
        return ("SUCCESS" if delivered else "FAILURE") in self.notify


@dataclass(frozen=True)
class Outcome:
    recipient: RecipientDsn
    delivered: bool
    diagnostic: str | None = None


def xtext_decode(value: str) -> str:
    """RFC 3461's xtext: ``+XX`` is the character of hex code XX."""
    return re.sub(r"\+([0-9A-Fa-f]{2})", lambda found: chr(int(found.group(1), 16)), value)


def delivery_report(
    *,
    sender: str,
    envelope_id: str | None,
    outcomes: Sequence[Outcome],
    original: bytes,
    full: bool,
    arrived: dt.datetime,
) -> bytes:
    """The DSN to ``sender`` reporting ``outcomes``, with the original message's headers (or,
    for ``RET=FULL``, the whole message)."""
    boundary = f"dsn-{uuid.uuid4().hex}"
    failed = any(not item.delivered for item in outcomes)
    subject = "Undelivered Mail Returned to Sender" if failed else "Successful Mail Delivery Report"
    human = "This is the mail system at host mssante.local.\r\n\r\n" + (
        "Your message could not be delivered to one or more recipients.\r\n"
        if failed
        else "Your message was successfully delivered to the destination(s) listed below.\r\n"
    )
    per_message = [f"Reporting-MTA: dns; {REPORTING_MTA}"]
    if envelope_id:
        per_message.append(f"Original-Envelope-Id: {envelope_id}")
    per_message.append(f"Arrival-Date: {format_datetime(arrived)}")
    blocks = ["\r\n".join(per_message)]
    for item in outcomes:
        fields = []
        if item.recipient.original:
            fields.append(f"Original-Recipient: {item.recipient.original}")
        fields.append(f"Final-Recipient: rfc822; {item.recipient.address}")
        fields.append(f"Action: {'delivered' if item.delivered else 'failed'}")
        fields.append(f"Status: {'2.0.0' if item.delivered else '5.1.1'}")
        fields.append(f"Remote-MTA: dns; {REPORTING_MTA}")
        if item.diagnostic:
            fields.append(f"Diagnostic-Code: smtp; {item.diagnostic}")
        blocks.append("\r\n".join(fields))
    if full:
        returned_type, returned = "message/rfc822", original
    else:
        head, _, _ = original.replace(b"\r\n", b"\n").partition(b"\n\n")
        returned_type, returned = "text/rfc822-headers", head.replace(b"\n", b"\r\n") + b"\r\n"
    headers = [
        f"From: MAILER-DAEMON@{REPORTING_MTA} (Mail Delivery System)",
        f"To: {sender}",
        f"Subject: {subject}",
        f"Date: {format_datetime(dt.datetime.now(dt.UTC))}",
        f"Message-ID: <{uuid.uuid4().hex}@{REPORTING_MTA}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
    ]
    text = "\r\n".join(headers) + "\r\n\r\n"
    text += f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{human}\r\n"
    text += f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
    text += "\r\n\r\n".join(blocks) + "\r\n\r\n"
    text += f"--{boundary}\r\nContent-Type: {returned_type}\r\n\r\n"
    return text.encode("ascii", "replace") + returned + f"\r\n--{boundary}--\r\n".encode("ascii")
