"""The analytics worker as production runs it (``python -m services.analytics``), against the real
stack: the counts on the ``analytics.*`` topics and in PostgreSQL add up to what was sent in,
through duplicates, late events, a poison record and a crash that loses the worker's local state.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.admin import AdminClient

from services.analytics.counting import Granularity, Observation, count_record
from services.common.deadletter import read_error_headers
from services.common.movements import movement_key
from services.common.records import StayEvent
from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.common.skip_reasons import reason_code
from tests.analytics.support import (
    Published,
    Row,
    analytics_env,
    delete_internal_topics,
    enriched,
    sql_counts,
    status,
    stay,
    unroutable,
)
from tests.support import ServiceProcess, dead_letters_on, eventually, poison_events

pytestmark = pytest.mark.integration

UTC = dt.UTC
HOUR = dt.timedelta(hours=1)
GRACE = 3 * HOUR
FINAL_STATUSES = {"SENT", "FAILED", "SKIPPED"}
# What the inputs carry about the patient, the stay and the GP: none of it may come out.
PATIENT_DATA = ("Lefèvre", "Hélène", "000123456", "1948-07-14", "NDA77", "Martin", "mssante")


@dataclass
class Inputs:
    """What a test sends, and what it expects to be counted of it."""

    stays: list[tuple[dict[str, Any], bool]] = field(default_factory=list)
    """(event, routed): from ``stays.enriched`` when routed, else ``stays.unroutable``."""
    statuses: list[dict[str, Any]] = field(default_factory=list)
    too_late: set[str] = field(default_factory=set)
    """Event ids sent beyond the grace period: never counted."""

    def expected(self) -> dict[Row, int]:
        """The counts, worked out plainly from what was sent (each distinct thing once)."""
        seen: dict[Row, set[str]] = defaultdict(set)

        def add(
            at: dt.datetime, metric: str, est: str, dims: dict[str, str], identity: str | None
        ) -> None:
            """Count ``identity`` in its windows; None: the series is shown, not counted in."""
            for granularity, size in (("HOUR", 3600), ("DAY", 86_400)):
                start = dt.datetime.fromtimestamp(at.timestamp() // size * size, UTC)
                ids = seen[(metric, granularity, start, est, frozenset(dims.items()))]
                if identity is not None:
                    ids.add(identity)

        discharges: dict[str, list[dict[str, Any]]] = defaultdict(list)

        for event, routed in self.stays:
            if event["event_id"] in self.too_late:
                continue
            at, est, event_id = (
                event["movement"]["occurred_at"],
                event["establishment"],
                event["event_id"],
            )
            dims = {
                "event_kind": event["kind"],
                "action": event["action"],
                "admission_mode": event["stay"]["admission_mode"],
            }
            add(at, "stay_events", est, dims, event_id)
            if not routed:
                add(at, "unroutable_stay_events", est, dims, event_id)
            if event["kind"] == "DISCHARGE":
                discharges[movement_key(StayEvent.from_avro(event))].append(event)
        # A discharge counts under its latest status (by receipt; a cancellation, nowhere), and
        # every status it stood under is shown, if only as a zero.
        for movement, words in discharges.items():
            last = max(words, key=lambda word: (word["received_at"], word["action"] == "CANCEL"))
            for word in words:
                if word["action"] != "CANCEL":
                    status = {"covid_status": word["covid_status"]}
                    add(
                        word["movement"]["occurred_at"],
                        "covid_discharges",
                        word["establishment"],
                        status,
                        None,
                    )
            if last["action"] != "CANCEL":
                status = {"covid_status": last["covid_status"]}
                add(
                    last["movement"]["occurred_at"],
                    "covid_discharges",
                    last["establishment"],
                    status,
                    movement,
                )
        for item in self.statuses:
            if item["status"] in FINAL_STATUSES:
                identity = f"{item['notification_id']}/{item['status']}"
                dims = {"delivery_status": item["status"]}
                add(item["at"], "notifications", item["establishment"], dims, identity)
            if item["status"] == "SKIPPED":
                reason = {"skip_reason": reason_code(item["detail"]), "notice_kind": item["kind"]}
                at, place = item["at"], item["establishment"]
                add(at, "skipped_notifications", place, reason, item["notification_id"])
        return {row: len(identities) for row, identities in seen.items()}


@dataclass
class Rig:
    """The worker's topics and database, and the workers started on them."""

    env: dict[str, str]
    tmp_path: Path
    topics: dict[str, str]
    """By the name of their ``ANALYTICS_<NAME>_TOPIC`` variable."""
    database_url: str
    producer: Producer
    serdes: dict[str, AvroSerde]
    services: list[ServiceProcess] = field(default_factory=list)

    @property
    def changelog(self) -> str:
        """Where the worker's table keeps its counts and identities."""
        return f"{self.env['ANALYTICS_GROUP_ID']}-windows-changelog"

    def start(self, state: str) -> ServiceProcess:
        """A worker whose local state is in ``state``: a new name is a machine that lost it."""
        env = {**self.env, "ANALYTICS_DATA_DIR": str(self.tmp_path / state)}
        service = ServiceProcess("analytics", env, self.tmp_path / "analytics.log")
        service.start()
        self.services.append(service)
        return service

    def wait_for_counts(
        self, read: Callable[[], dict[Row, int]], expected: dict[Row, int], where: str
    ) -> None:
        """Until the counts ``read`` are the ones expected; the worker dying ends the wait."""
        counts: dict[Row, int] = {}

        def alive_and_equal() -> bool:
            process = self.services[-1].process
            assert process is not None and process.poll() is None, "the worker has stopped"
            counts.clear()
            counts.update(read())
            return counts == expected

        try:
            eventually(alive_and_equal, 120, f"the expected counts {where}")
        except AssertionError as error:
            differences = [
                f"{row}: {counts.get(row)} instead of {expected.get(row)}"
                for row in sorted(set(counts) | set(expected), key=str)
                if counts.get(row) != expected.get(row)
            ]
            raise AssertionError("\n".join([str(error), *differences])) from None

    @property
    def outputs(self) -> list[str]:
        return [self.topics[name] for name in ("stay_events", "notifications", "covid_discharges")]

    def send(self, inputs: Inputs) -> None:
        for event, routed in inputs.stays:
            if routed:
                self._produce(self.topics["enriched"], event["stay_key"], enriched(event))
            else:
                self._produce(self.topics["unroutable"], event["stay_key"], unroutable(event))
        for item in inputs.statuses:
            self._produce(self.topics["status"], item["notification_id"], item)
        assert self.producer.flush(30) == 0

    def _produce(self, topic: str, key: str, value: dict[str, Any]) -> None:
        self.producer.produce(topic, key=key, value=self.serdes[topic].serialize(topic, value))
        self.producer.poll(0)


