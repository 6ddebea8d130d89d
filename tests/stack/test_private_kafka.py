"""A throwaway broker can be taken down and brought back with its data, for outage tests."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer

from services.stack.components import Kafka

pytestmark = pytest.mark.integration


def test_records_written_before_a_broker_restart_are_read_after_it(private_kafka: Kafka) -> None:
    bootstrap = f"localhost:{private_kafka.port}"
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("outage", 1, 1)])["outage"].result()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce("outage", key=b"chrunancy:V1", value=b"before")
    assert producer.flush(10) == 0

    private_kafka.stop()
    assert not private_kafka.running()
    private_kafka.start()
    private_kafka.wait_healthy()

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "outage", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe(["outage"])
    values = []
    for _ in range(30):
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            values.append(message.value())
            break
    consumer.close()
    assert values == [b"before"]
