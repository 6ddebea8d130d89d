"""What ``make run`` gives notify for proof of delivery: its receipts reader on, reading the
stack's mailbox with the stack's password, a DSN window a replayed day fits in, and read receipts
asked for some of the sample GPs only."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from services.cli.run import RUN_DSN_WINDOW_SECONDS, notify_environment
from services.common.access import LocalSecrets
from services.common.settings import IMAP_MAILBOX_SECRET, Settings
from services.notify.config import NotifyConfig
from services.simulator.practitioners import directory_gps


def test_notify_reads_the_stacks_mailbox_with_the_stacks_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARPICOOP_STACK_DIR", str(tmp_path))
    password = LocalSecrets(tmp_path / "secrets").ensure(IMAP_MAILBOX_SECRET)
    environ = notify_environment({})

    config = NotifyConfig.from_env(environ)
    notify = Settings.from_env(environ, principal="notify")

    assert config.receipts_reader == "on" and config.receipts_poll_interval == 2
    assert config.dsn_window == dt.timedelta(seconds=RUN_DSN_WINDOW_SECONDS)
    assert (notify.imap_host, notify.imap_port, notify.imap_security) == ("localhost", 1143, "none")
    assert notify.imap_user == notify.smtp_from  # the address read receipts are asked back to
    assert notify.imap_password == password


def test_read_receipts_are_asked_for_half_the_sample_gps() -> None:
    config = NotifyConfig.from_env(notify_environment({}))
    gps = sorted(item.id for item in directory_gps())
    asking = [rpps for rpps in gps if config.wants_read_receipt(rpps)]
    assert len(asking) == len(gps) // 2 and "*" not in config.read_receipts


def test_what_the_environment_sets_wins() -> None:
    environ = {"NOTIFY_READ_RECEIPTS": "*", "NOTIFY_DSN_WINDOW_SECONDS": "600"}
    assert set(notify_environment(environ)) == {
        "NOTIFY_RECEIPTS_READER",
        "NOTIFY_RECEIPTS_POLL_INTERVAL_SECONDS",
    }
