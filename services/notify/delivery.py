"""Delivery: workers send due notices from the ledger; a publisher reports every outcome.

Each worker claims one notice at a time (``FOR UPDATE SKIP LOCKED``), so a recipient whose server
is slow or failing holds one worker, never the service. Transient failures are retried with
exponential backoff until ``give_up_after``; permanent ones and uncertain hand-offs are failed
and dead-lettered with the rendered message, for an operator to inspect or replay.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import structlog
from confluent_kafka import Producer

from services.common.deadletter import DeadLetters
from services.common.serde import AvroSerde
from services.notify import ledger
from services.notify.config import NotifyConfig
from services.notify.smtp import Outcome, SmtpSender

Conn = ledger.Conn


class DeliveryWorker:
    def __init__(
        self,
        *,
        config: NotifyConfig,
        sender_address: str,
        conn: Conn,
        smtp: SmtpSender,
        dead_letters: DeadLetters,
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        self.config = config
        self.sender_address = sender_address
        self.conn = conn
        self.smtp = smtp
        self.dead_letters = dead_letters
        self.log = log

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                if not self.deliver_due():
                    stop.wait(self.config.poll_interval)
        finally:
            self.smtp.close()

    def deliver_due(self) -> int:
        claimed = ledger.claim_due(self.conn, limit=1)
        for notice in claimed:
            self._deliver(notice)
        return len(claimed)

    def _deliver(self, notice: ledger.Claimed) -> None:
        log = self.log.bind(notification_id=notice.notification_id, attempt=notice.attempts)
        delivery = self.smtp.send(notice.message, self.sender_address, notice.recipient_address)
        outcome = delivery.outcome
        if outcome is Outcome.SENT:
            ledger.finish(
                self.conn,
                notice.notification_id,
                "sent",
                notice.attempts,
                smtp_code=delivery.smtp_code,
            )
            log.info("notice sent", smtp_code=delivery.smtp_code)
            return
        age = dt.datetime.now(dt.UTC) - notice.created_at
        if outcome is Outcome.TRANSIENT and age < self.config.give_up_after:
            retry_at = dt.datetime.now(dt.UTC) + self.config.retry_delay(notice.attempts)
            ledger.finish(
                self.conn,
                notice.notification_id,
                "retrying",
                notice.attempts,
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
        self.dead_letters.send(
            key=notice.notification_id,
            value=notice.message,
            reason=f"notice {state} (SMTP {delivery.smtp_code or 'no reply'}): {detail}",
            headers=[("notification_id", notice.notification_id.encode())],
        )
        ledger.finish(
            self.conn,
            notice.notification_id,
            state,
            notice.attempts,
            smtp_code=delivery.smtp_code,
            detail=detail,
        )
        log.error("notice not delivered", state=state, smtp_code=delivery.smtp_code)


class StatusPublisher:
    """Drains the status outbox to ``notifications.status``, deleting only what Kafka confirmed."""

    def __init__(
        self,
        *,
        config: NotifyConfig,
        conn: Conn,
        producer: Producer,
        serde: AvroSerde,
        log: structlog.stdlib.BoundLogger,
        on_published: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.conn = conn
        self.producer = producer
        self.serde = serde
        self.log = log
        self.on_published = on_published

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.publish_pending():
                stop.wait(self.config.poll_interval)
        self.publish_pending()

    def publish_pending(self) -> int:
        rows = ledger.pending_statuses(self.conn)
        self.conn.commit()
        if not rows:
            return 0
        failures: list[str] = []

        def delivered(err: Any, _message: Any) -> None:
            if err is not None:
                failures.append(str(err))

        for row in rows:
            value = {
                "notification_id": row["notification_id"],
                "event_id": row["event_id"],
                "stay_key": row["stay_key"],
                "establishment": row["establishment"],
                "kind": row["kind"],
                "recipient_rpps": row["recipient_rpps"],
                "recipient_address": row["recipient_address"],
                "status": row["status"],
                "attempt": row["attempt"],
                "smtp_code": row["smtp_code"],
                "detail": row["detail"],
                "message_id": row["message_id"],
                "at": row["at"],
            }
            self.producer.produce(
                self.config.status_topic,
                key=row["notification_id"],
                value=self.serde.serialize(self.config.status_topic, value),
                on_delivery=delivered,
            )
            self.producer.poll(0)
        remaining = self.producer.flush(30)
        if remaining or failures:
            # Nothing is deleted: the statuses are published again on the next round.
            self.log.error("status publication failed", unconfirmed=remaining, errors=failures[:3])
            return 0
        ledger.delete_statuses(self.conn, [row["id"] for row in rows])
        if self.on_published:
            for row in rows:
                self.on_published(row)
        return len(rows)
