"""What becomes of one received message: its outcome, its ACK code, the record to publish.

Pure: bytes in, a decision out, never an exception. The envelope (MSH) decides between a
rejection (AR: unreadable, unknown sending facility, a sending facility other than the one the
connection's certificate belongs to, not ADT, wrong version) and going on; the trigger then
decides the rest. Movements become StayEvents, A40 merges PatientMerges, A28, A31 and A47 are
kept in the archive only (with or without a PI-typed identifier), and other triggers are
acknowledged and ignored. A frame holding more than one message is refused whole (AE): nothing
of it is published.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.common.establishments import Establishment
from services.common.records import MessageOutcome, PatientMerge, RawMessage, StayEvent
from services.gateway import pam
from services.gateway.ack import AckContext
from services.gateway.covid import CovidMapping
from services.gateway.hl7 import (
    ErrorCode,
    Location,
    Message,
    MessageError,
    Problem,
    Segment,
    control_character,
    parse,
    parse_header,
)

STAY_EVENT_SCHEMA = StayEvent.SCHEMA
PATIENT_MERGE_SCHEMA = PatientMerge.SCHEMA
RAW_MESSAGE_SCHEMA = RawMessage.SCHEMA
PROCESSING_IDS = frozenset({"P", "T", "D"})  # production, training, debugging (table 0103)


Outcome = MessageOutcome
"""What became of a message: the archive's ``outcome``, the schema's enum itself."""


@dataclass(frozen=True)
class IntakeRules:
    """What deciding needs besides the bytes: the establishments and the Covid-19 table."""

    establishments: Mapping[str, Establishment]
    """By sending facility (MSH-4)."""
    covid: CovidMapping
    timezone: dt.tzinfo
    """Of timestamps sent without an offset."""


@dataclass(frozen=True)
class Publication:
    stream: str
    """``stays`` (a StayEvent for the establishment's raw topic) or ``merges``."""
    key: str
    value: StayEvent | PatientMerge

    @property
    def event_id(self) -> str:
        return self.value.event_id


@dataclass(frozen=True)
class Intake:
    outcome: Outcome
    code: str
    """AA, AE or AR."""
    problems: tuple[Problem, ...]
    context: AckContext | None
    """What the ACK echoes; None when not even the MSH could be read."""
    raw: bytes
    size: int
    truncated: bool = False
    charset: str | None = None
    establishment: Establishment | None = None
    sending_facility: str | None = None
    message_type: str | None = None
    control_id: str | None = None
    publication: Publication | None = None

    @property
    def trigger(self) -> str:
        return self.context.header.get(9, 2).upper() if self.context else ""

    @property
    def archive_key(self) -> str:
        if self.establishment:
            return self.establishment.code
        return self.sending_facility or "unknown"

    def failed(self, problem: Problem) -> Intake:
        """The same message answered AE instead, for a failure found after deciding."""
        return dataclasses.replace(
            self, outcome=Outcome.ERROR, code="AE", problems=(problem,), publication=None
        )


def _sender(rules: IntakeRules, sender: str | None) -> Establishment | None:
    return next((item for item in rules.establishments.values() if item.code == sender), None)


def _envelope(header: Segment, rules: IntakeRules, sender: str | None) -> dict[str, Any]:
    """What the archive and the log say of the message; on an authenticated connection, the
    establishment is the certificate's, whatever MSH-4 claims."""
    facility = header.get(4)
    code, trigger = header.get(9, 1), header.get(9, 2)
    control_id = header.get(10)
    return {
        "establishment": _sender(rules, sender) if sender else rules.establishments.get(facility),
        "sending_facility": facility or None,
        "message_type": f"{code}^{trigger}" if trigger else (code or None),
        # The archive and the logs carry the control id: one with a control character is
        # refused (pam.PLAIN_FIELDS) and left out of both.
        "control_id": control_id if control_id and control_character(control_id) is None else None,
    }


def _check_envelope(header: Segment, rules: IntakeRules, sender: str | None) -> Establishment:
    """The establishment MSH-4 names; raises the AR a message gets for its header."""

    def reject(code: ErrorCode, text: str, field: int, component: int | None = None) -> None:
        raise MessageError(code, text, header.location(field, component), rejected=True)

    if not header.get(10):
        reject(ErrorCode.REQUIRED_FIELD_MISSING, "MSH-10 (message control id) is required", 10)
    if not header.get(4):
        reject(ErrorCode.REQUIRED_FIELD_MISSING, "MSH-4 (sending facility) is required", 4)
    establishment = rules.establishments.get(header.get(4))
    if establishment is None:
        reject(
            ErrorCode.TABLE_VALUE_NOT_FOUND,
            f"sending facility {header.get(4)!r} (MSH-4) is not an establishment of the GHT",
            4,
        )
    assert establishment is not None
    if sender is not None and establishment.code != sender:
        reject(
            ErrorCode.TABLE_VALUE_NOT_FOUND,
            f"sending facility {header.get(4)!r} (MSH-4) is not the establishment of this "
            f"connection's certificate ({sender})",
            4,
        )
    if header.get(9, 1).upper() != "ADT":
        reject(
            ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
            f"message type {header.get(9, 1)!r} (MSH-9) is not ADT",
            9,
            1,
        )
    if not header.get(9, 2):
        reject(ErrorCode.REQUIRED_FIELD_MISSING, "MSH-9 has no trigger event", 9, 2)
    version = header.get(12)
    if version and not version.startswith("2."):
        reject(ErrorCode.UNSUPPORTED_VERSION_ID, f"version {version!r} (MSH-12) is not 2.x", 12)
    processing = header.get(11).upper()
    if processing and processing not in PROCESSING_IDS:
        reject(
            ErrorCode.UNSUPPORTED_PROCESSING_ID,
            f"processing id {processing!r} (MSH-11) is not P, T or D",
            11,
        )
    return establishment


def _check_one_message(message: Message) -> None:
    """Raises the AE a frame gets for holding more than one message: none of them is taken."""
    headers = message.all("MSH")
    if len(headers) > 1:
        # Table 0357 has no code for "several messages"; 100 (segment sequence error) is the one
        # that fits: an MSH after the first is a segment no ADT structure allows there. 207
        # (application internal error) would blame the gateway and invite a resend as it is.
        raise MessageError(
            ErrorCode.SEGMENT_SEQUENCE,
            f"the frame holds {len(headers)} messages; one frame must hold one message, "
            f"so none of them was taken",
            headers[1].location(),
        )


def _decide(
    message: Message, establishment: Establishment, rules: IntakeRules, received_at: dt.datetime
) -> tuple[Outcome, Publication | None, tuple[Problem, ...]]:
    trigger = message.header.get(9, 2).upper()
    if trigger in pam.MOVEMENT_TRIGGERS:
        try:
            mapped = pam.stay_event(
                message, establishment, received_at, rules.covid, rules.timezone
            )
        except pam.HistoricMovement as historic:
            return Outcome.KEPT, None, (historic.problem,)
        publication = Publication("stays", mapped.key, mapped.value)
        return Outcome.PUBLISHED, publication, mapped.warnings
    if trigger == pam.MERGE_TRIGGER:
        merge = pam.patient_merge(message, establishment, received_at, rules.timezone)
        publication = Publication("merges", merge.key, merge.value)
        return Outcome.PUBLISHED, publication, merge.warnings
    if trigger in pam.IDENTITY_TRIGGERS:
        reader = pam.Reader(rules.timezone, received_at)
        pam.identity(message, reader)
        return Outcome.KEPT, None, tuple(reader.warnings)
    return Outcome.IGNORED, None, ()


def take_in(
    raw: bytes, rules: IntakeRules, received_at: dt.datetime, sender: str | None = None
) -> Intake:
    """Decide what to do with one message; bad input gives AE or AR, never an exception.

    ``sender``: the establishment code the connection authenticated as (its client
    certificate), None on a connection in clear.
    """
    try:
        header = parse_header(raw)
    except MessageError as error:
        return Intake(Outcome.REJECTED, "AR", (error.problem,), None, raw, len(raw))
    except Exception:  # the last line of defence: any input gets an answer
        return _internal_error(raw, None)
    # Until the whole message is decoded, the ACK echoes the header as read in 8859/1.
    context = AckContext(header.delimiters, "iso8859-1", header)
    envelope = _envelope(header, rules, sender)
    message: Message | None = None
    try:
        message = parse(raw)
        context = AckContext(message.delimiters, message.codec, message.header)
        envelope = _envelope(message.header, rules, sender)
        establishment = _check_envelope(message.header, rules, sender)
        _check_one_message(message)
        outcome, publication, warnings = _decide(message, establishment, rules, received_at)
    except MessageError as error:
        return Intake(
            Outcome.REJECTED if error.rejected else Outcome.ERROR,
            "AR" if error.rejected else "AE",
            (error.problem,),
            context,
            raw,
            len(raw),
            charset=message.codec if message else None,
            **envelope,
        )
    except Exception:
        return _internal_error(raw, context, envelope)
    return Intake(
        outcome,
        "AA",
        warnings,
        context,
        raw,
        len(raw),
        charset=message.codec,
        publication=publication,
        **envelope,
    )


def take_in_oversized(
    head: bytes,
    size: int,
    limit: int,
    rules: IntakeRules,
    received_at: dt.datetime,
    sender: str | None = None,
) -> Intake:
    """A frame over the size limit: AR, answered from its head when the MSH can be read."""
    problem = Problem(
        ErrorCode.DATA_TYPE,
        f"the message is {size} bytes long, over the gateway's limit of {limit} bytes",
    )
    try:
        header = parse_header(head)
    except Exception:
        return Intake(Outcome.REJECTED, "AR", (problem,), None, head, size, truncated=True)
    return Intake(
        Outcome.REJECTED,
        "AR",
        (problem,),
        AckContext(header.delimiters, "iso8859-1", header),
        head,
        size,
        truncated=True,
        **_envelope(header, rules, sender),
    )


def _internal_error(
    raw: bytes, context: AckContext | None, envelope: Mapping[str, Any] | None = None
) -> Intake:
    problem = Problem(
        ErrorCode.INTERNAL_ERROR,
        "the gateway could not process this message; it is kept for replay",
        Location("MSH") if context else None,
    )
    return Intake(Outcome.ERROR, "AE", (problem,), context, raw, len(raw), **(envelope or {}))


def archive_record(
    intake: Intake,
    *,
    peer: str,
    received_at: dt.datetime,
    ack_code: str | None,
    topic: str | None,
) -> RawMessage:
    """harpicoop.RawMessage for ``hl7.archive``."""
    first_error = next((item for item in intake.problems if item.severity == "E"), None)
    return RawMessage(
        received_at=received_at,
        peer=peer,
        raw=intake.raw,
        size=intake.size,
        truncated=intake.truncated,
        charset=intake.charset,
        establishment=intake.establishment.code if intake.establishment else None,
        sending_facility=intake.sending_facility,
        message_type=intake.message_type,
        message_control_id=intake.control_id,
        event_id=intake.publication.event_id if intake.publication else None,
        topic=topic if intake.publication else None,
        outcome=intake.outcome,
        ack_code=ack_code,
        error_code=first_error.code.code if first_error else None,
        error_location=str(first_error.location) if first_error and first_error.location else None,
        error_detail="; ".join(item.text for item in intake.problems) or None,
    )
