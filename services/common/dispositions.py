"""What a stay's discharge disposition (PV1-36) means beyond its words, for every service.

The death of the patient is told apart from a discharge: the GP is told in its own words (not
"sorti(e) d'hospitalisation"), and no Covid-19 follow-up is opened or left open for them. Engines
of the GHT send it as the PMSI mode de sortie 9 (décès), the one death code they use in PV1-36;
the PAM FR table of discharge circumstances has none.
"""

from __future__ import annotations

DEATH_DISPOSITIONS = frozenset({"9"})


def is_death(disposition: str | None) -> bool:
    return disposition is not None and disposition.strip() in DEATH_DISPOSITIONS
