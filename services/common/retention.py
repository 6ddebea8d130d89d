"""Retention purges: patient data removed a set time after its purpose ended, on a timer.

A purge is driven by timestamps stored with the data (a notice's final status, a case's
closure), never by an in-memory schedule: a service that was stopped when something became due
purges it at its next round, and a round stopped half-way (a crash, a restart) leaves only whole
batches done, the rest still selected next time. Each batch is one transaction of at most
``batch_size`` rows, so a purge never holds long locks on a busy table. Only counts are logged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog

PurgeBatch = Callable[[int], int]
"""Purges up to that many rows in one transaction; how many it purged."""


@dataclass(frozen=True)
class Purge:
    """One kind of data to purge: ``what`` names it in the logs (never a value of it)."""

    what: str
    batch: PurgeBatch
    batch_size: int


def purge_due(purge: Purge, stop: threading.Event | None = None) -> int:
    """Everything due now, batch after batch; how many rows. Idempotent: nothing due, nothing
    done. ``stop`` ends it between batches (what is done stays done)."""
    total = 0
    while stop is None or not stop.is_set():
        purged = purge.batch(purge.batch_size)
        total += purged
        if purged < purge.batch_size:
            break
    return total


def purge_periodically(
    stop: threading.Event,
    purges: list[Purge],
    interval: float,
    log: structlog.stdlib.BoundLogger,
) -> None:
    """The timer: every purge at start-up (what fell due while the service was down), then
    every ``interval`` seconds, until ``stop``."""
    while not stop.is_set():
        for purge in purges:
            purged = purge_due(purge, stop)
            if purged:
                log.info("retention purge", what=purge.what, count=purged)
        stop.wait(interval)
