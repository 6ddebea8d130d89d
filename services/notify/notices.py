"""Which notices a stay event gives, and to whom: the rules, free of Kafka, SMTP and SQL.

- A new admission (A01, or A06 from outpatient or emergency to inpatient), transfer or discharge
  gives one notice per recipient.
- A correction (Z99) of a movement already notified gives a CORRECTION; of a movement whose notice
  is still waiting to go, it replaces that notice; of a movement never notified, the notice the
  movement would have given.
- A cancellation of a movement already notified gives a RETRACTION; of one still waiting, it
  withdraws the waiting notice; of one never notified, nothing.
- A recipient who opted out, or whose address is malformed or outside the MSSanté secure domains,
  gets nothing: the notice is recorded as skipped, with the reason.
- A stay withheld from everyone (a protection indicator, the patient's objection, a unit whose
  sensitivity policy suppresses notices) gives every recipient a skipped notice with that reason,
  retractions and corrections included: nothing at all is said about it.
- A recipient's own choices (``services.notify.choices``) skip the kinds they did not ask for, and
  defer to their daily digest what their mode holds back.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.common.mailbox import plain_address, secure_address
from services.common.records import (
    Action,
    CovidFollowup,
    EnrichedStayEvent,
    FollowupState,
    Recipient,
)
from services.common.skip_reasons import SkipReason
from services.notify.choices import by_choices

# Fixed forever: notification ids derived from it must stay the same across versions.
_NOTIFICATION_NAMESPACE = uuid.UUID("6f1c63c4-5d0e-4b7a-9a59-3a3e8e3f5a10")


class NoticeKind(enum.StrEnum):
    ADMISSION = "ADMISSION"
    TRANSFER = "TRANSFER"
    DISCHARGE = "DISCHARGE"
    CORRECTION = "CORRECTION"
    RETRACTION = "RETRACTION"
    COVID_FOLLOWUP = "COVID_FOLLOWUP"
    COVID_REMINDER = "COVID_REMINDER"


# Stay event kinds that a GP is told about when they happen.
NOTIFIABLE_KINDS: Mapping[str, NoticeKind] = {
    "ADMISSION": NoticeKind.ADMISSION,
    "CHANGE_TO_INPATIENT": NoticeKind.ADMISSION,
    "TRANSFER": NoticeKind.TRANSFER,
    "DISCHARGE": NoticeKind.DISCHARGE,
}


class Earlier(enum.Enum):
    """What became of the notices of the movement an update or cancel acts upon."""

    NONE = "none"  # never notified (or its notice failed or was skipped)
    WAITING = "waiting"  # a notice is recorded but not yet handed to the SMTP server
    DELIVERED = "delivered"  # a notice was (or may have been) handed over


@dataclass(frozen=True)
class Notice:
    """One email to write, or one deliberately not written (``skip_reason``)."""

    notification_id: str
    kind: NoticeKind
    recipient: Recipient
    skip_reason: str | None = None
    withdraws_waiting: bool = False
    """True when the earlier, still waiting notice of this movement must not go out."""
    deferred: bool = False
    """True when it goes in the recipient's daily digest, not on its own."""


def notification_id(event_id: str, rpps: str, kind: NoticeKind) -> str:
    return str(uuid.uuid5(_NOTIFICATION_NAMESPACE, f"{event_id}|{rpps}|{kind.value}"))


def _skip_reason(recipient: Recipient, extra_domains: Iterable[str]) -> str | None:
    address = recipient.mssante_address
    if recipient.opted_out:
        return SkipReason.OPTED_OUT.sentence
    if not address:
        return SkipReason.NO_ADDRESS.sentence
    if plain_address(address) is None:
        return SkipReason.MALFORMED_ADDRESS.sentence
    if secure_address(address, extra_domains) is None:
        return SkipReason.INSECURE_ADDRESS.sentence
    return None


class Sensitivity(enum.StrEnum):
    """What a unit's sensitivity policy (deploy/sensitivity.toml) lets a notice say."""

    NOTIFY = "notify"
    """An ordinary notice."""
    MINIMAL = "minimal"
    """A notice that names neither the unit nor the discharge destination."""
    SUPPRESS = "suppress"
    """No notice: recorded as skipped, with the reason."""


@dataclass(frozen=True)
class Privacy:
    """What the platform knows of a stay's confidentiality when one of its events comes in."""

    protected: bool = False
    """A protection indicator (PD1-12 or PV2-22) said Y for this stay, and no later N lifted it."""
    opposed: bool = False
    """The patient's objection is in the opposition register."""
    sensitivity: Sensitivity = Sensitivity.NOTIFY


