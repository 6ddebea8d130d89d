"""Builds the notify service from its settings and runs its threads until asked to stop.

Threads: one intake (Kafka → ledger; unroutable events → the worklist), ``NOTIFY_SENDERS``
delivery workers (ledger → SMTP; a refusal → the chain's next step), one outbox relay
(statuses → ``notifications.status``), one sweeper expiring interrupted hand-offs, one
withdrawing the waiting notices of patients who objected, the retention timer purging rendered
messages ``NOTIFY_RETENTION_DAYS`` after their notice's final status, and the receipts reader
(``receipts_reader``: delivery reports, read receipts and bounces from the platform's mailbox
over IMAP, a bounce → the chain's next step, unless ``NOTIFY_RECEIPTS_READER=off``). Each has
its own database connection.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import structlog

from services.common import outbox
from services.common.consume import BatchConsumer
from services.common.db import apply_migrations, connect
from services.common.deadletter import DeadLetters
from services.common.establishments import load_establishments
from services.common.kafka import make_consumer, make_producer
from services.common.observability import lag_from_statistics
from services.common.paths import PROJECT_ROOT
from services.common.records import (
    CovidFollowup,
    EnrichedStayEvent,
    NotificationStatus,
    UnroutableStayEvent,
)
from services.common.retention import Purge, purge_periodically
from services.common.runner import ServiceThreads
from services.common.serde import RecordSerde, make_registry_client
from services.common.settings import Settings
from services.notify import ledger
from services.notify.config import NotifyConfig
from services.notify.delivery import DeliveryWorker
from services.notify.finess import load_finess_names
from services.notify.intake import Intake
from services.notify.privacy import purge_stays, withdraw_withheld
from services.notify.receipts_reader import ReceiptsReader
from services.notify.sensitivity import load_policy
from services.notify.smtp import SmtpSender
from services.notify.status import OUTBOX_OWNER, StatusRecorder
from services.notify.wording import Vocabulary, load_units, places

MIGRATIONS = PROJECT_ROOT / "services" / "notify" / "migrations"


@dataclass
class NotifyService:
    settings: Settings
    config: NotifyConfig
    log: structlog.stdlib.BoundLogger
    statuses: StatusRecorder | None = None

    def __post_init__(self) -> None:
        self.threads = ServiceThreads("notify", self.log)

    def start(self) -> None:
        with connect(self.settings) as conn:
            outbox.migrate(conn)
            apply_migrations(conn, "notify", MIGRATIONS)
        registry = make_registry_client(self.settings)
        statuses = StatusRecorder(
            RecordSerde(registry, NotificationStatus), self.config.status_topic
        )
        self.statuses = statuses
        producer = make_producer(self.settings, "notify")
        dead_letters = DeadLetters(producer, "notify", self.config.dead_letter_topic)
        establishments = load_establishments()
        names = {item.code: item.name for item in establishments}
        # Reference data read once at start, as establishments.csv is: names (about 100,000 in
        # a national FINESS extract, half a second to read) that only the rendering needs; a
        # newer file takes effect when notify restarts.
        vocabulary = Vocabulary(
            units=load_units(self.config.units_file),
            places=places(establishments, load_finess_names(self.config.finess_extract)),
        )
        intake_conn = connect(self.settings)
        intake = Intake(
            config=self.config,
            sender_address=self.settings.smtp_from,
            conn=intake_conn,
            establishment_names=names,
            statuses=statuses,
            log=self.log.bind(part="intake"),
            vocabulary=vocabulary,
            sensitivity=load_policy(self.config.sensitivity_file),
        )
        consumer = BatchConsumer(
            consumer=make_consumer(
                self.settings,
                "notify-intake",
                self.config.group_id,
                stats_cb=lag_from_statistics("notify"),
                **{"statistics.interval.ms": 5000},
            ),
            topics={
                self.config.input_topic: RecordSerde(registry, EnrichedStayEvent),
                self.config.followups_topic: RecordSerde(registry, CovidFollowup),
                self.config.unroutable_topic: RecordSerde(registry, UnroutableStayEvent),
            },
            conn=intake_conn,
            dead_letters=dead_letters,
            handle=intake.handle,
            handle_tombstone=intake.forget,
            hooks=intake,
            log=self.log.bind(part="intake"),
        )
        self.threads.spawn(
            "intake", lambda stop: consumer.run(stop, batch_size=self.config.intake_batch)
        )
        for index in range(self.config.senders):
            worker = DeliveryWorker(
                config=self.config,
                sender_address=self.settings.smtp_from,
                conn=connect(self.settings, autocommit=True),
                smtp=SmtpSender(self.settings),
                dead_letters=DeadLetters(
                    make_producer(self.settings, f"notify-dlq-{index}"),
                    "notify",
                    self.config.dead_letter_topic,
                ),
                statuses=statuses,
                log=self.log.bind(part=f"sender-{index}"),
            )
            self.threads.spawn(f"sender-{index}", worker.run)
        relay = outbox.OutboxRelay(
            connect(self.settings),
            make_producer(self.settings, "notify-status"),
            OUTBOX_OWNER,
            self.log.bind(part="status"),
        )
        self.threads.spawn("status", relay.run)
        if self.config.receipts_reader.lower() != "off":
            reader = ReceiptsReader(
                settings=self.settings,
                conn=connect(self.settings, autocommit=True),
                statuses=statuses,
                log=self.log.bind(part="receipts"),
                poll_interval=self.config.receipts_poll_interval,
                unconfirmed_after=self.config.dsn_window,
                retention=self.config.retention,
                purge_interval=self.config.purge_interval,
            )
            self.threads.spawn("receipts", reader.run)
        self.threads.spawn("sweeper", self._sweep)
        self.threads.spawn("withheld", self._withdraw_withheld)
        self.threads.spawn("retention", self._purge)
        self.log.info(
            "notify started", input_topic=self.config.input_topic, senders=self.config.senders
        )

    def _sweep(self, stop: threading.Event) -> None:
        assert self.statuses is not None  # set by start()
        statuses = self.statuses
        with connect(self.settings, autocommit=True) as conn:
            while not stop.is_set():
                expired = ledger.expire_stale_claims(conn, statuses, self.config.sending_lease)
                if expired:
                    self.log.error("interrupted deliveries marked uncertain", count=expired)
                stop.wait(min(30.0, self.config.sending_lease.total_seconds() / 2))

    def _withdraw_withheld(self, stop: threading.Event) -> None:
        """Notices an objection held (the operator's record_opposition) become skipped with the
        reason, each status published: the function itself cannot serialise a status."""
        assert self.statuses is not None  # set by start()
        statuses = self.statuses
        with connect(self.settings, autocommit=True) as conn:
            while not stop.is_set():
                with conn.transaction():
                    withdrawn = withdraw_withheld(conn, statuses)
                if withdrawn:
                    self.log.info("withheld notices withdrawn", count=withdrawn)
                stop.wait(self.config.withheld_interval)

    def _purge(self, stop: threading.Event) -> None:
        with connect(self.settings, autocommit=True) as conn:
            messages = Purge(
                "notice messages",
                lambda limit: ledger.purge_messages(conn, self.config.retention, limit),
                self.config.purge_batch,
            )
            stays = Purge(
                "stay protections",
                lambda limit: purge_stays(conn, self.config.retention, limit),
                self.config.purge_batch,
            )
            purge_periodically(
                stop,
                [messages, stays],
                self.config.purge_interval,
                self.log.bind(part="retention"),
            )
