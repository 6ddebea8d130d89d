"""The Practitioner record built from the directory's stored state."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.directory.records import practitioner_record


def state(**changes: Any) -> dict[str, Any]:
    return {
        "rpps": "19990000001",
        "civility": "DR",
        "family_name": "THIÉBAUT",
        "given_name": "Anaïs",
        "profession_code": "10",
        "profession": "Médecin",
        "specialty_code": "SM54",
        "specialty": "Médecine Générale",
        "structure_name": None,
        "city": "Lunéville",
        "postcode": "54300",
        "mailboxes": [
            {
                "address": "cabinet@medecin.mssante.fr",
                "mailbox_type": "CAB",
                "domain": "medecin.mssante.fr",
            },
            {
                "address": "anais@medecin.mssante.fr",
                "mailbox_type": "PER",
                "domain": "medecin.mssante.fr",
            },
        ],
        "opted_out": False,
        "preferred_address": None,
        "updated_at": dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC),
    } | changes


def practitioner_avro(row: dict[str, Any]) -> dict[str, Any]:
    """The record as written to the topic."""
    return practitioner_record(row).to_avro()


def test_mailboxes_come_in_address_order() -> None:
    value = practitioner_avro(state())
    assert [box["address"] for box in value["mailboxes"]] == [
        "anais@medecin.mssante.fr",
        "cabinet@medecin.mssante.fr",
    ]


def test_preferences_are_carried() -> None:
    value = practitioner_avro(state(opted_out=True, preferred_address="cabinet@medecin.mssante.fr"))
    assert value["preferences"] == {
        "opted_out": True,
        "preferred_address": "cabinet@medecin.mssante.fr",
        "delivery": {
            "event_kinds": ["ADMISSION", "DISCHARGE", "CORRECTION"],
            "mode": "REALTIME",
            "digest_hour": 18,
        },
    }


def test_a_practitioner_who_never_chose_gets_the_defaults_transfers_off() -> None:
    # A practitioner without a preferences row: every column NULL (the LEFT JOIN).
    value = practitioner_avro(state(event_kinds=None, mode=None, digest_hour=None))
    assert value["preferences"]["delivery"] == {
        "event_kinds": ["ADMISSION", "DISCHARGE", "CORRECTION"],
        "mode": "REALTIME",
        "digest_hour": 18,
    }


def test_delivery_choices_are_carried_in_a_fixed_order() -> None:
    value = practitioner_avro(
        state(event_kinds=["TRANSFER", "DISCHARGE", "ADMISSION"], mode="DIGEST", digest_hour=7)
    )
    assert value["preferences"]["delivery"] == {
        "event_kinds": ["ADMISSION", "TRANSFER", "DISCHARGE"],
        "mode": "DIGEST",
        "digest_hour": 7,
    }


def test_a_preferred_address_no_longer_in_the_directory_is_dropped() -> None:
    value = practitioner_avro(state(preferred_address="ancienne@medecin.mssante.fr"))
    assert value["preferences"]["preferred_address"] is None


def test_a_practitioner_without_mailbox_has_an_empty_list() -> None:
    assert practitioner_avro(state(mailboxes=None))["mailboxes"] == []
