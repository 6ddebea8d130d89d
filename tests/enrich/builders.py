"""Practitioner records as the directory publishes them, for enrich's tests."""

from __future__ import annotations

import datetime as dt
from typing import Any


def practitioner(
    rpps: str,
    *mailboxes: tuple[str, str],
    opted_out: bool = False,
    preferred: str | None = None,
    family_name: str = "Martin",
    given_name: str = "Jeanne",
) -> dict[str, Any]:
    return {
        "rpps": rpps,
        "civility": "DR",
        "family_name": family_name,
        "given_name": given_name,
        "profession_code": "10",
        "profession": "Médecin",
        "specialty_code": "SM54",
        "specialty": "Médecine Générale",
        "structure_name": None,
        "city": "Nancy",
        "postcode": "54000",
        "mailboxes": [
            {"address": address, "mailbox_type": kind, "domain": address.rpartition("@")[2]}
            for kind, address in mailboxes
        ],
        "preferences": {"opted_out": opted_out, "preferred_address": preferred},
        "updated_at": dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
    }
