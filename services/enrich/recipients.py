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

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from services.common.mailbox import plain_address
from services.common.preferences import choices_of
from services.common.records import (
    CareRole,
    DeliveryChoices,
    FallbackAddress,
    Mailbox,
    Practitioner,
    Recipient,
    StayEvent,
    UnroutableReason,
)

ROLE_ORDER = (CareRole.ODRP, CareRole.RP, CareRole.RT, CareRole.SUBS)
# The personal mailbox first: it reaches the practitioner, not a secretariat.
MAILBOX_PREFERENCE = ("PER", "CAB", "ORG", "APP", "OTHER")
# The mailboxes a chain tries, in order: the practitioner's own, then one of their practice's
# (CAB, else ORG); an applicative mailbox belongs to software, not to someone who reads it.
CHAIN_MAILBOXES = (("PER",), ("CAB", "ORG"))

Directory = Mapping[str, Practitioner]
"""RPPS → the practitioner's latest record."""


@dataclass(frozen=True)
class Routing:
    recipients: tuple[Recipient, ...]
    unroutable_reason: UnroutableReason | None = None
    gp_rpps: str | None = None
    detail: str = ""


def secure_address(practitioner: Practitioner) -> str | None:
    """The preferred address when it is one of the mailboxes, else the best mailbox by type;
    a mailbox whose address is malformed is passed over."""
    mailboxes = _usable(practitioner)
    preferred = practitioner.preferences.preferred_address
    if preferred and any(mailbox.address == preferred for mailbox in mailboxes):
        return preferred
    ranked = sorted(
        mailboxes,
        key=lambda mailbox: (
            MAILBOX_PREFERENCE.index(mailbox.mailbox_type)
            if mailbox.mailbox_type in MAILBOX_PREFERENCE
            else len(MAILBOX_PREFERENCE)
        ),
    )
    return ranked[0].address if ranked else None


def _usable(practitioner: Practitioner) -> list[Mailbox]:
    return [
        mailbox for mailbox in practitioner.mailboxes if plain_address(mailbox.address) is not None
    ]


def _step(role: CareRole, practitioner: Practitioner, mailbox: Mailbox) -> FallbackAddress:
    return FallbackAddress(
        rpps=practitioner.rpps,
        address=mailbox.address,
        mailbox_type=str(mailbox.mailbox_type),
        role=role,
    )


def fallback_chain(
    role: CareRole, practitioner: Practitioner, substitute: Practitioner | None = None
) -> tuple[FallbackAddress, ...]:
    """The steps after the practitioner's first address (``secure_address``): their personal
    mailbox, then their practice's (CAB, else ORG), each once and never the first address again;
    then ``substitute``'s secure address, for the GP, unless they opted out of notices."""
    first = secure_address(practitioner)
    mailboxes = _usable(practitioner)
    steps: list[FallbackAddress] = []
    seen = {first}
    for types in CHAIN_MAILBOXES:
        mailbox = next((m for kind in types for m in mailboxes if m.mailbox_type == kind), None)
        if mailbox is not None and mailbox.address not in seen:
            steps.append(_step(role, practitioner, mailbox))
            seen.add(mailbox.address)
    if (
        substitute is not None
        and substitute.rpps != practitioner.rpps
        and not substitute.preferences.opted_out
    ):
        address = secure_address(substitute)
        if address is not None and address not in seen:
            mailbox = next(m for m in _usable(substitute) if m.address == address)
            steps.append(_step(CareRole.SUBS, substitute, mailbox))
    return tuple(steps)


@functools.lru_cache(maxsize=1024)
def _delivery(chosen: DeliveryChoices) -> DeliveryChoices:
    """The choices as a recipient carries them: checked, kinds in a fixed order (same choices,
    same bytes). Few practitioners' choices differ: each set is worked out once."""
    return DeliveryChoices.adopt_avro(choices_of(chosen).record())


def _recipient(
    role: CareRole, practitioner: Practitioner, substitute: Practitioner | None = None
) -> Recipient:
    return Recipient(
        role=role,
        rpps=practitioner.rpps,
        family_name=practitioner.family_name,
        given_name=practitioner.given_name,
        mssante_address=secure_address(practitioner),
        opted_out=practitioner.preferences.opted_out,
        # What they want told and when: notify decides by it (the defaults when never set).
        delivery=_delivery(practitioner.preferences.delivery),
        fallback=fallback_chain(role, practitioner, substitute),
    )


def route(event: StayEvent, directory: Directory) -> Routing:
    """The recipients of an event given the directory."""
    team = [(member.role, member.rpps) for member in event.care_team if member.rpps]
    gp_member = next((m for m in event.care_team if m.role is CareRole.ODRP), None)
    gp_rpps = gp_member.rpps if gp_member else None
    if not gp_rpps:
        return Routing(
            (),
            UnroutableReason.NO_GP,
            None,
            "no general practitioner (ROL ODRP with an RPPS) in the message",
        )
    gp = directory.get(gp_rpps)
    if gp is None:
        return Routing(
            (),
            UnroutableReason.UNKNOWN_RPPS,
            gp_rpps,
            f"RPPS {gp_rpps} of the GP is not in the directory",
        )
    if secure_address(gp) is None:
        return Routing(
            (),
            UnroutableReason.NO_SECURE_ADDRESS,
            gp_rpps,
            f"the GP {gp_rpps} has no usable MSSanté mailbox",
        )
    substitute = next(
        (
            directory[rpps]
            for role, rpps in team
            if role is CareRole.SUBS and rpps in directory and rpps != gp_rpps
        ),
        None,
    )
    recipients = [_recipient(CareRole.ODRP, gp, substitute)]
    seen = {gp_rpps}
    for role in ROLE_ORDER[1:]:
        for member_role, rpps in team:
            if member_role is not role or rpps in seen or rpps not in directory:
                continue
            practitioner = directory[rpps]
            if secure_address(practitioner) is not None:
                recipients.append(_recipient(role, practitioner))
                seen.add(rpps)
    return Routing(tuple(recipients), gp_rpps=gp_rpps)
