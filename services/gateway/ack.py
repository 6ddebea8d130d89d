"""HL7 acknowledgements: AA, AE, AR (original mode) or CA, CE, CR (enhanced-mode commit ACK).

An ACK echoes the message's control id (MSA-2) and says what is wrong in ERR segments (ERR-2
where, ERR-3 the HL7 error code, ERR-4 severity, ERR-8 in words). It is written with the
message's own delimiters and character set, so its header fields are echoed byte for byte.

Enhanced mode applies when MSH-15 or MSH-16 is valued. The gateway then sends the commit ACK
("safely stored") as MSH-15 asks (AL always, NE never, ER on error only, SU on success only); it
sends no application ACK, which would need a connection back to the engine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.gateway.hl7 import Delimiters, Problem, Segment, codec_for

APPLICATION = "HARPICOOP"
FACILITY = "GHT_SUD_LORRAINE"
DEFAULT_VERSION = "2.5"
# HL7 gave MSH its field 18 (the character set) in 2.3, MSH-9 its third component (the message
# structure) in 2.3.1, and ERR its fields 2 to 12 in 2.5; before that ERR-1 alone said where
# and what (segment^sequence^field^code&text&table). An ACK is written in the shape of the
# version it declares, the message's own.
CHARSET_SINCE = (2, 3)
STRUCTURE_SINCE = (2, 3, 1)
ERROR_FIELDS_SINCE = (2, 5)
COMMIT_CODES = {"AA": "CA", "AE": "CE", "AR": "CR"}


@dataclass(frozen=True)
class AckContext:
    """What an ACK echoes of the message it answers: MSH fields as sent, delimiters, codec."""

    delimiters: Delimiters
    codec: str
    header: Segment

    @property
    def accept_ack_type(self) -> str:
        return self.header.get(15).upper()

    @property
    def enhanced(self) -> bool:
        return bool(self.header.get(15) or self.header.get(16))


def code_to_send(context: AckContext | None, code: str) -> str | None:
    """The MSA-1 to answer with for an outcome (AA, AE, AR), or None when none is wanted."""
    if context is None or not context.enhanced:
        return code
    commit = COMMIT_CODES[code]
    wanted = {
        "NE": False,
        "ER": code != "AA",
        "SU": code == "AA",
    }.get(context.accept_ack_type, True)  # AL, empty or an unknown value: always
    return commit if wanted else None


def _declared_charset(sent: str, codec: str) -> str:
    """MSH-18 of the ACK: the message's own when the ACK is written in it, else the truth.

    A message whose bytes did not decode in its declared character set is answered in 8859/1
    (which reads any byte); declaring the sender's set then would make the ACK unreadable.
    """
    if codec_for(sent) == codec:
        return sent
    return {"iso8859-1": "8859/1", "utf-8": "UNICODE UTF-8"}.get(codec, "")


def _version(header: Segment | None) -> tuple[int, ...]:
    """MSH-12's version id as numbers, ``2.3.1`` as (2, 3, 1); the default when unreadable."""
    text = header.get(12) if header else ""
    try:
        return tuple(int(part) for part in (text or DEFAULT_VERSION).split("."))
    except ValueError:
        return tuple(int(part) for part in DEFAULT_VERSION.split("."))


def _err(problem: Problem, version: tuple[int, ...], delimiters: Delimiters) -> list[str]:
    """An ERR segment's fields for one problem, as the ACK's version lays ERR out."""
    comp, sub = delimiters.component, delimiters.subcomponent
    location = problem.location
    error = [problem.code.code, problem.code.text, "HL70357"]
    if version < ERROR_FIELDS_SINCE:
        # ERR-1 (ELD): segment, sequence, field, then the error as a CE in subcomponents.
        where = location.erl()[:3] if location else ["", "", ""]
        where += [""] * (3 - len(where))
        return ["ERR", comp.join([*where, sub.join(error)]).rstrip(comp)]
    return [
        "ERR",
        "",
        comp.join(delimiters.escape_text(part) for part in location.erl()) if location else "",
        comp.join(error),
        problem.severity,
        "",
        "",
        "",
        delimiters.escape_text(problem.text),
    ]


def build_ack(
    context: AckContext | None,
    code: str,
    problems: tuple[Problem, ...],
    *,
    control_id: str,
    now: dt.datetime,
) -> bytes:
    """The ACK message (without MLLP framing); ``code`` is what ``code_to_send`` returned."""
    delimiters = context.delimiters if context else Delimiters()
    codec = context.codec if context else "ascii"
    header = context.header if context else None
    sep = delimiters.field
    comp = delimiters.component

    def echoed(number: int) -> str:
        return header.raw(number) if header else ""

    trigger = header.get(9, 2) if header else ""
    version = _version(header)
    message_type = ["ACK", delimiters.escape_text(trigger)]
    if version >= STRUCTURE_SINCE:
        message_type.append("ACK")
    enhanced = context.enhanced if context else False
    msh = [
        "MSH",
        delimiters.encoding_characters,
        echoed(5) or APPLICATION,
        echoed(6) or FACILITY,
        echoed(3),
        echoed(4),
        now.strftime("%Y%m%d%H%M%S%z"),
        "",
        comp.join(message_type) if trigger else "ACK",
        delimiters.escape_text(control_id),
        echoed(11) or "P",
        echoed(12) or DEFAULT_VERSION,
        "",
        "",
        "NE" if enhanced else "",
        "NE" if enhanced else "",
        "",
        _declared_charset(echoed(18), codec) if version >= CHARSET_SINCE else "",
    ]
    errors = [problem for problem in problems if problem.severity == "E"]
    summary = delimiters.escape_text(errors[0].text) if errors else ""
    segments = [
        "MSH" + sep + sep.join(msh[1:]).rstrip(sep),
        sep.join(["MSA", code, echoed(10), summary]).rstrip(sep),
    ]
    segments += [sep.join(_err(problem, version, delimiters)) for problem in problems]
    return ("\r".join(segments) + "\r").encode(codec, errors="replace")
