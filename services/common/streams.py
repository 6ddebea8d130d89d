"""Helpers for the stream processors: where an output record came from, and the records of a
partition read straight from Kafka.

Each record dedup writes carries a ``harpicoop.source`` header naming the input record it was
made from (``SourceRecord``), so a unique event can be traced to the raw record it passed as.
``records_between`` reads a stretch of one partition, for a processor that must handle records
its framework skipped (``services.common.gapless``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import OFFSET_END, TopicPartition

from services.common.kafka import make_consumer
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
class ReadRecord:
    """A record read straight from a partition, with what a processor needs of it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: AnyHeaders
    timestamp: float
    """When it was produced, in seconds."""


def _scan(
    settings: Settings,
    topic: str,
    partition: int,
    *,
    start_offset: int | None,
    start_time_ms: int | None,
    end_offset: int | None,
    timeout: float,
) -> tuple[list[ReadRecord], int]:
    """The records of one partition between a start (an offset, a time, or the beginning) and
    an end (or the partition's current end); and that end."""
    consumer = make_consumer(
        settings,
        "harpicoop-readback",
        f"harpicoop-readback-{uuid.uuid4().hex}",
        # Small fetches keep the memory low on a long read.
        **{"fetch.max.bytes": 8 * 1024 * 1024},
    )
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout, cached=False
        )
        end = high if end_offset is None else min(high, end_offset)
        start = low if start_offset is None else max(low, start_offset)
        if start_time_ms is not None:
            found = consumer.offsets_for_times(
                [TopicPartition(topic, partition, start_time_ms)], timeout=timeout
            )[0].offset
            start = end if found in (-1, OFFSET_END) else max(start, found)
        records: list[ReadRecord] = []
        if start >= end:
            return records, end
        consumer.assign([TopicPartition(topic, partition, start)])
        position, deadline = start, time.monotonic() + timeout
        while position < end:
            messages = consumer.consume(min(1000, end - position), timeout=1.0)
            if not messages:
                # Offsets may hold no record (transaction markers): ask where the reader stands.
                position = max(
                    position, consumer.position([TopicPartition(topic, partition)])[0].offset
                )
                if position < end and time.monotonic() > deadline:
                    raise TimeoutError(f"{topic}[{partition}]: stuck at {position} before {end}")
                continue
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.fatal() or not error.retriable():
                        raise RuntimeError(f"reading {topic}[{partition}]: {error}")
                    continue
                offset = message.offset() or 0
                position = max(position, offset + 1)
                if offset < end:
                    records.append(
                        ReadRecord(
                            topic,
                            partition,
                            offset,
                            message.key(),
                            message.value(),
                            message.headers(),
                            message.timestamp()[1] / 1000,
                        )
                    )
        return records, end
    finally:
        consumer.close()


def records_between(
    settings: Settings, topic: str, partition: int, start: int, end: int, timeout: float = 60.0
) -> list[ReadRecord]:
    """The records in ``[start, end)`` that a consumer can read (offsets may also hold
    transaction markers, aborted records, or records deleted by retention)."""
    records, _ = _scan(
        settings,
        topic,
        partition,
        start_offset=start,
        start_time_ms=None,
        end_offset=end,
        timeout=timeout,
    )
    return records
