"""The stack's SMTP server keeps every accepted message, whole, as an .eml file."""

from __future__ import annotations

import email
import os
import smtplib
import stat
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from services.common.settings import Settings
from services.stack.components import Imap
from services.stack.layout import StackLayout
from tests.support import MailServer, eventually, free_port, mailbox_messages

pytestmark = pytest.mark.integration


def test_an_accepted_message_is_on_disk_with_its_envelope(stack: Settings) -> None:
    if stack.smtp_port != 2525:
        pytest.skip("the local stack's mail folder is only known for the local stack")
    maildir = StackLayout.default().mail
    before = set(maildir.glob("*.eml"))
    message = EmailMessage()
    message["From"] = stack.smtp_from
    message["To"] = "jeanne.martin@medecin.mssante.fr"
    message["Subject"] = "Admission de votre patiente"
    message.set_content("Votre patiente a été admise au CHRU de Nancy.")
    with smtplib.SMTP(stack.smtp_host, stack.smtp_port, timeout=10) as client:
        refused = client.send_message(message)
    assert refused == {}

    new = set(maildir.glob("*.eml")) - before
    assert len(new) == 1
    stored = email.message_from_bytes(new.pop().read_bytes(), policy=default)
    assert stored["X-Original-To"] == "jeanne.martin@medecin.mssante.fr"
    assert stored["Subject"] == "Admission de votre patiente"
    assert "admise au CHRU de Nancy" in stored.get_content()


def test_a_kept_message_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    # It names a patient: 0600 whatever the umask of the process that runs the server.
    server = MailServer(tmp_path / "mail", free_port())
    previous = os.umask(0o022)
    server.start()
    try:
        message = EmailMessage()
        message["From"], message["To"] = "a@x.mssante.fr", "b@y.mssante.fr"
        message.set_content("Mme LEFÈVRE Hélène, née le 14/07/1948")
        with smtplib.SMTP("localhost", server.port, timeout=10) as client:
            assert client.send_message(message) == {}
    finally:
        server.stop()
        os.umask(previous)
    [kept] = (tmp_path / "mail").glob("*.eml")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "mail").stat().st_mode) == 0o700


def _report(raw: bytes) -> tuple[EmailMessage, list[dict[str, str]]]:
    """A delivery report and its per-message then per-recipient fields, parsed by hand."""
    report = email.message_from_bytes(raw, policy=default)
    assert isinstance(report, EmailMessage)
    status = next(
        part for part in report.walk() if part.get_content_type() == "message/delivery-status"
    )
    blocks = [dict(block.items()) for block in status.get_payload()]  # type: ignore[union-attr]
    return report, blocks


def test_a_relay_returns_delivery_status_notifications_as_the_envelope_asks(
    reporting_mail_server: MailServer, imap_server: Imap
) -> None:
    reporting_mail_server.bounce("parti@medecin.mssante.fr")
    message = EmailMessage()
    message["From"] = imap_server.mailbox
    message["To"] = "jeanne.martin@medecin.mssante.fr"
    message["Subject"] = "Admission de votre patiente"
    message["Message-ID"] = "<n-1@ght-sud-lorraine.fr>"
    message.set_content("Votre patiente a été admise.")
    with smtplib.SMTP("localhost", reporting_mail_server.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("dsn")
        for recipient, notify in (
            ("jeanne.martin@medecin.mssante.fr", "NOTIFY=SUCCESS,FAILURE"),
            ("parti@medecin.mssante.fr", "NOTIFY=SUCCESS,FAILURE"),
            ("discret@medecin.mssante.fr", "NOTIFY=NEVER"),
        ):
            refused = client.send_message(
                message,
                to_addrs=[recipient],
                mail_options=["RET=HDRS", "ENVID=Notice+2B1"],
                rcpt_options=[notify, f"ORCPT=rfc822;{recipient}"],
            )
            assert refused == {}

    # Delivered mail is kept; the bouncing address's is not.
    assert [item["X-Original-To"] for item in reporting_mail_server.messages()] == [
        "jeanne.martin@medecin.mssante.fr",
        "discret@medecin.mssante.fr",
    ]
    reports = [_report(raw) for raw in eventually(lambda: mailbox_messages(imap_server))]
    assert len(reports) == 2, "one report per transaction that asked for one"
    (delivered, delivered_fields), (failed, failed_fields) = reports
    assert delivered.get_content_type() == "multipart/report"
    assert delivered.get_param("report-type") == "delivery-status"
    assert delivered_fields[0]["Original-Envelope-Id"] == "Notice+1"  # xtext decoded
    assert delivered_fields[1]["Final-Recipient"] == "rfc822; jeanne.martin@medecin.mssante.fr"
    assert delivered_fields[1]["Action"] == "delivered"
    assert delivered_fields[1]["Status"] == "2.0.0"
    assert failed_fields[1]["Action"] == "failed" and failed_fields[1]["Status"] == "5.1.1"
    assert "550 5.1.1" in failed_fields[1]["Diagnostic-Code"]
    # RET=HDRS: the original's headers come back, not its body.
    returned = next(p for p in failed.walk() if p.get_content_type() == "text/rfc822-headers")
    assert b"<n-1@ght-sud-lorraine.fr>" in returned.get_payload(decode=True)
    assert b"admise" not in returned.get_payload(decode=True)
