"""Reads the consumer groups' lag from Kafka every few seconds, in the background.

Page requests never wait for the broker: they show the latest reading and when it was taken. A
broker that does not answer leaves the previous figures, marked with the error, until it does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import structlog

from services.cli.lag import GroupLag, LagReader
from services.common.observability import FAILED
from services.common.settings import Settings
from services.dashboard.overview import LagReading


class LagWatch:
    def __init__(
        self,
        settings: Settings,
        groups: Sequence[str],
        interval: float,
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        self.settings = settings
        self.groups = list(groups)
        self.interval = interval
        self.log = log
        self.latest = LagReading()
        # The Kafka handles are made, used and closed on this one thread, away from the loop.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="lag-watch")
        self._reader: LagReader | None = None

    async def run(self) -> None:
        """Until cancelled; one reading at a time, even when the broker is slow to answer."""
        try:
            while True:
                await self.read_once()
                await asyncio.sleep(self.interval)
        finally:
            # After a reading still in flight, whatever cancelled the loop.
            self._thread.submit(self._close)
            self._thread.shutdown(wait=False)

    async def read_once(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            groups = await loop.run_in_executor(self._thread, self._read)
        except Exception as error:
            FAILED.labels("dashboard", "kafka").inc()
            if self.latest.error is None:  # once per outage, not every few seconds
                self.log.warning("consumer lag unavailable", error=error)
            self.latest = LagReading(self.latest.groups, self.latest.checked_at, str(error))
            return
        if self.latest.error is not None:
            self.log.info("consumer lag available again")
        self.latest = LagReading(groups, dt.datetime.now(dt.UTC))

    def _read(self) -> list[GroupLag]:
        if self._reader is None:
            # The dashboard's principal reads offsets, never a record (deploy/access.toml).
            self._reader = LagReader(self.settings, read_records=False)
        return self._reader.read(self.groups)

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
