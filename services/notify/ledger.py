"""The notification ledger in PostgreSQL: what was decided, what was sent, what is due.

Every outcome is recorded with its status in the outbox, in the same transaction, so each one
reaches ``notifications.status`` even if the service stops right after the change. A notice's
rendered message is purged ``NOTIFY_RETENTION_DAYS`` after its final status; its status trail
(ids, states, attempts, SMTP codes, times) stays.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Jsonb

from services.common.delivery_proof import UNCONFIRMED
from services.common.outbox import Conn, change_and_announce
from services.common.records import StayEvent
from services.common.skip_reasons import SkipReason
from services.notify import chain, privacy
from services.notify.notices import Earlier, Notice, Privacy, withheld_reason
from services.notify.render import MESSAGE_ID_DOMAIN
from services.notify.status import STATUS_COLUMNS, StatusRecorder

_DELIVERED_STATES = ("sent", "sending", "uncertain")
_WAITING_STATES = ("pending", "retrying")
FINAL_STATES = ("sent", "failed", "skipped", "uncertain")
"""States a notice leaves only when an operator asks for a resend."""
_PURGED_STATES = (*FINAL_STATES, "deferred")
"""States whose message is purged after the retention: a deferred notice's line is needed only
until its digest goes, within a day."""


@dataclass(frozen=True)
class Claimed:
    """A notice taken by a delivery worker, ready to be handed to the SMTP server."""

    notification_id: str
    recipient_address: str
    message: bytes
    attempts: int
    created_at: dt.datetime


def _changed(conn: Conn, statuses: StatusRecorder, sql: str, params: tuple[Any, ...]) -> int:
    """Run an UPDATE or INSERT; record the status of each row it changed."""
    return change_and_announce(conn, sql, params, STATUS_COLUMNS, statuses.record)


def earlier_notices(conn: Conn, movement_key: str, rpps: Iterable[str]) -> dict[str, Earlier]:
    """What became of each recipient's notices of a movement (locks them until commit).

    A notice deferred to a digest is waiting while its digest waits for its hour, delivered
    once the digest was taken for sending. The digests are locked too, first: a delivery worker
    (``SKIP LOCKED``) cannot take one while its line is being withdrawn."""
    wanted = list(rpps)
    conn.execute(
        "SELECT 1 FROM notification WHERE notification_id IN (SELECT digest_id "
        "FROM notification WHERE movement_key = %s AND recipient_rpps = ANY(%s) "
        "AND state = 'deferred') ORDER BY notification_id FOR UPDATE",
        (movement_key, wanted),
    )
    rows = conn.execute(
        "SELECT n.recipient_rpps, CASE WHEN n.state <> 'deferred' THEN n.state"
        "  ELSE (SELECT CASE WHEN d.state = 'pending' AND d.attempts = 0 THEN 'pending'"
        "                    WHEN d.state IN ('failed', 'skipped') THEN d.state"
        "                    ELSE 'sent' END"
        "        FROM notification d WHERE d.notification_id = n.digest_id) END "
        "FROM notification n WHERE n.movement_key = %s "
        "AND n.recipient_rpps = ANY(%s) AND n.kind <> 'RETRACTION' FOR UPDATE OF n",
        (movement_key, wanted),
    ).fetchall()
    found: dict[str, Earlier] = {}
    for recipient, state in rows:
        if state in _DELIVERED_STATES:
            found[recipient] = Earlier.DELIVERED
        elif state in _WAITING_STATES and found.get(recipient) is not Earlier.DELIVERED:
            found[recipient] = Earlier.WAITING
    return found


def withdraw_waiting(
    conn: Conn, statuses: StatusRecorder, movement_key: str, rpps: str, reason: str
) -> int:
    """Waiting notices of a movement that must no longer go out become skipped."""
    return _changed(
        conn,
        statuses,
        "UPDATE notification SET state = 'skipped', detail = %s, updated_at = now() "
        "WHERE movement_key = %s AND recipient_rpps = %s AND state IN ('pending', 'retrying')",
        (reason, movement_key, rpps),
    )


@dataclass(frozen=True)
class Occurrence:
    """What a notice is about, as the ledger keeps it: a stay event, or a follow-up case's
    state (which has no movement)."""

    event_id: str
    stay_key: str
    establishment: str
    received_at: dt.datetime | None
    occurred_at: dt.datetime | None = None
    unit: str | None = None

    @classmethod
    def of(cls, event: StayEvent) -> Occurrence:
        return cls(
            event_id=event.event_id,
            stay_key=event.stay_key,
            establishment=event.establishment,
            received_at=event.received_at,
            occurred_at=event.movement.occurred_at,
            unit=event.movement.unit,
        )


def record(
    conn: Conn,
    statuses: StatusRecorder,
    notice: Notice,
    event: Occurrence,
    movement_key: str,
    message: bytes,
    message_id: str,
    digest_id: str | None = None,
    *,
    wake: bool = True,
) -> bool:
    """Insert the notice unless it is already there (a replayed event); True when inserted.

    With ``digest_id``, the notice is deferred to that digest and ``message`` is its line.
    ``wake=False``: the caller wakes the delivery workers itself, once for many notices
    (``wake_senders`` before its commit)."""
    state = "skipped" if notice.skip_reason else "deferred" if digest_id else "pending"
    # A deferred line's chain is its digest's; a skipped notice has none to follow.
    fallback = (
        [] if notice.skip_reason or digest_id else [s.to_avro() for s in notice.recipient.fallback]
    )
    inserted = bool(
        _changed(
            conn,
            statuses,
            "INSERT INTO notification (notification_id, event_id, stay_key, establishment, "
            "movement_key, kind, recipient_rpps, recipient_address, message_id, message, state, "
            "detail, received_at, digest_id, occurred_at, fallback, unit) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (notification_id) DO NOTHING",
            (
                notice.notification_id,
                event.event_id,
                event.stay_key,
                event.establishment,
                movement_key,
                notice.kind.value,
                notice.recipient.rpps,
                notice.recipient.mssante_address or "",
                message_id,
                message,
                state,
                notice.skip_reason,
                event.received_at,
                digest_id,
                event.occurred_at,
                Jsonb(fallback),
                event.unit,
            ),
        )
    )
    if wake and inserted and state == "pending":
        wake_senders(conn)
    return inserted


# --- digests (services.notify.digests) ------------------------------------------------------

DIGEST_ESTABLISHMENT = "*"
"""A digest's establishment column: it may list events of several establishments."""


