"""The notification ledger in PostgreSQL: what was decided, what was sent, what is due.

Every state change also writes a row to the status outbox in the same transaction, so each
outcome reaches ``notifications.status`` even if the service stops right after the change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from services.notify.notices import Earlier, Notice

# Ledger state → the status published on notifications.status.
PUBLISHED_STATUS = {
    "pending": None,
    "sending": None,
    "retrying": "RETRYING",
    "sent": "SENT",
    "failed": "FAILED",
    "skipped": "SKIPPED",
    "uncertain": "FAILED",
}

_DELIVERED_STATES = ("sent", "sending", "uncertain")
_WAITING_STATES = ("pending", "retrying")


@dataclass(frozen=True)
class Claimed:
    """A notice taken by a delivery worker, ready to be handed to the SMTP server."""

    notification_id: str
    recipient_address: str
    message: bytes
    attempts: int
    created_at: dt.datetime


Conn = psycopg.Connection[Any]


def _status(
    conn: Conn, notification_id: str, state: str, attempt: int, code: int | None, detail: str | None
) -> None:
    status = PUBLISHED_STATUS[state]
    if status is not None:
        conn.execute(
            "INSERT INTO notification_status_outbox "
            "(notification_id, status, attempt, smtp_code, detail) VALUES (%s, %s, %s, %s, %s)",
            (notification_id, status, attempt, code, detail),
        )


def earlier_notices(conn: Conn, movement_key: str, rpps: Iterable[str]) -> dict[str, Earlier]:
    """What became of each recipient's notices of a movement (locks them until commit)."""
    rows = conn.execute(
        "SELECT recipient_rpps, state FROM notification "
        "WHERE movement_key = %s AND recipient_rpps = ANY(%s) AND kind <> 'RETRACTION' FOR UPDATE",
        (movement_key, list(rpps)),
    ).fetchall()
    found: dict[str, Earlier] = {}
    for recipient, state in rows:
        if state in _DELIVERED_STATES:
            found[recipient] = Earlier.DELIVERED
        elif state in _WAITING_STATES and found.get(recipient) is not Earlier.DELIVERED:
            found[recipient] = Earlier.WAITING
    return found


def withdraw_waiting(conn: Conn, movement_key: str, rpps: str, reason: str) -> int:
    """Waiting notices of a movement that must no longer go out become skipped."""
    rows = conn.execute(
        "UPDATE notification SET state = 'skipped', detail = %s, updated_at = now() "
        "WHERE movement_key = %s AND recipient_rpps = %s AND state IN ('pending', 'retrying') "
        "RETURNING notification_id, attempts",
        (reason, movement_key, rpps),
    ).fetchall()
    for notification_id, attempts in rows:
        _status(conn, str(notification_id), "skipped", attempts, None, reason)
    return len(rows)


def record(
    conn: Conn,
    notice: Notice,
    event: Mapping[str, Any],
    movement_key: str,
    message: bytes,
    message_id: str,
) -> bool:
    """Insert the notice unless it is already there (a replayed event); True when inserted."""
    state = "skipped" if notice.skip_reason else "pending"
    inserted = conn.execute(
        "INSERT INTO notification (notification_id, event_id, stay_key, establishment, "
        "movement_key, kind, recipient_rpps, recipient_address, message_id, message, state, "
        "detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (notification_id) DO NOTHING RETURNING notification_id",
        (
            notice.notification_id,
            event["event_id"],
            event["stay_key"],
            event["establishment"],
            movement_key,
            notice.kind.value,
            notice.recipient["rpps"],
            notice.recipient.get("mssante_address") or "",
            message_id,
            message,
            state,
            notice.skip_reason,
        ),
    ).fetchone()
    if inserted and notice.skip_reason:
        _status(conn, notice.notification_id, "skipped", 0, None, notice.skip_reason)
    return inserted is not None


def claim_due(conn: Conn, limit: int = 1) -> list[Claimed]:
    """Take due notices for sending; committed before the SMTP exchange starts."""
    with conn.transaction():
        rows = conn.execute(
            "UPDATE notification SET state = 'sending', attempts = attempts + 1, "
            "claimed_at = now(), updated_at = now() WHERE notification_id IN ("
            "  SELECT notification_id FROM notification"
            "  WHERE state IN ('pending', 'retrying') AND next_attempt_at <= now()"
            "  ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING notification_id, recipient_address, message, attempts, created_at",
            (limit,),
        ).fetchall()
    return [Claimed(str(row[0]), row[1], bytes(row[2]), row[3], row[4]) for row in rows]


def finish(
    conn: Conn,
    notification_id: str,
    state: str,
    attempt: int,
    *,
    smtp_code: int | None = None,
    detail: str | None = None,
    retry_at: dt.datetime | None = None,
) -> None:
    """Record the outcome of an attempt (sent, retrying, failed or uncertain)."""
    with conn.transaction():
        conn.execute(
            "UPDATE notification SET state = %s, smtp_code = %s, detail = %s, "
            "next_attempt_at = coalesce(%s, next_attempt_at), updated_at = now() "
            "WHERE notification_id = %s",
            (state, smtp_code, detail, retry_at, notification_id),
        )
        _status(conn, notification_id, state, attempt, smtp_code, detail)


def expire_stale_claims(conn: Conn, lease: dt.timedelta) -> int:
    """Notices left 'sending' by a worker that died: they may have gone out, so never resent."""
    detail = (
        "interrupted while being handed to the SMTP server; it may have been delivered and is "
        "not sent again (at most once): check the operator's logs for its Message-ID"
    )
    with conn.transaction():
        rows = conn.execute(
            "UPDATE notification SET state = 'uncertain', detail = %s, updated_at = now() "
            "WHERE state = 'sending' AND claimed_at < now() - %s "
            "RETURNING notification_id, attempts",
            (detail, lease),
        ).fetchall()
        for notification_id, attempts in rows:
            _status(conn, str(notification_id), "uncertain", attempts, None, detail)
    return len(rows)


def pending_statuses(conn: Conn, limit: int = 500) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            "SELECT o.id, o.notification_id::text AS notification_id, o.status, o.attempt, "
            "o.smtp_code, o.detail, o.at, n.event_id, n.stay_key, n.establishment, n.kind, "
            "n.recipient_rpps, n.recipient_address, n.message_id "
            "FROM notification_status_outbox o JOIN notification n USING (notification_id) "
            "ORDER BY o.id LIMIT %s",
            (limit,),
        ).fetchall()


def delete_statuses(conn: Conn, ids: list[int]) -> None:
    with conn.transaction():
        conn.execute("DELETE FROM notification_status_outbox WHERE id = ANY(%s)", (ids,))
