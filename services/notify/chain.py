"""A recipient's fallback chain, step by step: the rules, free of SQL and SMTP.

A notice that bounced or failed for good is followed by one notice to the next address of its
recipient's chain (enrich's ``Recipient.fallback``: their other mailbox, then the practice's, then
the GP's substitute), the same message written to that address. Each step has its own id, derived
from the notice it follows, so a bounce read twice, a replay or a restart gives the same step
once. A chain with no step left ends on the worklist.
"""

from __future__ import annotations

import email
import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.policy import SMTP as SMTP_POLICY
from typing import Any

from services.notify.render import MESSAGE_ID_DOMAIN

# Fixed forever: the ids of the chain's steps derived from it must stay the same across versions.
_STEP_NAMESPACE = uuid.UUID("0c8e2f3e-9a41-4d55-8f0b-2b7b0f6f4c21")


class Setback(enum.StrEnum):
    """Why a notice's chain moves on; also the worklist's reason when it cannot."""

    BOUNCED = "BOUNCED"
    """The recipient's server reported it undeliverable (a DSN or a bounce)."""
    FAILED = "FAILED"
    """Refused for good at the hand-off, or still refused when the platform gave up."""


@dataclass(frozen=True)
class Step:
    """The next notice of a chain."""

    notification_id: str
    number: int
    rpps: str
    address: str
    role: str
    remaining: list[dict[str, Any]]
    """The steps after this one, for when it bounces too."""


def step_id(previous_id: str, number: int) -> str:
    """The id of step ``number`` after the notice ``previous_id`` (each notice has one next)."""
    return str(uuid.uuid5(_STEP_NAMESPACE, f"{previous_id}|{number}"))


def next_step(
    previous_id: str, previous_number: int, fallback: Sequence[Mapping[str, Any]]
) -> Step | None:
    """The step that follows the notice ``previous_id``; None at the end of its chain."""
    if not fallback:
        return None
    first, *rest = fallback
    number = previous_number + 1
    return Step(
        notification_id=step_id(previous_id, number),
        number=number,
        rpps=str(first["rpps"]),
        address=str(first["address"]),
        role=str(first.get("role") or "OTHER"),
        remaining=[dict(step) for step in rest],
    )


def readdressed(message: bytes, address: str, notification_id: str) -> bytes:
    """The notice's message, written to ``address`` under the step's own ids (Message-ID and
    ``X-Harpicoop-Notification-Id``, which receipts are matched by); its words are unchanged, so
    a substitute reads what the GP would have."""
    parsed = email.message_from_bytes(message, policy=SMTP_POLICY)
    for name, value in (
        ("To", address),
        ("Message-ID", f"<{notification_id}@{MESSAGE_ID_DOMAIN}>"),
        ("X-Harpicoop-Notification-Id", notification_id),
    ):
        del parsed[name]
        parsed[name] = value
    return parsed.as_bytes(policy=SMTP_POLICY)
