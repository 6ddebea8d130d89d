"""The outbox publishes what a transaction committed, in order, and nothing it rolled back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import structlog
from confluent_kafka import Consumer, Producer

from services.common import outbox
from services.common.db import connect

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
