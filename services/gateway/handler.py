"""One received frame, start to finish: decide, write to Kafka, and only then answer.

Both the record the message became (if any) and its archive entry must be confirmed by Kafka
before the ACK goes out, so an acknowledged message is never lost and every message answered can
be found again with its outcome. When Kafka does not confirm in time, the handler answers
nothing (``Unconfirmed``) and the connection is closed: engines resend a message that got no ACK,
whereas an AE would tell most of them that the message itself is wrong and must not be resent.

Input nobody vouched for (unreadable, oversized, or from an unknown sending facility) is archived
within its source address's ``RefusedArchive`` budget; past it, the sender still gets its AR and
the frame is only counted. Big frames are read off the event loop, so one sender's 256 KiB
message does not stall every other connection for the milliseconds its parsing takes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import structlog

from services.common.observability import PROCESSED, RECEIVED, REFUSED, UNARCHIVED
from services.common.serde import AvroRecord
from services.gateway.ack import build_ack, code_to_send
from services.gateway.hl7 import ErrorCode, Problem
from services.gateway.intake import (
    Intake,
    IntakeRules,
    Outcome,
    archive_record,
    take_in,
    take_in_oversized,
)
from services.gateway.kafka_writer import RecordUnencodable, WriteFailed
from services.gateway.limits import RefusedArchive, RefusedArchiveBudget
from services.gateway.mllp import Frame, OversizedFrame

log = structlog.get_logger("gateway")

INLINE_FRAME_BYTES = 16 * 1024
"""Frames up to this size are read on the event loop (under 0.5 ms); bigger ones, up to 16 ms
at 256 KiB, in a thread."""


class RecordWriter(Protocol):
    """What the handler needs of Kafka (``kafka_writer.KafkaWriter``)."""

    async def encode(self, topic: str, record: AvroRecord) -> bytes: ...

    async def send(self, topic: str, key: str, value: bytes) -> None: ...


class Unconfirmed(Exception):
    """Kafka did not confirm the message's records in time: no ACK may be sent."""


@dataclass(frozen=True)
class Topics:
    """Where records go; ``stays`` has an ``{establishment}`` placeholder."""

    stays: str = "stays.raw.{establishment}"
    merges: str = "patients.merges"
    archive: str = "hl7.archive"

    def for_intake(self, intake: Intake) -> str | None:
        if intake.publication is None or intake.establishment is None:
            return None
        if intake.publication.stream == "merges":
            return self.merges
        return self.stays.format(establishment=intake.establishment.code)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Reply(NamedTuple):
    ack: bytes | None
    """None: the sender wants no ACK."""
    vouched: bool
    """The frame came from a known establishment, whatever its outcome."""


def unvouched(intake: Intake) -> bool:
    """Refused before anyone vouched for it: unreadable, oversized, or from an unknown sender."""
    return intake.code != "AA" and (intake.establishment is None or intake.truncated)


def source_address(peer: str) -> str:
    """The address of a ``host:port`` peer."""
    return peer.rpartition(":")[0] or peer


