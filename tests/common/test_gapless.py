"""The intake hands a handler each record of a partition once per assignment and in order: the
records faust skipped are read and handled first, the ones it hands over again are passed over."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Sequence

import psycopg
import pytest
import structlog

from services.common.gapless import GaplessIntake, StreamRecord
from services.common.poison import PoisonPolicy, RecordAttempts
from services.common.streams import ReadRecord


def partition_log(topic: str, partition: int, count: int) -> list[ReadRecord]:
    return [
        ReadRecord(topic, partition, offset, b"k", b"v%d" % offset, [], 1_700_000_000.0)
        for offset in range(count)
    ]


class Rig:
    def __init__(self, records: Sequence[ReadRecord], starts: dict[tuple[str, int], int]) -> None:
        self.records = list(records)
        self.handled: list[tuple[str, int, int]] = []
        self.acknowledged: list[int] = []
        self.outcomes: Counter[str] = Counter()
        self.intake = GaplessIntake(
            self.read_between,
            lambda record: self.acknowledged.append(record.offset),
            lambda name: self.outcomes.update([name]),
            structlog.get_logger("test"),
        )
        self.intake.positions.reset(starts)

    async def read_between(
        self, topic: str, partition: int, start: int, end: int
    ) -> list[ReadRecord]:
        return [
            record
            for record in self.records
            if (record.topic, record.partition) == (topic, partition)
            and start <= record.offset < end
        ]

    async def handler(self, record: StreamRecord) -> None:
        self.handled.append((record.topic, record.partition, record.offset))

    def deliver(self, *offsets: int, partition: int = 0) -> None:
        for offset in offsets:
            record = next(r for r in self.records if (r.partition, r.offset) == (partition, offset))
            asyncio.run(self.intake.handle(record, self.handler))


def test_records_skipped_are_read_and_handled_before_the_next_one() -> None:
    rig = Rig(partition_log("t", 0, 10), {("t", 0): 0})
    rig.deliver(0, 1, 6, 7)
    assert [offset for _, _, offset in rig.handled] == [0, 1, 2, 3, 4, 5, 6, 7]
    # Only the records faust never handed over are acknowledged by the intake.
    assert rig.acknowledged == [2, 3, 4, 5]
    assert rig.outcomes == Counter(caught_up=4)


def test_a_partition_never_committed_is_read_from_its_start() -> None:
    # After a crash before the first commit, faust may resume past records it dropped.
    rig = Rig(partition_log("t", 1, 5), {("t", 1): 0})
    rig.deliver(3, 4, partition=1)
    assert [offset for _, _, offset in rig.handled] == [0, 1, 2, 3, 4]


def test_records_handed_over_again_are_passed_over() -> None:
    rig = Rig(partition_log("t", 0, 6), {("t", 0): 0})
    rig.deliver(0, 1, 4, 2, 3, 4, 5)
    assert [offset for _, _, offset in rig.handled] == [0, 1, 2, 3, 4, 5]
    assert rig.outcomes == Counter(caught_up=2, delivered_again=3)


def test_partitions_are_followed_apart_and_unknown_ones_are_taken_as_they_come() -> None:
    records = partition_log("t", 0, 3) + partition_log("t", 1, 3)
    rig = Rig(records, {("t", 0): 1})
    rig.deliver(2, partition=0)
    rig.deliver(1, 2, partition=1)
    assert rig.handled == [("t", 0, 1), ("t", 0, 2), ("t", 1, 1), ("t", 1, 2)]


def test_offsets_without_a_record_are_no_gap_to_fill() -> None:
    # Transaction markers and compacted records leave offsets that hold nothing to read.
    records = [r for r in partition_log("t", 0, 8) if r.offset not in (2, 3, 5)]
    rig = Rig(records, {("t", 0): 0})
    rig.deliver(0, 1, 4, 6, 7)
    assert [offset for _, _, offset in rig.handled] == [0, 1, 4, 6, 7]
    assert rig.outcomes == Counter()


def test_after_a_revocation_every_record_is_taken_until_the_next_assignment() -> None:
    rig = Rig(partition_log("t", 0, 6), {("t", 0): 0})
    rig.deliver(0, 1, 2, 3)
    rig.intake.positions.forget()
    # The group committed 2: the next assignment starts there, before what was handled.
    rig.deliver(5)
    rig.intake.positions.reset({("t", 0): 2})
    rig.deliver(2, 3, 4, 5)
    assert [offset for _, _, offset in rig.handled] == [0, 1, 2, 3, 5, 2, 3, 4, 5]


def test_a_failing_handler_leaves_the_record_to_handle_again() -> None:
    rig = Rig(partition_log("t", 0, 3), {("t", 0): 0})

    async def failing(record: StreamRecord) -> None:
        raise RuntimeError("registry down")

    with pytest.raises(RuntimeError):
        asyncio.run(rig.intake.handle(rig.records[0], failing))
    rig.deliver(0, 1)
    assert [offset for _, _, offset in rig.handled] == [0, 1]


class PoisonRig(Rig):
    """A handler that fails on some offsets: on their content, or because PostgreSQL is down
    for the first few tries."""

    def __init__(self, records: Sequence[ReadRecord], poison: set[int], outage: int = 0) -> None:
        super().__init__(records, {("t", 0): 0})
        self.poison = poison
        self.outage = outage
        self.tries: Counter[int] = Counter()
        self.dead: list[tuple[int, str]] = []
        self.intake.dead_letter = self.dead_letter
        self.intake.attempts = RecordAttempts(PoisonPolicy(3, dt.timedelta(0), dt.timedelta(0)))

    async def handler(self, record: StreamRecord) -> None:
        self.tries[record.offset] += 1
        if self.outage:
            self.outage -= 1
            raise psycopg.OperationalError("connection refused")
        if record.offset in self.poison:
            raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        await super().handler(record)

    async def dead_letter(self, record: StreamRecord, error: BaseException) -> None:
        self.dead.append((record.offset, type(error).__name__))


def test_a_poison_record_is_dead_lettered_after_three_tries_and_the_next_is_handled() -> None:
    rig = PoisonRig(partition_log("t", 0, 4), poison={1, 2})
    rig.deliver(0, 1, 3)  # 2 comes from reading the partition: guarded all the same
    assert [offset for _, _, offset in rig.handled] == [0, 3]
    assert rig.dead == [(1, "DataError"), (2, "DataError")]
    assert (rig.tries[1], rig.tries[2]) == (3, 3)
    assert rig.intake.positions.expected("t", 0) == 4


def test_an_outage_is_waited_out_and_never_dead_lettered() -> None:
    rig = PoisonRig(partition_log("t", 0, 2), poison=set(), outage=7)
    rig.deliver(0, 1)
    assert [offset for _, _, offset in rig.handled] == [0, 1]
    assert rig.dead == [] and rig.tries[0] == 8
