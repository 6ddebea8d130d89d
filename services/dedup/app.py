"""Wiring of the dedup worker: the faust app, its topics, tables and timers, built from the
settings; ``main`` runs it (``python -m services.dedup``).

State is in two RocksDB tables with changelog topics (``<group>-claims-changelog``,
``<group>-counts-changelog``, created by faust), so a restart or a rebalance keeps it. The
processing guarantee is at-least-once (faust's exactly-once is not used); ``processor`` says why
its effects are safe when a record is processed twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any, NoReturn, cast

import faust
import structlog
from faust.types import TP

from services.common.faust_apps import (
    make_faust_app,
    quiet_client_logging,
    replication_factor,
    run_worker,
)
from services.common.gapless import gapless_intake
from services.common.kafka import make_admin
from services.common.logging import configure_logging
from services.common.runner import ServiceThreads
from services.common.serde import AvroSerde, make_registry_client
from services.common.settings import Settings
from services.dedup.config import DedupConfig
from services.dedup.processor import Deduplicator, Headers
from services.dedup.replays import RecoveryWindow, ReplayFence
from services.dedup.sources import (
    TopicsNotReady,
    end_offsets,
    match_topics,
    output_partitions,
    partition_counts,
)
from services.dedup.tables import TableClaims, TableCounts, sweep

SERVICE = "dedup"

log = structlog.get_logger(SERVICE)


def stop_without_commit() -> NoReturn:
    """Leave at once, committing nothing: a restart processes the records again.

    For failures that are not the record's fault (the registry down, a write refused, a bug).
    faust's own crash path stops gracefully and may commit the offset of the record that
    failed, which would lose it.
    """
    logging.shutdown()
    os._exit(70)


def _stop_if_failed(sent: asyncio.Future[Any]) -> None:
    # faust only logs a failed send, and commits the input offsets all the same.
    error = None if sent.cancelled() else sent.exception()
    if sent.cancelled() or error is not None:
        log.error("dedup.write_failed", error=error)
        stop_without_commit()


def _as_bytes(headers: Headers) -> list[tuple[str, bytes]]:
    return [
        (name, value if isinstance(value, bytes) else (value or "").encode("utf-8"))
        for name, value in headers
    ]


def wait_for_inputs(settings: Settings, config: DedupConfig) -> tuple[tuple[str, ...], int]:
    """The input topics there are, and their partition count; waits until there is one."""
    admin = make_admin(settings)
    while True:
        counts = partition_counts(admin)
        partitions = output_partitions(counts, config.output_topic, config.dead_letter_topic)
        matched = match_topics(counts, config.input_pattern, partitions)
        for name, count in matched.mismatched.items():
            log.error("dedup.input_not_read", topic=name, partitions=count, expected=partitions)
        if matched.usable:
            return matched.usable, partitions
        log.warning("dedup.no_input_yet", pattern=config.input_pattern)
        time.sleep(config.topic_refresh.total_seconds())


def build_app(
    settings: Settings,
    config: DedupConfig,
    inputs: tuple[str, ...],
    partitions: int,
    replication: int,
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
    )
    app.conf.consumer_group_instance_id = config.instance_id
    admin = make_admin(settings)
    source = app.topic(*inputs, key_type=bytes, value_type=bytes)
    # The agent works on clones of this topic that share this list: extending it in place
    # (``follow_new_inputs``) is how new topics join the running subscription.
    input_names = list(source.topics)
    source.topics = input_names
    outputs = {
        name: app.topic(name, key_type=bytes, value_type=bytes, internal=False)
        for name in (config.output_topic, config.dead_letter_topic)
    }
    claims_table = app.Table("claims", key_type=bytes, value_type=bytes, partitions=partitions)
    counts = TableCounts(
        app.Table("counts", key_type=bytes, value_type=bytes, partitions=partitions)
    )
    fence = ReplayFence(settings, config.output_topic)
    window = RecoveryWindow()

    async def send(
        topic: str, key: bytes | None, value: bytes | None, partition: int | None, headers: Headers
    ) -> None:
        sent = await outputs[topic].send(
            key=key, value=value, partition=partition, headers=_as_bytes(headers)
        )
        cast(asyncio.Future[Any], sent).add_done_callback(_stop_if_failed)

    deduplicator = Deduplicator(
        config=config,
        serde=AvroSerde(make_registry_client(settings), "harpicoop.StayEvent"),
        claims=TableClaims(claims_table),
        counts=counts,
        send=send,
        already_written=fence.already_written,
        window=window,
    )
    intake = gapless_intake(
        app, settings, input_names, deduplicator.outcome, log, deduplicator.dead_letter_poison
    )

    @app.agent(source)
    async def deduplicate(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            record = event.message
            try:
                await intake.handle(record, deduplicator.handle)
            except Exception:
                log.exception("dedup.failed", source=f"{record.topic}/{record.partition}")
                stop_without_commit()

    async def note_recovery_window(_app: faust.App, assigned: set[TP], **_: Any) -> None:
        # Streams are paused until this returns: no record is processed before the window is set.
        mine = [(tp.topic, tp.partition) for tp in assigned if tp.topic in input_names]
        window.reset(await asyncio.to_thread(end_offsets, admin, mine))
        fence.forget()

    app.on_partitions_assigned.connect(cast(Any, note_recovery_window))

    async def follow_new_inputs() -> None:
        counts_now = await asyncio.to_thread(partition_counts, admin)
        matched = match_topics(counts_now, config.input_pattern, partitions)
        new = sorted(set(matched.usable) - set(input_names))
        for name, count in matched.mismatched.items():
            log.error("dedup.input_not_read", topic=name, partitions=count, expected=partitions)
        if new:
            log.info("dedup.new_inputs", topics=new)
            input_names.extend(new)
            conductor: Any = app.topics
            # faust waits this long before resubscribing, to gather changes (45 s by default).
            conductor._resubscribe_sleep_lock_seconds = config.resubscribe_delay.total_seconds()
            conductor._flag_changes()

    async def forget_expired_claims() -> None:
        removed = await sweep(app, claims_table, deduplicator.latest_received_ms, config.horizon)
        if removed:
            log.info("dedup.claims_expired", removed=removed)

    async def report() -> None:
        log.info(
            "dedup.counts",
            inputs=len(input_names),
            this_run=dict(deduplicator.outcomes),
            totals=counts.totals(),
        )

    app.timer(config.topic_refresh.total_seconds())(follow_new_inputs)
    app.timer(config.sweep_interval.total_seconds())(forget_expired_claims)
    app.timer(config.report_interval.total_seconds())(report)
    return app


def main() -> None:
    settings = Settings.from_env(principal="dedup")
    config = DedupConfig.from_env()
    threads = ServiceThreads(SERVICE, configure_logging(SERVICE))
    # Every log line names the service, whichever module or task it comes from.
    structlog.contextvars.bind_contextvars(service=SERVICE)
    quiet_client_logging()
    try:
        inputs, partitions = wait_for_inputs(settings, config)
    except TopicsNotReady as error:
        log.error("dedup.not_started", error=error)
        sys.exit(2)
    log.info("dedup.starting", inputs=list(inputs), partitions=partitions, group=config.group_id)
    app = build_app(settings, config, inputs, partitions, replication_factor(make_admin(settings)))
    threads.serve_observability({"stream": lambda: bool(app.started and not app.crashed)})
    run_worker(app)
