"""A fallback chain's steps: their ids and the message each one sends."""

from __future__ import annotations

import email
from email.policy import SMTP as SMTP_POLICY

from services.notify.chain import next_step, readdressed, step_id
from tests.notify.builders import step

FIRST = "3f1b0a52-54c4-4a2c-9d0e-4c1c7e0f9a01"
CHAIN = [
    step("10101010101", "cabinet@medecin.mssante.fr"),
    step("40404040404", "remplacant@medecin.mssante.fr", "PER", "SUBS"),
]


def test_each_step_has_one_id_derived_from_the_notice_it_follows() -> None:
    first = next_step(FIRST, 0, CHAIN)
    assert first is not None
    again = next_step(FIRST, 0, CHAIN)
    assert again is not None and first.notification_id == again.notification_id == step_id(FIRST, 1)
    assert (first.number, first.rpps, first.address) == (1, "10101010101", CHAIN[0]["address"])
    assert first.remaining == [CHAIN[1]]
    second = next_step(first.notification_id, first.number, first.remaining)
    assert second is not None
    assert (second.number, second.rpps, second.role) == (2, "40404040404", "SUBS")
    assert len({FIRST, first.notification_id, second.notification_id}) == 3
    assert second.remaining == []
    assert next_step(second.notification_id, 2, second.remaining) is None


def test_the_ids_are_fixed_forever() -> None:
    # A changed namespace or format would send every step of a replayed bounce again.
    assert step_id(FIRST, 1) == "f13467b1-39a7-5dcf-bd12-4c818f11d236"


def test_the_step_sends_the_same_words_to_its_own_address_under_its_own_ids() -> None:
    message = (
        "From: notifications@ght-sud-lorraine.fr\r\nTo: jeanne.martin@medecin.mssante.fr\r\n"
        "Subject: Hospitalisation\r\nMessage-ID: <" + FIRST + "@ght-sud-lorraine.fr>\r\n"
        "X-Harpicoop-Notification-Id: " + FIRST + "\r\n"
        "Disposition-Notification-To: notifications@ght-sud-lorraine.fr\r\n\r\n"
        "Votre patient est hospitalise.\r\n"
    ).encode()
    following = step_id(FIRST, 1)
    out = email.message_from_bytes(
        readdressed(message, "cabinet@medecin.mssante.fr", following), policy=SMTP_POLICY
    )
    assert out.get_all("To") == ["cabinet@medecin.mssante.fr"]
    assert out.get_all("Message-ID") == [f"<{following}@ght-sud-lorraine.fr>"]
    assert out.get_all("X-Harpicoop-Notification-Id") == [following]
    assert out["Subject"] == "Hospitalisation"
    assert out["Disposition-Notification-To"] == "notifications@ght-sud-lorraine.fr"
    assert out.get_content().strip() == "Votre patient est hospitalise."
