"""The enrichment loop: unique stay events in, enriched or unroutable events out, exactly once.

It is a plain confluent-kafka loop rather than a faust agent because the join is against a small
table every instance holds whole (the directory) and because Kafka transactions give what matters
here: the output records and the input offsets commit together, so a killed instance neither
loses an event nor lets a duplicate through (downstream consumers read committed records only).
A record that cannot be decoded, or whose routing fails ``POISON_ATTEMPTS`` times on its content
(``services.common.poison``), is dead-lettered inside the same transaction as the batch's other
outputs; an outage aborts the batch, which is read again after a backoff.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
from typing import Any

import structlog
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from services.common.consume import fetch_batch
from services.common.deadletter import error_headers
from services.common.observability import LATENCY, PROCESSED
from services.common.poison import Fault, PoisonPolicy, RecordAttempts, classify, describe
from services.common.serde import AvroSerde, UndecodableValue
from services.enrich.config import EnrichConfig
from services.enrich.directory import PractitionerTable
from services.enrich.recipients import route


class Enricher:
    def __init__(
        self,
        *,
        config: EnrichConfig,
        consumer: Consumer,
        producer: Producer,
        directory: PractitionerTable,
        serdes: dict[str, AvroSerde],
        log: structlog.stdlib.BoundLogger,
        policy: PoisonPolicy | None = None,
    ) -> None:
        self.config = config
        self.consumer = consumer
        self.producer = producer
        self.directory = directory
        self.serdes = serdes
        self.log = log
        self.policy = policy or PoisonPolicy.from_env()
        self.attempts = RecordAttempts(self.policy)

    def run(self, stop: threading.Event) -> None:
        self.producer.init_transactions()
        while not self.directory.wait_loaded(1.0):
            if stop.is_set():
                return
        self.consumer.subscribe([self.config.input_topic])
        outages = 0
        try:
            while not stop.is_set():
                messages = [
                    m for m in fetch_batch(self.consumer, 500, timeout=0.5) if m.error() is None
                ]
                if not messages:
                    continue
                try:
                    self.process(messages)
                    outages = 0
                except Exception as error:
                    if not _passing(error):
                        raise
                    outages += 1
                    self._read_again(messages, outages, error)
                    stop.wait(self.policy.pause(outages, Fault.OUTAGE))
        finally:
            self.consumer.close()

    def process(self, messages: list[Message]) -> None:
        """One transaction: every output of the batch, and the batch's offsets."""
        outcomes: collections.Counter[str] = collections.Counter()
        self.producer.begin_transaction()
        try:
            directory = self.directory.snapshot()
            for message in messages:
                self._one(message, directory, outcomes)
            self.producer.send_offsets_to_transaction(
                self.consumer.position(self.consumer.assignment()),
                self.consumer.consumer_group_metadata(),
            )
            self.producer.commit_transaction()
        except Exception:
            # Nothing of the batch is visible downstream; it is read again (after an outage) or,
            # the service stopped and restarted, from the last committed offsets.
            self.producer.abort_transaction()
            raise
        # Counted once the batch is committed, once per outcome: an aborted batch read again
        # is not counted twice, and the hot path holds no per-record metric or log call.
        for outcome, count in outcomes.items():
            PROCESSED.labels("enrich", outcome).inc(count)
        self.log.info("batch routed", records=len(messages), counts=dict(outcomes))

    def _read_again(self, messages: list[Message], outages: int, error: Exception) -> None:
        """After an outage aborted the batch: back to its first offsets, to read it again."""
        first: dict[tuple[str, int], int] = {}
        for message in messages:
            place = (str(message.topic()), int(message.partition() or 0))
            first[place] = min(
                first.get(place, int(message.offset() or 0)), int(message.offset() or 0)
            )
        for (topic, partition), offset in first.items():
            self.consumer.seek(TopicPartition(topic, partition, offset))
        self.log.warning(
            "batch aborted during an outage; reading it again",
            error=type(error).__name__,
            outages=outages,
        )

    def _one(
        self,
        message: Message,
        directory: dict[str, dict[str, Any]],
        outcomes: collections.Counter[str],
    ) -> None:
        topic = str(message.topic())
        try:
            event = self.serdes["event"].deserialize(topic, message.value() or b"")
        except UndecodableValue as error:
            self._dead_letter(message, "undecodable stay event", error, None)
            outcomes["dead_lettered"] += 1
            return

        def poison(error: BaseException) -> None:
            self._dead_letter(message, "routing failed", error, describe(error))
            outcomes["dead_lettered"] += 1

        self.attempts.run(
            (topic, message.partition(), message.offset()),
            lambda: self._route(event, directory, outcomes),
            poison,
            self.log,
        )

    def _dead_letter(
        self, message: Message, reason: str, error: BaseException, description: str | None
    ) -> None:
        """Part of the batch's transaction, as its other outputs are."""
        self.producer.produce(
            self.config.dead_letter_topic,
            key=message.key(),
            value=message.value(),
            headers=error_headers(
                service="enrich",
                reason=reason,
                error=error,
                source_topic=message.topic(),
                partition=message.partition(),
                offset=message.offset(),
                description=description,
            ),
        )
        self.log.error(
            "record dead-lettered",
            topic=message.topic(),
            offset=message.offset(),
            reason=reason,
            error=type(error).__name__,
        )

    def _route(
        self,
        event: dict[str, Any],
        directory: dict[str, dict[str, Any]],
        outcomes: collections.Counter[str],
    ) -> None:
        now = dt.datetime.now(dt.UTC)
        routing = route(event, directory)
        if routing.unroutable_reason is None:
            out_topic = self.config.enriched_topic
            value = {"event": event, "recipients": routing.recipients, "enriched_at": now}
            serde = self.serdes["enriched"]
        else:
            out_topic = self.config.unroutable_topic
            value = {
                "event": event,
                "reason": routing.unroutable_reason,
                "gp_rpps": routing.gp_rpps,
                "detail": routing.detail,
                "detected_at": now,
            }
            serde = self.serdes["unroutable"]
        self.producer.produce(
            out_topic,
            key=event["stay_key"],
            value=serde.serialize(out_topic, value),
            headers=[("event_id", event["event_id"].encode())],
        )
        self.producer.poll(0)
        outcome = (
            "enriched" if routing.unroutable_reason is None else routing.unroutable_reason.lower()
        )
        outcomes[outcome] += 1
        LATENCY.labels("enrich", "enriched").observe((now - event["received_at"]).total_seconds())


def _passing(error: Exception) -> bool:
    """An outage that reading the batch again may get past: not a fatal producer error (a
    fenced transactional producer), which only a restart clears."""
    if classify(error) is not Fault.OUTAGE:
        return False
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError):
        return not error.args[0].fatal()
    return True
