"""HL7 v2.5 rendering of the simulated messages (IHE PAM FR), their bytes in the charset MSH-18
names, and the reading of the ACKs that come back.

Pure functions: no sockets here; ``engine`` moves the bytes. The HL7 syntax itself (escaping,
parsing) is the gateway's, so that both ends of the wire agree on it.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from services.gateway.hl7 import Delimiters, MessageError, parse
from services.simulator.model import AdtMessage, CareTeamMember, Practitioner
from services.simulator.profiles import CHARSETS, Profile, Unit

SEGMENT_END = "\r"

RECEIVING_APPLICATION = "HARPICOOP"
RECEIVING_FACILITY = "GHT_SUD_LORRAINE"
RPPS_AUTHORITY = "ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO"
INS_AUTHORITY = "ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO"
COVID_LOINC = "94500-6^SARS-CoV-2 (COVID-19) RNA [Presence] in Respiratory specimen by NAA^LN"

ROLE_LABELS = {
    "ODRP": "Médecin traitant",
    "RP": "Médecin adresseur",
    "RT": "Médecin correspondant",
    "SUBS": "Remplaçant du médecin traitant",
}
# HL7 v2.5 message structure (MSH-9.3) by trigger; Z99 travels in the admission structure.
STRUCTURES = {
    "A01": "ADT_A01", "A04": "ADT_A01", "A13": "ADT_A01", "Z99": "ADT_A01",
    "A02": "ADT_A02", "A03": "ADT_A03", "A05": "ADT_A05", "A06": "ADT_A06", "A07": "ADT_A06",
    "A11": "ADT_A09", "A12": "ADT_A12", "A38": "ADT_A38", "A21": "ADT_A21", "A22": "ADT_A21",
    "A52": "ADT_A52", "A53": "ADT_A52", "A54": "ADT_A54", "A55": "ADT_A54",
}  # fmt: skip
# PV1-14 (admit source) as the engines of the GHT fill it: the scheduled flag of the stay.
ADMIT_SOURCE = {"SCHEDULED": "PROG", "EMERGENCY": "URG"}

# Letters that ISO 8859-1 lacks but French writes: an 8859/1 engine types them this way.
_LATIN1_FALLBACK = {"œ": "oe", "Œ": "OE", "’": "'", "€": "EUR", "Ÿ": "Y"}


escape = Delimiters().escape_text
"""A value with the HL7 delimiters (| ^ ~ \\ &) and line ends written as escape sequences."""


def render(message: AdtMessage, profile: Profile) -> str:
    """The message as HL7 v2.5 text, segments ended by carriage returns."""
    facility = profile.establishment.sending_facility

    def ts(moment: dt.datetime | None) -> str:
        if moment is None:
            return ""
        text = f"{moment:%Y%m%d%H%M%S}"
        return f"{text}{moment:%z}" if profile.timestamps_with_offset else text

    enhanced = profile.ack_mode == "enhanced"
    segments = [
        _segment(
            "MSH",
            {
                3: escape(profile.application),
                4: escape(facility),
                5: RECEIVING_APPLICATION,
                6: RECEIVING_FACILITY,
                7: ts(message.sent_at),
                9: f"ADT^{message.trigger}^{STRUCTURES[message.trigger]}",
                10: escape(message.control_id),
                11: "P",
                12: "2.5^FRA^2.10",
                15: "AL" if enhanced else "",
                16: "NE" if enhanced else "",
                17: "FRA",
                18: profile.charset,
                19: "FR",
            },
            msh=True,
        ),
        _segment("EVN", {2: ts(message.sent_at), 6: ts(message.occurred_at)}),
        _pid(message, facility),
    ]
    # A protected patient's messages say so, transfers excepted: notify must remember it.
    if message.patient.protected and message.trigger != "A02":
        segments.append(_segment("PD1", {12: "Y"}))
    gp = message.patient.gp
    if gp is not None:
        segments.append(_rol(1, CareTeamMember("ODRP", gp)))
    segments.append(_pv1(message, facility, ts))
    if message.expected_admission_at is not None:
        segments.append(_segment("PV2", {8: ts(message.expected_admission_at)}))
    for index, member in enumerate(message.visit.care_team, start=2 if gp else 1):
        segments.append(_rol(index, member))
    segments.append(
        _segment(
            "ZBE",
            {
                1: f"{escape(message.movement_id)}^{escape(facility)}",
                2: ts(message.occurred_at),
                4: message.action,
                5: "N",
                6: message.original_trigger or "",
                7: _unit(message.visit.unit),
                9: "C" if message.action == "UPDATE" else "",
            },
        )
    )
    discharge = message.discharge
    if discharge is not None and discharge.covid_status is not None:
        result = profile.covid_codes[discharge.covid_status]
        segments.append(
            _segment(
                "OBX",
                {
                    1: "1",
                    2: "CE",
                    3: COVID_LOINC,
                    5: f"{escape(result.code)}^{escape(result.label)}^{escape(result.system)}",
                    11: "F",
                    14: ts(message.discharged_at or message.occurred_at),
                },
            )
        )
    return "".join(segment + SEGMENT_END for segment in segments)


def encode(text: str, charset: str) -> bytes:
    """The text in the charset MSH-18 names; letters the charset lacks are transliterated."""
    codec = CHARSETS[charset]
    try:
        return text.encode(codec)
    except UnicodeEncodeError:
        return "".join(_transliterate(char, codec) for char in text).encode(codec)


def _transliterate(char: str, codec: str) -> str:
    try:
        char.encode(codec)
        return char
    except UnicodeEncodeError:
        pass
    if char in _LATIN1_FALLBACK:
        return _LATIN1_FALLBACK[char]
    stripped = "".join(
        part for part in unicodedata.normalize("NFKD", char) if not unicodedata.combining(part)
    )
    try:
        stripped.encode(codec)
        return stripped
    except UnicodeEncodeError:
        return "?"


def message_bytes(message: AdtMessage, profile: Profile) -> bytes:
    return encode(render(message, profile), profile.charset)


@dataclass(frozen=True)
class Ack:
    code: str
    """MSA-1: AA, AE, AR (application) or CA, CE, CR (commit, enhanced mode)."""
    control_id: str
    """MSA-2, the MSH-10 of the message acknowledged."""
    text: str = ""
    """MSA-3 or ERR-8: why, for an error."""

    @property
    def accepted(self) -> bool:
        return self.code in ("AA", "CA")

    @property
    def rejected(self) -> bool:
        """Refused for good: sending the same message again would not help."""
        return self.code in ("AR", "CR")


def parse_ack(payload: bytes) -> Ack | None:
    """The MSA (and ERR) of an ACK; None when the bytes are not an acknowledgement."""
    try:
        ack = parse(payload)
    except MessageError:
        return None
    msa = ack.first("MSA")
    if msa is None or not msa.get(1):
        return None
    err = ack.first("ERR")
    reason = msa.get(3) or (err.get(8) if err is not None else "")
    return Ack(msa.get(1).upper(), msa.get(2), reason)


def _segment(name: str, fields: dict[int, str], *, msh: bool = False) -> str:
    """A segment from its non-empty fields by position (MSH counts its field separator as 1)."""
    last = max((index for index, value in fields.items() if value), default=1)
    values = [fields.get(index, "") for index in range(1, last + 1)]
    if msh:
        return "MSH|^~\\&|" + "|".join(values[2:])
    return "|".join([name, *values])


def _pid(message: AdtMessage, facility: str) -> str:
    patient = message.patient
    identifiers = [f"{escape(patient.ipp)}^^^{escape(facility)}^PI"]
    if patient.ins:
        identifiers.append(f"{patient.ins}^^^{INS_AUTHORITY}^INS")
    names = [f"{escape(patient.family_name)}^{escape(patient.given_name)}^^^^^D"]
    if patient.birth_name:
        names.append(f"{escape(patient.birth_name)}^{escape(patient.given_name)}^^^^^L")
    address = patient.address
    return _segment(
        "PID",
        {
            1: "1",
            3: "~".join(identifiers),
            5: "~".join(names),
            7: f"{patient.birth_date:%Y%m%d}",
            8: patient.sex,
            11: f"{escape(address.street)}^^{escape(address.city)}^^{address.postal_code}^FRA^H",
            18: f"{escape(message.visit.billing_number)}^^^{escape(facility)}^AN",
            32: patient.reliability,
        },
    )


def _pv1(message: AdtMessage, facility: str, ts: Callable[[dt.datetime | None], str]) -> str:
    discharge = message.discharge
    fields = {
        1: "1",
        2: message.visit.patient_class,
        3: f"{escape(message.visit.unit.code)}^^{escape(message.visit.bed)}^{escape(facility)}",
        4: message.visit.admission_type,
        7: _doctor(message.visit.attending, facility),
        14: ADMIT_SOURCE[message.visit.admission_mode],
        19: f"{escape(message.visit.visit_number)}^^^{escape(facility)}^VN",
        44: ts(message.visit.admitted_at),
        45: ts(message.discharged_at),
    }
    if message.prior_unit is not None:
        fields[6] = f"{escape(message.prior_unit.code)}^^^{escape(facility)}"
    if discharge is not None:
        fields[36] = discharge.disposition
        if discharge.destination:
            fields[37] = escape(discharge.destination)
    return _segment("PV1", fields)


def _rol(index: int, member: CareTeamMember) -> str:
    doctor = member.practitioner
    return _segment(
        "ROL",
        {
            1: str(index),
            2: "AD",
            3: f"{member.role}^{escape(ROLE_LABELS[member.role])}^FR-ROLE",
            4: (
                f"{escape(doctor.id)}^{escape(doctor.family_name)}^{escape(doctor.given_name)}"
                f"^^^^^^{RPPS_AUTHORITY}^D^^^RPPS"
            ),
        },
    )


def _doctor(doctor: Practitioner, facility: str) -> str:
    return (
        f"{escape(doctor.id)}^{escape(doctor.family_name)}^{escape(doctor.given_name)}"
        f"^^^^^^{escape(facility)}^D^^^EI"
    )


def _unit(unit: Unit) -> str:
    """ZBE-7 (XON): the unit's label in component 1, its code in component 10."""
    return f"{escape(unit.name)}^^^^^^UF^^^{escape(unit.code)}"