def digest_open(conn: Conn, digest_id: str) -> bool:
    """Whether lines may still be added to the digest (it is not there yet, or waits for its
    hour, never attempted); locks it until commit, so no worker takes it meanwhile. Intake
    workers adding to the same digest take turns (the advisory lock), so each one renders it
    with the lines the others committed."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (digest_id,))
    row = conn.execute(
        "SELECT state, attempts FROM notification WHERE notification_id = %s FOR UPDATE",
        (digest_id,),
    ).fetchone()
    return row is None or (row[0] in ("pending", "skipped") and row[1] == 0)


def digest_day(conn: Conn, digest_id: str) -> dt.date:
    """The day a digest tells, from its event id (``digests.digest_event_id``)."""
    row = conn.execute(
        "SELECT event_id FROM notification WHERE notification_id = %s", (digest_id,)
    ).fetchone()
    assert row is not None, "a digest with lines is in the ledger"
    return dt.date.fromisoformat(str(row[0]).rsplit(":", 1)[1])


def digest_lines(conn: Conn, digest_id: str) -> list[bytes]:
    """The lines of a digest, in the order their events happened (then of their record)."""
    rows = conn.execute(
        "SELECT message FROM notification WHERE digest_id = %s AND state = 'deferred' "
        "AND message IS NOT NULL ORDER BY occurred_at, seq",
        (digest_id,),
    ).fetchall()
    return [bytes(row[0]) for row in rows]


def digest_line_ids(conn: Conn, digest_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT notification_id::text FROM notification WHERE digest_id = %s "
        "AND state = 'deferred' ORDER BY occurred_at, seq",
        (digest_id,),
    ).fetchall()
    return [str(row[0]) for row in rows]


@dataclass(frozen=True)
class Digest:
    """A recipient's digest of one day, as the ledger keeps it."""

    digest_id: str
    event_id: str
    stay_key: str
    rpps: str
    address: str
    due_at: dt.datetime
    fallback: list[dict[str, Any]]
    """The recipient's chain, for when the digest bounces."""


