"""Helpers for the stream processors: where an output record came from, what an output partition
already holds, and whether a failure lies in the record itself or in the platform.

Processors are at-least-once: after a crash, the records consumed since the last committed offset
are processed again. Each output record carries a ``harpicoop.source`` header naming the input
record it was made from; reading back an output partition (``read_sources``) tells a restarted
processor which of those records it had already written, so that it does not write them twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import OFFSET_END, TopicPartition
from fastavro.read import SchemaResolutionError

from services.common.kafka import make_consumer
from services.common.serde import UndecodableValue
from services.common.settings import Settings

SOURCE_HEADER = "harpicoop.source"

HeaderList = Sequence[tuple[str, str | bytes | None]]
# confluent-kafka gives a list of pairs (or a dict when produced so); faust, a list or a dict.
AnyHeaders = HeaderList | Mapping[str, str | bytes | None] | None


def header_pairs(headers: AnyHeaders) -> list[tuple[str, str | bytes | None]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


@dataclass(frozen=True, order=True)
class SourceRecord:
    """An input record's place in Kafka: what an output record was made from."""

    topic: str
    partition: int
    offset: int

    def encode(self) -> str:
        # Topic names hold only letters, digits, '.', '_' and '-': '/' cannot be ambiguous.
        return f"{self.topic}/{self.partition}/{self.offset}"

    def header(self) -> tuple[str, bytes]:
        return SOURCE_HEADER, self.encode().encode("ascii")

    @classmethod
    def decode(cls, text: str) -> SourceRecord:
        topic, partition, offset = text.rsplit("/", 2)
        return cls(topic, int(partition), int(offset))

    @classmethod
    def from_headers(cls, headers: AnyHeaders) -> SourceRecord | None:
        for name, value in header_pairs(headers):
            if name == SOURCE_HEADER and value is not None:
                text = value.decode("ascii") if isinstance(value, bytes) else value
                return cls.decode(text)
        return None


def without_source_header(headers: AnyHeaders) -> list[tuple[str, str | bytes | None]]:
    """The headers an input record carried, minus its own source (replaced by the new one)."""
    return [(name, value) for name, value in header_pairs(headers) if name != SOURCE_HEADER]


@dataclass(frozen=True)
class ReadBack:
    sources: frozenset[SourceRecord]
    """The source of every output record read."""
    end_offset: int
    """The partition's end when it was read: the next output record lands at or after it."""


def read_sources(
    settings: Settings,
    topic: str,
    partition: int,
    *,
    start_offset: int | None = None,
    start_time_ms: int | None = None,
    timeout: float = 60.0,
) -> ReadBack:
    """The sources of the records of one partition, from a start (an offset, a time, or the
    beginning) to the partition's current end. Blocking; meant for a processor's start-up."""
    consumer = make_consumer(
        settings,
        "harpicoop-readback",
        f"harpicoop-readback-{uuid.uuid4().hex}",
        # Only the headers matter; small fetches keep the memory low on a long read.
        **{"fetch.max.bytes": 8 * 1024 * 1024},
    )
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout, cached=False
        )
        start = low if start_offset is None else max(low, start_offset)
        if start_time_ms is not None:
            found = consumer.offsets_for_times(
                [TopicPartition(topic, partition, start_time_ms)], timeout=timeout
            )[0].offset
            start = high if found in (-1, OFFSET_END) else max(start, found)
        sources: set[SourceRecord] = set()
        if start >= high:
            return ReadBack(frozenset(), high)
        consumer.assign([TopicPartition(topic, partition, start)])
        position, deadline = start, time.monotonic() + timeout
        while position < high:
            messages = consumer.consume(min(1000, high - position), timeout=1.0)
            if not messages:
                # Offsets may end in a gap (transaction markers): ask where the reader stands.
                position = max(
                    position, consumer.position([TopicPartition(topic, partition)])[0].offset
                )
                if position < high and time.monotonic() > deadline:
                    raise TimeoutError(f"{topic}[{partition}]: stuck at {position} before {high}")
                continue
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.fatal() or not error.retriable():
                        raise RuntimeError(f"reading back {topic}[{partition}]: {error}")
                    continue
                position = max(position, (message.offset() or 0) + 1)
                source = SourceRecord.from_headers(message.headers())
                if source is not None:
                    sources.add(source)
        return ReadBack(frozenset(sources), high)
    finally:
        consumer.close()


def offsets_from(sources: Iterable[SourceRecord], topic: str, partition: int) -> set[int]:
    """The offsets of the sources that came from one input partition."""
    return {
        source.offset
        for source in sources
        if source.topic == topic and source.partition == partition
    }


def is_poison(error: BaseException) -> bool:
    """True when the record itself cannot be decoded: ``UndecodableValue`` (not Avro, a schema id
    the registry does not have), or the Avro reader's own errors on a body cut short or written
    with a schema that does not resolve to ours. Anything else (the registry unreachable, say)
    is the platform's failure: the record must be tried again, not dead-lettered."""
    return isinstance(
        error, UndecodableValue | SchemaResolutionError | EOFError | ValueError | IndexError
    )
