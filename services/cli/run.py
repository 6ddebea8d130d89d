"""``make run`` (``harpicoop run``): the whole platform on this machine, fed a simulated day.

It starts the stack, loads the directory sample, starts every service as its own process
(``python -m services.<name>``, as production runs them), replays a day of the eleven
establishments through the gateway at a settable speed-up, shows the pipeline's progress, waits
for it to drain, sends the daily digests still waiting for their hour (the simulated day is over
in minutes, whatever the wall clock says; ``services.simulator.preferences`` chooses which GPs
get one), lets some simulated GPs read their mail (``services.simulator.gp_mail``: read
receipts for the notices that asked) and waits for what comes back to the platform's mailbox
(delivery reports, read receipts, bounces, which notify's receipts reader records), and prints a
summary computed from what the run itself produced: the topics since the run began, the
notification ledger, the follow-up cases and the emails on disk. Ctrl-C stops everything it
started.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaException, TopicPartition

from services.analytics.config import AnalyticsConfig
from services.cli import hops
from services.cli.lag import LagReader
from services.cli.reconcile import reconcile
from services.cli.topics_since import records_since
from services.common.db import connect
from services.common.establishments import load_establishments
from services.common.kafka import consumer_config
from services.common.observability import DEFAULT_PORTS
from services.common.paths import PROJECT_ROOT
from services.common.ports import local_port
from services.common.records import RawMessage, UnroutableStayEvent
from services.common.serde import RecordSerde, make_registry_client
from services.common.settings import Settings
from services.common.tls import TlsFiles
from services.common.topics import RAW_TOPIC_PREFIX
from services.directory.__main__ import IMPORT_REFUSED
from services.directory.bootstrap import PRACTITIONERS_TOPIC
from services.notify.config import NotifyConfig
from services.notify.receipts import notice_of
from services.stack.layout import StackLayout

SERVICES = ("gateway", "dedup", "enrich", "analytics", "notify", "covid", "dashboard")
# The consumer groups whose lag says whether the pipeline has caught up.
PIPELINE_GROUPS = ("dedup", "enrich", "analytics", "analytics-sql", "notify", "covid")
DASHBOARD_URL = f"http://localhost:{local_port(8088)}"
# The days back from now whose windows analytics surely still hold (see EventClock).
ANALYTICS_DAYS_KEPT = AnalyticsConfig().expires.days - 1
RUN_DSN_WINDOW_SECONDS = 60
"""The run's ``NOTIFY_DSN_WINDOW_SECONDS``: the stack's SMTP server reports within a second or
two, so a notice with no report a minute after it went is not getting one (notify's default, an
hour, suits an operator's relay, not a day replayed in minutes)."""
RECEIPTS_MARGIN_SECONDS = 30.0
"""How much longer than the window the run waits for reports: a couple of reader passes."""


class RunError(RuntimeError):
    """The run cannot go on; the message says what to look at."""


def _say(text: str = "") -> None:
    print(text, flush=True)


@dataclass
class Processes:
    """The services this run started, each logging to the stack's logs folder."""

    layout: StackLayout
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    """What each was started with besides this process's environment, to start it again."""

    def start(self, name: str, extra_env: dict[str, str] | None = None) -> None:
        log = self.layout.log(name)
        self.environments[name] = dict(extra_env or {})
        with open(log, "ab") as out:
            self.running[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"],
                cwd=PROJECT_ROOT,
                env={**os.environ, **self.environments[name]},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, name: str) -> None:
        """SIGKILL the service and whatever it started (its session's group), as a crash or an
        OOM killer would: no clean shutdown, nothing flushed or committed on the way out."""
        process = self.running[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)

    def restart(self, name: str) -> None:
        """Start the service again with what it was first started with."""
        self.start(name, self.environments.get(name))

    def exits(self) -> dict[str, int]:
        """The services that ended, with their exit codes (negative: the signal)."""
        return {
            name: code
            for name, process in self.running.items()
            if (code := process.poll()) is not None
        }

    def check_alive(self) -> None:
        for name, process in self.running.items():
            if process.poll() is not None:
                raise RunError(self.ended(name, process.returncode))

    def ended(self, name: str, code: int) -> str:
        """What to tell of a service that ended on its own: a crash (a signal) or a stop."""
        log = self.layout.log(name)
        if code < 0:
            try:
                what = f"crashed ({signal.Signals(-code).name})"
            except ValueError:
                what = f"crashed (signal {-code})"
        else:
            what = f"stopped on its own (exit {code})"
        # Enough for a fault handler's stack dump and the log line before it.
        tail = last_lines(log, 14)
        return (
            f"{name} {what}; the other services are stopped. The end of {log}:\n"
            + "".join(f"    {line}\n" for line in tail)
            + "  Read the whole log, then run 'make run' again (a crash is a defect to report "
            "with that log)."
        )

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for name, process in self.running.items():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _say(f"  {name} did not stop in time; killing it")
                process.kill()
        self.running.clear()


def last_lines(path: Path, count: int) -> list[str]:
    """The file's last lines (logs hold ids, never patient data), cut to a screen's width."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 64 * 1024))
            lines = log.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    return [line[:300] for line in lines[-count:]]


def notify_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What the run sets for notify, unless ``environ`` says otherwise: the receipts reader on,
    reading every two seconds, the run's DSN window, and read receipts asked for one sample GP
    in two (``services.simulator.gp_mail``), so the day shows notices that asked and notices
    that did not. The mailbox itself is the stack's (``IMAP_*`` settings' local defaults, the
    password in ``.stack/secrets/imap-mailbox``, ``Settings.from_env``)."""
    from services.simulator.gp_mail import asking_for_read_receipts
    from services.simulator.practitioners import directory_gps

    wanted = {
        "NOTIFY_RECEIPTS_READER": "on",
        "NOTIFY_RECEIPTS_POLL_INTERVAL_SECONDS": "2",
        "NOTIFY_DSN_WINDOW_SECONDS": str(RUN_DSN_WINDOW_SECONDS),
        "NOTIFY_READ_RECEIPTS": ",".join(asking_for_read_receipts(directory_gps())),
    }
    return {key: value for key, value in wanted.items() if not environ.get(key)}


def check_mailbox(environ: Mapping[str, str]) -> NotifyConfig:
    """Notify's configuration for the run; with its reader on, the platform's mailbox is signed
    in to as notify will (its settings, the stack's password), so that a run whose receipts
    cannot be read says so before the day, not after it."""
    import imaplib

    from services.notify.receipts_reader import mailbox

    config = NotifyConfig.from_env(environ)
    if config.receipts_reader.lower() == "off":
        _say("  warning: NOTIFY_RECEIPTS_READER=off: no delivery report will be read")
        return config
    notify = Settings.from_env(environ, principal="notify")
    try:
        with mailbox(notify, timeout=10):
            pass
    except (OSError, imaplib.IMAP4.error) as error:
        raise RunError(
            f"notify cannot read the platform's mailbox {notify.imap_user} at "
            f"{notify.imap_host}:{notify.imap_port} ({type(error).__name__}): is the stack's "
            "IMAP server up ('make status'), and .stack/secrets/imap-mailbox there?"
        ) from None
    return config


def wait_until_healthy(processes: Processes, names: tuple[str, ...], timeout: float = 120) -> None:
    pending = set(names)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        processes.check_alive()
        for name in sorted(pending):
            try:
                answer = httpx.get(f"http://localhost:{DEFAULT_PORTS[name]}/health", timeout=1)
                if answer.status_code == 200:
                    pending.discard(name)
                    _say(f"  {name:10} healthy")
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    if pending:
        raise RunError(
            f"not healthy after {timeout:.0f} s: {', '.join(sorted(pending))}; read "
            + ", ".join(str(processes.layout.log(name)) for name in sorted(pending))
        )


def start_services(processes: Processes, notify_env: Mapping[str, str]) -> None:
    """Every service as its own process, then wait until each says it is healthy."""
    for name in SERVICES:
        # The gateway speaks MLLP over TLS with make up's certificates, unless told otherwise.
        tls = TlsFiles(processes.layout.tls).gateway_environment() if name == "gateway" else {}
        extra = dict(notify_env) if name == "notify" else tls
        processes.start(name, {key: value for key, value in extra.items() if key not in os.environ})
    wait_until_healthy(processes, SERVICES)


class Counter:
    """Records written to topics since the run began, from the partitions' end offsets."""

    def __init__(self, settings: Settings, topics: list[str]) -> None:
        self.consumer = Consumer(consumer_config(settings, "harpicoop-run", "harpicoop-run"))
        metadata = self.consumer.list_topics(timeout=10)
        self.partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            if topic in metadata.topics
            for partition in metadata.topics[topic].partitions
        ]
        self.start = {(p.topic, p.partition): self._end(p) for p in self.partitions}

    def _end(self, partition: TopicPartition) -> int:
        # A partition whose leader just moved (a broker lost, on three) answers "not leader"
        # until the client's metadata catches up: ask again for a while.
        deadline = time.monotonic() + 60
        while True:
            try:
                return int(self.consumer.get_watermark_offsets(partition, timeout=10)[1])
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def since_start(self, prefix: str) -> int:
        return sum(
            self._end(p) - self.start[(p.topic, p.partition)]
            for p in self.partitions
            if p.topic.startswith(prefix)
        )

    def close(self) -> None:
        self.consumer.close()


