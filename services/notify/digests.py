"""The daily digest: one email per recipient and day, sent at their hour (Europe/Paris), listing
the events their choices deferred (``services.notify.choices``) in the order they happened.

A deferred notice goes in the first digest due after the platform received its event that has
not yet been taken for sending, the next day's when that one has. Pure: ids and due times.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
DIGEST_LINES_HEADER = "X-Harpicoop-Digest-Lines"
"""The ids of the notices a digest tells, in its order: ids only, never a patient."""
# Fixed forever: digest ids derived from it must stay the same across versions.
_DIGEST_NAMESPACE = uuid.UUID("2b0f3d59-8a4e-4f0e-b7c1-9d6a4c1e7f21")


def digest_id(rpps: str, day: dt.date) -> str:
    """The id of a recipient's digest of a day: the same on every replay, so it goes once."""
    return str(uuid.uuid5(_DIGEST_NAMESPACE, f"{rpps}|{day.isoformat()}"))


def digest_event_id(rpps: str, day: dt.date) -> str:
    """What a digest stands under in the ledger's event and movement columns."""
    return f"digest:{rpps}:{day.isoformat()}"


def digest_stay_key(rpps: str) -> str:
    """A recipient's digests are sent in day order, as one stay's notices are."""
    return f"digest:{rpps}"


def slots(after: dt.datetime, hour: int) -> Iterator[tuple[dt.date, dt.datetime]]:
    """The recipient's digests due after ``after``, first to last: (day, when due, in UTC)."""
    local = after.astimezone(PARIS)
    day = local.date()
    while True:
        due = dt.datetime.combine(day, dt.time(hour), tzinfo=PARIS)
        if due > local:
            yield day, due.astimezone(dt.UTC)
        day += dt.timedelta(days=1)
