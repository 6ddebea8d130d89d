"""The records of ``schemas/`` as Python types: generated, do not edit.

Regenerate with ``python -m services.common.records_codegen`` after changing a schema (a test
fails until the committed module is what the schemas give). Each record is a frozen dataclass of
the latest version of its schema; ``from_avro`` takes the value the serde decodes (any released
version, resolved to the latest) and ``to_avro`` gives the value it writes.
"""

# ruff: noqa: E501

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self

# Setting the attributes at once: a frozen dataclass's __init__ sets them one call each.
_new = object.__new__
_set = object.__setattr__


class Action(StrEnum):
    """The action on the movement (ZBE-4): a new movement, a correction of it (Z99), or its cancellation."""

    INSERT = "INSERT"
    UPDATE = "UPDATE"
    CANCEL = "CANCEL"


_Action_SYMBOLS: dict[str, Action] = {member.value: member for member in Action}


class AdmissionMode(StrEnum):
    """Scheduled or emergency stay, from PV1-14, PV1-4 and PV1-2."""

    SCHEDULED = "SCHEDULED"
    EMERGENCY = "EMERGENCY"
    UNKNOWN = "UNKNOWN"


_AdmissionMode_SYMBOLS: dict[str, AdmissionMode] = {
    member.value: member for member in AdmissionMode
}


class Granularity(StrEnum):
    HOUR = "HOUR"
    DAY = "DAY"


_Granularity_SYMBOLS: dict[str, Granularity] = {member.value: member for member in Granularity}


class CareRole(StrEnum):
    """A practitioner's role towards the patient (ROL-3): ODRP the declared general practitioner (médecin traitant), RP referring doctor, RT referred-to doctor, SUBS the GP's substitute."""

    ODRP = "ODRP"
    RP = "RP"
    RT = "RT"
    SUBS = "SUBS"
    OTHER = "OTHER"


_CareRole_SYMBOLS: dict[str, CareRole] = {member.value: member for member in CareRole}


class FollowupState(StrEnum):
    OPEN = "OPEN"
    REMINDED = "REMINDED"
    CLOSED = "CLOSED"


_FollowupState_SYMBOLS: dict[str, FollowupState] = {
    member.value: member for member in FollowupState
}


class CloseReason(StrEnum):
    READMISSION = "READMISSION"
    NEGATIVE_RESULT = "NEGATIVE_RESULT"
    FOLLOWUP_COMPLETE = "FOLLOWUP_COMPLETE"
    MANUAL = "MANUAL"
    DISCHARGE_CANCELLED = "DISCHARGE_CANCELLED"
    DECEASED = "DECEASED"


_CloseReason_SYMBOLS: dict[str, CloseReason] = {member.value: member for member in CloseReason}


class CovidStatus(StrEnum):
    """The patient's Covid-19 status, mapped from an OBX with a SARS-CoV-2 LOINC code by the establishment's mapping table; UNKNOWN when no such observation was sent."""

    POSITIVE = "POSITIVE"
    NEGATIVE = "NEGATIVE"
    SUSPECTED = "SUSPECTED"
    NOT_TESTED = "NOT_TESTED"
    UNKNOWN = "UNKNOWN"


_CovidStatus_SYMBOLS: dict[str, CovidStatus] = {member.value: member for member in CovidStatus}


class PreferredEventKind(StrEnum):
    ADMISSION = "ADMISSION"
    TRANSFER = "TRANSFER"
    DISCHARGE = "DISCHARGE"
    CORRECTION = "CORRECTION"


_PreferredEventKind_SYMBOLS: dict[str, PreferredEventKind] = {
    member.value: member for member in PreferredEventKind
}


class DeliveryMode(StrEnum):
    REALTIME = "REALTIME"
    DIGEST = "DIGEST"
    DISCHARGES_ONLY = "DISCHARGES_ONLY"


_DeliveryMode_SYMBOLS: dict[str, DeliveryMode] = {member.value: member for member in DeliveryMode}


class DeliveryStatus(StrEnum):
    """SENT accepted by the SMTP server; RETRYING a transient failure, to be tried again; FAILED a permanent failure; SKIPPED not sent on purpose (opt-out, address outside the secure domains); DELIVERED the recipient's server reported delivery to the mailbox (a DSN); READ the recipient's mail client reported it displayed (a read receipt); BOUNCED the recipient's server reported it could not deliver it (a failed DSN or a bounce)."""

    SENT = "SENT"
    RETRYING = "RETRYING"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    DELIVERED = "DELIVERED"
    READ = "READ"
    BOUNCED = "BOUNCED"


_DeliveryStatus_SYMBOLS: dict[str, DeliveryStatus] = {
    member.value: member for member in DeliveryStatus
}


class EventKind(StrEnum):
    """What happened to the stay, whatever the action (ZBE-4) on it. Cancellation triggers (A11, A12, A13, A38, A52, A53, A55) and Z99 corrections carry the kind of the movement they act upon (ZBE-6)."""

    PRE_ADMISSION = "PRE_ADMISSION"
    ADMISSION = "ADMISSION"
    REGISTRATION = "REGISTRATION"
    CHANGE_TO_INPATIENT = "CHANGE_TO_INPATIENT"
    CHANGE_TO_OUTPATIENT = "CHANGE_TO_OUTPATIENT"
    TRANSFER = "TRANSFER"
    DISCHARGE = "DISCHARGE"
    LEAVE_OF_ABSENCE = "LEAVE_OF_ABSENCE"
    RETURN_FROM_LEAVE = "RETURN_FROM_LEAVE"
    ATTENDING_DOCTOR_CHANGE = "ATTENDING_DOCTOR_CHANGE"
    OTHER = "OTHER"


_EventKind_SYMBOLS: dict[str, EventKind] = {member.value: member for member in EventKind}


class NoticeKind(StrEnum):
    ADMISSION = "ADMISSION"
    TRANSFER = "TRANSFER"
    DISCHARGE = "DISCHARGE"
    CORRECTION = "CORRECTION"
    RETRACTION = "RETRACTION"
    COVID_FOLLOWUP = "COVID_FOLLOWUP"
    COVID_REMINDER = "COVID_REMINDER"
    OTHER = "OTHER"


_NoticeKind_SYMBOLS: dict[str, NoticeKind] = {member.value: member for member in NoticeKind}


