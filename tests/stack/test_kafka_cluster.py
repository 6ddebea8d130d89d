"""A three-node cluster loses its partition leader, then its active controller, to kill -9 while
a producer writes with the platform's settings (acks=all, idempotent): writes go on, each node
comes back into the in-sync replicas, and every record is read back exactly once.

The cluster is a private one on free ports (never the stack's 9092-9097, which other sessions
use), its data under the test's folder, the jars the stack downloaded. It prints what it
measured: start time, each node's resident memory, failover, election and catch-up times.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message
from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

from services.common.access import TESTS
from services.common.kafka import make_admin, make_consumer, make_producer
from services.common.settings import Settings
from services.common.topics import DAY_MS, TopicSpec, ensure_topics
from services.stack.cluster import KafkaCluster
from services.stack.components import kafka_nodes
from services.stack.layout import StackLayout
from tests.conftest import grant_access, on_broker

pytestmark = pytest.mark.integration

NODES = 3
HEAP = "384m"
"""Enough for a test's traffic; three of them share two cores with the rest of the suite."""


def free_port_run(length: int, first: int = 29092) -> int:
    """The first port of ``length`` consecutive free ones, from ``first`` on (away from the
    stack's fixed ports and from the ephemeral range the kernel hands out)."""
    for base in range(first, first + 2000, 10):
        try:
            for port in range(base, base + length):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {length} consecutive free ports from {first}")


def resident_mb(pid: int | None) -> float:
    assert pid is not None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture
def kafka_cluster(tmp_path: Path) -> Iterator[KafkaCluster]:
    """Three KRaft nodes (each a voter and a broker) of the stack's version, configured as
    ``make up BROKERS=3`` configures its own, with the access declaration applied; they can be
    killed and restarted (``KafkaCluster``). Reach them with ``on_broker(settings, node)``."""
    layout = StackLayout(tmp_path / "cluster", shared_dist=StackLayout.default().dist)
    layout.make_dirs()
    cluster = KafkaCluster(
        kafka_nodes(layout, NODES, base_port=free_port_run(2 * NODES), heap=HEAP)
    )
    cluster.nodes[0].install()
    started = time.monotonic()
    try:
        cluster.start()
        print(f"\ncluster of {NODES} started in {time.monotonic() - started:.1f} s")
        grant_access(cluster.nodes[0])
        yield cluster
    finally:
        cluster.stop()


class Writer:
    """Produces numbered records at a steady pace in a thread, with the platform's producer
    settings, and keeps every delivery report."""

    def __init__(self, settings: Settings, topic: str, per_second: int = 200) -> None:
        self.producer = make_producer(settings, f"test-cluster-{topic}")
        self.topic = topic
        self.interval = 1 / per_second
        self.sent = 0
        self.acked: list[tuple[float, int]] = []
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _report(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failed.append(str(error))
        else:
            self.acked.append((time.monotonic(), int(message.value() or b"-1")))

    def _run(self) -> None:
        while not self._stop.is_set():
            number = self.sent
            self.producer.produce(
                self.topic,
                key=f"stay-{number % 17}".encode(),
                value=str(number).encode(),
                on_delivery=self._report,
            )
            self.sent += 1
            self.producer.poll(0)
            time.sleep(self.interval)

    def start(self) -> None:
        self._thread.start()

    def wait_for_acks(self, more: int, timeout: float = 60.0) -> float:
        """Wait until ``more`` further records are acknowledged; the seconds it took."""
        target = len(self.acked) + more
        started = time.monotonic()
        while len(self.acked) < target:
            assert time.monotonic() - started < timeout, f"writes stalled: {self.failed[-3:]}"
            time.sleep(0.05)
        return time.monotonic() - started

    def finish(self) -> None:
        self._stop.set()
        self._thread.join()
        assert self.producer.flush(60) == 0

    def longest_pause(self) -> float:
        """The longest time without any acknowledged write."""
        times = sorted(at for at, _ in self.acked)
        return max((later - earlier for earlier, later in itertools.pairwise(times)), default=0.0)


def read_all(settings: Settings, topic: str, expected: int) -> list[int]:
    consumer = make_consumer(settings, "test-cluster-reader", f"test-cluster-{uuid.uuid4().hex}")
    consumer.subscribe([topic])
    values: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while len(values) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                values.append(int(message.value() or b"-1"))
        # Anything beyond the expected count would be a duplicate: give it a moment to show.
        for _ in range(3):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                values.append(int(message.value() or b"-1"))
    finally:
        consumer.close()
    return values


def test_killing_the_leader_then_the_controller_loses_and_duplicates_nothing(
    kafka_cluster: KafkaCluster,
) -> None:
    cluster = kafka_cluster
    settings = on_broker(Settings(), cluster.nodes[0], TESTS)
    topic = f"cluster-{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(topic, None, partitions=3, compacted=False, retention_ms=DAY_MS)
    assert ensure_topics(make_admin(settings), [spec]) == [topic]
    (described,) = cluster.admin.describe_configs([ConfigResource("topic", topic)]).values()
    config = described.result()
    assert config["min.insync.replicas"].value == "2"
    assert all(len(isrs) == NODES for _, isrs in cluster.partition_replicas(topic).values())

    writer = Writer(settings, topic)
    writer.start()
    writer.wait_for_acks(300)

    # The leader of partition 0, killed mid-stream.
    leader = cluster.partition_leader(topic)
    killed_at = time.monotonic()
    cluster.kill(leader)
    new_leader = cluster.wait_for_leader_other_than(topic, leader)
    failover = time.monotonic() - killed_at
    writer.wait_for_acks(300)
    writes_back = time.monotonic() - killed_at
    assert new_leader != leader
    restarted_at = time.monotonic()
    cluster.restart(leader)
    cluster.wait_in_sync(leader, [topic])
    rejoined = time.monotonic() - restarted_at

    # Then the active controller.
    controller = cluster.active_controller()
    assert controller is not None
    killed_at = time.monotonic()
    cluster.kill(controller)
    elected = cluster.wait_for_controller_other_than(controller)
    election = time.monotonic() - killed_at
    assert elected in {node.node.node_id for node in cluster.live_nodes()}
    writer.wait_for_acks(300)
    cluster.restart(controller)
    cluster.wait_in_sync(controller, [topic])
    writer.wait_for_acks(100)
    memory = {node.name: resident_mb(node.pid()) for node in cluster.nodes}
    writer.finish()

    assert writer.failed == []
    assert len(writer.acked) == writer.sent
    values = read_all(settings, topic, writer.sent)
    assert len(values) == len(set(values)), "a record was read twice"
    assert sorted(values) == list(range(writer.sent)), "a record was lost"
    print(
        f"records {writer.sent}; leader {leader} killed: new leader {new_leader} in "
        f"{failover:.1f} s, writes acknowledged again within {writes_back:.1f} s, back in sync "
        f"{rejoined:.1f} s after restart; controller {controller} killed: {elected} elected in "
        f"{election:.1f} s; longest pause in acknowledgements {writer.longest_pause():.1f} s; "
        f"RSS {', '.join(f'{name} {mb:.0f} MB' for name, mb in memory.items())}"
    )