@pytest.fixture
def rig(
    stack: Settings,
    admin: AdminClient,
    topic_factory: Callable[..., str],
    group_factory: Callable[[], str],
    producer_factory: Callable[..., Producer],
    serde_factory: Callable[[str], AvroSerde],
    empty_database: str,
    tmp_path: Path,
) -> Iterator[Rig]:
    schemas = {
        "enriched": "harpicoop.EnrichedStayEvent",
        "unroutable": "harpicoop.UnroutableStayEvent",
        "status": "harpicoop.NotificationStatus",
    }
    topics = {name: topic_factory(schema) for name, schema in schemas.items()}
    for name in ("stay_events", "notifications", "covid_discharges"):
        topics[name] = topic_factory("harpicoop.AnalyticsCount", partitions=1, compacted=True)
    topics["deadletter"] = topic_factory()
    group = group_factory()
    env = analytics_env(
        stack,
        topics,
        group,
        empty_database,
        ANALYTICS_GRACE_SECONDS=str(GRACE.total_seconds()),
        # Nothing is committed before the crash below: it replays everything.
        ANALYTICS_COMMIT_SECONDS="600",
        # The crashed worker's partitions come back to its successor soon.
        ANALYTICS_SESSION_TIMEOUT_SECONDS="6",
    )
    rig = Rig(
        env,
        tmp_path,
        topics,
        empty_database,
        producer_factory(),
        {topics[name]: serde_factory(schema) for name, schema in schemas.items()},
    )
    yield rig
    for service in rig.services:
        service.stop()
    # Shown by pytest when the test failed: the worker's own account of what it did.
    if rig.services:
        print(rig.services[-1].output()[-20_000:])
    delete_internal_topics(admin, group)


