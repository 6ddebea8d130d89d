"""What a message in the platform's mailbox says of a notice: pure parsing, no IMAP, no SQL.

Three kinds of receipt arrive there: delivery status notifications (RFC 3464,
``multipart/report; report-type=delivery-status``), read receipts (RFC 8098,
``report-type=disposition-notification``) and plain bounces from servers that speak neither
(a "mail delivery failed" text with the notice's headers quoted). Each is matched to its notice
by, in order: the DSN's ``Original-Envelope-Id`` (notify sends the notification id as ENVID),
the ``X-Harpicoop-Notification-Id`` header of the returned notice, then a Message-ID of ours
(``<notification id@ght-sud-lorraine.fr>``) in ``Original-Message-ID``, ``In-Reply-To``,
``References`` or the returned headers.

Parsing is bounded: a message larger than ``MAX_RECEIPT_BYTES`` is not parsed, only so many
parts are looked at, and any failure to read a message makes it unmatched, never an exception.
"""

from __future__ import annotations

import email
import enum
import re
import uuid
from dataclasses import dataclass
from email.message import Message
from email.policy import compat32

from services.notify.render import MESSAGE_ID_DOMAIN

MAX_RECEIPT_BYTES = 1024 * 1024
"""A report is a few kilobytes; a larger message is not parsed (RET=FULL of a big notice, or
something hostile) and stays unmatched, for an operator."""
MAX_PARTS = 20
MAX_SCANNED_BYTES = 64 * 1024
"""How much of a plain bounce's text is searched for our ids."""


class ReceiptKind(enum.StrEnum):
    DELIVERED = "DELIVERED"
    READ = "READ"
    BOUNCED = "BOUNCED"
    UNMATCHED = "UNMATCHED"
    """Not a receipt of ours, or one that names no notice we know how to find."""


@dataclass(frozen=True)
class Receipt:
    kind: ReceiptKind
    notification_id: str | None
    detail: str
    """For the operator: the status code or disposition, never the message's content."""


_OUR_MESSAGE_ID = re.compile(
    r"<([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})@"
    + re.escape(MESSAGE_ID_DOMAIN)
    + ">",
    re.IGNORECASE,
)
_OUR_HEADER = re.compile(
    r"^X-Harpicoop-Notification-Id:\s*([0-9a-f-]{36})\s*$", re.IGNORECASE | re.MULTILINE
)
_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned|delivery (status|failure|failed)|failure notice|non remis|échec",
    re.IGNORECASE,
)


def notification_id(text: str | None) -> str | None:
    """``text`` as a notification id (a UUID, in its canonical form), else None."""
    if not text:
        return None
    try:
        return str(uuid.UUID(text.strip().strip("<>")))
    except ValueError:
        return None


def _fields(payload: bytes) -> list[dict[str, str]]:
    """The blocks of ``Field: value`` lines of a delivery-status or disposition part (RFC 3464
    2.1: blank-line separated), names in lower case, continuation lines joined."""
    blocks: list[dict[str, str]] = []
    text = payload[:MAX_SCANNED_BYTES].decode("ascii", "replace").replace("\r\n", "\n")
    for raw in re.split(r"\n\s*\n", text):
        block: dict[str, str] = {}
        name = None
        for line in raw.split("\n"):
            if line[:1] in (" ", "\t") and name:
                block[name] += " " + line.strip()
            elif ":" in line:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                block[name] = value.strip()
        if block:
            blocks.append(block)
    return blocks


def _part_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    # message/* parts come parsed: their text again.
    inner = part.get_payload()
    if isinstance(inner, list):
        return b"\n\n".join(item.as_bytes() if isinstance(item, Message) else b"" for item in inner)
    return str(inner).encode("utf-8", "replace")


def _ours_in(text: str) -> str | None:
    """A notification id of ours named in ``text`` (our header first, then a Message-ID)."""
    found = _OUR_HEADER.search(text)
    if found and notification_id(found.group(1)):
        return notification_id(found.group(1))
    found = _OUR_MESSAGE_ID.search(text)
    return notification_id(found.group(1)) if found else None


def _returned_notice(parts: list[Message]) -> str | None:
    """The notification id in the returned notice's headers (text/rfc822-headers or
    message/rfc822 parts)."""
    for part in parts:
        if part.get_content_type() in ("text/rfc822-headers", "message/rfc822"):
            found = _ours_in(_part_bytes(part)[:MAX_SCANNED_BYTES].decode("utf-8", "replace"))
            if found:
                return found
    return None


