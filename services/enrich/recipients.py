"""Who is to be told about a stay event, and why an event cannot be routed: pure rules.

The GP is the practitioner of the ROL segment with role ODRP. The "right list" adds the other
roles of the care team (referring, referred-to, the GP's substitute) found in the directory. An
event whose GP is missing, unknown to the directory, or without a secure mailbox is unroutable,
with that reason; a mailbox whose address is not one plain email address counts as none. An
opted-out GP is still a recipient (notify records that nothing was sent), and so is one whose
domain is outside the trust space: notify, which knows the domains an operator added, skips it.
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


@dataclass(frozen=True)
class Routing:
    recipients: list[dict[str, Any]]
    unroutable_reason: str | None = None
    gp_rpps: str | None = None
    detail: str = ""


def secure_address(practitioner: Mapping[str, Any]) -> str | None:
    """The preferred address when it is one of the mailboxes, else the best mailbox by type;
    a mailbox whose address is malformed is passed over."""
    mailboxes = [
        mailbox
        for mailbox in practitioner.get("mailboxes") or []
        if plain_address(mailbox["address"]) is not None
    ]
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


def _recipient(role: str, practitioner: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "role": role,
        "rpps": practitioner["rpps"],
        "family_name": practitioner["family_name"],
        "given_name": practitioner["given_name"],
        "mssante_address": secure_address(practitioner),
        "opted_out": bool((practitioner.get("preferences") or {}).get("opted_out")),
        # What they want told and when: notify decides by it (the defaults when never set).
        "delivery": choices_of((practitioner.get("preferences") or {}).get("delivery")).record(),
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
    recipients = [_recipient("ODRP", gp)]
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
