"""What analytics counts (pure logic, no Kafka): the observations each input record yields, the
windows they fall in, the records published for analysts, and which events come too late.

An observation is one thing to count once: a stay event under its dimensions, a notice that
reached a final status, a discharge with its Covid-19 status. Its ``identity`` says what "once"
means, and the count of a window is the number of distinct identities seen in it, so a record
read twice (at-least-once delivery, a replay after a crash) never counts twice; see ``IdSet``.

A discharge is counted under its latest Covid-19 status: a correction moves it, a cancellation
removes it. Its identity is the movement, and each discharge event says, for every status,
whether the movement is there, as of the event's receipt (``version``); the latest word wins
whatever order the words arrive in (``LatestIds``).

Counts are of series: a metric, an establishment and the values of its dimensions, which are
the fields of ``harpicoop.AnalyticsCount`` named alike. No patient data enters an observation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.common.movements import movement_key
from services.common.schemas import expanded_schema_json

UTC = dt.UTC

STAY_EVENTS = "stay_events"
"""Every deduplicated stay event, whether a GP could be told of it or not."""
UNROUTABLE_STAY_EVENTS = "unroutable_stay_events"
"""The stay events no GP could receive (``stays.unroutable``): a part of ``stay_events``."""
COVID_DISCHARGES = "covid_discharges"
"""Discharges by their latest Covid-19 status (corrections move them, cancellations remove them)."""
NOTIFICATIONS = "notifications"
"""Notices by final delivery status: SENT, FAILED or SKIPPED, each notice once per status."""

FINAL_DELIVERY_STATUSES = frozenset({"SENT", "FAILED", "SKIPPED"})

COVID_STATUSES: tuple[str, ...] = tuple(
    json.loads(expanded_schema_json("harpicoop.CovidStatus"))["symbols"]
)

DIMENSIONS = ("event_kind", "action", "admission_mode", "delivery_status", "covid_status")
"""The dimension fields of ``AnalyticsCount``, in its order; a series sets some of them."""


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

    def encode(self) -> bytes:
        return json.dumps(
            [
                self.metric,
                self.establishment,
                self.dimensions,
                self.identity,
                self.at_ms,
                self.present,
                self.version,
            ],
            separators=(",", ":"),
        ).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> Observation:
        # Observations written before ``present`` and ``version`` existed have five fields.
        metric, establishment, dimensions, identity, at_ms, *latest = json.loads(data)
        present, version = latest if latest else (None, 0)
        return cls(
            metric,
            establishment,
            tuple((str(name), str(value)) for name, value in dimensions),
            identity,
            int(at_ms),
            None if present is None else bool(present),
            int(version),
        )


def stay_observations(event: Mapping[str, Any], *, routed: bool) -> list[Observation]:
    """What one deduplicated stay event counts in; ``routed`` is False for ``stays.unroutable``."""
    at_ms = epoch_ms(event["movement"]["occurred_at"])
    establishment = event["establishment"]
    event_id = event["event_id"]
    dimensions = (
        ("event_kind", str(event["kind"])),
        ("action", str(event["action"])),
        ("admission_mode", str(event["stay"]["admission_mode"])),
    )
    # The same event id in both stay topics (enriched again after a directory update) is
    # one stay event: the identity is the event id whatever the topic.
    found = [Observation(STAY_EVENTS, establishment, dimensions, event_id, at_ms)]
    if not routed:
        unroutable = Observation(UNROUTABLE_STAY_EVENTS, establishment, dimensions, event_id, at_ms)
        found.append(unroutable)
    if event["kind"] == "DISCHARGE":
        found += discharge_observations(event, at_ms)
    return found


def discharge_observations(event: Mapping[str, Any], at_ms: int) -> list[Observation]:
    """For every Covid-19 status, whether the discharge is there now: under its status when
    inserted or corrected, nowhere when cancelled."""
    movement = movement_key(event)
    status = None if event["action"] == "CANCEL" else str(event["covid_status"])
    version = epoch_ms(event["received_at"])
    return [
        Observation(
            COVID_DISCHARGES,
            event["establishment"],
            (("covid_status", symbol),),
            movement,
            at_ms,
            present=symbol == status,
            version=version,
        )
        for symbol in COVID_STATUSES
    ]


def status_observations(status: Mapping[str, Any]) -> list[Observation]:
    """A final delivery status counts once per notice and status; RETRYING is not an outcome."""
    if status["status"] not in FINAL_DELIVERY_STATUSES:
        return []
    return [
        Observation(
            NOTIFICATIONS,
            status["establishment"],
            (("delivery_status", str(status["status"])),),
            f"{status['notification_id']}|{status['status']}",
            epoch_ms(status["at"]),
        )
    ]


def window_start_ms(at_ms: int, granularity: Granularity) -> int:
    """Windows are aligned on UTC (a DAY runs from midnight UTC); faust's tumbling windows agree."""
    size = granularity.seconds * 1000
    return at_ms - at_ms % size