def withheld_reason(privacy: Privacy) -> str | None:
    """Why nothing may be said about the stay to anyone, or None. A protection and an objection
    are the patient's own requests and come first; the unit's policy is the establishment's."""
    if privacy.protected:
        return SkipReason.PROTECTED.sentence
    if privacy.opposed:
        return SkipReason.OPPOSED.sentence
    if privacy.sensitivity is Sensitivity.SUPPRESS:
        return SkipReason.SENSITIVE_UNIT.sentence
    return None


MAX_RECIPIENTS = 10
"""Recipients of one event past this many are recorded as skipped: a care team is a handful of
practitioners, and a longer list is a sender's mistake or an attempt to mail many GPs at once."""


def decide(
    enriched: EnrichedStayEvent,
    earlier: Mapping[str, Earlier],
    extra_domains: Iterable[str] = (),
    max_recipients: int = MAX_RECIPIENTS,
    withheld: str | None = None,
) -> list[Notice]:
    """The notices of one enriched event.

    ``withheld`` (from ``withheld_reason``) skips every one of them with that reason.

    ``earlier`` maps a recipient's RPPS to what became of their notices for the same movement;
    it matters only for updates and cancellations. Recipients come in enrich's order (the GP
    first); those past ``max_recipients`` get nothing new, but a notice that went out is still
    retracted or corrected.
    """
    event = enriched.event
    original = NOTIFIABLE_KINDS.get(event.kind)
    if original is None:
        return []
    extra = list(extra_domains)
    notices = []
    for rank, recipient in enumerate(enriched.recipients):
        rpps = recipient.rpps
        before = earlier.get(rpps, Earlier.NONE)
        if event.action is Action.INSERT:
            kind, withdraws = original, False
        elif event.action is Action.UPDATE:
            kind = NoticeKind.CORRECTION if before is Earlier.DELIVERED else original
            withdraws = before is Earlier.WAITING
        elif before is Earlier.DELIVERED:  # a cancellation
            kind, withdraws = NoticeKind.RETRACTION, False
        elif before is Earlier.WAITING:
            notices.append(
                Notice(
                    notification_id(event.event_id, rpps, NoticeKind.RETRACTION),
                    NoticeKind.RETRACTION,
                    recipient,
                    skip_reason=withheld or SkipReason.CANCELLED.sentence,
                    withdraws_waiting=True,
                )
            )
            continue
        else:
            continue
        over_cap = rank >= max_recipients and before is not Earlier.DELIVERED
        skip_reason = withheld or (
            SkipReason.TOO_MANY_RECIPIENTS.sentence.format(limit=max_recipients)
            if over_cap
            else _skip_reason(recipient, extra)
        )
        deferred = False
        if skip_reason is None:
            skip_reason, deferred = by_choices(
                kind, event, recipient, told_before=before is Earlier.DELIVERED
            )
        notices.append(
            Notice(
                notification_id(event.event_id, rpps, kind),
                kind,
                recipient,
                skip_reason=skip_reason,
                withdraws_waiting=withdraws,
                deferred=deferred,
            )
        )
    return notices


def followup_event_id(case_id: str, reminders_sent: int) -> str:
    """The id a follow-up state stands under in the ledger: one notice per case and reminder."""
    return f"covid:{case_id}:{reminders_sent}"


def followup_movement_key(case_id: str) -> str:
    """What a case's notices are grouped under in the ledger, as a stay's are by movement."""
    return f"covid:{case_id}"


def decide_followup(
    followup: CovidFollowup, extra_domains: Iterable[str] = (), withheld: str | None = None
) -> list[Notice]:
    """A newly opened case tells the GP; each reminder reminds them; closing says nothing.
    ``withheld`` skips the notice with that reason."""
    gp = followup.gp
    if gp is None or followup.state is FollowupState.CLOSED:
        return []
    opened = followup.state is FollowupState.OPEN
    kind = NoticeKind.COVID_FOLLOWUP if opened else NoticeKind.COVID_REMINDER
    event_id = followup_event_id(followup.case_id, followup.reminders_sent)
    return [
        Notice(
            notification_id(event_id, gp.rpps, kind),
            kind,
            gp,
            skip_reason=withheld or _skip_reason(gp, list(extra_domains)),
        )
    ]
