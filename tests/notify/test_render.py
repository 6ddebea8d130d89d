"""The notices read right in French, in text and HTML, and are safe to render."""

from __future__ import annotations

import datetime as dt

from services.notify.config import NotifyConfig
from services.notify.notices import NoticeKind
from services.notify.render import build_message, notice_context, render
from tests.notify.builders import enriched, recipient

GP = recipient("10101010101", "jeanne.martin@medecin.mssante.fr")


def test_a_scheduled_admission_says_so() -> None:
    event = enriched("V1", [GP], admission_mode="SCHEDULED")["event"]
    content = render(notice_context(NoticeKind.ADMISSION, event, GP, "Centre hospitalier de Toul"))
    assert (
        content.subject
        == "Hospitalisation programmée de votre patient(e) — Centre hospitalier de Toul"
    )
    assert "hospitalisé(e) de façon programmée le 02/03/2026 à 09:15" in content.text


def test_html_escapes_what_comes_from_the_message() -> None:
    event = enriched("V1", [GP])["event"]
    event["patient"]["family_name"] = "<script>alert(1)</script>"
    content = render(notice_context(NoticeKind.ADMISSION, event, GP, "CHRU de Nancy"))
    assert "<script>" not in content.html
    assert "&lt;SCRIPT&gt;" in content.html


def test_a_retraction_of_a_discharge_names_the_event_and_asks_to_disregard_it() -> None:
    event = enriched("V1", [GP], kind="DISCHARGE", action="CANCEL")["event"]
    content = render(notice_context(NoticeKind.RETRACTION, event, GP, "CHRU de Nancy"))
    assert "annulé l'événement (sortie)" in content.text
    assert "Merci de ne pas tenir compte du message précédent" in content.text


def test_the_message_has_both_alternatives_and_a_stable_message_id() -> None:
    event = enriched("V1", [GP])["event"]
    content = render(notice_context(NoticeKind.ADMISSION, event, GP, "CHRU de Nancy"))
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