def put_digest(conn: Conn, statuses: StatusRecorder, digest: Digest, message: bytes) -> None:
    """The digest with its lines as they now stand, pending until its hour; an open digest
    (``digest_open``) is rewritten, one taken for sending is never touched."""
    _changed(
        conn,
        statuses,
        "INSERT INTO notification (notification_id, event_id, stay_key, establishment, "
        "movement_key, kind, recipient_rpps, recipient_address, message_id, message, state, "
        "next_attempt_at, fallback) "
        "VALUES (%s, %s, %s, %s, %s, 'DIGEST', %s, %s, %s, %s, 'pending', %s, %s) "
        "ON CONFLICT (notification_id) DO UPDATE SET message = EXCLUDED.message, "
        "recipient_address = EXCLUDED.recipient_address, state = 'pending', detail = NULL, "
        "fallback = EXCLUDED.fallback, updated_at = now() "
        "WHERE notification.state IN ('pending', 'skipped') AND notification.attempts = 0",
        (
            digest.digest_id,
            digest.event_id,
            digest.stay_key,
            DIGEST_ESTABLISHMENT,
            digest.event_id,
            digest.rpps,
            digest.address,
            f"<{digest.digest_id}@{MESSAGE_ID_DOMAIN}>",
            message,
            digest.due_at,
            Jsonb(digest.fallback),
        ),
    )


def empty_digest(conn: Conn, statuses: StatusRecorder, digest_id: str) -> int:
    """A waiting digest left with no line is not sent (skipped, its message dropped)."""
    return _changed(
        conn,
        statuses,
        "UPDATE notification SET state = 'skipped', message = ''::bytea, updated_at = now(), "
        "detail = %s WHERE notification_id = %s AND state = 'pending' AND attempts = 0",
        (SkipReason.DIGEST_EMPTIED.sentence, digest_id),
    )


def withdraw_from_digests(
    conn: Conn, statuses: StatusRecorder, movement_key: str, rpps: str, reason: str
) -> list[str]:
    """Lines of a movement in digests still waiting for their hour become skipped; the ids of
    those digests, to render again (``earlier_notices`` locked them)."""
    digests: set[str] = set()

    def announce(conn: Conn, row: Mapping[str, Any]) -> None:
        digests.add(row["digest_id"])
        statuses.record(conn, row)

    change_and_announce(
        conn,
        "UPDATE notification SET state = 'skipped', detail = %s, updated_at = now() "
        "WHERE movement_key = %s AND recipient_rpps = %s AND state = 'deferred' "
        "AND digest_id IN (SELECT notification_id FROM notification "
        "  WHERE kind = 'DIGEST' AND state = 'pending' AND attempts = 0)",
        (reason, movement_key, rpps),
        f"{STATUS_COLUMNS}, digest_id::text AS digest_id",
        announce,
    )
    return sorted(digests)


WAKE_CHANNEL = "notify_due"
"""The PostgreSQL channel on which a transaction that records pending notices wakes the
delivery workers; PostgreSQL delivers it when, and only if, the transaction commits."""


def wake_senders(conn: Conn) -> None:
    """Within the transaction that records due notices: the workers claim them on its commit
    rather than at their next poll. Repeated in one transaction, it is delivered once."""
    conn.execute(f"NOTIFY {WAKE_CHANNEL}")


def listen(conn: Conn) -> None:
    """A worker's connection (in autocommit) hears the wake-ups from now on."""
    conn.execute(f"LISTEN {WAKE_CHANNEL}")


def wait_for_wake(conn: Conn, timeout: float) -> None:
    """Until a wake-up or ``timeout``, whichever first; the timeout finds the retries whose time
    has come and notices no wake-up announces. Wake-ups that came while the connection was busy
    are kept by psycopg and return at once."""
    for _ in conn.notifies(timeout=timeout, stop_after=1):
        pass


def claim_due(conn: Conn, limit: int = 1) -> list[Claimed]:
    """Take due notices for sending; committed before the SMTP exchange starts.

    A notice waits while an earlier one of its stay to the same address is unsettled (to send,
    being sent, to retry): a GP never reads a stay's discharge before its transfer, whichever
    workers hold them. A worker's claim is committed before it sends, so another worker sees
    the earlier notice 'sending' and leaves the later one alone."""
    with conn.transaction():
        rows = conn.execute(
            "UPDATE notification SET state = 'sending', attempts = attempts + 1, "
            "claimed_at = now(), updated_at = now() WHERE notification_id IN ("
            "  SELECT notification_id FROM notification n"
            "  WHERE state IN ('pending', 'retrying') AND next_attempt_at <= now()"
            "  AND NOT EXISTS (SELECT 1 FROM notification earlier"
            "    WHERE earlier.stay_key = n.stay_key"
            "    AND earlier.recipient_address = n.recipient_address AND earlier.seq < n.seq"
            "    AND earlier.state IN ('pending', 'retrying', 'sending'))"
            "  ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING notification_id, recipient_address, message, attempts, created_at",
            (limit,),
        ).fetchall()
    return [Claimed(str(row[0]), row[1], bytes(row[2]), row[3], row[4]) for row in rows]