def emails_since(maildir: Path, started: float) -> int:
    return sum(1 for path in maildir.glob("*.eml") if path.stat().st_mtime >= started)


def pending_notices(settings: Settings, *, digests: bool = True) -> int:
    """Notices still to send; without the digests waiting for their hour when ``digests`` is
    False."""
    with connect(settings) as conn:
        row = conn.execute(
            "SELECT count(*) FROM notify.v_notices "
            "WHERE state IN ('pending', 'retrying', 'sending') AND (%s OR kind <> 'DIGEST')",
            (digests,),
        ).fetchone()
    return int(row[0]) if row else 0


def send_digests_now(settings: Settings) -> int:
    """The end of the simulated day: every digest still waiting for its hour is due now (a day
    replayed in minutes would otherwise wait for 18:00 on the wall clock). As the operator,
    through notify's own function."""
    with connect(settings) as conn:
        row = conn.execute("SELECT notify.send_digests_now()").fetchone()
        conn.commit()
    return int(row[0]) if row else 0


def set_sample_choices() -> None:
    """Some of the sample's GPs get a daily digest, discharges only, or transfers too
    (``services.simulator.preferences``), set as anyone sets them: the directory's command."""
    from services.simulator.practitioners import directory_gps
    from services.simulator.preferences import choice_groups

    for group in choice_groups(directory_gps()):
        _say(f"  {len(group.rpps)} GPs: {group.name}")
        subprocess.run(
            [sys.executable, "-m", "services.directory", *group.command()],
            cwd=PROJECT_ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )


