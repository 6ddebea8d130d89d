"""Which notices a recipient's own choices let through, hold for their digest, or skip: pure.

- The kinds a practitioner did not ask for are skipped, with the reason (transfers within an
  establishment are not asked for unless chosen: ``services.common.preferences``).
- Emergency admissions and every discharge (their corrections and retractions too) go in real
  time whatever the mode.
- ``DISCHARGES_ONLY``: anything else is skipped, but the correction or retraction of a notice
  that went out alone (before the mode changed).
- ``DIGEST``: anything else is deferred to the recipient's daily digest (``digests``).
"""

from __future__ import annotations

from collections.abc import Mapping

from services.common.preferences import EventChoice, Mode, choices_of
from services.common.records import AdmissionMode, EventKind, Recipient, StayEvent
from services.common.skip_reasons import SkipReason

_CHOICE_OF_NOTICE: Mapping[str, EventChoice] = {
    "ADMISSION": EventChoice.ADMISSION,
    "TRANSFER": EventChoice.TRANSFER,
    "DISCHARGE": EventChoice.DISCHARGE,
    "CORRECTION": EventChoice.CORRECTION,
    "RETRACTION": EventChoice.CORRECTION,
}
_NOT_ASKED = {
    EventChoice.ADMISSION: SkipReason.NOT_ASKED_ADMISSIONS.sentence,
    EventChoice.TRANSFER: SkipReason.NOT_ASKED_TRANSFERS.sentence,
    EventChoice.DISCHARGE: SkipReason.NOT_ASKED_DISCHARGES.sentence,
    EventChoice.CORRECTION: SkipReason.NOT_ASKED_CORRECTIONS.sentence,
}
DISCHARGES_ONLY_REASON = SkipReason.DISCHARGES_ONLY.sentence


def always_now(event: StayEvent) -> bool:
    """An emergency admission or a discharge: told at once whatever the mode."""
    if event.kind is EventKind.DISCHARGE:
        return True
    emergency = event.stay.admission_mode is AdmissionMode.EMERGENCY
    return emergency and event.kind in (EventKind.ADMISSION, EventKind.CHANGE_TO_INPATIENT)


def by_choices(
    kind: str, event: StayEvent, recipient: Recipient, *, told_before: bool
) -> tuple[str | None, bool]:
    """(skip reason, deferred) of a notice of ``kind`` to ``recipient``; ``told_before`` when a
    notice of the same movement went out to them."""
    choices = choices_of(recipient.delivery)
    choice = _CHOICE_OF_NOTICE.get(kind)
    if choice is None:
        return None, False
    if choice not in choices.kinds:
        return _NOT_ASKED[choice], False
    if choices.mode is Mode.REALTIME or always_now(event):
        return None, False
    if choices.mode is Mode.DISCHARGES_ONLY:
        # What they were told alone before they changed their mode is corrected alone.
        if kind in ("CORRECTION", "RETRACTION") and told_before:
            return None, False
        return DISCHARGES_ONLY_REASON, False
    return None, True
