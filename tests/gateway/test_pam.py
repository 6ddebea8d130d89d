"""PAM FR movements and merges mapped to StayEvent and PatientMerge records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastavro.validation import validate

from services.common.establishments import Establishment, establishments_by_facility
from services.common.records import StayEvent
from services.common.schemas import parsed_schema
from services.gateway.covid import CovidMapping, load_covid_mapping
from services.gateway.hl7 import ErrorCode, MessageError, parse
from services.gateway.pam import Mapped, admission_mode, patient_merge, stay_event
from tests.gateway.messages import GP, identity, movement

PARIS = ZoneInfo("Europe/Paris")
RECEIVED = dt.datetime(2026, 3, 2, 7, 16, tzinfo=dt.UTC)
NANCY = establishments_by_facility()["CHRU_NANCY"]
TOUL = establishments_by_facility()["CH_TOUL"]
COVID = load_covid_mapping()


def mapped(raw: bytes, establishment: Establishment = NANCY) -> Mapped[StayEvent]:
    return stay_event(parse(raw), establishment, RECEIVED, COVID, PARIS)


def event(raw: bytes, establishment: Establishment = NANCY) -> dict[str, Any]:
    """The StayEvent's Avro value, as written to the topic."""
    record = mapped(raw, establishment).value.to_avro()
    validate(record, parsed_schema("harpicoop.StayEvent"), raise_errors=True)
    return record