def phase_one(base: dt.datetime) -> Inputs:
    """A morning of three establishments, in the order things happened, each record delivered
    twice (a producer's retry)."""

    def minutes(count: int) -> dt.datetime:
        return base + dt.timedelta(minutes=count)

    stays = [
        (stay("chrunancy", "V1", 1, minutes(10)), True),
        (stay("chrunancy", "V1", 2, minutes(80), kind="TRANSFER"), True),
        (stay("chrunancy", "V1", 3, minutes(185), kind="DISCHARGE", covid="POSITIVE"), True),
        (stay("chrunancy", "V2", 4, minutes(40), mode="SCHEDULED"), True),
        (stay("chrunancy", "V2", 5, minutes(50), mode="SCHEDULED", action="CANCEL"), True),
        (stay("chrunancy", "V3", 6, minutes(330)), True),
        (stay("chrunancy", "V3", 7, minutes(360), kind="DISCHARGE", covid="NEGATIVE"), True),
        (stay("toul", "T1", 1, minutes(120), mode="SCHEDULED"), True),
        (stay("toul", "T1", 2, minutes(240), kind="DISCHARGE", covid="SUSPECTED"), True),
        (
            stay(
                "toul",
                "T1",
                3,
                minutes(240),
                kind="DISCHARGE",
                action="UPDATE",
                covid="POSITIVE",
                movement="MVT2",
            ),
            True,
        ),
        # A suspected discharge, then its cancellation: no discharge to count.
        (stay("toul", "T2", 4, minutes(250), kind="DISCHARGE", covid="SUSPECTED"), True),
        (
            stay(
                "toul",
                "T2",
                5,
                minutes(250),
                kind="DISCHARGE",
                action="CANCEL",
                covid="SUSPECTED",
                movement="MVT4",
            ),
            True,
        ),
        # No GP could be told of these: still stays.
        (stay("luneville", "L1", 1, minutes(60)), False),
        (
            stay("luneville", "L1", 2, minutes(150), kind="DISCHARGE", covid="NOT_TESTED"),
            False,
        ),
        # Unroutable first, enriched again after a directory update: one stay event.
        (stay("luneville", "L2", 3, minutes(210)), False),
        (stay("luneville", "L2", 3, minutes(210)), True),
    ]
    statuses = [
        status("N1", "chrunancy", "SENT", minutes(11)),
        status("N2", "chrunancy", "RETRYING", minutes(81)),
        status("N2", "chrunancy", "RETRYING", minutes(90), attempt=2),
        status("N2", "chrunancy", "SENT", minutes(100), attempt=3),
        status("N3", "toul", "FAILED", minutes(241)),
        status("N4", "toul", "SKIPPED", minutes(121)),
    ]
    stays.sort(key=lambda item: item[0]["movement"]["occurred_at"])
    statuses.sort(key=lambda item: item["at"])
    return Inputs(
        [copy for item in stays for copy in (item, item)],
        [copy for item in statuses for copy in (item, item)],
    )


def phase_two(base: dt.datetime) -> Inputs:
    """The afternoon: a new establishment, and one stay whose later messages come late."""
    late_within = stay(
        "chrunancy", "V9", 92, base + 7 * HOUR + dt.timedelta(minutes=30), kind="TRANSFER"
    )
    late_beyond = stay("chrunancy", "V9", 93, base + 5 * HOUR, kind="DISCHARGE", covid="POSITIVE")
    return Inputs(
        stays=[
            (stay("cpn", "C1", 1, base + 7 * HOUR, mode="SCHEDULED"), True),
            (stay("chrunancy", "V9", 91, base + 9 * HOUR), True),
            (late_within, True),
            (late_beyond, True),
        ],
        statuses=[status("N5", "cpn", "SENT", base + 7 * HOUR + dt.timedelta(minutes=1))],
        too_late={late_beyond["event_id"]},
    )


