"""Who is to be told about a stay event, and why an event cannot be routed: pure rules.

The GP is the practitioner of the ROL segment with role ODRP. The "right list" adds the other
roles of the care team (referring, referred-to, the GP's substitute) found in the directory. An
event whose GP is missing, unknown to the directory, or without a secure mailbox is unroutable,
with that reason; a mailbox whose address is not one plain email address counts as none. An
opted-out GP is still a recipient (notify records that nothing was sent), and so is one whose
domain is outside the trust space: notify, which knows the domains an operator added, skips it.

Each recipient carries its fallback chain: where notify writes next when its address bounces or
is refused for good. The practitioner's other mailbox (personal, else the practice's: CAB, then
ORG), then, for the GP only, the substitute the event names (ROL SUBS) at their own address.
Enrich builds it because it holds the directory and the event's care team; notify only follows
it, step by step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.common.mailbox import plain_address
from services.common.preferences import choices_of

ROLE_ORDER = ("ODRP", "RP", "RT", "SUBS")
# The personal mailbox first: it reaches the practitioner, not a secretariat.
MAILBOX_PREFERENCE = ("PER", "CAB", "ORG", "APP", "OTHER")
# The mailboxes a chain tries, in order: the practitioner's own, then one of their practice's
# (CAB, else ORG); an applicative mailbox belongs to software, not to someone who reads it.
CHAIN_MAILBOXES = (("PER",), ("CAB", "ORG"))


@dataclass(frozen=True)
class Routing:
    recipients: list[dict[str, Any]]
    unroutable_reason: str | None = None
    gp_rpps: str | None = None
    detail: str = ""


def secure_address(practitioner: Mapping[str, Any]) -> str | None:
    """The preferred address when it is one of the mailboxes, else the best mailbox by type;
    a mailbox whose address is malformed is passed over."""
    mailboxes = _usable(practitioner)
    addresses = {mailbox["address"] for mailbox in mailboxes}
    preferred = (practitioner.get("preferences") or {}).get("preferred_address")
    if preferred and preferred in addresses:
        return str(preferred)
    ranked = sorted(
        mailboxes,
        key=lambda mailbox: (
            MAILBOX_PREFERENCE.index(mailbox["mailbox_type"])
            if mailbox["mailbox_type"] in MAILBOX_PREFERENCE
            else len(MAILBOX_PREFERENCE)
        ),
    )
    return str(ranked[0]["address"]) if ranked else None


def _usable(practitioner: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        mailbox
        for mailbox in practitioner.get("mailboxes") or []
        if plain_address(mailbox["address"]) is not None
    ]


def _step(role: str, practitioner: Mapping[str, Any], mailbox: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "rpps": practitioner["rpps"],
        "address": str(mailbox["address"]),
        "mailbox_type": str(mailbox["mailbox_type"]),
        "role": role,
    }


def fallback_chain(
    role: str, practitioner: Mapping[str, Any], substitute: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The steps after the practitioner's first address (``secure_address``): their personal
    mailbox, then their practice's (CAB, else ORG), each once and never the first address again;
    then ``substitute``'s secure address, for the GP, unless they opted out of notices."""
    first = secure_address(practitioner)
    mailboxes = _usable(practitioner)
    steps: list[dict[str, Any]] = []
    seen = {first}
    for types in CHAIN_MAILBOXES:
        mailbox = next((m for kind in types for m in mailboxes if m["mailbox_type"] == kind), None)
        if mailbox is not None and mailbox["address"] not in seen:
            steps.append(_step(role, practitioner, mailbox))
            seen.add(mailbox["address"])
    opted_out = bool(((substitute or {}).get("preferences") or {}).get("opted_out"))
    if substitute is not None and substitute["rpps"] != practitioner["rpps"] and not opted_out:
        address = secure_address(substitute)
        if address is not None and address not in seen:
            mailbox = next(m for m in _usable(substitute) if m["address"] == address)
            steps.append(_step("SUBS", substitute, mailbox))
    return steps


def _recipient(
    role: str, practitioner: Mapping[str, Any], substitute: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "role": role,
        "rpps": practitioner["rpps"],
        "family_name": practitioner["family_name"],
        "given_name": practitioner["given_name"],
        "mssante_address": secure_address(practitioner),
        "opted_out": bool((practitioner.get("preferences") or {}).get("opted_out")),
        # What they want told and when: notify decides by it (the defaults when never set).
        "delivery": choices_of((practitioner.get("preferences") or {}).get("delivery")).record(),
        "fallback": fallback_chain(role, practitioner, substitute),
    }


def route(event: Mapping[str, Any], directory: Mapping[str, Mapping[str, Any]]) -> Routing:
    """The recipients of an event given the directory (RPPS → Practitioner)."""
    team = [member for member in event.get("care_team") or [] if member.get("rpps")]
    gp_member = next((m for m in event.get("care_team") or [] if m["role"] == "ODRP"), None)
    gp_rpps = gp_member.get("rpps") if gp_member else None
    if not gp_rpps:
        return Routing(
            [], "NO_GP", None, "no general practitioner (ROL ODRP with an RPPS) in the message"
        )
    gp = directory.get(gp_rpps)
    if gp is None:
        return Routing(
            [], "UNKNOWN_RPPS", gp_rpps, f"RPPS {gp_rpps} of the GP is not in the directory"
        )
    if secure_address(gp) is None:
        return Routing(
            [], "NO_SECURE_ADDRESS", gp_rpps, f"the GP {gp_rpps} has no usable MSSanté mailbox"
        )
    substitute = next(
        (
            directory[m["rpps"]]
            for m in team
            if m["role"] == "SUBS" and m["rpps"] in directory and m["rpps"] != gp_rpps
        ),
        None,
    )
    recipients = [_recipient("ODRP", gp, substitute)]
    seen = {gp_rpps}
    for role in ROLE_ORDER[1:]:
        for member in team:
            rpps = member["rpps"]
            if member["role"] != role or rpps in seen or rpps not in directory:
                continue
            practitioner = directory[rpps]
            if secure_address(practitioner) is not None:
                recipients.append(_recipient(role, practitioner))
                seen.add(rpps)
    return Routing(recipients, gp_rpps=gp_rpps)
