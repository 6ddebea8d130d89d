"""The loop of a service whose effects live in PostgreSQL: a batch of records, one transaction,
then the offsets.

Offsets are committed only after the transaction that holds the batch's effects has committed,
so a crash anywhere replays the batch (at-least-once); handlers make the replay harmless with
deterministic keys (``ON CONFLICT DO NOTHING`` and the like). A record that cannot be decoded is
dead-lettered, with its origin, before its offset is committed; the stream goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from confluent_kafka import Consumer, Message, TopicPartition

from services.common.deadletter import DeadLetters
from services.common.outbox import Conn
from services.common.serde import AvroSerde, UndecodableValue

Handler = Callable[[str, dict[str, Any]], None]
"""Called with the record's topic and decoded value, inside the batch's transaction."""


class BatchConsumer:
    def __init__(
        self,
        *,
        consumer: Consumer,
        topics: Mapping[str, AvroSerde],
        conn: Conn,
        dead_letters: DeadLetters,
        handle: Handler,
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        self.consumer = consumer
        self.topics = topics
        self.conn = conn
        self.dead_letters = dead_letters
        self.handle = handle
        self.log = log
        self.processed = 0

    def run(self, stop: threading.Event, batch_size: int = 200) -> None:
        self.consumer.subscribe(list(self.topics))
        try:
            while not stop.is_set():
                messages = self.consumer.consume(batch_size, timeout=0.5)
                if messages:
                    self.process(messages)
        finally:
            self.consumer.close()

    def process(self, messages: list[Message]) -> None:
        offsets: dict[tuple[str, int], int] = {}
        with self.conn.transaction():
            for message in messages:
                if message.error() is not None:
                    self.log.warning("consumer error", error=str(message.error()))
                    continue
                self._one(message)
                place = (str(message.topic()), int(message.partition() or 0))
                offsets[place] = int(message.offset() or 0) + 1
        if offsets:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, offset) for (t, p), offset in offsets.items()],
                asynchronous=False,
            )

    def _one(self, message: Message) -> None:
        topic = str(message.topic())
        try:
            value = self.topics[topic].deserialize(topic, message.value() or b"")
        except UndecodableValue as error:
            self.dead_letters.send_message(message, "undecodable value", error)
            self.log.error(
                "record dead-lettered",
                topic=topic,
                partition=message.partition(),
                offset=message.offset(),
            )
            return
        self.handle(topic, value)
        self.processed += 1
