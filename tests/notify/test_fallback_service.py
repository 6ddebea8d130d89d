"""The notify service on the real stack follows a bounce to the practice's mailbox (the bounce
comes back as a DSN through the stack's SMTP server and a real IMAP server), and puts every
unroutable event on the worklist, until the event is enriched again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer

from services.common.serde import AvroSerde
from services.stack.components import Imap
from tests.common.test_serde import stay_event
from tests.notify.builders import enriched, recipient, step
from tests.notify.test_service import Statuses, address, statuses_of  # noqa: F401
from tests.support import MailServer, ServiceProcess, eventually, reading_mailbox

pytestmark = pytest.mark.integration


def test_a_bounce_goes_on_to_the_practice_mailbox_which_gets_the_notice(
    reporting_mail_server: MailServer,
    imap_server: Imap,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    statuses_of: Callable[[ServiceProcess], Statuses],  # noqa: F811
    empty_database: str,
) -> None:
    personal, practice = address(), address()
    reporting_mail_server.bounce(personal)
    service = notify_factory(
        reporting_mail_server,
        **reading_mailbox(imap_server),
    )
    gp = recipient("10101010810", personal, fallback=[step("10101010810", practice)])
    publish(service.topics["input"], enriched("V810", [gp]))
    status = statuses_of(service)

    [bounced] = eventually(lambda: status.with_status("BOUNCED"), what="BOUNCED")
    [delivered] = eventually(lambda: status.with_status("DELIVERED"), what="DELIVERED")
    assert bounced["recipient_address"] == personal
    assert delivered["recipient_address"] == practice
    [notice] = reporting_mail_server.to(practice)
    assert notice["X-Harpicoop-Notification-Id"] == delivered["notification_id"]
    assert notice["To"] == practice
    with psycopg.connect(empty_database) as conn:
        rows = conn.execute(
            "SELECT chain_step, successor_id::text, notification_id::text, "
            "bounced_at IS NOT NULL, delivered_at IS NOT NULL "
            "FROM notify.v_notices ORDER BY chain_step"
        ).fetchall()
        worklist = conn.execute("SELECT count(*) FROM notify.v_worklist").fetchone()
    assert rows == [
        (0, delivered["notification_id"], bounced["notification_id"], True, False),
        (1, None, delivered["notification_id"], False, True),
    ]
    assert worklist == (0,)


def test_every_unroutable_event_is_on_the_worklist_until_it_is_routed(
    mail_server: MailServer,
    notify_factory: Callable[..., ServiceProcess],
    publish: Callable[..., None],
    producer_factory: Callable[..., Producer],
    serde_factory: Callable[[str], AvroSerde],
    empty_database: str,
) -> None:
    service = notify_factory(mail_server)
    topic = service.topics["unroutable"]
    serde = serde_factory("harpicoop.UnroutableStayEvent")
    producer = producer_factory()

    def unroutable(visit: str, reason: str, gp: str | None) -> dict[str, Any]:
        event = stay_event(visit)
        event["movement"]["unit"] = "URG"
        value = {
            "event": event,
            "reason": reason,
            "gp_rpps": gp,
            "detail": f"{reason} for the GP {gp}",
            "detected_at": dt.datetime.now(dt.UTC),
        }
        # Twice: a replay puts nothing twice on the worklist.
        for _ in range(2):
            producer.produce(topic, key=event["stay_key"], value=serde.serialize(topic, value))
        assert producer.flush(10) == 0
        return event

    no_gp = unroutable("V820", "NO_GP", None)
    unknown = unroutable("V821", "UNKNOWN_RPPS", "99999999999")

    def entries() -> list[tuple[Any, ...]]:
        with psycopg.connect(empty_database) as conn:
            if conn.execute("SELECT to_regclass('notify.v_worklist')").fetchone() == (None,):
                return []  # notify has not migrated its schema yet
            return conn.execute(
                "SELECT event_id, establishment, unit, stay_key, reason, "
                "resolved_at IS NOT NULL FROM notify.v_worklist ORDER BY event_id"
            ).fetchall()

    eventually(lambda: len(entries()) == 2, what="two worklist entries")
    assert sorted(entries()) == sorted(
        [
            (e["event_id"], e["establishment"], "URG", e["stay_key"], reason, False)
            for e, reason in ((no_gp, "NO_GP"), (unknown, "UNKNOWN_RPPS"))
        ]
    )
    # The GP's RPPS was added to the directory: enrich routes the event again, same id.
    again = enriched("V821", [recipient("99999999999", address())])
    again["event"] = {**unknown}
    publish(service.topics["input"], again)
    eventually(
        lambda: [row[0] for row in entries() if row[5]] == [unknown["event_id"]],
        what="the routed event resolved",
    )
