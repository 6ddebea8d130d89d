"""The rendered messages are HL7 v2.5 PAM FR that the gateway reads as meant: bytes in the
charset MSH-18 names, delimiters in names escaped, and every field where PAM FR puts it."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from services.common.establishments import establishments_by_facility, load_establishments
from services.common.records import CareRole, Recipient, StayEvent
from services.gateway.covid import load_covid_mapping
from services.gateway.hl7 import parse
from services.gateway.intake import IntakeRules, Outcome, take_in
from services.notify.finess import load_finess_names
from services.notify.notices import NOTIFIABLE_KINDS
from services.notify.render import notice_context
from services.notify.render import render as render_notice
from services.notify.wording import Vocabulary, fields_without_words, load_units, places
from services.simulator.hl7 import encode, message_bytes, parse_ack, render
from services.simulator.model import AdtMessage, Patient, Practitioner
from services.simulator.profiles import Profile
from services.simulator.scenario import Day

RECEIVED_AT = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)


def profile_of(profiles: list[Profile], code: str) -> Profile:
    return next(item for item in profiles if item.establishment.code == code)


def first(day: Day, code: str, trigger: str) -> AdtMessage:
    return next(item for item in day.messages[code] if item.trigger == trigger)


@pytest.fixture(scope="module")
def rules() -> IntakeRules:
    return IntakeRules(establishments_by_facility(), load_covid_mapping(), ZoneInfo("Europe/Paris"))


def test_every_message_of_the_day_is_accepted_by_the_gateway_as_sent(
    monday: Day, profiles: list[Profile], rules: IntakeRules
) -> None:
    """The gateway's own intake reads each message into the StayEvent the scenario meant."""
    by_code = {item.establishment.code: item for item in profiles}
    for item in monday.all_messages():
        intake = take_in(message_bytes(item, by_code[item.establishment]), rules, RECEIVED_AT)
        assert (intake.outcome, intake.code, intake.problems) == (Outcome.PUBLISHED, "AA", ())
        assert intake.publication is not None
        event = intake.publication.value.to_avro()  # as written to the topic
        assert event["event_id"] == f"{item.establishment}:{item.control_id}"
        assert event["stay_key"] == item.stay_key
        assert (event["trigger_event"], event["action"]) == (item.trigger, item.action)
        assert event["original_trigger"] == item.original_trigger
        assert event["movement"]["movement_id"] == item.movement_id
        assert event["movement"]["occurred_at"] == item.occurred_at
        assert event["movement"]["unit"] == item.visit.unit.code
        assert event["patient"]["ipp"] == item.patient.ipp
        assert event["patient"]["family_name"] == item.patient.family_name
        assert event["patient"]["ins"] == (
            item.patient.ins if item.patient.reliability == "VALI" else None
        )
        assert event["stay"]["admission_mode"] == item.visit.admission_mode
        gp = [member["rpps"] for member in event["care_team"] if member["role"] == "ODRP"]
        assert gp == ([item.patient.gp.id] if item.patient.gp else [])
        covid = item.discharge.covid_status if item.discharge else None
        assert event["covid_status"] == (covid or "UNKNOWN")
        if item.discharge:
            assert event["stay"]["discharge_disposition"] == item.discharge.disposition
            assert event["stay"]["discharge_destination"] == item.discharge.destination


def test_segments_follow_pam_fr(monday: Day, profiles: list[Profile]) -> None:
    profile = profile_of(profiles, "chrunancy")
    discharge = next(
        item
        for item in monday.messages["chrunancy"]
        if item.trigger == "A03" and item.discharge and item.discharge.covid_status
    )
    message = parse(message_bytes(discharge, profile))
    names = [segment.name for segment in message.segments]
    assert names[:3] == ["MSH", "EVN", "PID"] and "PV1" in names and "ZBE" in names
    assert names[-1] == "OBX"
    header = message.header
    assert (header.get(9, 1), header.get(9, 2), header.get(9, 3)) == ("ADT", "A03", "ADT_A03")
    assert header.get(4) == "CHRU_NANCY" and header.get(10) == discharge.control_id
    assert header.get(12) == "2.5"
    pid = message.first("PID")
    assert pid is not None
    assert pid.repetitions(3)[0].component(5) == "PI"
    obx = message.first("OBX")
    assert obx is not None and obx.get(3) == "94500-6" and obx.get(3, 3) == "LN"


