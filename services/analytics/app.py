"""Wiring of the analytics worker: the faust app, its one agent and its windowed table, and the
PostgreSQL mirror, built from the settings; ``main`` runs it (``python -m services.analytics``).

One agent reads ``stays.enriched``, ``stays.unroutable`` and ``notifications.status`` in
batches (``Stream.take_events``). Each record is decoded into observations (``counting``) and
judged for lateness on its own, so that a record that cannot be read or counted is
dead-lettered alone. The batch's observations are then counted into the windows they fall in
(the count of each series per UTC hour and day, ``WindowCount``); every window the batch
changed is written once to the table (``WindowTable``) and its count published once as an
``AnalyticsCount`` on the metric's compacted topic.

A series (metric, establishment, dimensions) gathers events from every input partition, and
its count must be one number: the worker holds every input partition, and each series' state
lives in one table partition chosen from the series, with no internal topic between. The
worker therefore runs alone (``NotEveryPartition`` stops one that is not); the rate of one
worker is the rate of the service.

Why counts are exact across crashes and replays (every input is at-least-once, and so is this
worker, which commits its input offsets only after faust has flushed what it produced):

- A window's head says, per input partition, the offset up to which it has taken that
  partition's records into account (``high_water``), and its count is of exactly those. It is
  one value, written at once: the count and the marks cannot disagree. A record read again at
  or below the mark changes nothing; above it, it is counted as new.
- Distinct things count once: the identities already counted (event ids; for notices,
  notification id and final status) and the latest word on each movement (discharges by
  Covid-19 status) are the window's members. The newest ride in the head (its tail); once
  they outgrow it they are written as a chunk of their own, before the head that stops
  carrying them, in the same changelog partition; a producer keeps one partition's records
  in order, so a head that reached the changelog has its chunks there. No write grows with
  the window: a head is bounded, a chunk holds members new to it.
- The local RocksDB store may keep writes that a crash kept from the changelog. The records
  they came from were not committed, so they are read again; being under the marks, they
  change no count, and the first of them to touch a window has all its members written again
  (``WindowCount.restate``, once per window and restart), so that a store rebuilt from the
  changelog later lacks none. A chunk missing from the changelog is read as empty.
- Every window a batch touched, even only with records read again, has its count published
  again, mending a crash between the table and the published record.

Discharges by Covid-19 status keep the latest word on each movement: a correction moves a
discharge to its new status, a cancellation takes it out, in whatever order the words are read.
Upstream deduplication decides what is the same stay event; this worker only absorbs the
redelivery of one record.

Stay events are counted from both stay topics: an unroutable event is a real stay event that no
GP could receive; it counts in ``stay_events`` like any other, and also in
``unroutable_stay_events``. An event enriched again after a directory update keeps its id and
counts once in ``stay_events``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, cast

import faust
import structlog
from confluent_kafka.admin import AdminClient
from faust.tables.wrappers import WindowWrapper
from faust.types import TP

from services.analytics.config import AnalyticsConfig, AnalyticsConfigError
from services.analytics.counting import (
    COVID_DISCHARGES,
    NOTIFICATIONS,
    SKIPPED_NOTIFICATIONS,
    STAY_EVENTS,
    UNROUTABLE_STAY_EVENTS,
    EventClock,
    Granularity,
    Lateness,
    Observation,
    count_key,
    count_record,
    windows_of,
)
from services.analytics.intake import RecordReader, Undecodable, dead_letter_headers, readers
from services.analytics.mirror import SqlMirror
from services.analytics.tables import WindowId, WindowTable
from services.common.faust_apps import (
    make_faust_app,
    quiet_client_logging,
    replication_factor,
    run_worker,
    stop_without_commit,
)
from services.common.gapless import StreamRecord, gapless_intake
from services.common.kafka import make_admin
from services.common.logging import configure_logging
from services.common.observability import PROCESSED
from services.common.records import AnalyticsCount
from services.common.runner import ServiceThreads
from services.common.serde import RecordSerde, make_registry_client
from services.common.settings import Settings

SERVICE = "analytics"


class NotEveryPartition(RuntimeError):
    """This worker was not given every input partition: its counts would be of some only."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def input_partitions(admin: AdminClient, topics: Collection[str], timeout: float = 30.0) -> int:
    """The number of partitions the inputs share, which the table follows (faust writes a
    table partition from the input partition of the same number)."""
    found = admin.list_topics(timeout=timeout).topics
    counts = {topic: len(found[topic].partitions) if topic in found else 0 for topic in topics}
    if 0 in counts.values() or len(set(counts.values())) != 1:
        raise AnalyticsConfigError(f"the inputs must exist with as many partitions: {counts}")
    return next(iter(counts.values()))


