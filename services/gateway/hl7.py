"""HL7 v2 messages: delimiters from MSH, character set from MSH-18, escape sequences, timestamps.

Pure parsing, no I/O. A message is read in two steps: the MSH segment first (its delimiters and
MSH-18 are ASCII whatever the character set), then the whole message decoded with the character
set MSH-18 names. Values are split and unescaped only when asked for, so reading the few fields
the gateway needs stays cheap. Problems are raised as ``MessageError`` carrying what an ERR
segment needs: the HL7 error code (table 0357) and where the problem is.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import Enum

SEGMENT_END = re.compile(r"\r\n|\r|\n")
_SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_TIMESTAMP = re.compile(
    r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?(?:([+-])(\d{2})(\d{2}))?$"
)
_UTF8_BOM = b"\xef\xbb\xbf"
# C0 controls and DEL. C1 (U+0080-U+009F) is left alone: engines that declare 8859/1 but write
# windows-1252 send "œ" as 0x9C, which reads as U+009C.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# HL7 table 0211 (MSH-18) → Python codec. Sloppy spellings seen in the field are accepted too.
CHARSETS: dict[str, str] = {
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    **{f"8859/{part}": f"iso8859-{part}" for part in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
}
# With MSH-18 empty the standard says ASCII, but French engines send accented names anyway: read
# UTF-8 when the bytes are valid UTF-8 (ASCII is a subset), else 8859/1 (which reads any byte).
DEFAULT_CODECS = ("utf-8", "iso8859-1")

# Formatting escapes (\.br\ and friends) for text fields; line breaks kept, layout dropped.
_FORMATTING = {".br": "\n", ".sp": "\n"}

NULL = '""'
"""HL7's null: "this value is deleted / empty" (v2.5 2.5.3). A field, repetition, component or
subcomponent sent as ``""`` reads as empty through every accessor below, so no value downstream
is ever the two quotes themselves (a unit named ``""``)."""


class ErrorCode(Enum):
    """HL7 table 0357, the message error condition codes used in ERR-3."""

    SEGMENT_SEQUENCE = ("100", "Segment sequence error")
    REQUIRED_FIELD_MISSING = ("101", "Required field missing")
    DATA_TYPE = ("102", "Data type error")
    TABLE_VALUE_NOT_FOUND = ("103", "Table value not found")
    UNSUPPORTED_MESSAGE_TYPE = ("200", "Unsupported message type")
    UNSUPPORTED_EVENT_CODE = ("201", "Unsupported event code")
    UNSUPPORTED_PROCESSING_ID = ("202", "Unsupported processing id")
    UNSUPPORTED_VERSION_ID = ("203", "Unsupported version id")
    INTERNAL_ERROR = ("207", "Application internal error")

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def text(self) -> str:
        return self.value[1]


@dataclass(frozen=True)
class Location:
    """Where a problem is (ERR-2): segment, its occurrence, field, repetition, component."""

    segment: str
    field: int | None = None
    component: int | None = None
    sequence: int = 1
    repetition: int | None = None

    def erl(self) -> list[str]:
        """The ERL components: segment id, sequence, field, repetition, component."""
        parts = [self.segment, str(self.sequence)]
        if self.field is not None:
            parts += [str(self.field), str(self.repetition or 1)]
            if self.component is not None:
                parts.append(str(self.component))
        return parts

    def __str__(self) -> str:
        text = self.segment
        if self.field is not None:
            text += f"-{self.field}"
            if self.component is not None:
                text += f".{self.component}"
        return text


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a message, as an ERR segment reports it."""

    code: ErrorCode
    text: str
    location: Location | None = None
    severity: str = "E"
    """E error, W warning (the message was accepted without the value)."""


class MessageError(Exception):
    """The message cannot be accepted. ``rejected`` means AR (envelope), else AE (content)."""

    def __init__(
        self,
        code: ErrorCode,
        text: str,
        location: Location | None = None,
        *,
        rejected: bool = False,
    ) -> None:
        super().__init__(text)
        self.problem = Problem(code, text, location)
        self.rejected = rejected


