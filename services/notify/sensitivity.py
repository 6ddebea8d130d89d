"""The sensitivity policy (deploy/sensitivity.toml): what a notice may say of a stay, by
establishment and unit. Data, not code: the psychiatric centre's default is decided there."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.paths import DEPLOY_DIR
from services.notify.notices import Sensitivity

SENSITIVITY_TOML = DEPLOY_DIR / "sensitivity.toml"


@dataclass(frozen=True)
class SensitivityPolicy:
    default: Sensitivity = Sensitivity.NOTIFY
    establishments: Mapping[str, Sensitivity] = field(default_factory=dict)
    """Establishment code → its default."""
    units: Mapping[tuple[str, str], Sensitivity] = field(default_factory=dict)
    """(establishment code, unit code) → the unit's policy."""

    def of(self, establishment: str, unit: str | None) -> Sensitivity:
        """The policy of a movement in ``unit`` (its code, or None) of ``establishment``."""
        if unit is not None and (establishment, unit) in self.units:
            return self.units[(establishment, unit)]
        return self.establishments.get(establishment, self.default)


def read_policy(
    declaration: Mapping[str, Any], where: str = "sensitivity policy"
) -> SensitivityPolicy:
    """The policy from the parsed TOML; a value outside notify/minimal/suppress is refused, so
    that a typo never silently sends what was meant to be suppressed."""

    def value(raw: Any, at: str) -> Sensitivity:
        try:
            return Sensitivity(raw)
        except ValueError:
            choices = ", ".join(item.value for item in Sensitivity)
            raise ValueError(f"{where}: {at} is {raw!r}, not one of {choices}") from None

    establishments: dict[str, Sensitivity] = {}
    units: dict[tuple[str, str], Sensitivity] = {}
    for code, entry in declaration.get("establishments", {}).items():
        if "default" in entry:
            establishments[code] = value(entry["default"], f"establishments.{code}.default")
        for unit, raw in entry.get("units", {}).items():
            units[(code, unit)] = value(raw, f"establishments.{code}.units.{unit}")
    return SensitivityPolicy(
        default=value(declaration.get("default", Sensitivity.NOTIFY.value), "default"),
        establishments=establishments,
        units=units,
    )


def load_policy(path: Path = SENSITIVITY_TOML) -> SensitivityPolicy:
    with path.open("rb") as source:
        return read_policy(tomllib.load(source), str(path))
