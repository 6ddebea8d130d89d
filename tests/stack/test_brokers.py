"""How many Kafka nodes the stack runs, where they listen, and each node's configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.stack.__main__ import stack_brokers
from services.stack.brokers import (
    BrokerCountError,
    NodeAddress,
    bootstrap_servers,
    choose_brokers,
    node_addresses,
    quorum_voters,
    remembered_brokers,
    replication_settings,
    requested_brokers,
)
from services.stack.cluster import quorum_leader
from services.stack.components import Kafka, kafka_nodes
from services.stack.layout import StackLayout
from services.stack.process import StackError


def test_three_nodes_listen_in_pairs_from_the_port_services_default_to() -> None:
    assert node_addresses(3) == [
        NodeAddress(1, 9092, 9093),
        NodeAddress(2, 9094, 9095),
        NodeAddress(3, 9096, 9097),
    ]
    assert node_addresses(1, base_port=29092) == [NodeAddress(1, 29092, 29093)]


def test_every_node_votes_and_clients_are_given_every_node() -> None:
    nodes = node_addresses(3)
    assert quorum_voters(nodes) == "1@localhost:9093,2@localhost:9095,3@localhost:9097"
    assert bootstrap_servers(nodes) == "localhost:9092,localhost:9094,localhost:9096"


def test_internal_topics_are_replicated_on_three_and_need_two_in_sync() -> None:
    three = replication_settings(3)
    assert three["offsets.topic.replication.factor"] == "3"
    assert three["transaction.state.log.replication.factor"] == "3"
    assert three["transaction.state.log.min.isr"] == "2"
    assert three["min.insync.replicas"] == "2"
    assert three["default.replication.factor"] == "3"
    assert set(replication_settings(1).values()) == {"1"}


@pytest.mark.parametrize("raw", ["2", "5", "three", "-1", "0"])
def test_a_count_the_stack_cannot_run_is_refused(raw: str) -> None:
    with pytest.raises(BrokerCountError, match="runs 1 or 3"):
        requested_brokers({"HARPICOOP_BROKERS": raw})


def test_the_count_asked_for_else_remembered_else_one() -> None:
    assert requested_brokers({}) is None
    assert requested_brokers({"HARPICOOP_BROKERS": " 3 "}) == 3
    assert choose_brokers(None, None, data_exists=False) == 1
    assert choose_brokers(None, 3, data_exists=True) == 3
    assert choose_brokers(3, None, data_exists=False) == 3
    # Nothing made yet under the remembered count: the new one is taken.
    assert choose_brokers(1, 3, data_exists=False) == 1


def test_switching_counts_on_existing_data_says_to_clean() -> None:
    with pytest.raises(BrokerCountError, match="make clean"):
        choose_brokers(3, 1, data_exists=True)


def test_a_single_node_made_before_the_count_was_written_is_remembered(tmp_path: Path) -> None:
    layout = StackLayout(tmp_path)
    assert remembered_brokers(layout.kafka_bootstrap, layout.kafka / "data") is None
    (layout.kafka / "data").mkdir(parents=True)
    (layout.kafka / "data" / "meta.properties").write_text("node.id=1\n")
    assert remembered_brokers(layout.kafka_bootstrap, layout.kafka / "data") == 1
    layout.kafka_bootstrap.write_text("localhost:9092,localhost:9094,localhost:9096\n")
    assert remembered_brokers(layout.kafka_bootstrap, layout.kafka / "data") == 3


def test_each_node_of_three_has_its_own_id_folder_and_listeners(tmp_path: Path) -> None:
    layout = StackLayout(tmp_path)
    nodes = kafka_nodes(layout, 3)
    assert [node.name for node in nodes] == ["kafka-1", "kafka-2", "kafka-3"]
    second = nodes[1].properties()
    assert second["node.id"] == "2"
    assert second["controller.quorum.voters"] == (
        "1@localhost:9093,2@localhost:9095,3@localhost:9097"
    )
    assert second["listeners"] == "CLIENT://localhost:9094,CONTROLLER://localhost:9095"
    assert second["advertised.listeners"] == "CLIENT://localhost:9094"
    assert second["log.dirs"] == str(tmp_path / "kafka" / "node-2" / "data")
    assert second["transaction.state.log.min.isr"] == "2"
    # Authentication and authorization as on a single node.
    assert second["authorizer.class.name"].endswith("StandardAuthorizer")
    assert second["allow.everyone.if.no.acl.found"] == "false"
    assert nodes[2].bootstrap_servers == "localhost:9092,localhost:9094,localhost:9096"
    assert nodes[0].pid() is None and nodes[0].log.name == "kafka-1.log"


def test_a_single_node_keeps_its_name_folder_and_settings(tmp_path: Path) -> None:
    layout = StackLayout(tmp_path)
    (single,) = kafka_nodes(layout)
    assert single.name == "kafka"
    assert single.heap == "1g"
    assert single.data == tmp_path / "kafka" / "data"
    properties = single.properties()
    assert properties["node.id"] == "1"
    assert properties["controller.quorum.voters"] == "1@localhost:9093"
    assert properties["offsets.topic.replication.factor"] == "1"
    throwaway = Kafka(layout, port=19092, controller_port=19093)
    assert throwaway.bootstrap_servers == "localhost:19092"


def test_the_active_controller_is_the_leader_of_the_latest_epoch() -> None:
    states = [
        {"leaderId": 1, "leaderEpoch": 1},  # a voter that has not heard of the new election yet
        {"leaderId": 3, "leaderEpoch": 2},
    ]
    assert quorum_leader(states) == 3
    assert quorum_leader([{"leaderId": -1, "leaderEpoch": 3, "votedId": 2}, *states]) is None
    assert quorum_leader([]) is None


def test_up_refuses_three_brokers_on_a_single_nodes_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = StackLayout(tmp_path)
    monkeypatch.setenv("HARPICOOP_BROKERS", "3")
    assert stack_brokers(layout) == 3  # nothing made yet
    (layout.kafka / "data").mkdir(parents=True)
    (layout.kafka / "data" / "meta.properties").write_text("node.id=1\n")
    with pytest.raises(StackError, match="made with 1 broker"):
        stack_brokers(layout)
    monkeypatch.delenv("HARPICOOP_BROKERS")
    assert stack_brokers(layout) == 1
