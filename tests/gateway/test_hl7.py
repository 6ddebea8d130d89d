"""HL7 v2 parsing: delimiters, segment ends, repetitions and components, escapes, character sets."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from services.gateway.hl7 import ErrorCode, MessageError, parse, parse_header, parse_timestamp

PARIS = ZoneInfo("Europe/Paris")


def msh(charset: str = "", *, delimiters: str = "|^~\\&") -> str:
    field = delimiters[0]
    fields = [
        "MSH",
        delimiters[1:],
        "GAM",
        "CHRU_NANCY",
        "",
        "",
        "20260302081530",
        "",
        "ADT^A01^ADT_A01",
        "MSG1",
        "P",
        "2.5",
        "",
        "",
        "",
        "",
        "FRA",
        charset,
    ]
    return "MSH" + field + field.join(fields[1:])


def test_fields_components_subcomponents_and_repetitions_are_read_by_their_hl7_numbers() -> None:
    text = (
        msh() + "\rPID|1||IPP1^^^CHRU&1.2.250&ISO^PI~1480799^^^INS-NIR&1.2&ISO^INS||Lefèvre^Hélène"
    )
    message = parse(text.encode("utf-8"))
    pid = message.first("PID")
    assert pid is not None
    assert message.header.get(9, 2) == "A01"
    assert message.header.get(10) == "MSG1"
    assert message.header.raw(1) == "|"
    assert message.header.raw(2) == "^~\\&"
    first, second = pid.repetitions(3)
    assert (first.component(1), first.component(4, 2), first.component(5)) == (
        "IPP1",
        "1.2.250",
        "PI",
    )
    assert second.component(5) == "INS"
    assert pid.get(5, 2) == "Hélène"
    assert pid.get(40) == "" and pid.get(5, 9) == "" and pid.get(3, 4, 7) == ""


@pytest.mark.parametrize("end", ["\r", "\n", "\r\n"], ids=["CR", "LF", "CRLF"])
def test_segments_may_end_with_cr_lf_or_crlf(end: str) -> None:
    text = end.join([msh(), "EVN||20260302", "PID|1||IPP1^^^^PI", ""]) + end
    message = parse(text.encode("ascii"))
    assert [segment.name for segment in message.segments] == ["MSH", "EVN", "PID"]


def test_other_delimiters_declared_in_msh_are_honoured() -> None:
    text = msh(delimiters="#$*!@") + "\rPID#1##IPP1$$$$PI*IPP2$$$$PI##Dupont!F!Martin$Zoé"
    message = parse(text.encode("utf-8"))
    pid = message.first("PID")
    assert pid is not None
    assert [rep.component(1) for rep in pid.repetitions(3)] == ["IPP1", "IPP2"]
    assert pid.get(5) == "Dupont#Martin" and pid.get(5, 2) == "Zoé"


@pytest.mark.parametrize(
    ("escaped", "value"),
    [
        ("Dupont\\F\\Martin", "Dupont|Martin"),
        ("A\\S\\B", "A^B"),
        ("A\\T\\B", "A&B"),
        ("A\\R\\B", "A~B"),
        ("C:\\E\\temp", "C:\\temp"),
        ("Ren\\XE9\\e", "Renée"),
        ("ligne 1\\.br\\ligne 2", "ligne 1\nligne 2"),
        ("\\H\\important\\N\\", "important"),
        ("fin sans \\Fermeture", "fin sans \\Fermeture"),
        ("inconnu \\Q\\ gardé", "inconnu \\Q\\ gardé"),
    ],
)
def test_escape_sequences_are_resolved_after_splitting(escaped: str, value: str) -> None:
    text = msh("8859/1") + f"\rNTE|1||{escaped}"
    nte = parse(text.encode("iso8859-1")).first("NTE")
    assert nte is not None and nte.get(3) == value


def test_an_escaped_separator_does_not_split_the_value() -> None:
    text = msh() + "\rPID|1||||Dupont\\S\\Durand^Zoé"
    pid = parse(text.encode("utf-8")).first("PID")
    assert pid is not None and (pid.get(5, 1), pid.get(5, 2)) == ("Dupont^Durand", "Zoé")


@pytest.mark.parametrize(
    ("charset", "encoding", "codec"),
    [
        ("8859/1", "iso8859-1", "iso8859-1"),
        ("8859/15", "iso8859-15", "iso8859-15"),
        ("UNICODE UTF-8", "utf-8", "utf-8"),
        ("unicode  utf-8", "utf-8", "utf-8"),
        ("", "utf-8", "utf-8"),
        ("", "iso8859-1", "iso8859-1"),
    ],
)
def test_the_body_is_decoded_by_msh_18(charset: str, encoding: str, codec: str) -> None:
    name = "Œuvre Lefèvre" if encoding != "iso8859-1" else "Lefèvre Anaïs"
    text = msh(charset) + f"\rPID|1||IPP1^^^^PI||{name}"
    message = parse(text.encode(encoding))
    pid = message.first("PID")
    assert pid is not None and pid.get(5) == name
    assert message.codec == codec


def test_ascii_rejects_bytes_above_127_with_the_field_named() -> None:
    text = msh("ASCII") + "\rPID|1||IPP1^^^^PI||Lefèvre"
    with pytest.raises(MessageError) as raised:
        parse(text.encode("iso8859-1"))
    assert raised.value.problem.code is ErrorCode.DATA_TYPE
    assert str(raised.value.problem.location) == "MSH-18"
    assert not raised.value.rejected


def test_invalid_utf8_is_an_error_and_an_unknown_charset_a_rejection() -> None:
    with pytest.raises(MessageError) as invalid:
        parse((msh("UNICODE UTF-8") + "\rPID|1||IPP1^^^^PI||Lef").encode() + b"\xe8vre")
    assert invalid.value.problem.code is ErrorCode.DATA_TYPE
    with pytest.raises(MessageError) as unknown:
        parse((msh("KOI8-R") + "\rPID|1").encode())
    assert unknown.value.rejected
    assert unknown.value.problem.code is ErrorCode.TABLE_VALUE_NOT_FOUND
    assert "KOI8-R" in unknown.value.problem.text


def test_a_utf8_byte_order_mark_and_leading_blank_lines_are_tolerated() -> None:
    message = parse(b"\r\n\xef\xbb\xbf" + (msh() + "\rPID|1||IPP1^^^^PI||Zoé").encode())
    pid = message.first("PID")
    assert pid is not None and pid.get(5) == "Zoé"
    assert message.codec == "utf-8"


@pytest.mark.parametrize(
    "raw",
    [b"", b"HELLO", b"PID|1||X", b"MSH|^~\\", b"MSH|^^\\&|A", b"MSHa^~\\&|A", b"MSH|^~\\ |A"],
)
def test_input_without_a_readable_msh_is_rejected(raw: bytes) -> None:
    with pytest.raises(MessageError) as raised:
        parse(raw)
    assert raised.value.rejected


def test_a_line_that_is_not_a_segment_is_a_segment_sequence_error() -> None:
    with pytest.raises(MessageError) as raised:
        parse((msh() + "\rthis is not a segment\rPID|1").encode())
    assert raised.value.problem.code is ErrorCode.SEGMENT_SEQUENCE


def test_repeated_segments_know_their_sequence_for_error_locations() -> None:
    message = parse((msh() + "\rROL|1\rROL|2\rOBX|1").encode())
    assert [rol.sequence for rol in message.all("ROL")] == [1, 2]
    assert message.all("ROL")[1].location(4).erl() == ["ROL", "2", "4", "1"]


def test_the_header_alone_is_read_even_when_the_body_cannot_be_decoded() -> None:
    raw = (msh("UNICODE UTF-8") + "\rPID|1||IPP1^^^^PI||Lef").encode() + b"\xe8vre"
    assert parse_header(raw).get(10) == "MSG1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20260302081530", dt.datetime(2026, 3, 2, 8, 15, 30, tzinfo=PARIS)),
        ("202603020815", dt.datetime(2026, 3, 2, 8, 15, tzinfo=PARIS)),
        ("20260302", dt.datetime(2026, 3, 2, tzinfo=PARIS)),
        ("20260302081530.25", dt.datetime(2026, 3, 2, 8, 15, 30, 250_000, tzinfo=PARIS)),
        ("20260302081530+0000", dt.datetime(2026, 3, 2, 8, 15, 30, tzinfo=dt.UTC)),
        (
            "20260302081530-0430",
            dt.datetime(2026, 3, 2, 12, 45, 30, tzinfo=dt.UTC),
        ),
    ],
)
def test_timestamps_without_an_offset_are_local_time(value: str, expected: dt.datetime) -> None:
    assert parse_timestamp(value, PARIS) == expected


@pytest.mark.parametrize("value", ["2026-03-02", "20261302", "2026030225", "hier", ""])
def test_malformed_timestamps_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(value, PARIS)


def test_a_header_glued_to_the_end_of_a_segment_starts_a_segment() -> None:
    text = msh() + "\rPID|1||IPP1^^^^PI" + msh() + "\rPID|1||IPP2^^^^PI\r"
    message = parse(text.encode("ascii"))
    assert [segment.name for segment in message.segments] == ["MSH", "PID", "MSH", "PID"]
    assert message.segments[1].raw(3) == "IPP1^^^^PI"
    assert message.segments[2].sequence == 2