def test_an_admission_becomes_a_complete_stay_event() -> None:
    raw = movement(
        "A01",
        control_id="MSG42",
        visit="V2026-0042",
        ins="2480799123456",
        identity_status="VALI",
        admit_source="PROG",
        admitted_at="20260302080000",
        care_team=[
            GP,
            ("RP", "10003456789", "Bérard", "Noël"),
            ("SUBS", "810001234567", "Ægir", "Zoé"),
        ],
        covid=("94500-6", "260415000"),
    )
    paris_0810 = dt.datetime(2026, 3, 2, 8, 10, tzinfo=PARIS)
    assert event(raw) == {
        "event_id": "chrunancy:MSG42",
        "establishment": "chrunancy",
        "stay_key": "chrunancy:V2026-0042",
        "kind": "ADMISSION",
        "action": "INSERT",
        "trigger_event": "A01",
        "original_trigger": None,
        "message_control_id": "MSG42",
        "sent_at": dt.datetime(2026, 3, 2, 8, 15, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        "received_at": RECEIVED,
        "movement": {
            "movement_id": "MVT0001",
            "authority": "SIH_GAM",
            "occurred_at": paris_0810,
            "unit": "4012",
            "unit_name": "Cardiologie adulte",
        },
        "patient": {
            "ipp": "IPP0001",
            "ins": "2480799123456",
            "family_name": "Lefèvre",
            "given_name": "Hélène",
            "birth_name": "Müller-Château",
            "birth_date": dt.date(1948, 7, 14),
            "sex": "F",
            "used_name": {
                "family_name": "Lefèvre",
                "given_name": "Hélène",
                "other_given_names": None,
            },
            "legal_name": {
                "family_name": "Müller-Château",
                "given_name": "Hélène",
                "other_given_names": None,
            },
        },
        "stay": {
            "visit_number": "V2026-0042",
            "billing_number": "NDA0001",
            "patient_class": "I",
            "admission_type": "R",
            "admission_mode": "SCHEDULED",
            "admitted_at": dt.datetime(2026, 3, 2, 8, 0, tzinfo=PARIS),
            "discharged_at": None,
            "discharge_disposition": None,
            "discharge_destination": None,
            "attending_doctor": None,
            "referring_doctor": None,
            "admitting_doctor": None,
        },
        "care_team": [
            {
                "role": "ODRP",
                "rpps": "10101010101",
                "family_name": "Martin",
                "given_name": "Jeanne",
            },
            {"role": "RP", "rpps": "10003456789", "family_name": "Bérard", "given_name": "Noël"},
            {"role": "SUBS", "rpps": "10001234567", "family_name": "Ægir", "given_name": "Zoé"},
        ],
        "covid_status": "NEGATIVE",
        "patient_protected": None,
        "stay_protected": None,
    }


@pytest.mark.parametrize(
    ("trigger", "original", "kind", "action"),
    [
        ("A01", "", "ADMISSION", "INSERT"),
        ("A02", "", "TRANSFER", "INSERT"),
        ("A03", "", "DISCHARGE", "INSERT"),
        ("A04", "", "REGISTRATION", "INSERT"),
        ("A05", "", "PRE_ADMISSION", "INSERT"),
        ("A06", "", "CHANGE_TO_INPATIENT", "INSERT"),
        ("A07", "", "CHANGE_TO_OUTPATIENT", "INSERT"),
        ("A21", "", "LEAVE_OF_ABSENCE", "INSERT"),
        ("A22", "", "RETURN_FROM_LEAVE", "INSERT"),
        ("A54", "", "ATTENDING_DOCTOR_CHANGE", "INSERT"),
        ("A11", "A01", "ADMISSION", "CANCEL"),
        ("A11", "A04", "REGISTRATION", "CANCEL"),
        ("A11", "", "ADMISSION", "CANCEL"),
        ("A12", "A02", "TRANSFER", "CANCEL"),
        ("A13", "A03", "DISCHARGE", "CANCEL"),
        ("A38", "A05", "PRE_ADMISSION", "CANCEL"),
        ("A52", "A21", "LEAVE_OF_ABSENCE", "CANCEL"),
        ("A53", "A22", "RETURN_FROM_LEAVE", "CANCEL"),
        ("A55", "A54", "ATTENDING_DOCTOR_CHANGE", "CANCEL"),
        ("Z99", "A01", "ADMISSION", "UPDATE"),
        ("Z99", "A02", "TRANSFER", "UPDATE"),
        ("Z99", "A03", "DISCHARGE", "UPDATE"),
    ],
)
def test_each_trigger_gives_the_kind_of_the_movement_it_acts_upon(
    trigger: str, original: str, kind: str, action: str
) -> None:
    record = event(movement(trigger, original_trigger=original))
    assert (record["trigger_event"], record["kind"], record["action"]) == (trigger, kind, action)
    assert record["original_trigger"] == (original or None)


def test_a_discharge_carries_disposition_destination_time_and_covid_status() -> None:
    record = event(
        movement(
            "A03",
            disposition="7",
            destination="CH_TOUL",
            discharged_at="20260302143000",
            covid=("94309-2", "Positif"),
        )
    )
    assert record["stay"]["discharge_disposition"] == "7"
    assert record["stay"]["discharge_destination"] == "CH_TOUL"
    assert record["stay"]["discharged_at"] == dt.datetime(2026, 3, 2, 14, 30, tzinfo=PARIS)
    assert record["covid_status"] == "POSITIVE"


def test_the_ins_is_kept_only_when_the_identity_is_qualified() -> None:
    provisional = event(movement(ins="2480799123456", identity_status="PROV"))
    qualified = event(movement(ins="2480799123456", identity_status="VALI"))
    assert provisional["patient"]["ins"] is None
    assert qualified["patient"]["ins"] == "2480799123456"


def test_the_used_name_is_the_family_name_and_a_different_birth_name_is_kept() -> None:
    married = event(movement(family="Lefèvre", birth_name="Dupré"))["patient"]
    same = event(movement(family="Lefèvre", birth_name="Lefèvre"))["patient"]
    alone = event(movement(family="Lefèvre", birth_name=None))["patient"]
    assert (married["family_name"], married["birth_name"]) == ("Lefèvre", "Dupré")
    assert same["birth_name"] is None and alone["birth_name"] is None


@pytest.mark.parametrize(
    ("patient_class", "admission_type", "admit_source", "mode"),
    [
        ("E", "R", "", "EMERGENCY"),
        ("I", "U", "", "EMERGENCY"),
        ("I", "", "URG", "EMERGENCY"),
        ("I", "", "7", "EMERGENCY"),
        ("I", "R", "", "SCHEDULED"),
        ("I", "C", "", "SCHEDULED"),
        ("O", "", "PROG", "SCHEDULED"),
        ("I", "", "", "UNKNOWN"),
        ("I", "N", "", "UNKNOWN"),
    ],
)
def test_admission_mode_from_patient_class_admission_type_and_admit_source(
    patient_class: str, admission_type: str, admit_source: str, mode: str
) -> None:
    raw = movement(
        patient_class=patient_class, admission_type=admission_type, admit_source=admit_source
    )
    pv1 = parse(raw).first("PV1")
    assert pv1 is not None and admission_mode(pv1) == mode


def test_care_team_roles_ids_and_deletions() -> None:
    adeli = "ROL|4|UC|ODRP^^IHE_FR|541234567^Roux^Léa^^^^^^ADELI&1.2.250.1.71.4.2.1.5&ISO^D^^^ADELI"
    deleted = "ROL|5|DE|RT^^IHE_FR|10101010102^Petit^Noé^^^^^^^D^^^RPPS"
    other = "ROL|6|UC|FHCP^^IHE_FR|10101010103^Faure^Inès^^^^^^^D^^^RPPS"
    team = event(movement(care_team=[GP], extra=[adeli, deleted, other]))["care_team"]
    assert team == [
        {"role": "ODRP", "rpps": "10101010101", "family_name": "Martin", "given_name": "Jeanne"},
        {"role": "ODRP", "rpps": None, "family_name": "Roux", "given_name": "Léa"},
        {"role": "OTHER", "rpps": "10101010103", "family_name": "Faure", "given_name": "Inès"},
    ]


@pytest.mark.parametrize(
    ("change", "location", "code"),
    [
        ({"visit": ""}, "PV1-19", ErrorCode.REQUIRED_FIELD_MISSING),
        ({"movement_id": ""}, "ZBE-1", ErrorCode.REQUIRED_FIELD_MISSING),
        ({"moved_at": ""}, "ZBE-2", ErrorCode.REQUIRED_FIELD_MISSING),
        ({"moved_at": "2026-03-02 08:10"}, "ZBE-2", ErrorCode.DATA_TYPE),
        ({"ipp": ""}, "PID-3", ErrorCode.REQUIRED_FIELD_MISSING),
        ({"family": "", "birth_name": None}, "PID-5", ErrorCode.REQUIRED_FIELD_MISSING),
        ({"action": "DELETE"}, "ZBE-4", ErrorCode.TABLE_VALUE_NOT_FOUND),
        ({"action": "INSERT", "trigger": "A11"}, "ZBE-4", ErrorCode.TABLE_VALUE_NOT_FOUND),
        ({"action": "CANCEL", "trigger": "A01"}, "ZBE-4", ErrorCode.TABLE_VALUE_NOT_FOUND),
        ({"trigger": "Z99"}, "ZBE-6", ErrorCode.REQUIRED_FIELD_MISSING),
        ({"trigger": "Z99", "original_trigger": "A99"}, "ZBE-6", ErrorCode.TABLE_VALUE_NOT_FOUND),
        ({"without": ["ZBE"]}, "ZBE", ErrorCode.SEGMENT_SEQUENCE),
        ({"without": ["PV1"]}, "PV1", ErrorCode.SEGMENT_SEQUENCE),
        ({"without": ["PID"]}, "PID", ErrorCode.SEGMENT_SEQUENCE),
    ],
)
def test_a_missing_or_wrong_required_value_is_an_error_naming_its_field(
    change: dict[str, Any], location: str, code: ErrorCode
) -> None:
    with pytest.raises(MessageError) as raised:
        mapped(movement(**change))
    assert str(raised.value.problem.location) == location
    assert raised.value.problem.code is code
    assert not raised.value.rejected


def test_an_unreadable_optional_date_is_refused() -> None:
    with pytest.raises(MessageError) as raised:
        mapped(movement(admitted_at="le 2 mars", discharged_at="2026030214"))
    assert str(raised.value.problem.location) == "PV1-44"
    assert raised.value.problem.code is ErrorCode.DATA_TYPE


def test_a_date_given_to_the_hour_is_read() -> None:
    result = mapped(movement(discharged_at="2026030214"))
    assert result.value.stay.discharged_at == dt.datetime(2026, 3, 2, 14, tzinfo=PARIS)
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("observations", "establishment", "status"),
    [
        ([("94500-6", "260373001")], NANCY, "POSITIVE"),
        ([("94558-4", "Négatif")], NANCY, "NEGATIVE"),
        ([("94500-6", "suspect")], TOUL, "SUSPECTED"),
        ([("94500-6", "NON_TESTE")], TOUL, "NOT_TESTED"),
        ([("94500-6", "COVP")], NANCY, "POSITIVE"),
        ([("94500-6", "COVP")], TOUL, "UNKNOWN"),
        ([("2345-7", "260373001")], NANCY, "UNKNOWN"),
        ([], NANCY, "UNKNOWN"),
        ([("94500-6", "260373001"), ("94500-6", "260415000")], NANCY, "NEGATIVE"),
    ],
)
def test_covid_status_from_sars_cov_2_observations_by_the_establishment_table(
    observations: list[tuple[str, str]], establishment: Establishment, status: str
) -> None:
    lines = [
        f"OBX|{index}|CE|{code}^test^LN||{result}^^SCT||||||F"
        for index, (code, result) in enumerate(observations, start=1)
    ]
    raw = movement(facility=establishment.sending_facility, extra=lines)
    assert event(raw, establishment)["covid_status"] == status


