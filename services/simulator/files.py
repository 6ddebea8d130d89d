"""The day written to files instead of sent: one file per establishment, for inspection.

Each file holds the establishment's messages in send order, in its own charset (MSH-18), one
segment per line (``\\n`` instead of the wire's ``\\r``, which the gateway accepts as well).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from services.simulator.hl7 import SEGMENT_END, encode, render
from services.simulator.profiles import Profile
from services.simulator.scenario import Day


def write_day(day: Day, profiles: Sequence[Profile], folder: Path) -> dict[str, Path]:
    """Write ``<code>.hl7`` for every establishment; the paths written, by code."""
    folder.mkdir(parents=True, exist_ok=True)
    by_code = {profile.establishment.code: profile for profile in profiles}
    written: dict[str, Path] = {}
    for code, messages in day.messages.items():
        profile = by_code[code]
        path = folder / f"{code}.hl7"
        with open(path, "wb") as target:
            for message in messages:
                text = render(message, profile).replace(SEGMENT_END, "\n")
                target.write(encode(text, profile.charset))
        written[code] = path
    return written
