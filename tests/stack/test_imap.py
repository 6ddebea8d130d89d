"""The stack's IMAP server (Dovecot) as ``make up`` runs it, on a throwaway layout and port: the
shared stack's server is never touched. Mail delivered over its LMTP socket is read back over
IMAP with the applicative mailbox's password from the layout's secrets."""

from __future__ import annotations

import imaplib
import os
import shutil
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.stack.__main__ import clean
from services.stack.components import Imap
from services.stack.layout import StackLayout
from tests.support import closed_layout, free_port, mailbox_messages

MAILBOX = "harpicoop@ght-sud-lorraine.mssante.fr"


def started_imap(layout: StackLayout) -> Imap:
    server = Imap(layout, port=free_port())
    server.install()
    assert server.start()
    server.wait_healthy()
    return server


@pytest.fixture
def closed_imap() -> Iterator[Imap]:
    """An IMAP server started from a stack folder inside a 0700 folder (a clone in root's
    home); stopped and removed, its folder outside the stack's included, at the end."""
    layout = closed_layout()
    server = started_imap(layout)
    try:
        yield server
    finally:
        server.stop()
        clean(layout)
        shutil.rmtree(layout.root.parent.parent, ignore_errors=True)


def deliver(server: Imap, message: bytes) -> None:
    with smtplib.LMTP(str(server.lmtp_socket)) as lmtp:
        lmtp.sendmail("mailer-daemon@mssante.local", [MAILBOX], message)


def inbox(server: Imap) -> list[bytes]:
    return mailbox_messages(server)


def test_mail_delivered_over_lmtp_is_read_over_imap_and_kept_across_a_restart(
    closed_imap: Imap,
) -> None:
    message = b"Subject: essai\r\nMessage-ID: <essai@mssante.local>\r\n\r\nbonjour\r\n"
    deliver(closed_imap, message)
    assert [item.endswith(b"bonjour\r\n") for item in inbox(closed_imap)] == [True]
    assert closed_imap.stop() and not closed_imap.running()
    assert closed_imap.start()
    closed_imap.wait_healthy()
    assert len(inbox(closed_imap)) == 1


def test_a_wrong_password_is_refused(closed_imap: Imap) -> None:
    client = imaplib.IMAP4("localhost", closed_imap.port)
    with pytest.raises(imaplib.IMAP4.error):
        client.login(MAILBOX, "not-the-password")
    client.logout()


def test_a_closed_stack_folder_keeps_the_mail_where_the_server_user_reaches(
    closed_imap: Imap,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("as another user than root, the server runs as that user, in the clone")
    assert closed_imap.outside and closed_imap.home == closed_imap.layout.imap_outside
    assert str(closed_imap.home) in closed_imap.where()
    # The mailboxes, its users file and its LMTP socket are its user's only.
    for path in (closed_imap.home, closed_imap.home / "users", closed_imap.lmtp_socket):
        assert path.stat().st_mode & 0o077 == 0, path
    assert closed_imap.log.stat().st_size > 0  # its log stays in the stack folder
    # The password is in the stack's secrets, never in the server's users file.
    assert closed_imap.password() not in (closed_imap.home / "users").read_text()


def test_an_open_stack_folder_keeps_the_mail_inside(tmp_path: Path) -> None:
    open_root = Path("/tmp") / f"harpicoop-open-{os.getpid()}"
    open_root.mkdir(mode=0o755)
    try:
        layout = StackLayout(open_root / ".stack")
        layout.make_dirs()
        server = started_imap(layout)
        try:
            assert not server.outside and server.home == layout.imap
            deliver(server, b"Subject: essai\r\n\r\nbonjour\r\n")
            assert len(inbox(server)) == 1
        finally:
            server.stop()
    finally:
        shutil.rmtree(open_root)
