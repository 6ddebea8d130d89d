"""Wiring: the command line, the day built from it, then sent to the gateway by one engine per
establishment (or written to files), with progress while it runs and a summary at the end."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.establishments import load_establishments
from services.common.logging import configure_logging
from services.common.settings import Settings
from services.simulator.engine import Engine, EngineSettings, Outbound, Pacer
from services.simulator.files import write_day
from services.simulator.hl7 import message_bytes
from services.simulator.practitioners import directory_gps
from services.simulator.profiles import Profile, load_profiles
from services.simulator.scenario import PARIS, Canary, Day, DayConfig, build_day
from services.simulator.stats import EngineStats, progress_line, summary, summary_text

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> dt.timedelta:
    """``24h``, ``90m``, ``1h30m``, ``45s``."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 24h, 90m or 1h30m")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _canary(text: str) -> Canary:
    try:
        return Canary.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not FAMILY,GIVEN,YYYY-MM-DD,INS") from error


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not positive")
    return value


def parser() -> argparse.ArgumentParser:
    today = dt.datetime.now(PARIS).date()
    cli = argparse.ArgumentParser(
        prog="python -m services.simulator",
        description="Simulate a day of the GHT's establishments: HL7 v2.5 ADT (IHE PAM FR) over "
        "MLLP to the gateway at MLLP_HOST:MLLP_PORT, one connection per establishment.",
    )
    day = cli.add_argument_group("the day")
    day.add_argument(
        "--date",
        type=dt.date.fromisoformat,
        default=today,
        help="simulated date, YYYY-MM-DD; its weekday shapes the day "
        "(Monday is the busiest). Default: today",
    )
    day.add_argument("--seed", default="1", help="same seed and options, same messages")
    day.add_argument(
        "--rate",
        type=_positive,
        default=1.0,
        help="volume factor; 1.0 is a typical day, a few thousand messages",
    )
    day.add_argument(
        "--start",
        type=dt.time.fromisoformat,
        default=dt.time(0, 0),
        help="simulated start time, HH:MM (default 00:00)",
    )
    day.add_argument(
        "--duration",
        type=parse_duration,
        default=dt.timedelta(hours=24),
        help="simulated time covered, such as 24h, 2h30m (default 24h)",
    )
    day.add_argument(
        "--covid-prevalence",
        type=_share,
        default=0.05,
        help="share of discharges with a positive Covid-19 status (default 0.05)",
    )
    day.add_argument(
        "--gp-share",
        type=_share,
        default=0.85,
        help="share of patients whose GP is in the directory sample",
    )
    day.add_argument(
        "--unknown-gp-share",
        type=_share,
        default=0.04,
        help="share of patients whose GP's RPPS the directory does not know",
    )
    day.add_argument(
        "--ack-lost-share",
        type=_share,
        default=0.01,
        help="share of messages sent twice because the engine lost the ACK",
    )
    day.add_argument(
        "--canary",
        type=_canary,
        default=os.environ.get("SIMULATOR_CANARY") or None,
        metavar="FAMILY,GIVEN,YYYY-MM-DD,INS",
        help="for tests: the first patient of each establishment carries this identity, to "
        "search the platform's outputs for it (default: $SIMULATOR_CANARY, unset: none)",
    )
    day.add_argument(
        "--establishments", default="", help="comma-separated codes to simulate (default: all)"
    )
    pace = cli.add_argument_group("pace")
    speed = pace.add_mutually_exclusive_group()
    speed.add_argument(
        "--speed",
        type=_positive,
        default=60.0,
        help="simulated seconds per wall-clock second (default 60)",
    )
    speed.add_argument("--fast", action="store_true", help="as fast as the gateway acknowledges")
    pace.add_argument(
        "--progress-every", type=_positive, default=5.0, help="seconds between progress lines"
    )
    engine = cli.add_argument_group("engines")
    engine.add_argument(
        "--ack-timeout",
        type=_positive,
        default=10.0,
        help="seconds an engine waits for an ACK before sending again",
    )
    engine.add_argument(
        "--max-refusals",
        type=int,
        default=5,
        help="AE answers to one message before its engine gives up on it (default 5)",
    )
    engine.add_argument(
        "--tls-dir",
        type=Path,
        help="folder of the CA (ca.pem) and each establishment's client certificate "
        "(<code>.pem, <code>-key.pem); default the local stack's .stack/tls; "
        "MLLP_TLS=off connects in clear",
    )
    engine.add_argument(
        "--patience",
        type=_positive,
        default=300.0,
        help="seconds an engine keeps resending one message through time-outs and lost "
        "connections before giving up on it (default 300)",
    )
    output = cli.add_argument_group("output")
    output.add_argument(
        "--out", type=Path, help="write the day's messages to <code>.hl7 files here; send nothing"
    )
    output.add_argument("--summary-json", type=Path, help="also write the summary as JSON")
    return cli


@dataclass(frozen=True)
class Plan:
    day: Day
    profiles: list[Profile]


