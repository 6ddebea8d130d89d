"""The choices a simulated day gives some of the directory sample's GPs, so that a run shows
digests and discharges-only notices beside real-time ones.

Deterministic: the same sample gives the same groups (one GP in sixteen each, by RPPS order).
The digest hour is the default 18:00 (Europe/Paris); a simulated day is replayed in minutes,
whatever the wall clock says, so ``make run`` sends every waiting digest at the end of the day
(``notify.send_digests_now()``) rather than wait for the hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.common.preferences import DEFAULT_DIGEST_HOUR
from services.simulator.model import Practitioner

EVERY = 16


@dataclass(frozen=True)
class ChoiceGroup:
    """GPs given the same choices, as ``python -m services.directory preferences`` sets them."""

    name: str
    options: tuple[str, ...]
    rpps: tuple[str, ...]

    def command(self) -> list[str]:
        return ["preferences", *self.rpps, *self.options]


def choice_groups(gps: Sequence[Practitioner]) -> list[ChoiceGroup]:
    ordered = sorted(item.id for item in gps)
    everything = ("--kinds", "admission,transfer,discharge,correction")
    return [
        ChoiceGroup(
            "daily digest",
            ("--mode", "digest", "--digest-hour", str(DEFAULT_DIGEST_HOUR), *everything),
            tuple(ordered[0::EVERY]),
        ),
        ChoiceGroup("discharges only", ("--mode", "discharges"), tuple(ordered[5::EVERY])),
        ChoiceGroup(
            "real time, transfers included",
            ("--mode", "realtime", *everything),
            tuple(ordered[10::EVERY]),
        ),
    ]