class MailboxType(StrEnum):
    PER = "PER"
    ORG = "ORG"
    APP = "APP"
    CAB = "CAB"
    OTHER = "OTHER"


_MailboxType_SYMBOLS: dict[str, MailboxType] = {member.value: member for member in MailboxType}


class MessageOutcome(StrEnum):
    PUBLISHED = "PUBLISHED"
    KEPT = "KEPT"
    IGNORED = "IGNORED"
    ERROR = "ERROR"
    REJECTED = "REJECTED"


_MessageOutcome_SYMBOLS: dict[str, MessageOutcome] = {
    member.value: member for member in MessageOutcome
}


class UnroutableReason(StrEnum):
    NO_GP = "NO_GP"
    UNKNOWN_RPPS = "UNKNOWN_RPPS"
    NO_SECURE_ADDRESS = "NO_SECURE_ADDRESS"
    OTHER = "OTHER"


_UnroutableReason_SYMBOLS: dict[str, UnroutableReason] = {
    member.value: member for member in UnroutableReason
}


_DEFAULT_0: Any = (
    "ADMISSION",
    "DISCHARGE",
    "CORRECTION",
)
_DEFAULT_1: Any = {
    "event_kinds": (
        "ADMISSION",
        "DISCHARGE",
        "CORRECTION",
    ),
    "mode": "REALTIME",
    "digest_hour": 18,
}
_DEFAULT_2: Any = {
    "event_kinds": (
        "ADMISSION",
        "DISCHARGE",
        "CORRECTION",
    ),
    "mode": "REALTIME",
    "digest_hour": 18,
}
_DEFAULT_3: Any = ()
_DEFAULT_4: Any = ()


@dataclass(frozen=True, kw_only=True)
class AnalyticsCount:
    """A count over a time window and a set of dimensions, for analysts. Value of the compacted `analytics.*` topics, keyed by window and dimensions. Carries no patient-identifying field."""

    SCHEMA: ClassVar[str] = "harpicoop.AnalyticsCount"

    metric: str
    """What is counted: stay_events, notifications, covid_discharges..."""
    granularity: Granularity
    """Window size."""
    window_start: dt.datetime
    """Start of the window, in event time (inclusive)."""
    window_end: dt.datetime
    """End of the window (exclusive)."""
    establishment: str
    """Establishment code."""
    event_kind: EventKind | None = None
    """For stay event counts."""
    action: Action | None = None
    """For stay event counts."""
    admission_mode: AdmissionMode | None = None
    """For admissions."""
    delivery_status: DeliveryStatus | None = None
    """For notification counts."""
    covid_status: CovidStatus | None = None
    """For discharge counts."""
    skip_reason: str | None = None
    """For skipped notice counts: why nothing was sent, a code of services/common/skip_reasons.py (protected, opposed, sensitive_unit, opted_out...; other for a reason it does not know)."""
    notice_kind: str | None = None
    """For skipped notice counts: the kind of notice that was not sent (ADMISSION, TRANSFER, DISCHARGE, CORRECTION, RETRACTION, COVID_FOLLOWUP, COVID_REMINDER)."""
    count: int
    """The count so far; the latest record for a key is the current value."""
    updated_at: dt.datetime
    """When this count was last updated."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "metric": value["metric"],
                "granularity": _Granularity_SYMBOLS[value["granularity"]],
                "window_start": value["window_start"],
                "window_end": value["window_end"],
                "establishment": value["establishment"],
                "event_kind": None
                if (_5_0 := value.get("event_kind", None)) is None
                else _EventKind_SYMBOLS[_5_0],
                "action": None
                if (_6_0 := value.get("action", None)) is None
                else _Action_SYMBOLS[_6_0],
                "admission_mode": None
                if (_7_0 := value.get("admission_mode", None)) is None
                else _AdmissionMode_SYMBOLS[_7_0],
                "delivery_status": None
                if (_8_0 := value.get("delivery_status", None)) is None
                else _DeliveryStatus_SYMBOLS[_8_0],
                "covid_status": None
                if (_9_0 := value.get("covid_status", None)) is None
                else _CovidStatus_SYMBOLS[_9_0],
                "skip_reason": value.get("skip_reason", None),
                "notice_kind": value.get("notice_kind", None),
                "count": value["count"],
                "updated_at": value["updated_at"],
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["granularity"] = _Granularity_SYMBOLS[value["granularity"]]
        value["event_kind"] = (
            None if (_5_0 := value["event_kind"]) is None else _EventKind_SYMBOLS[_5_0]
        )
        value["action"] = None if (_6_0 := value["action"]) is None else _Action_SYMBOLS[_6_0]
        value["admission_mode"] = (
            None if (_7_0 := value["admission_mode"]) is None else _AdmissionMode_SYMBOLS[_7_0]
        )
        value["delivery_status"] = (
            None if (_8_0 := value["delivery_status"]) is None else _DeliveryStatus_SYMBOLS[_8_0]
        )
        value["covid_status"] = (
            None if (_9_0 := value["covid_status"]) is None else _CovidStatus_SYMBOLS[_9_0]
        )
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "metric": self.metric,
            "granularity": self.granularity,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "establishment": self.establishment,
            "event_kind": self.event_kind,
            "action": self.action,
            "admission_mode": self.admission_mode,
            "delivery_status": self.delivery_status,
            "covid_status": self.covid_status,
            "skip_reason": self.skip_reason,
            "notice_kind": self.notice_kind,
            "count": self.count,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, kw_only=True)
class CovidFollowup:
    """The state of a Covid-19 follow-up case opened on a POSITIVE or SUSPECTED discharge. Value of `covid.followups`, keyed by `case_id`."""

    SCHEMA: ClassVar[str] = "harpicoop.CovidFollowup"

    case_id: str
    """Deterministic id of the case (from the discharge event id)."""
    stay_key: str
    """The stay whose discharge opened the case."""
    establishment: str
    """Establishment code of that discharge."""
    discharge_event_id: str
    """The discharge event."""
    patient: Patient
    """Who is followed; needed to tell the GP and to recognise a readmission. Patient-identifying."""
    covid_status: CovidStatus
    """Status at discharge, or the later one that closed the case."""
    state: FollowupState
    """OPEN waiting for the reminder date, REMINDED the GP was reminded, CLOSED no more reminders."""
    gp: Recipient | None = None
    """The GP to notify and remind."""
    opened_at: dt.datetime
    """When the case was opened."""
    remind_at: dt.datetime | None = None
    """When the GP is to be reminded, while the case is open."""
    reminders_sent: int = 0
    """Reminders sent so far."""
    closed_at: dt.datetime | None = None
    """When the case was closed."""
    close_reason: CloseReason | None = None
    """Why the case was closed: READMISSION in any establishment of the GHT, a later NEGATIVE_RESULT, FOLLOWUP_COMPLETE some time after the reminder, MANUAL by an operator, DISCHARGE_CANCELLED when the discharge that opened it was cancelled, DECEASED when the patient died (a discharge by death)."""
    updated_at: dt.datetime
    """When this state was reached."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "case_id": value["case_id"],
                "stay_key": value["stay_key"],
                "establishment": value["establishment"],
                "discharge_event_id": value["discharge_event_id"],
                "patient": Patient.from_avro(value["patient"]),
                "covid_status": _CovidStatus_SYMBOLS[value["covid_status"]],
                "state": _FollowupState_SYMBOLS[value["state"]],
                "gp": None
                if (_7_0 := value.get("gp", None)) is None
                else Recipient.from_avro(_7_0),
                "opened_at": value["opened_at"],
                "remind_at": value.get("remind_at", None),
                "reminders_sent": value.get("reminders_sent", 0),
                "closed_at": value.get("closed_at", None),
                "close_reason": None
                if (_12_0 := value.get("close_reason", None)) is None
                else _CloseReason_SYMBOLS[_12_0],
                "updated_at": value["updated_at"],
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["patient"] = Patient.adopt_avro(value["patient"])
        value["covid_status"] = _CovidStatus_SYMBOLS[value["covid_status"]]
        value["state"] = _FollowupState_SYMBOLS[value["state"]]
        value["gp"] = None if (_7_0 := value["gp"]) is None else Recipient.adopt_avro(_7_0)
        value["close_reason"] = (
            None if (_12_0 := value["close_reason"]) is None else _CloseReason_SYMBOLS[_12_0]
        )
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "case_id": self.case_id,
            "stay_key": self.stay_key,
            "establishment": self.establishment,
            "discharge_event_id": self.discharge_event_id,
            "patient": self.patient.to_avro(),
            "covid_status": self.covid_status,
            "state": self.state,
            "gp": None if (_7_0 := self.gp) is None else _7_0.to_avro(),
            "opened_at": self.opened_at,
            "remind_at": self.remind_at,
            "reminders_sent": self.reminders_sent,
            "closed_at": self.closed_at,
            "close_reason": self.close_reason,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, kw_only=True)