def test_counts_add_up_to_what_was_sent_in_through_duplicates_late_events_and_a_crash(
    rig: Rig,
    consumer_factory: Callable[..., Consumer],
    serde_factory: Callable[[str], AvroSerde],
) -> None:
    base = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 10 * HOUR
    published = Published(consumer_factory(*rig.outputs), serde_factory("harpicoop.AnalyticsCount"))
    first, second = phase_one(base), phase_two(base)
    worker = rig.start("state-1")
    rig.send(first)
    rig.producer.produce(rig.topics["enriched"], key=b"chrunancy:V1", value=b"not avro at all")
    assert rig.producer.flush(10) == 0
    rig.wait_for_counts(lambda: published.read().counts(), first.expected(), "of the morning")

    # A crash before any commit, on a machine that loses the tables' local state: everything
    # is read again, and the tables come back from their changelogs.
    worker.kill()
    rig.send(second)
    rig.start("state-2")
    everything = Inputs(
        first.stays + second.stays, first.statuses + second.statuses, second.too_late
    )
    expected = everything.expected()
    rig.wait_for_counts(lambda: published.read().counts(), expected, "of the day")
    # Nothing more comes: no count grows past what was sent in.
    for _ in range(6):
        assert published.read().counts() == expected
    rig.wait_for_counts(lambda: sql_counts(rig.database_url), expected, "in PostgreSQL")

    metrics_by_topic: dict[str, set[str]] = defaultdict(set)
    for topic, value in published.values():
        metrics_by_topic[topic].add(value["metric"])
    assert metrics_by_topic == {
        rig.topics["stay_events"]: {"stay_events", "unroutable_stay_events"},
        rig.topics["notifications"]: {"notifications", "skipped_notifications"},
        rig.topics["covid_discharges"]: {"covid_discharges"},
    }
    stay_ids = {event["event_id"] for event, _ in everything.stays} - everything.too_late
    assert _daily_totals(rig.database_url, "daily_stays", "stay_events", "unroutable") == (
        len(stay_ids),
        3,  # L1 twice, L2 once
    )
    assert _daily_totals(rig.database_url, "daily_notifications", "sent", "failed", "skipped") == (
        3,
        1,
        1,
    )
    # V1 positive; T1 suspected, then corrected to positive; T2 suspected, then cancelled.
    assert _daily_totals(rig.database_url, "daily_covid_discharges", "positive", "suspected") == (
        2,
        0,
    )

    # Kept, and read again after the crash like everything else.
    dead = _all_records(consumer_factory(rig.topics["deadletter"]), 1)
    assert {message.value() for message in dead} == {b"not avro at all"}

    # No analytics record, nor the worker's table, carries anything of the patient.
    internal = _all_records(consumer_factory(rig.changelog), 1)
    for message in [*published.latest.values(), *internal]:
        for text in PATIENT_DATA:
            assert text.encode("utf-8") not in (message.key() or b"") + (message.value() or b"")
    for _topic, value in published.values():
        assert not any(text in str(field) for field in value.values() for text in PATIENT_DATA)


def test_counts_stay_exact_when_a_worker_restarts_on_its_own_state_and_then_loses_it(
    rig: Rig,
    consumer_factory: Callable[..., Consumer],
    serde_factory: Callable[[str], AvroSerde],
) -> None:
    """The local store may hold more than the changelog after a crash; a restart on it reads
    everything again (nothing was committed), and a later one rebuilds the table from the
    changelog alone: neither counts anything twice nor loses anything."""
    base = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 10 * HOUR
    published = Published(consumer_factory(*rig.outputs), serde_factory("harpicoop.AnalyticsCount"))
    first, second = phase_one(base), phase_two(base)
    worker = rig.start("state-1")
    rig.send(first)
    rig.wait_for_counts(lambda: published.read().counts(), first.expected(), "of the morning")

    worker.kill()
    worker = rig.start("state-1")
    rig.send(second)
    everything = Inputs(
        first.stays + second.stays, first.statuses + second.statuses, second.too_late
    )
    expected = everything.expected()
    rig.wait_for_counts(lambda: published.read().counts(), expected, "after a restart")

    worker.kill()
    rig.start("state-2")
    # Its counts are published again as it reads everything again: wait for one of them.
    before = published.read().records
    eventually(lambda: published.read().records > before, 120, "counts published again")
    rig.wait_for_counts(lambda: published.read().counts(), expected, "from the changelog alone")
    for _ in range(6):
        assert published.read().counts() == expected
    rig.wait_for_counts(lambda: sql_counts(rig.database_url), expected, "in PostgreSQL")


