"""The follow-up rules, free of Kafka and SQL.

- A discharge (inserted or corrected) with Covid-19 status POSITIVE or SUSPECTED opens a case.
- A later admission of the same patient in any establishment of the GHT closes their open cases
  (READMISSION); so does a later event carrying a NEGATIVE status (NEGATIVE_RESULT).
- The cancellation of the discharge closes the case it opened (DISCHARGE_CANCELLED).
- A discharge by death opens no case and closes the patient's open ones (DECEASED): nobody is
  reminded to follow up a patient who died.
- An open case is reminded to the GP once after the reminder delay, and completes some time later.
- A merge (A40) of an establishment's patient record into another moves the merged record's open
  cases to the surviving patient: from then on they are the survivor's, found by its identity.
"""

from __future__ import annotations

import dataclasses
import enum
import unicodedata
import uuid
from dataclasses import dataclass

from services.common.dispositions import is_death
from services.common.records import Action, CovidStatus, EventKind, Patient, PatientMerge, StayEvent

_CASE_NAMESPACE = uuid.UUID("1b8e0a52-2f7e-4c55-9d2e-7a6f0c3e9b41")

FOLLOWED_STATUSES = frozenset({CovidStatus.POSITIVE, CovidStatus.SUSPECTED})
READMISSION_KINDS = frozenset({EventKind.ADMISSION, EventKind.CHANGE_TO_INPATIENT})


class Effect(enum.Enum):
    OPEN = "open"
    CLOSE_READMISSION = "READMISSION"
    CLOSE_NEGATIVE = "NEGATIVE_RESULT"
    CLOSE_CANCELLED = "DISCHARGE_CANCELLED"
    CLOSE_DECEASED = "DECEASED"


def case_id(discharge_event_id: str) -> str:
    return str(uuid.uuid5(_CASE_NAMESPACE, discharge_event_id))


def _normalised(text: str | None) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    letters = "".join(char for char in decomposed if char.isalnum())
    return letters.upper()


def identity_key(patient: Patient) -> str:
    """Who the patient is across establishments when no qualified INS is known."""
    birth = patient.birth_date
    return "|".join(
        [
            _normalised(patient.birth_name or patient.family_name),
            _normalised(patient.given_name),
            birth.isoformat() if birth else "",
            (patient.sex or "").upper(),
        ]
    )


def effects(event: StayEvent) -> list[Effect]:
    """What a stay event does to follow-up cases."""
    found = []
    if event.kind is EventKind.DISCHARGE:
        if event.action is Action.CANCEL:
            found.append(Effect.CLOSE_CANCELLED)
        elif is_death(event.stay.discharge_disposition):
            found.append(Effect.CLOSE_DECEASED)
        elif event.covid_status in FOLLOWED_STATUSES:
            found.append(Effect.OPEN)
    if event.kind in READMISSION_KINDS and event.action is Action.INSERT:
        found.append(Effect.CLOSE_READMISSION)
    if event.covid_status is CovidStatus.NEGATIVE and event.action is not Action.CANCEL:
        found.append(Effect.CLOSE_NEGATIVE)
    return found


@dataclass(frozen=True)
class PatientRecord:
    """One establishment's record of a patient: IPPs are per establishment."""

    establishment: str
    ipp: str


def record_of(establishment: str, patient: Patient) -> PatientRecord:
    return PatientRecord(establishment, patient.ipp)


def merged_record(merge: PatientMerge) -> PatientRecord | None:
    """The record a merge does away with (its events and cases are the survivor's from then
    on); None when the merge names the survivor's own IPP, which moves nothing."""
    merged = PatientRecord(merge.establishment, merge.merged_ipp)
    return None if merged == record_of(merge.establishment, merge.patient) else merged


def as_survivor(event: StayEvent, survivor: Patient) -> StayEvent:
    """A stay event of a merged record, read as the surviving patient's: the survivor's
    identity entirely (the merge's PID is who the patient is now), nothing of the merged one's
    kept, so that the identity key and INS are the survivor's."""
    return dataclasses.replace(event, patient=survivor)
