"""Reading lag never brings a process down, even while the brokers' group coordinators load.

``make run`` once died of SIGSEGV in the dashboard as every service started together: the lag
reader asked an ``AdminClient`` for the groups' committed offsets, the broker answered
NOT_COORDINATOR (its group coordinator was still loading), and librdkafka, to look for the
coordinator again, posted to the admin handle's consumer group, which an admin client does not
have. Against a brand-new broker, with that reader in a loop from before the broker started, the
process died in 3 of 5 tries; with two more processes busy on the two cores, in 6 of 6 (the load
also trips an assertion in librdkafka's admin coordinator lookup). This test runs today's reader
the same way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from services.common.access import ADMIN
from services.common.kafka import make_admin
from services.common.paths import PROJECT_ROOT
from services.common.settings import Settings
from tests.conftest import on_broker, throwaway_broker

pytestmark = pytest.mark.integration

GROUPS = [f"coordinating-{uuid.uuid4().hex[:6]}-{number}" for number in range(8)]
TOPIC = "lag-while-loading"

# The dashboard's reader in a loop, one line per reading: how many groups it could read.
READER = """
import json, sys, time
from services.cli.lag import LagReader
from services.common.settings import Settings

groups = sys.argv[1:]
with LagReader(Settings.from_env()) as reader:
    while True:
        try:
            read = reader.read(groups)
            print(json.dumps({g.group: g.partitions for g in read}), flush=True)
        except Exception as error:
            print(json.dumps({"error": str(error)[:200]}), flush=True)
            time.sleep(0.1)
"""

# Services starting beside it: members joining groups of their own, which makes the broker
# create its offsets topic and load the group coordinators while the reader asks.
MEMBERS = """
import sys
from services.common.kafka import make_consumer
from services.common.settings import Settings

topic, *groups = sys.argv[1:]
members = []
for group in groups:
    member = make_consumer(Settings.from_env(), "member", group, log_level=0)
    member.subscribe([topic])
    members.append(member)
while True:
    for member in members:
        member.poll(0.05)
"""


@pytest.fixture
def cpu_load() -> Iterator[None]:
    """Two processes spinning on the two cores: the crash needs the coordinator to be slow."""
    spin = [sys.executable, "-c", "while True: pass"]
    spinners = [subprocess.Popen(spin) for _ in range(os.cpu_count() or 2)]
    yield
    for spinner in spinners:
        spinner.kill()
        spinner.wait()


def start_a_broker_under_the_reader(tmp_path: Path) -> tuple[int | None, list[str]]:
    """A brand-new broker started while the reader asks; how the reader ended, its output."""
    broker = throwaway_broker(tmp_path)
    # As the broker's super user: its ACLs cannot be applied before it is up, and the readers
    # ask from before.
    settings = on_broker(Settings(), broker, ADMIN)
    env = {**os.environ, **settings.environment()}
    output = tmp_path / "reader.out"
    with open(output, "w") as out:
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, *GROUPS],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        members = subprocess.Popen(
            [
                sys.executable,
                "-c",
                MEMBERS,
                TOPIC,
                *(f"{group}-other" for group in GROUPS),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        # The reader asks from before the broker listens until well after it is up.
        broker.start()
        broker.wait_healthy()
        admin = make_admin(settings)
        admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(timeout=60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and reader.poll() is None:
            time.sleep(0.5)
        died = reader.poll()
    finally:
        if reader.poll() is None:
            reader.send_signal(signal.SIGKILL)
            reader.wait()
        members.kill()
        members.wait()
        broker.stop()
    return died, output.read_text().splitlines()


def test_lag_reader_survives_brokers_whose_coordinators_are_loading(
    tmp_path: Path, cpu_load: None
) -> None:
    # The window is short and timing-bound: three brand-new brokers, one after the other.
    for attempt in range(3):
        died, lines = start_a_broker_under_the_reader(tmp_path / f"broker-{attempt}")
        assert died is None, f"the lag reader died ({died}); its last lines: {lines[-5:]}"
        readings = [json.loads(line) for line in lines if line.startswith("{")]
        # It did read: its last reading answered for every group (none has committed yet).
        assert readings and readings[-1] == dict.fromkeys(GROUPS, 0), lines[-5:]
