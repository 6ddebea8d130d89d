"""IHE PAM FR movements and merges mapped to the platform's records (StayEvent, PatientMerge).

Pure functions of a parsed message: what the schema calls each field is read from the segment
and field PAM FR puts it in (see the schema's field docs). A required value missing or unreadable
raises ``MessageError`` (answered AE).

What the gateway refuses (AE, code 102 "data type error", ERR-2 naming the field), because the
services downstream store, key and compute with these values:

- a control character (C0, U+0000-U+001F, or DEL), once HL7 escapes are resolved, in a field
  that identifies or names someone or something (``PLAIN_FIELDS``: MSH-10, PID-3, PID-5, PV1-19,
  ZBE-1, the units and practitioners...). HL7's ST type allows printable characters only; a NUL
  cannot be stored in PostgreSQL text, a line break splits a name across an email's lines.
- a date that cannot be read, or lies outside its plausible span (``Span``), measured from the
  message's receipt: a birth date from 1880-01-01 up to one day after receipt; the message
  (MSH-7), a merge and a discharge from one year before receipt to one day after; the movement
  (ZBE-2) from 1880-01-01 to one day after (a year for a pre-admission), one more than a year
  old being acknowledged and archived, not published (``HistoricMovement``); an
  admission (PV1-44) from 1880-01-01 (long psychiatric and long-term stays began years ago) to
  one year after receipt (a planned date). The day ahead allows for clocks that disagree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from services.common.establishments import Establishment
from services.common.records import (
    Action,
    AdmissionMode,
    CareRole,
    CareTeamMember,
    CovidStatus,
    EventKind,
    Movement,
    Patient,
    PatientMerge,
    PersonName,
    PractitionerRef,
    Stay,
    StayEvent,
)
from services.gateway.covid import UNKNOWN, CovidMapping
from services.gateway.hl7 import (
    ErrorCode,
    Location,
    Message,
    MessageError,
    Problem,
    Repetition,
    Segment,
    control_character,
    parse_date,
    parse_timestamp,
)

# The kind of movement each trigger inserts, or cancels (IHE PAM, PAM FR).
KIND_BY_TRIGGER: dict[str, str] = {
    "A05": "PRE_ADMISSION",
    "A38": "PRE_ADMISSION",
    "A01": "ADMISSION",
    "A11": "ADMISSION",
    "A04": "REGISTRATION",
    "A06": "CHANGE_TO_INPATIENT",
    "A07": "CHANGE_TO_OUTPATIENT",
    "A02": "TRANSFER",
    "A12": "TRANSFER",
    "A03": "DISCHARGE",
    "A13": "DISCHARGE",
    "A21": "LEAVE_OF_ABSENCE",
    "A52": "LEAVE_OF_ABSENCE",
    "A22": "RETURN_FROM_LEAVE",
    "A53": "RETURN_FROM_LEAVE",
    "A54": "ATTENDING_DOCTOR_CHANGE",
    "A55": "ATTENDING_DOCTOR_CHANGE",
}
CANCEL_TRIGGERS = frozenset({"A11", "A12", "A13", "A38", "A52", "A53", "A55"})
CORRECTION_TRIGGER = "Z99"
MOVEMENT_TRIGGERS = frozenset(KIND_BY_TRIGGER) | {CORRECTION_TRIGGER}
MERGE_TRIGGER = "A40"
# ITI-30 identity feed messages the platform archives without publishing: create (A28), update
# (A31), change of an identifier (A47, PAM FR: a new or deleted INS).
IDENTITY_TRIGGERS = frozenset({"A28", "A31", "A47"})
ACTIONS = frozenset({"INSERT", "UPDATE", "CANCEL"})

CARE_ROLES = frozenset({"ODRP", "RP", "RT", "SUBS"})
# A practitioner field (XCN: ROL-4, PV1-7, PV1-8, PV1-17) repeats, one identifier per
# repetition: an ADELI number, the RPPS, a local id, in any order. A repetition holds the RPPS
# when its identifier type (XCN-13) says RPPS, or IDNPS with the "8" prefix (8 + RPPS, IHE
# France data types N.FR, XCN-1). XCN-13 is required with an identifier and decides when sent:
# ASIP-SANTE-PS (XCN-9) assigns ADELI numbers too. Only an empty XCN-13 lets the authority
# stand in for it.
RPPS_ID_TYPES = frozenset({"RPPS", "IDNPS"})
RPPS_AUTHORITIES = frozenset({"RPPS", "ASIP-SANTE-PS", "1.2.250.1.71.4.2.1"})
IDNPS_RPPS_PREFIX = "8"

# Admission mode. Emergency signals win: PV1-2 E (emergency), PV1-4 E/U/A (emergency, urgent,
# accident; PAM FR's "U" urgence), PV1-14 URG/U or 7 (admitted through the emergency room, HL7
# table 0023). Then scheduled: PV1-14 PROG/P (planned), PV1-4 C/R/L/EL (elective, routine,
# labour). Anything else is unknown.
EMERGENCY_CLASSES = frozenset({"E"})
EMERGENCY_ADMISSION_TYPES = frozenset({"E", "U", "A"})
EMERGENCY_ADMIT_SOURCES = frozenset({"URG", "U", "7"})
SCHEDULED_ADMIT_SOURCES = frozenset({"PROG", "P"})
SCHEDULED_ADMISSION_TYPES = frozenset({"C", "R", "L", "EL"})

# Observation result statuses (OBX-11) that withdraw a result.
WITHDRAWN_RESULTS = frozenset({"D", "W"})

# The fields that identify or name someone or something and travel downstream (record keys,
# database rows, emails): none may hold a control character. Checked once per message, before
# anything is read, so a field read in a new place is covered by adding it here.
PLAIN_FIELDS: dict[str, dict[int, str]] = {
    "MSH": {10: "message control id"},
    "PID": {3: "patient identifiers", 5: "patient name", 8: "sex", 18: "billing number"},
    "PV1": {
        2: "patient class",
        4: "admission type",
        7: "attending doctor",
        8: "referring doctor",
        17: "admitting doctor",
        19: "visit number",
        36: "discharge disposition",
        37: "discharge destination",
    },
    "ZBE": {1: "movement id", 7: "medical responsibility unit", 8: "care responsibility unit"},
    "ROL": {4: "role person"},
    "MRG": {1: "merged patient identifiers", 3: "merged billing number"},
}

EARLIEST_DATE = dt.datetime(1880, 1, 1, tzinfo=dt.UTC)
CLOCK_SKEW = dt.timedelta(days=1)
YEAR = dt.timedelta(days=365)


@dataclass(frozen=True)
class Span:
    """Where a date may lie, from the message's receipt: ``back`` before it (None: not before
    1880-01-01) to ``ahead`` after it."""

    back: dt.timedelta | None
    ahead: dt.timedelta
    too_early: str
    too_late: str

    def problem(self, moment: dt.datetime, received_at: dt.datetime) -> str | None:
        """What is wrong with ``moment``, in words free of the value; None when plausible."""
        earliest = EARLIEST_DATE if self.back is None else received_at - self.back
        try:
            if moment < earliest:
                return self.too_early
            if moment > received_at + self.ahead:
                return self.too_late
        except OverflowError:  # year 1 or 9999 with an offset that leaves the calendar
            return self.too_early if moment.year < EARLIEST_DATE.year else self.too_late
        return None


BIRTH = Span(None, CLOCK_SKEW, "is before 1880-01-01", "is in the future")
EVENT = Span(
    YEAR,
    CLOCK_SKEW,
    "is more than a year before the message was received",
    "is more than a day after the message was received",
)
ADMISSION = Span(
    None,
    YEAR,
    "is before 1880-01-01",
    "is more than a year after the message was received",
)
PLANNED = Span(
    YEAR,
    YEAR,
    "is more than a year before the message was received",
    "is more than a year after the message was received",
)
"""A pre-admission's ZBE-2: engines (CPage) date it at the admission it plans, days or months
ahead of the message, as EVN-3 (planned event); an admission planned a year ahead is as far as
PV1-44 may lie."""


class HistoricMovement(Exception):
    """A movement dated more than a year before its receipt (PAM FR allows them: a stay entered
    or corrected long after it happened). Nothing downstream has a use for it — no GP is told
    of a stay years old — but the message is not wrong: it is acknowledged (AA) and archived,
    not published. ``problem`` is the warning the ACK carries."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.text)
        self.problem = problem