def wait_for_drain(
    settings: Settings,
    snapshot: Callable[[], tuple[int, ...]],
    timeout: float = 300,
    *,
    digests: bool = True,
) -> bool:
    """True once nothing moves any more: no notice waits, and neither the consumer lag nor the
    outputs changed over three checks two seconds apart.

    A lag of zero alone cannot say "done": a service may still be writing what the next one
    reads (the Covid follow-ups that notify turns into emails, say).
    """
    calm, last = 0, None
    deadline = time.monotonic() + timeout
    with LagReader(settings) as lag_reader:
        while time.monotonic() < deadline:
            try:
                lag = sum(group.lag for group in lag_reader.read(PIPELINE_GROUPS))
            except KafkaException:  # a leader just moved: not calm yet, ask again
                calm, last = 0, None
                time.sleep(2)
                continue
            state = (lag, *snapshot())
            waiting = pending_notices(settings, digests=digests)
            calm = calm + 1 if state == last and waiting == 0 else 0
            last = state
            if calm >= 3:
                return True
            time.sleep(2)
    return False


def awaiting_receipts(
    settings: Settings, since: dt.datetime, window: dt.timedelta, read: Collection[str]
) -> int:
    """Reports the run still waits for: notices sent since ``since``, within ``window`` of
    their sending, with nothing back yet; and notices whose read receipt a simulated GP sent
    (``read``, notification ids) not yet recorded as read."""
    with connect(settings) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE delivered_at IS NULL AND read_at IS NULL "
            "  AND bounced_at IS NULL AND sent_at > now() - %s), "
            "count(*) FILTER (WHERE notification_id::text = ANY(%s) AND read_at IS NULL) "
            "FROM notify.v_notices WHERE state = 'sent' AND sent_at >= %s",
            (window, list(read), since),
        ).fetchone()
    return int(row[0]) + int(row[1]) if row else 0


