"""The delivery worker's last word before SMTP: a malformed address is failed, never sent."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import pytest
import structlog

from services.notify import ledger
from services.notify.config import NotifyConfig
from services.notify.delivery import DeliveryWorker
from services.notify.smtp import Delivery, Outcome


class FakeSmtp:
    """Stands in for the operator: records each RCPT it was asked for and accepts it."""

    def __init__(self) -> None:
        self.recipients: list[str] = []

    def send(self, message: bytes, sender: str, recipient: str) -> Delivery:
        self.recipients.append(recipient)
        return Delivery(Outcome.SENT, 250, "ok")

    def close(self) -> None:
        pass


class FakeDeadLetters:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def send(self, **record: Any) -> None:
        self.reasons.append(record["reason"])


@pytest.fixture
def finished(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, str | None]]:
    """The ledger's outcomes by notification id, kept in memory: the rule under test is the
    worker's, not PostgreSQL's."""
    outcomes: dict[str, tuple[str, str | None]] = {}

    def finish(
        conn: Any, statuses: Any, notification_id: str, state: str, **fields: Any
    ) -> dt.timedelta | None:
        outcomes[notification_id] = (state, fields.get("detail"))
        return None

    monkeypatch.setattr(ledger, "finish", finish)
    return outcomes


def claimed(notification_id: str, address: str) -> ledger.Claimed:
    return ledger.Claimed(
        notification_id, address, b"Subject: x\r\n\r\nbody\r\n", 1, dt.datetime.now(dt.UTC)
    )


def worker(smtp: FakeSmtp, dead_letters: FakeDeadLetters, **config: Any) -> DeliveryWorker:
    return DeliveryWorker(
        config=NotifyConfig(**config),
        sender_address="harpicoop@ght-sud-lorraine.mssante.fr",
        conn=cast(Any, None),
        smtp=cast(Any, smtp),
        dead_letters=cast(Any, dead_letters),
        statuses=cast(Any, None),
        log=structlog.get_logger(),
    )


@pytest.mark.parametrize(
    "address",
    [
        "a,b@medecin.mssante.fr",
        "a@medecin.mssante.fr>",
        "a@medecin.mssante.fr\r\nRCPT TO:<b@evil.com>",
        "a@evil-mssante.fr",
        "",
    ],
)
def test_a_notice_to_an_address_that_is_not_sendable_fails_with_the_reason_and_no_smtp(
    address: str, finished: dict[str, tuple[str, str | None]]
) -> None:
    smtp, dead_letters = FakeSmtp(), FakeDeadLetters()
    worker(smtp, dead_letters)._deliver(claimed("n1", address))
    assert smtp.recipients == []
    state, detail = finished["n1"]
    assert state == "failed"
    # The reason names no address: ledger details and dead-letter reasons are read by operators.
    assert detail is not None and "refused before SMTP" in detail and "@" not in detail
    assert len(dead_letters.reasons) == 1


def test_a_plain_address_of_the_trust_space_or_an_added_domain_is_sent(
    finished: dict[str, tuple[str, str | None]],
) -> None:
    smtp, dead_letters = FakeSmtp(), FakeDeadLetters()
    sender = worker(smtp, dead_letters, extra_secure_domains=("apicrypt.org",))
    sender._deliver(claimed("n1", "Dr.Martin@CHRU-Nancy.mssante.fr"))
    sender._deliver(claimed("n2", "dr@apicrypt.org"))
    assert smtp.recipients == ["Dr.Martin@CHRU-Nancy.mssante.fr", "dr@apicrypt.org"]
    assert finished == {"n1": ("sent", None), "n2": ("sent", None)}
    assert dead_letters.reasons == []
