"""The sample GPs whose personal mailbox bounces in a simulated day, so that a run shows the
fallback chain at work: their notices bounce, then go to their practice's mailbox.

Deterministic for a given day: among the sample's GPs with a practice mailbox behind their
personal one (``services.directory.sample.practice_backed_gps``) and no choice of a digest or of
discharges only (``preferences``, so that every deferred event still reaches its one digest),
the ``BOUNCING`` whose patients the day names most often. ``make run`` lists their personal
addresses in the stack's SMTP server's bounce file.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

from services.directory.sample import PracticeBackedGp, practice_backed_gps
from services.simulator.model import AdtMessage
from services.simulator.practitioners import directory_gps
from services.simulator.preferences import choice_groups

BOUNCING = 2


def bouncing_gps(messages: Iterable[AdtMessage], count: int = BOUNCING) -> list[PracticeBackedGp]:
    chosen = {rpps for group in choice_groups(directory_gps()) for rpps in group.rpps}
    named = collections.Counter(
        message.patient.gp.id for message in messages if message.patient.gp is not None
    )
    eligible = [gp for gp in practice_backed_gps() if gp.rpps not in chosen]
    return sorted(eligible, key=lambda gp: (-named[gp.rpps], gp.rpps))[:count]
