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
import ssl
import sys
from typing import Any, NoReturn, cast

import faust
import structlog
from confluent_kafka import TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]
from faust.types import TP, TableT

from services.common.kafka import make_admin
from services.common.logging import configure_logging
from services.common.serde import AvroSerde, make_registry_client
from services.common.settings import KafkaSecurity, Settings
from services.dedup.config import DedupConfig
from services.dedup.processor import Deduplicator, Headers, InputRecord
from services.dedup.replays import RecoveryWindow, ReplayFence
from services.dedup.rules import Claim, is_expired
from services.dedup.sources import match_topics, partition_counts

log = structlog.get_logger("dedup")


class TopicsNotReady(RuntimeError):
    """The output or dead-letter topic is missing, or partitioned unlike the inputs."""


class TableClaims:
    """Claims in a faust table: bytes in, bytes out, decoded here."""

    def __init__(self, table: TableT[bytes, bytes]) -> None:
        self.table = table

    def get(self, identity: str) -> Claim | None:
        data = self.table.get(identity.encode("utf-8"))
        return None if data is None else Claim.decode(data)

    def put(self, identity: str, claim: Claim) -> None:
        self.table[identity.encode("utf-8")] = claim.encode()


class TableCounts:
    """Counters in a faust table; each partition keeps its own, the report sums them."""

    def __init__(self, table: TableT[bytes, bytes]) -> None:
        self.table = table

    def add(self, name: str) -> None:
        key = name.encode("ascii")
        self.table[key] = str(int(self.table.get(key, b"0")) + 1).encode("ascii")

    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for key, value in self.table.items():
            name = key.decode("ascii")
            totals[name] = totals.get(name, 0) + int(value)
        return totals


def stop_without_commit() -> NoReturn:
    """Leave at once, committing nothing: a restart processes the records again.

    Not the record's fault (the registry down, a write refused, a bug). faust's own crash path
    stops gracefully and may commit the offset of the record that failed, which would lose it.
    """
    logging.shutdown()
    os._exit(70)


def _stop_if_failed(sent: asyncio.Future[Any]) -> None:
    # faust only logs a failed send, and commits the input offsets all the same.
    error = None if sent.cancelled() else sent.exception()
    if sent.cancelled() or error is not None:
        log.error("dedup.write_failed", error=repr(error))
        stop_without_commit()


def broker_urls(settings: Settings) -> list[str]:
    return [f"kafka://{host.strip()}" for host in settings.kafka_bootstrap_servers.split(",")]


def broker_credentials(security: KafkaSecurity) -> Any:
    """faust's form of the platform's Kafka security settings (None for PLAINTEXT)."""
    protocol = security.protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    context = ssl.create_default_context(cafile=security.ssl_ca_location)
    if security.ssl_certificate_location:
        context.load_cert_chain(security.ssl_certificate_location, security.ssl_key_location)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=security.sasl_username,
        password=security.sasl_password,
        mechanism=security.sasl_mechanism or "PLAIN",
        ssl_context=context if protocol == "SASL_SSL" else None,
    )


def _as_bytes(headers: Headers) -> list[tuple[str, bytes]]:
    return [
        (name, value if isinstance(value, bytes) else (value or "").encode("utf-8"))
        for name, value in headers
    ]


def check_topics(counts: dict[str, int], config: DedupConfig) -> int:
    """The number of partitions every input must have: the output topic's."""
    for name in (config.output_topic, config.dead_letter_topic):
        if name not in counts:
            raise TopicsNotReady(f"topic {name} does not exist (make up creates it)")
    return counts[config.output_topic]


async def _wait_for_inputs(
    settings: Settings, config: DedupConfig
) -> tuple[tuple[str, ...], int, int]:
    """Input topics, their partition count and the replication for the changelogs."""
    admin = make_admin(settings)
    while True:
        counts = await asyncio.to_thread(partition_counts, admin)
        partitions = check_topics(counts, config)
        matched = match_topics(counts, config.input_pattern, partitions)
        for name, count in matched.mismatched.items():
            log.error("dedup.input_not_read", topic=name, partitions=count, expected=partitions)
        if matched.usable:
            brokers = len((await asyncio.to_thread(admin.list_topics, timeout=30)).brokers)
            return matched.usable, partitions, min(3, max(1, brokers))
        log.warning("dedup.no_input_yet", pattern=config.input_pattern)
        await asyncio.sleep(config.topic_refresh.total_seconds())


