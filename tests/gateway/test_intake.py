"""What becomes of a message: outcome, ACK code, record to publish, and its archive entry."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from fastavro.validation import validate

from services.common.establishments import establishments_by_facility
from services.common.schemas import parsed_schema
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
    validate(record, parsed_schema("harpicoop.RawMessage"), raise_errors=True)
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


@pytest.mark.parametrize("trigger", ["A08", "A29", "A47", "Z00"])
def test_triggers_the_platform_does_not_use_are_acknowledged_and_ignored(trigger: str) -> None:
    intake = decide(movement(trigger))
    assert (intake.outcome, intake.code, intake.publication) == (Outcome.IGNORED, "AA", None)
    assert intake.trigger == trigger


@pytest.mark.parametrize("trigger", ["A28", "A31"])
def test_identity_messages_are_kept_and_acknowledged(trigger: str) -> None:
    intake = decide(identity(trigger))
    assert (intake.outcome, intake.code, intake.publication) == (Outcome.KEPT, "AA", None)
    assert intake.charset == "utf-8"


def test_an_identity_message_without_an_ipp_is_an_error() -> None:
    assert decide(identity("A31", ipp="")).code == "AE"


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
    assert record["raw"] == raw and record["size"] == len(raw)
    assert (record["outcome"], record["ack_code"]) == ("ERROR", "AE")
    assert (record["error_code"], record["error_location"]) == ("101", "PV1-19")
    assert record["establishment"] == "chrunancy"
    assert record["message_type"] == "ADT^A01"
    assert record["event_id"] is None and record["topic"] is None
