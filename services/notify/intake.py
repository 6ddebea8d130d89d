"""Intake: enriched stay events in, notices written to the ledger; unroutable events onto the
worklist (ids and reasons only).

It runs inside ``services.common.consume.BatchConsumer``: a batch is one transaction and the
offsets follow it, so a replayed batch meets the deterministic notification ids and inserts
nothing twice (at-least-once input, exactly-once ledger). What is done once per batch is done in
its hooks (``BatchHooks``): the delivery workers are woken once, on its commit, and one INFO line
gives its counts (ids of each notice stay in the ledger and on ``notifications.status``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import structlog

from services.common.movements import movement_key
from services.common.outbox import Conn
from services.common.preferences import choices_of
from services.common.records import (
    Action,
    CovidFollowup,
    EnrichedStayEvent,
    Recipient,
    StayEvent,
    UnroutableStayEvent,
)
from services.common.skip_reasons import SkipReason
from services.notify import ledger, privacy
from services.notify.config import NotifyConfig
from services.notify.digests import (
    DIGEST_LINES_HEADER,
    PARIS,
    digest_event_id,
    digest_id,
    digest_stay_key,
    slots,
)
from services.notify.notices import (
    Notice,
    NoticeKind,
    Privacy,
    Sensitivity,
    decide,
    decide_followup,
    followup_event_id,
    followup_movement_key,
    withheld_reason,
)
from services.notify.render import (
    MESSAGE_ID_DOMAIN,
    build_message,
    digest_context,
    followup_context,
    message_bytes,
    notice_context,
    render,
    render_digest,
)
from services.notify.sensitivity import SensitivityPolicy
from services.notify.status import StatusRecorder
from services.notify.wording import Vocabulary


class Intake:
    """Decides the notices of each enriched event and writes them to the ledger."""

    def __init__(
        self,
        *,
        config: NotifyConfig,
        sender_address: str,
        conn: Conn,
        establishment_names: Mapping[str, str],
        statuses: StatusRecorder,
        log: structlog.stdlib.BoundLogger,
        vocabulary: Vocabulary,
        sensitivity: SensitivityPolicy | None = None,
    ) -> None:
        self.config = config
        self.sender_address = sender_address
        self.conn = conn
        self.establishment_names = establishment_names
        self.statuses = statuses
        self.vocabulary = vocabulary
        self.sensitivity = sensitivity or SensitivityPolicy()
        self.log = log
        self.recorded = 0
        self._tally: Counter[str] = Counter()
        """What the batch being handled did, by outcome; logged once it is committed."""
        self._wake = False
        """Whether the batch recorded a notice due now, to wake the delivery workers on commit."""

    def begin(self) -> None:
        self._tally.clear()
        self._wake = False

    def before_commit(self) -> None:
        # One NOTIFY per batch: PostgreSQL delivers it once per transaction anyway.
        if self._wake:
            ledger.wake_senders(self.conn)

    def committed(self) -> None:
        if not self._tally:
            return
        self.recorded += self._tally["recorded"] + self._tally["deferred"]
        self.log.info("intake batch committed", counts=dict(sorted(self._tally.items())))

    def handle(
        self, _topic: str, value: EnrichedStayEvent | UnroutableStayEvent | CovidFollowup
    ) -> None:
        """One record, within the batch's transaction."""
        match value:
            case EnrichedStayEvent():
                self._stay_event(value)
            case UnroutableStayEvent():
                self._unroutable(value)
            case CovidFollowup():
                self._followup(value)

    def forget(self, topic: str, key: bytes | None) -> None:
        """A tombstone: on ``covid.followups``, the case was purged upstream (retention), so the
        messages of its settled notices go now too; its notices' status trail stays."""
        if topic != self.config.followups_topic or key is None:
            return
        purged = ledger.purge_messages_of(self.conn, followup_movement_key(key.decode()))
        self._tally["followups_forgotten"] += 1
        self._tally["messages_purged"] += purged

    def _unroutable(self, unroutable: UnroutableStayEvent) -> None:
        """No GP could be found for the event: the identity-vigilance team's to look into."""
        event = unroutable.event
        entry = {
            "entry_id": f"event:{event.event_id}",
            "establishment": event.establishment,
            "unit": event.movement.unit,
            "stay_key": event.stay_key,
            "event_id": event.event_id,
            "notification_id": None,
            "reason": str(unroutable.reason),
            # Enrich's sentence names ids only (an RPPS at most), never the patient.
            "detail": unroutable.detail,
            "occurred_at": event.movement.occurred_at,
        }
        if ledger.put_on_worklist(self.conn, entry):
            self._tally["unroutable"] += 1

    def _stay_event(self, enriched: EnrichedStayEvent) -> None:
        event = enriched.event
        key = movement_key(event)
        # Pipelined, one round trip for both: nothing here waits for the worklist's answer.
        with self.conn.pipeline():
            # Enriched again after a directory update: routable now.
            ledger.resolve_unroutable(self.conn, event.event_id)
            stay = privacy.remember_stay(self.conn, event)
        policy = Privacy(
            protected=stay.protected,
            opposed=stay.opposed,
            sensitivity=self.sensitivity.of(event.establishment, event.movement.unit),
        )
        withheld = withheld_reason(policy)
        if stay.protected or stay.opposed:
            # What an earlier event of the stay left waiting goes no further either.
            privacy.withdraw_withheld(self.conn, self.statuses, event.stay_key)
        earlier = (
            ledger.earlier_notices(self.conn, key, [item.rpps for item in enriched.recipients])
            if event.action is not Action.INSERT
            else {}
        )
        for notice in decide(
            enriched,
            earlier,
            self.config.extra_secure_domains,
            self.config.max_recipients,
            withheld,
        ):
            if notice.withdraws_waiting:
                reason = withheld or (
                    SkipReason.CANCELLED.sentence
                    if notice.kind is NoticeKind.RETRACTION
                    else SkipReason.REPLACED.sentence
                )
                ledger.withdraw_waiting(
                    self.conn, self.statuses, key, notice.recipient.rpps, reason
                )
                for digest in ledger.withdraw_from_digests(
                    self.conn, self.statuses, key, notice.recipient.rpps, reason
                ):
                    day = ledger.digest_day(self.conn, digest)
                    self._write_digest(digest, notice.recipient, day)
            context = notice_context(
                notice.kind,
                event,
                notice.recipient,
                self._establishment(event.establishment),
                self.vocabulary,
                minimal=policy.sensitivity is Sensitivity.MINIMAL,
            )
            if notice.deferred:
                self._defer(notice, event, key, context)
            else:
                self._record(notice, ledger.Occurrence.of(event), key, context)

    def _defer(
        self, notice: Notice, event: StayEvent, key: str, context: Mapping[str, Any]
    ) -> None:
        """Listed in the first digest of the recipient still open after the event came in; the
        digest is written again with its lines as they now stand."""
        rpps = notice.recipient.rpps
        hour = choices_of(notice.recipient.delivery).digest_hour
        for day, _ in slots(event.received_at, hour):
            digest = digest_id(rpps, day)
            if ledger.digest_open(self.conn, digest):
                break
        # The line keeps the notice's own fields, in words, until its digest is written.
        line = json.dumps(context, ensure_ascii=False).encode()
        message_id = f"<{notice.notification_id}@{MESSAGE_ID_DOMAIN}>"
        occurrence = ledger.Occurrence.of(event)
        if ledger.record(
            self.conn,
            self.statuses,
            notice,
            occurrence,
            key,
            line,
            message_id,
            digest_id=digest,
            wake=False,
        ):
            self._tally["deferred"] += 1
            self._write_digest(digest, notice.recipient, day)

    def _write_digest(self, digest: str, recipient: Recipient, day: dt.date) -> None:
        """Render a waiting digest from its lines; one left without any is not sent."""
        lines = [json.loads(line) for line in ledger.digest_lines(self.conn, digest)]
        if not lines:
            ledger.empty_digest(self.conn, self.statuses, digest)
            return
        rpps = recipient.rpps
        hour = choices_of(recipient.delivery).digest_hour
        address = recipient.mssante_address or ""
        email = build_message(
            render_digest(digest_context(lines, recipient, day, hour, digest)),
            sender=self.sender_address,
            recipient_address=address,
            notification_id=digest,
            created_at=dt.datetime.now(dt.UTC),
            read_receipt_to=self.sender_address if self.config.wants_read_receipt(rpps) else None,
            # Ids only: which notices the digest tells, for the run's checks and operators.
            headers={DIGEST_LINES_HEADER: " ".join(ledger.digest_line_ids(self.conn, digest))},
        )
        ledger.put_digest(
            self.conn,
            self.statuses,
            ledger.Digest(
                digest_id=digest,
                event_id=digest_event_id(rpps, day),
                stay_key=digest_stay_key(rpps),
                rpps=rpps,
                address=address,
                due_at=dt.datetime.combine(day, dt.time(hour), tzinfo=PARIS),
                fallback=[step.to_avro() for step in recipient.fallback],
            ),
            email.as_bytes(policy=SMTP_POLICY),
        )

    def _followup(self, followup: CovidFollowup) -> None:
        # A follow-up speaks of its stay: withheld when the stay is protected or the patient
        # objected (its discharge notice was withheld too).
        stay = privacy.stay_privacy(self.conn, followup.stay_key)
        withheld = withheld_reason(Privacy(protected=stay.protected, opposed=stay.opposed))
        for notice in decide_followup(followup, self.config.extra_secure_domains, withheld):
            occurrence = ledger.Occurrence(
                event_id=followup_event_id(followup.case_id, followup.reminders_sent),
                stay_key=followup.stay_key,
                establishment=followup.establishment,
                received_at=followup.updated_at,
            )
            context = followup_context(
                notice.kind,
                followup,
                notice.recipient,
                self._establishment(followup.establishment),
            )
            self._record(notice, occurrence, followup_movement_key(followup.case_id), context)

    def _establishment(self, code: str) -> str:
        return self.establishment_names.get(code, code)

    def _record(
        self, notice: Notice, event: ledger.Occurrence, key: str, context: Mapping[str, Any]
    ) -> None:
        message_id = f"<{notice.notification_id}@{MESSAGE_ID_DOMAIN}>"
        body = b"" if notice.skip_reason else self._message(notice, context)
        if ledger.record(
            self.conn, self.statuses, notice, event, key, body, message_id, wake=False
        ):
            if notice.skip_reason:
                self._tally["skipped"] += 1
            else:
                self._tally["recorded"] += 1
                self._wake = True

    def _message(self, notice: Notice, context: Mapping[str, Any]) -> bytes:
        # CRLF line ends: smtplib sends bytes as they are, and SMTP wants CRLF.
        return message_bytes(
            render(context),
            sender=self.sender_address,
            recipient_address=notice.recipient.mssante_address or "",
            notification_id=notice.notification_id,
            created_at=dt.datetime.now(dt.UTC),
            read_receipt_to=self.sender_address
            if self.config.wants_read_receipt(notice.recipient.rpps)
            else None,
        )