def release(conn: Conn, notification_ids: list[str]) -> int:
    """Claimed notices never handed to SMTP, given back as they were before their claim: 'pending'
    if never tried, else 'retrying' (claim_due counted one attempt more, taken back here)."""
    if not notification_ids:
        return 0
    with conn.transaction():
        cursor = conn.execute(
            "UPDATE notification SET attempts = attempts - 1, updated_at = now(), "
            "state = CASE WHEN attempts <= 1 THEN 'pending' ELSE 'retrying' END "
            "WHERE notification_id = ANY(%s::uuid[]) AND state = 'sending'",
            (notification_ids,),
        )
    return cursor.rowcount


@dataclass(frozen=True)
class Completion:
    """The outcome of one attempt (sent, retrying, failed or uncertain), to record."""

    notification_id: str
    state: str
    smtp_code: int | None = None
    detail: str | None = None
    retry_at: dt.datetime | None = None
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    """When the attempt ended: for a sent notice, when the SMTP server accepted it (its
    ``sent_at``, whenever the outcome is committed)."""


def complete(
    conn: Conn, statuses: StatusRecorder, completions: Sequence[Completion]
) -> dict[str, dt.timedelta]:
    """Record the outcomes of a worker's batch of attempts in one transaction, each with its
    status, and the next step of the chain of each failed one.

    Returns, for each sent notice, the time from the platform's receipt of its event to its
    acceptance by the SMTP server."""
    if not completions:
        return {}
    columns = list(
        zip(
            *(
                (c.notification_id, c.state, c.smtp_code, c.detail, c.retry_at, c.at)
                for c in completions
            ),
            strict=True,
        )
    )
    # Pipelined: the status of each notice is an INSERT of its own into the outbox, sent without
    # waiting for the one before; the transaction still commits all of them or none.
    with conn.transaction(), conn.pipeline():
        _changed(
            conn,
            statuses,
            "UPDATE notification SET state = c.outcome, smtp_code = c.code, detail = c.said, "
            "next_attempt_at = coalesce(c.retry_at, next_attempt_at), updated_at = now(), "
            "sent_at = CASE WHEN c.outcome = 'sent' THEN c.ended_at END "
            "FROM unnest(%s::uuid[], %s::text[], %s::int[], %s::text[], %s::timestamptz[], "
            "%s::timestamptz[]) AS c(id, outcome, code, said, retry_at, ended_at) "
            "WHERE notification_id = c.id",
            tuple(list(column) for column in columns),
        )
        for completion in completions:
            if completion.state == "failed":
                follow_chain(conn, statuses, completion.notification_id, chain.Setback.FAILED)
        sent = [c.notification_id for c in completions if c.state == "sent"]
        if not sent:
            return {}
        rows = conn.execute(
            "SELECT notification_id::text, sent_at - received_at FROM notification "
            "WHERE notification_id = ANY(%s::uuid[]) AND received_at IS NOT NULL",
            (sent,),
        ).fetchall()
    return {str(row[0]): row[1] for row in rows}


def finish(
    conn: Conn,
    statuses: StatusRecorder,
    notification_id: str,
    state: str,
    *,
    smtp_code: int | None = None,
    detail: str | None = None,
    retry_at: dt.datetime | None = None,
) -> dt.timedelta | None:
    """Record the outcome of one attempt on its own (``complete`` of one); for a sent notice,
    the time from the platform's receipt of its event to now."""
    completion = Completion(notification_id, state, smtp_code, detail, retry_at)
    return complete(conn, statuses, [completion]).get(notification_id)


def expire_stale_claims(conn: Conn, statuses: StatusRecorder, lease: dt.timedelta) -> int:
    """Notices left 'sending' by a worker that died: they may have gone out, so never resent."""
    detail = (
        "interrupted while being handed to the SMTP server; it may have been delivered and is "
        "not sent again (at most once): check the operator's logs for its Message-ID"
    )
    with conn.transaction():
        return _changed(
            conn,
            statuses,
            "UPDATE notification SET state = 'uncertain', detail = %s, updated_at = now() "
            "WHERE state = 'sending' AND claimed_at < now() - %s",
            (detail, lease),
        )


