"""Codes become words, or are left out: never shown bare to a GP."""

from __future__ import annotations

import pytest

from services.common.establishments import Establishment, load_establishments
from services.common.paths import ESTABLISHMENTS_CSV
from services.notify.finess import load_finess_names
from services.notify.wording import (
    Vocabulary,
    discharge_disposition_words,
    fields_without_words,
    is_bare_code,
    load_units,
    places,
)
from services.simulator.profiles import load_profiles


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("3", "sur décision médicale"),  # PAM FR circumstances of discharge
        ("4", "contre avis médical"),
        ("PSA", "parti(e) sans attendre les soins"),
        ("reo", "réorientation"),
        ("8", "retour à domicile"),  # PMSI exit modes PAM FR does not define
        ("7", "transfert vers un autre établissement"),
        ("9", "décès"),
        ("6", "convenance personnelle"),  # in both tables: the field is PAM FR's
    ],
)
def test_a_discharge_disposition_is_told_in_words(code: str, words: str) -> None:
    assert discharge_disposition_words(code) == words


@pytest.mark.parametrize("code", [None, "", '""', "1", "X", "42"])
def test_a_disposition_without_words_is_left_out(code: str | None) -> None:
    assert discharge_disposition_words(code) is None


UNITS = {"chrunancy": {"URGA": "Urgences adultes Central"}, "*": {"URG": "Urgences"}}


def test_the_unit_name_from_the_message_wins() -> None:
    vocabulary = Vocabulary(units=UNITS)
    assert vocabulary.unit("chrunancy", "URGA", "Urgences adultes (Central)") == (
        "Urgences adultes (Central)"
    )


def test_a_unit_sent_by_code_only_is_named_from_the_units_file() -> None:
    vocabulary = Vocabulary(units=UNITS)
    assert vocabulary.unit("chrunancy", "URGA", None) == "Urgences adultes Central"
    # An engine that puts the code in XON-1 too, or sends the HL7 null as the name.
    assert vocabulary.unit("chrunancy", "URGA", "URGA") == "Urgences adultes Central"
    assert vocabulary.unit("chrunancy", "URGA", '""') == "Urgences adultes Central"


def test_the_default_units_serve_only_establishments_without_their_own() -> None:
    vocabulary = Vocabulary(units=UNITS)
    assert vocabulary.unit("toul", "URG", None) == "Urgences"
    assert vocabulary.unit("chrunancy", "URG", None) is None


def test_a_unit_code_without_words_is_left_out() -> None:
    assert Vocabulary(units=UNITS).unit("chrunancy", "4011", None) is None
    assert Vocabulary().unit("chrunancy", "4011", "4011") is None
    assert Vocabulary().unit("chrunancy", None, None) is None


def test_a_destination_is_named_from_the_ght_then_the_finess_extract() -> None:
    toul = Establishment("toul", "Centre hospitalier de Toul", "990000021", "CH_TOUL")
    known = places([toul], load_finess_names())
    vocabulary = Vocabulary(places=known)
    assert vocabulary.destination("CH_TOUL") == "Centre hospitalier de Toul"
    assert vocabulary.destination("990000021") == "Centre hospitalier de Toul"
    assert vocabulary.destination("990000088") == (
        "CENTRE HOSPITALIER DE VERDUN SAINT-MIHIEL (55100 VERDUN)"
    )
    assert vocabulary.destination("123456789") is None
    assert vocabulary.destination('""') is None


def test_every_unit_the_simulator_sends_has_its_name_in_the_units_file() -> None:
    units = load_units()
    for profile in load_profiles(load_establishments(ESTABLISHMENTS_CSV)):
        vocabulary = Vocabulary(units=units)
        for unit in profile.units:
            assert vocabulary.unit(profile.establishment.code, unit.code, None) == unit.name


def test_every_destination_the_simulator_sends_has_words() -> None:
    establishments = load_establishments(ESTABLISHMENTS_CSV)
    vocabulary = Vocabulary(places=places(establishments, load_finess_names()))
    for item in establishments:
        assert vocabulary.destination(item.sending_facility) == item.name


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("4011", True),
        ("CH_TOUL", True),
        ("URG", True),
        ("PSY1", True),
        ("990000047", True),
        ("Cardiologie", False),
        ("CARDIOLOGIE", False),
        ("Psychiatrie adulte secteur G01", False),
        ("retour à domicile", False),
        ("CENTRE HOSPITALIER DE TOUL (54200 TOUL)", False),
    ],
)
def test_a_bare_code_is_told_from_words(value: str, code: bool) -> None:
    assert is_bare_code(value) is code


def test_the_fields_of_a_notice_that_show_a_code_are_found() -> None:
    text = (
        "Établissement : CHRU de Nancy\n"
        "Service : 4011\n"
        "Mode de sortie : 3\n"
        "Destination : Centre hospitalier de Toul\n"
        "Statut Covid-19 à la sortie : positif\n"
    )
    assert fields_without_words(text) == ["Service", "Mode de sortie"]
    assert fields_without_words(text.replace("4011", "Cardiologie").replace(": 3", ": fugue")) == []
