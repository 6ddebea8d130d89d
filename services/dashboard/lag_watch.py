"""Reads the consumer groups' lag from Kafka every few seconds, in the background.

Page requests never wait for the broker: they show the latest reading and when it was taken. A
broker that does not answer leaves the previous figures, marked with the error, until it does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import structlog
from confluent_kafka.admin import AdminClient

from services.cli.lag import consumer_lag
from services.common.observability import FAILED
from services.common.settings import Settings
from services.dashboard.overview import LagReading


class LagWatch:
    def __init__(
        self,
        settings: Settings,
        admin: AdminClient,
        groups: Sequence[str],
        interval: float,
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        self.settings = settings
        self.admin = admin
        self.groups = list(groups)
        self.interval = interval
        self.log = log
        self.latest = LagReading()

    async def run(self) -> None:
        """Until cancelled; one reading at a time, even when the broker is slow to answer."""
        while True:
            await self.read_once()
            await asyncio.sleep(self.interval)

    async def read_once(self) -> None:
        try:
            groups = await asyncio.to_thread(consumer_lag, self.settings, self.admin, self.groups)
        except Exception as error:
            FAILED.labels("dashboard", "kafka").inc()
            if self.latest.error is None:  # once per outage, not every few seconds
                self.log.warning("consumer lag unavailable", error=str(error))
            self.latest = LagReading(self.latest.groups, self.latest.checked_at, str(error))
            return
        if self.latest.error is not None:
            self.log.info("consumer lag available again")
        self.latest = LagReading(groups, dt.datetime.now(dt.UTC))
