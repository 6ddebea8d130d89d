"""A movement is its stay, its numbering authority and its id: reused numbers never collide."""

from __future__ import annotations

import dataclasses

from services.common.movements import movement_key
from services.common.records import EventKind, StayEvent
from tests.common.test_serde import stay_event


def _event(stay_key: str, movement_id: str, authority: str | None) -> StayEvent:
    value = stay_event("V0001")
    value["stay_key"] = stay_key
    value["movement"].update(movement_id=movement_id, authority=authority)
    return StayEvent.from_avro(value)


def test_two_stays_that_reuse_a_movement_number_are_two_movements() -> None:
    # The ANS examples number movements per stay: movement 312 in five stays.
    keys = {movement_key(_event(f"540000031:{visit}", "312", "000897406")) for visit in "ABCDE"}
    assert len(keys) == 5


def test_two_engines_of_one_establishment_numbering_alike_are_two_movements() -> None:
    emergency = movement_key(_event("540000031:V1", "7", "URG-SYS"))
    admissions = movement_key(_event("540000031:V1", "7", "GAM-SYS"))
    assert emergency != admissions


def test_the_same_movement_has_the_same_key_whoever_computes_it() -> None:
    first = _event("540000031:V1", "312", "000897406")
    again = dataclasses.replace(
        _event("540000031:V1", "312", "000897406"), kind=EventKind.DISCHARGE
    )
    assert movement_key(first) == movement_key(again)


def test_a_movement_without_authority_is_keyed_by_its_stay_and_id() -> None:
    assert movement_key(_event("540000031:V1", "312", None)) == "540000031:V1||312"


def test_no_value_can_forge_another_movements_key() -> None:
    # Separators inside values are escaped: a visit number holding the separator cannot make
    # one movement's parts read as another's.
    crafted = movement_key(_event("540000031:V1|A", "312", None))
    plain = movement_key(_event("540000031:V1", "312", "A"))
    assert crafted != plain
    assert movement_key(_event("S", "1%7C2", None)) != movement_key(_event("S", "1|2", None))


def test_the_key_reads_as_its_parts_escaped() -> None:
    # Keys are stored (the ledger, the case table): their form is fixed.
    assert movement_key(_event("chrunancy:V0001", "MVT1", "GAM|SYS")) == (
        "chrunancy:V0001|GAM%7CSYS|MVT1"
    )
