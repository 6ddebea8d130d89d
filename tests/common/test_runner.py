"""A service whose part fails stops with a non-zero exit: a supervisor that restarts failed
services (systemd's Restart=on-failure, ``make run``, the fault suite) must see a failure, not a
clean stop. Found when notify's parts failed as PostgreSQL stopped and its process exited 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from services.common.paths import PROJECT_ROOT

SERVICE = """
import sys, threading
from services.common.runner import ServiceThreads, run_service

def start(settings, log):
    threads = ServiceThreads("probe", log)
    def part(stop: threading.Event) -> None:
        if sys.argv[1] == "fail":
            raise ConnectionError("the database went away")
        stop.wait()
    threads.spawn("work", part)
    return threads

run_service("probe", start)
"""


def service(how: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "METRICS_PORT": "0", "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", SERVICE, how],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_part_that_fails_makes_the_service_exit_with_a_failure() -> None:
    assert service("fail").wait(60) == 1


def test_a_service_stopped_by_sigterm_exits_cleanly() -> None:
    running = service("run")
    time.sleep(3)  # started and serving
    running.send_signal(signal.SIGTERM)
    assert running.wait(60) == 0
