"""``make run`` on the real stack: a (small) simulated day flows end to end, the summary agrees
with the emails on disk, and patient data stays where it belongs.

One run serves every test of this module (a day takes minutes). One patient of each establishment
carries a canary identity (``services.simulator.scenario.Canary``) found nowhere else: a family
name, a given name, a birth date and an INS made for this session. It must reach the GPs' emails,
and appear in no log, no metric, no dead letter, no analytics record and no output of the
operator's commands in their default mode.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from services.cli.__main__ import main as harpicoop
from services.cli.topics_since import records_since
from services.common.deadletter import header_list, read_error_headers
from services.common.kafka import consumer_config
from services.common.observability import DEFAULT_PORTS
from services.common.paths import PROJECT_ROOT
from services.common.serde import AvroSerde, make_registry_client
from services.common.settings import Settings
from services.common.topics import declared_topics, topic_spec
from services.gateway.hl7 import parse
from services.simulator.scenario import Canary
from services.stack.layout import StackLayout

pytestmark = pytest.mark.integration

# A seed of its own each time: the same day sent twice would rightly be dropped as resent.
# Today's date (the default): analytics keeps only the last few days.
DAY = ["--seed", f"end-to-end-{uuid.uuid4().hex[:8]}", "--rate", "0.15"]


def make_canary() -> Canary:
    """Names of letters no list of names holds, a birth date and an INS of this session."""
    token = uuid.uuid4().int
    letters = "".join(chr(ord("a") + (token >> (5 * i)) % 26) for i in range(12))
    birth = dt.date(1925, 1, 1) + dt.timedelta(days=token % (365 * 10))
    body = f"2{birth:%y%m}54{token % 10**6:06d}"
    return Canary(
        f"Canari{letters[:6]}", f"Ondine{letters[6:]}", birth, f"{body}{97 - int(body) % 97:02d}"
    )


CANARY = make_canary()
CANARY_ENV = {
    "SIMULATOR_CANARY": ",".join(
        [CANARY.family_name, CANARY.given_name, CANARY.birth_date.isoformat(), CANARY.ins]
    )
}


def canary_forms() -> list[str]:
    """Every way the canary may be written: as sent (HL7), as decoded (ISO), as shown (French)."""
    born = CANARY.birth_date
    return [
        CANARY.family_name,
        CANARY.given_name,
        CANARY.ins,
        f"{born:%Y%m%d}",
        born.isoformat(),
        f"{born:%d/%m/%Y}",
    ]


def canary_in(text: str | bytes) -> list[str]:
    """The canary's forms found in ``text``: names in any case, even glued to other letters
    (``NAME^GIVEN``); numbers and dates not inside a longer number (a timestamp, a float)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [
        form
        for form in canary_forms()
        if re.search(rf"(?<![0-9]){re.escape(form)}(?![0-9])", text, re.IGNORECASE)
    ]


@dataclass
class MetricScrapes:
    """Every service's ``/metrics`` and the dashboard's figures, read while the day runs."""

    scraped: dict[str, int] = field(default_factory=dict)
    leaks: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        urls = {
            f"{name} /metrics": f"http://localhost:{port}/metrics"
            for name, port in DEFAULT_PORTS.items()
        }
        urls["dashboard /api/overview"] = "http://localhost:8088/api/overview"
        while not self.stop.wait(2.0):
            for what, url in urls.items():
                try:
                    answer = httpx.get(url, timeout=2)
                except httpx.HTTPError:
                    continue
                if answer.status_code == 200:
                    self.scraped[what] = self.scraped.get(what, 0) + 1
                    self.leaks += [f"{what}: {form}" for form in canary_in(answer.text)]


@dataclass
class DayRun:
    result: subprocess.CompletedProcess[str]
    started: float
    log_sizes: dict[Path, int]
    names: set[str]
    metrics: MetricScrapes


