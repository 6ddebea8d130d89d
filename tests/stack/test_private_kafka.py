"""A throwaway broker can be taken down and brought back with its data, for outage tests."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from services.common.kafka import make_admin, make_consumer, make_producer
from services.common.settings import Settings
from services.stack.components import Kafka
from tests.conftest import on_broker

pytestmark = pytest.mark.integration


def test_records_written_before_a_broker_restart_are_read_after_it(
    stack: Settings, private_kafka: Kafka
) -> None:
    settings = on_broker(stack, private_kafka)
    admin = make_admin(settings)
    admin.create_topics([NewTopic("outage", 1, 1)])["outage"].result()
    producer = make_producer(settings, "test-outage")
    producer.produce("outage", key=b"chrunancy:V1", value=b"before")
    assert producer.flush(10) == 0

    private_kafka.stop()
    assert not private_kafka.running()
    private_kafka.start()
    private_kafka.wait_healthy()

    consumer = make_consumer(settings, "test-outage", "outage")
    consumer.subscribe(["outage"])
    values = []
    for _ in range(30):
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            values.append(message.value())
            break
    consumer.close()
    assert values == [b"before"]
