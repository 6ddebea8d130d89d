"""Patient merges (A40) as the gateway publishes them on ``patients.merges``."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any


def survivor(ipp: str, **fields: Any) -> dict[str, Any]:
    """A surviving patient record, another person's identity than the builders' default."""
    return {
        "ipp": ipp,
        "ins": None,
        "family_name": "Durand",
        "given_name": "Marie",
        "birth_name": "Lefèvre",
        "birth_date": dt.date(1948, 7, 14),
        "sex": "F",
        "used_name": {"family_name": "Durand", "given_name": "Marie", "other_given_names": None},
        "legal_name": {"family_name": "Lefèvre", "given_name": "Marie", "other_given_names": None},
        **fields,
    }


def patient_merge(
    patient: Mapping[str, Any], merged_ipp: str, *, establishment: str = "chrunancy"
) -> dict[str, Any]:
    """``merged_ipp`` merged into ``patient`` at ``establishment`` (the gateway's mapping)."""
    control_id = f"MRG-{uuid.uuid4().hex[:10]}"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return {
        "event_id": f"{establishment}:{control_id}",
        "establishment": establishment,
        "trigger_event": "A40",
        "message_control_id": control_id,
        "sent_at": now,
        "received_at": now,
        "merged_at": now,
        "patient": dict(patient),
        "merged_ipp": merged_ipp,
        "merged_billing_number": None,
    }
