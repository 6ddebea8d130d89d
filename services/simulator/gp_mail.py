"""Simulated GPs reading their mail: a small mail client that, for a share of the notices
delivered to their mailboxes, sends back the read receipt a real client sends once its user has
displayed a notice that asked for one (RFC 8098), through the operator's SMTP server.

The mailboxes are the stack's SMTP server's mail folder (``services.stack.smtp_sink``: one
``.eml`` file per accepted message, one ``X-Original-To`` line per mailbox it was delivered to).
Like a real client, it answers only a notice that asks (``Disposition-Notification-To``), at most
once per notice and reader, and without asking its user only when the request goes back to the
notice's own sender: RFC 8098 2.1 has a client ask its user first when the two differ, and the
simulated GP then says no.

Which notices are read is drawn from the notice's Message-ID and a seed: the same day read again
gives the same receipts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import smtplib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

from services.simulator.model import Practitioner

READ_SHARE = 0.6
"""The share of the notices asking for a read receipt that the simulated GPs open during the
run (a simulation's figure, not a measured one)."""
ASKING_EVERY = 2
"""One sample GP in this many asks for read receipts (``NOTIFY_READ_RECEIPTS`` in ``make run``):
the others' notices ask for nothing, and their clients send nothing."""
USER_AGENT = "poste-du-cabinet; harpicoop-simulator"


def asking_for_read_receipts(gps: Sequence[Practitioner]) -> tuple[str, ...]:
    """The RPPS of the sample GPs whose notices ask for a read receipt: one in ``ASKING_EVERY``,
    by RPPS order, so a run shows notices that asked and notices that did not."""
    return tuple(sorted(item.id for item in gps)[1::ASKING_EVERY])


@dataclass(frozen=True)
class DeliveredNotice:
    """A message in a GP's mailbox that asks for a read receipt."""

    reader: str
    """The mailbox it was delivered to (the GP's address)."""
    message_id: str
    receipt_to: str
    """Where the read receipt goes (``Disposition-Notification-To``)."""
    return_path: str


def notices_asking(maildir: Path, since: float) -> list[DeliveredNotice]:
    """The messages delivered since ``since`` (a Unix time) that ask for a read receipt, one per
    mailbox they were delivered to; only their headers are read."""
    parser = BytesHeaderParser(policy=policy.compat32)
    found: list[DeliveredNotice] = []
    for path in sorted(maildir.glob("*.eml")):
        if path.stat().st_mtime < since:
            continue
        with open(path, "rb") as source:
            headers = parser.parse(source)
        receipt_to = parseaddr(str(headers.get("Disposition-Notification-To", "")))[1]
        message_id = str(headers.get("Message-ID", "")).strip()
        if not receipt_to or not message_id:
            continue
        return_path = parseaddr(str(headers.get("Return-Path", "")))[1]
        for reader in headers.get_all("X-Original-To", []):
            found.append(DeliveredNotice(str(reader).strip(), message_id, receipt_to, return_path))
    return found


def opens(notice: DeliveredNotice, share: float, seed: str) -> bool:
    """Whether the GP opens ``notice`` during the run: drawn from its Message-ID and ``seed``."""
    digest = hashlib.sha256(f"{seed}|{notice.message_id}|{notice.reader}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def sends_without_asking(notice: DeliveredNotice) -> bool:
    """RFC 8098 2.1: a receipt asked for elsewhere than the notice's return path is for the user
    to allow, which the simulated GP does not."""
    return notice.receipt_to.lower() == notice.return_path.lower()


def read_receipt(
    notice: DeliveredNotice, *, now: dt.datetime | None = None, user_agent: str = USER_AGENT
) -> EmailMessage:
    """The read receipt (RFC 8098 MDN) of ``notice``, displayed by its reader: a
    ``multipart/report; report-type=disposition-notification`` of a human part and the
    machine-readable disposition. The notice's own content is not returned (no third part): a
    receipt names the notice by its Message-ID only."""
    domain = notice.reader.rpartition("@")[2] or "localhost"
    report = EmailMessage()
    report["From"] = notice.reader
    report["To"] = notice.receipt_to
    report["Subject"] = "Accusé de lecture"
    report["Date"] = format_datetime(now or dt.datetime.now(dt.UTC))
    report["Message-ID"] = make_msgid(domain=domain)
    report["In-Reply-To"] = notice.message_id
    report["References"] = notice.message_id
    # RFC 3834: an automatic answer, to which nothing answers in turn.
    report["Auto-Submitted"] = "auto-replied"
    report.set_content(
        "Le message que vous avez envoyé a été affiché par son destinataire. Cela ne garantit "
        "pas qu'il a été lu ni compris.\n",
        cte="quoted-printable",
    )
    report.make_mixed()
    disposition = EmailMessage()
    fields = (
        f"Reporting-UA: {user_agent}\r\n"
        f"Final-Recipient: rfc822; {notice.reader}\r\n"
        f"Original-Message-ID: {notice.message_id}\r\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\r\n"
    )
    disposition.set_content(
        fields.encode("ascii"), maintype="message", subtype="disposition-notification", cte="7bit"
    )
    del disposition["MIME-Version"]  # a part's header, not a message's
    report.attach(disposition)
    report.set_type("multipart/report")
    report.set_param("report-type", "disposition-notification")
    return report


@dataclass
class GpMailClient:
    """The simulated GPs' mail clients, sending their read receipts to the operator's server."""

    smtp_host: str
    smtp_port: int
    share: float = READ_SHARE
    seed: str = "1"
    answered: set[tuple[str, str]] = field(default_factory=set)
    """(Message-ID, reader) already answered: a client sends one receipt per notice
    (RFC 8098 2.1)."""

    def to_answer(self, notices: Iterable[DeliveredNotice]) -> list[DeliveredNotice]:
        return [
            notice
            for notice in notices
            if (notice.message_id, notice.reader) not in self.answered
            and sends_without_asking(notice)
            and opens(notice, self.share, self.seed)
        ]

    def read(self, maildir: Path, since: float) -> list[str]:
        """The GPs open their mail delivered since ``since``; the Message-IDs of the notices whose
        read receipt went out."""
        sent: list[str] = []
        answering = self.to_answer(notices_asking(maildir, since))
        if not answering:
            return sent
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=30) as client:
            for notice in answering:
                # From the null sender (RFC 8098), so that no report answers a report.
                receipt = read_receipt(notice)
                client.send_message(receipt, from_addr="", to_addrs=[notice.receipt_to])
                self.answered.add((notice.message_id, notice.reader))
                sent.append(notice.message_id)
        return sent