def _movement_time(
    zbe: Segment, kind: str, reader: Reader, received_at: dt.datetime
) -> dt.datetime:
    """ZBE-2 within its span ahead and back to 1880; raises ``HistoricMovement`` when it is
    more than a year before the receipt."""
    span = PLANNED if kind == "PRE_ADMISSION" else EVENT
    any_past = Span(None, span.ahead, "is before 1880-01-01", span.too_late)
    occurred_at = reader.timestamp(zbe, 2, "movement date and time", any_past, required=True)
    assert occurred_at is not None  # required
    if span.back is not None and occurred_at < received_at - span.back:
        raise HistoricMovement(
            Problem(
                ErrorCode.DATA_TYPE,
                f"{zbe.location(2)} (movement date and time) {span.too_early}: the message is "
                f"archived, not published",
                zbe.location(2),
                severity="W",
            )
        )
    return occurred_at


def check_plain_text(message: Message) -> None:
    """Raises the AE for the first control character in one of ``PLAIN_FIELDS``."""
    for segment in message.segments:
        for number, what in PLAIN_FIELDS.get(segment.name, {}).items():
            if control_character(segment.unescaped(number)) is None:
                continue  # the usual case, found in one pass; the loops below say where
            for index, repetition in enumerate(segment.repetitions(number), start=1):
                for component, text in enumerate(repetition.components(), start=1):
                    character = control_character(text)
                    if character is None:
                        continue
                    location = Location(
                        segment.name,
                        number,
                        component if component > 1 else None,
                        sequence=segment.sequence,
                        repetition=index if index > 1 else None,
                    )
                    raise MessageError(
                        ErrorCode.DATA_TYPE,
                        f"{location} ({what}) holds a control character "
                        f"(U+{ord(character):04X}); identifiers and names must be printable text",
                        location,
                    )


