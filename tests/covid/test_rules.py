"""When a follow-up case opens and closes, and how a patient is recognised across establishments."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from services.common.records import Patient, PatientMerge, StayEvent
from services.covid.rules import (
    Effect,
    PatientRecord,
    as_survivor,
    effects,
    identity_key,
    merged_record,
)
from tests.covid.builders import patient_merge, survivor
from tests.notify.builders import enriched


@pytest.mark.parametrize(
    ("kind", "action", "status", "expected"),
    [
        ("DISCHARGE", "INSERT", "POSITIVE", [Effect.OPEN]),
        ("DISCHARGE", "INSERT", "SUSPECTED", [Effect.OPEN]),
        ("DISCHARGE", "UPDATE", "POSITIVE", [Effect.OPEN]),
        ("DISCHARGE", "INSERT", "NOT_TESTED", []),
        ("DISCHARGE", "INSERT", "NEGATIVE", [Effect.CLOSE_NEGATIVE]),
        ("DISCHARGE", "CANCEL", "POSITIVE", [Effect.CLOSE_CANCELLED]),
        ("ADMISSION", "INSERT", "UNKNOWN", [Effect.CLOSE_READMISSION]),
        ("CHANGE_TO_INPATIENT", "INSERT", "UNKNOWN", [Effect.CLOSE_READMISSION]),
        ("ADMISSION", "CANCEL", "UNKNOWN", []),
        ("TRANSFER", "INSERT", "NEGATIVE", [Effect.CLOSE_NEGATIVE]),
        ("REGISTRATION", "INSERT", "UNKNOWN", []),
    ],
)
def test_effects_of_stay_events(
    kind: str, action: str, status: str, expected: list[Effect]
) -> None:
    event = enriched("V1", [], kind=kind, action=action, covid_status=status)["event"]
    assert effects(StayEvent.from_avro(event)) == expected


@pytest.mark.parametrize("action", ["INSERT", "UPDATE"])
def test_a_discharge_by_death_opens_no_case_and_closes_the_patients(action: str) -> None:
    # PMSI mode de sortie 9: nobody is to be reminded to follow up a patient who died.
    event = enriched("V1", [], kind="DISCHARGE", action=action, covid_status="POSITIVE")["event"]
    event["stay"]["discharge_disposition"] = "9"
    assert effects(StayEvent.from_avro(event)) == [Effect.CLOSE_DECEASED]


def patient(**fields: Any) -> Patient:
    return Patient.from_avro({"ipp": "IPP-1", **fields})


def test_the_same_person_is_recognised_despite_accents_case_and_spacing() -> None:
    a = patient(
        family_name="Lefèvre", given_name="Hélène", birth_date=dt.date(1948, 7, 14), sex="F"
    )
    b = patient(
        family_name="LEFEVRE", given_name="helene", birth_date=dt.date(1948, 7, 14), sex="f"
    )
    c = patient(
        family_name="Lefèvre", given_name="Hélène", birth_date=dt.date(1948, 7, 15), sex="F"
    )
    assert identity_key(a) == identity_key(b)
    assert identity_key(a) != identity_key(c)


def test_the_birth_name_identifies_a_patient_whose_used_name_changed() -> None:
    a = patient(family_name="Durand", birth_name="Lefèvre", given_name="Hélène", sex="F")
    b = patient(family_name="Lefèvre", birth_name=None, given_name="Hélène", sex="F")
    assert identity_key(a) == identity_key(b)


def test_a_merge_does_away_with_the_merged_record_of_its_establishment() -> None:
    merge = PatientMerge.from_avro(
        patient_merge(survivor("IPP-A"), "IPP-B", establishment="luneville")
    )
    assert merged_record(merge) == PatientRecord("luneville", "IPP-B")
    # The same IPP elsewhere is another patient's record: IPPs are per establishment.
    assert merged_record(merge) != PatientRecord("chrunancy", "IPP-B")


def test_a_merge_naming_the_survivor_itself_moves_nothing() -> None:
    assert merged_record(PatientMerge.from_avro(patient_merge(survivor("IPP-A"), "IPP-A"))) is None


def test_an_event_of_the_merged_record_is_the_survivors_and_finds_the_survivors_cases() -> None:
    merged_discharge = StayEvent.from_avro(
        enriched("V1", [], kind="DISCHARGE", covid_status="POSITIVE")["event"]
    )
    surviving = Patient.from_avro(survivor("IPP-A", ins="248077514812345"))
    later_death_of_survivor = enriched("V2", [], kind="DISCHARGE")["event"]
    later_death_of_survivor["patient"] = {**surviving.to_avro(), "family_name": "DURAND"}
    later_death = StayEvent.from_avro(later_death_of_survivor)

    read = as_survivor(merged_discharge, surviving)
    assert read.patient == surviving and read.stay_key == merged_discharge.stay_key
    assert merged_discharge.patient.ipp != "IPP-A"  # the event as received is left as is
    # The survivor's later events recognise the moved case as the patient's own, and the merged
    # record's identity (another birth name here) no longer does.
    assert identity_key(read.patient) == identity_key(later_death.patient)
    assert identity_key(read.patient) != identity_key(merged_discharge.patient)
    # Nothing of the merged identity is kept where the survivor's record leaves a field empty:
    # a birth name kept would change the identity key.
    no_birth_name = Patient.from_avro(survivor("IPP-A", birth_name=None))
    assert as_survivor(merged_discharge, no_birth_name).patient.birth_name is None
