"""The enrichment stage: unique stay events in, enriched or unroutable events out, exactly once.

It runs on the transactional loop (``services.common.transact``) rather than as a faust agent
because the join is against a small table every instance holds whole (the directory) and because
Kafka transactions give what matters here: the output records and the input offsets commit
together, so a killed instance neither loses an event nor lets a duplicate through (downstream
consumers read committed records only). Poison records and outages are the loop's: a record that
cannot be decoded, or whose routing keeps failing on its content, is dead-lettered inside the
batch's transaction; an outage aborts the batch, which is read again after a backoff.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import TypeVar

import structlog
from confluent_kafka import Message

from services.common.observability import LATENCY
from services.common.records import EnrichedStayEvent, StayEvent, UnroutableStayEvent
from services.common.serde import RecordSerde
from services.common.transact import Batch, Stage, TransactionalLoop
from services.enrich.config import EnrichConfig
from services.enrich.directory import PractitionerTable
from services.enrich.recipients import route

Output = TypeVar("Output", EnrichedStayEvent, UnroutableStayEvent)


@dataclass(frozen=True)
class EnrichSerdes:
    event: RecordSerde[StayEvent]
    enriched: RecordSerde[EnrichedStayEvent]
    unroutable: RecordSerde[UnroutableStayEvent]


class Enricher(Stage[StayEvent]):
    service = "enrich"

    def __init__(
        self,
        *,
        config: EnrichConfig,
        directory: PractitionerTable,
        serdes: EnrichSerdes,
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        self.config = config
        self.directory = directory
        self.serdes = serdes
        self.log = log

    def run(self, loop: TransactionalLoop, stop: threading.Event) -> None:
        """Once the directory is loaded: no event is routed against a directory half read."""
        while not self.directory.wait_loaded(1.0):
            if stop.is_set():
                return
        loop.run(stop, [self.config.input_topic])

    def decode(self, message: Message) -> StayEvent:
        return self.serdes.event.deserialize(str(message.topic()), message.value() or b"")

    def handle(self, message: Message, event: StayEvent, batch: Batch) -> None:
        now = dt.datetime.now(dt.UTC)
        # The directory dict is replaced, never changed: a reference is a consistent snapshot.
        routing = route(event, self.directory.snapshot())
        # The stay event is the outputs' first field: when it came written with the very schema
        # they embed, its bytes are reused as they are and only the rest is encoded.
        body = self.serdes.event.avro.own_body(message.value() or b"")
        if routing.unroutable_reason is None:
            out_topic = self.config.enriched_topic
            value = _encoded(
                self.serdes.enriched,
                out_topic,
                body,
                EnrichedStayEvent(event=event, recipients=routing.recipients, enriched_at=now),
            )
            outcome = "enriched"
        else:
            out_topic = self.config.unroutable_topic
            value = _encoded(
                self.serdes.unroutable,
                out_topic,
                body,
                UnroutableStayEvent(
                    event=event,
                    reason=routing.unroutable_reason,
                    gp_rpps=routing.gp_rpps,
                    detail=routing.detail,
                    detected_at=now,
                ),
            )
            outcome = routing.unroutable_reason.lower()
        batch.produce(
            out_topic, event.stay_key, value, headers=[("event_id", event.event_id.encode())]
        )
        batch.count(outcome, int(message.partition() or 0))
        LATENCY.labels("enrich", "enriched").observe((now - event.received_at).total_seconds())


def _encoded(
    serde: RecordSerde[Output], topic: str, event_body: bytes | None, record: Output
) -> bytes:
    if event_body is None:
        return serde.serialize(topic, record)
    return serde.serialize_after(topic, event_body, record)
