"""What identifies a movement of a stay, for every service that keys on it.

An engine numbers its movements (ZBE-1, an HL7 EI) within its own numbering: the id in
component 1, the assigning authority in the following components. Engines number per stay as
well as per establishment (the ANS examples reuse movement 312 across five stays), and one
establishment may run several engines, each with its own numbering. A movement is therefore
identified by the stay it belongs to, the authority that numbered it and its id: two stays, or
two engines, that reuse a number never collide, in dedup, notify, covid or analytics.

The key is one string, readable in the ledger and the case table; its parts are escaped so
that no value, whatever it contains, can make two different movements share a key.
"""

from __future__ import annotations

from services.common.records import StayEvent

_SEPARATOR = "|"


def _escaped(part: str) -> str:
    return part.replace("%", "%25").replace(_SEPARATOR, "%7C")


def movement_key(event: StayEvent) -> str:
    """The movement's identity, from a StayEvent (or the StayEvent an enriched event embeds)."""
    movement = event.movement
    parts = (event.stay_key, movement.authority or "", movement.movement_id)
    return _SEPARATOR.join(_escaped(part) for part in parts)
