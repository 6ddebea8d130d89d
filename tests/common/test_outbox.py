"""The outbox publishes what a transaction committed, in order, and nothing it rolled back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import structlog
from confluent_kafka import Consumer, Producer

from services.common import outbox
from services.common.db import connect
from services.common.poison import PoisonPolicy

pytestmark = pytest.mark.integration


def test_committed_records_are_published_in_order_and_rolled_back_ones_never(
    empty_database: str,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    topic = topic_factory(partitions=1)
    with connect(empty_database) as conn:
        outbox.migrate(conn)
        with conn.transaction():
            outbox.enqueue(conn, "covid", topic, "case-1", b"OPEN")
            outbox.enqueue(conn, "covid", topic, "case-1", b"REMINDED")
        with pytest.raises(RuntimeError), conn.transaction():
            outbox.enqueue(conn, "covid", topic, "case-2", b"never")
            raise RuntimeError("the state change failed")
        with conn.transaction():
            outbox.enqueue(conn, "covid", topic, "case-1", None)
            outbox.enqueue(conn, "someone-else", topic, "x", b"not ours")

        relay = outbox.OutboxRelay(conn, producer_factory(), "covid", structlog.get_logger())
        assert relay.publish_pending() == 3
        assert relay.publish_pending() == 0
        left = conn.execute("SELECT owner FROM outbox").fetchall()
        assert left == [("someone-else",)]

    consumer = consumer_factory(topic)
    records = []
    for _ in range(60):
        records += [
            (m.key(), m.value()) for m in consumer.consume(10, timeout=0.5) if m.error() is None
        ]
        if len(records) >= 3:
            break
    assert records == [(b"case-1", b"OPEN"), (b"case-1", b"REMINDED"), (b"case-1", None)]


def test_a_row_kafka_refuses_is_set_aside_after_three_rounds_and_the_rows_behind_it_go_out(
    empty_database: str,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    topic = topic_factory(partitions=1)
    too_large = b"x" * 2_000_000  # over the producer's message.max.bytes
    with connect(empty_database) as conn:
        outbox.migrate(conn)
        with conn.transaction():
            outbox.enqueue(conn, "directory", topic, "10101010101", b"before")
            outbox.enqueue(conn, "directory", topic, "10101010102", too_large)
            outbox.enqueue(conn, "directory", topic, "10101010103", b"after")
        relay = outbox.OutboxRelay(
            conn,
            producer_factory(),
            "directory",
            structlog.get_logger(),
            PoisonPolicy(attempts=3),
        )
        for _ in range(2):
            with pytest.raises(outbox.RoundFailed):  # the row may yet go: every row stays queued
                relay.publish_pending()
            assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (3,)
        assert relay.publish_pending() == 3
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
        refused = conn.execute("SELECT key, length(value), error_code FROM outbox_refused")
        assert refused.fetchall() == [(b"10101010102", 2_000_000, "MSG_SIZE_TOO_LARGE")]

    consumer = consumer_factory(topic)
    keys: list[bytes | None] = []
    for _ in range(60):
        keys += [m.key() for m in consumer.consume(10, timeout=0.5) if m.error() is None]
        if b"10101010103" in keys and len(keys) >= 6:
            break
    assert set(keys) == {b"10101010101", b"10101010103"}
