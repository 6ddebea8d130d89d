"""Acknowledgements: codes, ERR segments, enhanced mode, and the sender's own delimiters."""

from __future__ import annotations

import datetime as dt

import pytest

from services.gateway.ack import AckContext, build_ack, code_to_send
from services.gateway.hl7 import ErrorCode, Location, Problem, parse
from tests.gateway.independent import parse_ack
from tests.gateway.messages import movement
from tests.gateway.published import with_fields
from tests.gateway.support import read_ack

NOW = dt.datetime(2026, 3, 2, 8, 15, 31, tzinfo=dt.UTC)


def context(raw: bytes) -> AckContext:
    message = parse(raw)
    return AckContext(message.delimiters, message.codec, message.header)


def test_an_aa_echoes_the_control_id_and_swaps_sender_and_receiver() -> None:
    ack = build_ack(context(movement(control_id="MSG7")), "AA", (), control_id="A1", now=NOW)
    parsed = read_ack(ack)
    assert (parsed.code, parsed.control_id, parsed.errors) == ("AA", "MSG7", [])
    header = parsed.message.header
    assert (header.get(3), header.get(4), header.get(5), header.get(6)) == (
        "HARPICOOP",
        "GHT_SUD_LORRAINE",
        "SIH_GAM",
        "CHRU_NANCY",
    )
    assert header.raw(9) == "ACK^A01^ACK" and header.get(10) == "A1"
    assert header.get(7) == "20260302081531+0000"


def test_an_error_ack_says_where_and_what_in_err_segments() -> None:
    problem = Problem(
        ErrorCode.REQUIRED_FIELD_MISSING,
        "PV1-19 (visit number) is required",
        Location("PV1", 19),
    )
    ack = read_ack(build_ack(context(movement()), "AE", (problem,), control_id="A2", now=NOW))
    assert ack.code == "AE"
    assert ack.errors == [
        {
            "location": "PV1^1^19^1",
            "code": "101",
            "severity": "E",
            "text": "PV1-19 (visit number) is required",
        }
    ]
    msa = ack.message.first("MSA")
    assert msa is not None and msa.get(3) == "PV1-19 (visit number) is required"


def test_an_accepted_message_with_a_dropped_value_gets_aa_with_a_warning() -> None:
    warning = Problem(ErrorCode.DATA_TYPE, "PV1-44 left out", Location("PV1", 44), "W")
    ack = read_ack(build_ack(context(movement()), "AA", (warning,), control_id="A3", now=NOW))
    assert ack.code == "AA" and [item["severity"] for item in ack.errors] == ["W"]


def test_text_with_delimiters_is_escaped_in_the_ack() -> None:
    problem = Problem(ErrorCode.DATA_TYPE, "value 'A|B^C' is odd")
    ack = read_ack(build_ack(context(movement()), "AE", (problem,), control_id="A4", now=NOW))
    assert ack.errors[0]["text"] == "value 'A|B^C' is odd"


def test_the_ack_uses_the_senders_delimiters_and_character_set() -> None:
    raw = (
        "MSH#$*!@#GAM#CHRU_NANCY$1.2.250$ISO###20260302##ADT$A01#Ré-1#P#2.5#####8859/1\r"
    ).encode("iso8859-1")
    ack = build_ack(context(raw), "AA", (), control_id="A5", now=NOW)
    assert ack.startswith(b"MSH#$*!@#")
    assert b"CHRU_NANCY$1.2.250$ISO" in ack
    assert "MSA#AA#Ré-1".encode("iso8859-1") in ack
    assert read_ack(ack).control_id == "Ré-1"


def test_without_a_readable_header_the_ack_is_a_plain_rejection() -> None:
    problem = Problem(ErrorCode.SEGMENT_SEQUENCE, "no MSH", Location("MSH"))
    ack = read_ack(build_ack(None, "AR", (problem,), control_id="A6", now=NOW))
    assert (ack.code, ack.control_id) == ("AR", "")