def wait_for_receipts(
    settings: Settings,
    since: dt.datetime,
    window: dt.timedelta,
    read: Collection[str],
    alive: Callable[[], None],
) -> int:
    """Wait until no report is awaited (``awaiting_receipts``), at most the window and a margin:
    by then a notice with no report is explicitly unconfirmed. How many were still awaited."""
    deadline = time.monotonic() + window.total_seconds() + RECEIPTS_MARGIN_SECONDS
    while True:
        alive()
        # A bounce read meanwhile gives a next step to send, whose report is awaited in turn.
        waiting = awaiting_receipts(settings, since, window, read) + pending_notices(settings)
        if waiting == 0 or time.monotonic() >= deadline:
            return waiting
        time.sleep(2)


def gps_read_their_mail(maildir: Path, started: float, simulator_args: list[str]) -> list[str]:
    """Some simulated GPs open the notices delivered to them since ``started`` and their mail
    clients send the read receipts asked for, through the stack's SMTP server; the notification
    ids answered. Which ones is drawn from the day's seed."""
    import smtplib

    from services.simulator.app import parser
    from services.simulator.gp_mail import GpMailClient

    settings = Settings.from_env()
    seed = str(parser().parse_args(simulator_args).seed)
    client = GpMailClient(settings.smtp_host, settings.smtp_port, seed=seed)
    try:
        answered = client.read(maildir, started)
    except (OSError, smtplib.SMTPException) as error:
        raise RunError(
            f"the GPs' read receipts could not be sent to {settings.smtp_host}:"
            f"{settings.smtp_port} ({type(error).__name__}): read .stack/logs/smtp.log"
        ) from None
    return [found for item in answered if (found := notice_of(item))]


@dataclass
class RunFigures:
    """What a run measured, for the summary and for benchmarks."""

    received: int = 0
    unique: int = 0
    enriched: int = 0
    unroutable: int = 0
    emails_sent: int = 0
    emails_on_disk: int = 0
    covid_cases: int = 0
    delivered: int = 0
    read: int = 0
    bounced: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    send_seconds: float = 0.0
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PublishedFigures:
    """What the summary reads from the views notify, covid and analytics publish."""

    states: dict[str, int]
    """Notices created since the run began, by state."""
    p50: float | None
    p99: float | None
    """Seconds from MLLP receipt to SMTP acceptance, of the notices received since."""
    backlog: int
    """Notices created since, about events received before."""
    covid: tuple[int, int]
    """Follow-up cases opened since: all, positive."""
    analytics: tuple[int, int]
    """The hourly windows updated since: stay events, notices sent."""
    receipts: tuple[int, int, int] = (0, 0, 0)
    """Of the notices sent since: delivered, read, bounced (the platform's mailbox said so)."""
    next_steps: int = 0
    """Notices created since as the next step of a bounced or failed one's chain."""
    worklist: tuple[int, int] = (0, 0)
    """Worklist entries recorded since: unroutable events, notices no chain delivered."""


