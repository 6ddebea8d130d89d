"""The simulated day looks like a day of the GHT: every kind of movement, cancellations that
cancel something sent before, GPs from the directory, the Covid-19 prevalence asked for, a busier
Monday morning; and the same seed gives the same day."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from services.simulator.hl7 import message_bytes
from services.simulator.model import CANCEL_TRIGGER, MOVEMENT_TRIGGERS, AdtMessage, Practitioner
from services.simulator.profiles import Profile
from services.simulator.scenario import PARIS, Canary, Day, DayConfig, build_day
from tests.simulator.conftest import MONDAY


def rendered(day: Day, profiles: list[Profile]) -> list[bytes]:
    by_code = {profile.establishment.code: profile for profile in profiles}
    return [message_bytes(item, by_code[item.establishment]) for item in day.all_messages()]


def patients(day: Day) -> dict[tuple[str, str], AdtMessage]:
    """One message per patient (establishment and IPP)."""
    return {(item.establishment, item.patient.ipp): item for item in day.all_messages()}


def test_same_seed_same_messages_and_another_seed_another_day(
    profiles: list[Profile], gps: list[Practitioner], monday: Day
) -> None:
    again = build_day(DayConfig(MONDAY, seed=1), profiles, gps)
    other = build_day(DayConfig(MONDAY, seed=2), profiles, gps)

    assert rendered(again, profiles) == rendered(monday, profiles)
    assert rendered(other, profiles) != rendered(monday, profiles)
    # Message ids of two seeds of one date do not collide, so a second run is not taken for
    # a replay of the first.
    first_ids = {item.control_id for item in monday.all_messages()}
    assert not first_ids & {item.control_id for item in other.all_messages()}


def test_every_establishment_sends_every_kind_of_day(monday: Day, profiles: list[Profile]) -> None:
    assert set(monday.messages) == {profile.establishment.code for profile in profiles}
    assert all(monday.messages.values())
    triggers = Counter(item.trigger for item in monday.all_messages())
    assert set(triggers) == set(MOVEMENT_TRIGGERS)
    assert 1500 < sum(triggers.values()) < 5000


def test_each_engine_sends_in_time_order_with_unique_message_ids(monday: Day) -> None:
    for messages in monday.messages.values():
        times = [item.sent_at for item in messages]
        assert times == sorted(times)
        assert len({item.control_id for item in messages}) == len(messages)
    for item in monday.all_messages():
        assert item.sent_at.astimezone(PARIS).date() == MONDAY


def test_cancellations_and_corrections_refer_to_a_movement_sent_earlier(monday: Day) -> None:
    acted_upon = 0
    for messages in monday.messages.values():
        inserted: dict[str, AdtMessage] = {}
        for item in messages:
            if item.action == "INSERT":
                inserted[item.movement_id] = item
                continue
            original = inserted[item.movement_id]
            acted_upon += 1
            assert item.original_trigger == original.trigger
            assert item.visit.visit_number == original.visit.visit_number
            assert original.sent_at < item.sent_at
            if item.action == "CANCEL":
                assert item.trigger == CANCEL_TRIGGER[original.trigger]
            else:
                assert item.trigger == "Z99"
    assert acted_upon > 50


def test_a_cancelled_discharge_is_followed_by_the_real_one(monday: Day) -> None:
    stays: dict[str, list[AdtMessage]] = {}
    for item in monday.all_messages():
        stays.setdefault(item.stay_key, []).append(item)
    cancelled = [
        messages for messages in stays.values() if any(m.trigger == "A13" for m in messages)
    ]
    assert cancelled
    for messages in cancelled:
        after = messages[[m.trigger for m in messages].index("A13") + 1 :]
        # The real discharge comes later, unless the day ends first.
        assert [m.trigger for m in after if m.action == "INSERT"] in (["A03"], [])


def test_covid_status_on_discharge_follows_the_prevalence_asked_for(
    profiles: list[Profile], gps: list[Practitioner]
) -> None:
    for prevalence in (0.0, 0.2):
        day = build_day(DayConfig(MONDAY, covid_prevalence=prevalence), profiles, gps)
        statuses = Counter(
            item.discharge.covid_status
            for item in day.all_messages()
            if item.trigger == "A03" and item.discharge and item.discharge.covid_status
        )
        share = statuses["POSITIVE"] / sum(statuses.values())
        assert share == pytest.approx(prevalence, abs=0.04)
        assert statuses["NEGATIVE"] > statuses["NOT_TESTED"] > 0


def test_most_patients_have_a_gp_from_the_directory_some_none_a_few_unknown(
    monday: Day, gps: list[Practitioner]
) -> None:
    directory = {gp.id for gp in gps}
    everyone = patients(monday).values()
    kinds = Counter(
        "none"
        if item.patient.gp is None
        else "directory"
        if item.patient.gp.id in directory
        else "unknown"
        for item in everyone
    )
    total = sum(kinds.values())
    assert 0.78 < kinds["directory"] / total < 0.92
    assert 0.05 < kinds["none"] / total < 0.18
    assert 0.01 < kinds["unknown"] / total < 0.08
    roles = Counter(member.role for item in everyone for member in item.visit.care_team)
    assert roles["RP"] > 0 and roles["RT"] > 0 and roles["SUBS"] > 0


def test_identities_qualified_for_some_patients_only(monday: Day) -> None:
    reliability = Counter(item.patient.reliability for item in patients(monday).values())
    assert reliability["VALI"] > reliability["PROV"] > 0 and reliability["VIDE"] > 0
    for item in patients(monday).values():
        assert (item.patient.ins is None) == (item.patient.reliability == "VIDE")


def test_monday_is_busier_than_tuesday_and_bursts_in_the_morning(
    profiles: list[Profile], gps: list[Practitioner], monday: Day
) -> None:
    tuesday = build_day(DayConfig(MONDAY + dt.timedelta(days=1)), profiles, gps)
    sunday = build_day(DayConfig(MONDAY - dt.timedelta(days=1)), profiles, gps)

    def morning(day: Day) -> int:
        return sum(1 for item in day.all_messages() if 7 <= item.sent_at.hour < 11)

    def scheduled_admissions(day: Day) -> int:
        return sum(
            1
            for item in day.all_messages()
            if item.trigger == "A01" and item.visit.admission_mode == "SCHEDULED"
        )

    assert len(monday.all_messages()) > 1.1 * len(tuesday.all_messages())
    assert morning(monday) > 1.25 * morning(tuesday)
    assert scheduled_admissions(sunday) < 0.3 * scheduled_admissions(monday)


def test_admissions_scheduled_in_the_morning_emergencies_all_day(monday: Day) -> None:
    def hours(mode: str) -> Counter[int]:
        return Counter(
            item.occurred_at.hour
            for item in monday.all_messages()
            if item.trigger in ("A01", "A04")
            and item.action == "INSERT"
            and item.visit.admission_mode == mode
            and item.visit.patient_class != "O"
        )

    scheduled, emergency = hours("SCHEDULED"), hours("EMERGENCY")
    assert sum(scheduled[hour] for hour in range(7, 12)) > 0.6 * sum(scheduled.values())
    evening = sum(emergency[hour] for hour in range(17, 22))
    night = sum(emergency[hour] for hour in range(1, 6))
    assert evening > 3 * night > 0


def test_a_window_of_the_day_holds_only_its_messages_and_no_orphan_cancellation(
    profiles: list[Profile], gps: list[Practitioner]
) -> None:
    config = DayConfig(MONDAY, start=dt.time(8), duration=dt.timedelta(hours=2))
    day = build_day(config, profiles, gps)
    assert day.all_messages()
    for messages in day.messages.values():
        movements = set()
        for item in messages:
            assert config.window_start <= item.sent_at < config.window_end
            if item.action == "INSERT":
                movements.add(item.movement_id)
            else:
                assert item.movement_id in movements


def test_a_window_past_midnight_holds_the_next_days_activity_too(
    profiles: list[Profile], gps: list[Practitioner]
) -> None:
    config = DayConfig(MONDAY, start=dt.time(20), duration=dt.timedelta(hours=14))
    day = build_day(config, profiles, gps)
    tuesday_morning = [
        item
        for item in day.all_messages()
        if item.sent_at.date() > MONDAY and 7 <= item.sent_at.hour < 10 and item.trigger == "A01"
    ]
    assert len(tuesday_morning) > 20
    for messages in day.messages.values():
        assert [item.sent_at for item in messages] == sorted(item.sent_at for item in messages)
        assert len({item.control_id for item in messages}) == len(messages)
        assert all(config.window_start <= item.sent_at < config.window_end for item in messages)


def test_a_small_rate_still_gives_every_establishment_something_to_send(
    profiles: list[Profile], gps: list[Practitioner], monday: Day
) -> None:
    small = build_day(DayConfig(MONDAY, rate=0.05), profiles, gps)
    assert all(small.messages.values())
    assert len(small.all_messages()) < 0.15 * len(monday.all_messages())


def test_patients_sent_to_another_establishment_are_admitted_there(
    monday: Day, profiles: list[Profile]
) -> None:
    code_of = {item.establishment.sending_facility: item.establishment.code for item in profiles}
    admissions = {
        (item.establishment, item.patient.family_name, item.patient.birth_date)
        for item in monday.all_messages()
        if item.trigger == "A01" and item.action == "INSERT"
    }
    transfers = [
        item
        for item in monday.all_messages()
        if item.trigger == "A03" and item.discharge and item.discharge.destination
    ]
    assert transfers
    assert all(item.discharge and item.discharge.disposition == "7" for item in transfers)
    arrived = [
        item
        for item in transfers
        if item.discharge
        and item.discharge.destination
        and (
            code_of[item.discharge.destination],
            item.patient.family_name,
            item.patient.birth_date,
        )
        in admissions
    ]
    # Those sent late in the evening arrive after midnight, outside the day.
    assert len(arrived) > 0.7 * len(transfers)


@pytest.mark.parametrize(
    "field, value",
    [("rate", 0.0), ("covid_prevalence", 1.5), ("gp_share", -0.1)],
)
def test_nonsense_settings_are_refused(field: str, value: float) -> None:
    overrides: dict[str, Any] = {field: value}
    with pytest.raises(ValueError, match=field):
        DayConfig(MONDAY, **overrides)


def test_a_canary_identity_replaces_one_patient_per_establishment_and_nothing_else(
    profiles: list[Profile], gps: list[Practitioner], monday: Day
) -> None:
    canary = Canary.parse("CANARIQXZ,Ondinewkp,1913-07-29,213075499977738")
    day = build_day(DayConfig(MONDAY, seed=1, canary=canary), profiles, gps)

    assert [m.control_id for m in day.all_messages()] == [
        m.control_id for m in monday.all_messages()
    ]
    carriers = {(m.establishment, m.patient.ipp) for m in day.all_messages()}
    carriers = {key for key in carriers if patients(day)[key].patient.ins == canary.ins}
    assert {establishment for establishment, _ipp in carriers} == set(monday.messages)
    for key in carriers:
        patient = patients(day)[key].patient
        assert (patient.family_name, patient.given_name, patient.birth_date) == (
            "CANARIQXZ",
            "Ondinewkp",
            dt.date(1913, 7, 29),
        )
        assert patient.reliability == "VALI" and patient.gp in gps
    others = [m for m in day.all_messages() if m.patient.ins != canary.ins]
    assert len(others) < len(monday.all_messages())
    assert all(b"CANARIQXZ" not in message_bytes(m, _profile(profiles, m)) for m in others)


def _profile(profiles: list[Profile], message: AdtMessage) -> Profile:
    return next(p for p in profiles if p.establishment.code == message.establishment)
