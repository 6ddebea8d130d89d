"""The PAM FR protection indicators on a StayEvent: PD1-12 for the patient, PV2-22 for the stay
(table 0136, Y or N). What the message does not say stays unsaid (null), so that notify keeps
what an earlier message of the stay said. Pure: no stack needed."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastavro.validation import validate

from services.common.establishments import establishments_by_facility
from services.common.schemas import parsed_schema
from services.gateway.covid import load_covid_mapping
from services.gateway.hl7 import parse
from services.gateway.pam import stay_event
from tests.gateway.messages import movement
from tests.gateway.published import with_fields

PARIS = ZoneInfo("Europe/Paris")
RECEIVED = dt.datetime(2026, 3, 2, 7, 16, tzinfo=dt.UTC)
NANCY = establishments_by_facility()["CHRU_NANCY"]
COVID = load_covid_mapping()


def event(*extra: str) -> dict[str, Any]:
    record = stay_event(parse(movement(extra=extra)), NANCY, RECEIVED, COVID, PARIS).value.to_avro()
    validate(record, parsed_schema("harpicoop.StayEvent"), raise_errors=True)
    return record


@pytest.mark.parametrize(
    ("pd1_12", "expected"),
    [("Y", True), ("y", True), ("N", False), ('""', None), ("", None), ("X", None)],
)
def test_pd1_12_says_whether_the_patient_is_protected(pd1_12: str, expected: bool | None) -> None:
    assert event(f"PD1{'|' * 12}{pd1_12}")["patient_protected"] is expected


@pytest.mark.parametrize(("pv2_22", "expected"), [("Y", True), ("N", False), ("", None)])
def test_pv2_22_says_whether_the_stay_is_protected(pv2_22: str, expected: bool | None) -> None:
    assert event(f"PV2{'|' * 22}{pv2_22}")["stay_protected"] is expected


def test_a_message_without_pd1_or_pv2_says_nothing_either_way() -> None:
    record = event()
    assert record["patient_protected"] is None
    assert record["stay_protected"] is None


def test_the_vip_indicator_is_not_a_protection() -> None:
    """PV1-16 names a category of patient (PAM FR table 0099), not a request for secrecy."""
    raw = with_fields(movement(), "PV1", {16: "Y"}, codec="latin-1")
    record = stay_event(parse(raw), NANCY, RECEIVED, COVID, PARIS).value
    assert record.patient_protected is None and record.stay_protected is None
