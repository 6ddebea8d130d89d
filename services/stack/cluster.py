"""The local Kafka nodes seen as one cluster, with what a fault harness does to it: find the
node that leads a partition and the active controller, kill a node as a crash would (SIGKILL,
no clean shutdown), restart it, and wait until it is back in every in-sync replica set.

The stack's cluster is ``KafkaCluster.of_stack()``; a test builds its own from ``kafka_nodes``
on free ports. Every question is asked as the cluster's super user (``admin``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka.admin import AdminClient

from services.common.access import ADMIN
from services.stack.components import Kafka, kafka_nodes, stop_together
from services.stack.layout import StackLayout
from services.stack.process import StackError, kill_pid, wait_until


def quorum_leader(states: Iterable[Mapping[str, Any]]) -> int | None:
    """The active controller according to the voters' own records of the quorum (each node's
    ``quorum-state`` file): the leader of the latest epoch any of them has seen, None while an
    election is under way (no leader known at that epoch)."""
    latest: tuple[int, int] | None = None
    for state in states:
        epoch = int(state.get("leaderEpoch", -1))
        if latest is None or epoch > latest[0]:
            latest = (epoch, int(state.get("leaderId", -1)))
    if latest is None or latest[1] < 0:
        return None
    return latest[1]


class KafkaCluster:
    """Nodes of one cluster (``components.kafka_nodes``), and the faults a harness injects."""

    def __init__(self, nodes: list[Kafka]) -> None:
        if not nodes:
            raise ValueError("a cluster has at least one node")
        self.nodes = nodes
        self._admin: AdminClient | None = None

    @classmethod
    def of_stack(cls, layout: StackLayout | None = None) -> KafkaCluster:
        """The local stack's nodes, as many as it was made with."""
        return cls(kafka_nodes(layout or StackLayout.default()))

    @property
    def bootstrap_servers(self) -> str:
        return self.nodes[0].bootstrap_servers

    def node(self, node_id: int) -> Kafka:
        for node in self.nodes:
            if node.node.node_id == node_id:
                return node
        raise KeyError(f"no Kafka node {node_id} in this cluster")

    def live_nodes(self) -> list[Kafka]:
        return [node for node in self.nodes if node.running()]

    @property
    def admin(self) -> AdminClient:
        """An admin client of the super user, on every node (it follows the cluster's changes)."""
        if self._admin is None:
            self._admin = AdminClient(
                {
                    "bootstrap.servers": self.bootstrap_servers,
                    "log_level": 0,
                    **self.nodes[0].security(ADMIN).librdkafka_config(),
                }
            )
        return self._admin

    def start(self) -> None:
        """Start every node that is not running, then wait until each is a live broker: they
        are started together because none is healthy before a majority of voters is up."""
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_healthy()

    def stop(self) -> None:
        stop_together(self.nodes)

    def partition_replicas(
        self, topic: str, timeout: float = 10.0
    ) -> dict[int, tuple[int, list[int]]]:
        """Each partition of ``topic``: its leader's node id (-1 when it has none) and its
        in-sync replicas, as the brokers' metadata says now."""
        metadata = self.admin.list_topics(topic, timeout=timeout)
        described = metadata.topics[topic]
        if described.error is not None:
            raise StackError(f"topic {topic}: {described.error}")
        return {
            number: (partition.leader, list(partition.isrs))
            for number, partition in described.partitions.items()
        }

    def partition_leader(self, topic: str, partition: int = 0) -> int:
        """The node id of the broker leading ``topic``'s ``partition``."""
        return self.partition_replicas(topic)[partition][0]

    def active_controller(self) -> int | None:
        """The node id of the active controller, None while the quorum elects one.

        Read from the live voters' ``quorum-state`` files, which each node rewrites whenever it
        learns of a new leader. The admin API cannot say: in KRaft, DescribeCluster names a
        random broker as "controller" (clients never talk to controllers), and the tool that
        asks the quorum itself (``kafka-metadata-quorum``) is not among the broker's jars.
        """
        states = []
        for node in self.live_nodes():
            path = node.data / "__cluster_metadata-0" / "quorum-state"
            try:
                states.append(json.loads(path.read_text(encoding="utf-8")))
            except (FileNotFoundError, json.JSONDecodeError):
                continue  # not written yet, or caught mid-rewrite: ask again
        return quorum_leader(states)

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: no clean shutdown, no leadership handed over, unflushed pages lost
        only if the machine went too (the page cache survives a killed process)."""
        node = self.node(node_id)
        pid = node.pid()
        if pid is None:
            raise StackError(f"{node.name} is not running")
        kill_pid(pid)
        node.layout.pidfile(node.name).unlink(missing_ok=True)

    def restart(self, node_id: int) -> None:
        """Start a stopped or killed node and wait until the cluster counts it live again."""
        node = self.node(node_id)
        node.start()
        node.wait_healthy()

    def wait_for_leader_other_than(self, topic: str, node_id: int, timeout: float = 60.0) -> int:
        """Wait until every partition of ``topic`` is led by a node other than ``node_id``;
        returns the new leader of partition 0."""

        def moved() -> bool:
            try:
                replicas = self.partition_replicas(topic, timeout=5.0)
            except Exception:
                return False
            return all(leader not in (-1, node_id) for leader, _ in replicas.values())

        wait_until(moved, timeout=timeout, what=f"a leader other than node {node_id} for {topic}")
        return self.partition_leader(topic)

    def wait_for_controller_other_than(self, node_id: int, timeout: float = 60.0) -> int:
        """Wait until the quorum has elected an active controller other than ``node_id``."""

        def elected() -> bool:
            leader = self.active_controller()
            return leader is not None and leader != node_id

        wait_until(elected, timeout=timeout, what=f"a controller other than node {node_id}")
        leader = self.active_controller()
        assert leader is not None
        return leader

    def wait_in_sync(self, node_id: int, topics: Iterable[str], timeout: float = 120.0) -> None:
        """Wait until ``node_id`` is in the in-sync replica set of every partition of ``topics``
        (it has caught up with what was written while it was away)."""
        names = list(topics)

        def caught_up() -> bool:
            try:
                return all(
                    node_id in isrs
                    for topic in names
                    for _, isrs in self.partition_replicas(topic, timeout=5.0).values()
                )
            except Exception:
                return False

        wait_until(caught_up, timeout=timeout, what=f"node {node_id} back in sync on {names}")
