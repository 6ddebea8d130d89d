"""Records that a previous run may already have written out, and whether it did.

After a crash, the records consumed since the last committed offset are processed again. Some of
them were already written to the output; their claims may or may not have reached the changelog
(the output and the changelog are written independently), so the claims alone cannot tell.

- ``RecoveryWindow``: when partitions are assigned, every input partition's end offset is noted;
  only records before it can have been processed by an earlier run.
- ``ReplayFence``: for those records, the output partition is read back from a minute (room for
  clock steps) before the record's own timestamp — its output, if any, was written after it was
  produced — to the end, and the ``harpicoop.source`` headers say which were written. One read
  per partition serves every record of the window.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from services.common.settings import Settings
from services.common.streams import SourceRecord, read_sources

log = structlog.get_logger("dedup")

CLOCK_MARGIN = dt.timedelta(minutes=1)


class RecoveryWindow:
    def __init__(self) -> None:
        self._ends: dict[tuple[str, int], int] = {}

    def reset(self, ends: Mapping[tuple[str, int], int]) -> None:
        """After an assignment: the end offset of each assigned input partition."""
        self._ends = dict(ends)

    def may_have_been_written(self, source: SourceRecord) -> bool:
        return source.offset < self._ends.get((source.topic, source.partition), 0)


@dataclass
class _ReadBack:
    from_ms: int
    sources: frozenset[SourceRecord]


class ReplayFence:
    def __init__(self, settings: Settings, output_topic: str) -> None:
        self.settings = settings
        self.output_topic = output_topic
        self._read: dict[int, _ReadBack] = {}

    async def already_written(self, partition: int, source: SourceRecord, since_ms: int) -> bool:
        """Whether output ``partition`` holds a record made from ``source``, which was produced
        at ``since_ms`` (its output, if any, came later)."""
        start_ms = since_ms - CLOCK_MARGIN // dt.timedelta(milliseconds=1)
        read = self._read.get(partition)
        if read is None or start_ms < read.from_ms:
            result = await asyncio.to_thread(
                read_sources,
                self.settings,
                self.output_topic,
                partition,
                start_time_ms=start_ms,
            )
            read = self._read[partition] = _ReadBack(start_ms, result.sources)
            log.info(
                "dedup.output_read_back",
                partition=partition,
                records_with_source=len(result.sources),
            )
        return source in read.sources

    def forget(self) -> None:
        """After a rebalance: what another worker wrote since is unknown."""
        self._read.clear()
