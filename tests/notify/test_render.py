"""The notices read right in French, in text and HTML, and are safe to render."""

from __future__ import annotations

import datetime as dt
import email
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import default

import pytest

from services.common.records import Recipient, StayEvent
from services.notify.config import NotifyConfig
from services.notify.notices import NoticeKind
from services.notify.render import (
    EmailContent,
    build_message,
    liaison_sentence,
    message_bytes,
    notice_context,
    render,
)
from services.notify.wording import Vocabulary, fields_without_words
from tests.notify.builders import enriched, recipient

GP = recipient("10101010101", "jeanne.martin@medecin.mssante.fr")
TO_GP = Recipient.from_avro(GP)


def test_a_scheduled_admission_says_so() -> None:
    event = enriched("V1", [GP], admission_mode="SCHEDULED")["event"]
    content = render(
        notice_context(
            NoticeKind.ADMISSION, StayEvent.from_avro(event), TO_GP, "Centre hospitalier de Toul"
        )
    )
    assert (
        content.subject
        == "Hospitalisation programmée de votre patient(e) — Centre hospitalier de Toul"
    )
    assert "hospitalisé(e) de façon programmée le 02/03/2026 à 09:15" in content.text


def test_html_escapes_what_comes_from_the_message() -> None:
    event = enriched("V1", [GP])["event"]
    event["patient"]["family_name"] = "<script>alert(1)</script>"
    content = render(
        notice_context(NoticeKind.ADMISSION, StayEvent.from_avro(event), TO_GP, "CHRU de Nancy")
    )
    assert "<script>" not in content.html
    assert "&lt;SCRIPT&gt;" in content.html


def test_a_retraction_of_a_discharge_names_the_event_and_asks_to_disregard_it() -> None:
    event = enriched("V1", [GP], kind="DISCHARGE", action="CANCEL")["event"]
    content = render(
        notice_context(NoticeKind.RETRACTION, StayEvent.from_avro(event), TO_GP, "CHRU de Nancy")
    )
    assert "annulé l'événement (sortie)" in content.text
    assert "Merci de ne pas tenir compte du message précédent" in content.text


def test_the_message_has_both_alternatives_and_a_stable_message_id() -> None:
    event = enriched("V1", [GP])["event"]
    content = render(
        notice_context(NoticeKind.ADMISSION, StayEvent.from_avro(event), TO_GP, "CHRU de Nancy")
    )
    message = build_message(
        content,
        sender="harpicoop@ght-sud-lorraine.mssante.fr",
        recipient_address=GP["mssante_address"],
        notification_id="e4a7fea9-67ad-568f-b34d-51ce5789f4ab",
        created_at=dt.datetime(2026, 3, 2, 8, 16, tzinfo=dt.UTC),
    )
    assert message["Message-ID"] == "<e4a7fea9-67ad-568f-b34d-51ce5789f4ab@ght-sud-lorraine.fr>"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]


def test_retries_back_off_exponentially_up_to_a_ceiling() -> None:
    config = NotifyConfig(retry_initial=dt.timedelta(seconds=5), retry_max=dt.timedelta(minutes=1))
    delays = [config.retry_delay(attempt).total_seconds() for attempt in range(1, 7)]
    assert delays == [5, 10, 20, 40, 60, 60]


VOCABULARY = Vocabulary(
    units={"chrunancy": {"URGA": "Urgences adultes Central"}},
    places={"CH_TOUL": "Centre hospitalier de Toul"},
)


def test_a_transfer_out_reads_in_words() -> None:
    event = enriched("V1", [GP], kind="DISCHARGE", disposition="7", destination="CH_TOUL")
    event = event["event"]
    event["movement"].update(unit="URGA", unit_name=None)
    context = notice_context(
        NoticeKind.DISCHARGE, StayEvent.from_avro(event), TO_GP, "CHRU de Nancy", VOCABULARY
    )
    content = render(context)
    assert "Service : Urgences adultes Central" in content.text
    assert "Mode de sortie : transfert vers un autre établissement" in content.text
    assert "Destination : Centre hospitalier de Toul" in content.text
    assert "<td>transfert vers un autre établissement</td>" in content.html
    assert fields_without_words(content.text) == []


def test_codes_without_words_are_left_out_of_the_notice() -> None:
    event = enriched("V1", [GP], kind="DISCHARGE", disposition="X9", destination="123456789")
    event = event["event"]
    event["movement"].update(unit="4011", unit_name=None)
    content = render(
        notice_context(
            NoticeKind.DISCHARGE, StayEvent.from_avro(event), TO_GP, "CHRU de Nancy", VOCABULARY
        )
    )
    for label in ("Service", "Mode de sortie", "Destination"):
        assert f"{label} :" not in content.text
        assert f">{label}<" not in content.html
    assert "4011" not in content.text and "123456789" not in content.html
    assert "Statut Covid-19 à la sortie" in content.text


def footer(kind: NoticeKind, event_kind: str, action: str = "INSERT") -> str:
    event = enriched("V1", [GP], kind=event_kind, action=action)["event"]
    text = render(notice_context(kind, StayEvent.from_avro(event), TO_GP, "CHRU de Nancy")).text
    [line] = [line for line in text.splitlines() if line.startswith("Ce message vous est adressé")]
    return line


