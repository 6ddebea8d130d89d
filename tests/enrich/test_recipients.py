"""Who gets told about a stay event, and why an event cannot be routed."""

from __future__ import annotations

from typing import Any

from services.common.records import Practitioner, Recipient, StayEvent
from services.enrich.recipients import Routing, secure_address
from services.enrich.recipients import route as route_records
from tests.common.test_serde import stay_event
from tests.enrich.builders import practitioner

GP = practitioner("10101010101", ("PER", "jeanne.martin@medecin.mssante.fr"))


def event_with(*team: tuple[str, str | None]) -> StayEvent:
    event = stay_event("V1")
    event["care_team"] = [
        {"role": role, "rpps": rpps, "family_name": "X", "given_name": "Y"} for role, rpps in team
    ]
    return StayEvent.from_avro(event)


def route(event: StayEvent, directory: dict[str, dict[str, Any]]) -> Routing:
    """``route`` over a directory of Practitioner values, as the builders give them."""
    return route_records(
        event, {rpps: Practitioner.from_avro(value) for rpps, value in directory.items()}
    )


def address_of(value: dict[str, Any]) -> str | None:
    return secure_address(Practitioner.from_avro(value))


def test_the_gp_comes_first_then_the_right_list_found_in_the_directory() -> None:
    pharmacist = practitioner(
        "20202020202", ("PER", "paul.roux@pharmacien.mssante.fr"), family_name="Roux"
    )
    without_mailbox = practitioner("30303030303")
    directory = {p["rpps"]: p for p in (GP, pharmacist, without_mailbox)}
    routing = route(
        event_with(
            ("RP", "20202020202"),
            ("ODRP", "10101010101"),
            ("RT", "30303030303"),
            ("SUBS", "99999999999"),
        ),
        directory,
    )
    assert routing.unroutable_reason is None
    assert [(r.role, r.rpps, r.mssante_address) for r in routing.recipients] == [
        ("ODRP", "10101010101", "jeanne.martin@medecin.mssante.fr"),
        ("RP", "20202020202", "paul.roux@pharmacien.mssante.fr"),
    ]


def test_each_unroutable_reason() -> None:
    no_mailbox = practitioner("30303030303")
    directory = {GP["rpps"]: GP, no_mailbox["rpps"]: no_mailbox}
    assert route(event_with(), directory).unroutable_reason == "NO_GP"
    assert route(event_with(("ODRP", None)), directory).unroutable_reason == "NO_GP"
    unknown = route(event_with(("ODRP", "19990000000")), directory)
    assert (unknown.unroutable_reason, unknown.gp_rpps) == ("UNKNOWN_RPPS", "19990000000")
    assert (
        route(event_with(("ODRP", "30303030303")), directory).unroutable_reason
        == "NO_SECURE_ADDRESS"
    )


def test_a_gp_whose_only_mailbox_is_malformed_is_unroutable_without_a_secure_address() -> None:
    gp = practitioner("10101010101", ("PER", "a,b@medecin.mssante.fr"))
    routing = route(event_with(("ODRP", "10101010101")), {gp["rpps"]: gp})
    assert (routing.unroutable_reason, routing.gp_rpps, routing.recipients) == (
        "NO_SECURE_ADDRESS",
        "10101010101",
        (),
    )


def test_a_malformed_mailbox_or_preference_is_passed_over_for_a_well_formed_one() -> None:
    gp = practitioner(
        "10101010101",
        ("PER", "perso@medecin.mssante.fr>"),
        ("CAB", "cabinet@medecin.mssante.fr"),
        preferred="perso@medecin.mssante.fr>",
    )
    [recipient] = route(event_with(("ODRP", "10101010101")), {gp["rpps"]: gp}).recipients
    assert recipient.mssante_address == "cabinet@medecin.mssante.fr"
    pharmacist = practitioner("20202020202", ("PER", '"a b"@pharmacien.mssante.fr'))
    routing = route(
        event_with(("ODRP", "10101010101"), ("RP", "20202020202")),
        {gp["rpps"]: gp, pharmacist["rpps"]: pharmacist},
    )
    assert [r.rpps for r in routing.recipients] == ["10101010101"]


def test_an_opted_out_gp_is_still_a_recipient_marked_as_such() -> None:
    gp = practitioner("10101010101", ("PER", "a@medecin.mssante.fr"), opted_out=True)
    [recipient] = route(event_with(("ODRP", "10101010101")), {gp["rpps"]: gp}).recipients
    assert recipient.opted_out is True


