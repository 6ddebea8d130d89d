"""Enriched stay events as the enrich service publishes them, for notify's tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.common.db import connect
from services.common.movements import movement_key
from services.common.outbox import Conn
from services.common.preferences import DeliveryChoices, EventChoice
from services.common.records import EnrichedStayEvent, Recipient
from services.notify import ledger
from services.notify.digests import PARIS
from services.notify.notices import Notice, NoticeKind, notification_id
from services.notify.status import StatusRecorder
from tests.common.test_serde import stay_event
from tests.support import as_principal


def recipient(
    rpps: str,
    address: str | None,
    *,
    role: str = "ODRP",
    opted_out: bool = False,
    choices: DeliveryChoices | None = None,
    fallback: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A recipient as enrich writes it; ``choices`` None: the defaults (transfers off);
    ``fallback``, its chain's further steps (``step``)."""
    return {
        "role": role,
        "rpps": rpps,
        "family_name": "Martin",
        "given_name": "Jeanne",
        "mssante_address": address,
        "opted_out": opted_out,
        "delivery": (choices or DeliveryChoices()).record(),
        "fallback": fallback or [],
    }


def recipient_record(rpps: str, address: str | None, **fields: Any) -> Recipient:
    """``recipient`` as the record notify reads."""
    return Recipient.from_avro(recipient(rpps, address, **fields))


def step(rpps: str, address: str, mailbox_type: str = "CAB", role: str = "ODRP") -> dict[str, Any]:
    """One further step of a recipient's fallback chain, as enrich writes it."""
    return {"rpps": rpps, "address": address, "mailbox_type": mailbox_type, "role": role}


EVERY_KIND = DeliveryChoices(kinds=frozenset(EventChoice))
"""Choices of a practitioner who asked to be told of everything, transfers included."""


def enriched(
    visit: str,
    recipients: list[dict[str, Any]],
    *,
    kind: str = "ADMISSION",
    action: str = "INSERT",
    movement_id: str = "MVT1",
    message_id: str | None = None,
    covid_status: str = "UNKNOWN",
    admission_mode: str = "EMERGENCY",
    disposition: str = "8",
    destination: str | None = None,
) -> dict[str, Any]:
    event = stay_event(visit)
    event["kind"] = kind
    event["action"] = action
    event["movement"]["movement_id"] = movement_id
    event["message_control_id"] = message_id or f"MSG-{visit}-{kind}-{action}"
    event["event_id"] = f"chrunancy:{event['message_control_id']}"
    event["covid_status"] = covid_status
    event["stay"]["admission_mode"] = admission_mode
    if kind == "DISCHARGE":
        event["stay"]["discharge_disposition"] = disposition  # PV1-36 as engines send it
        event["stay"]["discharge_destination"] = destination
        event["stay"]["discharged_at"] = event["movement"]["occurred_at"]
    return {"event": event, "recipients": recipients, "enriched_at": dt.datetime.now(dt.UTC)}


def enriched_record(
    visit: str, recipients: list[dict[str, Any]], **fields: Any
) -> EnrichedStayEvent:
    """``enriched`` as the record notify reads."""
    return EnrichedStayEvent.from_avro(enriched(visit, recipients, **fields))


def put_notice(conn: Conn, statuses: StatusRecorder, rpps: str, address: str) -> str:
    """A pending admission notice in the ledger, as intake records it; its id."""
    event = enriched_record("V900", []).event
    notice_id = notification_id(event.event_id, rpps, NoticeKind.ADMISSION)
    notice = Notice(notice_id, NoticeKind.ADMISSION, recipient_record(rpps, address))
    message = f"To: {address}\r\nSubject: Hospitalisation\r\n\r\nBonjour\r\n".encode()
    occurrence = ledger.Occurrence.of(event)
    assert ledger.record(
        conn, statuses, notice, occurrence, movement_key(event), message, notice_id
    )
    return notice_id


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A time of ``day`` in Paris, as establishments date their movements."""
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PARIS)


def timed(value: dict[str, Any], occurred: dt.datetime, received: dt.datetime) -> dict[str, Any]:
    """An enriched event whose movement happened at ``occurred``, received at ``received``."""
    value["event"]["movement"]["occurred_at"] = occurred
    value["event"]["received_at"] = received
    return value


def send_digests_now(database: str) -> int:
    """The operator's end of the day (make run): every waiting digest is due at once."""
    with connect(as_principal(database, "operator")) as conn:
        row = conn.execute("SELECT notify.send_digests_now()").fetchone()
        conn.commit()
    assert row is not None
    return int(row[0])
