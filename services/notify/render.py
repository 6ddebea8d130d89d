"""The French notices: subject, plain text and HTML alternative, built into an email message.

Rendering is pure: the same event gives the same bytes, and the Message-ID comes from the
notification id, so a message sent again after a retry is the same message.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from services.common.dispositions import is_death
from services.common.records import AdmissionMode, CovidFollowup, Patient, Recipient, StayEvent
from services.notify.notices import NoticeKind
from services.notify.wording import Vocabulary, discharge_disposition_words

PARIS = ZoneInfo("Europe/Paris")
# Short enough for the whole Message-ID header to stay on one line (78 characters).
MESSAGE_ID_DOMAIN = "ght-sud-lorraine.fr"

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)

COVID_WORDING = {
    "POSITIVE": "positif",
    "NEGATIVE": "négatif",
    "SUSPECTED": "suspect (en attente de confirmation)",
    "NOT_TESTED": "non testé",
    "UNKNOWN": "non renseigné",
}

EVENT_WORDING = {
    "ADMISSION": "admission",
    "CHANGE_TO_INPATIENT": "hospitalisation après un passage en consultation ou aux urgences",
    "TRANSFER": "transfert",
    "DISCHARGE": "sortie",
}


STAY_ONGOING = frozenset({"ADMISSION", "CHANGE_TO_INPATIENT", "TRANSFER"})


def liaison_sentence(kind: NoticeKind, event_kind: str) -> str | None:
    """What the notice may say of the lettre de liaison (the discharge summary the establishment
    owes the GP on the day of discharge): due at discharge while the stay goes on, sent by the
    establishment once the patient is out; nothing in a retraction (the event was cancelled) or
    in a Covid-19 follow-up (the discharge notice said it)."""
    told_of = event_kind if kind is NoticeKind.CORRECTION else kind.value
    if kind in (NoticeKind.RETRACTION, NoticeKind.COVID_FOLLOWUP, NoticeKind.COVID_REMINDER):
        return None
    if told_of in STAY_ONGOING:
        return "La lettre de liaison vous parviendra à la sortie."
    if told_of == "DISCHARGE":
        return "La lettre de liaison de ce séjour vous est adressée séparément par l'établissement."
    return None


NO_VOCABULARY = Vocabulary()
"""Names a unit only from the message and no destination: words or nothing, still."""


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


def _local(moment: dt.datetime | None) -> str:
    if moment is None:
        return "date non précisée"
    return moment.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")


def _date(day: dt.date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else "non renseignée"


def _patient_title(patient: Patient) -> str:
    return {"F": "Mme", "M": "M."}.get(patient.sex or "", "")


def _who(patient: Patient, recipient: Recipient) -> dict[str, Any]:
    """The part of every notice that says to whom it is written and about whom."""
    return {
        "recipient_name": f"{recipient.given_name} {recipient.family_name}".strip(),
        "recipient_role": str(recipient.role),
        "patient_title": _patient_title(patient),
        "patient_family_name": patient.family_name.upper(),
        "patient_given_name": patient.given_name or "",
        "patient_birth_name": (patient.birth_name or "").upper(),
        "patient_birth_date": _date(patient.birth_date),
        "patient_ins": patient.ins,
    }


def notice_context(
    kind: NoticeKind,
    event: StayEvent,
    recipient: Recipient,
    establishment_name: str,
    vocabulary: Vocabulary = NO_VOCABULARY,
    *,
    minimal: bool = False,
) -> dict[str, Any]:
    """Every field in words; a code ``vocabulary`` has no words for is left out, never shown.
    ``minimal`` (a unit's sensitivity policy) leaves out the unit and the destination too."""
    stay = event.stay
    movement = event.movement
    event_kind = str(event.kind)
    return {
        "kind": kind.value,
        "event_kind": event_kind,
        "event_wording": EVENT_WORDING.get(event_kind, event_kind.lower()),
        "liaison": liaison_sentence(kind, event_kind),
        **_who(event.patient, recipient),
        "establishment": establishment_name,
        "unit": None
        if minimal
        else vocabulary.unit(event.establishment, movement.unit, movement.unit_name),
        "when": _local(movement.occurred_at),
        "emergency": stay.admission_mode is AdmissionMode.EMERGENCY,
        "scheduled": stay.admission_mode is AdmissionMode.SCHEDULED,
        "deceased": is_death(stay.discharge_disposition),
        "discharge_disposition": discharge_disposition_words(stay.discharge_disposition),
        "discharge_destination": None
        if minimal
        else vocabulary.destination(stay.discharge_destination),
        "covid_status": COVID_WORDING.get(event.covid_status, "non renseigné"),
        "event_id": event.event_id,
    }


def followup_context(
    kind: NoticeKind,
    followup: CovidFollowup,
    recipient: Recipient,
    establishment_name: str,
) -> dict[str, Any]:
    """The context of a Covid-19 follow-up notice, from a ``CovidFollowup`` state."""
    patient = followup.patient
    return {
        "kind": kind.value,
        "event_kind": "DISCHARGE",
        "event_wording": EVENT_WORDING["DISCHARGE"],
        "liaison": liaison_sentence(kind, "DISCHARGE"),
        **_who(patient, recipient),
        "establishment": establishment_name,
        "unit": None,
        "when": _local(followup.opened_at),
        "emergency": False,
        "scheduled": False,
        "deceased": False,
        "discharge_disposition": None,
        "discharge_destination": None,
        "covid_status": COVID_WORDING.get(followup.covid_status, "non renseigné"),
        "event_id": followup.discharge_event_id,
    }


def subject(context: Mapping[str, Any]) -> str:
    where = context["establishment"]
    kind = context["kind"]
    if kind == "ADMISSION":
        mode = (
            " en urgence"
            if context["emergency"]
            else (" programmée" if context["scheduled"] else "")
        )
        return f"Hospitalisation{mode} de votre patient(e) — {where}"
    if kind == "TRANSFER":
        return f"Transfert de votre patient(e) — {where}"
    if kind == "DISCHARGE" and context["deceased"]:
        return f"Décès de votre patient(e) — {where}"
    if kind == "DISCHARGE":
        return f"Sortie d'hospitalisation de votre patient(e) — {where}"
    if kind == "CORRECTION":
        return f"Rectification d'une information sur votre patient(e) — {where}"
    if kind == "RETRACTION":
        return f"Annulation d'une information sur votre patient(e) — {where}"
    if kind == "COVID_FOLLOWUP":
        return f"Suivi Covid-19 de votre patient(e) après sa sortie — {where}"
    if kind == "COVID_REMINDER":
        return f"Rappel : suivi Covid-19 de votre patient(e) — {where}"
    return f"Information sur votre patient(e) — {where}"


def digest_context(
    lines: Sequence[Mapping[str, Any]],
    recipient: Recipient,
    day: dt.date,
    hour: int,
    digest_id: str,
) -> dict[str, Any]:
    """A digest's context: its lines are the contexts of the notices it tells (``notice_context``,
    kept with each deferred notice), in the order their events happened."""
    return {
        "kind": "DIGEST",
        "recipient_name": f"{recipient.given_name} {recipient.family_name}".strip(),
        "day": _date(day),
        "hour": hour,
        "lines": list(lines),
        "digest_id": digest_id,
    }


def render_digest(context: Mapping[str, Any]) -> EmailContent:
    count = len(context["lines"])
    told = "un événement" if count == 1 else f"{count} événements"
    return EmailContent(
        subject=f"Résumé du {context['day']} : {told} concernant vos patient(e)s",
        text=_TEMPLATES.get_template("digest.txt").render(context),
        html=_TEMPLATES.get_template("digest.html").render(context),
    )


def render(context: Mapping[str, Any]) -> EmailContent:
    return EmailContent(
        subject=subject(context),
        text=_TEMPLATES.get_template("notice.txt").render(context),
        html=_TEMPLATES.get_template("notice.html").render(context),
    )


def build_message(
    content: EmailContent,
    *,
    sender: str,
    recipient_address: str,
    notification_id: str,
    created_at: dt.datetime,
    read_receipt_to: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """The notice; with ``read_receipt_to``, asking the GP's mail client for a read receipt
    there (RFC 8098), which it may send or not; ``headers``, more of the platform's own."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient_address
    message["Subject"] = content.subject
    message["Date"] = format_datetime(created_at.astimezone(PARIS))
    message["Message-ID"] = f"<{notification_id}@{MESSAGE_ID_DOMAIN}>"
    message["X-Harpicoop-Notification-Id"] = notification_id
    if read_receipt_to:
        message["Disposition-Notification-To"] = read_receipt_to
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    return message


_PLAIN_HEADER = re.compile(r"[\x21-\x7e]([\x20-\x7e]{0,70}[\x21-\x7e])?")
"""A header value written as it is: printable ASCII, short enough for its line."""
_LONGEST_8BIT_LINE = 78
"""Body lines up to this long go as they are (8bit), as ``EmailMessage.set_content`` sends them;
a body with a longer one is quoted-printable."""


def message_bytes(
    content: EmailContent,
    *,
    sender: str,
    recipient_address: str,
    notification_id: str,
    created_at: dt.datetime,
    read_receipt_to: str | None = None,
) -> bytes:
    """``build_message``'s notice as the bytes handed to SMTP (CRLF line ends), written directly.

    ``EmailMessage`` parses every header it is given and folds them all again when flattened:
    about two thirds of intake's time per notice. This writes the same MIME structure (the same
    headers, multipart/alternative of text/plain and text/html in UTF-8) at a fraction of the
    cost; an address that is not plain ASCII on one line takes ``build_message``'s way."""
    addresses = [sender, recipient_address, *([read_receipt_to] if read_receipt_to else [])]
    if not all(_PLAIN_HEADER.fullmatch(address) for address in addresses):
        return build_message(
            content,
            sender=sender,
            recipient_address=recipient_address,
            notification_id=notification_id,
            created_at=created_at,
            read_receipt_to=read_receipt_to,
        ).as_bytes(policy=SMTP_POLICY)
    boundary = f"==============={uuid.uuid4().hex}=="
    headers = [
        f"From: {sender}",
        f"To: {recipient_address}",
        f"Subject: {_subject(content.subject)}",
        f"Date: {format_datetime(created_at.astimezone(PARIS))}",
        f"Message-ID: <{notification_id}@{MESSAGE_ID_DOMAIN}>",
        f"X-Harpicoop-Notification-Id: {notification_id}",
        *([f"Disposition-Notification-To: {read_receipt_to}"] if read_receipt_to else []),
        "MIME-Version: 1.0",
        # Folded as EmailMessage folds it: the line would pass 78 characters.
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"',
    ]
    parts = [
        b"\r\n".join(line.encode("ascii") for line in headers),
        b"\r\n\r\n",
        _part(boundary, "plain", content.text),
        _part(boundary, "html", content.html),
        f"--{boundary}--\r\n".encode("ascii"),
    ]
    return b"".join(parts)


_WORD_BYTES = 42
"""UTF-8 bytes per RFC 2047 encoded word: 56 in base64, 68 with its markers, so that even the
first, after "Subject: ", keeps its line within 78 characters."""


def _subject(subject: str) -> str:
    """The subject as written in its header: RFC 2047 base64 encoded words, one per folded line,
    when it is not plain; a word never splits a character (``email.header`` does the same, at
    ten times the cost)."""
    if _PLAIN_HEADER.fullmatch(subject):
        return subject
    words: list[bytes] = []
    word = b""
    for char in subject:
        encoded = char.encode("utf-8")
        if len(word) + len(encoded) > _WORD_BYTES:
            words.append(word)
            word = b""
        word += encoded
    words.append(word)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word).decode('ascii')}?=" for word in words)


def _part(boundary: str, subtype: str, text: str) -> bytes:
    lines = text.splitlines()
    body = "\n".join(lines).encode("utf-8") + b"\n"
    if max(map(len, lines), default=0) > _LONGEST_8BIT_LINE:
        # As EmailMessage chooses: the shorter of quoted-printable (soft breaks for the long
        # lines) and base64, judged on the first lines; LF line ends made CRLF below.
        sniff = "\n".join(lines[:10]).encode("utf-8") + b"\n"
        if len(binascii.b2a_qp(sniff, istext=True)) > len(binascii.b2a_base64(sniff)):
            body, encoding = base64.encodebytes(body), "base64"
        else:
            body, encoding = binascii.b2a_qp(body, istext=True), "quoted-printable"
    else:
        encoding = "7bit" if body.isascii() else "8bit"
    head = (
        f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    # The CRLF before the next boundary belongs to the boundary: the body keeps its last line end.
    return head.encode("ascii") + body.replace(b"\n", b"\r\n") + b"\r\n"
