"""Words for the codes a stay event carries: a notice shows words, or leaves the field out.

- Discharge disposition (PV1-36): the IHE PAM France table of discharge circumstances; the PMSI
  exit modes that table does not define (0, 7, 8, 9) are read as such, because engines put the
  PMSI mode in PV1-36 (ours do). Code 6 is in both (PAM FR "convenance personnelle", PMSI
  "mutation", a move within the same establishment that is no discharge): PAM FR wins, as the
  field is PAM FR's.
- Destination (PV1-37, DLD-1): a GHT establishment (by MSH-4 sending facility or FINESS), else
  the public FINESS extract.
- Unit: its name from the message (ZBE-7 XON-1), else ``deploy/units.csv``.

Pure but the two ``load_*`` functions.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.common.establishments import Establishment
from services.common.paths import DEPLOY_DIR

UNITS_CSV = DEPLOY_DIR / "units.csv"
ANY_ESTABLISHMENT = "*"
"""In units.csv: the units of every establishment that has no rows of its own (the simulator's
default units)."""

# IHE PAM France, PV1-36 "discharge disposition" (circonstances de sortie), as the national
# extension defines it and Interop'Santé publishes it (FR Core CodeSystem
# fr-core-cs-circonstances-sortie), in the words of a notice.
PAM_FR_DISCHARGE_CIRCUMSTANCES: Mapping[str, str] = {
    "2": "mesure disciplinaire",
    "3": "sur décision médicale",
    "4": "contre avis médical",
    "5": "en attente d'examen",
    "6": "convenance personnelle",
    "R": "sortie à l'essai (psychiatrie)",
    "E": "évasion",
    "F": "fugue",
    "A": "absence de moins de 12 heures",
    "P": "permission de moins de 72 heures",
    "S": "sortie avec programme de soins",
    "B": "départ vers un service de médecine, chirurgie ou obstétrique",
    "REO": "réorientation",
    "PSA": "parti(e) sans attendre les soins",
}

# PMSI MCO "mode de sortie" (RSS), those codes the PAM FR table above does not define.
PMSI_EXIT_MODES: Mapping[str, str] = {
    "0": "transfert provisoire vers un autre établissement",
    "7": "transfert vers un autre établissement",
    "8": "retour à domicile",
    "9": "décès",
}

HL7_NULL = '""'
"""HL7's "delete this value": never words."""

# No space, and a digit or underscore in it, or four capitals or fewer: a code, not words
# ("4011", "CH_TOUL", "URG", "PSY1"; not "Cardiologie", "CARDIOLOGIE", "Urgences adultes").
_CODE = re.compile(r"^(?=\S*[0-9_])\S+$|^[A-Z0-9.\-]{1,4}$")


def is_bare_code(value: str) -> bool:
    return bool(_CODE.match(value.strip()))


def _present(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value if value and value != HL7_NULL else None


def discharge_disposition_words(code: str | None) -> str | None:
    code = _present(code)
    if code is None:
        return None
    key = code.upper()
    return PAM_FR_DISCHARGE_CIRCUMSTANCES.get(key) or PMSI_EXIT_MODES.get(key)


@dataclass(frozen=True)
class Vocabulary:
    """What notify knows to put words on the codes of an event."""

    units: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Establishment code (or ``*``) → unit code → name."""
    places: Mapping[str, str] = field(default_factory=dict)
    """A destination as PV1-37 sends it (sending facility, FINESS) → the establishment's words."""

    def unit(self, establishment: str, code: str | None, name: str | None) -> str | None:
        """The unit's name from the message when it is words, else from the units file."""
        name = _present(name)
        if name is not None and not is_bare_code(name):
            return name
        code = _present(code) or name
        if code is None:
            return None
        units = self.units.get(establishment)
        if units is None:
            units = self.units.get(ANY_ESTABLISHMENT, {})
        return units.get(code)

    def destination(self, code: str | None) -> str | None:
        code = _present(code)
        return None if code is None else self.places.get(code)


def read_units(rows: Iterable[Mapping[str, str]]) -> dict[str, dict[str, str]]:
    units: dict[str, dict[str, str]] = {}
    for row in rows:
        establishment = (row.get("establishment") or "").strip()
        code, name = (row.get("code") or "").strip(), (row.get("name") or "").strip()
        if establishment and code and name:
            units.setdefault(establishment, {})[code] = name
    return units


def load_units(path: Path = UNITS_CSV) -> dict[str, dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as source:
        return read_units(csv.DictReader(source))


def places(establishments: Iterable[Establishment], finess: Mapping[str, str]) -> dict[str, str]:
    """Every way PV1-37 names a destination → its words: the GHT's own names win over the
    extract's, being the ones its GPs know."""
    known = dict(finess)
    for item in establishments:
        known[item.sending_facility] = item.name
        if item.finess:
            known[item.finess] = item.name
    return known


# The notice fields whose value must be words, as the plain-text notice labels them.
WORDED_FIELDS = ("Établissement", "Service", "Mode de sortie", "Destination")
_FIELD_LINE = re.compile(rf"^({'|'.join(WORDED_FIELDS)}) : (.*)$", re.MULTILINE)


def fields_without_words(text: str) -> list[str]:
    """The labels of the fields of a plain-text notice that show a bare code."""
    return [label for label, value in _FIELD_LINE.findall(text) if is_bare_code(value)]
