"""The simulated day as plain data: patients, practitioners and the ADT messages of their stays.

Nothing here knows HL7 syntax or sockets; ``scenario`` builds these values and ``hl7`` renders
them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from services.simulator.profiles import Unit

Action = Literal["INSERT", "UPDATE", "CANCEL"]
IdentityReliability = Literal["VALI", "PROV", "VIDE"]
CareRole = Literal["ODRP", "RP", "RT", "SUBS"]
AdmissionMode = Literal["SCHEDULED", "EMERGENCY"]

CANCEL_TRIGGER: dict[str, str] = {
    "A01": "A11",
    "A04": "A11",
    "A02": "A12",
    "A03": "A13",
    "A05": "A38",
    "A21": "A52",
    "A22": "A53",
    "A54": "A55",
}
"""The PAM FR trigger that cancels a movement, by the movement's own trigger."""

MOVEMENT_TRIGGERS: tuple[str, ...] = (
    "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A11", "A12", "A13",
    "A21", "A22", "A38", "A52", "A53", "A54", "A55", "Z99",
)  # fmt: skip


@dataclass(frozen=True)
class Practitioner:
    id: str
    """RPPS number (11 digits) for city practitioners; the establishment's own id otherwise."""
    family_name: str
    given_name: str
    id_type: Literal["RPPS", "LOCAL"] = "RPPS"
    postcode: str | None = None
    """Where a city practitioner practises: patients mostly have a GP near home."""


@dataclass(frozen=True)
class CareTeamMember:
    role: CareRole
    practitioner: Practitioner


@dataclass(frozen=True)
class Address:
    street: str
    city: str
    postal_code: str


@dataclass(frozen=True)
class Patient:
    ipp: str
    """The establishment's patient id (PID-3, type PI)."""
    family_name: str
    """Used name."""
    given_name: str
    birth_date: dt.date
    sex: Literal["F", "M"]
    address: Address
    birth_name: str | None = None
    """Birth family name when it differs from the used name."""
    ins: str | None = None
    """National health identifier, sent when known; usable only when ``reliability`` is VALI."""
    reliability: IdentityReliability = "VIDE"
    """PID-32."""
    gp: Practitioner | None = None
    """The declared general practitioner (ROL ODRP)."""
    protected: bool = False
    """The patient asked for confidentiality: PD1-12 Y (left out of transfers, which inherit it)."""
    opposed: bool = False
    """The patient objected to their practitioners being notified (the opposition register)."""


@dataclass(frozen=True)
class Discharge:
    disposition: str
    """PV1-36, PMSI exit mode: 8 home, 7 transfer to another establishment, 9 death."""
    destination: str | None = None
    """PV1-37: the sending facility of the establishment the patient goes to."""
    covid_status: str | None = None
    """POSITIVE, NEGATIVE, SUSPECTED or NOT_TESTED (rendered as an OBX); None: no OBX sent."""


@dataclass(frozen=True)
class Visit:
    """The stay (PV1 and its practitioners) as it stands when a message is sent."""

    visit_number: str
    billing_number: str
    patient_class: str
    """PV1-2: I inpatient, E emergency, O outpatient, R sessions."""
    admission_type: str
    """PV1-4: R routine, U urgent, L labour."""
    admission_mode: AdmissionMode
    unit: Unit
    bed: str
    attending: Practitioner
    admitted_at: dt.datetime | None
    care_team: tuple[CareTeamMember, ...] = ()
    """Practitioners of the stay besides the GP (RP, RT, SUBS); the GP is ``Patient.gp``."""


@dataclass(frozen=True)
class AdtMessage:
    """One ADT message of one establishment's engine, with the state of the stay it carries."""

    establishment: str
    control_id: str
    """MSH-10, unique per establishment (and per seed and day)."""
    trigger: str
    action: Action
    movement_id: str
    """ZBE-1: the movement's id; for an update or cancel, the id of the movement acted upon."""
    occurred_at: dt.datetime
    """ZBE-2, when the movement happened (aware)."""
    sent_at: dt.datetime
    """MSH-7, when the engine sends it (aware); the simulator paces on it."""
    patient: Patient
    visit: Visit
    original_trigger: str | None = None
    """ZBE-6, for updates and cancels."""
    prior_unit: Unit | None = None
    """PV1-6, on transfers."""
    discharge: Discharge | None = None
    discharged_at: dt.datetime | None = None
    expected_admission_at: dt.datetime | None = None
    """PV2-8, on pre-admissions."""
    ack_lost: bool = False
    """The engine behaves as if this message's ACK never arrived, and sends it again."""

    @property
    def stay_key(self) -> str:
        return f"{self.establishment}:{self.visit.visit_number}"
