"""Wiring of the analytics worker: the faust app, its two agents and windowed tables, and the
PostgreSQL mirror, built from the settings; ``main`` runs it (``python -m services.analytics``).

Two stages, because a series (metric, establishment, dimensions) gathers events from every
input partition while a faust table partition only sees its own stream partition:

1. ``observe`` reads ``stays.enriched``, ``stays.unroutable`` and ``notifications.status``,
   decodes each record into observations (``counting``), drops those too late for their
   windows, and writes the rest to the internal topic ``<group>-observations`` keyed by series;
2. ``count`` reads that topic, adds each observation's identity to the set of its series in the
   hourly and the daily tumbling tables (event time, ``expires`` a few days), and publishes the
   set's size as an ``AnalyticsCount`` on the metric's compacted topic.

Why a replay never counts twice (every input is at-least-once, and so is this worker): a window
holds the set of the identities it has seen (event ids; for notices, notification id and final
status), never a bare number. Reading a record again adds nothing to a set, and the count is
published again unchanged. The set is written back and the count published on every
observation, even a repeated one, so that a crash between the table's changelog and the
published record is mended by the replay that follows it. Discharges by Covid-19 status keep
the latest word on each movement instead (``LatestIds``): a correction moves a discharge to its
new status, a cancellation takes it out, in whatever order the words are read. Upstream
deduplication decides what is the same stay event; this worker only absorbs the redelivery of
one record.

Stay events are counted from both stay topics: an unroutable event is a real stay event that no
GP could receive; it counts in ``stay_events`` like any other, and also in
``unroutable_stay_events``. An event enriched again after a directory update keeps its id and
counts once in ``stay_events``.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import cast

import faust
import structlog
from faust.tables.wrappers import WindowWrapper

from services.analytics.config import AnalyticsConfig
from services.analytics.counting import (
    COVID_DISCHARGES,
    NOTIFICATIONS,
    SKIPPED_NOTIFICATIONS,
    STAY_EVENTS,
    UNROUTABLE_STAY_EVENTS,
    EventClock,
    Granularity,
    IdSet,
    Lateness,
    LatestIds,
    Observation,
    count_key,
    count_record,
    window_start_ms,
)
from services.analytics.intake import RecordReader, Undecodable, dead_letter_headers, readers
from services.analytics.mirror import SqlMirror
from services.common.faust_apps import (
    make_faust_app,
    quiet_client_logging,
    replication_factor,
    run_worker,
)
from services.common.gapless import StreamRecord, gapless_intake
from services.common.kafka import make_admin
from services.common.logging import configure_logging
from services.common.observability import PROCESSED
from services.common.runner import ServiceThreads
from services.common.serde import AvroSerde, make_registry_client
from services.common.settings import Settings

SERVICE = "analytics"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def build_app(
    settings: Settings,
    config: AnalyticsConfig,
    replication: int,
    log: structlog.stdlib.BoundLogger,
) -> faust.App:
    app = make_faust_app(
        settings,
        config.group_id,
        data_dir=config.data_dir,
        partitions=config.partitions,
        replication=replication,
        commit_interval=config.commit_interval.total_seconds(),
        session_timeout=config.session_timeout.total_seconds(),
        web_port=config.web_port,
    )
    registry = make_registry_client(settings)
    reader = RecordReader(
        readers(
            lambda schema: AvroSerde(registry, schema),
            config.enriched_topic,
            config.unroutable_topic,
            config.status_topic,
        ),
        log,
    )
    count_serde = AvroSerde(registry, "harpicoop.AnalyticsCount")
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
    observations = app.topic(
        config.observations_topic,
        key_type=bytes,
        value_type=bytes,
        partitions=config.partitions,
        internal=True,
    )
    outputs = {name: plain_topic(name) for name in set(metric_topics.values())}
    dead_letters = plain_topic(config.dead_letter_topic)

    def windowed(name: str, granularity: Granularity) -> WindowWrapper:
        # Keys are (series, window) pairs, in JSON (no key type); values are ``IdSet`` bytes.
        table = app.Table(
            name,
            default=bytes,
            value_type=bytes,
            partitions=config.partitions,
            help=f"identities per series and {granularity.value.lower()}",
        )
        return cast(WindowWrapper, table.tumbling(granularity.seconds, expires=config.expires))

    tables = {
        Granularity.HOUR: windowed("hourly", Granularity.HOUR),
        Granularity.DAY: windowed("daily", Granularity.DAY),
    }
    clock = EventClock(config.grace, config.expires)
    tally: Counter[str] = Counter()

    def outcome(name: str) -> None:
        tally[name] += 1
        PROCESSED.labels(SERVICE, name).inc()

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

    # Both agents read through it: a record faust drops on a rebalance would be a missing count.
    intake = gapless_intake(
        app, settings, (*reader.topics, config.observations_topic), outcome, log, dead_letter
    )

    async def observe_record(message: StreamRecord) -> None:
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
        for observation in found:
            await observations.send(
                key=observation.series.encode("utf-8"), value=observation.encode()
            )
        outcome("observed")

    async def count_observation(message: StreamRecord) -> None:
        if message.value is None:
            return
        observation = Observation.decode(message.value)
        for granularity, table in tables.items():
            # The window is the one of the observation's event time, not the record's.
            in_window = table.relative_to(observation.at_ms / 1000)
            key = observation.table_key
            before = in_window[key].value()
            if observation.present is None:
                ids = IdSet.add(before, observation.identity)
                count = IdSet.count(ids)
            else:
                ids = LatestIds.apply(
                    before, observation.identity, observation.version, observation.present
                )
                count = LatestIds.count(ids)
            in_window[key] = ids
            if observation.present is not None and not LatestIds.ever_present(ids):
                # Only "absent" words so far (kept, for words that come later): nothing that
                # analysts would see.
                continue
            record = count_record(
                observation,
                granularity,
                window_start_ms(observation.at_ms, granularity),
                count,
                now_ms(),
            )
            topic = metric_topics[observation.metric]
            await outputs[topic].send(
                key=count_key(record).encode("utf-8"),
                value=count_serde.serialize(topic, record),
            )
        outcome("counted")

    @app.agent(inputs)
    async def observe(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await intake.handle(event.message, observe_record)

    @app.agent(observations)
    async def count(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await intake.handle(event.message, count_observation)

    @app.timer(config.report_interval.total_seconds())  # type: ignore[untyped-decorator]
    async def report() -> None:
        log.info("analytics.progress", counts=dict(tally))

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
    app = build_app(settings, config, replication_factor(make_admin(settings)), log)
    threads = ServiceThreads(SERVICE, log)
    threads.spawn("sql-mirror", SqlMirror(settings, config, log.bind(part="sql-mirror")).run)
    threads.serve_observability({"stream": lambda: bool(app.started and not app.crashed)})
    try:
        # faust owns the main thread and its signals until it stops.
        run_worker(app)
    finally:
        threads.stop.set()
        threads.wait()