def build_app(
    settings: Settings,
    config: DedupConfig,
    inputs: tuple[str, ...],
    partitions: int,
    replication: int,
) -> faust.App:
    app = faust.App(
        config.group_id,
        broker=broker_urls(settings),
        broker_credentials=broker_credentials(settings.kafka_security),
        store="rocksdb://",
        datadir=str(config.data_dir / config.group_id),
        processing_guarantee="at_least_once",
        broker_commit_interval=config.commit_interval.total_seconds(),
        consumer_auto_offset_reset="earliest",
        consumer_group_instance_id=config.instance_id,
        # How long partitions of a worker that died for good wait before moving elsewhere.
        broker_session_timeout=30.0,
        producer_acks=-1,
        topic_partitions=partitions,
        topic_replication_factor=replication,
        # Values are Confluent-framed Avro and table entries are encoded here: faust moves bytes.
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=config.web_port is not None,
        web_port=config.web_port or 6066,
        autodiscover=False,
    )
    source = app.topic(*inputs, key_type=bytes, value_type=bytes)
    # The agent works on clones of this topic that share this list: extending it in place
    # (``follow_new_inputs``) is how new topics join the running subscription.
    input_names = list(source.topics)
    source.topics = input_names
    outputs = {
        name: app.topic(name, key_type=bytes, value_type=bytes, internal=False)
        for name in (config.output_topic, config.dead_letter_topic)
    }
    claims_table = app.Table(
        "claims", key_type=bytes, value_type=bytes, partitions=partitions, help="dedup claims"
    )
    counts_table = app.Table(
        "counts", key_type=bytes, value_type=bytes, partitions=partitions, help="drop counts"
    )
    counts = TableCounts(counts_table)
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

    @app.agent(source)
    async def deduplicate(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            record: InputRecord = event.message
            try:
                await deduplicator.handle(record)
            except Exception:
                log.exception("dedup.failed", source=f"{record.topic}/{record.partition}")
                stop_without_commit()

    async def note_recovery_window(_app: faust.App, assigned: set[TP], **_: Any) -> None:
        # Streams are paused until this returns: no record is processed before the window is set.
        inputs = [tp for tp in assigned if tp.topic in input_names]
        window.reset(await asyncio.to_thread(end_offsets, settings, inputs))
        fence.forget()

    app.on_partitions_assigned.connect(cast(Any, note_recovery_window))

    async def follow_new_inputs() -> None:
        counts_now = await asyncio.to_thread(partition_counts, make_admin(settings))
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
        removed = await sweep(app, claims_table, deduplicator, config)
        if removed:
            log.info("dedup.claims_expired", removed=removed)

    async def report() -> None:
        log.info(
            "dedup.counts",
            inputs=len(input_names),
            passed=dict(deduplicator.passed),
            **counts.totals(),
        )

    app.timer(config.topic_refresh.total_seconds())(follow_new_inputs)
    app.timer(config.sweep_interval.total_seconds())(forget_expired_claims)
    app.timer(config.report_interval.total_seconds())(report)

    return app


async def sweep(
    app: faust.App, table: TableT[bytes, bytes], deduplicator: Deduplicator, config: DedupConfig
) -> int:
    """Delete claims older than the horizon from the active partitions (store and changelog).

    faust tables offer no expiry for plain keys, so this reaches into the RocksDB store. Each
    key is read again just before it is deleted: the stream may have renewed it meanwhile.
    """
    store: Any = table.data
    changelog = table.changelog_topic.get_topic_name()
    removed = 0
    for tp in sorted(app.assignor.assigned_actives()):
        latest = deduplicator.latest_received_ms.get(tp.partition)
        if tp.topic != changelog or latest is None:
            continue
        db = store._db_for_partition(tp.partition)
        expired = [
            key
            for key, value in db.items()
            if key != store.offset_key and is_expired(Claim.decode(value), latest, config.horizon)
        ]
        for index, key in enumerate(expired):
            value = db.get(key)
            if value is not None and is_expired(Claim.decode(value), latest, config.horizon):
                db.delete(key)
                table.send_changelog(tp.partition, key, None)
                removed += 1
            if index % 1000 == 999:
                await asyncio.sleep(0)
    return removed


def end_offsets(settings: Settings, partitions: list[TP]) -> dict[tuple[str, int], int]:
    if not partitions:
        return {}
    admin = make_admin(settings)  # referenced until the futures are done, or they never are
    futures = admin.list_offsets(
        {
            TopicPartition(tp.topic, tp.partition): OffsetSpec.latest()  # type: ignore[no-untyped-call]
            for tp in partitions
        },
        request_timeout=30,
    )
    return {
        (tp.topic, tp.partition): future.result(timeout=60).offset for tp, future in futures.items()
    }


def main() -> None:
    settings = Settings.from_env()
    config = DedupConfig.from_env()
    configure_logging("dedup")
    # Every log line names the service, from whichever module or task it comes.
    structlog.contextvars.bind_contextvars(service="dedup")
    # httpx2 is the HTTP client inside confluent-kafka's registry client.
    for name in ("faust", "mode", "aiokafka", "kafka", "httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        inputs, partitions, replication = asyncio.run(_wait_for_inputs(settings, config))
    except TopicsNotReady as error:
        log.error("dedup.not_started", reason=str(error))
        sys.exit(2)
    log.info("dedup.starting", inputs=list(inputs), partitions=partitions, group=config.group_id)
    (config.data_dir / config.group_id).mkdir(parents=True, exist_ok=True)
    app = build_app(settings, config, inputs, partitions, replication)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, override_logging=False)
    worker.execute_from_commandline()