def test_bytes_follow_msh18_latin1_or_utf8(monday: Day, profiles: list[Profile]) -> None:
    latin = profile_of(profiles, "cpn")
    unicode = profile_of(profiles, "chrunancy")
    assert (latin.charset, unicode.charset) == ("8859/1", "UNICODE UTF-8")
    patient = dataclasses.replace(
        first(monday, "cpn", "A04").patient, family_name="LEFÈVRE", given_name="Hélène"
    )
    for profile, codec in ((latin, "iso-8859-1"), (unicode, "utf-8")):
        item = dataclasses.replace(
            first(monday, profile.establishment.code, "A01"), patient=patient
        )
        data = message_bytes(item, profile)
        assert f"|{profile.charset}|".encode() in data
        assert "LEFÈVRE^Hélène".encode(codec) in data
        assert parse(data).first("PID").get(5, 2) == "Hélène"  # type: ignore[union-attr]
    with pytest.raises(UnicodeDecodeError):
        message_bytes(
            dataclasses.replace(first(monday, "cpn", "A01"), patient=patient), latin
        ).decode("utf-8")


def test_letters_outside_8859_1_are_transliterated_not_lost() -> None:
    assert encode("Vandœuvre-lès-Nancy", "8859/1") == "Vandoeuvre-lès-Nancy".encode("latin-1")
    assert encode("Vandœuvre-lès-Nancy", "UNICODE UTF-8") == "Vandœuvre-lès-Nancy".encode()


@pytest.mark.parametrize("name", ["D'ARC | DUPONT", "A^B", "X~Y", "BACK\\SLASH", "R&D"])
def test_delimiters_in_names_are_escaped(
    name: str, monday: Day, profiles: list[Profile], rules: IntakeRules
) -> None:
    profile = profile_of(profiles, "toul")
    item = first(monday, "toul", "A01")
    odd: Patient = dataclasses.replace(item.patient, family_name=name, given_name=name)
    gp = Practitioner("19990000110", name, name)
    item = dataclasses.replace(item, patient=dataclasses.replace(odd, gp=gp))
    text = render(item, profile)
    pid_line = next(line for line in text.split("\r") if line.startswith("PID|"))
    assert len(pid_line.split("|")) == 33  # PID-1..PID-32: no field added by the name
    intake = take_in(message_bytes(item, profile), rules, RECEIVED_AT)
    assert intake.code == "AA" and intake.publication is not None
    event = intake.publication.value.to_avro()
    assert (event["patient"]["family_name"], event["patient"]["given_name"]) == (name, name)
    assert event["care_team"][0]["family_name"] == name


def test_acks_are_read_from_their_msa_and_err() -> None:
    accepted = parse_ack(b"MSH|^~\\&|HARPICOOP|GHT|GAM|CH_TOUL|20260302||ACK^A01^ACK|1|P|2.5\r"
                         b"MSA|AA|2026030215000001\r")  # fmt: skip
    refused = parse_ack(b"MSH|^~\\&|HARPICOOP|GHT|GAM|CH_TOUL|20260302||ACK|2|P|2.5\r"
                        b"MSA|AE|CTRL9\rERR||PV1^1^19|101^Required field missing^HL70357|E"
                        b"||||PV1-19 (visit number) is required\r")  # fmt: skip
    assert accepted is not None and accepted.accepted and accepted.control_id == "2026030215000001"
    assert refused is not None and not refused.accepted and not refused.rejected
    assert refused.text == "PV1-19 (visit number) is required"
    assert parse_ack(b"garbage") is None
    assert parse_ack(b"MSH|^~\\&|A|B|C|D|20260302||ADT^A01|1|P|2.5\rPID|1\r") is None


def test_every_notice_of_the_day_reads_in_words(
    monday: Day, profiles: list[Profile], rules: IntakeRules
) -> None:
    """What the gateway makes of a simulated day, rendered as notify would with what deploy/
    ships: no unit, disposition or destination shown as a code, even when an engine leaves the
    unit's name out of ZBE-7."""
    vocabulary = Vocabulary(
        units=load_units(), places=places(load_establishments(), load_finess_names())
    )
    by_code = {item.establishment.code: item for item in profiles}
    gp = Recipient(
        role=CareRole.ODRP, rpps="10101010101", given_name="Jeanne", family_name="Martin"
    )
    shown: collections.Counter[str] = collections.Counter()
    for item in monday.all_messages():
        intake = take_in(message_bytes(item, by_code[item.establishment]), rules, RECEIVED_AT)
        assert intake.publication is not None
        event = intake.publication.value
        assert isinstance(event, StayEvent)
        notice = NOTIFIABLE_KINDS.get(event.kind)
        if notice is None:
            continue
        name = by_code[item.establishment].establishment.name
        for unit_name in (event.movement.unit_name, None):
            movement = dataclasses.replace(event.movement, unit_name=unit_name)
            shown_event = dataclasses.replace(event, movement=movement)
            text = render_notice(notice_context(notice, shown_event, gp, name, vocabulary)).text
            assert fields_without_words(text) == [], text
            shown.update(line.split(" : ")[0] for line in text.splitlines() if " : " in line)
    # The fields are there, not merely left out (a Monday: about 1,250 notices, 800 discharges,
    # some 20 transfers out, each rendered twice).
    assert shown["Service"] > 1000 and shown["Mode de sortie"] > 100 and shown["Destination"] > 0
