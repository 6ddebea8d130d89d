"""The dedup worker as it runs in production, against the real stack: what comes out of it.

One worker serves the whole module; each test uses its own stays, so the tests do not see each
other's events.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.deadletter import read_error_headers
from services.common.kafka import make_producer
from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.common.streams import SourceRecord
from tests.dedup.support import (
    BASE_TIME,
    PrivateTopics,
    collect,
    decoded,
    event,
    log_events,
    once_per_source,
    private_topics,
    produce_bytes,
    produce_events,
    reader,
    running,
)
from tests.support import ServiceProcess, eventually, stack_env

pytestmark = pytest.mark.integration


@dataclass
class DedupRig:
    settings: Settings
    topics: PrivateTopics
    raw_a: str
    raw_b: str
    unique: str
    dead: str
    service: ServiceProcess
    producer: Producer
    serde: AvroSerde


@pytest.fixture(scope="module")
def rig(
    stack: Settings,
    admin: AdminClient,
    registry: SchemaRegistryClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DedupRig]:
    """Two establishments' raw topics, the output and dead-letter topics, and one worker reading
    every topic that matches ``<prefix>.stays.raw.*``, with a horizon of one day."""
    folder = tmp_path_factory.mktemp("dedup")
    with private_topics(admin, registry) as topics:
        raw_a = topics.create("stays.raw.alpha", "harpicoop.StayEvent")
        raw_b = topics.create("stays.raw.beta", "harpicoop.StayEvent")
        unique = topics.create("stays.unique", "harpicoop.StayEvent")
        dead = topics.create("deadletter.dedup")
        env = stack_env(
            stack,
            DEDUP_INPUT_PATTERN=rf"{topics.prefix}\.stays\.raw\..+",
            DEDUP_OUTPUT_TOPIC=unique,
            DEDUP_DEADLETTER_TOPIC=dead,
            DEDUP_GROUP_ID=f"{topics.prefix}-dedup",
            DEDUP_HORIZON_DAYS="1",
            DEDUP_TOPIC_REFRESH_SECONDS="1",
            DEDUP_REPORT_SECONDS="1",
            DEDUP_SWEEP_SECONDS="2",
        )
        service = ServiceProcess("dedup", env, folder / "dedup.log")
        service.start()
        try:
            yield DedupRig(
                stack,
                topics,
                raw_a,
                raw_b,
                unique,
                dead,
                service,
                make_producer(stack, "test-dedup"),
                AvroSerde(registry, "harpicoop.StayEvent"),
            )
        finally:
            service.stop()


@pytest.fixture
def output(rig: DedupRig) -> Iterator[Consumer]:
    consumer = reader(rig.settings, rig.unique)
    yield consumer
    consumer.close()


def test_resends_and_repeated_movement_actions_are_dropped_and_each_stay_keeps_its_order(
    rig: DedupRig, output: Consumer
) -> None:
    hour = dt.timedelta(hours=1)
    admission = event("alpha", "V100", "M1", "MVT1")
    transfer = event("alpha", "V100", "M2", "MVT2", kind="TRANSFER", trigger="A02")
    correction = event(
        "alpha", "V100", "M4", "MVT2", kind="TRANSFER", action="UPDATE", trigger="Z99", unit="NEURO"
    )
    other_stay = [event("beta", "V7", f"B{index}", f"BM{index}") for index in range(5)]
    sent = [
        admission,
        other_stay[0],
        admission,  # resent: no ACK reached the engine
        transfer,
        other_stay[1],
        # the same transfer under a new message id
        event("alpha", "V100", "M3", "MVT2", kind="TRANSFER", trigger="A02"),
        correction,
        # a second, different correction of the same movement is real
        event("alpha", "V100", "M5", "MVT2", kind="TRANSFER", action="UPDATE", trigger="Z99"),
        # the first correction again under a new id
        {**correction, "message_control_id": "M6", "event_id": "alpha:M6"},
        event(
            "alpha",
            "V100",
            "M7",
            "MVT3",
            kind="DISCHARGE",
            trigger="A03",
            received_at=BASE_TIME + hour,
        ),
        *other_stay[2:],
        other_stay[4],
    ]
    for value in sent:
        topic = rig.raw_a if value["establishment"] == "alpha" else rig.raw_b
        produce_events(rig.producer, rig.serde, topic, [value])

    expected = {
        "alpha:V100": ["alpha:M1", "alpha:M2", "alpha:M4", "alpha:M5", "alpha:M7"],
        "beta:V7": [f"beta:B{index}" for index in range(5)],
    }
    total = sum(map(len, expected.values()))
    messages = collect(output, lambda got: len(got) >= total, settle=2.0, stays=expected)
    by_stay: dict[str, list[str]] = {}
    for value in decoded(rig.serde, once_per_source(messages)):
        by_stay.setdefault(value["stay_key"], []).append(value["event_id"])
    assert by_stay == expected
    # Each unique event keeps its stay's partition and says which raw record it came from.
    for message in messages:
        source = SourceRecord.from_headers(message.headers())
        assert source is not None and source.topic in (rig.raw_a, rig.raw_b)
        assert message.partition() == source.partition


def test_the_same_message_passes_again_once_the_horizon_is_over(
    rig: DedupRig, output: Consumer
) -> None:
    first = event("alpha", "V200", "H1", "HM1", received_at=BASE_TIME)
    within = {**first, "received_at": BASE_TIME + dt.timedelta(hours=23)}
    beyond = {**first, "received_at": BASE_TIME + dt.timedelta(hours=25)}
    produce_events(rig.producer, rig.serde, rig.raw_a, [first, within, beyond])

    messages = collect(output, lambda got: len(got) >= 2, settle=2.0, stays=["alpha:V200"])
    times = [value["received_at"] for value in decoded(rig.serde, messages)]
    assert times == [first["received_at"], beyond["received_at"]]
    # What is older than the horizon is also deleted from the tables, not only ignored.
    eventually(
        lambda: sum(line["removed"] for line in log_events(rig.service, "dedup.claims_expired")),
        what="expired claims deleted",
    )


def test_a_new_establishment_topic_is_read_without_a_restart(
    rig: DedupRig, output: Consumer
) -> None:
    twelfth = rig.topics.create("stays.raw.gamma", "harpicoop.StayEvent")
    produce_events(rig.producer, rig.serde, twelfth, [event("gamma", "V1", "G1", "GM1")])

    # librdkafka's pattern subscription finds it at its next metadata refresh (every second
    # here) and the group rebalances; on a loaded machine, more patience than that.
    messages = collect(output, lambda got: len(got) >= 1, timeout=150, stays=["gamma:V1"])
    assert [value["event_id"] for value in decoded(rig.serde, messages)] == ["gamma:G1"]
    assert any(twelfth in line["inputs"] for line in log_events(rig.service, "dedup.assigned"))
    assert running(rig.service)


def test_a_raw_topic_with_another_partition_count_is_reported_and_not_read(
    rig: DedupRig, output: Consumer
) -> None:
    # Its partition N would not be the stays.unique and changelog partition N of its stays.
    odd = rig.topics.create("stays.raw.delta", "harpicoop.StayEvent", partitions=2)
    produce_events(rig.producer, rig.serde, odd, [event("delta", "V1", "D1", "DM1")])

    [report] = eventually(
        lambda: [
            line for line in log_events(rig.service, "dedup.input_not_read") if line["topic"] == odd
        ],
        what="the topic reported",
    )
    assert (report["partitions"], report["expected"]) == (2, 3)
    # Read by nothing: the other inputs go on, this one's records stay where they are.
    after = event("alpha", "V500", "N1", "NM1")
    produce_events(rig.producer, rig.serde, rig.raw_a, [after])
    messages = collect(
        output, lambda got: len(got) >= 1, settle=2.0, stays=["alpha:V500", "delta:V1"]
    )
    assert [value["event_id"] for value in decoded(rig.serde, messages)] == ["alpha:N1"]
    assert running(rig.service)


def test_poison_records_go_to_the_dead_letter_topic_and_the_stream_goes_on(
    rig: DedupRig, output: Consumer
) -> None:
    dead_letters = reader(rig.settings, rig.dead)
    try:
        good = rig.serde.serialize(rig.raw_a, event("alpha", "V300", "P1", "PM1"))
        unknown_schema = b"\x00\x7f\xff\xff\xf0" + good[5:]
        produce_bytes(rig.producer, rig.raw_a, b"alpha:V300", b"not avro at all")
        produce_bytes(rig.producer, rig.raw_a, b"alpha:V300", unknown_schema)
        produce_bytes(rig.producer, rig.raw_a, b"alpha:V300", good)
        assert rig.producer.flush(10) == 0

        kept = collect(dead_letters, lambda got: len(got) >= 2)
        passed = collect(output, lambda got: len(got) >= 1, settle=1.0, stays=["alpha:V300"])
    finally:
        dead_letters.close()
    assert [message.value() for message in kept] == [b"not avro at all", unknown_schema]
    for message in kept:
        errors = read_error_headers(message.headers())
        assert errors["topic"] == rig.raw_a
        assert errors["service"] == "dedup"
        assert errors["reason"] == "undecodable value"
        assert {"partition", "offset", "exception.class.name", "exception.message"} <= set(errors)
    # What the error is, never what it says (a decoder may quote the record).
    assert read_error_headers(kept[1].headers())["exception.message"].endswith("UndecodableValue")
    assert [value["event_id"] for value in decoded(rig.serde, passed)] == ["alpha:P1"]


def test_drops_are_counted_by_reason(rig: DedupRig, output: Consumer) -> None:
    before = _settled_counts(rig.service)
    first = event("beta", "V400", "C1", "CM1")
    moved_again = {**first, "message_control_id": "C2", "event_id": "beta:C2"}
    produce_events(rig.producer, rig.serde, rig.raw_b, [first, first, first, moved_again])
    collect(output, lambda got: len(got) >= 1, stays=["beta:V400"])

    after = _settled_counts(rig.service)
    assert after.get("dropped.resent_message", 0) - before.get("dropped.resent_message", 0) == 2
    assert (
        after.get("dropped.repeated_movement_action", 0)
        - before.get("dropped.repeated_movement_action", 0)
        == 1
    )


def _settled_counts(service: ServiceProcess, timeout: float = 30.0) -> dict[str, int]:
    """The worker's counts once two reports in a row agree (it reports every second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reports = [
            {key: value for key, value in report["totals"].items() if key.startswith("dropped.")}
            for report in log_events(service, "dedup.counts")
        ]
        if len(reports) >= 2 and reports[-1] == reports[-2]:
            time.sleep(1.5)
            again = log_events(service, "dedup.counts")[-1]["totals"]
            if {k: v for k, v in again.items() if k.startswith("dropped.")} == reports[-1]:
                return reports[-1]
        time.sleep(0.5)
    raise AssertionError("the worker's counts did not settle")
