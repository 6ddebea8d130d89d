"""Delivery statuses, recorded in the outbox with the ledger change they report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from services.common.outbox import Conn, enqueue
from services.common.records import DeliveryStatus, NoticeKind, NotificationStatus
from services.common.serde import RecordSerde

OUTBOX_OWNER = "notify"

# Ledger state → the status published on notifications.status (None: not an outcome).
PUBLISHED_STATUS = {
    "pending": None,
    "sending": None,
    "retrying": "RETRYING",
    "sent": "SENT",
    "failed": "FAILED",
    "skipped": "SKIPPED",
    "uncertain": "FAILED",
    # Listed in a digest: its outcome is the digest's own status, published under the digest's id.
    "deferred": None,
}

# Notice kinds the released ``NotificationStatus`` names (its schema's, through the record type);
# any other (a DIGEST) is published as OTHER, the enum's own fallback, until a release adds it.
PUBLISHED_KINDS: dict[str, NoticeKind] = {kind.value: kind for kind in NoticeKind}

# The ledger columns a status needs, for RETURNING clauses.
STATUS_COLUMNS = (
    "notification_id::text AS notification_id, event_id, stay_key, establishment, kind, "
    "recipient_rpps, recipient_address, message_id, state, attempts, smtp_code, detail"
)


class StatusRecorder:
    def __init__(self, serde: RecordSerde[NotificationStatus], topic: str) -> None:
        self.serde = serde
        self.topic = topic

    def record(self, conn: Conn, row: Mapping[str, Any], status: str | None = None) -> None:
        """Enqueue the status of a ledger row (as returned with ``STATUS_COLUMNS``): its
        state's, or ``status`` (a receipt's: DELIVERED, READ, BOUNCED)."""
        status = status or PUBLISHED_STATUS[row["state"]]
        if status is None:
            return
        published = NotificationStatus(
            notification_id=row["notification_id"],
            event_id=row["event_id"],
            stay_key=row["stay_key"],
            establishment=row["establishment"],
            kind=PUBLISHED_KINDS.get(row["kind"], NoticeKind.OTHER),
            recipient_rpps=row["recipient_rpps"],
            recipient_address=row["recipient_address"],
            status=DeliveryStatus(status),
            attempt=row["attempts"],
            smtp_code=row["smtp_code"],
            detail=row["detail"],
            message_id=row["message_id"],
            at=dt.datetime.now(dt.UTC),
        )
        enqueue(
            conn,
            OUTBOX_OWNER,
            self.topic,
            row["notification_id"],
            self.serde.serialize(self.topic, published),
        )