def patient_family_names(folder: Path) -> set[str]:
    """The day's patients, from the messages the simulator writes for the same seed."""
    subprocess.run(
        [sys.executable, "-m", "services.simulator", *DAY, "--out", str(folder)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **CANARY_ENV},
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


@pytest.fixture(scope="module")
def day_run(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DayRun]:
    """One ``harpicoop run --fast`` of a small day carrying the canary, metrics read meanwhile."""
    names = patient_family_names(tmp_path_factory.mktemp("messages"))
    layout = StackLayout.default()
    log_sizes = {path: path.stat().st_size for path in layout.logs.glob("*.log")}
    metrics = MetricScrapes()
    watcher = threading.Thread(target=metrics.watch, daemon=True)
    started = time.time()
    watcher.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "services.cli", "run", "--fast", "--no-keep-running", *DAY],
            cwd=PROJECT_ROOT,
            env={**os.environ, **CANARY_ENV},
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        metrics.stop.set()
        watcher.join()
    yield DayRun(result, started, log_sizes, names, metrics)


def test_a_small_day_flows_end_to_end_and_the_logs_hold_no_patient_name(
    day_run: DayRun,
) -> None:
    result, names, started = day_run.result, day_run.names, day_run.started
    assert len(names) > 20
    layout = StackLayout.default()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout[result.stdout.index("Summary of this run") :]
    # The run checks itself against what the platform promises (services.cli.reconcile),
    # among them that no email shows a bare code where words are expected.
    checks = re.search(r"(\d+) of (\d+) checks passed", summary)
    assert checks and checks.group(1) == checks.group(2), summary
    for promise in (
        "each email shows words, never a bare code",
        "no notice sent for a protected or opposed patient",
        "each deferred event appears in exactly one digest",
        "every sent notice DELIVERED or explicitly unconfirmed",
        "every bounce followed by the next step or a worklist entry",
        "each unroutable event is on the worklist",
    ):
        assert re.search(rf"ok\s+{promise}", summary), (promise, summary)

    emails = [path for path in layout.mail.glob("*.eml") if path.stat().st_mtime >= started]
    sent = int(re.search(r"Emails: ([\d,]+) sent", summary).group(1).replace(",", ""))  # type: ignore[union-attr]
    # A bounced email was accepted, then returned: the day's bouncing GPs have none on disk.
    returned = re.search(r"sent by the simulated GPs\), ([\d,]+) bounced", summary)
    bounced = int(returned.group(1).replace(",", "")) if returned else 0
    assert bounced > 0 and sent > 0 and sent - bounced == len(emails)
    assert f"{len(emails):,} .eml files on disk" in summary
    received = int(re.search(r"total\s+([\d,]+)", summary).group(1).replace(",", ""))  # type: ignore[union-attr]
    routed = re.search(r"([\d,]+) enriched with their recipients, ([\d,]+) unroutable", summary)
    counted = re.search(r"hourly windows this run updated: ([\d,]+) stay events", summary)
    assert routed and counted
    # Analysts see at least this run's events (a backlog from earlier tests may add to them).
    in_analytics = int(counted.group(1).replace(",", ""))
    assert in_analytics >= sum(int(n.replace(",", "")) for n in routed.groups())
    assert received > 50
    for sent_email in emails:
        recipient = next(
            line
            for line in sent_email.read_text(errors="replace").splitlines()
            if line.startswith("X-Original-To:")
        )
        assert recipient.strip().endswith("mssante.fr")

    written = service_logs(day_run)
    service_lines = [line for line in written.splitlines() if line.startswith("{")]
    assert service_lines, "the services logged nothing"
    for line in service_lines:
        json.loads(line)
    leaked = sorted(name for name in names if re.search(rf"\b{re.escape(name)}\b", written))
    assert leaked == []


def service_logs(day_run: DayRun, *, stack_too: bool = False) -> str:
    """What was written to the logs since the run began (the stack's own logs on request)."""
    written = ""
    for path in StackLayout.default().logs.glob("*.log"):
        if not stack_too and path.name.startswith(("kafka", "registry", "postgres")):
            continue
        with open(path, encoding="utf-8", errors="replace") as log:
            log.seek(day_run.log_sizes.get(path, 0))
            written += f"\n--- {path.name}\n" + log.read()
    return written


