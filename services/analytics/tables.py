"""Analytics' state in its faust table: the count of each series in each window
(``WindowCount``), read once into memory and written back once per batch that changed it.

One windowed table of UTC days holds everything (an hour's count is a key within its day, so it
expires with it). Every key of one series lives in one table partition, chosen from the series
alone: its head and its chunks go to one changelog partition, in the order they were written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from faust.tables.wrappers import WindowWrapper

from services.analytics.counting import Granularity, Observation, WindowCount
from services.common.faust_apps import in_table_partition

WindowId = tuple[Granularity, int, str]
"""Granularity, window start (ms) and the series' table key."""


def head_key(window: WindowId) -> str:
    granularity, start, table_key = window
    return f"{granularity.value}|{start}|{table_key}"


def chunk_key(window: WindowId, index: int) -> str:
    return f"{head_key(window)}#{index}"


class WindowTable:
    def __init__(self, table: WindowWrapper, partitions: int, source_topic: str) -> None:
        """``source_topic``: an input of the agent, with ``partitions`` partitions like the
        table (faust checks that a table is partitioned like what it is written from)."""
        self.table = table
        self.partitions = partitions
        self.source_topic = source_topic
        self.cache: dict[WindowId, WindowCount] = {}

    def partition_of(self, table_key: str) -> int:
        # Not hash(): it changes with every process.
        digest = hashlib.blake2b(table_key.encode("utf-8"), digest_size=4).digest()
        return int.from_bytes(digest, "big") % self.partitions

    def get(
        self, granularity: Granularity, start: int, observation: Observation
    ) -> tuple[WindowId, WindowCount]:
        """The window of ``observation`` that starts at ``start``, read from the table the
        first time."""
        window = (granularity, start, observation.table_key)
        count = self.cache.get(window)
        if count is None:
            count = self.cache[window] = self._load(window, latest=observation.present is not None)
        return window, count

    def count(self, window: WindowId) -> WindowCount:
        return self.cache[window]

    def _load(self, window: WindowId, *, latest: bool) -> WindowCount:
        key = head_key(window)
        with in_table_partition(self.partition_of(window[2]), self.source_topic):
            in_day = self.table.relative_to(window[1] / 1000)
            count = WindowCount.from_head(latest, in_day[key].value())
            # A chunk the changelog never received reads as empty: its members were written
            # again later (``WindowCount.restate``).
            count.add_chunks(
                [in_day[chunk_key(window, index)].value() for index in range(count.chunks)]
            )
        return count

    def save(self, windows: Iterable[WindowId]) -> None:
        """Write each window's head, after its new chunk if it has one: in that order in the
        changelog, so a head that survived a crash has its chunks."""
        for window in windows:
            count = self.cache[window]
            chunk, head = count.seal()
            with in_table_partition(self.partition_of(window[2]), self.source_topic):
                in_day = self.table.relative_to(window[1] / 1000)
                if chunk is not None:
                    in_day[chunk_key(window, count.chunks - 1)] = chunk
                in_day[head_key(window)] = head

    def forget(self) -> None:
        """After a rebalance: the table is read again as it is now."""
        self.cache.clear()

    def drop_ended_before(self, moment_ms: int) -> None:
        """Windows that ended before ``moment_ms`` take no more events: out of memory."""
        for window in [w for w in self.cache if w[1] + w[0].seconds * 1000 < moment_ms]:
            del self.cache[window]