@dataclass(frozen=True)
class Delimiters:
    """The separators and escape character of one message (MSH-1 and MSH-2)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def encoding_characters(self) -> str:
        return f"{self.component}{self.repetition}{self.escape}{self.subcomponent}"

    def escape_text(self, text: str) -> str:
        """Escape a value so that it can be written in a field with these delimiters."""
        escaped = text.replace(self.escape, f"{self.escape}E{self.escape}")
        for char, letter in (
            (self.field, "F"),
            (self.component, "S"),
            (self.subcomponent, "T"),
            (self.repetition, "R"),
        ):
            escaped = escaped.replace(char, f"{self.escape}{letter}{self.escape}")
        return escaped.replace("\r", f"{self.escape}X0D{self.escape}").replace(
            "\n", f"{self.escape}.br{self.escape}"
        )


@dataclass(frozen=True)
class Dialect:
    """What reading a value needs: the delimiters, and the codec for ``\\X..\\`` hex escapes."""

    delimiters: Delimiters
    codec: str


def unescape(text: str, dialect: Dialect) -> str:
    """Resolve escape sequences; an unknown or unterminated one is kept as it was sent."""
    escape = dialect.delimiters.escape
    if escape not in text:
        return text
    out: list[str] = []
    position = 0
    while position < len(text):
        start = text.find(escape, position)
        if start < 0:
            out.append(text[position:])
            break
        out.append(text[position:start])
        end = text.find(escape, start + 1)
        if end < 0:
            out.append(text[start:])
            break
        replacement = _escape_value(text[start + 1 : end], dialect)
        out.append(text[start : end + 1] if replacement is None else replacement)
        position = end + 1
    return "".join(out)


def _escape_value(sequence: str, dialect: Dialect) -> str | None:
    delimiters = dialect.delimiters
    simple = {
        "F": delimiters.field,
        "S": delimiters.component,
        "T": delimiters.subcomponent,
        "R": delimiters.repetition,
        "E": delimiters.escape,
        "H": "",  # start and end of highlighting: no meaning once stored
        "N": "",
    }
    if sequence in simple:
        return simple[sequence]
    if sequence.startswith("X") and len(sequence) > 1:
        try:
            return bytes.fromhex(sequence[1:]).decode(dialect.codec, errors="replace")
        except ValueError:
            return None
    lowered = sequence.lower()
    if lowered in _FORMATTING:
        return _FORMATTING[lowered]
    if lowered[:3] in {".in", ".ti", ".sk", ".ce", ".fi", ".nf"}:
        return ""
    if sequence[:1] in {"C", "M", "Z"} and len(sequence) > 1:
        # Character set switches and local escapes: nothing sensible to substitute.
        return ""
    return None


def control_character(text: str) -> str | None:
    """The first C0 control character or DEL in ``text``, or None when it has none."""
    found = _CONTROL.search(text)
    return found.group() if found else None


class Repetition:
    """One occurrence of a field, split into components and subcomponents on demand."""

    __slots__ = ("_components", "_dialect", "raw")

    def __init__(self, raw: str, dialect: Dialect) -> None:
        self.raw = raw
        self._dialect = dialect
        self._components: list[str] | None = None

    def component(self, component: int = 1, subcomponent: int = 1) -> str:
        """The unescaped value, stripped; empty when absent."""
        if self._components is None:
            self._components = self.raw.split(self._dialect.delimiters.component)
        if component > len(self._components):
            return ""
        text = self._components[component - 1]
        delimiters = self._dialect.delimiters
        if delimiters.subcomponent in text:
            parts = text.split(delimiters.subcomponent)
            if subcomponent > len(parts):
                return ""
            text = parts[subcomponent - 1]
        elif subcomponent > 1:
            return ""
        text = text.strip()
        if text == NULL:
            return ""
        return unescape(text, self._dialect).strip() if delimiters.escape in text else text

    def components(self) -> list[str]:
        """Every component unescaped and unstripped, subcomponents left joined: what a check
        of the whole value needs."""
        return [
            unescape(text, self._dialect)
            for text in self.raw.split(self._dialect.delimiters.component)
        ]

    def __bool__(self) -> bool:
        return bool(self.raw.strip()) and self.raw.strip() != NULL


class Segment:
    """One segment. ``raw(n)`` is field n as numbered by HL7 (for MSH, MSH-1 is the separator)."""

    __slots__ = ("_dialect", "_fields", "_split", "name", "sequence")

    def __init__(self, name: str, fields: list[str], dialect: Dialect, sequence: int) -> None:
        self.name = name
        self._fields = fields
        self._dialect = dialect
        self._split: dict[int, list[Repetition]] = {}
        self.sequence = sequence
        """1 for the first segment of this name in the message, 2 for the second..."""

    @property
    def delimiters(self) -> Delimiters:
        return self._dialect.delimiters

    def raw(self, field: int) -> str:
        return self._fields[field] if 0 < field < len(self._fields) else ""

    def repetitions(self, field: int) -> list[Repetition]:
        split = self._split.get(field)
        if split is None:
            raw = self.raw(field)
            separator = self._dialect.delimiters.repetition
            # A repetition that is only the null carries no value: it is left out, like an
            # empty one (a whole field sent as "" therefore has no repetition).
            split = [
                Repetition(part, self._dialect)
                for part in raw.split(separator)
                if part and part.strip() != NULL
            ]
            self._split[field] = split
        return split

    def unescaped(self, field: int) -> str:
        """The whole field unescaped, delimiters and all: enough to test every value at once."""
        raw = self.raw(field)
        return unescape(raw, self._dialect) if self._dialect.delimiters.escape in raw else raw

    def get(self, field: int, component: int = 1, subcomponent: int = 1) -> str:
        """First repetition's unescaped component; empty when absent."""
        repetitions = self.repetitions(field)
        return repetitions[0].component(component, subcomponent) if repetitions else ""

    def location(self, field: int | None = None, component: int | None = None) -> Location:
        return Location(self.name, field, component, sequence=self.sequence)