@pytest.mark.parametrize(
    ("accept", "outcome", "sent"),
    [
        ("", "AA", "AA"),
        ("", "AE", "AE"),
        ("", "AR", "AR"),
        ("AL", "AA", "CA"),
        ("AL", "AE", "CE"),
        ("AL", "AR", "CR"),
        ("NE", "AA", None),
        ("NE", "AR", None),
        ("ER", "AA", None),
        ("ER", "AE", "CE"),
        ("SU", "AA", "CA"),
        ("SU", "AR", None),
    ],
)
def test_enhanced_mode_sends_the_commit_ack_msh_15_asks_for(
    accept: str, outcome: str, sent: str | None
) -> None:
    assert code_to_send(context(movement(accept_ack=accept)), outcome) == sent


def test_msh_16_alone_means_enhanced_mode_with_commit_acks() -> None:
    assert code_to_send(context(movement(application_ack="AL")), "AA") == "CA"


def test_an_enhanced_mode_ack_asks_for_no_ack_in_return() -> None:
    ack = read_ack(
        build_ack(context(movement(accept_ack="AL")), "CA", (), control_id="A7", now=NOW)
    )
    assert ack.code == "CA"
    assert (ack.message.header.get(15), ack.message.header.get(16)) == ("NE", "NE")


def test_a_message_whose_bytes_break_its_declared_charset_gets_a_readable_ack() -> None:
    from services.gateway.intake import take_in
    from tests.gateway.test_intake import RECEIVED, RULES

    # A stray 8859/1 byte in the encoding characters of a message that declares UTF-8: the ACK
    # is written in 8859/1 and must say so, or the engine could not read it.
    raw = movement(charset="UNICODE UTF-8").replace(b"MSH|^~", b"MSH|\x80^~", 1)
    intake = take_in(raw, RULES, RECEIVED)
    ack = read_ack(build_ack(intake.context, intake.code, intake.problems, control_id="X", now=NOW))
    assert ack.code == "AE"
    assert ack.message.header.get(18) == "8859/1"


@pytest.mark.parametrize(
    ("version", "message_type", "err"),
    [
        # Before 2.3.1, MSH-9 has no message structure; before 2.5, ERR-1 alone says where and
        # what (ELD), ERR-2 to ERR-12 do not exist.
        ("2.2", "ACK^A01", "ERR|PV1^1^19^101&Required field missing&HL70357"),
        ("2.3", "ACK^A01", "ERR|PV1^1^19^101&Required field missing&HL70357"),
        ("2.4", "ACK^A01^ACK", "ERR|PV1^1^19^101&Required field missing&HL70357"),
        ("2.5", "ACK^A01^ACK", "ERR||PV1^1^19^1|101^Required field missing^HL70357|E||||"),
    ],
)
def test_an_ack_has_the_shape_of_the_version_it_declares(
    version: str, message_type: str, err: str
) -> None:
    # with_fields counts the split's items: MSH-1 is the separator itself, so item 11 is MSH-12.
    message = with_fields(movement(), "MSH", {11: version}, codec="iso8859-1")
    problem = Problem(ErrorCode.REQUIRED_FIELD_MISSING, "PV1-19 is required", Location("PV1", 19))

    ack = build_ack(context(message), "AE", (problem,), control_id="A9", now=NOW)

    header, msa, err_segment = ack.decode("iso8859-1").rstrip("\r").split("\r")
    assert header.split("|")[8:12] == [message_type, "A9", "P", version]
    # MSH-18 (the character set) exists from 2.3 on.
    assert header.split("|")[17:] == ([] if version == "2.2" else ["8859/1"])
    assert msa == "MSA|AE|MSG00001|PV1-19 is required"
    assert err_segment == err + ("PV1-19 is required" if version == "2.5" else "")
    independent = parse_ack(ack.decode("iso8859-1"))  # HL7's ACK of that version, per hl7apy
    assert independent.msa.msa_1.value == "AE"