def test_a_withdrawn_covid_result_does_not_count() -> None:
    lines = ["OBX|1|CE|94500-6^^LN||POS||||||F", "OBX|2|CE|94500-6^^LN||NEG||||||D"]
    assert event(movement(extra=lines))["covid_status"] == "POSITIVE"


def test_the_covid_table_refuses_a_status_the_schema_does_not_know(tmp_path: Path) -> None:
    table = tmp_path / "covid.toml"
    table.write_text('[default]\nloinc = ["94500-6"]\n[default.results]\n"POS" = "MAYBE"\n')
    with pytest.raises(ValueError, match="MAYBE"):
        load_covid_mapping(table)


def test_an_establishment_table_adds_to_the_default(tmp_path: Path) -> None:
    table = tmp_path / "covid.toml"
    table.write_text(
        '[default]\nloinc = ["94500-6"]\n[default.results]\n"POS" = "POSITIVE"\n'
        '[establishments.toul]\nloinc = ["99999-9"]\n[establishments.toul.results]\n'
        '"Présumé" = "SUSPECTED"\n'
    )
    mapping: CovidMapping = load_covid_mapping(table)
    assert mapping.is_covid_test("toul", "99999-9") and not mapping.is_covid_test("cpn", "99999-9")
    assert mapping.status("toul", "", "PRESUME") == "SUSPECTED"
    assert mapping.status("toul", "pos") == "POSITIVE"
    assert mapping.status("cpn", "", "Présumé") == "UNKNOWN"


def test_a_merge_names_the_surviving_and_the_merged_patient() -> None:
    raw = identity("A40", control_id="FUS1", ipp="IPP0001", merged_ipp="IPP0999")
    result = patient_merge(parse(raw), NANCY, RECEIVED, PARIS)
    validate(result.value.to_avro(), parsed_schema("harpicoop.PatientMerge"), raise_errors=True)
    assert result.key == "chrunancy:IPP0001"
    assert result.value.event_id == "chrunancy:FUS1"
    assert result.value.merged_ipp == "IPP0999"
    assert result.value.merged_billing_number == "NDA0999"
    assert result.value.patient.family_name == "Lefèvre"
    assert result.value.merged_at == dt.datetime(2026, 3, 2, 8, 10, tzinfo=PARIS)


def test_a_merge_without_the_merged_ipp_is_an_error() -> None:
    with pytest.raises(MessageError) as raised:
        patient_merge(parse(identity("A40", merged_ipp=None)), NANCY, RECEIVED, PARIS)
    assert str(raised.value.problem.location) == "MRG"
