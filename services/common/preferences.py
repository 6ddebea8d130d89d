"""A practitioner's choices of what notices they get and when: the defaults, in one place.

The directory stores them and publishes them on ``practitioners`` (``preferences.delivery``),
enrich copies them into each recipient (``Recipient.delivery``), notify decides by them. All three
read and write the ``DeliveryChoices`` record through this module, so a missing or partial
record (one written before the choices existed) means the defaults everywhere.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.common import records


class Mode(enum.StrEnum):
    REALTIME = "REALTIME"
    """Every wanted notice as soon as it is decided."""
    DIGEST = "DIGEST"
    """One email a day at ``digest_hour`` (Europe/Paris), listing the day's events."""
    DISCHARGES_ONLY = "DISCHARGES_ONLY"
    """Discharges (and emergency admissions) only, in real time; nothing else."""


class EventChoice(enum.StrEnum):
    """What a practitioner may ask for or not (``PreferredEventKind``)."""

    ADMISSION = "ADMISSION"
    TRANSFER = "TRANSFER"
    """A move between units of the same establishment."""
    DISCHARGE = "DISCHARGE"
    CORRECTION = "CORRECTION"
    """Corrections and retractions of what they were told."""


DEFAULT_KINDS = frozenset({EventChoice.ADMISSION, EventChoice.DISCHARGE, EventChoice.CORRECTION})
"""Transfers within an establishment are off unless asked for: a GP is told when their patient
comes in and goes out, not each time they change wards."""
DEFAULT_DIGEST_HOUR = 18


@dataclass(frozen=True)
class DeliveryChoices:
    kinds: frozenset[EventChoice] = DEFAULT_KINDS
    mode: Mode = Mode.REALTIME
    digest_hour: int = DEFAULT_DIGEST_HOUR

    def __post_init__(self) -> None:
        if not 0 <= self.digest_hour <= 23:
            raise ValueError(f"digest hour {self.digest_hour} is not an hour of the day (0-23)")

    def record(self) -> dict[str, Any]:
        """The ``DeliveryChoices`` record; kinds in a fixed order (same choices, same bytes)."""
        return {
            "event_kinds": [kind.value for kind in EventChoice if kind in self.kinds],
            "mode": self.mode.value,
            "digest_hour": self.digest_hour,
        }


def parse_kinds(names: Iterable[str]) -> frozenset[EventChoice]:
    """Kinds as people write them (``admission,discharge``; ``retraction`` is ``correction``)."""
    chosen = set()
    for name in names:
        word = name.strip().upper()
        if not word:
            continue
        if word == "RETRACTION":
            word = EventChoice.CORRECTION.value
        try:
            chosen.add(EventChoice(word))
        except ValueError:
            known = ", ".join(kind.value.lower() for kind in EventChoice)
            raise ValueError(f"unknown event kind {name!r}; one of {known}") from None
    return frozenset(chosen)


def choices_of(record: records.DeliveryChoices | Mapping[str, Any] | None) -> DeliveryChoices:
    """The choices a ``DeliveryChoices`` record (typed, as its Avro value, or a row with those
    columns) holds; None or a missing field is the default."""
    if isinstance(record, records.DeliveryChoices):
        record = record.to_avro()
    if not record:
        return DeliveryChoices()
    kinds = record.get("event_kinds")
    hour = record.get("digest_hour")
    return DeliveryChoices(
        kinds=DEFAULT_KINDS if kinds is None else parse_kinds(kinds),
        mode=Mode(record.get("mode") or Mode.REALTIME),
        digest_hour=DEFAULT_DIGEST_HOUR if hour is None else int(hour),
    )
