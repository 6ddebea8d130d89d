"""ACKs read by an independent HL7 parser (hl7apy), which checks them against HL7's own
structure for the version they declare: our parser reading our ACKs would prove little."""

from __future__ import annotations

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.parser import get_message_info, parse_segments


def parse_ack(text: str, strict: bool = True) -> Message:
    """The ACK as hl7apy reads it; raises when it is not an ACK of its declared version.

    The structure is named ACK rather than taken from MSH-9: HL7 before 2.3.1 has no MSH-9.3,
    and an ACK to a message whose trigger could not be read has no MSH-9.2 to name it by.
    ``strict``: hl7apy's strict level (data types, lengths, cardinalities and required fields)
    and a structure validation; else its tolerant level, which still rejects what it cannot
    place in an ACK.
    """
    level = VALIDATION_LEVEL.STRICT if strict else VALIDATION_LEVEL.TOLERANT
    encoding, _structure, version = get_message_info(text)
    ack = Message("ACK", version=version, validation_level=level, encoding_chars=encoding)
    ack.children = parse_segments(text, ack.version, encoding, level, ack.reference, True)
    if strict:
        ack.validate()
    return ack