class MessageHandler:
    def __init__(
        self,
        writer: RecordWriter,
        rules: IntakeRules,
        topics: Topics,
        counters: Counter[str],
        *,
        ack_timeout: float,
        max_frame_bytes: int,
        refused_budget: RefusedArchiveBudget | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._writer = writer
        self._rules = rules
        self._topics = topics
        self._counters = counters
        self._ack_timeout = ack_timeout
        self._max_frame_bytes = max_frame_bytes
        self._clock = clock
        self._refused = RefusedArchive(refused_budget or RefusedArchiveBudget())

    async def handle(
        self, frame: Frame | OversizedFrame, peer: str, sender: str | None = None
    ) -> Reply:
        """The ACK to send once the records are written.

        ``sender`` is the establishment the connection's client certificate belongs to (None on
        a connection in clear): a message naming another one in MSH-4 is refused.

        Raises ``Unconfirmed`` when Kafka did not confirm within the ACK time-out.
        """
        received_at = self._clock()
        if isinstance(frame, OversizedFrame):
            self._counters["frames_oversized"] += 1
            REFUSED.labels("gateway", "oversized").inc()
            intake = take_in_oversized(
                frame.head, frame.size, self._max_frame_bytes, self._rules, received_at, sender
            )
        elif len(frame.payload) > INLINE_FRAME_BYTES:
            intake = await asyncio.to_thread(
                take_in, frame.payload, self._rules, received_at, sender
            )
        else:
            intake = take_in(frame.payload, self._rules, received_at, sender)
        archived = not unvouched(intake) or self._within_budget(intake, peer)
        try:
            async with asyncio.timeout(self._ack_timeout):
                intake, ack_code = await self._write(intake, peer, received_at, archived)
        except (TimeoutError, WriteFailed) as error:
            self._counters["messages_unconfirmed"] += 1
            log.warning(
                "message not confirmed by kafka; no ack sent",
                peer=peer,
                control_id=intake.control_id,
                establishment=intake.archive_key,
                reason=type(error).__name__,
            )
            raise Unconfirmed(str(error)) from error
        self._count(intake)
        vouched = not unvouched(intake)
        if archived:  # a flood's frames are counted, not logged one by one
            self._log(intake, peer, ack_code)
        if ack_code is None:
            return Reply(None, vouched)
        ack = build_ack(
            intake.context,
            ack_code,
            intake.problems,
            control_id=uuid.uuid4().hex[:20],
            now=received_at,
        )
        return Reply(ack, vouched)

    def _within_budget(self, intake: Intake, peer: str) -> bool:
        address = source_address(peer)
        now = asyncio.get_running_loop().time()
        if self._refused.admit(address, len(intake.raw), now):
            return True
        UNARCHIVED.labels("gateway").inc()
        self._counters["refused_unarchived"] += 1
        count = self._refused.log.note(address, now)
        if count is not None:
            log.warning(
                "refused frames over the archive budget; counted, not archived",
                address=address,
                not_archived=count,
            )
        return False

    def _log(self, intake: Intake, peer: str, ack_code: str | None) -> None:
        log.info(
            "message",
            peer=peer,
            establishment=intake.establishment.code if intake.establishment else None,
            sending_facility=intake.sending_facility,
            control_id=intake.control_id,
            trigger=intake.trigger or None,
            event_id=intake.publication.event_id if intake.publication else None,
            outcome=intake.outcome.value,
            ack=ack_code,
            error_code=next((item.code.code for item in intake.problems), None),
            error_location=next(
                (str(item.location) for item in intake.problems if item.location), None
            ),
        )

    async def _write(
        self, intake: Intake, peer: str, received_at: dt.datetime, archived: bool = True
    ) -> tuple[Intake, str | None]:
        topic = self._topics.for_intake(intake)
        encoded: bytes | None = None
        if intake.publication is not None and topic is not None:
            try:
                encoded = await self._writer.encode(topic, intake.publication.value)
            except RecordUnencodable as error:
                log.error("record does not fit its schema", error=error)
                intake = intake.failed(
                    Problem(
                        ErrorCode.INTERNAL_ERROR,
                        "the gateway could not encode this message's record; it is kept for replay",
                    )
                )
                topic = None
        ack_code = code_to_send(intake.context, intake.code)
        record = archive_record(
            intake, peer=peer, received_at=received_at, ack_code=ack_code, topic=topic
        )
        writes = []
        if archived:
            entry = await self._writer.encode(self._topics.archive, record)
            writes.append(self._writer.send(self._topics.archive, intake.archive_key, entry))
        if encoded is not None and topic is not None and intake.publication is not None:
            writes.append(self._writer.send(topic, intake.publication.key, encoded))
        await asyncio.gather(*writes)
        return intake, ack_code

    def _count(self, intake: Intake) -> None:
        outcome = intake.outcome.value.lower()
        code = intake.establishment.code if intake.establishment else "unknown"
        RECEIVED.labels("gateway", code, outcome).inc()
        PROCESSED.labels("gateway", outcome).inc()
        self._counters["messages"] += 1
        self._counters[f"outcome_{intake.outcome.value.lower()}"] += 1
        if intake.outcome is Outcome.IGNORED:
            self._counters[f"ignored_trigger_{intake.trigger or 'none'}"] += 1
        if intake.establishment:
            self._counters[f"establishment_{intake.establishment.code}"] += 1
