"""The delivery worker's last word before SMTP, against the real ledger, SMTP server and Kafka: a
notice whose address is not one plain address of the trust space fails and is dead-lettered,
never sent; a good one goes out once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer

from services.common import outbox
from services.common.deadletter import read_error_headers
from services.notify.delivery import DeliveryWorker
from tests.notify.builders import put_notice
from tests.support import MailServer, eventually

pytestmark = pytest.mark.integration

MALFORMED = "a,b@x.mssante.fr"  # smtplib would send RCPT TO:<a>
UNTRUSTED = "a@evil-mssante.fr"  # looks like the trust space, is not in it
VALID = "dr.martin@chru-nancy.mssante.fr"
REFUSAL = "refused before SMTP"


def test_only_a_plain_address_of_the_trust_space_reaches_smtp(
    worker: DeliveryWorker,
    ledger_conn: outbox.Conn,
    mail_server: MailServer,
    dead_letter_topic: str,
    consumer_factory: Callable[..., Consumer],
) -> None:
    ids = {
        address: put_notice(ledger_conn, worker.statuses, f"101010101{index:02}", address)
        for index, address in enumerate([MALFORMED, UNTRUSTED, VALID])
    }
    while worker.deliver_due():
        pass
    worker.smtp.close()

    [email] = mail_server.messages()
    assert email["To"] == VALID
    assert email.get_all("X-Original-To") == [VALID]  # the server never saw RCPT TO:<a>

    rows = ledger_conn.execute(
        "SELECT recipient_address, state, detail FROM notification"
    ).fetchall()
    states = {address: (state, detail or "") for address, state, detail in rows}
    assert states[VALID] == ("sent", "")
    for bad in (MALFORMED, UNTRUSTED):
        state, detail = states[bad]
        assert state == "failed" and detail.startswith(REFUSAL)

    dead = consumer_factory(dead_letter_topic)
    letters: dict[bytes, Any] = {}

    def both_dead_lettered() -> bool:
        for record in dead.consume(10, timeout=0.5):
            if record.error() is None:
                letters[record.key() or b""] = record
        return len(letters) == 2

    eventually(both_dead_lettered, timeout=60, what="a dead letter for each refused notice")
    assert set(letters) == {ids[MALFORMED].encode(), ids[UNTRUSTED].encode()}
    for record in letters.values():
        assert REFUSAL in read_error_headers(record.headers())["reason"]