def day_config(args: argparse.Namespace) -> tuple[DayConfig, list[str]]:
    """The day the arguments describe, and the establishments chosen (none: all)."""
    config = DayConfig(
        date=args.date,
        seed=args.seed,
        rate=args.rate,
        start=args.start,
        duration=args.duration,
        covid_prevalence=args.covid_prevalence,
        gp_share=args.gp_share,
        unknown_gp_share=args.unknown_gp_share,
        ack_lost_share=args.ack_lost_share,
        canary=args.canary,
    )
    return config, [code.strip() for code in args.establishments.split(",") if code.strip()]


def day_oppositions(day: Day) -> list[tuple[str, str | None, str | None]]:
    """The objections the day's patients gave their establishments, as the operator records
    them: (establishment, qualified INS or None, IPP when the INS is not qualified)."""
    found: set[tuple[str, str | None, str | None]] = set()
    for message in day.all_messages():
        patient = message.patient
        if patient.opposed:
            qualified = patient.ins if patient.reliability == "VALI" else None
            found.add((message.establishment, qualified, None if qualified else patient.ipp))
    return sorted(found, key=lambda item: (item[0], item[1] or "", item[2] or ""))


def plan_day(config: DayConfig, codes: Sequence[str] = ()) -> Plan:
    """The day of the chosen establishments (all when ``codes`` is empty)."""
    profiles = load_profiles(load_establishments())
    if codes:
        unknown = sorted(set(codes) - {item.establishment.code for item in profiles})
        if unknown:
            raise ValueError(f"unknown establishments: {', '.join(unknown)}")
        profiles = [item for item in profiles if item.establishment.code in codes]
    return Plan(build_day(config, profiles, directory_gps()), profiles)


def outbound(plan: Plan) -> dict[str, list[Outbound]]:
    """Every establishment's messages as the bytes its engine sends."""
    by_code = {profile.establishment.code: profile for profile in plan.profiles}
    return {
        code: [
            Outbound(
                item.control_id,
                item.trigger,
                item.sent_at,
                message_bytes(item, by_code[code]),
                item.ack_lost,
            )
            for item in messages
        ]
        for code, messages in plan.day.messages.items()
    }


async def send_day(
    plan: Plan,
    settings: EngineSettings,
    *,
    speed: float | None,
    stats: list[EngineStats],
    progress_every: float | None = None,
) -> None:
    """Run every establishment's engine until its day is sent; ``stats`` is filled as it goes."""
    pacer = Pacer(plan.day.config.window_start, speed)
    engines = []
    for code, messages in outbound(plan).items():
        counters = EngineStats(code, len(messages))
        counters.triggers.update(item.trigger for item in messages)
        stats.append(counters)
        engines.append(Engine(code, messages, settings, pacer, counters))
    reporter = None
    if progress_every:
        reporter = asyncio.create_task(_report(stats, progress_every, pacer))
    try:
        await asyncio.gather(*(engine.run() for engine in engines))
    finally:
        if reporter is not None:
            reporter.cancel()


async def _report(stats: list[EngineStats], every: float, pacer: Pacer) -> None:
    while True:
        await asyncio.sleep(every)
        elapsed = time.monotonic() - pacer.started
        print(progress_line(stats, elapsed, pacer.simulated_now()), flush=True)


def _stack_tls() -> Path:
    from services.stack.layout import StackLayout  # the local stack's files: a tool's default

    return StackLayout.default().tls


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging("simulator", "WARNING")
    config, codes = day_config(args)
    plan = plan_day(config, codes)
    messages = plan.day.all_messages()
    print(
        f"{config.date:%A %d %B %Y}, {config.duration.total_seconds() / 3600:g} h from "
        f"{config.window_start:%H:%M}: {len(messages)} messages from "
        f"{len(plan.day.messages)} establishments (seed {args.seed})",
        flush=True,
    )
    if args.out:
        written = write_day(plan.day, plan.profiles, args.out)
        for code, path in written.items():
            print(f"{code:<14}{len(plan.day.messages[code]):>6} messages  {path}")
        return 0

    settings = Settings.from_env()
    # The gateway listens on MLLP_HOST; "every interface" is reached through the loopback.
    host = "127.0.0.1" if settings.mllp_host in ("0.0.0.0", "") else settings.mllp_host
    engine_settings = EngineSettings(
        host,
        settings.mllp_port,
        ack_timeout=args.ack_timeout,
        max_refusals=args.max_refusals,
        patience=args.patience,
        tls=None
        if os.environ.get("MLLP_TLS", "").lower() == "off"
        else args.tls_dir or _stack_tls(),
    )
    stats: list[EngineStats] = []
    started = time.monotonic()
    interrupted = False
    try:
        asyncio.run(
            send_day(
                plan,
                engine_settings,
                speed=None if args.fast else args.speed,
                stats=stats,
                progress_every=args.progress_every,
            )
        )
    except KeyboardInterrupt:
        interrupted = True
    report: dict[str, Any] = summary(stats, time.monotonic() - started)
    report["interrupted"] = interrupted
    print(("\ninterrupted\n" if interrupted else "\n") + summary_text(report), flush=True)
    if args.summary_json:
        args.summary_json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    complete = report["acked"] == report["messages"]
    return 0 if complete and not interrupted else 1


if __name__ == "__main__":
    sys.exit(main())