def test_the_footer_speaks_of_the_lettre_de_liaison_as_the_notice_stands() -> None:
    ongoing = "La lettre de liaison vous parviendra à la sortie."
    sent = "La lettre de liaison de ce séjour vous est adressée séparément par l'établissement."
    assert footer(NoticeKind.ADMISSION, "ADMISSION").endswith(ongoing)
    assert footer(NoticeKind.TRANSFER, "TRANSFER").endswith(ongoing)
    # Once the patient is out, the letter is not still to come "at discharge".
    assert footer(NoticeKind.DISCHARGE, "DISCHARGE").endswith(sent)
    assert footer(NoticeKind.CORRECTION, "DISCHARGE", "UPDATE").endswith(sent)
    assert footer(NoticeKind.CORRECTION, "ADMISSION", "UPDATE").endswith(ongoing)
    # A cancelled event promises nothing; the follow-ups come after the discharge notice.
    assert footer(NoticeKind.RETRACTION, "ADMISSION", "CANCEL").endswith("de ce(tte) patient(e).")
    assert "liaison" not in footer(NoticeKind.RETRACTION, "DISCHARGE", "CANCEL")
    for kind in (NoticeKind.COVID_FOLLOWUP, NoticeKind.COVID_REMINDER):
        assert liaison_sentence(kind, "DISCHARGE") is None


def test_the_html_footer_is_the_texts() -> None:
    event = enriched("V1", [GP], kind="DISCHARGE")["event"]
    content = render(
        notice_context(NoticeKind.DISCHARGE, StayEvent.from_avro(event), TO_GP, "CHRU de Nancy")
    )
    assert "adressée séparément par l&#39;établissement." in content.html
    assert "vous parviendra à la sortie" not in content.html


def test_a_discharge_by_death_has_its_own_words() -> None:
    event = enriched("V1", [GP], kind="DISCHARGE", disposition="9")["event"]
    content = render(
        notice_context(NoticeKind.DISCHARGE, StayEvent.from_avro(event), TO_GP, "CHRU de Nancy")
    )
    assert content.subject == "Décès de votre patient(e) — CHRU de Nancy"
    assert "du décès de votre patient(e), survenu le 02/03/2026 à 09:15" in content.text
    assert "sorti(e) d'hospitalisation" not in content.text
    assert "<strong>décès</strong>" in content.html
    alive = enriched("V1", [GP], kind="DISCHARGE", disposition="8")["event"]
    other = render(
        notice_context(NoticeKind.DISCHARGE, StayEvent.from_avro(alive), TO_GP, "CHRU de Nancy")
    )
    assert other.subject.startswith("Sortie d'hospitalisation")


def _read(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    return message


NOTICE = render(
    notice_context(
        NoticeKind.ADMISSION,
        StayEvent.from_avro(enriched("V1", [GP])["event"]),
        TO_GP,
        "Centre hospitalier régional universitaire de Nancy, hôpital Brabois adultes",
    )
)


@pytest.mark.parametrize(
    "content",
    [
        NOTICE,
        EmailContent(subject="Plain", text="ascii only\n", html="<p>ascii</p>\n"),
        EmailContent(
            subject="Sortie de votre patient(e) Élodie — " + "très long " * 12,
            text="Été\n.\n" + "x" * 120 + "é\n\nfin",
            html="<p>" + "ÿ" * 300 + "</p>",
        ),
    ],
)
@pytest.mark.parametrize("read_receipt_to", [None, "harpicoop@ght-sud-lorraine.mssante.fr"])
def test_the_notice_written_directly_reads_as_the_email_package_writes_it(
    content: EmailContent, read_receipt_to: str | None
) -> None:
    arguments = {
        "sender": "harpicoop@ght-sud-lorraine.mssante.fr",
        "recipient_address": GP["mssante_address"],
        "notification_id": "e4a7fea9-67ad-568f-b34d-51ce5789f4ab",
        "created_at": dt.datetime(2026, 3, 2, 8, 16, tzinfo=dt.UTC),
        "read_receipt_to": read_receipt_to,
    }
    raw = message_bytes(content, **arguments)  # type: ignore[arg-type]
    fast = _read(raw)
    slow = _read(build_message(content, **arguments).as_bytes(policy=SMTP_POLICY))  # type: ignore[arg-type]

    assert all(len(line) <= 78 for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    for name in (
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "X-Harpicoop-Notification-Id",
        "Disposition-Notification-To",
        "MIME-Version",
    ):
        assert fast[name] == slow[name], name
    assert fast.get_content_type() == "multipart/alternative"
    fast_parts, slow_parts = list(fast.iter_parts()), list(slow.iter_parts())
    assert [p.get_content_type() for p in fast_parts] == ["text/plain", "text/html"]
    for mine, theirs in zip(fast_parts, slow_parts, strict=True):
        assert mine.get_content_charset() == "utf-8"
        assert mine.get_content() == theirs.get_content()


def test_an_address_that_is_not_plain_ascii_is_written_by_the_email_package() -> None:
    raw = message_bytes(
        NOTICE,
        sender="harpicoop@ght-sud-lorraine.mssante.fr",
        recipient_address="Jérôme <jerome@medecin.mssante.fr>",
        notification_id="e4a7fea9-67ad-568f-b34d-51ce5789f4ab",
        created_at=dt.datetime(2026, 3, 2, 8, 16, tzinfo=dt.UTC),
    )
    assert _read(raw)["To"].addresses[0].display_name == "Jérôme"
