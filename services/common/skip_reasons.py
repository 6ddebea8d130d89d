"""Why a notice was not sent: the sentence notify records as a skipped notice's detail (on its
ledger and on ``notifications.status``) and the short code analytics counts it under.

Written once here because two services read it: notify writes the sentences, analytics maps them
back to codes. No sentence names a patient, a practitioner, an address or a unit.
"""

from __future__ import annotations

from enum import StrEnum


class SkipReason(StrEnum):
    """The code of a reason; ``sentence`` is what the ledger and the status say."""

    PROTECTED = "protected"
    OPPOSED = "opposed"
    SENSITIVE_UNIT = "sensitive_unit"
    OPTED_OUT = "opted_out"
    NO_ADDRESS = "no_address"
    MALFORMED_ADDRESS = "malformed_address"
    INSECURE_ADDRESS = "insecure_address"
    TOO_MANY_RECIPIENTS = "too_many_recipients"
    CANCELLED = "cancelled"
    REPLACED = "replaced"
    NOT_ASKED_ADMISSIONS = "not_asked_admissions"
    NOT_ASKED_TRANSFERS = "not_asked_transfers"
    NOT_ASKED_DISCHARGES = "not_asked_discharges"
    NOT_ASKED_CORRECTIONS = "not_asked_corrections"
    DISCHARGES_ONLY = "discharges_only"
    DIGEST_EMPTIED = "digest_emptied"
    SUBSTITUTE_TOLD = "substitute_told"

    @property
    def sentence(self) -> str:
        return _SENTENCES[self]


_SENTENCES = {
    SkipReason.PROTECTED: (
        "the patient or the stay is under a protection indicator (PD1-12 or PV2-22): "
        "nothing is notified about this stay"
    ),
    SkipReason.OPPOSED: "the patient objected to their practitioners being notified",
    SkipReason.SENSITIVE_UNIT: "the unit's sensitivity policy suppresses notices",
    SkipReason.OPTED_OUT: "the practitioner opted out of notifications",
    SkipReason.NO_ADDRESS: "the practitioner has no secure messaging address",
    SkipReason.MALFORMED_ADDRESS: "the address is not one plain email address",
    SkipReason.INSECURE_ADDRESS: "the address is outside the MSSanté secure domains",
    SkipReason.TOO_MANY_RECIPIENTS: "past the first {limit} recipients of the event",
    SkipReason.CANCELLED: "the movement was cancelled before its notice was sent",
    SkipReason.REPLACED: "replaced by a corrected notice before it was sent",
    # A practitioner's own choices (services.notify.choices).
    SkipReason.NOT_ASKED_ADMISSIONS: "the practitioner does not ask to be told of admissions",
    SkipReason.NOT_ASKED_TRANSFERS: "the practitioner does not ask to be told of transfers",
    SkipReason.NOT_ASKED_DISCHARGES: "the practitioner does not ask to be told of discharges",
    SkipReason.NOT_ASKED_CORRECTIONS: (
        "the practitioner does not ask to be told of corrections and retractions"
    ),
    SkipReason.DISCHARGES_ONLY: (
        "the practitioner asks for discharges and emergency admissions only"
    ),
    SkipReason.DIGEST_EMPTIED: "every event it was to list was withdrawn before it was sent",
    # A fallback chain's step (services.notify.chain).
    SkipReason.SUBSTITUTE_TOLD: (
        "the GP's substitute has a notice of this event of their own: the chain ends there"
    ),
}

OTHER = "other"
"""The code of a detail no reason here wrote (a notice skipped by an older version)."""


def reason_code(detail: str | None) -> str:
    """The code of a skipped notice's detail; ``OTHER`` when it is none of ours."""
    if detail is None:
        return OTHER
    for reason, sentence in _SENTENCES.items():
        head, _, tail = sentence.partition("{limit}")
        if detail == sentence or (tail and detail.startswith(head) and detail.endswith(tail)):
            return reason.value
    return OTHER
