"""Conformance: PAM FR messages sent over MLLP to a running gateway and the real broker.

Every movement trigger, the identity messages, every character set, the segment ends, escape
sequences, enhanced mode and broken messages go through one engine connection. Each case checks
the ACK the engine got, the Avro record decoded back from the topic, and the archive entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.establishments import load_establishments
from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.gateway.bootstrap import GatewayConfig
from services.gateway.handler import Topics
from services.gateway.intake import PATIENT_MERGE_SCHEMA, RAW_MESSAGE_SCHEMA, STAY_EVENT_SCHEMA
from services.gateway.mllp import frame
from tests.gateway.messages import identity, movement
from tests.gateway.support import Ack, MllpClient, read_ack, read_topic, running_gateway

pytestmark = pytest.mark.integration

FACILITIES = [item.sending_facility for item in load_establishments()]
CODES = {item.sending_facility: item.code for item in load_establishments()}
Record = dict[str, Any]


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    ack: str | None
    """MSA-1 expected; None when the sender asked for no ACK."""
    outcome: str
    control_id: str = ""
    facility: str = "CHRU_NANCY"
    error: tuple[str, str] | None = None
    """ERR-3 code and ERR-2 location of the first ERR segment."""
    stream: str | None = None
    """Where the message's record is expected: stays, merges, or nowhere."""
    check: Callable[[Record], None] = field(default=lambda record: None)

    @property
    def event_id(self) -> str:
        return f"{CODES.get(self.facility, '?')}:{self.control_id}"


CASES: list[Case] = []


def case(
    name: str,
    ack: str | None,
    outcome: str,
    build: Callable[..., bytes] = movement,
    *args: str,
    error: tuple[str, str] | None = None,
    check: Callable[[Record], None] = lambda record: None,
    raw: Callable[[bytes], bytes] = lambda data: data,
    unreadable: bool = False,
    **kwargs: Any,
) -> None:
    """Register a case; each gets its own control id and an establishment in turn.

    ``unreadable``: the bytes sent have no MSH to take a control id from.
    """
    control_id = kwargs.setdefault("control_id", f"CF{len(CASES) + 1:03}")
    facility = kwargs.setdefault("facility", FACILITIES[len(CASES) % len(FACILITIES)])
    stream = None
    if outcome == "PUBLISHED":
        stream = "merges" if args[:1] == ("A40",) else "stays"
    CASES.append(
        Case(
            name,
            raw(build(*args, **kwargs)),
            ack,
            outcome,
            "" if unreadable else control_id,
            facility,
            error,
            stream,
            check,
        )
    )


def expect(**fields: Any) -> Callable[[Record], None]:
    """Checks dotted paths of the decoded record: ``expect(**{"stay.visit_number": "V1"})``."""

    def check(record: Record) -> None:
        for path, wanted in fields.items():
            value: Any = record
            for part in path.split("."):
                value = value[part]
            assert value == wanted, f"{path}: {value!r} != {wanted!r}"

    return check


def movement_of(kind: str, action: str, original: str | None = None) -> Callable[[Record], None]:
    return expect(kind=kind, action=action, original_trigger=original)


# --- Every movement trigger, inserts, cancels and the correction --------------------------------
for trigger, kind in [
    ("A01", "ADMISSION"),
    ("A02", "TRANSFER"),
    ("A03", "DISCHARGE"),
    ("A04", "REGISTRATION"),
    ("A05", "PRE_ADMISSION"),
    ("A06", "CHANGE_TO_INPATIENT"),
    ("A07", "CHANGE_TO_OUTPATIENT"),
    ("A21", "LEAVE_OF_ABSENCE"),
    ("A22", "RETURN_FROM_LEAVE"),
    ("A54", "ATTENDING_DOCTOR_CHANGE"),
]:
    case(
        f"{trigger} insert", "AA", "PUBLISHED", movement, trigger, check=movement_of(kind, "INSERT")
    )
for trigger, original, kind in [
    ("A11", "A01", "ADMISSION"),
    ("A11", "A04", "REGISTRATION"),
    ("A12", "A02", "TRANSFER"),
    ("A13", "A03", "DISCHARGE"),
    ("A38", "A05", "PRE_ADMISSION"),
    ("A52", "A21", "LEAVE_OF_ABSENCE"),
    ("A53", "A22", "RETURN_FROM_LEAVE"),
    ("A55", "A54", "ATTENDING_DOCTOR_CHANGE"),
]:
    case(
        f"{trigger} cancels {original}",
        "AA",
        "PUBLISHED",
        movement,
        trigger,
        original_trigger=original,
        check=movement_of(kind, "CANCEL", original),
    )