def purge_messages(conn: Conn, retention: dt.timedelta, limit: int) -> int:
    """Purge, in one transaction, the messages of up to ``limit`` notices whose final status is
    older than ``retention``; how many. Rows another transaction holds are left for next time."""
    with conn.transaction():
        cursor = conn.execute(
            "UPDATE notification SET message = NULL, message_purged_at = now() "
            "WHERE notification_id IN ("
            "  SELECT notification_id FROM notification"
            "  WHERE message IS NOT NULL AND state = ANY(%s) AND updated_at < now() - %s"
            "  ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED)",
            (list(_PURGED_STATES), retention, limit),
        )
        return cursor.rowcount


def purge_messages_of(conn: Conn, movement_key: str) -> int:
    """Purge now the messages of a movement's settled notices (its subject's data was deleted
    upstream); one still to send keeps its message until its own final status."""
    return conn.execute(
        "UPDATE notification SET message = NULL, message_purged_at = now() "
        "WHERE movement_key = %s AND message IS NOT NULL AND state = ANY(%s)",
        (movement_key, list(FINAL_STATES)),
    ).rowcount


class ResendOutcome(enum.StrEnum):
    RESENDING = "resending"
    """Failed or uncertain, message kept: pending again, the delivery workers send it."""
    PURGED = "purged"
    """Its message was purged (retention): there is nothing left to send."""
    NOT_FAILED = "not_failed"
    """Sent, skipped, or already waiting to go: nothing to do."""
    UNKNOWN = "unknown"
    """No such notice in this ledger."""


@dataclass(frozen=True)
class Resend:
    outcome: ResendOutcome
    state: str | None
    purged_at: dt.datetime | None


def request_resend(conn: Conn, notification_id: str, *, dry_run: bool = False) -> Resend:
    """An operator's resend of a dead-lettered notice, through the ledger's own function
    (migrations 006 and 007): the only right it needs on the ledger. Named with notify's
    schema: the operator's role has no search path of its own."""
    try:
        uuid.UUID(notification_id)
    except ValueError:
        return Resend(ResendOutcome.UNKNOWN, None, None)
    with conn.transaction():
        row = conn.execute(
            "SELECT outcome, found_state, purged_at FROM notify.request_resend(%s, %s)",
            (notification_id, dry_run),
        ).fetchone()
    assert row is not None  # the function always returns one row
    return Resend(ResendOutcome(row[0]), row[1], row[2])


RECEIPT_COLUMNS = {"DELIVERED": "delivered_at", "READ": "read_at", "BOUNCED": "bounced_at"}


def record_receipt(
    conn: Conn,
    statuses: StatusRecorder,
    receipt_id: str,
    kind: str,
    notification_id: str | None,
    detail: str,
) -> str:
    """Record what a message of the mailbox said, once per message (``receipt_id``) and once per
    notice and kind: 'recorded', 'known' (this message or an earlier one already said it),
    'unmatched' (no notice of this ledger, or not a receipt). The notice's status is announced
    when it changed, in the same transaction."""
    column = RECEIPT_COLUMNS.get(kind)
    with conn.transaction():
        if column is not None and notification_id is not None:
            known = conn.execute(
                "SELECT 1 FROM notification WHERE notification_id = %s", (notification_id,)
            ).fetchone()
            if known is None:
                kind, detail = "UNMATCHED", f"{detail}; no such notice"
        inserted = conn.execute(
            "INSERT INTO notification_receipt (receipt_id, notification_id, kind, detail) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (receipt_id) DO NOTHING",
            (receipt_id, notification_id, kind, detail),
        ).rowcount
        if kind == "UNMATCHED":
            return "unmatched"
        if not inserted:
            return "known"
        column = RECEIPT_COLUMNS[kind]
        changed = change_and_announce(
            conn,
            f"UPDATE notification SET {column} = now() "
            f"WHERE notification_id = %s AND {column} IS NULL",
            (notification_id,),
            STATUS_COLUMNS,
            lambda c, row: statuses.record(c, {**row, "detail": detail}, kind),
        )
        if changed and kind == "BOUNCED":
            assert notification_id is not None  # a matched receipt names its notice
            follow_chain(conn, statuses, notification_id, chain.Setback.BOUNCED)
    return "recorded" if changed else "known"


def unconfirmed(conn: Conn, window: dt.timedelta) -> dict[str, int]:
    """The ``UNCONFIRMED`` notices by establishment."""
    rows = conn.execute(
        f"SELECT establishment, count(*) FROM notification WHERE {UNCONFIRMED} "
        "GROUP BY establishment",
        {"dsn_window": window},
    ).fetchall()
    return {row[0]: int(row[1]) for row in rows}


