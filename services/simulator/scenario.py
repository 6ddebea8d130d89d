"""The day's scenario: which patients come to which establishment, and every movement of their
stays, as plain data (``AdtMessage``), in each engine's send order.

Deterministic: the same configuration, profiles and practitioners give the same messages, byte
for byte once rendered. Each establishment draws from its own random stream for each date, seeded
with the seed, its code and the date.

The day follows how French hospitals work: scheduled admissions in the morning, emergency
arrivals all day with an evening peak, discharges around midday, pre-admissions during office
hours, patients already in the house moving, leaving on leave and going home; some movements
cancelled (A11, A12, A13, A38, A52, A53, A55) or corrected (Z99) shortly after; Monday busier,
with its burst in the morning, and weekends quiet for scheduled activity.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from services.simulator.model import (
    CANCEL_TRIGGER,
    Action,
    Address,
    AdmissionMode,
    AdtMessage,
    CareTeamMember,
    Discharge,
    IdentityReliability,
    Patient,
    Practitioner,
    Visit,
)
from services.simulator.names import FAMILY_NAMES, FEMALE_GIVEN_NAMES, MALE_GIVEN_NAMES
from services.simulator.profiles import INPATIENT_KINDS, Profile, Unit

PARIS = ZoneInfo("Europe/Paris")

# Relative weight of each hour of the day (0h..23h), from the usual shapes of hospital activity.
EMERGENCY_HOURS = (2.0, 1.6, 1.3, 1.1, 1.0, 1.0, 1.2, 2.0, 3.5, 4.5, 5.0, 5.0,
                   4.8, 4.6, 4.6, 4.8, 5.0, 5.4, 5.8, 6.0, 5.8, 5.0, 4.0, 3.0)  # fmt: skip
SCHEDULED_HOURS = (0, 0, 0, 0, 0, 0, 0.5, 4.0, 6.0, 5.0, 3.5, 2.0,
                   1.5, 2.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0, 0, 0, 0, 0)  # fmt: skip
DISCHARGE_HOURS = (0, 0, 0, 0, 0, 0, 0, 0.2, 0.8, 2.0, 3.5, 4.0,
                   3.0, 2.5, 3.0, 3.5, 3.0, 2.0, 1.0, 0.3, 0, 0, 0, 0)  # fmt: skip
OFFICE_HOURS = (0, 0, 0, 0, 0, 0, 0, 0.5, 3.0, 4.0, 4.0, 3.0,
                1.5, 2.5, 4.0, 4.0, 3.0, 1.5, 0.3, 0, 0, 0, 0, 0)  # fmt: skip
LABOUR_HOURS = (1.0,) * 24
# Monday morning: the weekend's backlog of scheduled admissions and GP referrals.
MONDAY_MORNING = (1.0,) * 7 + (1.8, 1.8, 1.6, 1.3) + (1.0,) * 13

# Daily volumes per unit of establishment size, before the weekday factor and the rate.
EMERGENCY_VISITS = 28.0
SCHEDULED_ADMISSIONS = 10.0
DIRECT_ADMISSIONS = 3.0
OUTPATIENT_VISITS = 12.0
STAYS_IN_THE_HOUSE = 30.0
PRE_ADMISSIONS = 4.0

# Weekday (Monday 0) factors: Monday is the busiest day, about 20% above the rest.
EMERGENCY_WEEKDAY = (1.2, 1.0, 1.0, 1.0, 1.0, 0.95, 0.95)
SCHEDULED_WEEKDAY = (1.25, 1.0, 1.0, 1.0, 0.9, 0.15, 0.05)

# Length of stay in days (low, high, mode) by unit kind.
LENGTH_OF_STAY = {
    "medicine": (1, 15, 4),
    "surgery": (1, 10, 3),
    "icu": (2, 12, 4),
    "maternity": (2, 6, 4),
    "day_hospital": (0, 0, 0),
    "rehab": (7, 60, 21),
    "psychiatry": (5, 90, 25),
    "long_term": (30, 400, 120),
}
# Daily chance of a transfer, an attending doctor change and a leave, by unit kind.
TRANSFER_PER_DAY = {"icu": 0.45, "surgery": 0.15, "medicine": 0.08, "maternity": 0.02}
DOCTOR_CHANGE_PER_DAY = 0.06
LEAVE_PER_DAY = {"rehab": 0.2, "psychiatry": 0.3, "long_term": 0.15}
TRANSFER_TARGETS = {
    "icu": ("medicine", "surgery"),
    "surgery": ("medicine", "icu", "rehab"),
    "medicine": ("medicine", "icu", "rehab"),
    "maternity": ("medicine",),
}
# Chance that a movement is cancelled soon after, by its trigger: leaves and returns are typed
# in a hurry at the ward, discharges are sometimes recorded before the patient actually leaves.
CANCEL_CHANCE = {
    "A01": 0.02, "A04": 0.02, "A02": 0.08, "A03": 0.04, "A05": 0.08,
    "A21": 0.12, "A22": 0.15, "A54": 0.1,
}  # fmt: skip
CORRECTION_CHANCE = 0.03
LATE_ENTRY_CHANCE = 0.04

STREETS = ("rue Stanislas", "rue Saint-Dizier", "avenue de la Libération", "rue Gambetta",
           "place Carnot", "rue des Jardiniers", "chemin des Vignes", "rue du Général-Leclerc",
           "rue de l'Église", "allée des Tilleuls", "rue Émile-Gallé",
           "quai Claude-le-Lorrain")  # fmt: skip
TOWNS = (("Nancy", "54000"), ("Vandœuvre-lès-Nancy", "54500"), ("Laxou", "54520"),
         ("Villers-lès-Nancy", "54600"), ("Maxéville", "54320"), ("Essey-lès-Nancy", "54270"),
         ("Lunéville", "54300"), ("Toul", "54200"), ("Pont-à-Mousson", "54700"),
         ("Saint-Nicolas-de-Port", "54210"), ("Commercy", "55200"), ("Dieuze", "57260"),
         ("Mirecourt", "88500"), ("Cirey-sur-Vezouze", "54480"), ("Baccarat", "54120"),
         ("Épinal", "88000"), ("Blâmont", "54450"), ("Château-Salins", "57170"))  # fmt: skip
BIRTH_DEPARTMENTS = ("54", "54", "54", "55", "57", "88", "67", "75")


@dataclass(frozen=True)
class Canary:
    """A patient identity no other patient has, for tests that search where patient data went.

    It replaces the identity (names, birth date, INS, qualified) of the first patient each
    establishment receives each date whose GP is in the directory (so that its notices are
    sent), not one already in the house; it does so after every random draw, so the rest of
    the day is the same as without it."""

    family_name: str
    given_name: str
    birth_date: dt.date
    ins: str

    @classmethod
    def parse(cls, text: str) -> Canary:
        """``FAMILY,GIVEN,YYYY-MM-DD,INS``."""
        family, given, birth, ins = (part.strip() for part in text.split(","))
        return cls(family, given, dt.date.fromisoformat(birth), ins)


@dataclass(frozen=True)
class DayConfig:
    """What a simulated day is: when, how busy, and the habits of the engines."""

    date: dt.date
    seed: int | str = 1
    rate: float = 1.0
    """Volume factor: 1.0 is a typical day of the GHT (a few thousand messages)."""
    start: dt.time = dt.time(0, 0)
    duration: dt.timedelta = dt.timedelta(hours=24)
    """The window of simulated time whose messages are sent."""
    covid_prevalence: float = 0.05
    """Share of discharges with a positive Covid-19 status."""
    gp_share: float = 0.85
    """Share of patients whose declared GP is in the directory."""
    unknown_gp_share: float = 0.04
    """Share of patients whose declared GP has an RPPS number unknown to the directory."""
    ack_lost_share: float = 0.01
    """Share of messages whose ACK the engine loses, so it sends the message again."""
    canary: Canary | None = None
    """For tests: the identity some patients carry (see ``Canary``)."""
    protected_share: float = 0.02
    """Share of patients who ask for confidentiality (PD1-12 Y)."""
    opposed_share: float = 0.01
    """Share of patients who objected to their practitioners being notified."""

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.duration <= dt.timedelta(0):
            raise ValueError("duration must be positive")
        for name in (
            "covid_prevalence",
            "gp_share",
            "unknown_gp_share",
            "ack_lost_share",
            "protected_share",
            "opposed_share",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.gp_share + self.unknown_gp_share > 1.0:
            raise ValueError("gp_share + unknown_gp_share must not exceed 1")

    @property
    def window_start(self) -> dt.datetime:
        return dt.datetime.combine(self.date, self.start, tzinfo=PARIS)

    @property
    def window_end(self) -> dt.datetime:
        return self.window_start + self.duration


@dataclass(frozen=True)
class Day:
    """Every establishment's messages of the day, each list in the order its engine sends it."""

    config: DayConfig
    messages: dict[str, tuple[AdtMessage, ...]]

    def all_messages(self) -> list[AdtMessage]:
        return [message for sequence in self.messages.values() for message in sequence]