def count_record(
    observation: Observation,
    granularity: Granularity,
    window_start: int,
    count: int,
    updated_at_ms: int,
) -> dict[str, Any]:
    """The ``harpicoop.AnalyticsCount`` value of one series in one window."""
    dimensions = dict(observation.dimensions)
    return {
        "metric": observation.metric,
        "granularity": granularity.value,
        "window_start": dt.datetime.fromtimestamp(window_start / 1000, UTC),
        "window_end": dt.datetime.fromtimestamp(
            (window_start + granularity.seconds * 1000) / 1000, UTC
        ),
        "establishment": observation.establishment,
        **{name: dimensions.get(name) for name in DIMENSIONS},
        "count": count,
        "updated_at": dt.datetime.fromtimestamp(updated_at_ms / 1000, UTC),
    }


def count_key(record: Mapping[str, Any]) -> str:
    """The key of a published count (an ``AnalyticsCount`` value): metric, granularity, window
    start, establishment and the dimensions the series sets."""
    dimensions = [(name, record[name]) for name in DIMENSIONS if record.get(name) is not None]
    return "|".join(
        [
            record["metric"],
            str(record["granularity"]),
            iso(epoch_ms(record["window_start"])),
            record["establishment"],
            *_dimension_parts(dimensions),
        ]
    )


def _dimension_parts(dimensions: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{name}={value}" for name, value in dimensions]


class IdSet:
    """The distinct identities of a series in a window, as table bytes: 8-byte BLAKE2b digests.

    Digests keep the tables small and free of any id; at the volumes of a hospital group (tens
    of thousands of identities per window at most) a collision is out of reach (p < 1e-10).
    """

    DIGEST_SIZE = 8

    @classmethod
    def digest(cls, identity: str) -> bytes:
        return hashlib.blake2b(identity.encode("utf-8"), digest_size=cls.DIGEST_SIZE).digest()

    @classmethod
    def add(cls, ids: bytes, identity: str) -> bytes:
        digest = cls.digest(identity)
        # bytes.find scans at C speed; a match must also sit on a digest boundary.
        found = ids.find(digest)
        while found != -1:
            if found % cls.DIGEST_SIZE == 0:
                return ids
            found = ids.find(digest, found + 1)
        return ids + digest

    @classmethod
    def count(cls, ids: bytes) -> int:
        return len(ids) // cls.DIGEST_SIZE


class LatestIds:
    """The latest word on each identity of a series in a window, as table bytes: a flag byte
    (1 once an identity has been present), then per identity its 8-byte BLAKE2b digest and the
    version of the latest word as a signed 8-byte integer, negative when it said "absent".

    A word older than the one kept changes nothing, so words may come in any order and any
    number of times; at equal versions "absent" wins (a cancellation received in the same
    millisecond as its movement).
    """

    ENTRY = IdSet.DIGEST_SIZE + 8

    @classmethod
    def apply(cls, ids: bytes, identity: str, version: int, present: bool) -> bytes:
        if version < 1:
            raise ValueError(f"version {version}: a word needs a version of 1 or more")
        ids = ids or b"\x00"
        digest = IdSet.digest(identity)
        signed = version if present else -version
        flag = b"\x01" if present or ids[0] else b"\x00"
        found = ids.find(digest, 1)
        while found != -1 and (found - 1) % cls.ENTRY:
            found = ids.find(digest, found + 1)
        if found == -1:
            return flag + ids[1:] + digest + signed.to_bytes(8, "big", signed=True)
        at = found + IdSet.DIGEST_SIZE
        kept = int.from_bytes(ids[at : at + 8], "big", signed=True)
        if abs(kept) > version or (abs(kept) == version and (kept < 0 or present)):
            return ids
        return flag + ids[1:at] + signed.to_bytes(8, "big", signed=True) + ids[at + 8 :]

    @classmethod
    def count(cls, ids: bytes) -> int:
        """The identities whose latest word says present."""
        return sum(
            1
            for at in range(1 + IdSet.DIGEST_SIZE, len(ids), cls.ENTRY)
            if int.from_bytes(ids[at : at + 8], "big", signed=True) > 0
        )

    @classmethod
    def ever_present(cls, ids: bytes) -> bool:
        """Whether an identity was ever present: a series never counted is not published."""
        return bool(ids) and ids[0] == 1


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

    def judge(self, source: Source, at_ms: int, now_ms: int) -> Lateness:
        latest = self.latest_ms.get(source)
        retention = self.expires - dt.timedelta(days=1)
        if at_ms < now_ms - _ms(retention):
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
