"""What analytics counts (pure logic, no Kafka): the observations each input record yields, the
windows they fall in, the records published for analysts, and which events come too late.

An observation is one thing to count once: a stay event under its dimensions, a notice that
reached a final status, a discharge with its Covid-19 status. Its ``identity`` says what "once"
means, and the count of a window is the number of distinct identities seen in it, so a record
read twice (at-least-once delivery, a replay after a crash) never counts twice; see
``WindowCount``.

A discharge is counted under its latest Covid-19 status: a correction moves it, a cancellation
removes it. Its identity is the movement, and each discharge event says, for every status,
whether the movement is there, as of the event's receipt (``version``); the latest word wins
whatever order the words arrive in (``newer_word``).

Counts are of series: a metric, an establishment and the values of its dimensions, which are
the fields of ``harpicoop.AnalyticsCount`` named alike. No patient data enters an observation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.common import records
from services.common.movements import movement_key
from services.common.records import (
    Action,
    AdmissionMode,
    AnalyticsCount,
    CovidStatus,
    DeliveryStatus,
    EventKind,
    NotificationStatus,
    StayEvent,
)
from services.common.schemas import expanded_schema_json
from services.common.skip_reasons import reason_code

UTC = dt.UTC

STAY_EVENTS = "stay_events"
"""Every deduplicated stay event, whether a GP could be told of it or not."""
UNROUTABLE_STAY_EVENTS = "unroutable_stay_events"
"""The stay events no GP could receive (``stays.unroutable``): a part of ``stay_events``."""
COVID_DISCHARGES = "covid_discharges"
"""Discharges by their latest Covid-19 status (corrections move them, cancellations remove them)."""
NOTIFICATIONS = "notifications"
"""Notices by final delivery status: SENT, FAILED or SKIPPED, each notice once per status."""
SKIPPED_NOTIFICATIONS = "skipped_notifications"
"""Skipped notices by reason (its code, never the detail itself) and notice kind: a part of
``notifications``, what a data-protection officer asks of protections and objections."""

FINAL_DELIVERY_STATUSES = frozenset(
    {DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED}
)

COVID_STATUSES: tuple[str, ...] = tuple(
    json.loads(expanded_schema_json("harpicoop.CovidStatus"))["symbols"]
)

DIMENSIONS = (
    "event_kind",
    "action",
    "admission_mode",
    "delivery_status",
    "covid_status",
    "skip_reason",
    "notice_kind",
)
"""The dimension fields of ``AnalyticsCount``, in its order; a series sets some of them."""

_DIMENSION_TYPES: dict[str, Any] = {
    "event_kind": EventKind,
    "action": Action,
    "admission_mode": AdmissionMode,
    "delivery_status": DeliveryStatus,
    "covid_status": CovidStatus,
}
"""The dimensions the schema types as enums: an observation holds their symbols as strings."""


class Granularity(StrEnum):
    HOUR = "HOUR"
    DAY = "DAY"

    @property
    def seconds(self) -> int:
        return 3600 if self is Granularity.HOUR else 86_400


def epoch_ms(moment: dt.datetime | int) -> int:
    """Avro timestamp-millis as the decoder gives it (an aware datetime), in milliseconds."""
    if isinstance(moment, int):
        return moment
    return round(moment.timestamp() * 1000)


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Observation:
    metric: str
    establishment: str
    dimensions: tuple[tuple[str, str], ...]
    """(AnalyticsCount field, value) pairs, in the order of ``DIMENSIONS``."""
    identity: str
    """Two observations of one series with the same identity count once."""
    at_ms: int
    """Event time: when the movement happened, or when the notice reached its status."""
    present: bool | None = None
    """None: the identity counts once seen. True or False: whether it is in the series now, as
    of ``version`` (the latest word on it wins)."""
    version: int = 0

    @property
    def series(self) -> str:
        """The key of the series: metric, establishment and dimensions."""
        return "|".join([self.metric, self.establishment, *_dimension_parts(self.dimensions)])

    @property
    def table_key(self) -> str:
        """The series' key in the tables, where a set of latest words is told apart."""
        return self.series if self.present is None else f"latest|{self.series}"