def test_the_canary_reaches_the_gps_and_nothing_else(stack: Settings, day_run: DayRun) -> None:
    assert day_run.result.returncode == 0, day_run.result.stdout[-3000:]
    since_ms = int(day_run.started * 1000)
    layout = StackLayout.default()
    leaks: list[str] = []

    # It went through: the GPs' emails name the patient (they are meant to).
    emails = [p for p in layout.mail.glob("*.eml") if p.stat().st_mtime >= day_run.started]
    assert any(CANARY.family_name in canary_in(email_text(p)) for p in emails)

    # Every log written since the run began, the stack's own included, and the run's output.
    for part in service_logs(day_run, stack_too=True).split("\n--- ")[1:]:
        name, _, text = part.partition("\n")
        leaks += [f"log {name}: {form}" for form in canary_in(text)]
    leaks += [f"harpicoop run: {form}" for form in canary_in(day_run.result.stdout)]
    leaks += [f"harpicoop run (stderr): {form}" for form in canary_in(day_run.result.stderr)]

    # Every metric, every service, read while it ran.
    scraped = day_run.metrics.scraped
    running = ("gateway", "dedup", "enrich", "analytics", "notify", "covid", "dashboard")
    missing = {f"{name} /metrics" for name in running} - set(scraped)
    assert not missing and "dashboard /api/overview" in scraped, scraped
    leaks += day_run.metrics.leaks

    # Every dead letter (headers and value, decoded when its source's schema says how) and
    # every analytics record written since the run began.
    registry = make_registry_client(stack)
    topics = [spec.name for spec in declared_topics()]
    watched = [t for t in topics if t.startswith(("deadletter.", "analytics."))]
    decoded = 0
    for message in records_since(stack, watched, since_ms):
        where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
        for name, header in header_list(message.headers()):
            leaks += [f"{where} header {name}: {form}" for form in canary_in(header or b"")]
        leaks += [f"{where} value: {form}" for form in canary_in(message.value() or b"")]
        schema = _schema_of(str(message.topic()), read_error_headers(message.headers()))
        if schema and message.value():
            try:
                record = AvroSerde(registry, schema).deserialize(
                    str(message.topic()), message.value() or b""
                )
            except Exception:  # a poison record: its bytes were searched above
                continue
            decoded += 1
            text = json.dumps(record, default=str, ensure_ascii=False)
            leaks += [f"{where} decoded: {form}" for form in canary_in(text)]
    assert decoded > 0, "no analytics record since the run began"

    # The operator's commands, each in its default mode.
    outputs = {"status": _cli(["status"])}
    for topic in topics:
        # Default mode; as many records as the topic holds, so the run's are surely among them.
        outputs[f"tail {topic}"] = _cli(["tail", topic, "-n", str(_records_in(stack, topic))])
        if topic.startswith("deadletter."):
            outputs[f"replay-dead-letters {topic} --dry-run"] = _cli(
                ["replay-dead-letters", topic, "--dry-run"]
            )
    assert '"PID"' in outputs["tail hl7.archive"], "the archive's tail shows no frame outline"
    for command, output in outputs.items():
        leaks += [f"harpicoop {command}: {form}" for form in canary_in(output)]

    assert leaks == []


def email_text(path: Path) -> str:
    """An email's headers and text parts, decoded (quoted-printable, base64, RFC 2047)."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    parts = [str(value) for value in message.values()]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)


def _schema_of(topic: str, errors: dict[str, str]) -> str | None:
    """The value schema of a record: its topic's, or for a dead letter its source topic's."""
    try:
        return topic_spec(errors.get("topic") or topic).value_schema
    except KeyError:
        return None


def _records_in(settings: Settings, topic: str) -> int:
    consumer = Consumer(consumer_config(settings, "harpicoop-reader", "harpicoop-reader-count"))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        marks = [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions
        ]
    finally:
        consumer.close()
    return max(1, sum(high - low for low, high in marks))


def _cli(argv: list[str]) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        harpicoop(argv)
    return out.getvalue() + err.getvalue()
