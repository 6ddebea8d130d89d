"""HARPICOOP_PORT_SHIFT moves every local port together: a second stack and its services (the
fault suite's) listen beside a developer's, on no port of theirs and none twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from services.common.paths import PROJECT_ROOT
from services.common.ports import PORT_SHIFT_VARIABLE, local_port, port_shift

# Every port a stack and its services listen on, as each module builds its defaults at import.
LISTENERS = """
import json, re
from services.common.observability import DEFAULT_PORTS, metrics_port
from services.common.settings import LOCAL_POSTGRES, Settings
from services.dashboard.config import DashboardConfig
from services.gateway.bootstrap import GatewayConfig
from services.stack.brokers import node_addresses
from services.stack.components import Imap, Kafka, Postgres, Registry, Smtp

settings = Settings()
ports = {
    **{f"kafka-{n.node_id}": n.port for n in node_addresses(3)},
    **{f"kafka-{n.node_id}-controller": n.controller_port for n in node_addresses(3)},
    "kafka": Kafka.port, "kafka-controller": Kafka.controller_port,
    "postgres": Postgres.port, "registry": Registry.port,
    "registry-management": Registry.management_port, "imap": Imap.port, "smtp": Smtp.port,
    **{f"metrics-{name}": port for name, port in DEFAULT_PORTS.items()},
    "metrics-other": metrics_port("other", {}),
    "dashboard": DashboardConfig.from_env({}).port, "gateway": GatewayConfig().port,
    "settings-kafka": int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1]),
    "settings-registry": int(re.search(r":(\\d+)/", settings.schema_registry_url).group(1)),
    "settings-database": int(re.search(r":(\\d+)/", settings.database_url).group(1)),
    "settings-local-postgres": int(LOCAL_POSTGRES.rsplit(":", 1)[1]),
    "settings-smtp": settings.smtp_port, "settings-mllp": settings.mllp_port,
    "settings-imap": settings.imap_port,
}
print(json.dumps(ports))
"""


def listeners(shift: str | None) -> dict[str, int]:
    """The ports as a fresh process sees them (the shift is read at import, as services do)."""
    env = {k: v for k, v in os.environ.items() if k != PORT_SHIFT_VARIABLE}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    if shift is not None:
        env[PORT_SHIFT_VARIABLE] = shift
    out = subprocess.run(
        [sys.executable, "-c", LISTENERS],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


def test_every_port_moves_by_the_shift_and_none_lands_on_another() -> None:
    usual, shifted = listeners(None), listeners("22000")
    assert usual["kafka"] == 9092 and usual["dashboard"] == 8088 and usual["gateway"] == 2575
    assert {name: port - 22000 for name, port in shifted.items()} == usual
    # Same-named pairs (a setting and the component serving it) aside, no two listeners share.
    listening = [
        port
        for name, port in shifted.items()
        if not name.startswith("settings-") and name not in ("kafka", "kafka-controller")
    ]
    assert len(set(listening)) == len(listening) == 22
    assert not set(listening) & set(usual.values())
    # Below the kernel's ephemeral range (32768 and up): no outgoing connection holds one.
    assert max(listening) < 32768


def test_unset_or_empty_keeps_the_documented_ports() -> None:
    assert port_shift({}) == 0
    assert port_shift({PORT_SHIFT_VARIABLE: " "}) == 0
    assert local_port(9092, {PORT_SHIFT_VARIABLE: "22000"}) == 31092


@pytest.mark.parametrize("value", ["-1", "abc", "60000"])
def test_a_shift_that_makes_no_port_is_refused_with_its_variable_named(value: str) -> None:
    with pytest.raises(ValueError, match=PORT_SHIFT_VARIABLE):
        port_shift({PORT_SHIFT_VARIABLE: value})
