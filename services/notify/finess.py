"""The public FINESS extract of establishments (``etalab_cs1100507_stock_*.csv``), as published.

The file, published on data.gouv.fr by the ministry of health, is ``;``-separated with no quoting,
in a Windows code page (Windows-1252) or UTF-8: a first line that describes the extract
(``finess;etalab;<version>;<date>``), then one section of ``structureet`` rows (one per
geographical establishment, ET) and one of ``geolocalisation`` rows. Lines carry no column names:
each field is known by its position in the published layout (``STRUCTUREET_FIELDS``).

Notify needs only the name of an establishment a patient is discharged to (PV1-37), by its FINESS
ET number; everything here is pure but ``load_finess_names``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.paths import DEPLOY_DIR

SAMPLE_EXTRACT = DEPLOY_DIR / "finess" / "etalab_cs1100507_stock_sample.csv"

# The fields of a ``structureet`` row after its section tag, in the published order.
STRUCTUREET_FIELDS: tuple[str, ...] = (
    "nofinesset",
    "nofinessej",
    "rs",
    "rslongue",
    "complrs",
    "compldistrib",
    "numvoie",
    "typvoie",
    "voie",
    "compvoie",
    "lieuditbp",
    "commune",
    "departement",
    "libdepartement",
    "ligneacheminement",
    "telephone",
    "telecopie",
    "categetab",
    "libcategetab",
    "categagretab",
    "libcategagretab",
    "siret",
    "codeape",
    "codemft",
    "libmft",
    "codesph",
    "libsph",
    "dateouv",
    "dateautor",
    "datemaj",
    "numuai",
)
_INDEX = {name: position + 1 for position, name in enumerate(STRUCTUREET_FIELDS)}
# Nine characters: the department (two digits, 2A or 2B for Corsica), then seven digits.
FINESS_NUMBER = re.compile(r"^(?:\d{2}|2[AB])\d{7}$")


@dataclass(frozen=True)
class FinessEstablishment:
    finess: str
    name: str
    """The long corporate name (``rslongue``), else the short one (``rs``), as published."""
    town: str
    """The postal line (``ligneacheminement``: postcode and town)."""

    @property
    def wording(self) -> str:
        return f"{self.name} ({self.town})" if self.town else self.name


def decode(raw: bytes) -> str:
    """UTF-8 when it is, else Windows-1252 as the extract was long published (a byte that code
    page leaves undefined becomes U+FFFD rather than refusing the whole file)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def read_structures(lines: Iterable[str]) -> dict[str, FinessEstablishment]:
    """FINESS ET number → establishment, from the lines of an extract.

    Lines of other sections and the first line are passed over; a ``structureet`` row too short
    for the name, or without a valid number, is left out rather than guessed at.
    """
    found: dict[str, FinessEstablishment] = {}
    for line in lines:
        fields = line.rstrip("\r\n").split(";")
        if fields[0] != "structureet" or len(fields) <= _INDEX["rslongue"]:
            continue
        number = fields[_INDEX["nofinesset"]].strip()
        name = fields[_INDEX["rslongue"]].strip() or fields[_INDEX["rs"]].strip()
        if not FINESS_NUMBER.match(number) or not name:
            continue
        where = _INDEX["ligneacheminement"]
        town = fields[where].strip() if len(fields) > where else ""
        found[number] = FinessEstablishment(number, name, town)
    return found


def load_finess_names(path: Path = SAMPLE_EXTRACT) -> Mapping[str, str]:
    """FINESS ET number → the words a notice shows for it, from an extract file."""
    text = decode(path.read_bytes())
    return {number: item.wording for number, item in read_structures(text.splitlines()).items()}