def stay_observations(event: StayEvent, *, routed: bool) -> list[Observation]:
    """What one deduplicated stay event counts in; ``routed`` is False for ``stays.unroutable``."""
    at_ms = epoch_ms(event.movement.occurred_at)
    establishment = event.establishment
    event_id = event.event_id
    dimensions = (
        ("event_kind", event.kind.value),
        ("action", event.action.value),
        ("admission_mode", event.stay.admission_mode.value),
    )
    # The same event id in both stay topics (enriched again after a directory update) is
    # one stay event: the identity is the event id whatever the topic.
    found = [Observation(STAY_EVENTS, establishment, dimensions, event_id, at_ms)]
    if not routed:
        unroutable = Observation(UNROUTABLE_STAY_EVENTS, establishment, dimensions, event_id, at_ms)
        found.append(unroutable)
    if event.kind is EventKind.DISCHARGE:
        found += discharge_observations(event, at_ms)
    return found


def discharge_observations(event: StayEvent, at_ms: int) -> list[Observation]:
    """For every Covid-19 status, whether the discharge is there now: under its status when
    inserted or corrected, nowhere when cancelled."""
    movement = movement_key(event)
    status = None if event.action is Action.CANCEL else event.covid_status.value
    version = epoch_ms(event.received_at)
    return [
        Observation(
            COVID_DISCHARGES,
            event.establishment,
            (("covid_status", symbol),),
            movement,
            at_ms,
            present=symbol == status,
            version=version,
        )
        for symbol in COVID_STATUSES
    ]


def status_observations(status: NotificationStatus) -> list[Observation]:
    """A final delivery status counts once per notice and status; RETRYING is not an outcome."""
    if status.status not in FINAL_DELIVERY_STATUSES:
        return []
    at_ms = epoch_ms(status.at)
    observations = [
        Observation(
            NOTIFICATIONS,
            status.establishment,
            (("delivery_status", status.status.value),),
            f"{status.notification_id}|{status.status}",
            at_ms,
        )
    ]
    if status.status is DeliveryStatus.SKIPPED:
        # The reason's code, not the detail: a closed set of words, whatever a detail may say.
        observations.append(
            Observation(
                SKIPPED_NOTIFICATIONS,
                status.establishment,
                (
                    ("skip_reason", reason_code(status.detail)),
                    ("notice_kind", status.kind.value),
                ),
                status.notification_id,
                at_ms,
            )
        )
    return observations


def window_start_ms(at_ms: int, granularity: Granularity) -> int:
    """Windows are aligned on UTC (a DAY runs from midnight UTC); faust's tumbling windows agree."""
    size = granularity.seconds * 1000
    return at_ms - at_ms % size


def windows_of(observation: Observation) -> list[tuple[Granularity, int]]:
    """The windows ``observation`` counts in (granularity, start), after checking that a count
    can be published for each: an event time no ``AnalyticsCount`` can carry, or a word without
    a version, raises here (``OverflowError``, ``ValueError``), where its record can be
    dead-lettered alone, rather than in the middle of a batch."""
    found = [(granularity, window_start_ms(observation.at_ms, granularity)) for granularity in _ALL]
    # The day ends last: if its end can be written, every bound can.
    dt.datetime.fromtimestamp((found[-1][1] + Granularity.DAY.seconds * 1000) / 1000, UTC)
    if observation.present is not None:
        newer_word(None, observation.version, observation.present)
    return found


_ALL = (Granularity.HOUR, Granularity.DAY)


def count_record(
    observation: Observation,
    granularity: Granularity,
    window_start: int,
    count: int,
    updated_at_ms: int,
) -> AnalyticsCount:
    """The count of one series in one window."""
    dimensions: dict[str, Any] = {
        name: _DIMENSION_TYPES[name](value) if name in _DIMENSION_TYPES else value
        for name, value in observation.dimensions
    }
    return AnalyticsCount(
        metric=observation.metric,
        granularity=records.Granularity(granularity.value),
        window_start=dt.datetime.fromtimestamp(window_start / 1000, UTC),
        window_end=dt.datetime.fromtimestamp(
            (window_start + granularity.seconds * 1000) / 1000, UTC
        ),
        establishment=observation.establishment,
        count=count,
        updated_at=dt.datetime.fromtimestamp(updated_at_ms / 1000, UTC),
        **dimensions,
    )


