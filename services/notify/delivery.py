"""Delivery: workers send due notices from the ledger, recording every outcome.

Each worker claims a few due notices at a time (``FOR UPDATE SKIP LOCKED``, ``claim_batch``), so
a recipient whose server is slow or failing holds one worker, never the service. Workers are
woken by the commit that records a notice (PostgreSQL ``LISTEN``/``NOTIFY``), and look on their
own every ``poll_interval`` for retries whose time has come. Transient failures are retried with
exponential backoff until ``give_up_after``; permanent ones and uncertain hand-offs are failed
and dead-lettered, for an operator to look into or resend (``harpicoop replay-dead-letters``). A
notice whose address is not a plain address of the trust space never reaches SMTP: it fails the
same way. One whose delivery raises on its content (``services.common.poison``) is tried
``POISON_ATTEMPTS`` times, then failed and dead-lettered the same way, naming only the error's
class.

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
        """Claims up to ``claim_batch`` due notices in one statement, then sends them in turn.

        Every one is 'sending' before it is handed to SMTP (at most once). Those not yet handed
        when the batch stops early (an outage, or a quarter of the lease gone on a slow server)
        are given back, so the sweeper never takes a notice no server saw for an interrupted
        delivery; should giving back fail too, they are swept 'uncertain' as any interrupted
        claim is."""
        claimed = ledger.claim_due(self.conn, limit=self.config.claim_batch)
        budget = self.config.sending_lease.total_seconds() / 4
        started = time.monotonic()
        for index, notice in enumerate(claimed):
            if index and time.monotonic() - started > budget:
                ledger.release(self.conn, [n.notification_id for n in claimed[index:]])
                break
            try:
                self._deliver(notice)
            except Exception as error:
                # The SMTP conversation may have stopped half-way (MAIL sent, RCPT not): the
                # next notice starts on a new connection.
                self.smtp.close()
                if classify(error) is Fault.OUTAGE:
                    self._release_quietly(claimed[index + 1 :])
                    raise
                self._failed_on_content(notice, error)
        return len(claimed)

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

    def _failed_on_content(self, notice: ledger.Claimed, error: Exception) -> None:
        """The notice's delivery raised on what it holds: tried again a few times (the ledger
        counts the attempts), then failed; never a loop, never a stopped worker."""
        log = self.log.bind(notification_id=notice.notification_id, attempt=notice.attempts)
        detail = describe(error)
        try:
            if notice.attempts < self.policy.attempts:
                pause = self.policy.pause(notice.attempts, Fault.RECORD)
                retry_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=pause)
                ledger.finish(
                    self.conn,
                    self.statuses,
                    notice.notification_id,
                    "retrying",
                    detail=detail,
                    retry_at=retry_at,
                )
                log.warning("notice delivery failed; to retry", error=type(error).__name__)
                return
            self._dead_letter(notice, f"notice failed: {detail}", error=error, description=detail)
            ledger.finish(self.conn, self.statuses, notice.notification_id, "failed", detail=detail)
            PROCESSED.labels("notify", "failed").inc()
            log.error("notice not delivered", state="failed", error=type(error).__name__)
        except Exception as second:
            if classify(second) is Fault.OUTAGE:
                raise
            # Left 'sending': the sweeper marks it uncertain once its lease has run out.
            log.error("notice outcome not recorded", error=type(second).__name__)

    def _dead_letter(
        self,
        notice: ledger.Claimed,
        reason: str,
        *,
        error: Exception | None = None,
        description: str | None = None,
    ) -> None:
        reference = dead_letter_reference(notice.notification_id)
        self.dead_letters.send(
            key=reference,
            value=reference,
            reason=reason,
            error=error,
            description=description,
            headers=[(REFERENCE_HEADER, reference)],
        )

    def _deliver(self, notice: ledger.Claimed) -> None:
        log = self.log.bind(notification_id=notice.notification_id, attempt=notice.attempts)
        delivery = self._refusal(notice) or self.smtp.send(
            notice.message,
            self.sender_address,
            notice.recipient_address,
            envelope_id=notice.notification_id,
        )
        outcome = delivery.outcome
        if outcome is Outcome.SENT:
            latency = ledger.finish(
                self.conn,
                self.statuses,
                notice.notification_id,
                "sent",
                smtp_code=delivery.smtp_code,
            )
            PROCESSED.labels("notify", "sent").inc()
            if latency is not None:
                LATENCY.labels("notify", "smtp_accepted").observe(latency.total_seconds())
            log.info("notice sent", smtp_code=delivery.smtp_code)
            return
        age = dt.datetime.now(dt.UTC) - notice.created_at
        if outcome is Outcome.TRANSIENT and age < self.config.give_up_after:
            retry_at = dt.datetime.now(dt.UTC) + self.config.retry_delay(notice.attempts)
            ledger.finish(
                self.conn,
                self.statuses,
                notice.notification_id,
                "retrying",
                smtp_code=delivery.smtp_code,
                detail=delivery.detail,
                retry_at=retry_at,
            )
            log.warning(
                "notice to retry", smtp_code=delivery.smtp_code, retry_at=retry_at.isoformat()
            )
            return
        if outcome is Outcome.TRANSIENT:
            detail = f"gave up after {notice.attempts} attempts: {delivery.detail}"
            state = "failed"
        else:
            detail = delivery.detail or outcome.value
            state = "uncertain" if outcome is Outcome.UNCERTAIN else "failed"
        # The dead letter first: should it fail, the notice stays 'sending' and expires to
        # 'uncertain' rather than being marked failed with no trace of its message.
        self._dead_letter(
            notice, f"notice {state} (SMTP {delivery.smtp_code or 'no reply'}): {detail}"
        )
        ledger.finish(
            self.conn,
            self.statuses,
            notice.notification_id,
            state,
            smtp_code=delivery.smtp_code,
            detail=detail,
        )
        PROCESSED.labels("notify", state).inc()
        log.error("notice not delivered", state=state, smtp_code=delivery.smtp_code)
