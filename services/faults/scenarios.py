"""The faults, one scenario each: what is done to the platform while traffic flows, how long it
lasts, and how it is undone. Kafka's nodes are killed through ``services.stack.cluster``, the
services through ``harpicoop run``'s processes, the stack's servers through their components.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from services.cli.run import Processes, wait_until_healthy
from services.common.paths import PROJECT_ROOT
from services.stack.cluster import KafkaCluster
from services.stack.components import Component, Postgres, Registry, Smtp, stop_together
from services.stack.layout import StackLayout

GIVE_UP_SECONDS = 20
"""Notify's ``NOTIFY_GIVE_UP_AFTER_SECONDS`` in the suite: short, so that SMTP can refuse for
longer than it within a scenario (72 hours in production)."""


@dataclass
class Harness:
    """What a scenario acts on."""

    layout: StackLayout
    cluster: KafkaCluster
    processes: Processes
    watched_topics: list[str]
    """Topics a restarted broker must be back in sync on before the next scenario."""
    say: Callable[[str], None]
    down: list[int] = field(default_factory=list)
    """Kafka nodes the scenario stopped or killed."""

    def kill_node(self, node_id: int, how: str) -> None:
        self.say(f"    kill -9 of Kafka node {node_id} ({how})")
        self.cluster.kill(node_id)
        self.down.append(node_id)

    def bring_nodes_back(self) -> None:
        nodes, self.down = self.down, []
        for node_id in nodes:
            self.say(f"    restarting Kafka node {node_id}")
            self.cluster.node(node_id).start()
        for node_id in nodes:
            self.cluster.node(node_id).wait_healthy()
        for node_id in nodes:
            self.cluster.wait_in_sync(node_id, self.watched_topics, timeout=300)
            self.say(f"    node {node_id} back in every in-sync replica set")

    def stop_server(self, server: Component) -> None:
        self.say(f"    stopping {server.name}")
        server.stop()

    def start_server(self, server: Component) -> None:
        self.say(f"    starting {server.name} again")
        server.start()
        server.wait_healthy()

    def kill_services(self, *names: str) -> None:
        for name in names:
            self.say(f"    kill -9 of {name}")
            self.processes.kill(name)

    def restart_services(self, *names: str) -> None:
        for name in names:
            self.processes.restart(name)
        wait_until_healthy(self.processes, names)


@dataclass(frozen=True)
class Scenario:
    name: str
    inject: Callable[[Harness], None]
    repair: Callable[[Harness], None]
    hold: float
    """Seconds the fault lasts before it is undone (a killed broker or service is restarted)."""
    after_drain: Callable[[Harness], dict[str, int]] | None = None
    """What the scenario does once the pipeline drained (an operator's replay), and the
    dead letters it accounted for so, per topic."""


def _kill_leader(harness: Harness) -> None:
    topic = harness.watched_topics[0]
    harness.kill_node(harness.cluster.partition_leader(topic), f"leader of {topic}")


def _kill_controller(harness: Harness) -> None:
    controller = harness.cluster.active_controller()
    if controller is None:
        raise RuntimeError("no active controller to kill: the quorum is electing one")
    harness.kill_node(controller, "the active controller")
    new = harness.cluster.wait_for_controller_other_than(controller)
    harness.say(f"    node {new} is the new active controller")


def _stop_follower(harness: Harness) -> None:
    """A clean stop (SIGTERM) of a node that leads nothing watched first, left down a while."""
    leader = harness.cluster.partition_leader(harness.watched_topics[0])
    node = next(item for item in harness.cluster.nodes if item.node.node_id != leader)
    harness.say(f"    stopping Kafka node {node.node.node_id} cleanly")
    node.stop()
    harness.down.append(node.node.node_id)


def _cut_gateway_from_brokers(harness: Harness) -> None:
    """Two of the three nodes stopped: with one replica left, no partition has the two in sync
    that ``min.insync.replicas`` asks for, so no write of the gateway is acknowledged, as if the
    network to the brokers were cut (the survivor still answers, the write is refused)."""
    nodes = harness.cluster.nodes[1:]
    harness.say(f"    stopping Kafka nodes {', '.join(str(n.node.node_id) for n in nodes)}")
    stop_together(nodes)
    harness.down.extend(node.node.node_id for node in nodes)


def _replay_notify_dead_letters(harness: Harness) -> dict[str, int]:
    """The documented replay of notices given up on (README, the operator's command line)."""
    harness.say("    harpicoop replay-dead-letters deadletter.notify")
    replay = subprocess.run(
        [sys.executable, "-m", "services.cli", "replay-dead-letters", "deadletter.notify"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    for line in replay.stdout.splitlines():
        harness.say(f"      {line}")
    if replay.returncode != 0:
        # Not accounted for: the dead-letter check then names them.
        harness.say(f"      the replay stopped with exit {replay.returncode}")
        return {}
    return {"deadletter.notify": _replayed_count(replay.stdout)}


def _replayed_count(output: str) -> int:
    """Dead letters the replay dealt with, from its summary: records put back, notices resent
    from the ledger, and notices that were no longer failed (sent meanwhile)."""
    total = 0
    for pattern in (r"replayed (\d+) record", r"resent (\d+) notice", r"(\d+) not failed"):
        found = re.search(pattern, output)
        total += int(found.group(1)) if found else 0
    return total


def _service_kill(*names: str, hold: float = 5.0) -> Scenario:
    return Scenario(
        name=f"kill -9 {' + '.join(names)}",
        inject=lambda h: h.kill_services(*names),
        repair=lambda h: h.restart_services(*names),
        hold=hold,
    )


def all_scenarios() -> list[Scenario]:
    """In the order they run: Kafka, each service, the stack's other servers, the network."""
    return [
        Scenario("kill -9 partition leader", _kill_leader, Harness.bring_nodes_back, 20),
        Scenario("kill -9 active controller", _kill_controller, Harness.bring_nodes_back, 20),
        Scenario("one broker down 45 s", _stop_follower, Harness.bring_nodes_back, 45),
        _service_kill("gateway"),  # mid-frame: eleven engines are always mid-exchange
        _service_kill("dedup"),
        _service_kill("enrich"),
        _service_kill("notify"),
        _service_kill("analytics"),
        _service_kill("covid"),
        _service_kill("enrich", "notify"),
        Scenario(
            "PostgreSQL stopped 30 s",
            lambda h: h.stop_server(Postgres(h.layout)),
            lambda h: h.start_server(Postgres(h.layout)),
            30,
        ),
        Scenario(
            "registry down 30 s",
            lambda h: h.stop_server(Registry(h.layout)),
            lambda h: h.start_server(Registry(h.layout)),
            30,
        ),
        Scenario(
            f"SMTP down past give-up ({GIVE_UP_SECONDS} s), replay",
            lambda h: h.stop_server(Smtp(h.layout)),
            lambda h: h.start_server(Smtp(h.layout)),
            GIVE_UP_SECONDS + 25,
            after_drain=_replay_notify_dead_letters,
        ),
        Scenario(
            "gateway cut from brokers 30 s",
            _cut_gateway_from_brokers,
            Harness.bring_nodes_back,
            30,
        ),
    ]


SHORT = ("kill -9 partition leader", "kill -9 notify")
"""CI's short version: one broker kill, one service kill."""


def chosen(names: list[str], short: bool) -> list[Scenario]:
    """The scenarios asked for by name (a unique part of it), or CI's short set, or all."""
    every = all_scenarios()
    if short:
        return [item for item in every if item.name in SHORT]
    if not names:
        return every
    picked = []
    for name in names:
        matches = [item for item in every if name.lower() in item.name.lower()]
        if len(matches) != 1:
            known = "; ".join(item.name for item in every)
            raise ValueError(f"{name!r} names {len(matches)} scenarios; choose among: {known}")
        picked.append(matches[0])
    return picked