@dataclass
class Reader:
    """Reads values, raising for the required ones and for dates that cannot be true."""

    timezone: dt.tzinfo
    received_at: dt.datetime
    """The reference of every date's plausible span."""
    warnings: list[Problem] = field(default_factory=list)

    def required(self, segment: Segment, number: int, what: str, component: int = 1) -> str:
        value = segment.get(number, component)
        if not value:
            raise MessageError(
                ErrorCode.REQUIRED_FIELD_MISSING,
                f"{segment.location(number)} ({what}) is required",
                segment.location(number, component if component > 1 else None),
            )
        return value

    def timestamp(
        self,
        segment: Segment | None,
        number: int,
        what: str,
        span: Span,
        *,
        required: bool = False,
    ) -> dt.datetime | None:
        if segment is None:
            return None
        value = self.required(segment, number, what) if required else segment.get(number)
        if not value:
            return None
        try:
            moment = parse_timestamp(value, self.timezone)
        except ValueError:
            raise self._date_error(segment, number, what, "is not an HL7 date and time") from None
        self._check(moment, span, segment, number, what)
        return moment

    def date(self, segment: Segment, number: int, what: str, span: Span) -> dt.date | None:
        value = segment.get(number)
        if not value:
            return None
        try:
            day = parse_date(value)
        except ValueError:
            raise self._date_error(segment, number, what, "is not an HL7 date") from None
        self._check(dt.datetime.combine(day, dt.time(), dt.UTC), span, segment, number, what)
        return day

    def _check(
        self, moment: dt.datetime, span: Span, segment: Segment, number: int, what: str
    ) -> None:
        problem = span.problem(moment, self.received_at)
        if problem is not None:
            raise self._date_error(segment, number, what, problem)

    @staticmethod
    def _date_error(segment: Segment, number: int, what: str, problem: str) -> MessageError:
        # 102 (data type error): the value is not a date, or not one this field can hold.
        return MessageError(
            ErrorCode.DATA_TYPE,
            f"{segment.location(number)} ({what}) {problem}",
            segment.location(number),
        )


