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
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient


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
