"""Patient data is declared once per schema type and hidden wherever that type occurs."""

from __future__ import annotations

import datetime as dt
import json

from services.common.patient_data import (
    HIDDEN,
    PATIENT_DATA,
    hide_dead_letter_headers,
    hide_patient_data,
    hl7_outline,
)
from services.common.schemas import expanded_schema_json
from tests.common.test_serde import stay_event

FRAME = (
    b"MSH|^~\\&|SIH|CHRUNANCY|HARPICOOP|GHT|20260302081530||ADT^A01^ADT_A01|MSG1|P|2.5\r"
    b"EVN||20260302081530\r"
    b"PID|1||000123456^^^CHRUNANCY^PI||LEFEVRE^HELENE||19480714|F\r"
    b"PV1|1|I|CARDIO\r"
    b"ZBE|MVT1|20260302081530||INSERT\r"
)


def test_the_patient_inside_a_stay_event_is_hidden_field_by_field() -> None:
    event = stay_event("V1")
    hidden = hide_patient_data("harpicoop.StayEvent", event)
    assert hidden["patient"] == {
        "ipp": HIDDEN,
        "ins": None,
        "family_name": HIDDEN,
        "given_name": HIDDEN,
        "birth_name": None,
        "birth_date": HIDDEN,
        "sex": HIDDEN,
        "used_name": HIDDEN,
        "legal_name": None,
    }
    assert hidden["stay_key"] == "chrunancy:V1" and hidden["movement"] == event["movement"]
    # Practitioners are not patients: the care team stays readable.
    assert hidden["care_team"] == event["care_team"]


def test_nested_types_are_hidden_wherever_they_occur() -> None:
    enriched = {"event": stay_event("V2"), "recipients": [], "enriched_at": dt.datetime.now(dt.UTC)}
    text = json.dumps(
        hide_patient_data("harpicoop.EnrichedStayEvent", enriched), default=str, ensure_ascii=False
    )
    assert "Lefèvre" not in text and "Hélène" not in text and "1948" not in text
    assert "chrunancy:V2" in text


def test_the_raw_frame_shows_its_header_and_the_names_of_its_segments() -> None:
    assert hl7_outline(FRAME) == [
        "MSH|^~\\&|SIH|CHRUNANCY|HARPICOOP|GHT|20260302081530||ADT^A01^ADT_A01|MSG1|P|2.5",
        "EVN||20260302081530",
        "PID",
        "PV1",
        "ZBE",
    ]
    assert hl7_outline(b"LEFEVRE HELENE 19480714\rPIDX|1") == ["?", "?"]


def test_an_archived_message_keeps_its_outline_and_hides_the_parser_detail() -> None:
    record = {"raw": FRAME, "error_detail": "PID-7 '19480714x' is not a date", "peer": "10.0.0.7"}
    hidden = hide_patient_data("harpicoop.RawMessage", record)
    assert hidden == {"raw": hl7_outline(FRAME), "error_detail": HIDDEN, "peer": "10.0.0.7"}


def test_a_dead_letter_shows_where_it_came_from_not_its_error_message() -> None:
    headers = {"topic": "stays.unique", "reason": "undecodable", "exception.message": "LEFEVRE"}
    assert hide_dead_letter_headers(headers) == {**headers, "exception.message": HIDDEN}


def test_every_declared_field_exists_in_its_schema() -> None:
    for fullname, fields in PATIENT_DATA.items():
        declared = {f["name"] for f in json.loads(expanded_schema_json(fullname))["fields"]}
        assert fields == {"*"} or fields <= declared, fullname
