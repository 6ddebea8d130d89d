"""What a user who is not root meets when a Debian package the stack needs is missing."""

from __future__ import annotations

import pytest

from services.stack import process
from services.stack.process import StackError, apt_install


def test_without_root_it_says_what_to_install_and_installs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    ran: list[object] = []
    monkeypatch.setattr(process, "run", lambda *args, **kwargs: ran.append(args))
    with pytest.raises(StackError) as refused:
        apt_install(["dovecot-imapd", "dovecot-lmtpd"], "Dovecot is missing")
    assert str(refused.value) == (
        "Dovecot is missing: install Debian's dovecot-imapd dovecot-lmtpd "
        "(sudo apt-get install dovecot-imapd dovecot-lmtpd) and run again"
    )
    assert ran == []
