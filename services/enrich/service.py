"""Builds enrich from its settings: the directory follower, and the enrichment stage on the
transactional loop."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from services.common.kafka import make_consumer, make_producer
from services.common.observability import lag_from_statistics
from services.common.records import (
    EnrichedStayEvent,
    Practitioner,
    StayEvent,
    UnroutableStayEvent,
)
from services.common.runner import ServiceThreads
from services.common.serde import RecordSerde, make_registry_client
from services.common.settings import Settings
from services.common.transact import TransactionalLoop
from services.enrich.config import EnrichConfig
from services.enrich.directory import PractitionerTable
from services.enrich.processor import Enricher, EnrichSerdes


@dataclass
class EnrichService:
    settings: Settings
    config: EnrichConfig
    log: structlog.stdlib.BoundLogger

    def __post_init__(self) -> None:
        self.threads = ServiceThreads("enrich", self.log)

    def start(self) -> PractitionerTable:
        registry = make_registry_client(self.settings)
        directory = PractitionerTable(
            self.settings,
            self.config.practitioners_topic,
            RecordSerde(registry, Practitioner),
            self.log.bind(part="directory"),
        )
        enricher = Enricher(
            config=self.config,
            directory=directory,
            serdes=EnrichSerdes(
                event=RecordSerde(registry, StayEvent),
                enriched=RecordSerde(registry, EnrichedStayEvent),
                unroutable=RecordSerde(registry, UnroutableStayEvent),
            ),
            log=self.log.bind(part="processor"),
        )
        loop = TransactionalLoop(
            stage=enricher,
            consumer=make_consumer(
                self.settings,
                "enrich",
                self.config.group_id,
                stats_cb=lag_from_statistics("enrich"),
                **{"statistics.interval.ms": 5000},
            ),
            producer=make_producer(
                self.settings, "enrich", **{"transactional.id": self.config.transactional_id}
            ),
            dead_letter_topic=self.config.dead_letter_topic,
            log=self.log.bind(part="processor"),
        )
        self.threads.health_checks["directory_loaded"] = lambda: directory.wait_loaded(0)
        self.threads.spawn("directory", directory.run)
        self.threads.spawn("processor", lambda stop: enricher.run(loop, stop))
        return directory
