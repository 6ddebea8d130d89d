"""The SMTP connection is reused between notices without a NOOP before each, and one that has
gone while idle is replaced before anything is delivered (the real SMTP server)."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from services.common.settings import Settings
from services.notify.smtp import Outcome, SmtpSender
from tests.support import MailServer

pytestmark = pytest.mark.integration

SENDER = "harpicoop@ght-sud-lorraine.mssante.fr"
ADDRESS = "dr.martin@chru-nancy.mssante.fr"


def message(number: int) -> bytes:
    return f"To: {ADDRESS}\r\nSubject: {number}\r\n\r\nBonjour\r\n".encode()


def test_a_connection_gone_unprobed_is_replaced_and_the_notice_sent_once(
    stack: Settings, mail_server: MailServer
) -> None:
    settings = dataclasses.replace(
        stack, smtp_host="localhost", smtp_port=mail_server.port, smtp_security="none"
    )
    sender = SmtpSender(settings, probe_after=3600.0)
    try:
        assert sender.send(message(1), SENDER, ADDRESS).outcome is Outcome.SENT
        first = sender._client
        assert first is not None and first.sock is not None
        # The server's end goes (an idle timeout, a restart): unseen, as no NOOP is sent.
        first.sock.shutdown(socket.SHUT_RDWR)

        assert sender.send(message(2), SENDER, ADDRESS).outcome is Outcome.SENT
        assert sender._client is not first
        assert sender.send(message(3), SENDER, ADDRESS).outcome is Outcome.SENT
    finally:
        sender.close()
    assert sorted(item["Subject"] for item in mail_server.messages()) == ["1", "2", "3"]