def test_each_recipient_carries_the_practitioners_delivery_choices() -> None:
    digest = practitioner("10101010101", ("PER", "a@medecin.mssante.fr"))
    digest["preferences"]["delivery"] = {
        "event_kinds": ["DISCHARGE", "TRANSFER"],
        "mode": "DIGEST",
        "digest_hour": 7,
    }
    never_chose = practitioner("20202020202", ("PER", "b@medecin.mssante.fr"))
    routing = route(
        event_with(("ODRP", "10101010101"), ("RP", "20202020202")),
        {item["rpps"]: item for item in (digest, never_chose)},
    )
    assert [recipient.delivery.to_avro() for recipient in routing.recipients] == [
        {"event_kinds": ["TRANSFER", "DISCHARGE"], "mode": "DIGEST", "digest_hour": 7},
        # A record published before the choices existed: the defaults, transfers off.
        {
            "event_kinds": ["ADMISSION", "DISCHARGE", "CORRECTION"],
            "mode": "REALTIME",
            "digest_hour": 18,
        },
    ]


def test_the_preferred_address_wins_then_the_personal_mailbox() -> None:
    both = practitioner(
        "1", ("CAB", "cabinet@medecin.mssante.fr"), ("PER", "perso@medecin.mssante.fr")
    )
    assert address_of(both) == "perso@medecin.mssante.fr"
    chosen = practitioner(
        "1",
        ("CAB", "cabinet@medecin.mssante.fr"),
        ("PER", "perso@medecin.mssante.fr"),
        preferred="cabinet@medecin.mssante.fr",
    )
    assert address_of(chosen) == "cabinet@medecin.mssante.fr"
    stale = practitioner(
        "1", ("PER", "perso@medecin.mssante.fr"), preferred="gone@medecin.mssante.fr"
    )
    assert address_of(stale) == "perso@medecin.mssante.fr"


def _chain(recipient: Recipient) -> list[tuple[str, str, str]]:
    return [(step.role, step.rpps, step.address) for step in recipient.fallback]


def test_the_gps_chain_goes_personal_then_practice_then_the_substitute() -> None:
    gp = practitioner(
        "10101010101",
        ("ORG", "accueil@maison-sante.mssante.fr"),
        ("CAB", "cabinet@medecin.mssante.fr"),
        ("PER", "jeanne.martin@medecin.mssante.fr"),
        ("APP", "logiciel@medecin.mssante.fr"),
    )
    substitute = practitioner("40404040404", ("PER", "remplacant@medecin.mssante.fr"))
    routing = route(
        event_with(("ODRP", "10101010101"), ("SUBS", "40404040404")),
        {p["rpps"]: p for p in (gp, substitute)},
    )
    gp_recipient = routing.recipients[0]
    assert gp_recipient.mssante_address == "jeanne.martin@medecin.mssante.fr"
    # The practice's CAB before the ORG; the applicative mailbox never: nobody reads it.
    assert _chain(gp_recipient) == [
        ("ODRP", "10101010101", "cabinet@medecin.mssante.fr"),
        ("SUBS", "40404040404", "remplacant@medecin.mssante.fr"),
    ]
    # The substitute is told as a member of the right list too; their own chain has no
    # substitute of their own.
    assert [r.role for r in routing.recipients] == ["ODRP", "SUBS"]
    assert _chain(routing.recipients[1]) == []


def test_a_preferred_practice_mailbox_falls_back_to_the_personal_one() -> None:
    gp = practitioner(
        "10101010101",
        ("CAB", "cabinet@medecin.mssante.fr"),
        ("PER", "jeanne.martin@medecin.mssante.fr"),
        preferred="cabinet@medecin.mssante.fr",
    )
    [recipient] = route(event_with(("ODRP", "10101010101")), {gp["rpps"]: gp}).recipients
    assert _chain(recipient) == [("ODRP", "10101010101", "jeanne.martin@medecin.mssante.fr")]


def test_no_further_step_without_another_mailbox_or_a_usable_substitute() -> None:
    gp = practitioner("10101010101", ("PER", "jeanne.martin@medecin.mssante.fr"))
    without_mailbox = practitioner("40404040404")
    routing = route(
        event_with(("ODRP", "10101010101"), ("SUBS", "40404040404"), ("SUBS", "55555555555")),
        {p["rpps"]: p for p in (gp, without_mailbox)},
    )
    assert _chain(routing.recipients[0]) == []
    # An ORG mailbox stands in for a practice without a CAB one; a malformed one never does.
    org = practitioner(
        "10101010101",
        ("PER", "jeanne.martin@medecin.mssante.fr"),
        ("CAB", "not an address"),
        ("ORG", "accueil@maison-sante.mssante.fr"),
    )
    [recipient] = route(event_with(("ODRP", "10101010101")), {org["rpps"]: org}).recipients
    assert _chain(recipient) == [("ODRP", "10101010101", "accueil@maison-sante.mssante.fr")]


def test_a_substitute_who_opted_out_is_no_step_of_the_chain() -> None:
    gp = practitioner("10101010101", ("PER", "jeanne.martin@medecin.mssante.fr"))
    substitute = practitioner(
        "40404040404", ("PER", "remplacant@medecin.mssante.fr"), opted_out=True
    )
    routing = route(
        event_with(("ODRP", "10101010101"), ("SUBS", "40404040404")),
        {p["rpps"]: p for p in (gp, substitute)},
    )
    assert _chain(routing.recipients[0]) == []