def published_figures(settings: Settings, since: dt.datetime) -> PublishedFigures:
    """Read as ``settings``' principal (the operator), from the published views only."""
    with connect(settings) as conn:
        states = dict(
            conn.execute(
                "SELECT state, count(*) FROM notify.v_notices WHERE created_at >= %s "
                "GROUP BY state",
                (since,),
            ).fetchall()
        )
        latency = "extract(epoch FROM sent_at - received_at)"
        percentiles = conn.execute(
            f"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {latency}), "
            f"percentile_cont(0.99) WITHIN GROUP (ORDER BY {latency}) FROM notify.v_notices "
            "WHERE state = 'sent' AND received_at >= %s",
            (since,),
        ).fetchone()
        p50, p99 = percentiles if percentiles else (None, None)
        backlog = conn.execute(
            "SELECT count(*) FROM notify.v_notices WHERE created_at >= %s AND received_at < %s",
            (since, since),
        ).fetchone()
        covid = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE covid_status = 'POSITIVE') "
            "FROM covid.v_cases WHERE opened_at >= %s",
            (since,),
        ).fetchone() or (0, 0)
        # What analysts see: the hourly windows this run wrote to (on a first run, all of them).
        analytics = conn.execute(
            "SELECT coalesce(sum(count) FILTER (WHERE metric = 'stay_events'), 0), "
            "coalesce(sum(count) FILTER (WHERE metric = 'notifications' "
            "AND delivery_status = 'SENT'), 0) FROM analytics.v_counts "
            "WHERE granularity = 'HOUR' AND updated_at >= %s",
            (since,),
        ).fetchone() or (0, 0)
        receipts = conn.execute(
            "SELECT count(*) FILTER (WHERE delivered_at IS NOT NULL), "
            "count(*) FILTER (WHERE read_at IS NOT NULL), "
            "count(*) FILTER (WHERE bounced_at IS NOT NULL) "
            "FROM notify.v_notices WHERE state = 'sent' AND sent_at >= %s",
            (since,),
        ).fetchone() or (0, 0, 0)
        next_steps = conn.execute(
            "SELECT count(*) FROM notify.v_notices WHERE created_at >= %s AND chain_step > 0",
            (since,),
        ).fetchone() or (0,)
        worklist = conn.execute(
            "SELECT count(*) FILTER (WHERE notification_id IS NULL), "
            "count(*) FILTER (WHERE notification_id IS NOT NULL) FROM notify.v_worklist "
            "WHERE recorded_at >= %s",
            (since,),
        ).fetchone() or (0, 0)
    return PublishedFigures(
        states={str(state): int(count) for state, count in states.items()},
        p50=float(p50) if p50 is not None else None,
        p99=float(p99) if p99 is not None else None,
        backlog=int(backlog[0]) if backlog else 0,
        covid=(int(covid[0]), int(covid[1])),
        analytics=(int(analytics[0]), int(analytics[1])),
        receipts=(int(receipts[0]), int(receipts[1]), int(receipts[2])),
        next_steps=int(next_steps[0]),
        worklist=(int(worklist[0]), int(worklist[1])),
    )


def hop_lines(settings: Settings, raw_topics: list[str], since: dt.datetime) -> list[str]:
    """Each hop's share of that latency (services.cli.hops); a figure for the reader only, so
    a reading that fails says so in the summary rather than ending it."""
    try:
        with connect(settings) as conn:
            measured = hops.measure(
                settings,
                conn,
                {"raw": raw_topics, "unique": ["stays.unique"], "enriched": ["stays.enriched"]},
                since,
            )
    except Exception as error:
        return [f"  hops: not measured ({type(error).__name__})"]
    return hops.render(measured).splitlines()