def build_day(
    config: DayConfig, profiles: Sequence[Profile], practitioners: Sequence[Practitioner]
) -> Day:
    """The day of every establishment; ``practitioners`` are the directory's GPs to draw from.

    A window running past midnight holds the activity of each date it covers."""
    directory = sorted(practitioners, key=lambda item: item.id)
    messages: dict[str, list[AdtMessage]] = {item.establishment.code: [] for item in profiles}
    date = config.window_start.date()
    last = (config.window_end - dt.timedelta(microseconds=1)).date()
    while date <= last:
        engines = [_EngineDay(config, date, profile, profiles, directory) for profile in profiles]
        for engine in engines:
            engine.generate()
        # Patients transferred between establishments arrive at their destination: a second
        # pass, once every establishment has decided whom it sends away.
        by_facility = {engine.profile.establishment.sending_facility: engine for engine in engines}
        for engine in engines:
            for transfer in engine.transfers_out:
                by_facility[transfer.destination].incoming.append(transfer)
        for engine in engines:
            engine.admit_incoming()
            messages[engine.code].extend(engine.finish())
        date += dt.timedelta(days=1)
    return Day(
        config,
        {
            code: tuple(sorted(items, key=lambda item: item.sent_at))
            for code, items in messages.items()
        },
    )


