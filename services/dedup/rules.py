"""What makes two stay events the same, and whether an event passes (pure logic, no Kafka).

Two identities of each event are remembered once it passes:

- the message: establishment and MSH-10 — an engine resends a message it got no ACK for;
- the movement action: the movement (its stay, ZBE-1's id and assigning authority, see
  ``services.common.movements``) and ZBE-4 action — the same movement inserted or cancelled
  twice under different message ids. Two stays that reuse a movement number are two
  movements. A correction (UPDATE) of a movement may rightly come several times with different
  content, so for corrections the identity also holds a fingerprint of the content: only an
  identical correction is dropped.

What is remembered for an identity is a ``Claim``: the input record that passed with it. Reading
that very record again is a replay, not a duplicate: it passes again. (Dedup commits a record's
claims, its output and its offset in one transaction, so it never meets its own claims; the rule
keeps a replay from ever being taken for a duplicate, whoever remembers.)
A claim older than the horizon, in the time the platform received the events, no longer counts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, is_dataclass
from enum import StrEnum
from typing import Any

from services.common.movements import movement_key
from services.common.records import Action, StayEvent
from services.common.streams import SourceRecord


class Verdict(StrEnum):
    UNIQUE = "unique"
    REPLAYED = "replayed"
    """The record that made the claim, read again: it passes, its output may already exist."""
    RESENT_MESSAGE = "resent_message"
    REPEATED_MOVEMENT_ACTION = "repeated_movement_action"

    @property
    def passes(self) -> bool:
        return self in (Verdict.UNIQUE, Verdict.REPLAYED)


@dataclass(frozen=True)
class Claim:
    """An identity taken by the input record that passed first with it."""

    source: SourceRecord
    received_at_ms: int
    """When the platform received that event: the horizon is measured in this time."""
    claimed_at_ms: int
    """When dedup let it pass (wall clock): its output was written just after."""

    def encode(self) -> bytes:
        return json.dumps(
            [self.source.encode(), self.received_at_ms, self.claimed_at_ms], separators=(",", ":")
        ).encode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> Claim:
        source, received_at_ms, claimed_at_ms = json.loads(data)
        return cls(SourceRecord.decode(source), int(received_at_ms), int(claimed_at_ms))


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    claims: Mapping[str, Claim]
    """Identities to remember: every identity of an event that passes, none otherwise."""
    earlier: Claim | None = None
    """The claim that made the event a duplicate, or the replayed record's own claim."""


# Fields that differ between two sendings of the same content: not part of a fingerprint.
_TRANSPORT_FIELDS = frozenset({"event_id", "message_control_id", "sent_at", "received_at"})


def epoch_ms(value: dt.datetime | int) -> int:
    return value if isinstance(value, int) else round(value.timestamp() * 1000)


def _canonical_part(value: Any) -> Any:
    # A nested record is written as its fields (json sorts them); a date as its str(). Enums are
    # strs and tuples lists to json: the text is the one the event's Avro value gives, so a
    # fingerprint remembered in a claim is the one the same content gives now.
    return vars(value) if is_dataclass(value) else str(value)


def content_fingerprint(event: StayEvent) -> str:
    content = {key: value for key, value in vars(event).items() if key not in _TRANSPORT_FIELDS}
    canonical = json.dumps(content, sort_keys=True, default=_canonical_part, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=12).hexdigest()


def message_identity(event: StayEvent) -> str:
    return f"message|{event.establishment}|{event.message_control_id}"


def movement_action_identity(event: StayEvent) -> str:
    identity = f"movement|{movement_key(event)}|{event.action}"
    if event.action is Action.UPDATE:
        identity += f"|{content_fingerprint(event)}"
    return identity


def is_expired(claim: Claim, now_received_ms: int, horizon: dt.timedelta) -> bool:
    return claim.received_at_ms < now_received_ms - horizon / dt.timedelta(milliseconds=1)


def decide(
    event: StayEvent,
    source: SourceRecord,
    remembered: Callable[[str], Claim | None],
    horizon: dt.timedelta,
    now_ms: int,
) -> Decision:
    """Whether ``event``, read from ``source``, passes; ``remembered`` looks a claim up."""
    received_ms = epoch_ms(event.received_at)
    identities = (
        (message_identity(event), Verdict.RESENT_MESSAGE),
        (movement_action_identity(event), Verdict.REPEATED_MOVEMENT_ACTION),
    )
    own: Claim | None = None
    for identity, duplicate in identities:
        claim = remembered(identity)
        if claim is None or is_expired(claim, received_ms, horizon):
            continue
        if claim.source != source:
            return Decision(duplicate, {}, claim)
        own = claim
    if own is not None:
        # Claims are rewritten: one of them may not have reached the changelog before a crash.
        return Decision(Verdict.REPLAYED, {identity: own for identity, _ in identities}, own)
    claim = Claim(source, received_ms, now_ms)
    return Decision(Verdict.UNIQUE, {identity: claim for identity, _ in identities})
