"""The simulated GPs' mail client: which notices it answers, and the read receipt it builds, read
back by notify's own receipt parser as the platform's mailbox would."""

from __future__ import annotations

import datetime as dt
import email
import os
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

from services.notify.receipts import ReceiptKind, read_receipt
from services.simulator.gp_mail import (
    DeliveredNotice,
    GpMailClient,
    asking_for_read_receipts,
    notices_asking,
    opens,
)
from services.simulator.gp_mail import read_receipt as build_read_receipt
from services.simulator.model import Practitioner

PLATFORM = "harpicoop@ght-sud-lorraine.mssante.fr"
NOTICE_ID = "6f1c2a52-3b1e-4f55-9d8e-0a0b0c0d0e0f"
GP = "jeanne.martin@medecin.mssante.fr"


def notice(**overrides: str) -> DeliveredNotice:
    fields = {
        "reader": GP,
        "message_id": f"<{NOTICE_ID}@ght-sud-lorraine.fr>",
        "receipt_to": PLATFORM,
        "return_path": PLATFORM,
    }
    fields.update(overrides)
    return DeliveredNotice(**fields)


def test_the_read_receipt_is_an_rfc_8098_mdn_that_notify_matches_as_read() -> None:
    when = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    raw = build_read_receipt(notice(), now=when).as_bytes(policy=policy.SMTP)

    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "disposition-notification"
    assert parsed["To"] == PLATFORM and parsed["From"] == GP
    # Nothing of the notice but its id: a fixed subject, no third part returning its headers.
    assert parsed["Subject"] == "Accusé de lecture"
    assert parsed["In-Reply-To"] == f"<{NOTICE_ID}@ght-sud-lorraine.fr>"
    human, machine = parsed.iter_parts()
    assert human.get_content_type() == "text/plain"
    assert machine.get_content_type() == "message/disposition-notification"
    fields = raw.decode("ascii")
    assert f"Original-Message-ID: <{NOTICE_ID}@ght-sud-lorraine.fr>" in fields
    assert "Disposition: manual-action/MDN-sent-manually; displayed" in fields
    assert f"Final-Recipient: rfc822; {GP}" in fields

    receipt = read_receipt(raw)
    assert (receipt.kind, receipt.notification_id) == (ReceiptKind.READ, NOTICE_ID)


def test_a_client_answers_once_only_what_asked_and_only_to_the_notice_sender() -> None:
    client = GpMailClient("localhost", 1, share=1.0)
    elsewhere = notice(receipt_to="someone@else.example", message_id="<b@x>")
    assert client.to_answer([notice(), elsewhere]) == [notice()]
    client.answered.add((notice().message_id, GP))
    assert client.to_answer([notice()]) == []


def test_the_share_of_notices_opened_is_drawn_from_their_ids_and_the_seed() -> None:
    many = [notice(message_id=f"<{index}@ght-sud-lorraine.fr>") for index in range(2000)]
    opened = [item for item in many if opens(item, 0.6, "7")]
    assert 1100 < len(opened) < 1300
    assert opened == [item for item in many if opens(item, 0.6, "7")]
    assert opened != [item for item in many if opens(item, 0.6, "8")]
    assert not any(opens(item, 0.0, "7") for item in many)


def write_eml(folder: Path, name: str, headers: dict[str, str], readers: list[str]) -> Path:
    message = EmailMessage()
    for key, value in headers.items():
        message[key] = value
    message.set_content("Votre patient(e) a été hospitalisé(e).")
    trace = f"Return-Path: <{PLATFORM}>\r\n" + "".join(
        f"X-Original-To: {reader}\r\n" for reader in readers
    )
    path = folder / name
    path.write_bytes(trace.encode() + message.as_bytes(policy=policy.SMTP))
    return path


def test_it_reads_the_mail_folder_as_the_stack_s_smtp_server_writes_it(tmp_path: Path) -> None:
    asking = {"Message-ID": "<a@ght-sud-lorraine.fr>", "Disposition-Notification-To": PLATFORM}
    write_eml(tmp_path, "1.eml", asking, [GP, "paul.durand@medecin.mssante.fr"])
    write_eml(tmp_path, "2.eml", {"Message-ID": "<b@ght-sud-lorraine.fr>"}, [GP])
    old = write_eml(tmp_path, "0.eml", {**asking, "Message-ID": "<old@x>"}, [GP])
    os.utime(old, (time.time() - 3600, time.time() - 3600))

    found = notices_asking(tmp_path, time.time() - 60)

    assert [(item.reader, item.message_id) for item in found] == [
        (GP, "<a@ght-sud-lorraine.fr>"),
        ("paul.durand@medecin.mssante.fr", "<a@ght-sud-lorraine.fr>"),
    ]
    assert all(item.return_path == PLATFORM == item.receipt_to for item in found)


def test_one_sample_gp_in_two_asks_for_read_receipts() -> None:
    gps = [Practitioner(f"1000000000{index}", "N", "G") for index in range(6)]
    assert asking_for_read_receipts(gps) == ("10000000001", "10000000003", "10000000005")
