"""PAM FR fields as PAM FR 2.11 and published messages fill them: the RPPS in any repetition of a
practitioner field, the HL7 null, PID-5 by name type, the medical unit in ZBE-7 or ZBE-8, and
identity messages without an IPP. Pure: no stack needed."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastavro.validation import validate

from services.common.establishments import establishments_by_facility
from services.common.schemas import parsed_schema
from services.gateway.covid import load_covid_mapping
from services.gateway.hl7 import ErrorCode, MessageError, parse
from services.gateway.intake import Intake, IntakeRules, Outcome, archive_record, take_in
from services.gateway.pam import stay_event
from tests.gateway.messages import movement
from tests.gateway.published import (
    ANS_A01_WITH_GP,
    RPPS,
    SPEC_A31_INS_NIR,
    SPEC_A47_INS_DELETED,
    XCN_ADELI,
    XCN_IDNPS_ADELI,
    XCN_IDNPS_RPPS,
    XCN_LOCAL,
    XCN_RPPS,
    as_establishment,
    with_fields,
)

PARIS = ZoneInfo("Europe/Paris")
RECEIVED = dt.datetime(2026, 3, 2, 7, 16, tzinfo=dt.UTC)
ANS_RECEIVED = dt.datetime(2024, 3, 6, 10, 12, tzinfo=dt.UTC)  # the ANS example's day
NANCY = establishments_by_facility()["CHRU_NANCY"]
COVID = load_covid_mapping()
RULES = IntakeRules(establishments_by_facility(), COVID, PARIS)
NULL = '""'


def event(raw: bytes, received_at: dt.datetime = RECEIVED) -> dict[str, Any]:
    record = stay_event(parse(raw), NANCY, received_at, COVID, PARIS).value.to_avro()
    validate(record, parsed_schema("harpicoop.StayEvent"), raise_errors=True)
    return record


def decide(raw: bytes) -> Intake:
    intake = take_in(raw, RULES, RECEIVED)
    record = archive_record(
        intake, peer="10.0.0.1:4000", received_at=RECEIVED, ack_code="AA", topic=None
    )
    validate(record.to_avro(), parsed_schema("harpicoop.RawMessage"), raise_errors=True)
    return intake


def rol(*people: str, role: str = "ODRP") -> str:
    return f"ROL|1|UC|{role}^^IHE_FR|{'~'.join(people)}"


def values(record: Any) -> list[Any]:
    """Every leaf value of a record."""
    if isinstance(record, dict):
        return [leaf for item in record.values() for leaf in values(item)]
    if isinstance(record, list):
        return [leaf for item in record for leaf in values(item)]
    return [record]


# --- Practitioners: the RPPS in whichever repetition carries it -------------------------------


@pytest.mark.parametrize(
    "people",
    [
        (XCN_ADELI, XCN_RPPS),
        (XCN_LOCAL, XCN_ADELI, XCN_RPPS),
        (XCN_IDNPS_ADELI, XCN_IDNPS_RPPS),
        (XCN_RPPS, XCN_ADELI),
    ],
    ids=["adeli-then-rpps", "local-adeli-rpps", "idnps-adeli-then-idnps-rpps", "rpps-first"],
)
def test_the_gp_s_rpps_is_found_in_whichever_rol_4_repetition_carries_it(
    people: tuple[str, ...],
) -> None:
    team = event(movement(care_team=[], extra=[rol(*people)]))["care_team"]
    assert team == [
        {"role": "ODRP", "rpps": RPPS, "family_name": "Dupont", "given_name": "Jean"},
    ]


def test_an_identifier_typed_adeli_is_never_taken_for_an_rpps() -> None:
    # ASIP-SANTE-PS assigns ADELI numbers too: the type (XCN-13) decides, not the authority.
    eleven_digit_adeli = XCN_ADELI.replace("751012344", "75101234412")
    team = event(movement(care_team=[], extra=[rol(eleven_digit_adeli)]))["care_team"]
    assert team[0]["rpps"] is None and team[0]["family_name"] == "Dupont"


def test_an_untyped_identifier_from_the_rpps_authority_is_the_rpps() -> None:
    untyped = XCN_RPPS.removesuffix("RPPS")
    team = event(movement(care_team=[], extra=[rol(XCN_ADELI, untyped)]))["care_team"]
    assert team[0]["rpps"] == RPPS


def test_the_name_comes_from_the_rpps_repetition_else_the_first_that_names_someone() -> None:
    bare_rpps = "01234567897^^^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^^^^RPPS"
    team = event(movement(care_team=[], extra=[rol(XCN_ADELI, bare_rpps)]))["care_team"]
    assert team[0] == {"role": "ODRP", "rpps": RPPS, "family_name": "Dupont", "given_name": "Jean"}


def test_pv1_doctors_are_read_with_their_rpps_from_any_repetition() -> None:
    raw = with_fields(
        movement(charset="UNICODE UTF-8"),
        "PV1",
        {7: f"{XCN_ADELI}~{XCN_RPPS}", 8: XCN_LOCAL, 17: f"{XCN_IDNPS_ADELI}~{XCN_IDNPS_RPPS}"},
    )
    stay = event(raw)["stay"]
    dupont = {"rpps": RPPS, "family_name": "Dupont", "given_name": "Jean"}
    assert stay["attending_doctor"] == dupont
    assert stay["referring_doctor"] == {"rpps": None, "family_name": "Dupont", "given_name": "Jean"}
    assert stay["admitting_doctor"] == dupont


def test_the_ans_admission_gives_the_gp_the_doctors_and_the_named_unit() -> None:
    record = event(as_establishment(ANS_A01_WITH_GP), ANS_RECEIVED)
    assert record["care_team"] == [
        {"role": "ODRP", "rpps": "10000023084", "family_name": "AGNES", "given_name": "Isabelle"}
    ]
    reault = {"rpps": "01234567897", "family_name": "Réault", "given_name": "Pierre"}
    assert record["stay"]["attending_doctor"] == reault
    assert record["stay"]["admitting_doctor"] == reault
    assert record["stay"]["referring_doctor"] is None
    assert (record["movement"]["unit"], record["movement"]["unit_name"]) == ("6268", "Chir V")
    assert record["patient"]["family_name"] == "PAT-TROIS"
    assert record["patient"]["legal_name"] == {
        "family_name": "PAT-TROIS",
        "given_name": "DOMINIQUE",
        "other_given_names": "DOMINIQUE",
    }


# --- The HL7 null "" is empty, never a value --------------------------------------------------


def test_the_null_reads_as_empty_through_every_accessor() -> None:
    message = parse(b'MSH|^~\\&|A|B\rZBE|""|x^""^y&""|""~z|a&""\r')
    zbe = message.segments[1]
    assert zbe.get(1) == "" and zbe.repetitions(1) == []
    assert (zbe.get(2, 1), zbe.get(2, 2), zbe.get(2, 3, 1), zbe.get(2, 3, 2)) == ("x", "", "y", "")
    assert [rep.component(1) for rep in zbe.repetitions(3)] == ["z"]
    assert (zbe.get(4, 1, 1), zbe.get(4, 1, 2)) == ("a", "")


def test_a_field_sent_as_null_is_published_as_absent_never_as_two_quotes() -> None:
    raw = with_fields(
        movement("A03", charset="UNICODE UTF-8", care_team=[], extra=[rol(f"{NULL}^{NULL}")]),
        "PV1",
        {36: NULL, 37: NULL, 7: NULL},
    )
    raw = with_fields(raw, "ZBE", {7: NULL})
    raw = with_fields(raw, "PID", {8: NULL, 18: NULL})
    record = event(raw)
    assert NULL not in values(record)
    assert (record["movement"]["unit"], record["movement"]["unit_name"]) == (None, None)
    assert record["stay"]["discharge_disposition"] is None
    assert record["stay"]["discharge_destination"] is None
    assert record["stay"]["attending_doctor"] is None
    assert record["patient"]["sex"] is None and record["stay"]["billing_number"] is None
    assert record["care_team"] == [
        {"role": "ODRP", "rpps": None, "family_name": None, "given_name": None}
    ]


def test_a_null_unit_component_keeps_the_code_and_drops_the_name() -> None:
    raw = with_fields(movement(charset="UNICODE UTF-8"), "ZBE", {7: f"{NULL}^^^^^^UF^^^4012"})
    movement_ = event(raw)["movement"]
    assert (movement_["unit"], movement_["unit_name"]) == ("4012", None)


def test_a_null_required_value_is_missing_not_a_value() -> None:
    raw = with_fields(movement(charset="UNICODE UTF-8"), "PV1", {19: NULL})
    with pytest.raises(MessageError) as raised:
        event(raw)
    assert str(raised.value.problem.location) == "PV1-19"
    assert raised.value.problem.code is ErrorCode.REQUIRED_FIELD_MISSING


# --- PID-5 by name type ------------------------------------------------------------------------


def test_an_empty_used_family_name_falls_back_to_the_birth_name_and_both_are_kept() -> None:
    # The spec's A31 PID-5, in a movement.
    names = "^MARIE-CECILE^^^^^D~DARK^JEANNE^JEANNE MARIE CECILE^^Mme^^L"
    patient = event(with_fields(movement(charset="UNICODE UTF-8"), "PID", {5: names}))["patient"]
    assert (patient["family_name"], patient["given_name"]) == ("DARK", "MARIE-CECILE")
    assert patient["birth_name"] is None  # the family name already is the birth name
    assert patient["used_name"] == {
        "family_name": None,
        "given_name": "MARIE-CECILE",
        "other_given_names": None,
    }
    assert patient["legal_name"] == {
        "family_name": "DARK",
        "given_name": "JEANNE",
        "other_given_names": "JEANNE MARIE CECILE",
    }


def test_a_used_family_name_wins_and_the_birth_name_is_kept_beside_it() -> None:
    names = "Lefèvre^Hélène^^^^^D~Müller^Hélène^Hélène Anne^^^^L"
    patient = event(with_fields(movement(charset="UNICODE UTF-8"), "PID", {5: names}))["patient"]
    assert (patient["family_name"], patient["birth_name"]) == ("Lefèvre", "Müller")
    assert patient["used_name"] == {
        "family_name": "Lefèvre",
        "given_name": "Hélène",
        "other_given_names": None,
    }
    assert patient["legal_name"]["other_given_names"] == "Hélène Anne"


def test_the_birth_name_repetition_may_come_first() -> None:
    names = "Müller^Hélène^^^^^L~Lefèvre^^^^^^D"
    patient = event(with_fields(movement(charset="UNICODE UTF-8"), "PID", {5: names}))["patient"]
    # The used name has no given name: the birth name's is the one the patient goes by.
    assert (patient["family_name"], patient["given_name"]) == ("Lefèvre", "Hélène")


def test_a_name_with_no_family_name_in_any_repetition_is_refused() -> None:
    raw = with_fields(movement(charset="UNICODE UTF-8"), "PID", {5: "^MARIE-CECILE^^^^^D"})
    with pytest.raises(MessageError) as raised:
        event(raw)
    assert str(raised.value.problem.location) == "PID-5"


def test_the_spec_s_a31_example_is_acknowledged_and_kept() -> None:
    intake = decide(as_establishment(SPEC_A31_INS_NIR))
    assert (intake.outcome, intake.code, intake.problems) == (Outcome.KEPT, "AA", ())


# --- The unit of medical responsibility: ZBE-7, else ZBE-8 ------------------------------------


@pytest.mark.parametrize(
    ("zbe7", "zbe8", "unit", "name"),
    [
        ("Chir V^^^^^CHU-X&000897406&N^UF^^^6268", "", "6268", "Chir V"),
        ("", "Urgences^^^^^^UF^^^8782", "8782", "Urgences"),
        (NULL, "Urgences^^^^^^UF^^^8782", "8782", "Urgences"),
        ("Cardiologie^^^^^^UF^^^4012", "Urgences^^^^^^UF^^^8782", "4012", "Cardiologie"),
        ("^^^^^^UF^^^4012", "", "4012", None),
        ("Cardiologie^^4012", "", "4012", "Cardiologie"),  # XON-3, before PAM FR's XON-10
        ("", "", None, None),
    ],
    ids=["zbe7", "zbe8-only", "zbe7-null", "zbe7-wins", "code-only", "xon3", "none"],
)
def test_the_medical_unit_is_read_from_zbe_7_else_zbe_8_with_its_name(
    zbe7: str, zbe8: str, unit: str | None, name: str | None
) -> None:
    raw = with_fields(movement(charset="UNICODE UTF-8"), "ZBE", {7: zbe7, 8: zbe8})
    movement_ = event(raw)["movement"]
    assert (movement_["unit"], movement_["unit_name"]) == (unit, name)


def test_a_control_character_in_zbe_8_is_refused_like_in_zbe_7() -> None:
    raw = with_fields(movement(charset="UNICODE UTF-8"), "ZBE", {7: "", 8: "Urg\\X0A\\ences"})
    with pytest.raises(MessageError) as raised:
        event(raw)
    assert str(raised.value.problem.location) == "ZBE-8"


# --- Identity messages: kept without an IPP ---------------------------------------------------


@pytest.mark.parametrize("trigger", ["A28", "A31", "A47"])
def test_an_identity_message_without_a_pi_identifier_is_acknowledged_and_archived(
    trigger: str,
) -> None:
    only_ins = SPEC_A31_INS_NIR.replace("ADT^A31^ADT_A05", f"ADT^{trigger}^ADT_A05").replace(
        "1900068^^^&350000121&M^PI~", ""
    )
    intake = decide(as_establishment(only_ins))
    assert (intake.outcome, intake.code, intake.publication) == (Outcome.KEPT, "AA", None)
    record = archive_record(
        intake, peer="10.0.0.1:4000", received_at=RECEIVED, ack_code="AA", topic=None
    )
    assert (record.outcome, record.message_type) == ("KEPT", f"ADT^{trigger}")


def test_the_spec_s_a47_deleting_an_ins_with_the_null_is_kept() -> None:
    intake = decide(as_establishment(SPEC_A47_INS_DELETED))
    assert (intake.outcome, intake.code) == (Outcome.KEPT, "AA")


def test_an_identity_message_still_needs_a_patient_segment_and_true_dates() -> None:
    without_pid = "\r".join(
        line for line in SPEC_A31_INS_NIR.split("\r") if not line.startswith("PID")
    )
    assert decide(as_establishment(without_pid)).code == "AE"
    unborn = SPEC_A31_INS_NIR.replace("||19600530|", "||20990530|")
    intake = decide(as_establishment(unborn))
    assert intake.code == "AE" and str(intake.problems[0].location) == "PID-7"


def test_the_movement_keeps_the_authority_that_numbered_it() -> None:
    # ANS: ZBE-1 312^CHU-X^000897406, the engine's namespace and the establishment's FINESS.
    record = event(as_establishment(ANS_A01_WITH_GP), ANS_RECEIVED)
    assert record["movement"]["movement_id"] == "312"
    assert record["movement"]["authority"] == "CHU-X"


@pytest.mark.parametrize(
    ("zbe1", "authority"),
    [
        ("312^CHU-X^000897406", "CHU-X"),
        ("312^CHU-X&000897406&N", "CHU-X"),  # the HD packed into EI-2, as ANS also publishes
        ("312^^000897406^ISO", "000897406"),
        ("312^CHU-X", "CHU-X"),
        ("312", None),
        (f"312^{NULL}", None),
    ],
)
def test_the_authority_is_the_universal_id_else_the_namespace(
    zbe1: str, authority: str | None
) -> None:
    raw = with_fields(as_establishment(ANS_A01_WITH_GP), "ZBE", {1: zbe1})
    assert event(raw, ANS_RECEIVED)["movement"]["authority"] == authority
