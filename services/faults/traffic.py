"""The suite's traffic: a slice of a simulated day through the eleven MLLP connections, sent by
the simulator's own engines (TLS, one connection per establishment, resending on a time-out or
a lost connection as real engines do), with a book of what each engine sent and what the gateway
acknowledged, by MSH-10: the account a loss is measured against.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.common.settings import Settings
from services.simulator.app import day_config, outbound, parser, plan_day
from services.simulator.engine import Engine, EngineSettings, Outbound, Pacer
from services.simulator.hl7 import Ack
from services.simulator.stats import EngineStats

ENGINE_ACK_TIMEOUT = 30.0
"""Seconds an engine waits for an ACK, as engines commonly do (30 to 60): longer than the
gateway's own wait for Kafka (20 s), so a refused write is seen as a closed connection."""
ENGINE_PATIENCE = 900.0
"""Seconds an engine keeps resending one message: longer than any scenario's outage, so an
outage never makes an engine give up (a message given up would be the engine's loss, not ours)."""


@dataclass
class AckBook:
    """What the engines sent and what came back, by (establishment, MSH-10)."""

    sends: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    accepted: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    """AA answers (an answer to a resend counts again)."""
    ack_times: list[float] = field(default_factory=list)
    """``time.monotonic()`` of each AA, for the time to recover."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, key: tuple[str, str]) -> None:
        with self.lock:
            self.sends[key] += 1

    def answered(self, key: tuple[str, str], ack: Ack) -> None:
        if ack.accepted:
            with self.lock:
                self.accepted[key] += 1
                self.ack_times.append(time.monotonic())

    def last_ack(self) -> float | None:
        with self.lock:
            return self.ack_times[-1] if self.ack_times else None


class _BookedEngine(Engine):
    """The simulator's engine, every exchange written in the book."""

    def __init__(self, book: AckBook, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.book = book

    async def _exchange(self, message: Outbound) -> Ack | None:
        key = (self.establishment, message.control_id)
        self.book.sent(key)
        ack = await super()._exchange(message)
        if ack is not None:
            self.book.answered(key, ack)
        return ack


class Traffic:
    """One slice of a day, sent in a thread of its own while the scenario does its damage."""

    def __init__(self, settings: Settings, tls: Path, simulator_args: list[str]) -> None:
        config, codes = day_config(parser().parse_args(simulator_args))
        self.plan = plan_day(config, codes)
        self.speed = float(parser().parse_args(simulator_args).speed)
        host = "127.0.0.1" if settings.mllp_host in ("0.0.0.0", "") else settings.mllp_host
        self.engine_settings = EngineSettings(
            host,
            settings.mllp_port,
            ack_timeout=ENGINE_ACK_TIMEOUT,
            patience=ENGINE_PATIENCE,
            tls=tls,
        )
        self.book = AckBook()
        self.stats: list[EngineStats] = []
        self.messages = len(self.plan.day.all_messages())
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="faults-traffic", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._send())
        except BaseException as error:  # reported by the suite, which stops the scenario
            self.error = error

    async def _send(self) -> None:
        pacer = Pacer(self.plan.day.config.window_start, self.speed)
        engines = []
        for code, messages in outbound(self.plan).items():
            counters = EngineStats(code, len(messages))
            self.stats.append(counters)
            engines.append(
                _BookedEngine(self.book, code, messages, self.engine_settings, pacer, counters)
            )
        await asyncio.gather(*(engine.run() for engine in engines))

    def start(self) -> None:
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> bool:
        """True once every engine is done with its slice."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def given_up(self) -> int:
        """Messages an engine gave up on (refused for good, or out of patience)."""
        return sum(item.given_up + item.rejected for item in self.stats)