def _all_records(consumer: Consumer, at_least: int) -> list[Message]:
    """Every record of a topic, from its beginning, once ``at_least`` have come."""
    found: list[Message] = []

    def more() -> bool:
        found.extend(m for m in consumer.consume(1000, timeout=0.5) if m.error() is None)
        return len(found) >= at_least

    eventually(more, 60, f"{at_least} records")
    found.extend(m for m in consumer.consume(1000, timeout=1.0) if m.error() is None)
    return found


def _daily_totals(database_url: str, view: str, *columns: str) -> tuple[int, ...]:
    sums = ", ".join(f"coalesce(sum({column}), 0)" for column in columns)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(f"SELECT {sums} FROM {view}").fetchone()  # type: ignore[arg-type]
    assert row is not None
    return tuple(int(value) for value in row)


def test_poison_events_are_dead_lettered_and_the_next_one_is_counted(
    rig: Rig, consumer_factory: Callable[..., Consumer]
) -> None:
    rig.env["POISON_BACKOFF_SECONDS"] = "0.05"
    worker = rig.start("state-1")
    now = dt.datetime.now(UTC)
    poison = poison_events(lambda visit: enriched(stay("chrunancy", visit, 1, now)))
    normal = stay("chrunancy", "V9003", 2, now)
    for value in [*poison, enriched(normal)]:
        rig._produce(rig.topics["enriched"], value["event"]["stay_key"], value)
    assert rig.producer.flush(10) == 0

    def normal_counted() -> bool:
        counts = sql_counts(rig.database_url)
        return any(row[0] == "stay_events" and row[1] == "HOUR" for row in counts)

    eventually(normal_counted, what="the event after them counted")
    dead = dead_letters_on(consumer_factory(rig.topics["deadletter"]), 1)
    for record in dead:
        errors = read_error_headers(record.headers())
        assert errors["reason"] == "handling failed" and errors["service"] == "analytics"
        assert errors["exception.class.name"] in ("ValueError", "OverflowError", "DataError")
        assert "V9" not in str(errors)
    assert worker.process is not None and worker.process.poll() is None


def test_the_mirror_writes_every_row_it_can_and_sets_aside_one_postgresql_refuses(
    rig: Rig,
    consumer_factory: Callable[..., Consumer],
    serde_factory: Callable[[str], AvroSerde],
) -> None:
    rig.start("state-1")
    topic = rig.topics["stay_events"]
    serde = serde_factory("harpicoop.AnalyticsCount")
    hour = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    dimensions = (("event_kind", "ADMISSION"),)

    def published(establishment: str, count: int) -> bytes:
        observation = Observation("stay_events", establishment, dimensions, "M1", 0)
        start = int(hour.timestamp() * 1000)
        return serde.serialize(
            topic, count_record(observation, Granularity.HOUR, start, count, start).to_avro()
        )

    # Two counts of one key (the latest is the row), and a NUL that PostgreSQL refuses.
    for establishment, count in (("chrunancy", 1), ("chru\x00nancy", 5), ("chrunancy", 2)):
        value = published(establishment, count)
        rig.producer.produce(topic, key=establishment.encode(), value=value)
    assert rig.producer.flush(10) == 0

    expected = {("stay_events", "HOUR", hour, "chrunancy", frozenset(dimensions)): 2}
    rig.wait_for_counts(lambda: sql_counts(rig.database_url), expected, "in PostgreSQL")
    [dead] = dead_letters_on(consumer_factory(rig.topics["deadletter"]), 1)
    assert read_error_headers(dead.headers())["reason"] == "handling failed"
    assert dead.value() == published("chru\x00nancy", 5)