@dataclass(frozen=True)
class Message:
    segments: list[Segment]
    delimiters: Delimiters
    codec: str
    """The Python codec the bytes were decoded with."""
    charset: str
    """MSH-18 as sent (empty when absent)."""

    @property
    def header(self) -> Segment:
        return self.segments[0]

    def first(self, name: str) -> Segment | None:
        return next((segment for segment in self.segments if segment.name == name), None)

    def all(self, name: str) -> list[Segment]:
        return [segment for segment in self.segments if segment.name == name]


def parse_header(raw: bytes) -> Segment:
    """Only the MSH segment, decoded as 8859/1: enough to answer a message that fails later."""
    text, delimiters = _header_text(raw)
    line = SEGMENT_END.split(text, maxsplit=1)[0]
    return _segment(line, Dialect(delimiters, "iso8859-1"), 1)


def parse(raw: bytes) -> Message:
    """Parse a whole message; raises ``MessageError`` when it cannot be read."""
    latin, delimiters = _header_text(raw)
    header = _segment(SEGMENT_END.split(latin, maxsplit=1)[0], Dialect(delimiters, "ascii"), 1)
    charset = header.get(18)
    body = raw.lstrip(b" \t\r\n")
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM) :]
        charset = charset or "UNICODE UTF-8"
    text, codec = _decode(body, charset)
    # A header glued to the end of a segment (a sender that did not end its last segment before
    # the next message) still starts a segment: MSH-1 and MSH-2 as sent, unescaped, cannot be
    # part of a field's value.
    signature = latin[: latin.index(delimiters.field, 4) + 1]
    text = text.replace(signature, "\r" + signature)
    dialect = Dialect(delimiters, codec)
    segments: list[Segment] = []
    seen: dict[str, int] = {}
    for line in SEGMENT_END.split(text):
        if not line.strip():
            continue  # blank lines and trailing whitespace from sloppy senders
        name = line[:3]
        if not _SEGMENT_NAME.match(name) or (len(line) > 3 and line[3] != delimiters.field):
            raise MessageError(
                ErrorCode.SEGMENT_SEQUENCE,
                f"segment {len(segments) + 1} does not start with a segment name and a field "
                f"separator",
                Location(name if _SEGMENT_NAME.match(name) else "MSH"),
            )
        seen[name] = seen.get(name, 0) + 1
        segments.append(_segment(line, dialect, seen[name]))
    return Message(segments, delimiters, codec, charset)


