"""Builds dedup from its settings: its topics checked (the claims changelog created if missing),
the dedup stage on the transactional loop, subscribed to ``input_pattern`` by librdkafka."""

from __future__ import annotations

import sys

import structlog
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from services.common.kafka import make_admin, make_consumer, make_producer
from services.common.observability import lag_from_statistics
from services.common.records import StayEvent
from services.common.runner import ServiceThreads
from services.common.serde import RecordSerde, make_registry_client
from services.common.settings import Settings
from services.common.topics import TopicSpec, ensure_topics
from services.common.transact import TransactionalLoop, read_to_end
from services.dedup.claims import Change
from services.dedup.config import DedupConfig
from services.dedup.processor import Deduplicator, changelog_records

SERVICE = "dedup"


class TopicsNotReady(RuntimeError):
    """The output or dead-letter topic is missing, or the changelog does not match the output."""


def prepare_topics(admin: AdminClient, config: DedupConfig, timeout: float = 30.0) -> int:
    """The output's partition count, which the inputs and the changelog must share; creates the
    changelog when it is missing (``make up`` creates the platform's own, a test's group has
    one of its own)."""
    metadata = admin.list_topics(timeout=timeout)
    for name in (config.output_topic, config.dead_letter_topic):
        if name not in metadata.topics:
            raise TopicsNotReady(f"topic {name} does not exist (make up creates it)")
    partitions = len(metadata.topics[config.output_topic].partitions)
    claims = metadata.topics.get(config.claims_topic)
    if claims is None:
        ensure_topics(
            admin,
            [TopicSpec(config.claims_topic, None, partitions, compacted=True, retention_ms=0)],
        )
    elif len(claims.partitions) != partitions:
        raise TopicsNotReady(
            f"{config.claims_topic} has {len(claims.partitions)} partitions, "
            f"{config.output_topic} {partitions}: they must be equal"
        )
    return partitions


def start(settings: Settings, log: structlog.stdlib.BoundLogger) -> ServiceThreads:
    config = DedupConfig.from_env()
    threads = ServiceThreads(SERVICE, log)
    admin = make_admin(settings)
    try:
        partitions = prepare_topics(admin, config)
    except TopicsNotReady as error:
        log.error("dedup.not_started", error=str(error))
        sys.exit(2)
    # Reads the changelog on assignment only: never subscribes, never commits.
    restorer = make_consumer(settings, "dedup-restore", f"{config.group_id}-restore")

    def read_changelog(numbers: list[int]) -> dict[int, list[Change]]:
        places = [TopicPartition(config.claims_topic, number) for number in numbers]
        return changelog_records(read_to_end(restorer, places))

    def partition_count(topic: str) -> int:
        return len(admin.list_topics(topic, timeout=30).topics[topic].partitions)

    deduplicator = Deduplicator(
        config=config,
        serde=RecordSerde(make_registry_client(settings), StayEvent),
        partitions=partitions,
        read_changelog=read_changelog,
        partition_count=partition_count,
        log=log.bind(part="processor"),
    )
    loop = TransactionalLoop(
        stage=deduplicator,
        consumer=make_consumer(
            settings,
            SERVICE,
            config.group_id,
            # Partition N of every raw topic to one member, the member that owns changelog
            # partition N (``processor``): range hands out each topic's partitions in the same
            # order to the same members, where the default mix of range and round-robin
            # (cooperative or not) could give a topic's partition N to another member.
            **{
                "partition.assignment.strategy": "range",
                "group.instance.id": config.instance_id,
                "session.timeout.ms": int(config.session_timeout.total_seconds() * 1000),
                "topic.metadata.refresh.interval.ms": int(
                    config.topic_refresh.total_seconds() * 1000
                ),
                "statistics.interval.ms": 5000,
            },
            stats_cb=lag_from_statistics(SERVICE),
        ),
        producer=make_producer(settings, SERVICE, **{"transactional.id": config.instance_id}),
        dead_letter_topic=config.dead_letter_topic,
        log=log.bind(part="processor"),
        batch_size=config.batch_size,
    )
    log.info(
        "dedup.starting",
        pattern=config.input_pattern,
        partitions=partitions,
        group=config.group_id,
        claims=config.claims_topic,
    )
    # librdkafka takes a subscription starting with "^" as a regular expression and follows
    # the topics that match, new ones included, at each metadata refresh.
    pattern = "^" + config.input_pattern.removeprefix("^").removesuffix("$") + "$"
    threads.spawn("processor", lambda stop: loop.run(stop, [pattern]))
    return threads