R = TypeVar("R", StayEvent, PatientMerge)


@dataclass(frozen=True)
class Mapped(Generic[R]):
    """A record for a topic, its key, and what was dropped on the way."""

    key: str
    value: R
    warnings: tuple[Problem, ...]


def event_id(establishment: Establishment, control_id: str) -> str:
    return f"{establishment.code}:{control_id}"


def _segment(message: Message, name: str, why: str) -> Segment:
    segment = message.first(name)
    if segment is None:
        raise MessageError(
            ErrorCode.SEGMENT_SEQUENCE, f"the {name} segment ({why}) is missing", Location(name)
        )
    return segment


def _optional(value: str) -> str | None:
    return value or None


def _identifier(repetitions: list[Repetition], id_type: str) -> str | None:
    """The first CX whose identifier type code (CX-5) is ``id_type``."""
    for repetition in repetitions:
        if repetition.component(5).upper() == id_type and repetition.component(1):
            return repetition.component(1)
    return None


def _name(repetition: Repetition | None) -> PersonName | None:
    """harpicoop.PersonName from one XPN; None when it names nobody."""
    if repetition is None:
        return None
    name = PersonName(
        family_name=_optional(repetition.component(1)),
        given_name=_optional(repetition.component(2)),
        other_given_names=_optional(repetition.component(3)),
    )
    return name if name.family_name or name.given_name or name.other_given_names else None


def _names(pid: Segment) -> tuple[Repetition | None, Repetition | None, Repetition | None]:
    """PID-5's used name (type D), birth name (type L), and first repetition with a family name.

    PAM FR: the used-name repetition may carry only the used given name, its family name left
    empty when it is the birth name (the spec's own A31 example).
    """
    names = pid.repetitions(5)
    by_type: dict[str, Repetition] = {}
    for repetition in names:
        by_type.setdefault(repetition.component(7).upper(), repetition)
    first = next((rep for rep in names if rep.component(1)), None)
    return by_type.get("D"), by_type.get("L"), first


def demographics(pid: Segment, reader: Reader) -> dict[str, Any]:
    """What PID says of the patient besides the identifiers (``Patient``'s other fields by
    name); nothing required, dates checked."""
    used, legal, first = _names(pid)
    # The family name: the used name's when sent, else the birth name's, else whatever
    # repetition names the patient (an engine that leaves the name type out).
    named = next((rep for rep in (used, legal, first) if rep and rep.component(1)), None)
    given = next((rep.component(2) for rep in (used, named, legal) if rep and rep.component(2)), "")
    family_name = named.component(1) if named else ""
    birth_name = legal.component(1) if legal else ""
    return {
        "family_name": family_name,
        "given_name": _optional(given),
        "birth_name": birth_name if birth_name and birth_name != family_name else None,
        "birth_date": reader.date(pid, 7, "birth date", BIRTH),
        "sex": _optional(pid.get(8)),
        "used_name": _name(used),
        "legal_name": _name(legal),
    }


def patient(message: Message, reader: Reader) -> Patient:
    """harpicoop.Patient from PID: the IPP and a family name are required."""
    pid = _segment(message, "PID", "patient identification")
    ids = pid.repetitions(3)
    ipp = _identifier(ids, "PI")
    if ipp is None:
        raise MessageError(
            ErrorCode.REQUIRED_FIELD_MISSING,
            "PID-3 has no identifier of type PI (the IPP)",
            pid.location(3),
        )
    qualified = any(rep.component(1).upper() == "VALI" for rep in pid.repetitions(32))
    found = demographics(pid, reader)
    if not found["family_name"]:
        raise MessageError(
            ErrorCode.REQUIRED_FIELD_MISSING,
            "PID-5 (patient name) has no family name, neither used (D) nor birth (L)",
            pid.location(5),
        )
    return Patient(ipp=ipp, ins=_identifier(ids, "INS") if qualified else None, **found)