class DeliveryChoices:
    """Which notices a practitioner wants and when. Emergency admissions and discharges always go in real time, whatever the mode."""

    SCHEMA: ClassVar[str] = "harpicoop.DeliveryChoices"

    event_kinds: tuple[PreferredEventKind, ...] = (
        PreferredEventKind.ADMISSION,
        PreferredEventKind.DISCHARGE,
        PreferredEventKind.CORRECTION,
    )
    """The kinds of events they are told about; CORRECTION covers corrections and retractions. Transfers within an establishment are off by default."""
    mode: DeliveryMode = DeliveryMode.REALTIME
    """REALTIME each notice when decided; DIGEST one email a day at digest_hour listing the day's events; DISCHARGES_ONLY discharges (and emergency admissions) only."""
    digest_hour: int = 18
    """The hour of the day (0-23, Europe/Paris) the digest goes out, in DIGEST mode."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "event_kinds": tuple(
                    [
                        _PreferredEventKind_SYMBOLS[_0_0]
                        for _0_0 in value.get("event_kinds", _DEFAULT_0)
                    ]
                ),
                "mode": _DeliveryMode_SYMBOLS[value.get("mode", "REALTIME")],
                "digest_hour": value.get("digest_hour", 18),
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["event_kinds"] = tuple(
            [_PreferredEventKind_SYMBOLS[_0_0] for _0_0 in value["event_kinds"]]
        )
        value["mode"] = _DeliveryMode_SYMBOLS[value["mode"]]
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "event_kinds": list(self.event_kinds),
            "mode": self.mode,
            "digest_hour": self.digest_hour,
        }


@dataclass(frozen=True, kw_only=True)
class EnrichedStayEvent:
    """A deduplicated stay event with the practitioners to notify resolved from the directory. Value of `stays.enriched`, keyed by `stay_key`."""

    SCHEMA: ClassVar[str] = "harpicoop.EnrichedStayEvent"

    event: StayEvent
    """The event as ingested."""
    recipients: tuple[Recipient, ...]
    """Practitioners to notify: the GP (ODRP) first, then the other roles of the 'right list'."""
    enriched_at: dt.datetime
    """When the directory was consulted."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "event": StayEvent.from_avro(value["event"]),
                "recipients": tuple([Recipient.from_avro(_1_0) for _1_0 in value["recipients"]]),
                "enriched_at": value["enriched_at"],
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["event"] = StayEvent.adopt_avro(value["event"])
        value["recipients"] = tuple([Recipient.adopt_avro(_1_0) for _1_0 in value["recipients"]])
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "event": self.event.to_avro(),
            "recipients": [_1_0.to_avro() for _1_0 in self.recipients],
            "enriched_at": self.enriched_at,
        }