def summary(
    settings: Settings, since: dt.datetime, started: float, maildir: Path, read_receipts: int = 0
) -> RunFigures:
    """``read_receipts``: how many the simulated GPs sent."""
    since_ms = int(since.timestamp() * 1000)
    registry = make_registry_client(settings)
    names = {item.code: item.name for item in load_establishments()}
    archive = RecordSerde(registry, RawMessage)
    received: collections.Counter[str] = collections.Counter()
    outcomes: collections.Counter[str] = collections.Counter()
    for message in records_since(settings, ["hl7.archive"], since_ms):
        record = archive.deserialize("hl7.archive", message.value() or b"")
        received[record.establishment or "?"] += 1
        outcomes[record.outcome] += 1
    raw_topics = [f"{RAW_TOPIC_PREFIX}{code}" for code in names]
    raw = sum(1 for _ in records_since(settings, raw_topics, since_ms))
    unique = sum(1 for _ in records_since(settings, ["stays.unique"], since_ms))
    enriched = sum(1 for _ in records_since(settings, ["stays.enriched"], since_ms))
    unroutable_serde = RecordSerde(registry, UnroutableStayEvent)
    reasons: collections.Counter[str] = collections.Counter()
    for message in records_since(settings, ["stays.unroutable"], since_ms):
        reasons[
            unroutable_serde.deserialize("stays.unroutable", message.value() or b"").reason
        ] += 1
    published = published_figures(settings, since)
    states, backlog, p50, p99 = published.states, published.backlog, published.p50, published.p99
    covid, analytics = published.covid, published.analytics
    delivered, read, bounced = published.receipts
    on_disk = emails_since(maildir, started)
    lines = ["", "Summary of this run", "", "HL7 messages received per establishment:"]
    for code, name in names.items():
        lines.append(f"  {name:45} {received.get(code, 0):>7,}")
    lines += [
        f"  {'total':45} {sum(received.values()):>7,}  ("
        + ", ".join(f"{count:,} {outcome.lower()}" for outcome, count in sorted(outcomes.items()))
        + ")",
        "",
        f"Stay events: {raw:,} written by the gateway, {raw - unique:,} duplicates dropped, "
        f"{unique:,} unique"
        + (
            " (every message had been received before: the same --seed and --date send the "
            "same messages again, which dedup drops as resends)"
            if raw and not unique
            else ""
        ),
        f"  {enriched:,} enriched with their recipients, {sum(reasons.values()):,} unroutable"
        + (": " + ", ".join(f"{n:,} {r}" for r, n in sorted(reasons.items())) if reasons else ""),
        "",
        f"Emails: {states.get('sent', 0):,} sent, "
        f"{states.get('failed', 0) + states.get('uncertain', 0):,} failed, "
        f"{states.get('skipped', 0):,} not sent on purpose (opt-out, choices, cancelled before "
        f"sending), {states.get('deferred', 0):,} told in a daily digest; "
        f"{on_disk:,} .eml files on disk"
        + (f" ({backlog:,} of them about events received before this run)" if backlog else ""),
        "  latency from MLLP receipt to SMTP acceptance: "
        + (
            f"p50 {float(p50) * 1000:,.0f} ms, p99 {float(p99) * 1000:,.0f} ms"
            if p50 is not None and p99 is not None
            else "n/a"
        ),
        *hop_lines(settings, raw_topics, since),
        f"  what came back to the platform's mailbox: {delivered:,} delivered (delivery "
        f"report), {read:,} read (read receipt; {read_receipts:,} sent by the simulated GPs), "
        f"{bounced:,} bounced",
        f"  bounced notices (no file on disk) go on: {published.next_steps:,} sent to the next "
        "address of the GP's chain (practice mailbox, substitute)",
        f"Worklist (notify.v_worklist, on the dashboard): {published.worklist[0]:,} unroutable "
        f"events, {published.worklist[1]:,} notices no address of the chain could take",
        f"Covid-19 follow-ups opened: {covid[0]:,} ({covid[1]:,} positive, "
        f"{covid[0] - covid[1]:,} suspected)",
        f"Analytics, hourly windows this run updated: {int(analytics[0]):,} stay events, "
        f"{int(analytics[1]):,} notices sent",
        "",
        f"Read the emails in {maildir} (one .eml file each, any mail client opens them).",
        f"Dashboard: {DASHBOARD_URL}",
    ]
    return RunFigures(
        received=sum(received.values()),
        unique=unique,
        enriched=enriched,
        unroutable=sum(reasons.values()),
        emails_sent=int(states.get("sent", 0)),
        emails_on_disk=on_disk,
        covid_cases=int(covid[0]),
        delivered=delivered,
        read=read,
        bounced=bounced,
        latency_p50_ms=float(p50) * 1000 if p50 is not None else None,
        latency_p99_ms=float(p99) * 1000 if p99 is not None else None,
        lines=lines,
    )


