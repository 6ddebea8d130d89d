"""The digest's words: one email listing the day's events in order, in French, no bare code."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from services.notify.notices import NoticeKind
from services.notify.render import digest_context, notice_context, render_digest
from services.notify.wording import Vocabulary, fields_without_words
from tests.notify.builders import enriched_record, recipient_record

GP = recipient_record("10101010101", "jeanne.martin@medecin.mssante.fr")


def line(kind: NoticeKind, event_kind: str, visit: str, action: str = "INSERT") -> dict[str, Any]:
    event = enriched_record(
        visit, [GP.to_avro()], kind=event_kind, action=action, admission_mode="SCHEDULED"
    )
    context = notice_context(kind, event.event, GP, "CHRU de Nancy", Vocabulary())
    # As intake keeps it with the deferred notice, and reads it back for the digest.
    kept: dict[str, Any] = json.loads(json.dumps(context, ensure_ascii=False))
    return kept


def test_a_digest_lists_each_event_in_words_in_the_order_given() -> None:
    lines = [
        line(NoticeKind.ADMISSION, "ADMISSION", "V1"),
        line(NoticeKind.TRANSFER, "TRANSFER", "V2"),
        line(NoticeKind.RETRACTION, "ADMISSION", "V3", action="CANCEL"),
    ]
    content = render_digest(
        digest_context(lines, GP, dt.date(2026, 3, 2), 18, "4eacc7fc-11c8-5dba-974f-f3d52e15795c")
    )
    assert content.subject == "Résumé du 02/03/2026 : 3 événements concernant vos patient(e)s"
    numbered = [text for text in content.text.splitlines() if text[:2] in ("1.", "2.", "3.")]
    assert numbered == [
        "1. 02/03/2026 à 09:15 — Hospitalisation programmée",
        "2. 02/03/2026 à 09:15 — Transfert dans un autre service",
        "3. 02/03/2026 à 09:15 — Annulation par l'établissement (admission) : ne pas tenir "
        "compte de l'information précédente",
    ]
    assert content.text.startswith("Bonjour Docteur Jeanne Martin,")
    assert "une fois par jour, à 18 h, comme vous l'avez choisi" in content.text
    assert content.text.count("Patient(e) : Mme LEFÈVRE Hélène") == 3
    assert fields_without_words(content.text) == []
    assert "<ol>" in content.html and content.html.count("<li>") == 3


def test_a_digest_of_one_event_says_so() -> None:
    content = render_digest(
        digest_context(
            [line(NoticeKind.ADMISSION, "ADMISSION", "V1")], GP, dt.date(2026, 3, 2), 7, "x"
        )
    )
    assert content.subject == "Résumé du 02/03/2026 : un événement concernant vos patient(e)s"
    assert "Voici l'événement survenu depuis votre précédent résumé" in content.text
