"""An establishment's integration engine, as hospitals run them: one MLLP connection (over TLS,
with the establishment's own client certificate), one message at a time, each held until its ACK.

On a time-out, a connection lost, or an AE, the engine sends the same bytes again (same MSH-10):
this is how duplicates reach the platform. An AR is final. A dropped connection is opened again,
with a growing pause, for as long as the engine has messages to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from services.common.tls import TlsFiles
from services.gateway.mllp import Frame, MllpDecoder, frame
from services.simulator.hl7 import Ack, parse_ack
from services.simulator.stats import EngineStats

log = structlog.get_logger("simulator")

ACK_MAX_BYTES = 64 * 1024
"""An ACK is a few hundred bytes; anything longer is not one."""


@dataclass(frozen=True)
class Outbound:
    """A message ready for the wire."""

    control_id: str
    trigger: str
    sent_at: dt.datetime
    payload: bytes
    ack_lost: bool = False
    """The engine acts as if the ACK never came and sends the message once more."""


@dataclass(frozen=True)
class EngineSettings:
    host: str
    port: int
    ack_timeout: float = 10.0
    """Seconds to wait for an ACK before sending again."""
    max_refusals: int = 5
    """AE (or CE) answers to one message after which the engine gives up on it."""
    patience: float = 300.0
    """Seconds the engine keeps trying one message through time-outs and lost connections (an
    outage of the gateway or of what is behind it) before it gives up; if it could not even
    connect all that time, the engine stops."""
    retry_pause: float = 0.5
    """First pause before a resend or a reconnection; doubled each time, up to ``max_pause``."""
    max_pause: float = 10.0
    connect_timeout: float = 5.0
    tls: Path | None = None
    """Folder with ``ca.pem`` and each establishment's ``<code>.pem`` and ``<code>-key.pem``
    (as ``make up`` writes ``.stack/tls/``); None connects in clear, to a gateway with
    MLLP_TLS=off."""


class Pacer:
    """Maps simulated time to wall time: ``speed`` simulated seconds per wall second, or no
    waiting at all when ``speed`` is None (as fast as the gateway answers)."""

    def __init__(self, window_start: dt.datetime, speed: float | None) -> None:
        self.window_start = window_start
        self.speed = speed
        self.started = time.monotonic()

    def simulated_now(self) -> dt.datetime | None:
        """The simulated time it is now; None when not paced."""
        if self.speed is None:
            return None
        elapsed = time.monotonic() - self.started
        return self.window_start + dt.timedelta(seconds=elapsed * self.speed)

    def delay(self, sent_at: dt.datetime) -> float:
        if self.speed is None:
            return 0.0
        due = (sent_at - self.window_start).total_seconds() / self.speed
        return due - (time.monotonic() - self.started)


class CannotConnect(Exception):
    """The gateway could not be reached for too long."""


class Engine:
    def __init__(
        self,
        establishment: str,
        messages: Sequence[Outbound],
        settings: EngineSettings,
        pacer: Pacer,
        stats: EngineStats,
    ) -> None:
        self.establishment = establishment
        self.messages = messages
        self.settings = settings
        self.pacer = pacer
        self.stats = stats
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._frames = MllpDecoder(ACK_MAX_BYTES)
        self._pending: list[bytes] = []
        self._log = log.bind(establishment=establishment)
        self._tls: ssl.SSLContext | None = None
        if settings.tls is not None:
            self._tls = TlsFiles(settings.tls).client_context(establishment)

    async def run(self) -> None:
        try:
            for message in self.messages:
                delay = self.pacer.delay(message.sent_at)
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._deliver(message)
        except CannotConnect:
            self._log.error(
                "gateway unreachable, engine stopped",
                host=self.settings.host,
                port=self.settings.port,
            )
        finally:
            await self._disconnect()

    async def _deliver(self, message: Outbound) -> None:
        ack_to_lose = message.ack_lost
        sends = 0
        refusals = 0
        failures = 0
        first_try = time.monotonic()
        while True:
            if sends:
                self.stats.resent += 1
            sends += 1
            ack = await self._exchange(message)
            if ack is not None:
                self.stats.ack_codes[ack.code] += 1
                if ack.accepted and ack_to_lose:
                    ack_to_lose = False  # the ACK came; only the engine believes it did not
                    continue
                if ack.accepted:
                    self.stats.acked += 1
                    return
                if ack.rejected:
                    self.stats.rejected += 1
                    # The ACK's text may quote the message: its code says enough.
                    self._log.warning(
                        "message rejected", control_id=message.control_id, code=ack.code
                    )
                    return
                refusals += 1
                self._log.warning(
                    "message refused", control_id=message.control_id, code=ack.code, sends=sends
                )
            failures += 1
            out_of_patience = time.monotonic() - first_try > self.settings.patience
            if refusals >= self.settings.max_refusals or out_of_patience:
                self.stats.given_up += 1
                self._log.error("message given up", control_id=message.control_id, sends=sends)
                return
            await asyncio.sleep(self._pause(failures))

    async def _exchange(self, message: Outbound) -> Ack | None:
        """Send once and wait for this message's ACK; None on time-out or a lost connection."""
        reader, writer = await self._connection()
        try:
            writer.write(frame(message.payload))
            await writer.drain()
            self.stats.sent += 1
            self.stats.simulated_time = message.sent_at
            async with asyncio.timeout(self.settings.ack_timeout):
                while True:
                    while self._pending:
                        ack = parse_ack(self._pending.pop(0))
                        # An ACK for an earlier send of another message came late: skip it.
                        if ack is not None and ack.control_id == message.control_id:
                            return ack
                    data = await reader.read(65536)
                    if not data:
                        raise ConnectionResetError("closed by the gateway")
                    self._pending.extend(
                        item.payload for item in self._frames.feed(data) if isinstance(item, Frame)
                    )
        except TimeoutError:
            self.stats.timeouts += 1
            self._log.warning("no ACK in time", control_id=message.control_id)
        except OSError as error:
            self.stats.connection_losses += 1
            self._log.warning("connection lost", control_id=message.control_id, error=error)
        # After a time-out or a loss, start again on a fresh connection, as engines do.
        await self._disconnect()
        return None

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is not None and self._writer is not None:
            return self._reader, self._writer
        failures = 0
        first_failure: float | None = None
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        self.settings.host,
                        self.settings.port,
                        ssl=self._tls,
                        server_hostname=self.settings.host if self._tls else None,
                    ),
                    self.settings.connect_timeout,
                )
            except (OSError, TimeoutError) as error:
                failures += 1
                now = time.monotonic()
                first_failure = first_failure or now
                if now - first_failure > self.settings.patience:
                    raise CannotConnect(str(error)) from error
                if failures == 1:
                    self._log.warning("cannot connect, retrying", error=error)
                await asyncio.sleep(self._pause(failures))
                continue
            self.stats.connects += 1
            self._reader, self._writer = reader, writer
            self._frames = MllpDecoder(ACK_MAX_BYTES)
            self._pending.clear()
            return reader, writer

    async def _disconnect(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _pause(self, attempt: int) -> float:
        return float(min(self.settings.max_pause, self.settings.retry_pause * 2 ** (attempt - 1)))