def load_directory_sample(replace: bool, topic: str = PRACTITIONERS_TOPIC) -> None:
    """The run's practitioners: the shipped sample, imported like any extract."""
    _say("Loading the directory sample...")
    command = [sys.executable, "-m", "services.directory", "--topic", topic, "import", "--sample"]
    loaded = subprocess.run(
        [*command, "--max-removed-share", "1"] if replace else command, cwd=PROJECT_ROOT
    )
    if loaded.returncode == IMPORT_REFUSED:
        # The import said why above: the stack holds practitioners the sample does not have.
        raise RunError(
            "the stack's directory was loaded from other extracts (by a test or by hand): "
            "`make run REPLACE_DIRECTORY=1` replaces it with the sample, `make clean` starts "
            "afresh"
        )
    if loaded.returncode != 0:
        raise RunError(f"loading the directory sample stopped with exit {loaded.returncode}")


def record_day_oppositions(settings: Settings, simulator_args: list[str]) -> int:
    """Record, as the operator (notify's record_opposition), the objections of the day's
    patients before the day is sent: their notices must go to nobody. How many."""
    from services.cli.audit import audit_log_path, record_change
    from services.notify.privacy import record_opposition
    from services.simulator.app import day_config, day_oppositions, parser, plan_day

    config, codes = day_config(parser().parse_args(simulator_args))
    oppositions = day_oppositions(plan_day(config, codes).day)
    audit = audit_log_path()
    with connect(settings) as conn, conn.transaction():
        for establishment, ins, ipp in oppositions:
            recorded = record_opposition(conn, establishment, ins, ipp)
            if recorded.created:  # audited as the operator command's are: the id only
                details = {"opposition_id": recorded.opposition_id, "by": "make run"}
                record_change(audit, "opposition add", details)
    return len(oppositions)


def list_bouncing_addresses(mail: Path, simulator_args: list[str]) -> int:
    """Make the personal mailboxes of a couple of the day's GPs bounce (the stack's SMTP server
    reads its bounce file at each recipient), so the day shows their notices going on to their
    practice's mailbox. How many addresses bounce."""
    from services.simulator.app import day_config, parser, plan_day
    from services.simulator.bounces import bouncing_gps
    from services.stack.smtp_sink import BOUNCE_FILE

    config, codes = day_config(parser().parse_args(simulator_args))
    gps = bouncing_gps(plan_day(config, codes).day.all_messages())
    path = mail / BOUNCE_FILE
    listed = set(path.read_text(encoding="utf-8").split()) if path.exists() else set()
    mail.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as bouncing:
        for gp in gps:
            if gp.personal not in listed:
                bouncing.write(f"{gp.personal}\n")
    return len(gps)


