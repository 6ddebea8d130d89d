"""Consumer lag per group, read from the broker: what each service still has to read.

Offsets are not records: behind a transactional producer (enrich) each transaction ends with a
commit marker in every partition it wrote, an offset no consumer is ever handed. A group that
has read everything stands before the last marker, one offset short of the end. So where a
partition is only a few offsets behind, those offsets are read to count the records really
there; far behind, the offsets are the measure (a marker or two make no difference there).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from services.common.kafka import CommittedOffsets, Partition, make_admin, make_consumer
from services.common.settings import Settings


@dataclass(frozen=True)
class GroupLag:
    group: str
    lag: int
    partitions: int


class LagReader:
    """Reads the lag of consumer groups, again and again with the same Kafka handles.

    Use it from one thread at a time (the dashboard gives it a thread of its own) and close it
    when done; ``consumer_lag`` is the one-off reading.

    ``read_records=False`` is for a reader that may see offsets but no record (the dashboard's
    principal): the lag is then the offsets still ahead, so a group behind a transactional
    producer shows the commit markers it stands before (at most one per partition when idle).
    """

    def __init__(self, settings: Settings, *, read_records: bool = True) -> None:
        self.settings = settings
        self.read_records = read_records
        self.committed = CommittedOffsets(settings, "harpicoop-lag")
        self.watermarks = make_consumer(settings, "harpicoop-lag", "harpicoop-lag")

    def close(self) -> None:
        self.committed.close()
        self.watermarks.close()

    def __enter__(self) -> LagReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def groups(self) -> list[str]:
        """Every consumer group the brokers know (ListGroups is asked of each broker, not of
        a group coordinator)."""
        # Held until the answer is in: a client destroyed meanwhile answers nothing (_DESTROY),
        # which a signed-in connection, slower to open, runs into every time.
        admin = make_admin(self.settings)
        listed = admin.list_consumer_groups(request_timeout=10).result()
        return sorted(item.group_id for item in listed.valid)

    def read(self, groups: Iterable[str] | None = None) -> list[GroupLag]:
        """For each consumer group (all by default), records behind the end of its partitions."""
        groups = self.groups() if groups is None else list(groups)
        # Low and high watermarks, asked once per partition whichever groups read it.
        bounds: dict[Partition, tuple[int, int]] = {}

        def ends(key: Partition) -> tuple[int, int]:
            if key not in bounds:
                low, high = self.watermarks.get_watermark_offsets(TopicPartition(*key), timeout=10)
                bounds[key] = (low, high)
            return bounds[key]

        starts: dict[str, dict[Partition, int]] = {}
        read: dict[str, int] = {}
        for group in groups:
            committed = self.committed.of(group)
            read[group] = len(committed)
            starts[group] = {}
            for key, offset in committed.items():
                low, high = ends(key)
                start = max(offset, low)
                if start < high:
                    starts[group][key] = start
        # Partitions a group is only a few offsets behind, read once from the earliest such
        # group's offset: every group reading them (notify and covid both read
        # stays.enriched) counts its own records in the one reading.
        close: dict[Partition, int] = {}
        for behind in starts.values() if self.read_records else ():
            for key, start in behind.items():
                if ends(key)[1] - start <= EXACT_BELOW:
                    close[key] = min(start, close.get(key, start))
        found = record_offsets(
            self.watermarks, {key: (start, ends(key)[1]) for key, start in close.items()}
        )
        results = []
        for group, behind in starts.items():
            lag = 0
            for key, start in behind.items():
                offsets = found.get(key)
                if offsets is None or ends(key)[1] - start > EXACT_BELOW:
                    lag += ends(key)[1] - start
                else:
                    lag += sum(1 for offset in offsets if offset >= start)
            results.append(GroupLag(group, lag, read[group]))
        return results


def consumer_lag(settings: Settings, groups: Iterable[str] | None = None) -> list[GroupLag]:
    """One reading of the lag of consumer groups (all by default)."""
    with LagReader(settings) as reader:
        return reader.read(groups)


EXACT_BELOW = 50
"""A partition at most this many offsets behind has its records counted one by one."""


def record_offsets(
    consumer: Consumer, spans: dict[Partition, tuple[int, int]], timeout: float = 5.0
) -> dict[Partition, list[int]]:
    """The offsets of the records a consumer is handed in each ``[start, end)`` span
    (transaction markers and aborted records are not); a span not read to its end within
    ``timeout`` is left out."""
    if not spans:
        return {}
    found: dict[Partition, list[int]] = {key: [] for key in spans}
    consumer.assign(
        [TopicPartition(topic, part, start) for (topic, part), (start, _) in spans.items()]
    )
    pending = set(spans)
    deadline = time.monotonic() + timeout
    try:
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.2):
                key = (message.topic() or "", message.partition() or 0)
                offset = message.offset()
                if (
                    message.error() is None
                    and key in spans
                    and offset is not None
                    and offset < spans[key][1]
                ):
                    found[key].append(offset)
            positions = consumer.position([TopicPartition(t, p) for t, p in pending])
            for place in positions:
                key = (place.topic, place.partition)
                # Past the last record, the reader also steps over the markers.
                if place.offset >= spans[key][1]:
                    pending.discard(key)
    finally:
        consumer.unassign()
    return {key: offsets for key, offsets in found.items() if key not in pending}
