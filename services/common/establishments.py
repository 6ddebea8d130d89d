"""The establishments of the GHT, read from deploy/establishments.csv (data, not code)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from services.common.paths import ESTABLISHMENTS_CSV

_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,48}$")


@dataclass(frozen=True)
class Establishment:
    code: str
    """Short name used in topic names (``stays.raw.<code>``) and stay keys."""
    name: str
    finess: str
    sending_facility: str
    """The MSH-4 value its integration engine sends."""
    city: str = ""


def load_establishments(path: Path = ESTABLISHMENTS_CSV) -> list[Establishment]:
    """Every row of the file, checked: codes usable in topic names, no code or facility twice."""
    with open(path, encoding="utf-8", newline="") as source:
        rows = list(csv.DictReader(source))
    establishments: list[Establishment] = []
    for line, row in enumerate(rows, start=2):
        code = (row.get("code") or "").strip()
        facility = (row.get("sending_facility") or "").strip()
        if not _CODE.match(code):
            raise ValueError(
                f"{path}:{line}: code {code!r} must be lower-case letters, digits, - or _"
            )
        if not facility:
            raise ValueError(f"{path}:{line}: sending_facility is empty")
        establishments.append(
            Establishment(
                code=code,
                name=(row.get("name") or "").strip(),
                finess=(row.get("finess") or "").strip(),
                sending_facility=facility,
                city=(row.get("city") or "").strip(),
            )
        )
    for attribute in ("code", "sending_facility"):
        values = [getattr(item, attribute) for item in establishments]
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise ValueError(f"{path}: {attribute} repeated: {', '.join(repeated)}")
    return establishments


@cache
def establishments_by_facility() -> dict[str, Establishment]:
    """MSH-4 → establishment, for the gateway."""
    return {item.sending_facility: item for item in load_establishments()}
