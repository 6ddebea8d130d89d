"""Intake: enriched stay events in, notices written to the ledger, offsets committed after.

A batch of records becomes one database transaction; the offsets are committed only once it is
committed, so a crash anywhere replays the batch and the deterministic notification ids make the
replay insert nothing twice (at-least-once input, exactly-once ledger).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import structlog
from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.serialization import SerializationError

from services.common.deadletter import DeadLetters
from services.common.outbox import Conn
from services.common.serde import AvroSerde
from services.notify import ledger
from services.notify.config import NotifyConfig
from services.notify.notices import Notice, NoticeKind, decide, movement_key
from services.notify.render import MESSAGE_ID_DOMAIN, build_message, notice_context, render
from services.notify.status import StatusRecorder


class Intake:
    def __init__(
        self,
        *,
        config: NotifyConfig,
        sender_address: str,
        consumer: Consumer,
        serde: AvroSerde,
        conn: Conn,
        dead_letters: DeadLetters,
        establishment_names: Mapping[str, str],
        statuses: StatusRecorder,
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        self.statuses = statuses
        self.config = config
        self.sender_address = sender_address
        self.consumer = consumer
        self.serde = serde
        self.conn = conn
        self.dead_letters = dead_letters
        self.establishment_names = establishment_names
        self.log = log
        self.recorded = 0

    def run(self, stop: threading.Event, batch_size: int = 200) -> None:
        self.consumer.subscribe([self.config.input_topic])
        while not stop.is_set():
            messages = self.consumer.consume(batch_size, timeout=0.5)
            if messages:
                self.process(messages)

    def process(self, messages: list[Message]) -> None:
        offsets: dict[tuple[str, int], int] = {}
        with self.conn.transaction():
            for message in messages:
                if message.error() is not None:
                    self.log.warning("consumer error", error=str(message.error()))
                    continue
                self._one(message)
                offsets[(str(message.topic()), int(message.partition() or 0))] = (
                    int(message.offset() or 0) + 1
                )
        if offsets:
            self.consumer.commit(
                offsets=[
                    TopicPartition(topic, part, offset) for (topic, part), offset in offsets.items()
                ],
                asynchronous=False,
            )

    def _one(self, message: Message) -> None:
        try:
            enriched = self.serde.deserialize(str(message.topic()), message.value() or b"")
        except SerializationError as error:
            self.dead_letters.send_message(message, "undecodable enriched stay event", error)
            self.log.error("record dead-lettered", topic=message.topic(), offset=message.offset())
            return
        event = enriched["event"]
        key = movement_key(event)
        earlier = (
            ledger.earlier_notices(
                self.conn, key, [item["rpps"] for item in enriched["recipients"]]
            )
            if event["action"] != "INSERT"
            else {}
        )
        for notice in decide(enriched, earlier, self.config.extra_secure_domains):
            if notice.withdraws_waiting:
                reason = (
                    "the movement was cancelled before its notice was sent"
                    if notice.kind is NoticeKind.RETRACTION
                    else "replaced by a corrected notice before it was sent"
                )
                ledger.withdraw_waiting(
                    self.conn, self.statuses, key, notice.recipient["rpps"], reason
                )
            body, message_id = self._message(notice, event)
            if ledger.record(self.conn, self.statuses, notice, event, key, body, message_id):
                self.recorded += 1
                self.log.info(
                    "notice recorded",
                    notification_id=notice.notification_id,
                    event_id=event["event_id"],
                    kind=notice.kind.value,
                    rpps=notice.recipient["rpps"],
                    skipped=notice.skip_reason,
                )

    def _message(self, notice: Notice, event: Mapping[str, Any]) -> tuple[bytes, str]:
        message_id = f"<{notice.notification_id}@{MESSAGE_ID_DOMAIN}>"
        if notice.skip_reason:
            return b"", message_id
        context = notice_context(
            notice.kind,
            event,
            notice.recipient,
            self.establishment_names.get(event["establishment"], event["establishment"]),
        )
        email = build_message(
            render(context),
            sender=self.sender_address,
            recipient_address=notice.recipient["mssante_address"],
            notification_id=notice.notification_id,
            created_at=dt.datetime.now(dt.UTC),
        )
        # CRLF line ends: smtplib sends bytes as they are, and SMTP wants CRLF.
        return email.as_bytes(policy=SMTP_POLICY), message_id