@dataclass(frozen=True, kw_only=True)
class NotificationStatus:
    """One step in the delivery of one notice to one practitioner. Value of `notifications.status`, keyed by `notification_id`."""

    SCHEMA: ClassVar[str] = "harpicoop.NotificationStatus"

    notification_id: str
    """Deterministic id of (event, recipient, kind): the same notice always has the same id."""
    event_id: str
    """The stay event that caused it."""
    stay_key: str
    """The stay."""
    establishment: str
    """Establishment code."""
    kind: NoticeKind
    """What the notice says."""
    recipient_rpps: str
    """The practitioner's RPPS."""
    recipient_address: str
    """The secure address used."""
    status: DeliveryStatus
    """SENT accepted by the SMTP server; RETRYING a transient failure, to be tried again; FAILED a permanent failure; SKIPPED not sent on purpose (opt-out, address outside the secure domains); then, from the platform's mailbox, DELIVERED, READ or BOUNCED."""
    attempt: int
    """1 for the first try."""
    smtp_code: int | None = None
    """The SMTP reply code, when there was one."""
    detail: str | None = None
    """Why, for the operator; no patient data."""
    message_id: str | None = None
    """The Message-ID header of the email."""
    at: dt.datetime
    """When this status was reached (for DELIVERED, READ and BOUNCED, when the receipt was read)."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "notification_id": value["notification_id"],
                "event_id": value["event_id"],
                "stay_key": value["stay_key"],
                "establishment": value["establishment"],
                "kind": _NoticeKind_SYMBOLS[value["kind"]],
                "recipient_rpps": value["recipient_rpps"],
                "recipient_address": value["recipient_address"],
                "status": _DeliveryStatus_SYMBOLS[value["status"]],
                "attempt": value["attempt"],
                "smtp_code": value.get("smtp_code", None),
                "detail": value.get("detail", None),
                "message_id": value.get("message_id", None),
                "at": value["at"],
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["kind"] = _NoticeKind_SYMBOLS[value["kind"]]
        value["status"] = _DeliveryStatus_SYMBOLS[value["status"]]
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "notification_id": self.notification_id,
            "event_id": self.event_id,
            "stay_key": self.stay_key,
            "establishment": self.establishment,
            "kind": self.kind,
            "recipient_rpps": self.recipient_rpps,
            "recipient_address": self.recipient_address,
            "status": self.status,
            "attempt": self.attempt,
            "smtp_code": self.smtp_code,
            "detail": self.detail,
            "message_id": self.message_id,
            "at": self.at,
        }


@dataclass(frozen=True, kw_only=True)
class Patient:
    """Who the stay is for. Patient-identifying: never copied to logs, metrics or analytics topics."""

    SCHEMA: ClassVar[str] = "harpicoop.Patient"

    ipp: str
    """The establishment's patient id (PID-3 with type PI)."""
    ins: str | None = None
    """The national health identifier (PID-3 with type INS), only when PID-32 says the identity is qualified (VALI)."""
    family_name: str
    """PID-5 family name: the used name's (type D) when sent, else the birth name's (type L)."""
    given_name: str | None = None
    """PID-5 given name: the used name's (type D) when sent, else the birth name's."""
    birth_name: str | None = None
    """Birth family name, when it differs."""
    birth_date: dt.date | None = None
    """PID-7."""
    sex: str | None = None
    """PID-8 administrative sex (F, M, U...)."""
    used_name: PersonName | None = None
    """PID-5 repetition of type D (used name), as sent."""
    legal_name: PersonName | None = None
    """PID-5 repetition of type L (birth, legal name), as sent."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "ipp": value["ipp"],
                "ins": value.get("ins", None),
                "family_name": value["family_name"],
                "given_name": value.get("given_name", None),
                "birth_name": value.get("birth_name", None),
                "birth_date": value.get("birth_date", None),
                "sex": value.get("sex", None),
                "used_name": None
                if (_7_0 := value.get("used_name", None)) is None
                else PersonName.from_avro(_7_0),
                "legal_name": None
                if (_8_0 := value.get("legal_name", None)) is None
                else PersonName.from_avro(_8_0),
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["used_name"] = (
            None if (_7_0 := value["used_name"]) is None else PersonName.adopt_avro(_7_0)
        )
        value["legal_name"] = (
            None if (_8_0 := value["legal_name"]) is None else PersonName.adopt_avro(_8_0)
        )
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "ipp": self.ipp,
            "ins": self.ins,
            "family_name": self.family_name,
            "given_name": self.given_name,
            "birth_name": self.birth_name,
            "birth_date": self.birth_date,
            "sex": self.sex,
            "used_name": None if (_7_0 := self.used_name) is None else _7_0.to_avro(),
            "legal_name": None if (_8_0 := self.legal_name) is None else _8_0.to_avro(),
        }


@dataclass(frozen=True, kw_only=True)
class PatientMerge:
    """Two patient records of one establishment merged into one (HL7 A40): events sent under the merged IPP now belong to the surviving patient. Value of `patients.merges`, keyed by `<establishment>:<surviving IPP>`."""

    SCHEMA: ClassVar[str] = "harpicoop.PatientMerge"

    event_id: str
    """`<establishment>:<message control id>`, as for stay events."""
    establishment: str
    """Code of the establishment (deploy/establishments.csv), from MSH-4."""
    trigger_event: str
    """The HL7 trigger as sent (A40)."""
    message_control_id: str
    """MSH-10, the sender's message id."""
    sent_at: dt.datetime | None = None
    """MSH-7, when the engine built the message."""
    received_at: dt.datetime
    """When the platform received the message."""
    merged_at: dt.datetime | None = None
    """EVN-6 when the merge happened, else EVN-2 when it was recorded."""
    patient: Patient
    """The surviving patient (PID). Patient-identifying."""
    merged_ipp: str
    """MRG-1 with type PI: the IPP that no longer exists and whose events are the surviving patient's."""
    merged_billing_number: str | None = None
    """MRG-3, the merged record's billing file number (NDA), when sent."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "event_id": value["event_id"],
                "establishment": value["establishment"],
                "trigger_event": value["trigger_event"],
                "message_control_id": value["message_control_id"],
                "sent_at": value.get("sent_at", None),
                "received_at": value["received_at"],
                "merged_at": value.get("merged_at", None),
                "patient": Patient.from_avro(value["patient"]),
                "merged_ipp": value["merged_ipp"],
                "merged_billing_number": value.get("merged_billing_number", None),
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["patient"] = Patient.adopt_avro(value["patient"])
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "event_id": self.event_id,
            "establishment": self.establishment,
            "trigger_event": self.trigger_event,
            "message_control_id": self.message_control_id,
            "sent_at": self.sent_at,
            "received_at": self.received_at,
            "merged_at": self.merged_at,
            "patient": self.patient.to_avro(),
            "merged_ipp": self.merged_ipp,
            "merged_billing_number": self.merged_billing_number,
        }


@dataclass(frozen=True, kw_only=True)
class PersonName:
    """One repetition of a patient's name (PID-5, XPN) as sent. Patient-identifying."""

    SCHEMA: ClassVar[str] = "harpicoop.PersonName"

    family_name: str | None = None
    """XPN-1; may be empty in a used name that repeats only the given name."""
    given_name: str | None = None
    """XPN-2, the first (or used) given name."""
    other_given_names: str | None = None
    """XPN-3: further given names (PAM FR: the birth given names, in the birth name)."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "family_name": value.get("family_name", None),
                "given_name": value.get("given_name", None),
                "other_given_names": value.get("other_given_names", None),
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "family_name": self.family_name,
            "given_name": self.given_name,
            "other_given_names": self.other_given_names,
        }


@dataclass(frozen=True, kw_only=True)
class Mailbox:
    """One MSSanté mailbox of the practitioner."""

    SCHEMA: ClassVar[str] = "harpicoop.Mailbox"

    address: str
    """The secure email address."""
    mailbox_type: MailboxType
    """PER personal, ORG organisational, APP applicative, CAB practice."""
    domain: str
    """The address's domain, one of the MSSanté trust space's secure domains."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "address": value["address"],
                "mailbox_type": _MailboxType_SYMBOLS[value["mailbox_type"]],
                "domain": value["domain"],
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["mailbox_type"] = _MailboxType_SYMBOLS[value["mailbox_type"]]
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "address": self.address,
            "mailbox_type": self.mailbox_type,
            "domain": self.domain,
        }


