"""``make run`` on the real stack: a (small) simulated day flows end to end, the summary agrees
with the emails on disk, and no service logs a patient's name."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from services.common.paths import PROJECT_ROOT
from services.common.settings import Settings
from services.gateway.hl7 import parse
from services.stack.layout import StackLayout

pytestmark = pytest.mark.integration

# A seed of its own each time: the same day sent twice would rightly be dropped as resent.
# Today's date (the default): analytics keeps only the last few days.
DAY = ["--seed", f"end-to-end-{uuid.uuid4().hex[:8]}", "--rate", "0.15"]


def patient_family_names(folder: Path) -> set[str]:
    """The day's patients, from the messages the simulator writes for the same seed."""
    subprocess.run(
        [sys.executable, "-m", "services.simulator", *DAY, "--out", str(folder)],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    names = set()
    for path in folder.glob("*.hl7"):
        # One message after another, segments ending in newlines, each starting with MSH.
        for payload in re.split(rb"\n(?=MSH\|)", path.read_bytes()):
            pid = parse(payload).first("PID")
            if pid is not None and len(pid.get(5, 1)) >= 4:
                names.add(pid.get(5, 1))
    return names


def test_a_small_day_flows_end_to_end_and_the_logs_hold_no_patient_name(
    stack: Settings, tmp_path: Path
) -> None:
    names = patient_family_names(tmp_path / "messages")
    assert len(names) > 20
    layout = StackLayout.default()
    logs = {path: path.stat().st_size for path in layout.logs.glob("*.log")}
    started = time.time()

    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "run", "--fast", "--no-keep-running", *DAY],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout[result.stdout.index("Summary of this run") :]
    # The run checks itself against what the platform promises (services.cli.reconcile).
    checks = re.search(r"(\d+) of (\d+) checks passed", summary)
    assert checks and checks.group(1) == checks.group(2) == "5", summary

    emails = [path for path in layout.mail.glob("*.eml") if path.stat().st_mtime >= started]
    sent = int(re.search(r"Emails: ([\d,]+) sent", summary).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert sent > 0 and sent == len(emails)
    assert f"{len(emails):,} .eml files on disk" in summary
    received = int(re.search(r"total\s+([\d,]+)", summary).group(1).replace(",", ""))  # type: ignore[union-attr]
    routed = re.search(r"([\d,]+) enriched with their recipients, ([\d,]+) unroutable", summary)
    counted = re.search(r"hourly windows this run updated: ([\d,]+) stay events", summary)
    assert routed and counted
    # Analysts see at least this run's events (a backlog from earlier tests may add to them).
    in_analytics = int(counted.group(1).replace(",", ""))
    assert in_analytics >= sum(int(n.replace(",", "")) for n in routed.groups())
    assert received > 50
    for email in emails:
        recipient = next(
            line
            for line in email.read_text(errors="replace").splitlines()
            if line.startswith("X-Original-To:")
        )
        assert recipient.strip().endswith("mssante.fr")

    written = ""
    for path in layout.logs.glob("*.log"):
        if path.name.startswith(("kafka", "registry", "postgres")):
            continue
        with open(path, encoding="utf-8", errors="replace") as log:
            log.seek(logs.get(path, 0))
            written += log.read()
    service_lines = [line for line in written.splitlines() if line.startswith("{")]
    assert service_lines, "the services logged nothing"
    for line in service_lines:
        json.loads(line)
    leaked = sorted(name for name in names if re.search(rf"\b{re.escape(name)}\b", written))
    assert leaked == []