def identity(message: Message, reader: Reader) -> None:
    """Checks an identity message (A28, A31, A47) the platform only archives.

    Nothing of it is published, so no identifier is required (PID-3 may hold only an INS or
    another domain's id); what it does carry must still be readable: a PID segment, printable
    identifiers and names, plausible dates.
    """
    check_plain_text(message)
    demographics(_segment(message, "PID", "patient identification"), reader)


def admission_mode(pv1: Segment) -> AdmissionMode:
    patient_class = pv1.get(2).upper()
    admission_type = pv1.get(4).upper()
    admit_source = pv1.get(14).upper()
    if (
        patient_class in EMERGENCY_CLASSES
        or admission_type in EMERGENCY_ADMISSION_TYPES
        or admit_source in EMERGENCY_ADMIT_SOURCES
    ):
        return AdmissionMode.EMERGENCY
    if admit_source in SCHEDULED_ADMIT_SOURCES or admission_type in SCHEDULED_ADMISSION_TYPES:
        return AdmissionMode.SCHEDULED
    return AdmissionMode.UNKNOWN


def _rpps(repetition: Repetition) -> str | None:
    """The RPPS number one XCN repetition carries, or None."""
    identifier = repetition.component(1)
    id_type = repetition.component(13).upper()
    if id_type:
        if id_type not in RPPS_ID_TYPES:
            return None  # ADELI, a local id (EI)...: typed, and not an RPPS
    else:
        authority = {repetition.component(9, 1).upper(), repetition.component(9, 2)}
        if not authority & RPPS_AUTHORITIES:
            return None
    if len(identifier) == 12 and identifier.startswith(IDNPS_RPPS_PREFIX):
        identifier = identifier[1:]
    return identifier if len(identifier) == 11 and identifier.isdigit() else None


def practitioner(repetitions: list[Repetition]) -> PractitionerRef:
    """A practitioner field (XCN, repeating): the RPPS from whichever repetition carries it, the
    name from that repetition, else from the first one that names someone."""
    rpps, carrier = next(
        ((found, rep) for rep in repetitions if (found := _rpps(rep)) is not None), (None, None)
    )
    named = (
        carrier
        if carrier is not None and carrier.component(2)
        else next((rep for rep in repetitions if rep.component(2)), None)
    )
    return PractitionerRef(
        rpps=rpps,
        family_name=_optional(named.component(2) if named else ""),
        given_name=_optional(named.component(3) if named else ""),
    )


def care_team(message: Message) -> tuple[CareTeamMember, ...]:
    """ROL segments, in message order; a role being deleted (ROL-2 DE) is left out."""
    team = []
    for rol in message.all("ROL"):
        if rol.get(2).upper() == "DE":
            continue
        role = rol.get(3).upper()
        named = practitioner(rol.repetitions(4))
        team.append(
            CareTeamMember(
                role=CareRole(role) if role in CARE_ROLES else CareRole.OTHER,
                rpps=named.rpps,
                family_name=named.family_name,
                given_name=named.given_name,
            )
        )
    return tuple(team)


def _visit_practitioner(pv1: Segment, number: int) -> PractitionerRef | None:
    """harpicoop.PractitionerRef from PV1-7, PV1-8 or PV1-17; None when the field is empty."""
    found = practitioner(pv1.repetitions(number))
    return found if found.rpps or found.family_name or found.given_name else None


def medical_unit(zbe: Segment) -> tuple[str | None, str | None]:
    """The unit of medical responsibility (code, name): ZBE-7, the field PAM FR 2.11 gives it,
    else ZBE-8 (the care unit), where some engines put it with ZBE-7 empty.

    Both are XON: the unit's code in XON-10 (XON-3 in engines that predate PAM FR's
    restriction), its name in XON-1.
    """
    for number in (7, 8):
        for repetition in zbe.repetitions(number):
            code = repetition.component(10) or repetition.component(3)
            name = repetition.component(1)
            if code or name:
                return _optional(code), _optional(name)
    return None, None


