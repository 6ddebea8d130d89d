"""Digests with the notify service running as production runs it: Kafka in, PostgreSQL ledger,
a real SMTP server out, a restart in the middle."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from services.common.db import connect
from services.common.preferences import DeliveryChoices, EventChoice, Mode
from services.notify.digests import DIGEST_LINES_HEADER, PARIS
from tests.notify.builders import at, enriched, recipient, send_digests_now, timed
from tests.support import MailServer, ServiceProcess, as_principal, eventually

pytestmark = pytest.mark.integration

TODAY = dt.datetime.now(PARIS).date()


def lines_deferred(database: str) -> int:
    """Deferred notices in the ledger, as the operator reads them (notify's published view)."""
    with connect(as_principal(database, "operator")) as conn:
        row = conn.execute(
            "SELECT count(*) FROM notify.v_digest_lines WHERE state = 'deferred'"
        ).fetchone()
    return int(row[0]) if row else 0


def digests(mail: MailServer, to: str) -> list[EmailMessage]:
    return [message for message in mail.to(to) if message[DIGEST_LINES_HEADER]]


def test_a_digest_goes_once_at_its_hour_with_the_days_events_in_order_and_survives_a_restart(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    empty_database: str,
) -> None:
    to = f"dr.{uuid.uuid4().hex[:8]}@medecin.mssante.fr"
    gp = recipient(
        "10101010104",
        to,
        choices=DeliveryChoices(kinds=frozenset(EventChoice), mode=Mode.DIGEST, digest_hour=18),
    )
    service = notify_factory(mail_server)
    now = dt.datetime.now(dt.UTC)

    def event(visit: str, kind: str, movement: str, hour: int) -> dict[str, object]:
        value = enriched(visit, [gp], kind=kind, movement_id=movement, admission_mode="SCHEDULED")
        return timed(value, at(TODAY, hour), now)

    day = [
        event("VA", "ADMISSION", "A1", 9),
        event("VA", "TRANSFER", "A2", 10),
        event("VB", "ADMISSION", "B1", 8),  # happened first, came in last
        event("VA", "DISCHARGE", "A3", 11),
    ]
    for value in day:
        publish(service.topics["input"], value)

    # The discharge goes at once; the rest waits for the digest's hour, the next 18:00.
    [discharge] = eventually(lambda: mail_server.to(to), what="the discharge at once")
    assert discharge["Subject"].startswith("Sortie d'hospitalisation")
    eventually(lambda: lines_deferred(empty_database) == 3, what="three lines deferred")
    assert digests(mail_server, to) == []

    # Its hour comes (the operator's end of day moves it there).
    assert send_digests_now(empty_database) == 1
    [digest] = eventually(lambda: digests(mail_server, to), what="the digest")
    body = digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    numbered = [line for line in body.splitlines() if line[:2] in ("1.", "2.", "3.")]
    assert [line.split(" — ")[1] for line in numbered] == [
        "Hospitalisation programmée",
        "Hospitalisation programmée",
        "Transfert dans un autre service",
    ]
    assert [line.split(" — ")[0][3:] for line in numbered] == [
        f"{TODAY:%d/%m/%Y} à 08:00",
        f"{TODAY:%d/%m/%Y} à 09:00",
        f"{TODAY:%d/%m/%Y} à 10:00",
    ]

    # A restart, and the whole day delivered again from upstream: nothing new is sent. An
    # emergency admission behind each replayed stay says when the replay has been read.
    service.kill()
    service.start()
    for value in day:
        publish(service.topics["input"], value)
    other = f"dr.{uuid.uuid4().hex[:8]}@medecin.mssante.fr"
    for visit in ("VA", "VB"):
        sentinel = enriched(visit, [recipient("10101010105", other)], movement_id=f"S{visit}")
        publish(service.topics["input"], sentinel)
    eventually(lambda: len(mail_server.to(other)) == 2, what="both sentinels")
    assert send_digests_now(empty_database) == 0, "no digest is waiting: nothing to send twice"
    assert len(digests(mail_server, to)) == 1
    assert len(mail_server.to(to)) == 2