@dataclass(frozen=True, kw_only=True)
class NotificationPreferences:
    SCHEMA: ClassVar[str] = "harpicoop.NotificationPreferences"

    opted_out: bool = False
    """True when the practitioner asked to receive no notice."""
    preferred_address: str | None = None
    """The mailbox to use among several; must be one of `mailboxes`."""
    delivery: DeliveryChoices = field(
        default_factory=lambda: DeliveryChoices(
            event_kinds=(
                PreferredEventKind.ADMISSION,
                PreferredEventKind.DISCHARGE,
                PreferredEventKind.CORRECTION,
            ),
            mode=DeliveryMode.REALTIME,
            digest_hour=18,
        )
    )
    """Which notices and when; the defaults when never set."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "opted_out": value.get("opted_out", False),
                "preferred_address": value.get("preferred_address", None),
                "delivery": DeliveryChoices.from_avro(value.get("delivery", _DEFAULT_1)),
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["delivery"] = DeliveryChoices.adopt_avro(value["delivery"])
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "opted_out": self.opted_out,
            "preferred_address": self.preferred_address,
            "delivery": self.delivery.to_avro(),
        }


@dataclass(frozen=True, kw_only=True)
class Practitioner:
    """A health professional from the Annuaire Santé extracts, with their secure mailboxes and their preferences. Value of the compacted `practitioners` topic, keyed by RPPS; a removed practitioner is a tombstone."""

    SCHEMA: ClassVar[str] = "harpicoop.Practitioner"

    rpps: str
    """RPPS number, 11 digits."""
    civility: str | None = None
    """Civility or title code as published (M, MME, DR...)."""
    family_name: str
    """Practising family name."""
    given_name: str
    """Practising given name."""
    profession_code: str | None = None
    """Profession code; 10 is doctor."""
    profession: str | None = None
    """Profession label."""
    specialty_code: str | None = None
    """Specialty (savoir-faire) code, e.g. SM54 general medicine."""
    specialty: str | None = None
    """Specialty label."""
    structure_name: str | None = None
    """Name of the practice or structure of the main activity."""
    city: str | None = None
    """City of the main practice address."""
    postcode: str | None = None
    """Postcode of the main practice address."""
    mailboxes: tuple[Mailbox, ...]
    """Secure messaging (MSSanté) mailboxes; empty when the practitioner has none."""
    preferences: NotificationPreferences
    """The practitioner's own choices about notifications."""
    updated_at: dt.datetime
    """When the directory last changed this practitioner."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "rpps": value["rpps"],
                "civility": value.get("civility", None),
                "family_name": value["family_name"],
                "given_name": value["given_name"],
                "profession_code": value.get("profession_code", None),
                "profession": value.get("profession", None),
                "specialty_code": value.get("specialty_code", None),
                "specialty": value.get("specialty", None),
                "structure_name": value.get("structure_name", None),
                "city": value.get("city", None),
                "postcode": value.get("postcode", None),
                "mailboxes": tuple([Mailbox.from_avro(_11_0) for _11_0 in value["mailboxes"]]),
                "preferences": NotificationPreferences.from_avro(value["preferences"]),
                "updated_at": value["updated_at"],
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["mailboxes"] = tuple([Mailbox.adopt_avro(_11_0) for _11_0 in value["mailboxes"]])
        value["preferences"] = NotificationPreferences.adopt_avro(value["preferences"])
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "rpps": self.rpps,
            "civility": self.civility,
            "family_name": self.family_name,
            "given_name": self.given_name,
            "profession_code": self.profession_code,
            "profession": self.profession,
            "specialty_code": self.specialty_code,
            "specialty": self.specialty,
            "structure_name": self.structure_name,
            "city": self.city,
            "postcode": self.postcode,
            "mailboxes": [_11_0.to_avro() for _11_0 in self.mailboxes],
            "preferences": self.preferences.to_avro(),
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, kw_only=True)
class PractitionerRef:
    """A practitioner as a message names them (XCN): the RPPS from whichever repetition carries it, and the name."""

    SCHEMA: ClassVar[str] = "harpicoop.PractitionerRef"

    rpps: str | None = None
    """RPPS number (11 digits), from the repetition typed RPPS (or IDNPS 8 + RPPS); null when none carries one."""
    family_name: str | None = None
    """XCN-2."""
    given_name: str | None = None
    """XCN-3."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "rpps": value.get("rpps", None),
                "family_name": value.get("family_name", None),
                "given_name": value.get("given_name", None),
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "rpps": self.rpps,
            "family_name": self.family_name,
            "given_name": self.given_name,
        }