def run(
    settings: Settings,
    simulator_args: list[str],
    keep_running: bool,
    figures: list[RunFigures] | None = None,
    replace_directory: bool = False,
) -> int:
    """The run; 0 when it went through. ``figures`` receives what it measured.

    ``replace_directory`` lets the sample replace whatever directory the stack holds (the
    directory import otherwise refuses to remove most of it, rightly for a real extract)."""
    from services.stack.__main__ import up

    layout = StackLayout.default()
    # A stack that was already up (make up) is left up; what this run started is stopped with it.
    started_here = up(layout)
    since = dt.datetime.now(dt.UTC)
    started = time.time()
    processes = Processes(layout)
    failed = 0

    def on_interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_interrupt)
    try:
        load_directory_sample(replace_directory)
        _say("Setting some GPs' choices of notices...")
        set_sample_choices()
        notify_env = notify_environment(os.environ)
        notify_config = check_mailbox({**os.environ, **notify_env})
        _say("Starting the services (logs in .stack/logs/)...")
        start_services(processes, notify_env)
        counter = Counter(
            settings,
            ["hl7.archive", "stays.unique", "stays.enriched", "stays.unroutable", "covid.followups"]
            + [f"{RAW_TOPIC_PREFIX}{item.code}" for item in load_establishments()],
        )

        def snapshot() -> tuple[int, ...]:
            processes.check_alive()
            return (
                counter.since_start("stays.unique"),
                counter.since_start("stays.enriched"),
                counter.since_start("stays.unroutable"),
                counter.since_start("covid.followups"),
                emails_since(layout.mail, started),
            )

        def progress() -> None:
            processes.check_alive()
            _say(
                f"  pipeline: {counter.since_start('hl7.archive'):,} received, "
                f"{counter.since_start(RAW_TOPIC_PREFIX):,} stay events, "
                f"{counter.since_start('stays.unique'):,} unique, "
                f"{counter.since_start('stays.enriched'):,} enriched, "
                f"{counter.since_start('stays.unroutable'):,} unroutable, "
                f"{emails_since(layout.mail, started):,} emails"
            )

        opposed = record_day_oppositions(settings, simulator_args)
        _say(f"Recorded {opposed:,} patients' objections to being notified, as establishments ask")
        bouncing = list_bouncing_addresses(layout.mail, simulator_args)
        _say(f"{bouncing} GPs' personal mailboxes bounce today: their practice's mailbox is next")
        _say(
            f"Replaying a day of the GHT (python -m services.simulator {' '.join(simulator_args)})"
        )
        sending = time.monotonic()
        simulator = subprocess.Popen(
            [sys.executable, "-m", "services.simulator", *simulator_args], cwd=PROJECT_ROOT
        )
        while simulator.poll() is None:
            time.sleep(5)
            progress()
        send_seconds = time.monotonic() - sending
        if simulator.returncode != 0:
            raise RunError(f"the simulator stopped with exit {simulator.returncode}")
        _say("The day is sent; waiting for the pipeline to catch up...")
        progress()
        # Digests wait for their hour (18:00, Paris): the day being over, they go now.
        drained = wait_for_drain(settings, snapshot, digests=False)
        _say(f"The day is over: {send_digests_now(settings):,} daily digests sent now")
        drained = wait_for_drain(settings, snapshot) and drained
        if not drained:
            _say("warning: the pipeline had not caught up after 5 minutes; figures are partial")
        read = gps_read_their_mail(layout.mail, started, simulator_args)
        _say(f"Some GPs read their mail: {len(read):,} read receipts sent")
        if notify_config.receipts_reader.lower() != "off":
            bound = notify_config.dsn_window.total_seconds() + RECEIPTS_MARGIN_SECONDS
            _say(f"Waiting for what comes back to the platform's mailbox (at most {bound:.0f} s)")
            still = wait_for_receipts(
                settings, since, notify_config.dsn_window, read, processes.check_alive
            )
            if still:
                _say(f"  {still:,} reports still awaited; the checks name them")
        measured = summary(settings, since, started, layout.mail, len(read))
        measured.send_seconds = send_seconds
        for line in measured.lines:
            _say(line)
        if drained:
            checks = reconcile(
                settings,
                since,
                started,
                layout.mail,
                analytics_days=ANALYTICS_DAYS_KEPT,
                dsn_window=notify_config.dsn_window,
            )
            failed = sum(not item.ok for item in checks)
            _say("\nChecked against what the platform promises:")
            for item in checks:
                _say(item.line())
            _say(
                f"  {len(checks) - failed} of {len(checks)} checks passed"
                + (": the run is not right, see the FAILED lines" if failed else "")
            )
        if figures is not None:
            figures.append(measured)
        counter.close()
        if keep_running:
            _say("\nThe services keep running for the dashboard. Press Ctrl-C to stop everything.")
            while True:
                time.sleep(2)
                processes.check_alive()
    except KeyboardInterrupt:
        _say("\nStopping...")
    except (RunError, subprocess.CalledProcessError) as error:
        _say(f"error: {error}")
        return 1
    finally:
        processes.stop_all()
        if started_here:
            from services.stack.__main__ import down

            down(layout, started_here)
    return 1 if failed else 0
