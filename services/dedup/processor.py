"""Dedup's stage on the transactional loop (``services.common.transact``): one raw record in,
decided against what the partition remembers, written out as it came or dropped.

Why nothing is lost and no duplicate passes, even when the worker is killed:

- a batch's outputs (``stays.unique``, dead letters), its claims and counts (the changelog,
  ``claims``) and its input offsets are written in one Kafka transaction: after a crash either all
  of it is there or none of it is, and the batch is read again from the committed offsets;
- the claims in memory are rebuilt from the changelog, reading committed records only, before
  any record of the partition is processed (``assigned``), so they are exactly the claims of the
  records whose offsets are committed: a record read again finds no claim of its own, and every
  record before it finds every claim it should;
- a batch's claims join the memory only once its transaction commits (``ClaimStore``); an outage
  aborts the batch, takes its claims back, and reads it again.

So the earlier at-least-once safeguards are gone: no recovery window, no read-back of the output
to learn what a previous run wrote, no reaching into the stream framework. ``Verdict.REPLAYED``
(a record finding its own claim) cannot happen here; it still passes, as the rules say.

Partition N of every raw topic, of the changelog and of ``stays.unique`` belong together (a
stay's events keep one partition number end to end): the group uses the ``range`` assignor, which
gives partition N of every subscribed topic of one partition count to the same member, and the
member holding the raw partitions N reads and writes changelog partition N. A raw topic whose
partition count differs from the output's would break that: it is not read, and it is reported.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable

import structlog
from confluent_kafka import Message, TopicPartition

from services.common.records import StayEvent
from services.common.serde import RecordSerde, UndecodableValue
from services.common.streams import SourceRecord, without_source_header
from services.common.transact import Batch, Stage
from services.dedup.claims import Change, ClaimStore
from services.dedup.config import DedupConfig
from services.dedup.rules import Verdict, decide, epoch_ms

LASTING = ("dropped.resent_message", "dropped.repeated_movement_action", "dead_lettered")
"""Outcomes counted in the changelog, across restarts."""

# The changelog records of some of its partitions, read from the beginning to their end.
ReadChangelog = Callable[[list[int]], dict[int, list[Change]]]
# The partition count of a topic, from the broker's metadata.
PartitionCount = Callable[[str], int]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Deduplicator(Stage[StayEvent]):
    service = "dedup"

    def __init__(
        self,
        *,
        config: DedupConfig,
        serde: RecordSerde[StayEvent],
        partitions: int,
        read_changelog: ReadChangelog,
        partition_count: PartitionCount,
        log: structlog.stdlib.BoundLogger,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.config = config
        self.serde = serde
        self.partitions = partitions
        """The output's partition count, which every input and the changelog must have."""
        self.read_changelog = read_changelog
        self.partition_count = partition_count
        self.log = log
        self.clock_ms = clock_ms
        self.store = ClaimStore()
        self.inputs: set[str] = set()
        self.refused: set[str] = set()
        self.this_run: collections.Counter[str] = collections.Counter()
        """What became of the records this process committed, by outcome."""
        self._sweep_due = time.monotonic() + config.sweep_interval.total_seconds()
        self._report_due = time.monotonic() + config.report_interval.total_seconds()
        self._swept: int | None = None
        """Claims the transaction under way deletes as expired; None when it does not sweep."""

    # --- records ---------------------------------------------------------------------------

    def decode(self, message: Message) -> StayEvent:
        value = message.value()
        if value is None:
            raise UndecodableValue("the record has no value")
        return self.serde.deserialize(str(message.topic()), value)

    def handle(self, message: Message, event: StayEvent, batch: Batch) -> None:
        partition = int(message.partition() or 0)
        source = SourceRecord(str(message.topic()), partition, int(message.offset() or 0))
        decision = decide(
            event,
            source,
            lambda identity: self.store.get(partition, identity),
            self.config.horizon,
            self.clock_ms(),
        )
        self.store.see(partition, epoch_ms(event.received_at))
        if not decision.verdict.passes:
            batch.count(f"dropped.{decision.verdict}", partition)
            return
        # The bytes go out as they came: the value keeps its writer's schema id, so nothing is
        # lost or re-encoded; the output partition is the input's (same stay, same place).
        batch.produce(
            self.config.output_topic,
            message.key(),
            message.value(),
            partition=partition,
            headers=[*without_source_header(message.headers()), source.header()],
        )
        for identity, claim in decision.claims.items():
            self.store.put(partition, identity, claim)
        batch.count("replayed" if decision.verdict is Verdict.REPLAYED else "unique", partition)

    # --- transactions ----------------------------------------------------------------------

    def tick(self) -> bool:
        now = time.monotonic()
        if now >= self._report_due:
            self._report_due = now + self.config.report_interval.total_seconds()
            self.log.info(
                "dedup.counts",
                inputs=len(self.inputs),
                this_run=dict(self.this_run),
                totals=self.store.totals(),
            )
        return now >= self._sweep_due and bool(self.store.held())

    def finish(self, batch: Batch) -> None:
        for partition, outcomes in batch.by_partition.items():
            lasting = collections.Counter({name: outcomes[name] for name in LASTING})
            if +lasting:
                self.store.add(partition, +lasting)
        if time.monotonic() >= self._sweep_due:
            self._swept = self.store.sweep(self.config.horizon)
        for partition, records in self.store.changes().items():
            for key, value in records:
                batch.produce(self.config.claims_topic, key, value, partition=partition)

    def committed(self, batch: Batch) -> None:
        self.store.commit()
        self.this_run.update(batch.outcomes)
        if self._swept is not None:
            self._sweep_due = time.monotonic() + self.config.sweep_interval.total_seconds()
            if self._swept:
                self.log.info("dedup.claims_expired", removed=self._swept)
            self._swept = None

    def aborted(self) -> None:
        self.store.abort()
        self._swept = None

    # --- partitions ------------------------------------------------------------------------

    def assigned(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        kept = [tp for tp in partitions if self._readable(tp.topic)]
        numbers = {tp.partition for tp in kept}
        # Eager rebalancing: every partition was revoked just before. One assigned to this
        # worker in both generations was nobody else's meanwhile, so its state is still right;
        # any other is rebuilt, before a record of it is processed.
        self.store.drop(self.store.held() - numbers)
        missing = sorted(numbers - self.store.held())
        started = time.monotonic()
        for partition, records in self.read_changelog(missing).items():
            self.store.load(partition, records)
        for partition in missing:
            if partition not in self.store.held():
                self.store.load(partition, ())
        self.inputs = {tp.topic for tp in kept}
        self.log.info(
            "dedup.assigned",
            inputs=sorted(self.inputs),
            partitions=sorted(numbers),
            counts={
                "partitions_rebuilt": len(missing),
                "claims_held": self.store.claim_count(),
                "rebuild_ms": round((time.monotonic() - started) * 1000),
            },
        )
        return kept

    def revoked(self, partitions: list[TopicPartition], *, lost: bool) -> None:
        if lost:
            # The group went on without this worker: another may have written these partitions'
            # changelog meanwhile.
            self.store.drop(self.store.held())

    def _readable(self, topic: str) -> bool:
        count = self.partition_count(topic)
        if count == self.partitions:
            return True
        if topic not in self.refused:
            self.refused.add(topic)
            self.log.error(
                "dedup.input_not_read", topic=topic, partitions=count, expected=self.partitions
            )
        return False


def changelog_records(messages: Iterable[Message]) -> dict[int, list[Change]]:
    """Changelog records by partition, in their order."""
    records: dict[int, list[Change]] = {}
    for message in messages:
        key = message.key()
        if key is not None:
            records.setdefault(int(message.partition() or 0), []).append((key, message.value()))
    return records
