"""The input topics: every topic whose name matches the configured pattern, found on the broker.

faust-streaming 0.15 accepts ``app.topic(pattern=...)`` but never subscribes to it (its Kafka
driver says "pattern does not work"), so dedup resolves the pattern itself: at start-up, then
every ``topic_refresh``, adding new matching topics to the running subscription.

Every input topic must have as many partitions as the output topic and the tables: a stay's
events, its claims and its unique events then share one partition number end to end, and faust
assigns the same partition of every input topic to one worker with its table partition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]


class TopicsNotReady(RuntimeError):
    """The output or dead-letter topic is missing."""


@dataclass(frozen=True)
class MatchedTopics:
    usable: tuple[str, ...]
    """Matching topics with the expected number of partitions, sorted."""
    mismatched: dict[str, int]
    """Matching topics with another number of partitions: not read, reported."""


def partition_counts(admin: AdminClient, timeout: float = 30.0) -> dict[str, int]:
    metadata = admin.list_topics(timeout=timeout)
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()}


def match_topics(counts: dict[str, int], pattern: str, partitions: int) -> MatchedTopics:
    regex = re.compile(pattern)
    matching = {name: count for name, count in counts.items() if regex.fullmatch(name)}
    return MatchedTopics(
        usable=tuple(sorted(name for name, count in matching.items() if count == partitions)),
        mismatched={name: count for name, count in matching.items() if count != partitions},
    )


def output_partitions(counts: dict[str, int], output: str, dead_letters: str) -> int:
    """The number of partitions every input must have: the output topic's."""
    for name in (output, dead_letters):
        if name not in counts:
            raise TopicsNotReady(f"topic {name} does not exist (make up creates it)")
    return counts[output]


def end_offsets(
    admin: AdminClient, partitions: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """Where each partition ends now."""
    wanted = {
        TopicPartition(topic, partition): OffsetSpec.latest()  # type: ignore[no-untyped-call]
        for topic, partition in partitions
    }
    if not wanted:
        return {}
    futures = admin.list_offsets(wanted, request_timeout=30)
    return {
        (tp.topic, tp.partition): future.result(timeout=60).offset for tp, future in futures.items()
    }