@dataclass(frozen=True)
class Staged:
    """A record of the batch, read and judged, waiting to be counted."""

    source: str
    """Its input partition, ``topic/partition``."""
    offset: int
    observations: list[tuple[Observation, list[tuple[Granularity, int]]]]
    """What it counts in, each with its windows."""


def build_app(
    settings: Settings,
    config: AnalyticsConfig,
    partitions: int,
    replication: int,
    log: structlog.stdlib.BoundLogger,
) -> faust.App:
    app = make_faust_app(
        settings,
        config.group_id,
        data_dir=config.data_dir,
        partitions=partitions,
        replication=replication,
        commit_interval=config.commit_interval.total_seconds(),
        session_timeout=config.session_timeout.total_seconds(),
        web_port=config.web_port,
        # A batch writes its windows and counts at once: sent together, in fewer requests.
        producer_linger=0.02,
    )
    registry = make_registry_client(settings)
    reader = RecordReader(
        readers(
            registry,
            config.enriched_topic,
            config.unroutable_topic,
            config.status_topic,
        ),
        log,
    )
    count_serde = RecordSerde(registry, AnalyticsCount)
    metric_topics = {
        STAY_EVENTS: config.stay_events_topic,
        UNROUTABLE_STAY_EVENTS: config.stay_events_topic,
        NOTIFICATIONS: config.notifications_topic,
        SKIPPED_NOTIFICATIONS: config.notifications_topic,
        COVID_DISCHARGES: config.covid_discharges_topic,
    }

    def plain_topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, internal=False)

    inputs = app.topic(*reader.topics, key_type=bytes, value_type=bytes)
    outputs = {name: plain_topic(name) for name in set(metric_topics.values())}
    dead_letters = plain_topic(config.dead_letter_topic)
    # Keys are strings (``tables.head_key``, ``chunk_key``) within a UTC day, in JSON (no key
    # type); values are ``WindowCount`` heads and chunks.
    table = app.Table(
        "windows",
        default=bytes,
        value_type=bytes,
        partitions=partitions,
        help="counts per series and UTC hour or day, with what keeps them exact",
    )
    windows = WindowTable(
        cast(WindowWrapper, table.tumbling(Granularity.DAY.seconds, expires=config.expires)),
        partitions,
        config.enriched_topic,
    )
    clock = EventClock(config.grace, config.expires)
    tally: Counter[str] = Counter()
    in_batch: Counter[str] = Counter()
    staged: list[Staged] = []

    def outcome(name: str) -> None:
        in_batch[name] += 1

    async def dead_letter(message: StreamRecord, error: BaseException) -> None:
        log.warning(
            "analytics.dead_lettered",
            source=f"{message.topic}/{message.partition}/{message.offset}",
            error=type(error).__name__,
        )
        await dead_letters.send(
            key=message.key,
            value=message.value,
            headers=dead_letter_headers(
                message.headers, error, message.topic, message.partition, message.offset
            ),
        )
        outcome("dead_lettered")

    # A record faust drops on a rebalance would be a missing count.
    intake = gapless_intake(app, settings, reader.topics, outcome, log, dead_letter)
    # The records it reads straight from Kafka are acknowledged to faust once their batch is
    # counted: faust may commit at any await, and must not go past an uncounted record.
    acknowledge_now = intake.acknowledge
    caught_up: list[StreamRecord] = []
    intake.acknowledge = caught_up.append

    async def stage(message: StreamRecord) -> None:
        source = f"{message.topic}/{message.partition}/{message.offset}"
        try:
            found = await reader.observations(message.topic, message.value)
        except Undecodable as undecodable:
            await dead_letter(message, undecodable.error)
            return
        if not found:
            outcome("not_counted")
            return
        # The observations of one record share its event time.
        at_ms = found[0].at_ms
        lateness = clock.judge((message.topic, message.partition), at_ms, now_ms())
        if lateness is not Lateness.ON_TIME:
            log.info(
                "analytics.late_record",
                lateness=str(lateness),
                identity=found[0].identity,
                event_time_ms=at_ms,
                source=source,
            )
            outcome(f"late_{lateness}")
            return
        # Raises for a record whose counts cannot be published: it is tried again, then
        # dead-lettered, alone.
        spans = [(observation, windows_of(observation)) for observation in found]
        staged.append(Staged(f"{message.topic}/{message.partition}", message.offset, spans))
        outcome("counted")

    def count_staged() -> None:
        """Count the staged records, write each window they changed once, publish its count."""
        touched: dict[WindowId, Observation] = {}
        for item in staged:
            for observation, spans in item.observations:
                for granularity, start in spans:
                    window, count = windows.get(granularity, start, observation)
                    if count.taken_into_account(item.source, item.offset):
                        count.restate()
                    else:
                        count.apply(observation, item.source, item.offset)
                    touched[window] = observation
        staged.clear()
        windows.save(touched)
        updated_at = now_ms()
        for window, observation in touched.items():
            count = windows.count(window)
            if not count.shown:
                continue
            granularity, start, _ = window
            record = count_record(observation, granularity, start, count.count, updated_at)
            topic = metric_topics[observation.metric]
            outputs[topic].send_soon(
                key=count_key(record).encode("utf-8"),
                value=count_serde.serialize(topic, record),
            )

    @app.agent(inputs)
    async def count(stream: faust.StreamT[bytes]) -> None:
        # take_events is on faust's Stream, not on its StreamT interface.
        batches = cast(faust.Stream[bytes], stream).take_events(
            config.batch_size, within=config.batch_wait.total_seconds()
        )
        async for events in batches:
            try:
                for event in events:
                    await intake.handle(event.message, stage)
                count_staged()
            except Exception:
                # Not the records' fault (their content is dealt with in ``stage``): the batch
                # is read again after a restart, and the offset marks keep the counts exact.
                log.exception("analytics.failed")
                stop_without_commit()
            # faust acknowledges the batch's own events once this returns.
            for record in caught_up:
                acknowledge_now(record)
            caught_up.clear()
            for name, number in in_batch.items():
                PROCESSED.labels(SERVICE, name).inc(number)
            tally.update(in_batch)
            in_batch.clear()

    every_partition = {(topic, index) for topic in reader.topics for index in range(partitions)}

    async def on_assigned(_app: faust.App, assigned: set[TP], **_: Any) -> None:
        # What another worker wrote is read again from the table.
        windows.forget()
        held = {(tp.topic, tp.partition) for tp in assigned if tp.topic in reader.topics}
        if held != every_partition:
            log.error(
                "analytics.not_every_partition", held=len(held), partitions=len(every_partition)
            )
            # Raised here, between batches, faust stops the worker before it counts anything.
            raise NotEveryPartition(
                f"{len(held)} of {len(every_partition)} input partitions: analytics runs as "
                "one worker, which holds them all"
            )

    app.on_partitions_assigned.connect(cast(Any, on_assigned))

    @app.timer(config.report_interval.total_seconds())  # type: ignore[untyped-decorator]
    async def report() -> None:
        log.info("analytics.progress", counts=dict(tally), windows_in_memory=len(windows.cache))
        windows.drop_ended_before(clock.oldest_counted_ms(now_ms()))

    return app


def main() -> None:
    settings = Settings.from_env(principal="analytics")
    config = AnalyticsConfig.from_env()
    log = configure_logging(SERVICE)
    quiet_client_logging()
    log.info(
        "analytics.starting",
        inputs=[config.enriched_topic, config.unroutable_topic, config.status_topic],
        group=config.group_id,
        grace_seconds=config.grace.total_seconds(),
        expires_days=config.expires.total_seconds() / 86_400,
    )
    admin = make_admin(settings)
    inputs = (config.enriched_topic, config.unroutable_topic, config.status_topic)
    app = build_app(
        settings, config, input_partitions(admin, inputs), replication_factor(admin), log
    )
    threads = ServiceThreads(SERVICE, log)
    threads.spawn("sql-mirror", SqlMirror(settings, config, log.bind(part="sql-mirror")).run)
    threads.serve_observability({"stream": lambda: bool(app.started and not app.crashed)})
    try:
        # faust owns the main thread and its signals until it stops.
        run_worker(app)
    finally:
        threads.stop.set()
        threads.wait()
