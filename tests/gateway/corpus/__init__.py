"""Messages as others published them (ANS, the IHE PAM France extension, public projects'
samples), each with its source and the outcome the gateway owes it: ``manifest.toml`` says,
for every file, where it comes from (repository, path, commit), the ACK code expected and, for
a published movement, the event's key fields, and for a published merge, the patients it joins.

The files are the publishers' text. Two rewrites turn one into what an establishment of the GHT
would send, and nothing else is touched: segments end with ``\\r`` (the files keep the line
ends they were published with) and MSH-4 names a GHT establishment (``facility``; the
manifest's ``published_facility`` is what the publisher put there, checked on loading). Each
message is received when it says it was sent (MSH-7, in Paris time): the published examples
are years old, and the gateway refuses a movement dated more than a year before its receipt.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from services.common.establishments import establishments_by_facility

FOLDER = Path(__file__).parent
PARIS = ZoneInfo("Europe/Paris")
RECEIPT_DELAY = dt.timedelta(minutes=1)
"""How long after its MSH-7 each message is received."""
NO_DATE = dt.datetime(2026, 3, 2, 11, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class ExpectedEvent:
    """The key fields of the StayEvent a movement publishes, as the manifest states them."""

    kind: str
    action: str
    stay_key: str
    movement_id: str
    """ZBE-1's first component."""
    authority: str | None = None
    """ZBE-1's assigning authority (EI-2, else EI-3): with ``movement_id`` and the stay, what
    identifies the movement."""
    unit: str | None = None
    gp_rpps: str | None = None
    """The RPPS of the care team's GP (ROL ODRP), when the message routes one."""


@dataclass(frozen=True)
class ExpectedMerge:
    """The PatientMerge an A40 publishes: the surviving patient (PID-3) and the merged one
    (MRG-1), by IPP."""

    surviving_ipp: str
    merged_ipp: str


@dataclass(frozen=True)
class Published:
    """One corpus message: its source, the bytes the gateway gets, the outcome it owes."""

    name: str
    file: str
    repository: str
    path: str
    commit: str
    trigger: str
    facility: str
    ack: str
    """AA, AE or AR."""
    outcome: str
    """The archive's outcome: PUBLISHED, KEPT, IGNORED, ERROR or REJECTED."""
    raw: bytes
    received_at: dt.datetime
    control_id: str
    error_code: str | None = None
    """ERR-3 of the first ERR segment, for an AE or AR."""
    error_location: str | None = None
    """ERR-2 of the first ERR segment (e.g. ``ZBE^1^4``), for an AE or AR."""
    ack_control_id: str | None = None
    """MSA-2 expected when it is not ``control_id`` (an MSH whose delimiters cannot be read)."""
    ack_strict: bool = True
    """False when the ACK cannot pass hl7apy's strict structure check (``ack_note`` says why)."""
    ack_note: str = ""
    event: ExpectedEvent | None = None
    merge: ExpectedMerge | None = None
    note: str = ""
    defect: str = ""
    """A gateway shortcoming the expected outcome records instead of PAM FR's verdict."""

    @property
    def establishment(self) -> str:
        return establishments_by_facility()[self.facility].code

    @property
    def echoed_control_id(self) -> str:
        return self.control_id if self.ack_control_id is None else self.ack_control_id

    @property
    def event_id(self) -> str:
        return f"{self.establishment}:{self.control_id}"


def segments(data: bytes) -> list[bytes]:
    """The message's segments, whatever its published line ends (``\\r\\n``, ``\\n``, ``\\r``),
    without the empty lines some files end with. Bytes, as published: a file is in the
    character set its MSH-18 declares."""
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return [line for line in lines if line.strip()]


def _rewrite(data: bytes, published_facility: str, facility: str, name: str) -> list[bytes]:
    """The message's segments with MSH-4 set to ``facility`` (in the MSH segment, whatever its
    field separator), and the MSH's fields."""
    lines = segments(data)
    number = next(index for index, line in enumerate(lines) if line.startswith(b"MSH"))
    separator = lines[number][3:4]
    header = lines[number].split(separator)
    if header[3].decode("ascii") != published_facility:
        raise ValueError(
            f"{name}: MSH-4 is {header[3]!r}, the manifest says {published_facility!r}"
        )
    header[3] = facility.encode("ascii")
    lines[number] = separator.join(header)
    return lines


def _field(lines: list[bytes], number: int) -> str:
    """MSH-``number`` as text ("" when absent)."""
    header = next(line for line in lines if line.startswith(b"MSH"))
    fields = header.split(header[3:4])  # fields[0] is "MSH", fields[1] MSH-2
    return fields[number - 1].decode("ascii") if len(fields) >= number else ""


def _received_at(sent: str) -> dt.datetime:
    """MSH-7 (``YYYYMMDDHHMM[SS]``, Paris time) plus the receipt delay, in UTC; a message
    without one is received on the test messages' day."""
    if not sent:
        return NO_DATE
    digits = sent[:14].ljust(14, "0")
    local = dt.datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=PARIS)
    return (local + RECEIPT_DELAY).astimezone(dt.UTC)


def load(manifest: Path = FOLDER / "manifest.toml") -> list[Published]:
    entries = tomllib.loads(manifest.read_text("utf-8"))["message"]
    corpus = []
    for entry in entries:
        entry = dict(entry)
        file = entry.pop("file")
        name = entry.pop("name", Path(file).stem)
        lines = _rewrite(
            (FOLDER / file).read_bytes(), entry.pop("published_facility"), entry["facility"], name
        )
        event = entry.pop("event", None)
        merge = entry.pop("merge", None)
        corpus.append(
            Published(
                name=name,
                file=file,
                raw=b"\r".join(lines),
                received_at=_received_at(_field(lines, 7)),
                control_id=_field(lines, 10),
                event=ExpectedEvent(**event) if event else None,
                merge=ExpectedMerge(**merge) if merge else None,
                **entry,
            )
        )
    return corpus


CORPUS = load()
