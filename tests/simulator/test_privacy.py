"""A simulated day exercises confidentiality: some patients ask for it (PD1-12 Y, left out of
their transfers so that notify must remember it), some objected to being notified, and the
psychiatric establishments' stays meet the sensitivity policy."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from services.common.establishments import establishments_by_facility
from services.gateway.covid import load_covid_mapping
from services.gateway.hl7 import parse
from services.gateway.pam import stay_event
from services.notify.notices import Sensitivity
from services.notify.sensitivity import load_policy
from services.simulator.app import day_oppositions
from services.simulator.hl7 import message_bytes
from services.simulator.profiles import Profile
from services.simulator.scenario import Day

PARIS = ZoneInfo("Europe/Paris")
RECEIVED_AT = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)


def test_a_day_has_protected_patients_whose_transfers_do_not_say_it(
    monday: Day, profiles: list[Profile]
) -> None:
    by_code = {item.establishment.code: item for item in profiles}
    facilities = establishments_by_facility()
    covid = load_covid_mapping()
    said: dict[str, set[bool | None]] = {}
    for message in monday.all_messages():
        if not message.patient.protected or message.action != "INSERT":
            continue
        profile = by_code[message.establishment]
        raw = message_bytes(message, profile)
        establishment = facilities[profile.establishment.sending_facility]
        event = stay_event(parse(raw), establishment, RECEIVED_AT, covid, PARIS).value
        said.setdefault(message.trigger, set()).add(event.patient_protected)
    assert said, "no protected patient in a whole Monday"
    assert said.pop("A02", {None}) == {None}  # inherited from the stay's earlier messages
    assert all(values == {True} for values in said.values())
    protected = {m.stay_key for m in monday.all_messages() if m.patient.protected}
    stays = {m.stay_key for m in monday.all_messages()}
    assert 0.005 < len(protected) / len(stays) < 0.05


def test_a_day_has_opposed_patients_keyed_as_the_register_wants(monday: Day) -> None:
    oppositions = day_oppositions(monday)
    assert oppositions
    for establishment, ins, ipp in oppositions:
        assert establishment in monday.messages
        assert (ins is None) != (ipp is None)
    qualified = {
        (m.establishment, m.patient.ins)
        for m in monday.all_messages()
        if m.patient.opposed and m.patient.reliability == "VALI"
    }
    assert {(place, ins) for place, ins, _ in oppositions if ins} == qualified


def test_a_day_has_stays_the_sensitivity_policy_withholds_or_shortens(monday: Day) -> None:
    policy = load_policy()
    seen = {
        policy.of(message.establishment, message.visit.unit.code)
        for message in monday.all_messages()
    }
    assert {Sensitivity.SUPPRESS, Sensitivity.MINIMAL, Sensitivity.NOTIFY} <= seen
