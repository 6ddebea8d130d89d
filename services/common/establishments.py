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
    tls_client_cn: str = ""
    """The subject CN of its engine's MLLP client certificate, signed by the GHT's CA; the
    gateway takes messages from a connection for this establishment only. The CN, not a
    fingerprint: it stays the same when the certificate is renewed, so a renewal needs no change
    here, while the CA's signature is what makes it trustworthy. Empty: no MLLP access."""


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
                tls_client_cn=(row.get("tls_client_cn") or "").strip(),
            )
        )
    for attribute in ("code", "sending_facility", "tls_client_cn"):
        values = [getattr(item, attribute) for item in establishments if getattr(item, attribute)]
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise ValueError(f"{path}: {attribute} repeated: {', '.join(repeated)}")
    return establishments


@cache
def establishments_by_facility() -> dict[str, Establishment]:
    """MSH-4 → establishment, for the gateway."""
    return {item.sending_facility: item for item in load_establishments()}


def establishments_by_client_cn(
    establishments: list[Establishment] | None = None,
) -> dict[str, Establishment]:
    """Client certificate CN → establishment, for the gateway's TLS connections (exact match)."""
    items = load_establishments() if establishments is None else establishments
    return {item.tls_client_cn: item for item in items if item.tls_client_cn}
