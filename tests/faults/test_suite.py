"""The fault suite's own logic: which scenarios run, the time to recover, the replay's account,
and the refusal to run on a developer's stack. The suite itself runs as ``make faults``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.common.paths import PROJECT_ROOT
from services.faults.scenarios import SHORT, _replayed_count, all_scenarios, chosen
from services.faults.suite import CALM_LAG, longest_silence, recovery_seconds


def test_every_scenario_of_the_issue_and_a_short_set_of_one_broker_and_one_service() -> None:
    names = [item.name for item in all_scenarios()]
    assert len(names) == len(set(names)) == 14
    for service in ("gateway", "dedup", "enrich", "notify", "analytics", "covid"):
        assert f"kill -9 {service}" in names
    assert [item.name for item in chosen([], short=True)] == list(SHORT)
    assert [item.name for item in chosen(["registry"], short=False)] == ["registry down 30 s"]
    with pytest.raises(ValueError, match="choose among"):
        chosen(["kill"], short=False)


def test_recovery_is_the_first_calm_moment_after_the_repair_with_the_gateway_acking() -> None:
    injected, repaired = 100.0, 120.0
    samples = [
        (110.0, None),  # brokers away: no reading
        (122.0, 50),  # calm, but no ACK yet around it
        (124.0, CALM_LAG + 1),
        (126.0, 40),
    ]
    acks = [99.0, 125.5]
    assert recovery_seconds(injected, repaired, samples, acks, traffic_done=200.0) == 26.0
    # Once the traffic is over, calm is enough.
    assert recovery_seconds(injected, repaired, samples, [], traffic_done=121.0) == 22.0
    assert recovery_seconds(injected, repaired, samples[:2], [], traffic_done=200.0) is None


def test_the_replay_accounts_for_records_put_back_and_notices_resent_or_already_sent() -> None:
    output = (
        "replayed 0 record(s) from deadletter.notify; 0 without a source\n"
        "resent 7 notice(s) from the ledger; 0 purged, 0 unknown, 2 not failed\n"
    )
    assert _replayed_count(output) == 9


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("HARPICOOP_PORT_SHIFT", "0", "developer stack's ports"),
        ("HARPICOOP_STACK_DIR", str(PROJECT_ROOT / ".stack"), "needs its own"),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092", "unset KAFKA_BOOTSTRAP_SERVERS"),
    ],
)
def test_the_suite_refuses_the_developer_s_stack(variable: str, value: str, says: str) -> None:
    env = {key: item for key, item in os.environ.items() if not key.startswith("HARPICOOP_")}
    env.update({variable: value, "PYTHONPATH": str(PROJECT_ROOT)})
    refused = subprocess.run(
        [sys.executable, "-m", "services.faults", "--list"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert says in refused.stderr


def test_the_longest_silence_counts_from_the_fault_to_the_end_of_the_traffic() -> None:
    assert longest_silence(10.0, 30.0, [5.0, 11.0, 12.0, 25.0, 26.0]) == 13.0
    assert longest_silence(10.0, 30.0, []) == 20.0
