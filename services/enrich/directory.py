"""The practitioner directory as enrich sees it: the compacted ``practitioners`` topic, followed.

Every instance reads every partition from the beginning (no consumer group: each needs the whole
directory), keeps the latest record per RPPS and drops it on a tombstone, then keeps following,
so a practitioner added later makes later events routable without a restart. ``wait_loaded``
lets the processor start only once the directory as it stood at start-up has been read.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from services.common.consume import fetch_batch
from services.common.kafka import consumer_config
from services.common.records import Practitioner
from services.common.serde import RecordSerde, UndecodableValue
from services.common.settings import Settings


class PractitionerTable:
    def __init__(
        self,
        settings: Settings,
        topic: str,
        serde: RecordSerde[Practitioner],
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        self.topic = topic
        self.serde = serde
        self.log = log
        self._consumer = Consumer(
            consumer_config(
                settings, "enrich-directory", f"enrich-directory-{uuid.uuid4().hex[:8]}"
            )
        )
        self._practitioners: dict[str, Practitioner] = {}
        self._lock = threading.Lock()
        self._loaded = threading.Event()

    def snapshot(self) -> dict[str, Practitioner]:
        """The directory now; the dict is replaced, never changed, so it can be read freely."""
        with self._lock:
            return self._practitioners

    def wait_loaded(self, timeout: float) -> bool:
        return self._loaded.wait(timeout)

    def __len__(self) -> int:
        return len(self.snapshot())

    def run(self, stop: threading.Event) -> None:
        metadata = self._consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        partitions = [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
        ends = {
            p.partition: self._consumer.get_watermark_offsets(p, timeout=10)[1] for p in partitions
        }
        self._consumer.assign(partitions)
        positions = dict.fromkeys(ends, 0)
        try:
            while not stop.is_set():
                messages = fetch_batch(self._consumer, 500, timeout=0.5)
                if messages:
                    self._apply(messages, positions)
                if not self._loaded.is_set() and all(
                    positions[p] >= end for p, end in ends.items()
                ):
                    self._loaded.set()
                    self.log.info("directory loaded", practitioners=len(self))
        finally:
            self._consumer.close()

    def _apply(self, messages: list[Any], positions: dict[int, int]) -> None:
        changed = dict(self.snapshot())
        for message in messages:
            if message.error() is not None:
                continue
            positions[message.partition()] = message.offset() + 1
            rpps = (message.key() or b"").decode()
            if message.value() is None:
                changed.pop(rpps, None)
                continue
            try:
                changed[rpps] = self.serde.deserialize(self.topic, message.value())
            except UndecodableValue:
                # A directory record is the directory's to fix: skip it, loudly.
                self.log.error("undecodable practitioner record", offset=message.offset())
        with self._lock:
            self._practitioners = changed