@dataclass(frozen=True, kw_only=True)
class RawMessage:
    """One HL7 message exactly as the gateway received it, with what became of it: for audit and replay, whether it was accepted or not. Value of `hl7.archive`, keyed by establishment code (or the sending facility as sent when it is unknown). Patient-identifying (the raw bytes)."""

    SCHEMA: ClassVar[str] = "harpicoop.RawMessage"

    received_at: dt.datetime
    """When the gateway received the message."""
    peer: str
    """The sender's address and port as the gateway saw them."""
    raw: bytes
    """The message bytes between the MLLP start and end blocks, undecoded; only the first bytes when `truncated`."""
    size: int
    """The message's size in bytes as received."""
    truncated: bool = False
    """True when the message exceeded the gateway's size limit and only its head is kept."""
    charset: str | None = None
    """The character set the message was decoded with (a Python codec name: utf-8, iso8859-1, ascii...); null when it could not be decoded."""
    establishment: str | None = None
    """Establishment code, when MSH-4 named a known one."""
    sending_facility: str | None = None
    """MSH-4 as sent."""
    message_type: str | None = None
    """MSH-9 message code and trigger, e.g. ADT^A01."""
    message_control_id: str | None = None
    """MSH-10."""
    event_id: str | None = None
    """The id of the StayEvent or PatientMerge the message became, when it became one."""
    topic: str | None = None
    """Where that record was written."""
    outcome: MessageOutcome
    """PUBLISHED mapped and written to `topic`; KEPT an identity message acknowledged and only archived; IGNORED a trigger the platform does not use, acknowledged; ERROR answered AE; REJECTED answered AR."""
    ack_code: str | None = None
    """MSA-1 of the acknowledgement sent once this record and `topic`'s were written (AA, AE, AR; CA, CE, CR in enhanced mode); null when the sender asked for none."""
    error_code: str | None = None
    """HL7 table 0357 code of the first error (ERR-3)."""
    error_location: str | None = None
    """Where that error is, e.g. PID-3 (ERR-2)."""
    error_detail: str | None = None
    """What is wrong, in words, as sent in the ERR segments; no patient data."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "received_at": value["received_at"],
                "peer": value["peer"],
                "raw": value["raw"],
                "size": value["size"],
                "truncated": value.get("truncated", False),
                "charset": value.get("charset", None),
                "establishment": value.get("establishment", None),
                "sending_facility": value.get("sending_facility", None),
                "message_type": value.get("message_type", None),
                "message_control_id": value.get("message_control_id", None),
                "event_id": value.get("event_id", None),
                "topic": value.get("topic", None),
                "outcome": _MessageOutcome_SYMBOLS[value["outcome"]],
                "ack_code": value.get("ack_code", None),
                "error_code": value.get("error_code", None),
                "error_location": value.get("error_location", None),
                "error_detail": value.get("error_detail", None),
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["outcome"] = _MessageOutcome_SYMBOLS[value["outcome"]]
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "received_at": self.received_at,
            "peer": self.peer,
            "raw": self.raw,
            "size": self.size,
            "truncated": self.truncated,
            "charset": self.charset,
            "establishment": self.establishment,
            "sending_facility": self.sending_facility,
            "message_type": self.message_type,
            "message_control_id": self.message_control_id,
            "event_id": self.event_id,
            "topic": self.topic,
            "outcome": self.outcome,
            "ack_code": self.ack_code,
            "error_code": self.error_code,
            "error_location": self.error_location,
            "error_detail": self.error_detail,
        }


@dataclass(frozen=True, kw_only=True)
class FallbackAddress:
    """One further step of a recipient's fallback chain."""

    SCHEMA: ClassVar[str] = "harpicoop.FallbackAddress"

    rpps: str
    """Whose mailbox: the recipient's own, or their substitute's."""
    address: str
    """The secure address to write to at this step."""
    mailbox_type: str
    """PER, CAB, ORG, APP or OTHER, as the directory says."""
    role: CareRole
    """The recipient's own role, or SUBS for the GP's substitute."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "rpps": value["rpps"],
                "address": value["address"],
                "mailbox_type": value["mailbox_type"],
                "role": _CareRole_SYMBOLS[value["role"]],
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["role"] = _CareRole_SYMBOLS[value["role"]]
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "rpps": self.rpps,
            "address": self.address,
            "mailbox_type": self.mailbox_type,
            "role": self.role,
        }


@dataclass(frozen=True, kw_only=True)
class Recipient:
    """Practitioners to notify: the GP (ODRP) first, then the other roles of the 'right list'."""

    SCHEMA: ClassVar[str] = "harpicoop.Recipient"

    role: CareRole
    """Their role towards the patient."""
    rpps: str
    """RPPS number."""
    family_name: str
    """From the directory."""
    given_name: str
    """From the directory."""
    mssante_address: str | None = None
    """The secure address to write to: the preferred one, else the personal one; null when none."""
    opted_out: bool = False
    """The practitioner asked for no notices."""
    delivery: DeliveryChoices = field(
        default_factory=lambda: DeliveryChoices(
            event_kinds=(
                PreferredEventKind.ADMISSION,
                PreferredEventKind.DISCHARGE,
                PreferredEventKind.CORRECTION,
            ),
            mode=DeliveryMode.REALTIME,
            digest_hour=18,
        )
    )
    """The practitioner's choices of notices and timing, copied from the directory."""
    fallback: tuple[FallbackAddress, ...] = ()
    """Where to write, in order, when the address above bounces or is refused for good: the practitioner's other mailbox (personal, else the practice's, CAB then ORG), then, for the GP, their substitute (ROL SUBS of the event) at their secure address. Empty: no further step."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "role": _CareRole_SYMBOLS[value["role"]],
                "rpps": value["rpps"],
                "family_name": value["family_name"],
                "given_name": value["given_name"],
                "mssante_address": value.get("mssante_address", None),
                "opted_out": value.get("opted_out", False),
                "delivery": DeliveryChoices.from_avro(value.get("delivery", _DEFAULT_2)),
                "fallback": tuple(
                    [FallbackAddress.from_avro(_7_0) for _7_0 in value.get("fallback", _DEFAULT_3)]
                ),
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["role"] = _CareRole_SYMBOLS[value["role"]]
        value["delivery"] = DeliveryChoices.adopt_avro(value["delivery"])
        value["fallback"] = tuple([FallbackAddress.adopt_avro(_7_0) for _7_0 in value["fallback"]])
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "role": self.role,
            "rpps": self.rpps,
            "family_name": self.family_name,
            "given_name": self.given_name,
            "mssante_address": self.mssante_address,
            "opted_out": self.opted_out,
            "delivery": self.delivery.to_avro(),
            "fallback": [_7_0.to_avro() for _7_0 in self.fallback],
        }


@dataclass(frozen=True, kw_only=True)
class Movement:
    SCHEMA: ClassVar[str] = "harpicoop.Movement"

    movement_id: str
    """ZBE-1, the movement's id in the sending system (component 1)."""
    authority: str | None = None
    """ZBE-1's assigning authority: its universal id (EI-3), else its namespace id (EI-2). The movement is identified by the stay, this authority and `movement_id` (services.common.movements); with `action`, a movement action."""
    occurred_at: dt.datetime
    """ZBE-2, when the movement happened (event time)."""
    unit: str | None = None
    """The unit of medical responsibility: ZBE-7 (ZBE-8 when ZBE-7 is empty, as some engines send it), its code XON-10 (XON-3 in older engines)."""
    unit_name: str | None = None
    """Its name (XON-1 of the same field), when sent."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "movement_id": value["movement_id"],
                "authority": value.get("authority", None),
                "occurred_at": value["occurred_at"],
                "unit": value.get("unit", None),
                "unit_name": value.get("unit_name", None),
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "movement_id": self.movement_id,
            "authority": self.authority,
            "occurred_at": self.occurred_at,
            "unit": self.unit,
            "unit_name": self.unit_name,
        }


@dataclass(frozen=True, kw_only=True)
class Stay:
    SCHEMA: ClassVar[str] = "harpicoop.Stay"

    visit_number: str
    """PV1-19."""
    billing_number: str | None = None
    """PID-18, the billing file number (NDA)."""
    patient_class: str | None = None
    """PV1-2 as sent: I inpatient, O outpatient, E emergency, R recurring, N not applicable..."""
    admission_type: str | None = None
    """PV1-4 as sent."""
    admission_mode: AdmissionMode = AdmissionMode.UNKNOWN
    """Scheduled or emergency stay, from PV1-14, PV1-4 and PV1-2."""
    admitted_at: dt.datetime | None = None
    """PV1-44."""
    discharged_at: dt.datetime | None = None
    """PV1-45."""
    discharge_disposition: str | None = None
    """PV1-36 as sent."""
    discharge_destination: str | None = None
    """PV1-37, the establishment the patient goes to."""
    attending_doctor: PractitionerRef | None = None
    """PV1-7."""
    referring_doctor: PractitionerRef | None = None
    """PV1-8."""
    admitting_doctor: PractitionerRef | None = None
    """PV1-17."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "visit_number": value["visit_number"],
                "billing_number": value.get("billing_number", None),
                "patient_class": value.get("patient_class", None),
                "admission_type": value.get("admission_type", None),
                "admission_mode": _AdmissionMode_SYMBOLS[value.get("admission_mode", "UNKNOWN")],
                "admitted_at": value.get("admitted_at", None),
                "discharged_at": value.get("discharged_at", None),
                "discharge_disposition": value.get("discharge_disposition", None),
                "discharge_destination": value.get("discharge_destination", None),
                "attending_doctor": None
                if (_9_0 := value.get("attending_doctor", None)) is None
                else PractitionerRef.from_avro(_9_0),
                "referring_doctor": None
                if (_10_0 := value.get("referring_doctor", None)) is None
                else PractitionerRef.from_avro(_10_0),
                "admitting_doctor": None
                if (_11_0 := value.get("admitting_doctor", None)) is None
                else PractitionerRef.from_avro(_11_0),
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["admission_mode"] = _AdmissionMode_SYMBOLS[value["admission_mode"]]
        value["attending_doctor"] = (
            None
            if (_9_0 := value["attending_doctor"]) is None
            else PractitionerRef.adopt_avro(_9_0)
        )
        value["referring_doctor"] = (
            None
            if (_10_0 := value["referring_doctor"]) is None
            else PractitionerRef.adopt_avro(_10_0)
        )
        value["admitting_doctor"] = (
            None
            if (_11_0 := value["admitting_doctor"]) is None
            else PractitionerRef.adopt_avro(_11_0)
        )
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "visit_number": self.visit_number,
            "billing_number": self.billing_number,
            "patient_class": self.patient_class,
            "admission_type": self.admission_type,
            "admission_mode": self.admission_mode,
            "admitted_at": self.admitted_at,
            "discharged_at": self.discharged_at,
            "discharge_disposition": self.discharge_disposition,
            "discharge_destination": self.discharge_destination,
            "attending_doctor": None if (_9_0 := self.attending_doctor) is None else _9_0.to_avro(),
            "referring_doctor": None
            if (_10_0 := self.referring_doctor) is None
            else _10_0.to_avro(),
            "admitting_doctor": None
            if (_11_0 := self.admitting_doctor) is None
            else _11_0.to_avro(),
        }