# --- fallback chains and the worklist (services.notify.chain) -------------------------------


def follow_chain(
    conn: Conn, statuses: StatusRecorder, notification_id: str, setback: chain.Setback
) -> str:
    """After a bounce or a permanent failure of a notice, in the transaction that records it:
    its chain's next step as a notice of its own ('step'), or, with no step left, a worklist
    entry ('worklist'); 'known' when either was already done (a bounce after a failure, a
    replay). The step is held when the stay is now protected or the patient now objects: the
    patient's word at the time of the step, not at the time of the first notice."""
    row = conn.execute(
        "SELECT event_id, stay_key, establishment, movement_key, kind, recipient_rpps, message, "
        "fallback, chain_step, successor_id, received_at, occurred_at, unit "
        "FROM notification WHERE notification_id = %s FOR UPDATE",
        (notification_id,),
    ).fetchone()
    if row is None or row[9] is not None:
        return "known"
    (event_id, stay_key, establishment, movement, kind, rpps, message, fallback, number) = row[:9]
    received_at, occurred_at, unit = row[10:]
    step = chain.next_step(notification_id, number, fallback)
    if step is None or message is None:
        why = (
            f"step {number} of its chain {setback.lower()}; no further address"
            if step is None
            else f"step {number} {setback.lower()} and its message was purged (retention)"
        )
        entry = {
            "entry_id": f"notice:{notification_id}",
            "establishment": establishment,
            "unit": unit,
            "stay_key": stay_key,
            "event_id": event_id,
            "notification_id": notification_id,
            "reason": setback.value,
            "detail": why,
            "occurred_at": occurred_at,
        }
        return "worklist" if put_on_worklist(conn, entry) else "known"
    stay = privacy.stay_privacy(conn, stay_key)
    skip = withheld_reason(Privacy(protected=stay.protected, opposed=stay.opposed))
    if skip is None and step.rpps != rpps:
        # The substitute is a member of the right list: told directly unless that failed too.
        told = conn.execute(
            "SELECT 1 FROM notification WHERE movement_key = %s AND kind = %s "
            "AND recipient_rpps = %s AND chain_step = 0 AND bounced_at IS NULL "
            "AND state NOT IN ('skipped', 'failed')",
            (movement, kind, step.rpps),
        ).fetchone()
        skip = SkipReason.SUBSTITUTE_TOLD.sentence if told else None
    body = b"" if skip else chain.readdressed(bytes(message), step.address, step.notification_id)
    _changed(
        conn,
        statuses,
        "INSERT INTO notification (notification_id, event_id, stay_key, establishment, "
        "movement_key, kind, recipient_rpps, recipient_address, message_id, message, state, "
        "detail, received_at, occurred_at, fallback, chain_step, unit) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (notification_id) DO NOTHING",
        (
            step.notification_id,
            event_id,
            stay_key,
            establishment,
            movement,
            kind,
            step.rpps,
            step.address,
            f"<{step.notification_id}@{MESSAGE_ID_DOMAIN}>",
            body,
            "skipped" if skip else "pending",
            skip,
            received_at,
            occurred_at,
            Jsonb(step.remaining),
            step.number,
            unit,
        ),
    )
    conn.execute(
        "UPDATE notification SET successor_id = %s WHERE notification_id = %s",
        (step.notification_id, notification_id),
    )
    if not skip:
        wake_senders(conn)
    return "step"


WORKLIST_COLUMNS = (
    "entry_id",
    "establishment",
    "unit",
    "stay_key",
    "event_id",
    "notification_id",
    "reason",
    "detail",
    "occurred_at",
)


def put_on_worklist(conn: Conn, entry: Mapping[str, Any]) -> bool:
    """One worklist entry, once (its ``entry_id``); True when new."""
    columns = ", ".join(WORKLIST_COLUMNS)
    values = ", ".join(f"%({name})s" for name in WORKLIST_COLUMNS)
    return bool(
        conn.execute(
            f"INSERT INTO worklist ({columns}) VALUES ({values}) ON CONFLICT (entry_id) DO NOTHING",
            dict(entry),
        ).rowcount
    )


def resolve_unroutable(conn: Conn, event_id: str) -> int:
    """An unroutable event enriched again (its GP now in the directory) leaves the worklist."""
    return conn.execute(
        "UPDATE worklist SET resolved_at = now() WHERE entry_id = %s AND resolved_at IS NULL",
        (f"event:{event_id}",),
    ).rowcount
