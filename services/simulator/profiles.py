"""Each establishment's simulated engine and activity, from profiles.toml (data, not code).

The establishments themselves come from deploy/establishments.csv; a profile only adds what the
simulator needs (units, size, charset, identity and Covid-19 coding practices). An establishment
without a profile gets the defaults, so a twelfth establishment needs nothing here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from services.common.establishments import Establishment

PROFILES_TOML = Path(__file__).with_name("profiles.toml")

CHARSETS: dict[str, str] = {"8859/1": "iso-8859-1", "UNICODE UTF-8": "utf-8", "ASCII": "ascii"}
"""MSH-18 value → Python codec."""

UnitKind = Literal[
    "emergency",
    "medicine",
    "surgery",
    "icu",
    "maternity",
    "day_hospital",
    "outpatient",
    "sessions",
    "rehab",
    "psychiatry",
    "long_term",
]
UNIT_KINDS: frozenset[str] = frozenset(UnitKind.__args__)  # type: ignore[attr-defined]
INPATIENT_KINDS: frozenset[str] = frozenset(
    {"medicine", "surgery", "icu", "maternity", "rehab", "psychiatry", "long_term"}
)
COVID_STATUSES = ("POSITIVE", "NEGATIVE", "SUSPECTED", "NOT_TESTED")


@dataclass(frozen=True)
class Unit:
    code: str
    """The medical responsibility unit (UF), sent in ZBE-7 and PV1-3."""
    name: str
    kind: UnitKind


@dataclass(frozen=True)
class CodedValue:
    code: str
    label: str
    system: str


@dataclass(frozen=True)
class Profile:
    establishment: Establishment
    size: float
    charset: str
    """MSH-18 as sent."""
    ins_qualified_share: float
    ack_mode: Literal["original", "enhanced"]
    application: str
    """MSH-3, the sending application."""
    timestamps_with_offset: bool
    units: tuple[Unit, ...]
    covid_codes: dict[str, CodedValue]
    """Covid-19 status (POSITIVE, NEGATIVE, SUSPECTED, NOT_TESTED) → OBX-5 as the engine codes
    it."""

    @property
    def codec(self) -> str:
        return CHARSETS[self.charset]

    def units_of(self, *kinds: str) -> tuple[Unit, ...]:
        return tuple(unit for unit in self.units if unit.kind in kinds)


def load_profiles(establishments: list[Establishment], path: Path = PROFILES_TOML) -> list[Profile]:
    """One profile per establishment, in the order of deploy/establishments.csv."""
    with open(path, "rb") as source:
        document = tomllib.load(source)
    defaults: dict[str, Any] = document["defaults"]
    codings: dict[str, dict[str, list[str]]] = document["covid_coding"]
    specific: dict[str, dict[str, Any]] = document.get("establishment", {})
    unknown = sorted(set(specific) - {item.code for item in establishments})
    if unknown:
        raise ValueError(f"{path}: profiles for unknown establishments: {', '.join(unknown)}")
    return [
        _profile(establishment, {**defaults, **specific.get(establishment.code, {})}, codings, path)
        for establishment in establishments
    ]


def _profile(
    establishment: Establishment,
    entry: dict[str, Any],
    codings: dict[str, dict[str, list[str]]],
    path: Path,
) -> Profile:
    where = f"{path}: {establishment.code}"
    if entry["charset"] not in CHARSETS:
        raise ValueError(f"{where}: charset {entry['charset']!r} is not one of {list(CHARSETS)}")
    if entry["ack_mode"] not in ("original", "enhanced"):
        raise ValueError(f"{where}: ack_mode must be original or enhanced")
    units = tuple(Unit(item["code"], item["name"], item["kind"]) for item in entry["units"])
    for unit in units:
        if unit.kind not in UNIT_KINDS:
            raise ValueError(f"{where}: unit {unit.code} has unknown kind {unit.kind!r}")
    if not any(unit.kind in INPATIENT_KINDS for unit in units):
        raise ValueError(f"{where}: needs at least one inpatient unit")
    coding = codings.get(entry["covid_coding"])
    if coding is None or set(coding) != set(COVID_STATUSES):
        raise ValueError(f"{where}: covid_coding {entry['covid_coding']!r} is not complete")
    return Profile(
        establishment=establishment,
        size=float(entry["size"]),
        charset=entry["charset"],
        ins_qualified_share=float(entry["ins_qualified_share"]),
        ack_mode=entry["ack_mode"],
        application=entry["application"],
        timestamps_with_offset=bool(entry["timestamps_with_offset"]),
        units=units,
        covid_codes={status: CodedValue(*values) for status, values in coding.items()},
    )
