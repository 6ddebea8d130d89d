"""Builds the covid follow-up service from its settings and runs it.

Threads: intake (stay events → cases, and patient merges → cases moved to the survivor, through
``BatchConsumer``), the timer (reminders and
completions, from the database, so a restart loses none), the retention timer (cases deleted
``COVID_RETENTION_DAYS`` after closure, a tombstone each), and the outbox relay (case states and
tombstones → ``covid.followups``, which notify reads to write to the GP).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import structlog

from services.common import outbox
from services.common.consume import BatchConsumer
from services.common.db import apply_migrations, connect
from services.common.deadletter import DeadLetters
from services.common.kafka import make_consumer, make_producer
from services.common.observability import lag_from_statistics
from services.common.outbox import Conn
from services.common.paths import PROJECT_ROOT
from services.common.records import (
    CareRole,
    CovidFollowup,
    EnrichedStayEvent,
    PatientMerge,
    Recipient,
    StayEvent,
    UnroutableStayEvent,
)
from services.common.retention import Purge, purge_periodically
from services.common.runner import ServiceThreads
from services.common.serde import RecordSerde, make_registry_client
from services.common.settings import Settings
from services.covid import cases
from services.covid.config import CovidConfig
from services.covid.rules import Effect, as_survivor, effects, merged_record, record_of

MIGRATIONS = PROJECT_ROOT / "services" / "covid" / "migrations"


class CaseKeeper:
    """Applies the rules to each stay event and patient merge, within the batch's transaction."""

    def __init__(
        self,
        conn: Conn,
        publisher: cases.FollowupPublisher,
        config: CovidConfig,
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        self.conn = conn
        self.publisher = publisher
        self.config = config
        self.log = log

    def handle(
        self, _topic: str, value: EnrichedStayEvent | UnroutableStayEvent | PatientMerge
    ) -> None:
        match value:
            case PatientMerge():
                self._merge(value)
            case EnrichedStayEvent():
                gp = next((r for r in value.recipients if r.role is CareRole.ODRP), None)
                self._stay_event(value.event, gp)
            case UnroutableStayEvent():
                self._stay_event(value.event, None)

    def _merge(self, merge: PatientMerge) -> None:
        merged = merged_record(merge)
        if merged is None:
            return
        cases.record_merge(self.conn, merged, merge.patient, merge.event_id)
        moved = cases.move_cases(self.conn, self.publisher, merged, merge.patient)
        if moved:
            self.log.info(
                "follow-up cases moved to the surviving patient",
                event_id=merge.event_id,
                cases=moved,
            )

    def _stay_event(self, event: StayEvent, gp: Recipient | None) -> None:
        # An event of a record merged away (sent before the merge, arrived after it): the
        # survivor's, so that it finds, and opens, the survivor's cases.
        survivor = cases.survivor_of(self.conn, record_of(event.establishment, event.patient))
        if survivor is not None:
            event = as_survivor(event, survivor)
        for effect in effects(event):
            if effect is Effect.OPEN:
                changed = cases.open_case(
                    self.conn,
                    self.publisher,
                    event,
                    gp,
                    self.config.reminder_delay,
                    self.config.complete_after,
                )
            elif effect is Effect.CLOSE_CANCELLED:
                changed = cases.close_cancelled(self.conn, self.publisher, event)
            else:
                changed = cases.close_for_patient(
                    self.conn,
                    self.publisher,
                    event,
                    effect.value,
                    strictly_after=effect is Effect.CLOSE_READMISSION,
                )
            if changed:
                self.log.info(
                    "follow-up cases changed",
                    event_id=event.event_id,
                    effect=effect.name,
                    cases=changed,
                )


@dataclass
class CovidService:
    settings: Settings
    config: CovidConfig
    log: structlog.stdlib.BoundLogger

    def __post_init__(self) -> None:
        self.threads = ServiceThreads("covid", self.log)

    def start(self) -> None:
        with connect(self.settings) as conn:
            outbox.migrate(conn)
            apply_migrations(conn, "covid", MIGRATIONS)
        registry = make_registry_client(self.settings)
        publisher = cases.FollowupPublisher(
            RecordSerde(registry, CovidFollowup), self.config.followups_topic
        )
        intake_conn = connect(self.settings)
        keeper = CaseKeeper(intake_conn, publisher, self.config, self.log.bind(part="intake"))
        consumer = BatchConsumer(
            consumer=make_consumer(
                self.settings,
                "covid-intake",
                self.config.group_id,
                stats_cb=lag_from_statistics("covid"),
                **{"statistics.interval.ms": 5000},
            ),
            topics={
                self.config.enriched_topic: RecordSerde(registry, EnrichedStayEvent),
                self.config.unroutable_topic: RecordSerde(registry, UnroutableStayEvent),
                self.config.merges_topic: RecordSerde(registry, PatientMerge),
            },
            conn=intake_conn,
            dead_letters=DeadLetters(
                make_producer(self.settings, "covid-dlq"), "covid", self.config.dead_letter_topic
            ),
            handle=keeper.handle,
            log=self.log.bind(part="intake"),
        )
        self.threads.spawn("intake", consumer.run)
        self.threads.spawn("timer", lambda stop: self._timers(stop, publisher))
        self.threads.spawn("retention", lambda stop: self._purge(stop, publisher))
        relay = outbox.OutboxRelay(
            connect(self.settings),
            make_producer(self.settings, "covid-followups"),
            cases.OUTBOX_OWNER,
            self.log.bind(part="relay"),
        )
        self.threads.spawn("relay", relay.run)
        self.log.info(
            "covid started",
            inputs=[
                self.config.enriched_topic,
                self.config.unroutable_topic,
                self.config.merges_topic,
            ],
        )

    def _timers(self, stop: threading.Event, publisher: cases.FollowupPublisher) -> None:
        with connect(self.settings, autocommit=True) as conn:
            while not stop.is_set():
                reminded = cases.remind_due(conn, publisher, self.config.complete_after)
                completed = cases.complete_due(conn, publisher)
                if reminded or completed:
                    self.log.info("follow-up timers fired", reminded=reminded, completed=completed)
                stop.wait(self.config.timer_interval)

    def _purge(self, stop: threading.Event, publisher: cases.FollowupPublisher) -> None:
        with connect(self.settings, autocommit=True) as conn:
            closed_cases = Purge(
                "closed follow-up cases",
                lambda limit: cases.purge_closed(conn, publisher, self.config.retention, limit),
                self.config.purge_batch,
            )
            merges = Purge(
                "patient merges",
                lambda limit: cases.purge_merges(conn, self.config.retention, limit),
                self.config.purge_batch,
            )
            purge_periodically(
                stop,
                [closed_cases, merges],
                self.config.purge_interval,
                self.log.bind(part="retention"),
            )
