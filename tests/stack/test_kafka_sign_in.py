"""The stack's broker is made with its admin's credential, and one made before authentication
keeps its records when it gets one (on the throwaway broker's ports, 19092/19093)."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from services.common.access import ADMIN
from services.common.kafka import make_admin, make_consumer, make_producer
from services.common.settings import Settings
from services.stack.components import Kafka
from services.stack.process import StackError, run, wait_until
from tests.conftest import on_broker, throwaway_broker

pytestmark = pytest.mark.integration


def made_before_authentication(broker: Kafka) -> None:
    """Format and start the broker as the stack did before it required signing in: PLAINTEXT,
    no authorizer, no SCRAM credential in its metadata."""
    broker._write_config(open_listeners=True)
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    run(
        broker._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            "a" + cluster_id[1:],
            "-c",
            str(broker.config),
        ),
        what="formatting Kafka storage the old way",
        log=broker.log,
    )
    broker._spawn_broker()
    wait_until(lambda: broker._answers({}), timeout=120, what="the old broker", log=broker.log)


def test_a_broker_from_before_authentication_keeps_its_records_and_signs_in(
    tmp_path: Path,
) -> None:
    broker = throwaway_broker(tmp_path)
    made_before_authentication(broker)
    try:
        anonymous = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        anonymous.create_topics([NewTopic("kept", 1, 1)])["kept"].result(timeout=60)
        old = make_producer(Settings(kafka_bootstrap_servers=broker.bootstrap_servers), "old")
        old.produce("kept", key=b"toul:V1", value=b"before")
        assert old.flush(30) == 0
        # Still running the old way: make up says what to do rather than waiting in vain.
        with pytest.raises(StackError, match="make down"):
            broker.start()
        broker.stop()

        assert broker.start()
        broker.wait_healthy()
        admin = on_broker(Settings(), broker, ADMIN)
        reader = make_consumer(admin, "test-sign-in", "kept-reader")
        reader.subscribe(["kept"])
        values = []
        for _ in range(30):
            message = reader.poll(1.0)
            if message is not None and message.error() is None:
                values.append(message.value())
                break
        reader.close()
        assert values == [b"before"]
        # And it now refuses whoever does not sign in.
        with pytest.raises(KafkaException):
            AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=5)
    finally:
        broker.stop()


def test_a_new_broker_lets_its_admin_in_and_nobody_else(tmp_path: Path) -> None:
    broker = throwaway_broker(tmp_path)
    broker.start()
    try:
        broker.wait_healthy()
        assert oct(broker.config.stat().st_mode & 0o777) == "0o600"  # the admin's password
        assert broker.secrets.path(ADMIN).stat().st_mode & 0o077 == 0
        admin = make_admin(on_broker(Settings(), broker, ADMIN))
        assert admin.list_topics(timeout=10).brokers
        # Another principal has no credential until the declaration is applied.
        stranger = make_admin(on_broker(Settings(), broker, "notify"))
        with pytest.raises(KafkaException):
            stranger.list_topics(timeout=5)
    finally:
        broker.stop()