def _delivery_status(report: Message, parts: list[Message]) -> Receipt:
    status = next(p for p in parts if p.get_content_type() == "message/delivery-status")
    blocks = _fields(_part_bytes(status))
    per_message = blocks[0] if blocks else {}
    recipients = [block for block in blocks[1:] if "action" in block] or [
        block for block in blocks if "action" in block
    ]
    matched = notification_id(per_message.get("original-envelope-id")) or _returned_notice(parts)
    actions = [block.get("action", "").lower() for block in recipients]
    codes = ", ".join(block.get("status", "?") for block in recipients) or "no status"
    if "failed" in actions:
        kind = ReceiptKind.BOUNCED
    elif actions and all(action in ("delivered", "relayed", "expanded") for action in actions):
        kind = ReceiptKind.DELIVERED
    else:
        # "delayed" says nothing final; anything else is not ours to guess.
        return Receipt(ReceiptKind.UNMATCHED, matched, f"DSN action {'/'.join(actions) or '?'}")
    if matched is None:
        return Receipt(ReceiptKind.UNMATCHED, None, f"DSN {kind.value.lower()} naming no notice")
    return Receipt(kind, matched, f"DSN {'/'.join(actions)} {codes}")


def _disposition(report: Message, parts: list[Message]) -> Receipt:
    part = next(p for p in parts if p.get_content_type() == "message/disposition-notification")
    fields: dict[str, str] = {}
    for block in _fields(_part_bytes(part)):
        fields.update(block)
    disposition = fields.get("disposition", "")
    matched = (
        notification_id(_match_id(fields.get("original-message-id")))
        or _returned_notice(parts)
        or _ours_in(f"{report.get('In-Reply-To', '')} {report.get('References', '')}")
    )
    # "displayed" is the one disposition that says the notice was read (RFC 8098 3.2.6.2);
    # "deleted" (unread) or "processed" say nothing of a reader.
    kind = ReceiptKind.READ if "displayed" in disposition.lower() else ReceiptKind.UNMATCHED
    if matched is None:
        return Receipt(ReceiptKind.UNMATCHED, None, "read receipt naming no notice")
    return Receipt(kind, matched, f"MDN {disposition.split(';')[-1].strip()[:80]}")


def _match_id(message_id: str | None) -> str | None:
    found = _OUR_MESSAGE_ID.search(message_id or "")
    return found.group(1) if found else None


def notice_of(message_id: str | None) -> str | None:
    """The notification id a Message-ID of ours names (``<id@MESSAGE_ID_DOMAIN>``), else None."""
    return notification_id(_match_id(message_id))


def _plain_bounce(report: Message, parts: list[Message]) -> Receipt:
    looks_like_bounce = bool(
        _BOUNCE_SENDER.search(str(report.get("From", "")))
        or _BOUNCE_SUBJECT.search(str(report.get("Subject", "")))
    )
    matched = _ours_in(f"{report.get('In-Reply-To', '')} {report.get('References', '')}")
    if matched is None:
        for part in parts:
            if part.get_content_maintype() in ("text", "message"):
                matched = _ours_in(_part_bytes(part)[:MAX_SCANNED_BYTES].decode("utf-8", "replace"))
                if matched:
                    break
    if looks_like_bounce and matched:
        return Receipt(ReceiptKind.BOUNCED, matched, "bounce without a DSN")
    return Receipt(ReceiptKind.UNMATCHED, matched, "not a receipt")


def read_receipt(raw: bytes) -> Receipt:
    """What ``raw`` (a message from the mailbox, as received) says; never raises."""
    if len(raw) > MAX_RECEIPT_BYTES:
        return Receipt(ReceiptKind.UNMATCHED, None, f"larger than {MAX_RECEIPT_BYTES} bytes")
    try:
        report = email.message_from_bytes(raw, policy=compat32)
        parts = [part for _, part in zip(range(MAX_PARTS), report.walk(), strict=False)]
        types = {part.get_content_type() for part in parts}
        if "message/delivery-status" in types:
            return _delivery_status(report, parts)
        if "message/disposition-notification" in types:
            return _disposition(report, parts)
        return _plain_bounce(report, parts)
    except Exception as error:  # a hostile message must not stop the reader
        return Receipt(ReceiptKind.UNMATCHED, None, f"unreadable ({type(error).__name__})")
