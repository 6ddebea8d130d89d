"""One received frame, start to finish: decide, write to Kafka, and only then answer.

Both the record the message became (if any) and its archive entry must be confirmed by Kafka
before the ACK goes out, so an acknowledged message is never lost and every message answered can
be found again with its outcome. When Kafka does not confirm in time, the handler answers
nothing (``Unconfirmed``) and the connection is closed: engines resend a message that got no ACK,
whereas an AE would tell most of them that the message itself is wrong and must not be resent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from services.common.observability import PROCESSED, RECEIVED
from services.gateway.ack import build_ack, code_to_send
from services.gateway.hl7 import ErrorCode, Problem
from services.gateway.intake import (
    RAW_MESSAGE_SCHEMA,
    Intake,
    IntakeRules,
    Outcome,
    archive_record,
    take_in,
    take_in_oversized,
)
from services.gateway.kafka_writer import RecordUnencodable, WriteFailed
from services.gateway.mllp import Frame, OversizedFrame

log = structlog.get_logger("gateway")


class RecordWriter(Protocol):
    """What the handler needs of Kafka (``kafka_writer.KafkaWriter``)."""

    async def encode(self, topic: str, schema: str, value: dict[str, Any]) -> bytes: ...

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


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self._writer = writer
        self._rules = rules
        self._topics = topics
        self._counters = counters
        self._ack_timeout = ack_timeout
        self._max_frame_bytes = max_frame_bytes
        self._clock = clock

    async def handle(
        self, frame: Frame | OversizedFrame, peer: str, sender: str | None = None
    ) -> bytes | None:
        """The ACK to send once the records are written (None: the sender wants none).

        ``sender`` is the establishment the connection's client certificate belongs to (None on
        a connection in clear): a message naming another one in MSH-4 is refused.

        Raises ``Unconfirmed`` when Kafka did not confirm within the ACK time-out.
        """
        received_at = self._clock()
        if isinstance(frame, OversizedFrame):
            self._counters["frames_oversized"] += 1
            intake = take_in_oversized(
                frame.head, frame.size, self._max_frame_bytes, self._rules, received_at, sender
            )
        else:
            intake = take_in(frame.payload, self._rules, received_at, sender)
        try:
            async with asyncio.timeout(self._ack_timeout):
                intake, ack_code = await self._write(intake, peer, received_at)
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
        if ack_code is None:
            return None
        return build_ack(
            intake.context,
            ack_code,
            intake.problems,
            control_id=uuid.uuid4().hex[:20],
            now=received_at,
        )

    async def _write(
        self, intake: Intake, peer: str, received_at: dt.datetime
    ) -> tuple[Intake, str | None]:
        topic = self._topics.for_intake(intake)
        encoded: bytes | None = None
        if intake.publication is not None and topic is not None:
            try:
                encoded = await self._writer.encode(
                    topic, intake.publication.schema, intake.publication.value
                )
            except RecordUnencodable as error:
                log.error("record does not fit its schema", detail=str(error))
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
        archived = await self._writer.encode(self._topics.archive, RAW_MESSAGE_SCHEMA, record)
        writes = [self._writer.send(self._topics.archive, intake.archive_key, archived)]
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
