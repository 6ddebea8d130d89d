"""What becomes of a message: outcome, ACK code, record to publish, and its archive entry."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastavro.validation import validate

from services.common.establishments import establishments_by_facility
from services.common.records import StayEvent
from services.common.schemas import parsed_schema
from services.gateway.ack import build_ack
from services.gateway.covid import CovidMapping, load_covid_mapping
from services.gateway.intake import (
    Intake,
    IntakeRules,
    Outcome,
    archive_record,
    take_in,
    take_in_oversized,
)
from tests.gateway.messages import identity, movement
from tests.gateway.support import read_ack

RECEIVED = dt.datetime(2026, 3, 2, 7, 16, tzinfo=dt.UTC)
RULES = IntakeRules(establishments_by_facility(), load_covid_mapping(), ZoneInfo("Europe/Paris"))


def decide(raw: bytes, rules: IntakeRules = RULES) -> Intake:
    intake = take_in(raw, rules, RECEIVED)
    record = archive_record(
        intake,
        peer="10.0.0.1:4000",
        received_at=RECEIVED,
        ack_code=None,
        topic="stays.raw.chrunancy",
    )
    validate(record.to_avro(), parsed_schema("harpicoop.RawMessage"), raise_errors=True)
    return intake


def test_a_movement_from_a_known_establishment_is_published_under_its_stay_key() -> None:
    intake = decide(movement(facility="CH_TOUL", visit="T77", control_id="42"))
    assert (intake.outcome, intake.code) == (Outcome.PUBLISHED, "AA")
    assert intake.publication is not None
    assert intake.publication.stream == "stays"
    assert intake.publication.key == "toul:T77"
    assert intake.publication.event_id == "toul:42"
    assert intake.archive_key == "toul"


def test_a_connection_authenticated_as_one_establishment_may_not_speak_for_another() -> None:
    intake = take_in(movement(facility="CH_TOUL", control_id="43"), RULES, RECEIVED, "chrunancy")
    assert (intake.outcome, intake.code, intake.publication) == (Outcome.REJECTED, "AR", None)
    assert "certificate (chrunancy)" in intake.problems[0].text
    # Archived and counted under the establishment that really sent it.
    assert intake.archive_key == "chrunancy" and intake.sending_facility == "CH_TOUL"


def test_a_connection_authenticated_as_the_message_establishment_is_published() -> None:
    intake = take_in(movement(facility="CH_TOUL", control_id="44"), RULES, RECEIVED, "toul")
    assert (intake.outcome, intake.code) == (Outcome.PUBLISHED, "AA")


@pytest.mark.parametrize(
    ("raw", "code", "location"),
    [
        (movement(facility="CH_INCONNU"), "103", "MSH-4"),
        (movement(facility=""), "101", "MSH-4"),
        (movement(control_id=""), "101", "MSH-10"),
        (movement(message_code="ORU"), "200", "MSH-9.1"),
        (movement().replace(b"|2.5|", b"|3.0|", 1), "203", "MSH-12"),
        (movement().replace(b"|P|2.5|", b"|X|2.5|", 1), "202", "MSH-11"),
        (movement(charset="EBCDIC"), "103", "MSH-18"),
        (b"\x00\x01binary", "100", "MSH"),
    ],
)
def test_envelope_problems_are_rejected_with_ar(raw: bytes, code: str, location: str) -> None:
    intake = decide(raw)
    assert (intake.outcome, intake.code) == (Outcome.REJECTED, "AR")
    assert intake.publication is None
    assert intake.problems[0].code.code == code
    assert str(intake.problems[0].location) == location


def test_an_unknown_facility_is_archived_under_the_facility_it_sent() -> None:
    intake = decide(movement(facility="CH_INCONNU"))
    assert intake.archive_key == "CH_INCONNU" and intake.establishment is None


def test_content_problems_are_errors_with_ae() -> None:
    intake = decide(movement(visit=""))
    assert (intake.outcome, intake.code) == (Outcome.ERROR, "AE")
    assert intake.charset == "iso8859-1"


@pytest.mark.parametrize("trigger", ["A08", "A29", "Z00"])
def test_triggers_the_platform_does_not_use_are_acknowledged_and_ignored(trigger: str) -> None:
    intake = decide(movement(trigger))
    assert (intake.outcome, intake.code, intake.publication) == (Outcome.IGNORED, "AA", None)
    assert intake.trigger == trigger


@pytest.mark.parametrize("trigger", ["A28", "A31", "A47"])
def test_identity_messages_are_kept_and_acknowledged(trigger: str) -> None:
    intake = decide(identity(trigger))
    assert (intake.outcome, intake.code, intake.publication) == (Outcome.KEPT, "AA", None)
    assert intake.charset == "utf-8"


def test_an_identity_message_without_an_ipp_is_kept_all_the_same() -> None:
    # Nothing of it is published: the archive needs no IPP (PAM FR engines may send only an INS).
    intake = decide(identity("A31", ipp=""))
    assert (intake.outcome, intake.code) == (Outcome.KEPT, "AA")


def test_a_merge_is_published_to_the_merges_under_the_surviving_patient() -> None:
    intake = decide(identity("A40", ipp="IPP7", merged_ipp="IPP3"))
    assert intake.outcome is Outcome.PUBLISHED and intake.publication is not None
    assert (intake.publication.stream, intake.publication.key) == ("merges", "chrunancy:IPP7")


def test_an_undecodable_body_is_answered_with_the_header_read_as_latin_1() -> None:
    raw = movement(charset="UNICODE UTF-8", family="Lef") + "è".encode("iso8859-1")
    intake = decide(raw)
    assert (intake.code, intake.control_id, intake.charset) == ("AE", "MSG00001", None)
    assert intake.context is not None


class BrokenCovidMapping(CovidMapping):
    """A table whose lookup fails, standing for any bug met while mapping."""

    def status(self, establishment: str, result_code: str, result_text: str = "") -> str:
        raise RuntimeError("boom")


def test_a_failure_inside_the_gateway_is_an_ae_and_the_message_is_kept() -> None:
    covid = load_covid_mapping()
    rules = IntakeRules(
        RULES.establishments, BrokenCovidMapping(covid.default), ZoneInfo("Europe/Paris")
    )
    intake = decide(movement(covid=("94500-6", "POS")), rules)
    assert (intake.outcome, intake.code) == (Outcome.ERROR, "AE")
    assert intake.problems[0].code.code == "207"
    assert intake.control_id == "MSG00001"


def test_an_oversized_message_is_rejected_from_its_head() -> None:
    raw = movement(control_id="BIG1")
    intake = take_in_oversized(raw[:4096], 300_000, 262_144, RULES, RECEIVED)
    assert (intake.outcome, intake.code, intake.control_id) == (Outcome.REJECTED, "AR", "BIG1")
    assert intake.truncated and intake.size == 300_000
    assert "300000 bytes" in intake.problems[0].text
    assert intake.archive_key == "chrunancy"


def test_the_archive_entry_says_what_became_of_the_message() -> None:
    raw = movement(visit="")
    intake = decide(raw)
    record = archive_record(
        intake, peer="10.0.0.1:4000", received_at=RECEIVED, ack_code="AE", topic=None
    )
    assert record.raw == raw and record.size == len(raw)
    assert (record.outcome, record.ack_code) == ("ERROR", "AE")
    assert (record.error_code, record.error_location) == ("101", "PV1-19")
    assert record.establishment == "chrunancy"
    assert record.message_type == "ADT^A01"
    assert record.event_id is None and record.topic is None


@pytest.mark.parametrize("end", ["\r", "\n", "\r\n"], ids=["CR", "LF", "CRLF"])
def test_a_frame_holding_two_messages_is_refused_whole_with_ae(end: str) -> None:
    raw = movement(control_id="M1", visit="V1", segment_end=end) + movement(
        "A03", control_id="M2", visit="V2", segment_end=end
    )
    intake = decide(raw)
    assert (intake.outcome, intake.code, intake.publication) == (Outcome.ERROR, "AE", None)
    ack = read_ack(
        build_ack(intake.context, intake.code, intake.problems, control_id="A1", now=RECEIVED)
    )
    assert (ack.code, ack.control_id) == ("AE", "M1")
    assert ack.errors == [
        {
            "location": "MSH^2",
            "code": "100",
            "severity": "E",
            "text": "the frame holds 2 messages; one frame must hold one message, "
            "so none of them was taken",
        }
    ]


@pytest.mark.parametrize(
    "raw",
    [
        movement(control_id="M1") + movement("A08", control_id="M2") + movement(control_id="M3"),
        movement(control_id="M1").rstrip(b"\r") + movement(control_id="M2") + identity("A40"),
    ],
    ids=["one after the other", "glued to the last segment"],
)
def test_every_message_of_a_frame_is_counted_and_none_is_taken(raw: bytes) -> None:
    intake = decide(raw)
    assert (intake.outcome, intake.code, intake.publication) == (Outcome.ERROR, "AE", None)
    assert intake.control_id == "M1"
    assert intake.problems[0].text.startswith("the frame holds 3 messages")
    record = archive_record(
        intake, peer="10.0.0.1:4000", received_at=RECEIVED, ack_code="AE", topic=None
    )
    assert (record.raw, record.outcome, record.error_code) == (raw, "ERROR", "100")
    assert record.event_id is None and record.topic is None


def test_a_message_followed_by_blank_lines_is_one_message() -> None:
    intake = decide(movement(control_id="M1") + b"\r\n\r\n\n  \r")
    assert (intake.outcome, intake.code, intake.problems) == (Outcome.PUBLISHED, "AA", ())


def test_msh_written_inside_a_segment_is_not_a_second_message() -> None:
    notes = [
        "NTE|1|L|MSH de garde prévenu, voir MSH-10 du courrier",
        "OBX|2|TX|NOTE^Note^L||copie reçue: MSH\\F\\^~\\E\\&\\F\\SIH_GAM||||||F",
    ]
    intake = decide(movement(control_id="M1", extra=notes))
    assert (intake.outcome, intake.code) == (Outcome.PUBLISHED, "AA")
    assert intake.publication is not None and intake.publication.event_id == "chrunancy:M1"


GP_WITH_NUL = ("ODRP", "10101010101", "SECRET\\X00\\Martin", "Jeanne")


# --- Values the services downstream cannot store or compute with are refused (AE) -------------
# Each sent value carries a marker that the refusal's words must not repeat: they are patient
# data, and ACKs, archive details and logs say where and why, never what.
@pytest.mark.parametrize(
    ("change", "location", "erl"),  # ERR-2: segment, sequence, field, repetition, component
    [
        ({"visit": "SECRET\\X00\\V1"}, "PV1-19", "PV1^1^19^1"),
        ({"movement_id": "SECRET\\X00\\1"}, "ZBE-1", "ZBE^1^1^1"),
        ({"ipp": "SECRET\\X00\\7"}, "PID-3", "PID^1^3^1"),
        ({"family": "SECRET\\X0D\\\\X0A\\Lefèvre"}, "PID-5", "PID^1^5^1"),
        ({"family": "SECRET\\X0D\\Lefèvre"}, "PID-5", "PID^1^5^1"),
        ({"given": "SECRET\\X7F\\Hélène"}, "PID-5.2", "PID^1^5^1^2"),
        ({"unit": "SECRET\\X09\\Cardio^^^^^^UF^^^4012"}, "ZBE-7", "ZBE^1^7^1"),
        ({"control_id": "SECRET\\X0A\\1"}, "MSH-10", "MSH^1^10^1"),
        ({"care_team": [GP_WITH_NUL]}, "ROL-4.2", "ROL^1^4^1^2"),
    ],
    ids=[
        "NUL in visit",
        "NUL in movement",
        "NUL in IPP",
        "CR LF in name",
        "CR in name",
        "DEL in given name",
        "tab in unit",
        "LF in control id",
        "NUL in GP name",
    ],
)
def test_a_control_character_in_an_identifier_or_name_is_refused_with_where_and_why(
    change: dict[str, Any], location: str, erl: str
) -> None:
    intake = decide(movement(**change))
    assert (intake.outcome, intake.code, intake.publication) == (Outcome.ERROR, "AE", None)
    problem = intake.problems[0]
    assert (problem.code.code, str(problem.location)) == ("102", location)
    assert "control character" in problem.text and "SECRET" not in problem.text
    ack = read_ack(build_ack(intake.context, "AE", intake.problems, control_id="A1", now=RECEIVED))
    assert (ack.code, ack.errors[0]["code"], ack.errors[0]["location"]) == ("AE", "102", erl)
    record = archive_record(
        intake, peer="10.0.0.1:4000", received_at=RECEIVED, ack_code="AE", topic=None
    )
    assert (record.outcome, record.error_code) == ("ERROR", "102")
    assert record.error_location == location
    assert record.error_detail is not None and "SECRET" not in record.error_detail
    assert record.message_control_id is None or "SECRET" not in record.message_control_id


def test_a_control_character_in_a_merge_or_identity_message_is_refused_too() -> None:
    for raw in (identity("A40", ipp="IPP\\X00\\7"), identity("A31", family="Lef\\X0A\\èvre")):
        intake = decide(raw)
        assert (intake.outcome, intake.code, intake.publication) == (Outcome.ERROR, "AE", None)
        assert intake.problems[0].code.code == "102"
        assert str(intake.problems[0].location) in {"PID-3", "PID-5"}


# RECEIVED is 2026-03-02 07:16 UTC.
@pytest.mark.parametrize(
    ("change", "location", "why"),
    [
        ({"birth_date": "18500101"}, "PID-7", "is before 1880-01-01"),
        ({"birth_date": "20260305"}, "PID-7", "is in the future"),
        ({"birth_date": "19481314"}, "PID-7", "is not an HL7 date"),
        ({"moved_at": "99990101000000"}, "ZBE-2", "more than a day after"),
        ({"moved_at": "18790302081000"}, "ZBE-2", "is before 1880-01-01"),
        ({"moved_at": "99991231235959-1200"}, "ZBE-2", "more than a day after"),
        ({"discharged_at": "99991231"}, "PV1-45", "more than a day after"),
        ({"discharged_at": "le 2 mars"}, "PV1-45", "is not an HL7 date and time"),
        ({"admitted_at": "99990101"}, "PV1-44", "more than a year after"),
        ({"admitted_at": "18790101"}, "PV1-44", "is before 1880-01-01"),
    ],
)
def test_a_date_that_cannot_be_true_is_refused_with_where_and_why(
    change: dict[str, Any], location: str, why: str
) -> None:
    intake = decide(movement(**change))
    assert (intake.outcome, intake.code, intake.publication) == (Outcome.ERROR, "AE", None)
    problem = intake.problems[0]
    assert (problem.code.code, str(problem.location)) == ("102", location)
    assert why in problem.text
    sent = str(next(iter(change.values())))
    assert sent[:4] not in problem.text  # the year sent is not repeated
    record = archive_record(
        intake, peer="10.0.0.1:4000", received_at=RECEIVED, ack_code="AE", topic=None
    )
    assert (record.outcome, record.error_code, record.error_location) == (
        "ERROR",
        "102",
        location,
    )


@pytest.mark.parametrize(
    ("trigger", "action", "original"),
    [("A05", "INSERT", ""), ("Z99", "UPDATE", "A05"), ("A38", "CANCEL", "A05")],
)
def test_a_pre_admission_may_be_dated_at_the_admission_it_plans(
    trigger: str, action: str, original: str
) -> None:
    # CPage dates an A05's ZBE-2 at the planned admission (as EVN-3), weeks ahead of the message.
    planned = "20260515083000"
    intake = decide(movement(trigger, action=action, original_trigger=original, moved_at=planned))
    assert (intake.outcome, intake.code) == (Outcome.PUBLISHED, "AA")
    assert intake.publication is not None
    assert isinstance(intake.publication.value, StayEvent)
    assert intake.publication.value.movement.occurred_at == dt.datetime(
        2026, 5, 15, 6, 30, tzinfo=dt.UTC
    )


@pytest.mark.parametrize(
    ("trigger", "moved_at", "why"),
    [
        ("A01", "20260515083000", "more than a day after"),
        ("A05", "20270515083000", "more than a year after"),
    ],
)
def test_only_a_pre_admission_lies_ahead_and_not_beyond_a_year(
    trigger: str, moved_at: str, why: str
) -> None:
    intake = decide(movement(trigger, moved_at=moved_at))
    assert (intake.outcome, intake.code) == (Outcome.ERROR, "AE")
    problem = intake.problems[0]
    assert (problem.code.code, str(problem.location)) == ("102", "ZBE-2")
    assert why in problem.text


@pytest.mark.parametrize(
    ("trigger", "moved_at"),
    [("A01", "20240302081000"), ("A05", "20250115083000"), ("A03", "19990302081000")],
)
def test_a_movement_more_than_a_year_old_is_acknowledged_and_archived_not_published(
    trigger: str, moved_at: str
) -> None:
    # PAM FR allows historic movements (a stay entered or corrected long after it happened):
    # the message is not wrong, the platform only has no use for it.
    intake = decide(movement(trigger, moved_at=moved_at))
    assert (intake.outcome, intake.code, intake.publication) == (Outcome.KEPT, "AA", None)
    warning = intake.problems[0]
    assert (warning.severity, str(warning.location)) == ("W", "ZBE-2")
    assert "more than a year before" in warning.text and moved_at[:4] not in warning.text
    record = archive_record(
        intake, peer="10.0.0.1:4000", received_at=RECEIVED, ack_code="AA", topic=None
    )
    assert record.outcome == "KEPT"


@pytest.mark.parametrize("charset", ["UNICODE UTF-8", "8859/1"])
def test_accented_names_old_births_and_dates_near_the_edges_are_still_accepted(
    charset: str,
) -> None:
    raw = movement(
        charset=charset,
        family="Lefèvre-Œ" if charset == "UNICODE UTF-8" else "Lefèvre-Ç",
        given="Hélène Zoé",
        birth_name="Müller-Château",
        birth_date="19000101",
        moved_at="20260303081000",  # a day's clock skew ahead
        admitted_at="20240101080000",  # a long stay began years ago
        discharged_at="20250303",
    )
    intake = decide(raw)
    assert (intake.outcome, intake.code, intake.problems) == (Outcome.PUBLISHED, "AA", ())
    assert intake.publication is not None
    assert isinstance(intake.publication.value, StayEvent)
    patient = intake.publication.value.patient
    assert patient.birth_date == dt.date(1900, 1, 1)
    assert patient.family_name.startswith("Lefèvre-")
    assert patient.given_name == "Hélène Zoé"
