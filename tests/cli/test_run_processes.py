"""``make run`` tells a crashed service from one that stopped, and stops the others."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.run import Processes, RunError
from services.common.paths import PROJECT_ROOT
from services.stack.layout import StackLayout

# A service that logs, then dies in native code, as the dashboard did inside librdkafka.
CRASHING = """
import ctypes
from services.common.logging import configure_logging

def read_lag():
    ctypes.string_at(0)

log = configure_logging("crasher")
log.info("crasher listening")
read_lag()
"""


def started(layout: StackLayout, name: str, code: str) -> subprocess.Popen[bytes]:
    layout.make_dirs()
    with open(layout.log(name), "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code], cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def test_a_crash_is_named_with_its_signal_and_the_end_of_its_log(tmp_path: Path) -> None:
    layout = StackLayout(tmp_path / "stack")
    processes = Processes(layout)
    processes.running["crasher"] = started(layout, "crasher", CRASHING)
    processes.running["steady"] = started(layout, "steady", "import time; time.sleep(60)")
    processes.running["crasher"].wait(30)

    with pytest.raises(RunError) as raised:
        processes.check_alive()
    message = str(raised.value)
    assert message.startswith("crasher crashed (SIGSEGV); the other services are stopped.")
    assert "crasher listening" in message
    # The fault handler left the Python stack in the log: where in our code it happened.
    log = layout.log("crasher").read_text()
    assert "Fatal Python error: Segmentation fault" in log
    assert "in read_lag" in log

    steady = processes.running["steady"]
    processes.stop_all()
    assert steady.returncode == -signal.SIGTERM


def test_a_service_that_exits_is_said_to_have_stopped(tmp_path: Path) -> None:
    layout = StackLayout(tmp_path / "stack")
    processes = Processes(layout)
    processes.running["quitter"] = started(layout, "quitter", "raise SystemExit(3)")
    processes.running["quitter"].wait(30)
    with pytest.raises(RunError, match=r"^quitter stopped on its own \(exit 3\)"):
        processes.check_alive()