RUN_TAG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def run_tag(seed: int | str) -> str:
    """Four base-36 characters derived from the seed, folded into the message, movement and visit
    ids so that two seeds of one date differ: 36**4 tags, where two digits once made two runs
    of a morning reuse one another's message ids for other stays. Four characters keep the
    visit number within PV1-19's 15 and the message id within MSH-10's 20."""
    number = int(hashlib.sha256(str(seed).encode()).hexdigest(), 16)
    tag = ""
    for _ in range(4):
        number, digit = divmod(number, len(RUN_TAG_ALPHABET))
        tag += RUN_TAG_ALPHABET[digit]
    return tag


@dataclass(frozen=True)
class _Transfer:
    patient: Patient
    destination: str
    arrives_at: dt.datetime
    emergency: bool


@dataclass
class _Stay:
    """A stay's current state while its story is written."""

    patient: Patient
    visit: Visit
    now: dt.datetime
    """Time of the stay's last event in its story."""
    last_sent: dt.datetime
    closed: bool = False

    def change(self, **changes: Any) -> Visit:
        """Move the stay on (unit, bed, doctor...); the visit as it was, to undo a cancel."""
        before = self.visit
        self.visit = dataclasses.replace(self.visit, **changes)
        return before


@dataclass
class _Draft:
    message: AdtMessage
    order: int