case(
    "Z99 corrects A03",
    "AA",
    "PUBLISHED",
    movement,
    "Z99",
    original_trigger="A03",
    check=movement_of("DISCHARGE", "UPDATE", "A03"),
)

# --- What the GP's notice needs ----------------------------------------------------------------
case(
    "emergency admission with qualified INS and care team",
    "AA",
    "PUBLISHED",
    movement,
    "A01",
    patient_class="E",
    admission_type="U",
    ins="2480799123456",
    identity_status="VALI",
    visit="URG-2026-17",
    care_team=[
        ("ODRP", "10101010101", "Martin", "Jeanne"),
        ("RT", "810003456789", "Bérard", "Noël"),
    ],
    check=expect(
        **{
            "stay_key": "chrunancy:URG-2026-17",
            "stay.admission_mode": "EMERGENCY",
            "patient.ins": "2480799123456",
            "care_team": [
                {
                    "role": "ODRP",
                    "rpps": "10101010101",
                    "family_name": "Martin",
                    "given_name": "Jeanne",
                },
                {
                    "role": "RT",
                    "rpps": "10003456789",
                    "family_name": "Bérard",
                    "given_name": "Noël",
                },
            ],
        }
    ),
    facility="CHRU_NANCY",
)
case(
    "discharge home with Covid-19 positive",
    "AA",
    "PUBLISHED",
    movement,
    "A03",
    disposition="8",
    destination="DOMICILE",
    discharged_at="20260302143000",
    covid=("94500-6", "260373001"),
    check=expect(
        **{
            "stay.discharge_disposition": "8",
            "stay.discharge_destination": "DOMICILE",
            "stay.discharged_at": dt.datetime(2026, 3, 2, 13, 30, tzinfo=dt.UTC),
            "covid_status": "POSITIVE",
            "movement.occurred_at": dt.datetime(2026, 3, 2, 7, 10, tzinfo=dt.UTC),
        }
    ),
)
case(
    "scheduled pre-admission without INS",
    "AA",
    "PUBLISHED",
    movement,
    "A05",
    admit_source="PROG",
    ins="2480799123456",
    identity_status="PROV",
    check=expect(**{"stay.admission_mode": "SCHEDULED", "patient.ins": None}),
)

# --- Character sets, segment ends, escapes ------------------------------------------------------
names = {
    "patient.family_name": "Lefèvre",
    "patient.given_name": "Hélène",
    "patient.birth_name": "Müller-Château",
}
case("8859/1", "AA", "PUBLISHED", movement, charset="8859/1", check=expect(**names))
case(
    "8859/15 with œ",
    "AA",
    "PUBLISHED",
    movement,
    charset="8859/15",
    family="Cœurdevey",
    given="Maëlys",
    check=expect(**{"patient.family_name": "Cœurdevey", "patient.given_name": "Maëlys"}),
)
case(
    "UNICODE UTF-8",
    "AA",
    "PUBLISHED",
    movement,
    charset="UNICODE UTF-8",
    family="Nguyễn",
    given="Zoé",
    check=expect(**{"patient.family_name": "Nguyễn"}),
)
case(
    "ASCII with escapes",
    "AA",
    "PUBLISHED",
    movement,
    charset="ASCII",
    family="Dupont\\T\\Fils",
    given="Ren\\XE9\\",
    birth_name=None,
    unit="Soins \\H\\intensifs\\N\\^^^^^^UF^^^4013",
    check=expect(
        **{
            "patient.family_name": "Dupont&Fils",
            "patient.given_name": "Ren\ufffd",
            "movement.unit_name": "Soins intensifs",
        }
    ),
)
case(
    "line break escaped in a unit name",
    "AE",
    "ERROR",
    movement,
    unit="Soins\\.br\\intensifs^^^^^^UF^^^4013",
    error=("102", "ZBE^1^7^1"),
)
case(
    "no MSH-18, UTF-8 bytes",
    "AA",
    "PUBLISHED",
    movement,
    charset="",
    given="Françoise",
    check=expect(**{"patient.given_name": "Françoise"}),
)
case(
    "no MSH-18, 8859/1 bytes",
    "AA",
    "PUBLISHED",
    movement,
    charset="",
    given="Jérôme",
    raw=lambda data: data.decode("utf-8").encode("iso8859-1"),
    check=expect(**{"patient.given_name": "Jérôme"}),
)
case(
    "UTF-8 byte order mark",
    "AA",
    "PUBLISHED",
    movement,
    charset="UNICODE UTF-8",
    raw=lambda data: b"\xef\xbb\xbf" + data,
    check=expect(**names),
)
case("segments ending in LF", "AA", "PUBLISHED", movement, segment_end="\n", check=expect(**names))
case(
    "segments ending in CRLF",
    "AA",
    "PUBLISHED",
    movement,
    segment_end="\r\n",
    check=expect(**names),
)
case(
    "escaped field separator in a name",
    "AA",
    "PUBLISHED",
    movement,
    family="Lefèvre\\F\\Dupré",
    check=expect(**{"patient.family_name": "Lefèvre|Dupré"}),
)

