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
from services.stack.layout import StackLayout
from tests.support import MailServer, free_port

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
