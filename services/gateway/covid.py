"""The Covid-19 status of a message, from its SARS-CoV-2 OBX, by a mapping kept as data.

No PAM field carries the status: establishments send it as an observation with a SARS-CoV-2 LOINC
code and a coded result. Which codes count and what each result means are in
deploy/covid_status_mapping.toml, a default table and one per establishment.
"""

from __future__ import annotations

import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.paths import DEPLOY_DIR

COVID_MAPPING_TOML = DEPLOY_DIR / "covid_status_mapping.toml"
STATUSES = frozenset({"POSITIVE", "NEGATIVE", "SUSPECTED", "NOT_TESTED", "UNKNOWN"})
UNKNOWN = "UNKNOWN"


def normalise(result: str) -> str:
    """Upper case, no accents, one space between words: "Non détecté" → "NON DETECTE"."""
    decomposed = unicodedata.normalize("NFKD", result)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.upper().replace("_", " ").split())


@dataclass(frozen=True)
class CovidTable:
    loinc: frozenset[str]
    results: Mapping[str, str]


@dataclass(frozen=True)
class CovidMapping:
    default: CovidTable
    by_establishment: Mapping[str, CovidTable] = field(default_factory=dict)

    def table(self, establishment: str) -> CovidTable:
        return self.by_establishment.get(establishment, self.default)

    def is_covid_test(self, establishment: str, loinc: str) -> bool:
        return loinc.strip() in self.table(establishment).loinc

    def status(self, establishment: str, result_code: str, result_text: str = "") -> str:
        """The status for an observation's result; its code is tried before its text."""
        results = self.table(establishment).results
        for candidate in (result_code, result_text):
            status = results.get(normalise(candidate)) if candidate else None
            if status:
                return status
        return UNKNOWN


def _table(entry: Mapping[str, Any], where: str, base: CovidTable | None) -> CovidTable:
    results = {normalise(key): str(value) for key, value in entry.get("results", {}).items()}
    wrong = sorted(value for value in results.values() if value not in STATUSES)
    if wrong:
        raise ValueError(f"{where}: unknown status {', '.join(wrong)}; use {sorted(STATUSES)}")
    codes = frozenset(str(code).strip() for code in entry.get("loinc", []))
    if base is None:
        return CovidTable(codes, results)
    return CovidTable(base.loinc | codes, {**base.results, **results})


def load_covid_mapping(path: Path = COVID_MAPPING_TOML) -> CovidMapping:
    with open(path, "rb") as source:
        declaration = tomllib.load(source)
    default = _table(declaration.get("default", {}), f"{path} [default]", None)
    by_establishment = {
        code: _table(entry, f"{path} [establishments.{code}]", default)
        for code, entry in declaration.get("establishments", {}).items()
    }
    return CovidMapping(default, by_establishment)
