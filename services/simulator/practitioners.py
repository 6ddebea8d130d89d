"""The GPs patients declare: the directory's shipped sample (deploy/directory), read with the
directory service's own reader so both sides agree on who is in it."""

from __future__ import annotations

from pathlib import Path

from services.directory.sample import (
    SAMPLE_MSSANTE,
    SAMPLE_PERSONNES,
    sample_general_practitioners,
)
from services.simulator.model import Practitioner


def directory_gps(
    personnes: Path = SAMPLE_PERSONNES, mssante: Path = SAMPLE_MSSANTE
) -> list[Practitioner]:
    return [
        Practitioner(item.rpps, item.family_name, item.given_name, postcode=item.postcode)
        for item in sample_general_practitioners(personnes, mssante)
    ]