@dataclass
class _EngineDay:
    """One establishment's activity of one date, as much of it as falls in the window."""

    config: DayConfig
    date: dt.date
    profile: Profile
    all_profiles: Sequence[Profile]
    directory: Sequence[Practitioner]
    transfers_out: list[_Transfer] = field(default_factory=list)
    incoming: list[_Transfer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.code = self.profile.establishment.code
        self.rng = random.Random(f"{self.config.seed}:{self.code}:{self.date}")
        self.drafts: list[_Draft] = []
        self.tag = run_tag(self.config.seed)
        self.day_code = f"{self.date:%y%j}"
        self.visits = 0
        self.movements = 0
        self.ipps: set[str] = set()
        self.canary_seen = False
        self.window_start = self.config.window_start
        self.window_end = self.config.window_end
        self.midnight = dt.datetime.combine(self.date, dt.time(0), tzinfo=PARIS)
        self.weekday = self.date.weekday()
        self.doctors = {
            unit.code: tuple(self._hospital_doctor(unit, index) for index in range(3))
            for unit in self.profile.units
        }
        self.directory_ids = {item.id for item in self.directory}
        self.gps_by_department: dict[str, list[Practitioner]] = {}
        for practitioner in self.directory:
            department = (practitioner.postcode or "")[:2]
            self.gps_by_department.setdefault(department, []).append(practitioner)

    # -- the day's flows --------------------------------------------------------------------

    def generate(self) -> None:
        size = self.profile.size * self.config.rate
        emergency_units = self.profile.units_of("emergency")
        scheduled_units = self.profile.units_of(
            "surgery", "medicine", "day_hospital", "rehab", "psychiatry", "maternity"
        )
        direct_units = self.profile.units_of("medicine", "maternity", "psychiatry", "icu")
        outpatient_units = self.profile.units_of("outpatient", "sessions")
        house_units = self.profile.units_of(*INPATIENT_KINDS)
        emergency_factor = EMERGENCY_WEEKDAY[self.weekday]
        scheduled_factor = SCHEDULED_WEEKDAY[self.weekday]
        emergency_hours = self._monday(EMERGENCY_HOURS)
        scheduled_hours = self._monday(SCHEDULED_HOURS)

        # Stays already in the house first: their day starts at midnight.
        for _ in range(self._count(STAYS_IN_THE_HOUSE * size, minimum=0)):
            self._stay_in_the_house(self.rng.choice(house_units))
        if emergency_units:
            for _ in range(self._count(EMERGENCY_VISITS * size * emergency_factor)):
                self._emergency_visit(self.rng.choice(emergency_units), self._time(emergency_hours))
        for _ in range(self._count(SCHEDULED_ADMISSIONS * size * scheduled_factor, minimum=1)):
            unit = self._weighted_unit(scheduled_units or house_units)
            self._scheduled_admission(unit, self._time(scheduled_hours))
        for _ in range(self._count(DIRECT_ADMISSIONS * size * emergency_factor)):
            unit = self.rng.choice(direct_units or house_units)
            hours = LABOUR_HOURS if unit.kind == "maternity" else emergency_hours
            self._direct_admission(unit, self._time(hours))
        if outpatient_units:
            for _ in range(self._count(OUTPATIENT_VISITS * size * scheduled_factor)):
                self._outpatient_visit(
                    self.rng.choice(outpatient_units), self._time(self._monday(OFFICE_HOURS))
                )
        for _ in range(self._count(PRE_ADMISSIONS * size * scheduled_factor)):
            self._pre_admission(
                self.rng.choice(scheduled_units or house_units), self._time(OFFICE_HOURS)
            )

    def admit_incoming(self) -> None:
        """Patients sent by another establishment of the GHT arrive here."""
        self.incoming.sort(key=lambda item: (item.arrives_at, item.patient.ipp))
        for transfer in self.incoming:
            kinds = ("medicine", "icu", "surgery") if transfer.emergency else ("rehab", "long_term")
            units = self.profile.units_of(*kinds) or self.profile.units_of(*INPATIENT_KINDS)
            unit = self.rng.choice(units)
            patient = dataclasses.replace(transfer.patient, ipp=self._new_ipp())
            mode: AdmissionMode = "EMERGENCY" if transfer.emergency else "SCHEDULED"
            stay = self._open_stay(
                patient, unit, "I", "U" if transfer.emergency else "R", mode, transfer.arrives_at
            )
            if self._insert(stay, "A01", transfer.arrives_at):
                return_home = self._discharge_time(stay.now, self._length_of_stay(unit))
                self._inpatient_course(stay, return_home, may_leave_ght=False)

    def finish(self) -> tuple[AdtMessage, ...]:
        """The messages inside the window, in send order, with their message control ids."""
        ordered = sorted(self.drafts, key=lambda draft: (draft.message.sent_at, draft.order))
        kept = [
            draft.message
            for draft in ordered
            if self.window_start <= draft.message.sent_at < self.window_end
        ]
        # An update or cancel whose movement was sent before the window would refer to nothing.
        sent_movements: set[tuple[str, str]] = set()
        result: list[AdtMessage] = []
        for message in kept:
            if message.action == "INSERT":
                sent_movements.add((message.movement_id, message.trigger))
            elif (message.movement_id, message.original_trigger or "") not in sent_movements:
                continue
            control_id = f"{self.date:%Y%m%d}{self.tag}{len(result) + 1:06d}"
            result.append(dataclasses.replace(message, control_id=control_id))
        return tuple(result)

    def _emergency_visit(self, unit: Unit, arrives_at: dt.datetime) -> None:
        patient = self._new_patient(unit)
        stay = self._open_stay(patient, unit, "E", "U", "EMERGENCY", arrives_at)
        if not self._insert(stay, "A04", arrives_at):
            return
        leaves_at = stay.now + dt.timedelta(minutes=self.rng.uniform(90, 420))
        outcome = self.rng.random()
        wards = self.profile.units_of("medicine", "surgery", "icu")
        if outcome < 0.25 and wards:
            ward = self._weighted_unit(wards)
            self._move(stay, "A06", leaves_at, ward, patient_class="I")
            if not stay.closed:
                discharge_at = self._discharge_time(leaves_at, self._length_of_stay(ward))
                self._inpatient_course(stay, discharge_at)
        elif outcome < 0.29:
            self._discharge(stay, leaves_at, transfer=True)
        elif outcome < 0.293:
            self._discharge(stay, leaves_at, death=True)
        else:
            self._discharge(stay, leaves_at)

    def _scheduled_admission(self, unit: Unit, at: dt.datetime) -> None:
        patient = self._new_patient(unit)
        stay = self._open_stay(patient, unit, "I", "R", "SCHEDULED", at)
        team = stay.visit.care_team
        if self.rng.random() < 0.25:
            team += (CareTeamMember("RP", self._directory_practitioner()),)
        if self.rng.random() < 0.05:
            team += (CareTeamMember("RT", self._directory_practitioner()),)
        stay.change(care_team=team)
        if not self._insert(stay, "A01", at):
            return
        if unit.kind == "day_hospital":
            goes_home = max(at, self.midnight) + dt.timedelta(hours=self.rng.uniform(4, 8))
            if self.rng.random() < 0.12:
                # Seen and sent home from the day unit: the stay becomes an outpatient visit.
                self._move(stay, "A07", at + dt.timedelta(minutes=90), unit, patient_class="O")
            self._discharge(stay, goes_home)
            return
        discharge_at = self._discharge_time(at, self._length_of_stay(unit))
        self._inpatient_course(stay, discharge_at)

    def _direct_admission(self, unit: Unit, at: dt.datetime) -> None:
        patient = self._new_patient(unit)
        admission_type = "L" if unit.kind == "maternity" else "U"
        stay = self._open_stay(patient, unit, "I", admission_type, "EMERGENCY", at)
        if self._insert(stay, "A01", at):
            self._inpatient_course(stay, self._discharge_time(at, self._length_of_stay(unit)))

    def _outpatient_visit(self, unit: Unit, at: dt.datetime) -> None:
        patient = self._new_patient(unit)
        patient_class = "R" if unit.kind == "sessions" else "O"
        stay = self._open_stay(patient, unit, patient_class, "R", "SCHEDULED", at)
        if self._insert(stay, "A04", at):
            self._discharge(
                stay, at + dt.timedelta(minutes=self.rng.uniform(20, 100)), with_covid=False
            )

    def _pre_admission(self, unit: Unit, at: dt.datetime) -> None:
        patient = self._new_patient(unit)
        stay = self._open_stay(patient, unit, "I", "R", "SCHEDULED", None)
        stay.now = at
        expected = dt.datetime.combine(
            self.date + dt.timedelta(days=self.rng.randint(1, 21)),
            dt.time(self.rng.choice((7, 8, 9, 10, 14))),
            tzinfo=PARIS,
        )
        self._insert(stay, "A05", at, expected_admission_at=expected)

    def _stay_in_the_house(self, unit: Unit) -> None:
        low, high, mode = LENGTH_OF_STAY[unit.kind]
        length = max(1, round(self.rng.triangular(low, high, mode)))
        days_ago = self.rng.randint(1, length)
        admitted_at = self.midnight - dt.timedelta(days=days_ago, hours=-self.rng.uniform(7, 20))
        # May send nothing today (no movement before tomorrow): not where a canary goes.
        patient = self._new_patient(unit, may_be_canary=False)
        mode_: AdmissionMode = "SCHEDULED" if self.rng.random() < 0.5 else "EMERGENCY"
        stay = self._open_stay(
            patient, unit, "I", "R" if mode_ == "SCHEDULED" else "U", mode_, admitted_at
        )
        stay.now = self.midnight
        stay.last_sent = self.midnight
        discharge_at = self._discharge_time(admitted_at, length)
        self._inpatient_course(stay, discharge_at)

    def _inpatient_course(
        self, stay: _Stay, discharge_at: dt.datetime, *, may_leave_ght: bool = True
    ) -> None:
        """Transfers, leaves and doctor changes until the discharge (or the window's end)."""
        until = min(discharge_at, self.window_end)
        days = (until - stay.now).total_seconds() / 86400
        if days > 0:
            plans: list[tuple[dt.datetime, str]] = []
            chances = (
                ("transfer", TRANSFER_PER_DAY.get(stay.visit.unit.kind, 0.0)),
                ("doctor", DOCTOR_CHANGE_PER_DAY),
                ("leave", LEAVE_PER_DAY.get(stay.visit.unit.kind, 0.0)),
            )
            for kind, per_day in chances:
                if self.rng.random() < min(0.9, per_day * max(days, 0.3)):
                    plans.append((self._between(stay.now, until), kind))
            for at, kind in sorted(plans):
                if stay.closed or at <= stay.now:
                    continue
                if kind == "transfer":
                    self._transfer(stay, at)
                elif kind == "doctor":
                    self._doctor_change(stay, at)
                else:
                    self._leave(stay, at, discharge_at)
        if not stay.closed and discharge_at < self.window_end:
            transfer = may_leave_ght and self.rng.random() < 0.06
            self._discharge(
                stay, max(discharge_at, stay.now + dt.timedelta(minutes=10)), transfer=transfer
            )

    # -- movements --------------------------------------------------------------------------

    def _transfer(self, stay: _Stay, at: dt.datetime) -> None:
        kinds = TRANSFER_TARGETS.get(stay.visit.unit.kind, ("medicine",))
        choices = [unit for unit in self.profile.units_of(*kinds) if unit != stay.visit.unit]
        if choices:
            self._move(stay, "A02", at, self.rng.choice(choices))

    def _doctor_change(self, stay: _Stay, at: dt.datetime) -> None:
        unit = stay.visit.unit
        others = [doctor for doctor in self.doctors[unit.code] if doctor != stay.visit.attending]
        before = stay.change(attending=self.rng.choice(others))
        message = self._emit(stay, "A54", at)
        if self._maybe_cancel(stay, message):
            stay.visit = before
        else:
            self._maybe_correct(stay, message)

    def _leave(self, stay: _Stay, at: dt.datetime, discharge_at: dt.datetime) -> None:
        # Mostly an afternoon out, sometimes a night or a weekend at home.
        hours = self.rng.uniform(3, 9) if self.rng.random() < 0.7 else self.rng.uniform(20, 54)
        returns_at = at + dt.timedelta(hours=hours)
        if returns_at >= discharge_at - dt.timedelta(hours=1):
            return
        message = self._emit(stay, "A21", at)
        if self._maybe_cancel(stay, message):
            return
        self._maybe_correct(stay, message)
        message = self._emit(stay, "A22", max(returns_at, stay.now + dt.timedelta(minutes=30)))
        if self._maybe_cancel(stay, message):
            # The return was typed too early: the real one comes later.
            self._emit(stay, "A22", stay.now + dt.timedelta(hours=self.rng.uniform(1, 3)))
        else:
            self._maybe_correct(stay, message)

    def _move(
        self,
        stay: _Stay,
        trigger: str,
        at: dt.datetime,
        unit: Unit,
        *,
        patient_class: str | None = None,
    ) -> None:
        before = stay.change(
            unit=unit,
            bed=self._bed(unit),
            attending=self.rng.choice(self.doctors[unit.code]),
            patient_class=patient_class or stay.visit.patient_class,
        )
        message = self._emit(stay, trigger, at, prior_unit=before.unit)
        if self._maybe_cancel(stay, message):
            stay.visit = before
        else:
            self._maybe_correct(stay, message)

    def _discharge(
        self,
        stay: _Stay,
        at: dt.datetime,
        *,
        transfer: bool = False,
        death: bool = False,
        with_covid: bool = True,
    ) -> None:
        destination: str | None = None
        if transfer:
            destination = self._transfer_destination(emergency=stay.visit.patient_class == "E")
        disposition = "9" if death else "7" if destination else "8"
        covid = self._covid_status() if with_covid else None
        discharge = Discharge(disposition, destination, covid)
        message = self._emit(stay, "A03", at, discharge=discharge, discharged_at=at)
        if self._maybe_cancel(stay, message):
            # Recorded before the patient actually left: the real discharge comes later.
            later = stay.now + dt.timedelta(hours=self.rng.uniform(1, 4))
            self._emit(stay, "A03", later, discharge=discharge, discharged_at=later)
        else:
            self._maybe_correct(stay, message)
        stay.closed = True
        if destination:
            arrives_at = stay.now + dt.timedelta(minutes=self.rng.uniform(30, 120))
            self.transfers_out.append(
                _Transfer(stay.patient, destination, arrives_at, stay.visit.patient_class == "E")
            )

    def _insert(
        self,
        stay: _Stay,
        trigger: str,
        at: dt.datetime,
        *,
        expected_admission_at: dt.datetime | None = None,
    ) -> bool:
        """The stay's first movement; False when it is cancelled at once (the stay ends)."""
        message = self._emit(stay, trigger, at, expected_admission_at=expected_admission_at)
        if self._maybe_cancel(stay, message):
            stay.closed = True
            return False
        self._maybe_correct(stay, message)
        return True

    def _maybe_cancel(self, stay: _Stay, message: AdtMessage) -> bool:
        """Perhaps cancel the movement just sent, before anything else happens to the stay."""
        if self.rng.random() >= CANCEL_CHANCE.get(message.trigger, 0.0):
            return False
        at = stay.now + dt.timedelta(minutes=self.rng.uniform(3, 45))
        self._emit(
            stay,
            CANCEL_TRIGGER[message.trigger],
            message.occurred_at,
            action="CANCEL",
            movement_id=message.movement_id,
            original_trigger=message.trigger,
            sent_after=at,
            prior_unit=message.prior_unit,
            # The cancelled discharge's disposition is echoed; its Covid-19 result is not.
            discharge=(
                dataclasses.replace(message.discharge, covid_status=None)
                if message.discharge
                else None
            ),
            discharged_at=message.discharged_at,
            expected_admission_at=message.expected_admission_at,
        )
        return True

    def _maybe_correct(self, stay: _Stay, message: AdtMessage) -> None:
        """Perhaps correct (Z99) the movement just sent: its time was typed wrong."""
        if self.rng.random() >= CORRECTION_CHANCE:
            return
        corrected_at = message.occurred_at - dt.timedelta(minutes=self.rng.randint(5, 40))
        if message.trigger in ("A01", "A04"):
            stay.change(admitted_at=corrected_at)
        self._emit(
            stay,
            "Z99",
            corrected_at,
            action="UPDATE",
            movement_id=message.movement_id,
            original_trigger=message.trigger,
            sent_after=stay.now + dt.timedelta(minutes=self.rng.uniform(5, 90)),
            prior_unit=message.prior_unit,
            discharge=message.discharge,
            discharged_at=message.discharged_at,
            expected_admission_at=message.expected_admission_at,
        )

    def _emit(
        self,
        stay: _Stay,
        trigger: str,
        occurred_at: dt.datetime,
        *,
        action: Action = "INSERT",
        movement_id: str | None = None,
        original_trigger: str | None = None,
        sent_after: dt.datetime | None = None,
        prior_unit: Unit | None = None,
        discharge: Discharge | None = None,
        discharged_at: dt.datetime | None = None,
        expected_admission_at: dt.datetime | None = None,
    ) -> AdtMessage:
        if movement_id is None:
            self.movements += 1
            movement_id = f"{self.day_code}{self.tag}{self.movements:06d}"
        if action == "INSERT":
            stay.now = max(occurred_at, stay.now)
        # Engines send within seconds of the entry; a few entries are typed hours late.
        if action == "INSERT" and self.rng.random() < LATE_ENTRY_CHANCE:
            lag = dt.timedelta(minutes=self.rng.uniform(15, 120))
        else:
            lag = dt.timedelta(seconds=self.rng.uniform(2, 90))
        sent_at = max((sent_after or occurred_at) + lag, stay.last_sent + dt.timedelta(seconds=1))
        sent_at = sent_at.replace(microsecond=0)
        stay.last_sent = sent_at
        if action != "INSERT":
            # Nothing else happens to the stay before its cancel or correction is sent.
            stay.now = max(stay.now, sent_at)
        message = AdtMessage(
            establishment=self.code,
            control_id="",
            trigger=trigger,
            action=action,
            movement_id=movement_id,
            occurred_at=occurred_at.replace(microsecond=0),
            sent_at=sent_at,
            patient=stay.patient,
            visit=stay.visit,
            original_trigger=original_trigger,
            prior_unit=prior_unit,
            discharge=discharge,
            discharged_at=discharged_at.replace(microsecond=0) if discharged_at else None,
            expected_admission_at=expected_admission_at,
            ack_lost=self.rng.random() < self.config.ack_lost_share,
        )
        self.drafts.append(_Draft(message, len(self.drafts)))
        return message

    # -- people and stays -------------------------------------------------------------------

    def _open_stay(
        self,
        patient: Patient,
        unit: Unit,
        patient_class: str,
        admission_type: str,
        mode: AdmissionMode,
        admitted_at: dt.datetime | None,
    ) -> _Stay:
        self.visits += 1
        visit = f"{self.day_code}{self.tag}{self.visits:05d}"
        start = admitted_at or self.midnight
        care_team: tuple[CareTeamMember, ...] = ()
        if patient.gp is not None and self.rng.random() < 0.03:
            care_team = (CareTeamMember("SUBS", self._directory_practitioner()),)
        return _Stay(
            patient=patient,
            visit=Visit(
                visit_number=visit,
                billing_number=f"9{visit}",
                patient_class=patient_class,
                admission_type=admission_type,
                admission_mode=mode,
                unit=unit,
                bed=self._bed(unit),
                attending=self.rng.choice(self.doctors[unit.code]),
                admitted_at=admitted_at.replace(microsecond=0) if admitted_at else None,
                care_team=care_team,
            ),
            now=start,
            last_sent=start,
        )

    def _new_patient(self, unit: Unit, *, may_be_canary: bool = True) -> Patient:
        rng = self.rng
        age = self._age(unit)
        sex: str = "F" if unit.kind == "maternity" or rng.random() < 0.52 else "M"
        birth_date = self.date - dt.timedelta(days=round(age * 365.25) + rng.randint(0, 364))
        given = rng.choice(FEMALE_GIVEN_NAMES if sex == "F" else MALE_GIVEN_NAMES)
        family = rng.choice(FAMILY_NAMES)
        birth_name = None
        if sex == "F" and age > 24 and rng.random() < 0.4:
            birth_name, family = family, rng.choice(FAMILY_NAMES)
            if birth_name == family:
                birth_name = None
        reliability: IdentityReliability
        if rng.random() < self.profile.ins_qualified_share:
            reliability = "VALI"
        else:
            reliability = "PROV" if rng.random() < 0.6 else "VIDE"
        ins = self._ins(sex, birth_date) if reliability != "VIDE" else None
        town, postal_code = rng.choice(TOWNS)
        address = Address(f"{rng.randint(1, 140)} {rng.choice(STREETS)}", town, postal_code)
        ipp = self._new_ipp()  # drawn before the GP, as it always was: same seed, same day
        gp = self._gp(postal_code)
        canary = self.config.canary
        routable = gp is not None and gp.id in self.directory_ids
        if canary is not None and may_be_canary and routable and not self.canary_seen:
            self.canary_seen = True
            family, given, birth_date, birth_name = (
                canary.family_name,
                canary.given_name,
                canary.birth_date,
                None,
            )
            ins, reliability = canary.ins, "VALI"
        # Drawn from the IPP, not from the day's generator: the rest of the day stays as it was
        # for a seed; the canary is told of, so never withheld.
        is_canary = canary is not None and ins == canary.ins
        return Patient(
            ipp=ipp,
            family_name=family,
            given_name=given,
            birth_date=birth_date,
            sex=sex,  # type: ignore[arg-type]  # one of F or M, chosen above
            address=address,
            birth_name=birth_name,
            ins=ins,
            reliability=reliability,
            gp=gp,
            protected=not is_canary and self._share(ipp, "protected") < self.config.protected_share,
            opposed=not is_canary and self._share(ipp, "opposed") < self.config.opposed_share,
        )

    def _share(self, ipp: str, what: str) -> float:
        """A number in [0, 1) drawn from the patient's IPP, the seed and ``what``."""
        digest = hashlib.blake2b(f"{self.config.seed}:{self.code}:{ipp}:{what}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _gp(self, postal_code: str) -> Practitioner | None:
        draw = self.rng.random()
        if draw < self.config.gp_share and self.directory:
            nearby = self.gps_by_department.get(postal_code[:2])
            return self.rng.choice(nearby if nearby and self.rng.random() < 0.8 else self.directory)
        if draw < self.config.gp_share + self.config.unknown_gp_share or (
            draw < self.config.gp_share
        ):
            return self._unknown_practitioner()
        return None

    def _directory_practitioner(self) -> Practitioner:
        if self.directory:
            return self.rng.choice(self.directory)
        return self._unknown_practitioner()

    def _unknown_practitioner(self) -> Practitioner:
        """A practitioner with an RPPS number the directory does not know."""
        while True:
            # Real RPPS numbers start with 10 and the directory's sample with 1999: 1998 is
            # neither.
            rpps = f"1998{self.rng.randrange(10**7):07d}"
            if rpps not in self.directory_ids:
                break
        given = self.rng.choice(FEMALE_GIVEN_NAMES + MALE_GIVEN_NAMES)
        return Practitioner(rpps, self.rng.choice(FAMILY_NAMES), given)

    def _hospital_doctor(self, unit: Unit, index: int) -> Practitioner:
        given = self.rng.choice(FEMALE_GIVEN_NAMES + MALE_GIVEN_NAMES)
        return Practitioner(
            f"{unit.code}{index + 1:02d}", self.rng.choice(FAMILY_NAMES), given, "LOCAL"
        )

    def _new_ipp(self) -> str:
        while True:
            ipp = f"{self.rng.randrange(10**7, 10**8)}"
            if ipp not in self.ipps:
                self.ipps.add(ipp)
                return ipp

    def _ins(self, sex: str, birth_date: dt.date) -> str:
        """A synthetic NIR-shaped INS (15 characters with its control key)."""
        body = (
            f"{1 if sex == 'M' else 2}{birth_date:%y%m}{self.rng.choice(BIRTH_DEPARTMENTS)}"
            f"{self.rng.randint(1, 999):03d}{self.rng.randint(1, 999):03d}"
        )
        return f"{body}{97 - int(body) % 97:02d}"

    def _age(self, unit: Unit) -> float:
        name = unit.name.lower()
        if "pédiatr" in name or "pédopsy" in name:
            return self.rng.uniform(0, 16)
        if unit.kind == "maternity":
            return self.rng.uniform(18, 43)
        if unit.kind in ("long_term", "rehab") or "gériatr" in name:
            return self.rng.triangular(60, 102, 84)
        if unit.kind == "psychiatry":
            return self.rng.triangular(16, 80, 35)
        return self.rng.triangular(0, 100, 68)

    def _covid_status(self) -> str | None:
        draw = self.rng.random()
        prevalence = self.config.covid_prevalence
        if draw < prevalence:
            return "POSITIVE"
        if draw < prevalence * 1.5:
            return "SUSPECTED"
        if draw < prevalence * 1.5 + 0.15:
            return "NOT_TESTED"
        if draw < prevalence * 1.5 + 0.2:
            return None  # no OBX at all: some wards never record it
        return "NEGATIVE"

    def _transfer_destination(self, *, emergency: bool) -> str | None:
        others = [item for item in self.all_profiles if item is not self.profile]
        if not others:
            return None
        largest = max(self.all_profiles, key=lambda item: item.size)
        if emergency or self.profile is not largest:
            # Small hospitals send acute patients to the referral centre.
            target = largest if largest is not self.profile else self.rng.choice(others)
        else:
            rehab = [item for item in others if item.units_of("rehab", "long_term")]
            target = self.rng.choice(rehab or others)
        return target.establishment.sending_facility

    # -- time -------------------------------------------------------------------------------

    def _count(self, expected: float, *, minimum: int = 0) -> int:
        whole = int(expected)
        return max(minimum, whole + (1 if self.rng.random() < expected - whole else 0))

    def _monday(self, hours: Sequence[float]) -> tuple[float, ...]:
        if self.weekday != 0:
            return tuple(hours)
        return tuple(weight * factor for weight, factor in zip(hours, MONDAY_MORNING, strict=True))

    def _time(self, hours: Sequence[float]) -> dt.datetime:
        hour = self.rng.choices(range(24), weights=hours)[0]
        return self.midnight + dt.timedelta(hours=hour, seconds=self.rng.randrange(3600))

    def _between(self, start: dt.datetime, end: dt.datetime) -> dt.datetime:
        return start + (end - start) * self.rng.random()

    def _discharge_time(self, admitted_at: dt.datetime, days: int) -> dt.datetime:
        day = admitted_at.astimezone(PARIS).date() + dt.timedelta(days=days)
        at = dt.datetime.combine(day, dt.time(0), tzinfo=PARIS) + dt.timedelta(
            hours=self.rng.choices(range(24), weights=DISCHARGE_HOURS)[0],
            seconds=self.rng.randrange(3600),
        )
        return max(at, admitted_at + dt.timedelta(hours=3))

    def _length_of_stay(self, unit: Unit) -> int:
        low, high, mode = LENGTH_OF_STAY.get(unit.kind, (1, 10, 3))
        return round(self.rng.triangular(low, high, mode))

    def _weighted_unit(self, units: Sequence[Unit]) -> Unit:
        weights = {"day_hospital": 3.0, "surgery": 3.0, "medicine": 2.0, "maternity": 0.5}
        return self.rng.choices(units, weights=[weights.get(unit.kind, 1.0) for unit in units])[0]

    def _bed(self, unit: Unit) -> str:
        return f"{self.rng.randint(1, 40):02d}{self.rng.choice('AB')}"