def protection(message: Message, segment: str, field: int) -> bool | None:
    """A PAM FR protection indicator (HL7 table 0136): PD1-12 for the patient, PV2-22 for the
    stay. True for Y, False for N; None when the message does not say (no segment, empty, the
    HL7 null, or a value outside the table), so that the stay keeps what an earlier message said.
    PV1-16 (VIP) is not one: PAM FR defines it as a category of patient, not a request."""
    found = message.first(segment)
    value = found.get(field).upper() if found is not None else ""
    return {"Y": True, "N": False}.get(value)


def covid_status(message: Message, establishment: str, mapping: CovidMapping) -> CovidStatus:
    """The last SARS-CoV-2 observation's mapped result; UNKNOWN when there is none."""
    status = UNKNOWN
    for obx in message.all("OBX"):
        if not mapping.is_covid_test(establishment, obx.get(3)):
            continue
        if obx.get(11).upper() in WITHDRAWN_RESULTS:
            continue
        status = mapping.status(establishment, obx.get(5, 1), obx.get(5, 2))
    return CovidStatus(status)


def expected_action(trigger: str) -> str:
    """The ZBE-4 a trigger goes with: cancels CANCEL, Z99 UPDATE, the others INSERT."""
    if trigger in CANCEL_TRIGGERS:
        return "CANCEL"
    return "UPDATE" if trigger == CORRECTION_TRIGGER else "INSERT"


def _action(zbe: Segment, trigger: str, reader: Reader) -> Action:
    action = reader.required(zbe, 4, "action").upper()
    if action not in ACTIONS:
        raise MessageError(
            ErrorCode.TABLE_VALUE_NOT_FOUND,
            f"ZBE-4 action {action!r} is not INSERT, UPDATE or CANCEL",
            zbe.location(4),
        )
    expected = expected_action(trigger)
    if action != expected:
        raise MessageError(
            ErrorCode.TABLE_VALUE_NOT_FOUND,
            f"ZBE-4 action {action} does not fit trigger {trigger}, which needs {expected}",
            zbe.location(4),
        )
    return Action(action)


def _kind(zbe: Segment, trigger: str, action: Action) -> tuple[EventKind, str | None]:
    """The movement's kind, and the original trigger (ZBE-6) an update or cancel acts upon."""
    original = zbe.get(6).upper() if action is not Action.INSERT else ""
    if original and original not in KIND_BY_TRIGGER:
        raise MessageError(
            ErrorCode.TABLE_VALUE_NOT_FOUND,
            f"ZBE-6 original trigger {original!r} is not a movement trigger",
            zbe.location(6),
        )
    if original:
        return EventKind(KIND_BY_TRIGGER[original]), original
    if trigger == CORRECTION_TRIGGER:
        raise MessageError(
            ErrorCode.REQUIRED_FIELD_MISSING,
            "ZBE-6 (the trigger of the corrected movement) is required with Z99",
            zbe.location(6),
        )
    return EventKind(KIND_BY_TRIGGER[trigger]), None


def movement_authority(zbe: Segment) -> str | None:
    """ZBE-1's assigning authority: EI-2, the namespace id, else EI-3, the universal id.

    The namespace is preferred because published engines send it in every shape they use for
    one numbering: ``312^CHU-X^000897406``, and ``312^CHU-X&000897406&N`` where the whole HD
    is packed into EI-2 as subcomponents (ANS examples); the universal id alone only when no
    namespace is sent. The universal id's type (EI-4) only says how to read it."""
    repetitions = zbe.repetitions(1)
    if not repetitions:
        return None
    first = repetitions[0]
    return _optional(first.component(2)) or _optional(first.component(3))


