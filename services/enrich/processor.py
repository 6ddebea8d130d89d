"""The enrichment loop: unique stay events in, enriched or unroutable events out, exactly once.

It is a plain confluent-kafka loop rather than a faust agent because the join is against a small
table every instance holds whole (the directory) and because Kafka transactions give what matters
here: the output records and the input offsets commit together, so a killed instance neither
loses an event nor lets a duplicate through (downstream consumers read committed records only).
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import structlog
from confluent_kafka import Consumer, Message, Producer

from services.common.deadletter import error_headers
from services.common.observability import LATENCY, PROCESSED
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
    ) -> None:
        self.config = config
        self.consumer = consumer
        self.producer = producer
        self.directory = directory
        self.serdes = serdes
        self.log = log

    def run(self, stop: threading.Event) -> None:
        self.producer.init_transactions()
        while not self.directory.wait_loaded(1.0):
            if stop.is_set():
                return
        self.consumer.subscribe([self.config.input_topic])
        try:
            while not stop.is_set():
                messages = [m for m in self.consumer.consume(500, timeout=0.5) if m.error() is None]
                if messages:
                    self.process(messages)
        finally:
            self.consumer.close()

    def process(self, messages: list[Message]) -> None:
        """One transaction: every output of the batch, and the batch's offsets."""
        self.producer.begin_transaction()
        try:
            directory = self.directory.snapshot()
            for message in messages:
                self._one(message, directory)
            self.producer.send_offsets_to_transaction(
                self.consumer.position(self.consumer.assignment()),
                self.consumer.consumer_group_metadata(),
            )
            self.producer.commit_transaction()
        except Exception:
            # Nothing of the batch is visible downstream; the service stops and, restarted,
            # reads the batch again from the last committed offsets.
            self.producer.abort_transaction()
            raise

    def _one(self, message: Message, directory: dict[str, dict[str, Any]]) -> None:
        topic = str(message.topic())
        try:
            event = self.serdes["event"].deserialize(topic, message.value() or b"")
        except UndecodableValue as error:
            self.producer.produce(
                self.config.dead_letter_topic,
                key=message.key(),
                value=message.value(),
                headers=error_headers(
                    service="enrich",
                    reason="undecodable stay event",
                    error=error,
                    source_topic=topic,
                    partition=message.partition(),
                    offset=message.offset(),
                ),
            )
            PROCESSED.labels("enrich", "dead_lettered").inc()
            self.log.error("record dead-lettered", topic=topic, offset=message.offset())
            return
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
        PROCESSED.labels("enrich", outcome).inc()
        LATENCY.labels("enrich", "enriched").observe((now - event["received_at"]).total_seconds())
        self.log.info(
            "stay event routed",
            event_id=event["event_id"],
            outcome=outcome,
            recipients=len(routing.recipients),
        )
