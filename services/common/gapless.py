"""Every record of a faust agent's partitions, handled once per assignment and in order, whatever
faust drops on the way.

faust 0.15.3 can let records slip past an agent. Records it fetched while its flow was
suspended (a rebalance, the tables' recovery) are dropped, and it counts on seeking back to the
committed offsets to read them again; it does not seek a partition that has no committed offset
(aiokafka's ``seek_to_committed`` skips offsets of 0 or less), so after a crash before the first
commit the records after the dropped ones arrive first and the dropped ones never come. Around a
rebalance it can also hand a record over twice.

``GaplessIntake`` follows each partition's next offset from the start of every assignment (the
group's committed offset, or the partition's beginning): a record handed over again is passed
over; a record past the next offset means records were skipped, and they are read straight
from the partition and handled first. faust is then told they are done with, so that its commit
goes past them. Handlers must still be idempotent: a record handled before a crash is handled
again after it, as at-least-once means.

A handler's failure is judged by ``services.common.poison``: an outage is waited out, the record
tried again with backoff; a record failing on its content is tried ``POISON_ATTEMPTS`` times,
then handed to ``dead_letter`` and passed, so the agent never stops on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, Protocol, cast

import faust
import structlog
from faust.types import TP, Message

from services.common.kafka import CommittedOffsets, Partition
from services.common.poison import Next, PoisonPolicy, RecordAttempts
from services.common.settings import Settings
from services.common.streams import records_between


class StreamRecord(Protocol):
    """What a handler reads of a consumed record: faust's ``Message`` and the ``ReadRecord``
    read straight from a partition both have these."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Any: ...

    @property
    def timestamp(self) -> float:
        """When the record was produced, in seconds."""
        ...


Handler = Callable[[StreamRecord], Awaitable[object]]
# The records of a partition in [start, end), read straight from Kafka.
ReadBetween = Callable[[str, int, int, int], Awaitable[Sequence[StreamRecord]]]
# Tells faust's consumer that a record it never handed over is done with.
Acknowledge = Callable[[StreamRecord], None]
# Puts a poison record on the service's dead-letter topic, with its origin and the error.
DeadLetter = Callable[[StreamRecord, BaseException], Awaitable[None]]


class Position(Enum):
    NEXT = "next"
    AGAIN = "again"
    """Before the next offset: already handled in this assignment."""
    AHEAD = "ahead"
    """Past the next offset: the offsets between hold records that were skipped, or none
    (transaction markers, records removed by retention or compaction)."""


class InputPositions:
    """The next offset to handle, per partition, since the assignment."""

    def __init__(self) -> None:
        self._next: dict[Partition, int] = {}

    def reset(self, starts: Mapping[Partition, int]) -> None:
        """After an assignment: where each partition starts being read."""
        self._next = dict(starts)

    def forget(self) -> None:
        """On a revocation: the next assignment restarts where the group committed, which may
        be before what was handled; until then, every record is taken as the next."""
        self._next = {}

    def expected(self, topic: str, partition: int) -> int | None:
        return self._next.get((topic, partition))

    def place(self, record: StreamRecord) -> Position:
        expected = self.expected(record.topic, record.partition)
        if expected is None or record.offset == expected:
            return Position.NEXT
        return Position.AGAIN if record.offset < expected else Position.AHEAD

    def handled(self, record: StreamRecord) -> None:
        self._next[(record.topic, record.partition)] = record.offset + 1


