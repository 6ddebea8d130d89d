"""``make faults``: the platform on a three-broker stack of its own, every service running, a
slice of a simulated day flowing through the eleven MLLP connections while one fault after
another is injected; after each, the pipeline drains and every promise is checked, and a table
says what was sent, acknowledged, lost and duplicated, and how long recovery took.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime as dt
import itertools
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.cli.lag import LagReader
from services.cli.reconcile import (
    Check,
    acked_on_raw_check,
    dead_letters_check,
    duplicated_emails,
    emails_on_disk,
    raw_messages,
    reconcile,
)
from services.cli.run import (
    ANALYTICS_DAYS_KEPT,
    PIPELINE_GROUPS,
    Counter,
    Processes,
    RunError,
    check_mailbox,
    emails_since,
    list_bouncing_addresses,
    load_directory_sample,
    notify_environment,
    record_day_oppositions,
    send_digests_now,
    set_sample_choices,
    start_services,
    wait_for_drain,
    wait_for_receipts,
    wait_until_healthy,
)
from services.cli.topics_since import records_since
from services.common.establishments import load_establishments
from services.common.logging import configure_logging
from services.common.paths import PROJECT_ROOT
from services.common.settings import Settings
from services.common.topics import RAW_TOPIC_PREFIX, declared_topics
from services.faults.scenarios import GIVE_UP_SECONDS, Harness, Scenario, chosen
from services.faults.traffic import Traffic
from services.stack.cluster import KafkaCluster
from services.stack.layout import StackLayout

RESULTS = PROJECT_ROOT / "bench-results" / "faults.json"
KEPT_LOGS = RESULTS.with_name("faults-logs")
"""Where the logs go when a scenario failed, the stack itself being removed."""
LEAD_SECONDS = 15.0
"""Traffic flowing before the fault: the pipeline is busy when it strikes."""
SLICE = ("09:00", "1h")
"""The part of the day each scenario sends (a busy morning hour), with a seed of its own so its
messages are new to dedup."""
RATE, SPEED = "12", "40"
"""About 500 messages per slice, sent over 90 s: some 6 messages a second, with resends."""
DSN_WINDOW_SECONDS = 15
CALM_LAG = 300
"""Records behind, summed over the pipeline's groups, under which it counts as keeping up."""


def _say(text: str = "") -> None:
    print(text, flush=True)


class LagMonitor:
    """The pipeline's total consumer lag every two seconds, in a thread of its own (its own
    librdkafka handles, used by that thread only), for the time to recover."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.samples: list[tuple[float, int | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faults-lag", daemon=True)

    def _run(self) -> None:
        with LagReader(self.settings, read_records=False) as reader:
            while not self._stop.is_set():
                try:
                    lag: int | None = sum(group.lag for group in reader.read(PIPELINE_GROUPS))
                except Exception:  # brokers away: no reading this time
                    lag = None
                self.samples.append((time.monotonic(), lag))
                self._stop.wait(2)

    def __enter__(self) -> LagMonitor:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


def recovery_seconds(
    injected: float,
    repaired: float,
    samples: list[tuple[float, int | None]],
    acks: list[float],
    traffic_done: float,
) -> float | None:
    """From the fault's injection to the first moment after it was undone when the pipeline
    keeps up again: its lag under ``CALM_LAG``, and the gateway acknowledging (an AA in the two
    seconds before, unless the traffic was over). None if that never happened."""
    for moment, lag in samples:
        if moment < repaired or lag is None or lag > CALM_LAG:
            continue
        acking = moment >= traffic_done or any(moment - 2.5 <= ack <= moment for ack in acks)
        if acking:
            return moment - injected
    return None


def longest_silence(injected: float, until: float, acks: list[float]) -> float:
    """The longest the gateway went without acknowledging anything, from the fault's injection
    to ``until``: what the engines saw of the fault."""
    moments = [injected, *sorted(ack for ack in acks if injected < ack < until), until]
    return max(later - earlier for earlier, later in itertools.pairwise(moments))


@dataclass
class Row:
    """One scenario's line of the table."""

    scenario: str
    sent: int
    """Messages of the slice the engines sent (each once, however often it was resent)."""
    sends: int
    """Sends, resends included."""
    acked: int
    lost: int
    duplicated_emails: int
    recovery_seconds: float | None
    """From the fault to the pipeline keeping up again (``recovery_seconds``)."""
    silence_seconds: float
    """The longest the gateway went without an AA after the fault (``longest_silence``)."""
    failed_checks: list[str]
    seconds: float
    restarted: list[str] = dataclasses.field(default_factory=list)
    """Services that ended on their own during the scenario (name and exit code), started
    again as a supervisor would: no loss in itself, but worth reading their logs."""

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated_emails and not self.failed_checks