def stay_event(
    message: Message,
    establishment: Establishment,
    received_at: dt.datetime,
    covid: CovidMapping,
    timezone: dt.tzinfo,
) -> Mapped[StayEvent]:
    """harpicoop.StayEvent from a movement message (a trigger in MOVEMENT_TRIGGERS)."""
    check_plain_text(message)
    reader = Reader(timezone, received_at)
    msh = message.header
    trigger = msh.get(9, 2).upper()
    control_id = reader.required(msh, 10, "message control id")
    zbe = _segment(message, "ZBE", "movement")
    pv1 = _segment(message, "PV1", "patient visit")
    pid = _segment(message, "PID", "patient identification")
    action = _action(zbe, trigger, reader)
    kind, original_trigger = _kind(zbe, trigger, action)
    visit_number = reader.required(pv1, 19, "visit number")
    movement_id = reader.required(zbe, 1, "movement id")
    authority = movement_authority(zbe)
    occurred_at = _movement_time(zbe, kind, reader, received_at)
    person = patient(message, reader)
    unit, unit_name = medical_unit(zbe)
    stay_key = f"{establishment.code}:{visit_number}"
    value = StayEvent(
        event_id=event_id(establishment, control_id),
        establishment=establishment.code,
        stay_key=stay_key,
        kind=kind,
        action=action,
        trigger_event=trigger,
        original_trigger=original_trigger,
        message_control_id=control_id,
        sent_at=reader.timestamp(msh, 7, "message date and time", EVENT),
        received_at=received_at,
        movement=Movement(
            movement_id=movement_id,
            authority=authority,
            occurred_at=occurred_at,
            unit=unit,
            unit_name=unit_name,
        ),
        patient=person,
        stay=Stay(
            visit_number=visit_number,
            billing_number=_optional(pid.get(18)),
            patient_class=_optional(pv1.get(2)),
            admission_type=_optional(pv1.get(4)),
            admission_mode=admission_mode(pv1),
            admitted_at=reader.timestamp(pv1, 44, "admit date and time", ADMISSION),
            discharged_at=reader.timestamp(pv1, 45, "discharge date and time", EVENT),
            discharge_disposition=_optional(pv1.get(36)),
            discharge_destination=_optional(pv1.get(37)),
            attending_doctor=_visit_practitioner(pv1, 7),
            referring_doctor=_visit_practitioner(pv1, 8),
            admitting_doctor=_visit_practitioner(pv1, 17),
        ),
        care_team=care_team(message),
        covid_status=covid_status(message, establishment.code, covid),
        patient_protected=protection(message, "PD1", 12),
        stay_protected=protection(message, "PV2", 22),
    )
    return Mapped(stay_key, value, tuple(reader.warnings))


def patient_merge(
    message: Message,
    establishment: Establishment,
    received_at: dt.datetime,
    timezone: dt.tzinfo,
) -> Mapped[PatientMerge]:
    """harpicoop.PatientMerge from an A40 (its first PID and MRG pair, as IHE PAM sends one)."""
    check_plain_text(message)
    reader = Reader(timezone, received_at)
    msh = message.header
    control_id = reader.required(msh, 10, "message control id")
    survivor = patient(message, reader)
    mrg = _segment(message, "MRG", "merged patient")
    merged_ipp = _identifier(mrg.repetitions(1), "PI")
    if merged_ipp is None:
        raise MessageError(
            ErrorCode.REQUIRED_FIELD_MISSING,
            "MRG-1 has no identifier of type PI (the merged IPP)",
            mrg.location(1),
        )
    evn = message.first("EVN")
    merged_at = reader.timestamp(evn, 6, "event occurred", EVENT) or reader.timestamp(
        evn, 2, "recorded date and time", EVENT
    )
    value = PatientMerge(
        event_id=event_id(establishment, control_id),
        establishment=establishment.code,
        trigger_event=msh.get(9, 2).upper(),
        message_control_id=control_id,
        sent_at=reader.timestamp(msh, 7, "message date and time", EVENT),
        received_at=received_at,
        merged_at=merged_at,
        patient=survivor,
        merged_ipp=merged_ipp,
        merged_billing_number=_optional(mrg.get(3)),
    )
    return Mapped(f"{establishment.code}:{survivor.ipp}", value, tuple(reader.warnings))