class GaplessIntake:
    def __init__(
        self,
        read_between: ReadBetween,
        acknowledge: Acknowledge,
        outcome: Callable[[str], None],
        log: structlog.stdlib.BoundLogger,
        dead_letter: DeadLetter | None = None,
        policy: PoisonPolicy | None = None,
    ) -> None:
        self.positions = InputPositions()
        self.read_between = read_between
        self.acknowledge = acknowledge
        self.outcome = outcome
        self.log = log
        self.dead_letter = dead_letter
        self.attempts = RecordAttempts(policy or PoisonPolicy.from_env())

    async def handle(self, record: StreamRecord, handler: Handler) -> None:
        """Handle ``record`` with ``handler``, after the records skipped before it; or not at all
        when it was handled already in this assignment. An exception from the handler leaves the
        record's position as it was: the record is the next one to handle."""
        position = self.positions.place(record)
        if position is Position.AGAIN:
            self.outcome("delivered_again")
            return
        if position is Position.AHEAD:
            await self._catch_up(record, handler)
        await self._guarded(record, handler)
        self.positions.handled(record)

    async def _guarded(self, record: StreamRecord, handler: Handler) -> None:
        """Handle ``record``; again after an outage or a failure on its content, until it is
        handled or, failing on its content ``POISON_ATTEMPTS`` times, dead-lettered."""
        if self.dead_letter is None:
            await handler(record)
            return
        place = (record.topic, record.partition, record.offset)
        while True:
            try:
                await handler(record)
            except Exception as error:
                verdict = self.attempts.failed(place, error)
                if verdict.next is Next.DEAD_LETTER:
                    await self.dead_letter(record, error)
                    return
                self.log.warning(
                    "stream.handling_failed",
                    source=f"{record.topic}/{record.partition}/{record.offset}",
                    error=type(error).__name__,
                    fault=verdict.fault.value,
                    failures=verdict.failures,
                    retry_in=verdict.pause,
                )
                await asyncio.sleep(verdict.pause)
                continue
            self.attempts.done(place)
            return

    async def _catch_up(self, record: StreamRecord, handler: Handler) -> None:
        expected = self.positions.expected(record.topic, record.partition)
        assert expected is not None
        missed = await self.read_between(record.topic, record.partition, expected, record.offset)
        if missed:
            self.log.warning(
                "stream.catching_up",
                topic=record.topic,
                partition=record.partition,
                first=missed[0].offset,
                records=len(missed),
            )
        for skipped in missed:
            await self._guarded(skipped, handler)
            self.positions.handled(skipped)
            self.acknowledge(skipped)
            self.outcome("caught_up")


def start_offsets(
    settings: Settings, group_id: str, partitions: Iterable[Partition]
) -> dict[Partition, int]:
    """Where the group starts reading each partition: its committed offset, or the partition's
    beginning when it has none (the platform's faust apps reset to the earliest offset)."""
    with CommittedOffsets(settings, f"{group_id}-positions") as offsets:
        starts = offsets.of(group_id, partitions)
        for key, offset in starts.items():
            if offset < 0:
                starts[key] = offsets.low_watermark(group_id, key)
    return starts


def gapless_intake(
    app: faust.App,
    settings: Settings,
    watched: Collection[str],
    outcome: Callable[[str], None],
    log: structlog.stdlib.BoundLogger,
    dead_letter: DeadLetter | None = None,
) -> GaplessIntake:
    """An intake for the records of the ``watched`` topics that ``app`` consumes (a collection
    that may grow while the app runs), with its positions reset on every assignment."""
    group_id = app.conf.id

    async def read_between(topic: str, partition: int, start: int, end: int) -> list[Any]:
        return await asyncio.to_thread(records_between, settings, topic, partition, start, end)

    def acknowledge(record: StreamRecord) -> None:
        app.consumer.ack(
            Message(
                record.topic,
                record.partition,
                record.offset,
                record.timestamp,
                0,
                [],
                record.key,
                record.value,
                None,
            )
        )

    intake = GaplessIntake(read_between, acknowledge, outcome, log, dead_letter)

    async def on_revoked(_app: faust.App, revoked: set[TP], **_: Any) -> None:
        intake.positions.forget()

    async def on_assigned(_app: faust.App, assigned: set[TP], **_: Any) -> None:
        mine = [(tp.topic, tp.partition) for tp in assigned if tp.topic in watched]
        intake.positions.reset(await asyncio.to_thread(start_offsets, settings, group_id, mine))

    app.on_partitions_revoked.connect(cast(Any, on_revoked))
    app.on_partitions_assigned.connect(cast(Any, on_assigned))
    return intake
