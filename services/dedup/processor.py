"""One input record through dedup: decode, decide, remember, then write it out or drop it.

Effects and why they are safe under at-least-once (a record may be processed again after a
crash, until its offset is committed):

- a claim names the record that made it, so reading that record again is recognised as a
  replay (``Verdict.REPLAYED``), never as a duplicate: an event cannot be lost because its claim
  reached the changelog and its output did not;
- a record that a previous run may have processed (``RecoveryWindow``) is written out only if
  the output partition does not already hold a record made from it (``ReplayFence``), whether
  or not its claims survived: a crash lets no duplicate through;
- a poison record goes whole to the dead-letter topic, through the same producer, so the input
  offset is committed only after Kafka has it (faust flushes the producer before committing);
- records come in their partition's order, each once per assignment, through the worker's
  ``GaplessIntake`` (``services.common.gapless``), whatever faust drops on a rebalance.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from services.common.deadletter import error_headers
from services.common.gapless import StreamRecord
from services.common.observability import PROCESSED
from services.common.poison import describe
from services.common.serde import AvroSerde, UndecodableValue
from services.common.streams import SourceRecord, header_pairs, without_source_header
from services.dedup.config import DedupConfig
from services.dedup.replays import RecoveryWindow
from services.dedup.rules import Claim, Verdict, decide, epoch_ms

log = structlog.get_logger("dedup")

Headers = list[tuple[str, str | bytes | None]]


class ClaimStore(Protocol):
    def get(self, identity: str) -> Claim | None: ...

    def put(self, identity: str, claim: Claim) -> None: ...


class Counts(Protocol):
    """Counts that outlive the process (drops and dead letters)."""

    def add(self, name: str) -> None: ...


# (topic, key, value, partition or None, headers): sends through the worker's producer.
Send = Callable[[str, bytes | None, bytes | None, int | None, Headers], Awaitable[None]]
# Whether an output partition holds a record made from this source, produced at that time (ms).
AlreadyWritten = Callable[[int, SourceRecord, int], Awaitable[bool]]


@dataclass
class Deduplicator:
    config: DedupConfig
    serde: AvroSerde
    claims: ClaimStore
    counts: Counts
    send: Send
    already_written: AlreadyWritten
    window: RecoveryWindow
    clock_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)
    latest_received_ms: dict[int, int] = field(default_factory=dict)
    """Per partition, the latest receipt time seen: the clock of the expiry sweep."""
    outcomes: Counter[str] = field(default_factory=Counter)
    """What became of the records this process handled, by outcome."""

    def outcome(self, name: str, *, lasting: bool = False) -> None:
        self.outcomes[name] += 1
        PROCESSED.labels("dedup", name).inc()
        if lasting:
            self.counts.add(name)

    async def handle(self, record: StreamRecord) -> Verdict | None:
        """Process one record; returns the verdict, or None when it was dead-lettered."""
        source = SourceRecord(record.topic, record.partition, record.offset)
        try:
            if record.value is None:
                raise UndecodableValue("the record has no value")
            event = self.serde.deserialize(record.topic, record.value)
        except UndecodableValue as error:
            # Anything else goes to the intake (``GaplessIntake``): an outage (the registry
            # unreachable) is waited out, a failure on the record's content retried, then
            # dead-lettered through ``dead_letter_poison``.
            await self._dead_letter(record, source, "undecodable value", error)
            return None
        decision = decide(event, source, self.claims.get, self.config.horizon, self.clock_ms())
        received_ms = epoch_ms(event["received_at"])
        self.latest_received_ms[record.partition] = max(
            received_ms, self.latest_received_ms.get(record.partition, 0)
        )
        if not decision.verdict.passes:
            self.outcome(f"dropped.{decision.verdict}", lasting=True)
            earlier = decision.earlier
            log.info(
                "dedup.dropped",
                reason=str(decision.verdict),
                event_id=event["event_id"],
                stay_key=event["stay_key"],
                source=source.encode(),
                first_seen=earlier.source.encode() if earlier else None,
            )
            return decision.verdict
        for identity, claim in decision.claims.items():
            self.claims.put(identity, claim)
        replay = decision.verdict is Verdict.REPLAYED or self.window.may_have_been_written(source)
        if replay:
            produced_ms = round(record.timestamp * 1000)
            if await self.already_written(record.partition, source, produced_ms):
                self.outcome("replay_already_written")
                return decision.verdict
        # The bytes go out as they came: the value keeps its writer's schema id, so nothing
        # is lost or re-encoded; the output partition is the input's (same stay, same place).
        await self.send(
            self.config.output_topic,
            record.key,
            record.value,
            record.partition,
            [*without_source_header(record.headers), source.header()],
        )
        self.outcome("replay_written" if replay else "unique")
        return decision.verdict

    async def dead_letter_poison(self, record: StreamRecord, error: BaseException) -> None:
        """A record whose handling kept failing on its content (``GaplessIntake``'s verdict)."""
        source = SourceRecord(record.topic, record.partition, record.offset)
        await self._dead_letter(record, source, "handling failed", error, describe(error))

    async def _dead_letter(
        self,
        record: StreamRecord,
        source: SourceRecord,
        reason: str,
        error: BaseException,
        description: str | None = None,
    ) -> None:
        log.warning(
            "dedup.dead_lettered",
            source=source.encode(),
            reason=reason,
            error=type(error).__name__,
        )
        await self.send(
            self.config.dead_letter_topic,
            record.key,
            record.value,
            None,
            [
                *header_pairs(record.headers),
                *error_headers(
                    service="dedup",
                    reason=reason,
                    error=error,
                    source_topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    description=description,
                ),
            ],
        )
        self.outcome("dead_lettered", lasting=True)