def table(rows: list[Row]) -> list[str]:
    head = f"  {'scenario':40} {'sent':>6} {'ACKed':>6} {'lost':>5} {'dup.':>5} {'no ACK':>7}"
    lines = [f"{head} {'recovery':>9}  checks"]
    for row in rows:
        recovered = f"{row.recovery_seconds:.1f} s" if row.recovery_seconds is not None else "never"
        checks = "ok" if not row.failed_checks else f"{len(row.failed_checks)} FAILED"
        lines.append(
            f"  {row.scenario:40} {row.sent:>6,} {row.acked:>6,} {row.lost:>5} "
            f"{row.duplicated_emails:>5} {row.silence_seconds:>5.1f} s {recovered:>9}  {checks}"
        )
    return lines


def dead_letter_counts(settings: Settings, from_ms: int) -> dict[str, int]:
    topics = [item.name for item in declared_topics() if item.name.startswith("deadletter.")]
    found: collections.Counter[str] = collections.Counter()
    for message in records_since(settings, topics, from_ms):
        found[message.topic() or "?"] += 1
    return dict(found)


@dataclass
class Suite:
    settings: Settings
    harness: Harness
    counter: Counter
    raw_topics: list[str]
    run_id: str

    def scenario(self, index: int, scenario: Scenario) -> tuple[Row, list[Check]]:
        layout = self.harness.layout
        simulator_args = [
            "--seed", f"{self.run_id}-{index}", "--start", SLICE[0], "--duration", SLICE[1],
            "--rate", RATE, "--speed", SPEED,
        ]  # fmt: skip
        record_day_oppositions(self.settings, simulator_args)
        list_bouncing_addresses(layout.mail, simulator_args)
        since = dt.datetime.now(dt.UTC)
        started = time.time()
        began = time.monotonic()
        traffic = Traffic(self.settings, layout.tls, simulator_args)
        _say(f"\n[{index}] {scenario.name}: {traffic.messages:,} messages to send")
        with LagMonitor(self.settings) as monitor:
            traffic.start()
            restarted: list[str] = []
            self._pause(LEAD_SECONDS, traffic, restarted)
            injected = time.monotonic()
            scenario.inject(self.harness)
            self._pause(scenario.hold, traffic, None)
            scenario.repair(self.harness)
            repaired = time.monotonic()
            _say(f"    undone after {repaired - injected:.0f} s; the traffic goes on")
            restarted += self._revive()
            while not traffic.join(10):
                self._progress(traffic, started)
                restarted += self._revive()
            traffic_done = time.monotonic()
            if traffic.error is not None:
                raise RunError(f"the traffic stopped: {traffic.error!r}")
            _say("    the slice is sent; waiting for the pipeline to drain, then checking")
            drained = self._drain(started, restarted)
        accounted = scenario.after_drain(self.harness) if scenario.after_drain else {}
        if scenario.after_drain:
            drained = self._drain(started, restarted) and drained
        still = wait_for_receipts(
            self.settings,
            since,
            dt.timedelta(seconds=DSN_WINDOW_SECONDS),
            [],
            lambda: restarted.extend(self._revive()),
        )
        if still:
            _say(f"    {still:,} delivery reports still awaited; the checks name them")
        checks = self._checks(since, started, traffic, accounted)
        if not drained:
            checks.append(Check("the pipeline drained within 5 minutes", 1, 0))
        on_disk = emails_on_disk(layout.mail, started)
        raw_check = checks[0]
        row = Row(
            scenario=scenario.name,
            sent=len(traffic.book.sends),
            sends=sum(traffic.book.sends.values()),
            acked=len(traffic.book.accepted),
            lost=sum(1 for item in raw_check.missing if item.endswith("(lost)")),
            duplicated_emails=duplicated_emails(on_disk),
            recovery_seconds=recovery_seconds(
                injected, repaired, monitor.samples, traffic.book.ack_times, traffic_done
            ),
            silence_seconds=longest_silence(injected, traffic_done, traffic.book.ack_times),
            failed_checks=[item.promise for item in checks if not item.ok],
            seconds=time.monotonic() - began,
            restarted=restarted,
        )
        for item in checks:
            if not item.ok:
                _say(item.line())
        if restarted:
            _say(f"    ended on their own and restarted: {', '.join(restarted)}")
        _say(
            f"    {row.sent:,} sent ({row.sends:,} sends), {row.acked:,} ACKed, {row.lost} lost, "
            f"{row.duplicated_emails} emails twice, "
            f"no ACK for {row.silence_seconds:.1f} s at most, "
            + (
                f"recovered in {row.recovery_seconds:.1f} s"
                if row.recovery_seconds is not None
                else "no recovery seen"
            )
            + f"; {len(checks) - len(row.failed_checks)} of {len(checks)} checks passed"
        )
        return row, checks

    def _pause(self, seconds: float, traffic: Traffic, restarted: list[str] | None) -> None:
        """Wait while traffic flows; with ``restarted``, a service that ended is started again
        and named there (during a fault, the scenario itself decides)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            if restarted is not None:
                restarted.extend(self._revive())
            if traffic.error is not None:
                raise RunError(f"the traffic stopped: {traffic.error!r}")

    def _progress(self, traffic: Traffic, started: float) -> None:
        book = traffic.book
        _say(
            f"    {len(book.sends):,} of {traffic.messages:,} sent, {len(book.accepted):,} ACKed, "
            f"{emails_since(self.harness.layout.mail, started):,} emails so far"
        )

    def _revive(self) -> list[str]:
        """Start again, as a supervisor would, each service that ended on its own since the
        fault (a crash the fault caused is reported, and must not stop the other scenarios)."""
        processes = self.harness.processes
        ended = processes.exits()
        for name, code in ended.items():
            _say(f"    {name} ended on its own (exit {code}); starting it again")
            processes.restart(name)
        if ended:
            wait_until_healthy(processes, tuple(ended))
        return [f"{name} (exit {code})" for name, code in ended.items()]

    def _drain(self, started: float, restarted: list[str]) -> bool:
        layout = self.harness.layout

        def snapshot() -> tuple[int, ...]:
            restarted.extend(self._revive())
            return (
                self.counter.since_start("stays.unique"),
                self.counter.since_start("stays.enriched"),
                self.counter.since_start("covid.followups"),
                emails_since(layout.mail, started),
            )

        drained = wait_for_drain(self.settings, snapshot, digests=False)
        send_digests_now(self.settings)
        return wait_for_drain(self.settings, snapshot) and drained

    def _checks(
        self, since: dt.datetime, started: float, traffic: Traffic, accounted: dict[str, int]
    ) -> list[Check]:
        from_ms = int(since.timestamp() * 1000)
        book = traffic.book
        return [
            acked_on_raw_check(
                book.sends, book.accepted, raw_messages(self.settings, self.raw_topics, from_ms)
            ),
            *reconcile(
                self.settings,
                since,
                started,
                self.harness.layout.mail,
                analytics_days=ANALYTICS_DAYS_KEPT,
                dsn_window=dt.timedelta(seconds=DSN_WINDOW_SECONDS),
            ),
            dead_letters_check(dead_letter_counts(self.settings, from_ms), accounted),
        ]


def fault_environment(environ: dict[str, str]) -> dict[str, str]:
    """Notify's settings in the suite: its give-up window and its sending lease short enough to
    pass within one scenario, retries quick, and the run's receipts reader with a short DSN
    window."""
    wanted = {
        **notify_environment(environ),
        "NOTIFY_GIVE_UP_AFTER_SECONDS": str(GIVE_UP_SECONDS),
        "NOTIFY_RETRY_INITIAL_SECONDS": "1",
        "NOTIFY_RETRY_MAX_SECONDS": "5",
        "NOTIFY_DSN_WINDOW_SECONDS": str(DSN_WINDOW_SECONDS),
        # A notice interrupted while handed to SMTP (notify killed, PostgreSQL gone) turns
        # 'uncertain' after this lease, never sent again: 10 minutes by default, longer than a
        # scenario's drain; the stack's SMTP server answers in milliseconds.
        "NOTIFY_SENDING_LEASE_SECONDS": "30",
    }
    return {key: value for key, value in wanted.items() if not environ.get(key)}


def run_suite(layout: StackLayout, scenarios: list[Scenario], keep: bool) -> int:
    """The suite on the stack at ``layout`` (made, started and, unless ``keep``, removed here)."""
    from services.stack.__main__ import clean, down, up

    begun = time.monotonic()
    rows: list[Row] = []
    processes = Processes(layout)
    failure: str | None = None

    def on_terminate(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_terminate)
    try:
        _say(f"The fault suite's own stack (three brokers, ports shifted) in {layout.root}")
        up(layout)
        quiet_clients(layout.log("faults"))
        settings = Settings.from_env(principal="operator")
        load_directory_sample(replace=True)
        set_sample_choices()
        notify_env = fault_environment(dict(os.environ))
        check_mailbox({**os.environ, **notify_env})
        _say(f"Starting the services (logs in {layout.logs})...")
        start_services(processes, notify_env)
        raw_topics = [f"{RAW_TOPIC_PREFIX}{item.code}" for item in load_establishments()]
        harness = Harness(
            layout=layout,
            cluster=KafkaCluster.of_stack(layout),
            processes=processes,
            watched_topics=[*raw_topics, "stays.unique", "stays.enriched"],
            say=_say,
        )
        counter = Counter(settings, ["stays.unique", "stays.enriched", "covid.followups"])
        suite = Suite(settings, harness, counter, raw_topics, f"{time.time():.0f}")
        for index, scenario in enumerate(scenarios, start=1):
            row, _checks = suite.scenario(index, scenario)
            rows.append(row)
        counter.close()
    except KeyboardInterrupt:
        failure = "interrupted"
        _say("\nInterrupted; tearing the suite's stack down...")
    except Exception as error:  # said plainly, then the stack goes down all the same
        failure = f"{type(error).__name__}: {error}"
        _say(f"\nerror: {failure}")
        _say("  'make faults KEEP=1' keeps the suite's stack up afterwards, to look at it")
    finally:
        processes.stop_all()
        if keep:
            _say(f"The suite's stack stays up ({layout.root}); remove it with "
                 f"'HARPICOOP_STACK_DIR={layout.root} make down clean'")  # fmt: skip
        else:
            passed = failure is None and all(row.ok for row in rows)
            if not passed and layout.logs.exists():
                # The stack goes, its logs stay: what to read about what went wrong.
                shutil.rmtree(KEPT_LOGS, ignore_errors=True)
                shutil.copytree(layout.logs, KEPT_LOGS)
                _say(f"The logs of the stack and the services are kept in {KEPT_LOGS}")
            down(layout)
            clean(layout)
    report(rows, failure, time.monotonic() - begun)
    return 0 if rows and failure is None and all(row.ok for row in rows) else 1


def quiet_clients(log: Path) -> None:
    """Send this process's standard error (librdkafka's own lines while a broker is away, the
    directory commands' logs) to ``log``: the screen keeps the suite's progress."""
    sys.stderr.flush()
    with open(log, "ab") as target:
        os.dup2(target.fileno(), 2)


def report(rows: list[Row], failure: str | None, seconds: float) -> None:
    _say("\nFaults injected while traffic flowed, and what became of every message:\n")
    for line in table(rows):
        _say(line)
    bad = [row for row in rows if not row.ok]
    for row in bad:
        _say(f"  {row.scenario}: " + "; ".join(row.failed_checks or ["lost or duplicated"]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "seconds": round(seconds, 1),
                "failure": failure,
                "scenarios": [dataclasses.asdict(row) for row in rows],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    verdict = (
        f"stopped early ({failure})"
        if failure
        else "nothing lost, nothing duplicated"
        if not bad
        else f"{len(bad)} scenario(s) lost, duplicated or failed a check"
    )
    _say(f"\n{len(rows)} scenario(s) in {seconds / 60:.1f} min: {verdict}. Figures in {RESULTS}")


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m services.faults", description=__doc__)
    cli.add_argument("scenarios", nargs="*", help="run only these (a unique part of a name)")
    cli.add_argument("--short", action="store_true", help="CI's short version")
    cli.add_argument("--keep", action="store_true", help="leave the suite's stack up afterwards")
    cli.add_argument("--list", action="store_true", help="name the scenarios and stop")
    return cli


def main(argv: list[str] | None = None, layout_of: Callable[[], StackLayout] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        scenarios = chosen(args.scenarios, args.short)
    except ValueError as error:
        _say(f"error: {error}")
        return 2
    if args.list:
        for scenario in scenarios:
            _say(scenario.name)
        return 0
    configure_logging("faults", "ERROR")  # the engines' warnings are the faults' expected noise
    layout = (layout_of or faults_layout)()
    return run_suite(layout, scenarios, args.keep)


def faults_layout() -> StackLayout:
    """The suite's stack folder (``HARPICOOP_STACK_DIR``, set by ``services.faults``), reusing
    the developer stack's downloads (``HARPICOOP_DIST``, else the checkout's ``.stack/dist``)."""
    dist = Path(os.environ.get("HARPICOOP_DIST") or PROJECT_ROOT / ".stack" / "dist")
    dist.mkdir(parents=True, exist_ok=True)
    return dataclasses.replace(StackLayout.default(), shared_dist=dist.resolve())