# --- Identity messages and triggers the platform does not use ---------------------------------
case("A28 new identity", "AA", "KEPT", identity, "A28")
case("A31 identity update", "AA", "KEPT", identity, "A31", charset="8859/1", family="Ébrard")
case(
    "A40 merge",
    "AA",
    "PUBLISHED",
    identity,
    "A40",
    ipp="IPP0001",
    merged_ipp="IPP0999",
    check=expect(merged_ipp="IPP0999", **{"patient.ipp": "IPP0001"}),
)
case("A08 not used in France", "AA", "IGNORED", movement, "A08")
case("A47 identifier change", "AA", "KEPT", identity, "A47")
case("A31 without an IPP", "AA", "KEPT", identity, "A31", ipp="", ins="2480799123456")

# --- Enhanced acknowledgement mode --------------------------------------------------------------
case("MSH-15 AL accepted", "CA", "PUBLISHED", movement, accept_ack="AL")
case(
    "MSH-15 AL error",
    "CE",
    "ERROR",
    movement,
    accept_ack="AL",
    visit="",
    error=("101", "PV1^1^19^1"),
)
case("MSH-15 ER accepted: no ACK", None, "PUBLISHED", movement, accept_ack="ER")
case(
    "MSH-15 ER rejected",
    "CR",
    "REJECTED",
    movement,
    accept_ack="ER",
    facility="CH_INCONNU",
    error=("103", "MSH^1^4^1"),
)
case("MSH-15 SU accepted", "CA", "PUBLISHED", movement, accept_ack="SU")
case("MSH-15 NE: no ACK", None, "PUBLISHED", movement, accept_ack="NE")

# --- Broken messages ----------------------------------------------------------------------------
case(
    "unknown sending facility",
    "AR",
    "REJECTED",
    movement,
    facility="CH_INCONNU",
    error=("103", "MSH^1^4^1"),
)
case("not ADT", "AR", "REJECTED", movement, message_code="ORU", error=("200", "MSH^1^9^1^1"))
case(
    "version 3",
    "AR",
    "REJECTED",
    movement,
    raw=lambda data: data.replace(b"|P|2.5|", b"|P|3.0|", 1),
    error=("203", "MSH^1^12^1"),
)
case(
    "no message control id", "AR", "REJECTED", movement, control_id="", error=("101", "MSH^1^10^1")
)
case(
    "not HL7 at all",
    "AR",
    "REJECTED",
    movement,
    raw=lambda data: b"Bonjour, ceci n'est pas un message",
    error=("100", "MSH^1"),
    unreadable=True,
)
case(
    "binary noise",
    "AR",
    "REJECTED",
    movement,
    raw=lambda data: bytes(set(range(256)) - {0x0B, 0x1C}) * 4,
    error=("100", "MSH^1"),
    unreadable=True,
)
case(
    "broken delimiters",
    "AR",
    "REJECTED",
    movement,
    raw=lambda data: data.replace(b"MSH|^~\\&|", b"MSH|^^\\&|", 1),
    error=("102", "MSH^1^2^1"),
    unreadable=True,
)
case(
    "unknown character set",
    "AR",
    "REJECTED",
    movement,
    charset="KOI8-R",
    error=("103", "MSH^1^18^1"),
)
case(
    "invalid UTF-8",
    "AE",
    "ERROR",
    movement,
    charset="UNICODE UTF-8",
    raw=lambda data: data.replace("Hélène".encode(), "Hélène".encode("iso8859-1")),
    error=("102", "MSH^1^18^1"),
)
case(
    "ASCII with accented bytes",
    "AE",
    "ERROR",
    movement,
    charset="ASCII",
    family="Lefevre",
    given="Helene",
    birth_name=None,
    raw=lambda data: data.replace(b"Lefevre", "Lefèvre".encode("iso8859-1")),
    error=("102", "MSH^1^18^1"),
)
case("no visit number", "AE", "ERROR", movement, visit="", error=("101", "PV1^1^19^1"))
case("no IPP", "AE", "ERROR", movement, ipp="", ins="2480799123456", error=("101", "PID^1^3^1"))
case("no ZBE", "AE", "ERROR", movement, without=["ZBE"], error=("100", "ZBE^1"))
case(
    "cancel sent as insert",
    "AE",
    "ERROR",
    movement,
    "A11",
    action="INSERT",
    error=("103", "ZBE^1^4^1"),
)
case("Z99 without original trigger", "AE", "ERROR", movement, "Z99", error=("101", "ZBE^1^6^1"))
case(
    "unreadable movement time",
    "AE",
    "ERROR",
    movement,
    moved_at="02/03/2026",
    error=("102", "ZBE^1^2^1"),
)
case("A40 without MRG", "AE", "ERROR", identity, "A40", merged_ipp=None, error=("100", "MRG^1"))
case(
    "unreadable admit time",
    "AE",
    "ERROR",
    movement,
    admitted_at="hier",
    error=("102", "PV1^1^44^1"),
)


