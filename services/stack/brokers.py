"""How many Kafka nodes the local stack runs, where each one listens, and how they form a quorum.

One node is the default (``make up``); three (``make up BROKERS=3``, or ``HARPICOOP_BROKERS=3``)
make a cluster that can lose one node, for the fault suite. Every node is both a controller and a
broker (KRaft combined mode): three processes instead of six on a two-core machine, and each of
the three is a voter of the metadata quorum, which needs a majority (two) to elect a controller
and commit metadata, so it survives one node down, as the topics (replication 3,
``min.insync.replicas`` 2) do.

Node ``n`` (from 1) listens for clients on ``base + 2(n-1)`` and for its controller peers on the
next port: 9092/9093, 9094/9095, 9096/9097 for the stack, so the first node keeps the port every
service's default bootstrap names. The stack remembers its brokers in one file (their bootstrap
list, ``StackLayout.kafka_bootstrap``): ``make down``, ``make status``, the tests and
``Settings.from_env`` read it, and a count that does not match the data already made is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.common.ports import local_port

BROKERS_VARIABLE = "HARPICOOP_BROKERS"
DEFAULT_BROKERS = 1
SUPPORTED_BROKERS = (1, 3)
"""A single node, or a quorum that tolerates one failure. Two would tolerate none (a majority of
two is two), and five cost more memory than this machine can spare for what it would show."""
FIRST_CLIENT_PORT = local_port(9092)


class BrokerCountError(ValueError):
    """A broker count the stack cannot run, or one that does not match its data."""


@dataclass(frozen=True)
class NodeAddress:
    """Where one KRaft node listens."""

    node_id: int
    port: int
    """The client listener (SASL/SCRAM), which brokers also replicate over."""
    controller_port: int
    """The controller listener (SASL/PLAIN, the admin only), where the voters talk."""

    @property
    def bootstrap(self) -> str:
        return f"localhost:{self.port}"


def node_addresses(count: int, base_port: int = FIRST_CLIENT_PORT) -> list[NodeAddress]:
    """The nodes of a cluster of ``count``, the first listening on ``base_port``."""
    return [
        NodeAddress(node_id=n, port=base_port + 2 * (n - 1), controller_port=base_port + 2 * n - 1)
        for n in range(1, count + 1)
    ]


def quorum_voters(nodes: Sequence[NodeAddress]) -> str:
    """``controller.quorum.voters``: the same static list on every node (``id@host:port``)."""
    return ",".join(f"{node.node_id}@localhost:{node.controller_port}" for node in nodes)


def bootstrap_servers(nodes: Sequence[NodeAddress]) -> str:
    """Every node's client listener, so that a client starting while one is down finds another."""
    return ",".join(node.bootstrap for node in nodes)


def replication_settings(count: int) -> dict[str, str]:
    """The broker's settings for its internal topics (consumer offsets, transaction state, share
    groups) and for topics created without their own: replicated on every node up to three, a
    write acknowledged by all in sync needing two of them once there are three."""
    replication = str(min(3, count))
    min_isr = str(min(2, count))
    return {
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replication,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
    }


def requested_brokers(environ: Mapping[str, str]) -> int | None:
    """The count ``HARPICOOP_BROKERS`` asks for (``make up BROKERS=3`` sets it), None if unset."""
    raw = environ.get(BROKERS_VARIABLE, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) not in SUPPORTED_BROKERS:
        choices = " or ".join(str(count) for count in SUPPORTED_BROKERS)
        raise BrokerCountError(f"{BROKERS_VARIABLE}={raw!r}: the local stack runs {choices}")
    return int(raw)


def remembered_brokers(bootstrap_file: Path, legacy_data: Path) -> int | None:
    """How many brokers the stack was made with: the entries of its bootstrap file, or one for
    a single node's data made before the file existed; None for a stack not made yet."""
    try:
        servers = bootstrap_file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return 1 if (legacy_data / "meta.properties").exists() else None
    return len([server for server in servers.split(",") if server]) or None


def choose_brokers(requested: int | None, remembered: int | None, data_exists: bool) -> int:
    """The count to start: the one asked for, else the one remembered, else one. Asking for
    another count than the data was made with is refused: a node cannot join or leave a quorum
    by a restart, and topics made at one replication keep it."""
    if requested is None:
        return remembered or DEFAULT_BROKERS
    if remembered is not None and requested != remembered and data_exists:
        raise BrokerCountError(
            f"the local stack's Kafka data was made with {remembered} broker(s), not {requested}: "
            f"run 'make down' then 'make clean' (its local data is lost) before "
            f"'make up BROKERS={requested}', or run 'make up BROKERS={remembered}'"
        )
    return requested