@dataclass(frozen=True, kw_only=True)
class CareTeamMember:
    SCHEMA: ClassVar[str] = "harpicoop.CareTeamMember"

    role: CareRole
    """ROL-3."""
    rpps: str | None = None
    """The RPPS from whichever ROL-4 repetition carries it (type RPPS, or IDNPS 8 + RPPS)."""
    family_name: str | None = None
    """ROL-4 family name."""
    given_name: str | None = None
    """ROL-4 given name."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "role": _CareRole_SYMBOLS[value["role"]],
                "rpps": value.get("rpps", None),
                "family_name": value.get("family_name", None),
                "given_name": value.get("given_name", None),
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["role"] = _CareRole_SYMBOLS[value["role"]]
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "role": self.role,
            "rpps": self.rpps,
            "family_name": self.family_name,
            "given_name": self.given_name,
        }


@dataclass(frozen=True, kw_only=True)
class StayEvent:
    """One patient movement of one stay, as an establishment's engine sent it (HL7 v2.5 ADT, IHE PAM FR) or published it directly. Value of `stays.raw.<establishment>`, keyed by `stay_key`."""

    SCHEMA: ClassVar[str] = "harpicoop.StayEvent"

    event_id: str
    """Unique id of this event: `<establishment>:<message control id>` for HL7 input (MSH-10 is unique per sender)."""
    establishment: str
    """Code of the establishment (deploy/establishments.csv), from MSH-4."""
    stay_key: str
    """`<establishment>:<visit number>`: every event of a stay lands in one partition, in order."""
    kind: EventKind
    """What happened to the stay."""
    action: Action
    """ZBE-4: insert, update (correction) or cancel of the movement."""
    trigger_event: str
    """The HL7 trigger as sent (A01, A11, Z99...)."""
    original_trigger: str | None = None
    """ZBE-6: the trigger of the movement that an update or cancel acts upon."""
    message_control_id: str
    """MSH-10, the sender's message id; with `establishment`, identifies a resent message."""
    sent_at: dt.datetime | None = None
    """MSH-7, when the engine built the message."""
    received_at: dt.datetime
    """When the platform received the message."""
    movement: Movement
    """The movement (ZBE segment)."""
    patient: Patient
    """Who the stay is for. Patient-identifying: never copied to logs, metrics or analytics topics."""
    stay: Stay
    """The stay (visit) the movement belongs to."""
    care_team: tuple[CareTeamMember, ...] = ()
    """Practitioners named in ROL segments."""
    covid_status: CovidStatus = CovidStatus.UNKNOWN
    """From an OBX with a SARS-CoV-2 LOINC code."""
    patient_protected: bool | None = None
    """PD1-12, the patient's protection indicator (PAM FR: Y protected access, N normal access): true for Y, false for N, null when the message does not say (absent or the HL7 null). A protected patient's stay is notified to nobody."""
    stay_protected: bool | None = None
    """PV2-22, the visit protection indicator (PAM FR: the stay's data are protected): true for Y, false for N, null when the message does not say. A protected stay is notified to nobody."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "event_id": value["event_id"],
                "establishment": value["establishment"],
                "stay_key": value["stay_key"],
                "kind": _EventKind_SYMBOLS[value["kind"]],
                "action": _Action_SYMBOLS[value["action"]],
                "trigger_event": value["trigger_event"],
                "original_trigger": value.get("original_trigger", None),
                "message_control_id": value["message_control_id"],
                "sent_at": value.get("sent_at", None),
                "received_at": value["received_at"],
                "movement": Movement.from_avro(value["movement"]),
                "patient": Patient.from_avro(value["patient"]),
                "stay": Stay.from_avro(value["stay"]),
                "care_team": tuple(
                    [
                        CareTeamMember.from_avro(_13_0)
                        for _13_0 in value.get("care_team", _DEFAULT_4)
                    ]
                ),
                "covid_status": _CovidStatus_SYMBOLS[value.get("covid_status", "UNKNOWN")],
                "patient_protected": value.get("patient_protected", None),
                "stay_protected": value.get("stay_protected", None),
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["kind"] = _EventKind_SYMBOLS[value["kind"]]
        value["action"] = _Action_SYMBOLS[value["action"]]
        value["movement"] = Movement.adopt_avro(value["movement"])
        value["patient"] = Patient.adopt_avro(value["patient"])
        value["stay"] = Stay.adopt_avro(value["stay"])
        value["care_team"] = tuple(
            [CareTeamMember.adopt_avro(_13_0) for _13_0 in value["care_team"]]
        )
        value["covid_status"] = _CovidStatus_SYMBOLS[value["covid_status"]]
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "event_id": self.event_id,
            "establishment": self.establishment,
            "stay_key": self.stay_key,
            "kind": self.kind,
            "action": self.action,
            "trigger_event": self.trigger_event,
            "original_trigger": self.original_trigger,
            "message_control_id": self.message_control_id,
            "sent_at": self.sent_at,
            "received_at": self.received_at,
            "movement": self.movement.to_avro(),
            "patient": self.patient.to_avro(),
            "stay": self.stay.to_avro(),
            "care_team": [_13_0.to_avro() for _13_0 in self.care_team],
            "covid_status": self.covid_status,
            "patient_protected": self.patient_protected,
            "stay_protected": self.stay_protected,
        }


@dataclass(frozen=True, kw_only=True)
class UnroutableStayEvent:
    """A deduplicated stay event for which no GP can be notified, with the reason. Value of `stays.unroutable`, keyed by `stay_key`; it can be enriched again after a directory update."""

    SCHEMA: ClassVar[str] = "harpicoop.UnroutableStayEvent"

    event: StayEvent
    """The event as ingested."""
    reason: UnroutableReason
    """NO_GP: no ROL ODRP in the message; UNKNOWN_RPPS: the GP's RPPS is not in the directory; NO_SECURE_ADDRESS: the GP has no MSSanté mailbox."""
    gp_rpps: str | None = None
    """The GP's RPPS when one was sent."""
    detail: str
    """A sentence for the operator, with ids only."""
    detected_at: dt.datetime
    """When enrichment gave up."""

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self:
        """The record from its Avro value, as the serde reads it."""
        record = _new(cls)
        _set(
            record,
            "__dict__",
            {
                "event": StayEvent.from_avro(value["event"]),
                "reason": _UnroutableReason_SYMBOLS[value["reason"]],
                "gp_rpps": value.get("gp_rpps", None),
                "detail": value["detail"],
                "detected_at": value["detected_at"],
            },
        )
        return record

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self:
        """``from_avro`` of a whole value just decoded, that nobody else holds
        (the serde's): the dict becomes the record's, its fields converted in place.
        """
        value["event"] = StayEvent.adopt_avro(value["event"])
        value["reason"] = _UnroutableReason_SYMBOLS[value["reason"]]
        record = _new(cls)
        _set(record, "__dict__", value)
        return record

    def to_avro(self) -> dict[str, Any]:
        """The Avro value of the record, for the serde to write."""
        return {
            "event": self.event.to_avro(),
            "reason": self.reason,
            "gp_rpps": self.gp_rpps,
            "detail": self.detail,
            "detected_at": self.detected_at,
        }


__all__ = [
    "Action",
    "AdmissionMode",
    "AnalyticsCount",
    "CareRole",
    "CareTeamMember",
    "CloseReason",
    "CovidFollowup",
    "CovidStatus",
    "DeliveryChoices",
    "DeliveryMode",
    "DeliveryStatus",
    "EnrichedStayEvent",
    "EventKind",
    "FallbackAddress",
    "FollowupState",
    "Granularity",
    "Mailbox",
    "MailboxType",
    "MessageOutcome",
    "Movement",
    "NoticeKind",
    "NotificationPreferences",
    "NotificationStatus",
    "Patient",
    "PatientMerge",
    "PersonName",
    "Practitioner",
    "PractitionerRef",
    "PreferredEventKind",
    "RawMessage",
    "Recipient",
    "Stay",
    "StayEvent",
    "UnroutableReason",
    "UnroutableStayEvent",
]