@dataclass(frozen=True)
class Results:
    acks: dict[str, Ack | None]
    stays: dict[str, tuple[str, Record]]
    merges: dict[str, tuple[str, Record]]
    archive: dict[bytes, Record]


@pytest.fixture(scope="module")
def results(
    stack: Settings, registry: SchemaRegistryClient, module_topics: Topics
) -> Iterator[Results]:
    """Every case sent once, in order, each through its establishment's connection (its own
    client certificate; the CHRU's for a facility of none); then every topic read back."""
    config = GatewayConfig(host="127.0.0.1", port=0, topics=module_topics)
    acks: dict[str, Ack | None] = {}
    with running_gateway(stack, config) as gateway, ExitStack() as connections:
        engines: dict[str, MllpClient] = {}
        for item in CASES:
            code = CODES.get(item.facility, "chrunancy")
            if code not in engines:
                engines[code] = connections.enter_context(
                    MllpClient(gateway.port, establishment=code)
                )
            engines[code].send_raw(frame(item.raw))
            acks[item.name] = read_ack(engines[code].receive()) if item.ack else None
    published = [item for item in CASES if item.stream]
    stays = read_topic(
        stack,
        module_topics.stays,
        AvroSerde(registry, STAY_EVENT_SCHEMA),
        sum(item.stream == "stays" for item in published),
    )
    merges = read_topic(
        stack,
        module_topics.merges,
        AvroSerde(registry, PATIENT_MERGE_SCHEMA),
        sum(item.stream == "merges" for item in published),
    )
    archive = read_topic(
        stack, module_topics.archive, AvroSerde(registry, RAW_MESSAGE_SCHEMA), len(CASES)
    )
    yield Results(
        acks,
        {value["event_id"]: (key, value) for key, value in stays},
        {value["event_id"]: (key, value) for key, value in merges},
        {value["raw"]: value for _key, value in archive},
    )


@pytest.mark.parametrize("item", CASES, ids=[item.name for item in CASES])
def test_conformance(item: Case, results: Results) -> None:
    ack = results.acks[item.name]
    if item.ack is not None:
        assert ack is not None
        assert ack.code == item.ack
        assert ack.control_id == item.control_id
        first_error = (ack.errors[0]["code"], ack.errors[0]["location"]) if ack.errors else None
        assert first_error == item.error
    archived = results.archive[item.raw]
    assert (archived["outcome"], archived["ack_code"]) == (item.outcome, item.ack)
    assert archived["message_control_id"] == (item.control_id or None)

    if item.stream == "stays":
        key, record = results.stays[item.event_id]
        assert (
            key
            == record["stay_key"]
            == f"{record['establishment']}:{record['stay']['visit_number']}"
        )
        assert record["establishment"] == CODES[item.facility]
        assert archived["event_id"] == item.event_id
        item.check(record)
    elif item.stream == "merges":
        key, record = results.merges[item.event_id]
        assert key == f"{record['establishment']}:{record['patient']['ipp']}"
        item.check(record)
    else:
        assert item.event_id not in results.stays
        assert item.event_id not in results.merges
        assert archived["event_id"] is None


def test_every_establishment_and_every_trigger_is_covered() -> None:
    assert {item.facility for item in CASES if item.stream == "stays"} >= set(FACILITIES)
    triggers = {
        item.raw.split(b"|")[8].split(b"^")[1].decode()
        for item in CASES
        if item.raw.startswith(b"MSH") and item.outcome == "PUBLISHED"
    }
    assert triggers >= {
        "A01",
        "A02",
        "A03",
        "A04",
        "A05",
        "A06",
        "A07",
        "A11",
        "A12",
        "A13",
        "A21",
        "A22",
        "A38",
        "A40",
        "A52",
        "A53",
        "A54",
        "A55",
        "Z99",
    }
