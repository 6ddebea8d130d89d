"""Delivery: workers send due notices from the ledger, recording every outcome.

Each worker claims a few due notices at a time (``FOR UPDATE SKIP LOCKED``, ``claim_batch``), so
a recipient whose server is slow or failing holds one worker, never the service, and records
their outcomes together, in one transaction. Workers are woken by the commit that records a
notice (PostgreSQL ``LISTEN``/``NOTIFY``), and look on their own every ``poll_interval`` for
retries whose time has come. Transient failures are retried with exponential backoff until
``give_up_after``; permanent ones and uncertain hand-offs are failed and dead-lettered, for an
operator to look into or resend (``harpicoop replay-dead-letters``). A notice whose address is
not a plain address of the trust space never reaches SMTP: it fails the same way. One whose
delivery raises on its content (``services.common.poison``) is tried ``POISON_ATTEMPTS`` times,
then failed and dead-lettered the same way, naming only the error's class.

A dead letter is a reference to the ledger row (its notification id), never the rendered email:
the message stays in the ledger, which purges it ``NOTIFY_RETENTION_DAYS`` after the notice's
final status, and is not copied to a topic that keeps it on its own terms.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import structlog

from services.common.deadletter import DeadLetters
from services.common.mailbox import secure_address
from services.common.observability import LATENCY, PROCESSED
from services.common.outbox import Conn
from services.common.poison import Fault, PoisonPolicy, classify, describe
from services.notify import ledger
from services.notify.config import NotifyConfig
from services.notify.smtp import Delivery, Outcome, SmtpSender
from services.notify.status import StatusRecorder

REFERENCE_HEADER = "notification_id"
"""The dead letter header naming the ledger row it refers to."""


def dead_letter_reference(notification_id: str) -> bytes:
    """The key and value of a notice's dead letter: its ledger row's id, none of its content."""
    return notification_id.encode("ascii")


class DeliveryWorker:
    def __init__(
        self,
        *,
        config: NotifyConfig,
        sender_address: str,
        conn: Conn,
        smtp: SmtpSender,
        dead_letters: DeadLetters,
        statuses: StatusRecorder,
        log: structlog.stdlib.BoundLogger,
        policy: PoisonPolicy | None = None,
    ) -> None:
        self.config = config
        self.statuses = statuses
        self.sender_address = sender_address
        self.conn = conn
        self.smtp = smtp
        self.dead_letters = dead_letters
        self.log = log
        self.policy = policy or PoisonPolicy.from_env()

    def run(self, stop: threading.Event) -> None:
        ledger.listen(self.conn)
        try:
            while not stop.is_set():
                if not self.deliver_due():
                    # Woken by the commit that records a notice; the interval is only for
                    # retries whose time comes, which nothing announces.
                    ledger.wait_for_wake(self.conn, self.config.poll_interval)
        finally:
            self.smtp.close()

    def deliver_due(self) -> int:
        """Claims up to ``claim_batch`` due notices in one statement, sends them in turn, then
        records their outcomes in one transaction (``_record``).

        Every one is 'sending' before it is handed to SMTP (at most once). Those not yet handed
        when the batch stops early (an outage, or a quarter of the lease gone on a slow server)
        are given back, so the sweeper never takes a notice no server saw for an interrupted
        delivery; should giving back fail too, they are swept 'uncertain' as any interrupted
        claim is.

        Should the worker die after the SMTP server accepted some of the batch but before their
        outcomes commit, those stay 'sending' and the sweeper marks them 'uncertain' once the
        lease has run out: none is ever sent again, as when the one outcome of a notice was not
        committed. What the batch changes is how many a crash can leave uncertain: up to
        ``claim_batch`` rather than one (their DSN reports still record the delivery); a batch
        of 1 records each outcome on its own."""
        claimed = ledger.claim_due(self.conn, limit=self.config.claim_batch)
        budget = self.config.sending_lease.total_seconds() / 4
        started = time.monotonic()
        done: list[ledger.Completion] = []
        try:
            for index, notice in enumerate(claimed):
                if index and time.monotonic() - started > budget:
                    ledger.release(self.conn, [n.notification_id for n in claimed[index:]])
                    break
                try:
                    outcome = self._attempt(notice)
                except Exception as error:
                    # The SMTP conversation may have stopped half-way (MAIL sent, RCPT not): the
                    # next notice starts on a new connection.
                    self.smtp.close()
                    if classify(error) is Fault.OUTAGE:
                        self._release_quietly(claimed[index + 1 :])
                        raise
                    outcome = self._failed_on_content(notice, error)
                if outcome is not None:
                    done.append(outcome)
        finally:
            # Also when an outage stops the batch: what the SMTP server accepted is recorded.
            self._record(claimed, done)
        return len(claimed)

    def _record(self, claimed: list[ledger.Claimed], done: list[ledger.Completion]) -> None:
        """The batch's outcomes in one transaction. Should the ledger refuse it for what one
        outcome holds (not an outage), each is tried on its own, so that one never holds back
        the others; one still refused is left 'sending', and so swept 'uncertain', never retried:
        a notice the server accepted is never given a second chance to go out."""
        if not done:
            return
        try:
            latencies = ledger.complete(self.conn, self.statuses, done)
        except Exception as error:
            if classify(error) is Fault.OUTAGE:
                raise
            latencies = {}
            recorded = []
            for completion in done:
                try:
                    latencies |= ledger.complete(self.conn, self.statuses, [completion])
                    recorded.append(completion)
                except Exception as second:
                    if classify(second) is Fault.OUTAGE:
                        raise
                    self.log.error(
                        "notice outcome not recorded",
                        notification_id=completion.notification_id,
                        error=type(second).__name__,
                    )
            done = recorded
        attempts = {notice.notification_id: notice.attempts for notice in claimed}
        for completion in done:
            self._recorded(completion, attempts.get(completion.notification_id, 0), latencies)
        sent = sum(completion.state == "sent" for completion in done)
        if sent:
            # One line per batch: each notice's own trail is its status on notifications.status.
            PROCESSED.labels("notify", "sent").inc(sent)
            self.log.info("notices sent", counts={"sent": sent, "claimed": len(claimed)})

    def _recorded(
        self, completion: ledger.Completion, attempt: int, latencies: dict[str, dt.timedelta]
    ) -> None:
        """Counted and logged once its outcome is committed: a notice not sent on its own line,
        those sent by the batch (``_record``)."""
        if completion.state == "sent":
            latency = latencies.get(completion.notification_id)
            if latency is not None:
                LATENCY.labels("notify", "smtp_accepted").observe(latency.total_seconds())
            return
        log = self.log.bind(notification_id=completion.notification_id, attempt=attempt)
        if completion.state == "retrying":
            retry_at = completion.retry_at.isoformat() if completion.retry_at else None
            log.warning("notice to retry", smtp_code=completion.smtp_code, retry_at=retry_at)
        else:
            PROCESSED.labels("notify", completion.state).inc()
            log.error(
                "notice not delivered", state=completion.state, smtp_code=completion.smtp_code
            )

    def _release_quietly(self, notices: list[ledger.Claimed]) -> None:
        try:
            ledger.release(self.conn, [notice.notification_id for notice in notices])
        except Exception as error:
            self.log.error(
                "claimed notices not given back", count=len(notices), error=type(error).__name__
            )

    def _refusal(self, notice: ledger.Claimed) -> Delivery | None:
        """A permanent failure, before any SMTP, for an address that is not one plain address of
        the trust space: smtplib would read ``a,b@x.mssante.fr`` as ``RCPT TO:<a>``. Deciding
        already skips such an address; this holds for any ledger row that escaped it."""
        if secure_address(notice.recipient_address, self.config.extra_secure_domains):
            return None
        return Delivery(
            Outcome.PERMANENT,
            None,
            "refused before SMTP: the recipient address is not one plain address of the MSSanté "
            "secure domains",
        )

    def _failed_on_content(
        self, notice: ledger.Claimed, error: Exception
    ) -> ledger.Completion | None:
        """The notice's delivery raised on what it holds: tried again a few times (the ledger
        counts the attempts), then failed; never a loop, never a stopped worker. None when even
        its dead letter could not be sent: left 'sending', the sweeper marks it uncertain once
        its lease has run out."""
        detail = describe(error)
        self.log.warning(
            "notice delivery raised",
            notification_id=notice.notification_id,
            attempt=notice.attempts,
            error=type(error).__name__,
        )
        if notice.attempts < self.policy.attempts:
            pause = self.policy.pause(notice.attempts, Fault.RECORD)
            retry_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=pause)
            return ledger.Completion(
                notice.notification_id, "retrying", detail=detail, retry_at=retry_at
            )
        if not self._dead_lettered(notice, f"notice failed: {detail}", error, detail):
            return None
        return ledger.Completion(notice.notification_id, "failed", detail=detail)

    def _dead_lettered(
        self,
        notice: ledger.Claimed,
        reason: str,
        error: Exception | None = None,
        description: str | None = None,
    ) -> bool:
        """The notice's dead letter sent, before its outcome is recorded. False when it could not
        be (an outage raises): the notice is then left 'sending', to expire to 'uncertain'
        rather than be marked failed with no trace of its message, and never retried, since the
        server may have it."""
        reference = dead_letter_reference(notice.notification_id)
        try:
            self.dead_letters.send(
                key=reference,
                value=reference,
                reason=reason,
                error=error,
                description=description,
                headers=[(REFERENCE_HEADER, reference)],
            )
        except Exception as failure:
            if classify(failure) is Fault.OUTAGE:
                raise
            self.log.error(
                "notice outcome not recorded",
                notification_id=notice.notification_id,
                error=type(failure).__name__,
            )
            return False
        return True

    def _attempt(self, notice: ledger.Claimed) -> ledger.Completion | None:
        """Hand the notice to SMTP; its outcome, to record with the batch's. A notice not sent
        and not to retry is dead-lettered first (``_dead_lettered``): None when that failed."""
        delivery = self._refusal(notice) or self.smtp.send(
            notice.message,
            self.sender_address,
            notice.recipient_address,
            envelope_id=notice.notification_id,
        )
        outcome = delivery.outcome
        if outcome is Outcome.SENT:
            return ledger.Completion(notice.notification_id, "sent", smtp_code=delivery.smtp_code)
        age = dt.datetime.now(dt.UTC) - notice.created_at
        if outcome is Outcome.TRANSIENT and age < self.config.give_up_after:
            return ledger.Completion(
                notice.notification_id,
                "retrying",
                smtp_code=delivery.smtp_code,
                detail=delivery.detail,
                retry_at=dt.datetime.now(dt.UTC) + self.config.retry_delay(notice.attempts),
            )
        if outcome is Outcome.TRANSIENT:
            detail = f"gave up after {notice.attempts} attempts: {delivery.detail}"
            state = "failed"
        else:
            detail = delivery.detail or outcome.value
            state = "uncertain" if outcome is Outcome.UNCERTAIN else "failed"
        reason = f"notice {state} (SMTP {delivery.smtp_code or 'no reply'}): {detail}"
        if not self._dead_lettered(notice, reason):
            return None
        return ledger.Completion(
            notice.notification_id, state, smtp_code=delivery.smtp_code, detail=detail
        )