def _header_text(raw: bytes) -> tuple[str, Delimiters]:
    body = raw.lstrip(b" \t\r\n")
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM) :]
    text = body.decode("iso8859-1")
    if not text.startswith("MSH") or len(text) < 8:
        raise MessageError(
            ErrorCode.SEGMENT_SEQUENCE,
            "the message does not start with an MSH segment",
            Location("MSH"),
            rejected=True,
        )
    field = text[3]
    end = text.find(field, 4)
    encoding = text[4:end] if end > 0 else ""
    characters = [field, *encoding[:4]]
    if (
        len(encoding) < 4
        or len(set(characters)) != 5
        or any(char.isalnum() or char.isspace() for char in characters)
    ):
        raise MessageError(
            ErrorCode.DATA_TYPE,
            "MSH-1 and MSH-2 must give five distinct delimiter characters",
            Location("MSH", 2),
            rejected=True,
        )
    return text, Delimiters(field, encoding[0], encoding[1], encoding[2], encoding[3])


def _segment(line: str, dialect: Dialect, sequence: int) -> Segment:
    name = line[:3]
    parts = line.split(dialect.delimiters.field)
    if name == "MSH":
        # MSH-1 is the field separator itself: MSH-n is parts[n - 1], shifted to fields[n].
        parts = ["MSH", dialect.delimiters.field, *parts[1:]]
    return Segment(name, parts, dialect, sequence)


def codec_for(charset: str) -> str | None:
    """The Python codec for an MSH-18 value, or None when the gateway does not know it."""
    return CHARSETS.get(" ".join(charset.upper().split()))


def _decode(body: bytes, charset: str) -> tuple[str, str]:
    if not charset:
        for default in DEFAULT_CODECS:
            try:
                return body.decode(default), default
            except UnicodeDecodeError:
                continue
    codec = codec_for(charset)
    if codec is None:
        raise MessageError(
            ErrorCode.TABLE_VALUE_NOT_FOUND,
            f"MSH-18 character set {charset!r} is not supported (ASCII, 8859/1, 8859/15, "
            f"UNICODE UTF-8)",
            Location("MSH", 18),
            rejected=True,
        )
    try:
        return body.decode(codec), codec
    except UnicodeDecodeError as error:
        raise MessageError(
            ErrorCode.DATA_TYPE,
            f"byte {error.start} is not valid {charset} (MSH-18)",
            Location("MSH", 18),
        ) from None


def parse_timestamp(value: str, timezone: dt.tzinfo) -> dt.datetime:
    """An HL7 DTM/TS value (``YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]``) as an aware datetime.

    Without an offset the time is the establishment's local time (``timezone``).
    """
    match = _TIMESTAMP.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not an HL7 timestamp")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    zone: dt.tzinfo = timezone
    if sign:
        offset = dt.timedelta(hours=int(off_h), minutes=int(off_m))
        zone = dt.timezone(offset if sign == "+" else -offset)
    micro = int((fraction or "0").ljust(6, "0")[:6])
    return dt.datetime(
        int(year),
        int(month or 1),
        int(day or 1),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        micro,
        tzinfo=zone,
    )


def parse_date(value: str) -> dt.date:
    """The date part of an HL7 DT/TS value."""
    return parse_timestamp(value, dt.UTC).date()