def count_key(record: AnalyticsCount) -> str:
    """The key of a published count: metric, granularity, window start, establishment and the
    dimensions the series sets."""
    dimensions = [
        (name, value) for name in DIMENSIONS if (value := getattr(record, name)) is not None
    ]
    return "|".join(
        [
            record.metric,
            record.granularity.value,
            iso(epoch_ms(record.window_start)),
            record.establishment,
            *_dimension_parts(dimensions),
        ]
    )


def _dimension_parts(dimensions: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{name}={value}" for name, value in dimensions]


DIGEST_SIZE = 8
_WORD = struct.Struct(">8sq")
"""A chunk entry: an identity's digest and its word, a signed version (0 for an identity that
counts once seen; for a latest word, its version, negative when it says "absent")."""


def identity_digest(identity: str) -> bytes:
    """What the tables keep of an identity: 8 bytes of BLAKE2b, free of any id. At the volumes
    of a hospital group (tens of thousands of identities per window at most) a collision is out
    of reach (p < 1e-10)."""
    return hashlib.blake2b(identity.encode("utf-8"), digest_size=DIGEST_SIZE).digest()


def newer_word(kept: int | None, version: int, present: bool) -> bool:
    """Whether a word (``version``, ``present``) replaces the one kept (signed, None if none).
    An older word changes nothing, so words may come in any order and any number of times; at
    equal versions "absent" wins (a cancellation received in the same millisecond as its
    movement)."""
    if version < 1:
        raise ValueError(f"version {version}: a word needs a version of 1 or more")
    if kept is None:
        return True
    return not (abs(kept) > version or (abs(kept) == version and (kept < 0 or present)))


TAIL_LIMIT = 64
"""Members a head carries before they move to a chunk of their own: a head stays under about
a kilobyte, whatever the size of its window."""


@dataclass
class WindowCount:
    """The count of one series in one window, and what it takes to keep it exact.

    In the table it is a *head*: the count, whether the series ever had anyone present, the
    high-water mark of each input partition, the number of chunks, and the *tail*, the members
    most recently counted. Once the tail outgrows ``TAIL_LIMIT`` it is written as a *chunk* of
    its own, which is never written again. A batch that changes the window writes its head once
    (and a chunk now and then), whatever the size of the window: the members already in chunks
    are not written again. ``high_water`` says which records the head has taken into account:
    every record of an input partition up to that offset that falls in this window.
    """

    latest: bool
    """Latest words on identities (present or absent, by version), or identities that count
    once seen."""
    count: int = 0
    ever_present: bool = False
    high_water: dict[str, int] = field(default_factory=dict)
    chunks: int = 0
    members: dict[bytes, int] = field(default_factory=dict)
    """Digest -> word (0 for an identity that counts once seen)."""
    tail: dict[bytes, int] = field(default_factory=dict)
    restated: bool = False

    @property
    def shown(self) -> bool:
        """A series of latest words is published once someone was present in it (only
        "absent" words so far: nothing that analysts would see)."""
        return self.ever_present or not self.latest

    def taken_into_account(self, source: str, offset: int) -> bool:
        return offset <= self.high_water.get(source, -1)

    def apply(self, observation: Observation, source: str, offset: int) -> None:
        """Count ``observation``, read at ``offset`` of ``source``, not yet taken into account."""
        digest = identity_digest(observation.identity)
        kept = self.members.get(digest)
        if observation.present is None:
            if kept is None:
                self._keep(digest, 0)
                self.count += 1
        elif newer_word(kept, observation.version, observation.present):
            signed = observation.version if observation.present else -observation.version
            self.count += (signed > 0) - (kept is not None and kept > 0)
            self.ever_present = self.ever_present or observation.present
            self._keep(digest, signed)
        self.high_water[source] = offset

    def restate(self) -> None:
        """A record taken into account before a restart, read again. The local store may hold
        writes that a crash kept from the changelog (they came from records not committed, read
        again now): every member is written again, once, so that a store rebuilt from the
        changelog later lacks none of them."""
        if not self.restated:
            self.tail = dict(self.members)
            self.restated = True

    def _keep(self, digest: bytes, word: int) -> None:
        self.members[digest] = word
        self.tail[digest] = word

    def seal(self) -> tuple[bytes | None, bytes]:
        """The chunk to write first, if the tail has outgrown the head (else None), then the
        head."""
        chunk = None
        if len(self.tail) > TAIL_LIMIT:
            chunk = _pack(self.tail)
            self.tail = {}
            self.chunks += 1
        state = [self.count, self.ever_present, self.chunks, self.high_water]
        # JSON never holds a raw NUL: it ends the head's state, the tail follows.
        head = json.dumps(state, separators=(",", ":")).encode("utf-8") + b"\0" + _pack(self.tail)
        return chunk, head

    @classmethod
    def from_head(cls, latest: bool, head: bytes) -> WindowCount:
        window = cls(latest)
        if head:
            state, _, tail = head.partition(b"\0")
            count, ever_present, chunks, high_water = json.loads(state)
            window.count, window.ever_present, window.chunks = count, ever_present, chunks
            window.high_water = {str(source): int(offset) for source, offset in high_water.items()}
            window.tail = dict(_WORD.iter_unpack(tail))
        return window

    def add_chunks(self, chunks: Iterable[bytes]) -> None:
        """The chunks read back, in the order they were written; the tail is newer than all."""
        for chunk in chunks:
            self.members.update(_WORD.iter_unpack(chunk))
        self.members.update(self.tail)


def _pack(entries: Mapping[bytes, int]) -> bytes:
    return b"".join(_WORD.pack(digest, word) for digest, word in entries.items())


class Lateness(StrEnum):
    ON_TIME = "on_time"
    BEYOND_GRACE = "beyond_grace"
    """More than the grace period behind the latest event time of its input partition."""
    BEYOND_RETENTION = "beyond_retention"
    """So old that its windows may already have left the tables: counting it would restart
    a window from nothing and publish a smaller count over the true one."""


Source = tuple[str, int]
"""An input topic and partition: each has its own event time."""


@dataclass
class EventClock:
    """Event time per input partition, and the rule for late events.

    An event counts when it is no more than ``grace`` behind the latest event time seen on its
    partition, and when its windows are surely still in the tables: faust expires windows by the
    wall clock, ``expires`` after they end, so an event must be younger than ``expires`` less a
    day (the longest window). The latest event times are kept in memory: after a restart they
    are learnt again from the records read, which can only let a late event count, never make a
    counted one count twice.
    """

    grace: dt.timedelta
    expires: dt.timedelta
    clock_skew: dt.timedelta = dt.timedelta(minutes=5)
    """How far ahead of this machine's clock a sender's clock may run and still move time on."""
    latest_ms: dict[Source, int] = field(default_factory=dict)

    def oldest_counted_ms(self, now_ms: int) -> int:
        """The earliest event time that may still count: a window that ended before it takes
        no more events."""
        return now_ms - _ms(self.expires - dt.timedelta(days=1))

    def judge(self, source: Source, at_ms: int, now_ms: int) -> Lateness:
        latest = self.latest_ms.get(source)
        if at_ms < self.oldest_counted_ms(now_ms):
            verdict = Lateness.BEYOND_RETENTION
        elif latest is not None and at_ms < latest - _ms(self.grace):
            verdict = Lateness.BEYOND_GRACE
        else:
            verdict = Lateness.ON_TIME
        # A sender whose clock runs fast must not make everything after it look late.
        bounded = min(at_ms, now_ms + _ms(self.clock_skew))
        self.latest_ms[source] = bounded if latest is None else max(latest, bounded)
        return verdict


def _ms(delta: dt.timedelta) -> int:
    return round(delta.total_seconds() * 1000)
