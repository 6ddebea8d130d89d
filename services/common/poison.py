"""Poison records: which failures are a record's fault, and how many times a record is tried.

A record whose handling fails because of what it holds (a NUL PostgreSQL refuses, a date whose
arithmetic overflows, a field the code does not expect) fails the same way every time: it is tried
``POISON_ATTEMPTS`` times, then dead-lettered, and the stream goes on. A failure of the platform
around it (PostgreSQL, Kafka, the registry or SMTP unreachable) is not the record's fault: the
record is tried again, with backoff, until the outage ends, and never dead-lettered.

``classify`` is the one place that tells the two apart; ``RecordAttempts`` counts a record's
failures in memory, which is enough because a poison record's failure repeats deterministically
and the failure is caught (a crash would lose the count and loop).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum

import httpx2
import psycopg
import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import SerializationError

from services.common.deadletter import DeadLetterError
from services.common.serde import UndecodableValue
from services.common.settings import read_config, setting


class Fault(Enum):
    RECORD = "record"
    """The record is at fault: trying it again fails again."""
    OUTAGE = "outage"
    """A component is unreachable or failing: waiting cures it."""


# What an unreachable or failing component raises. psycopg's OperationalError covers a lost
# connection, a server shutting down, a deadlock or a serialisation failure; OSError covers
# sockets, SMTP (smtplib's errors are OSErrors) and TLS; BufferError is a full producer queue.
_OUTAGES: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    KafkaException,
    DeadLetterError,
    httpx2.HTTPError,
    OSError,
    TimeoutError,
    BufferError,
)


def classify(error: BaseException) -> Fault:
    """Whether ``error``, raised while handling a record, is the record's fault or an outage.

    Anything not known as an outage is taken as the record's fault (``psycopg.DataError`` for a
    NUL or an out-of-range value, ``ValueError``, ``OverflowError``, ``UnicodeError``,
    ``KeyError``, ``TypeError``, ...): it is still tried ``POISON_ATTEMPTS`` times, and a record
    wrongly taken as poison is kept whole on the dead-letter topic, to be replayed; whereas an
    error wrongly taken as an outage would stop the stream for good.
    """
    # A (de)serialisation error is a KafkaException too, but the record's, not Kafka's.
    if isinstance(error, UndecodableValue | SerializationError):
        return Fault.RECORD
    if isinstance(error, SchemaRegistryError):
        # 404: an id or subject the registry does not know; anything else is the registry's.
        return Fault.RECORD if error.http_status_code == 404 else Fault.OUTAGE
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError):
        return refusal(error.args[0])
    if isinstance(error, _OUTAGES):
        return Fault.OUTAGE
    return Fault.RECORD


# What Kafka answers about a record itself; anything else (timeouts, brokers or topics not
# available, authorisation) is the cluster's state or configuration, which an operator mends.
_REFUSED_RECORD = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_MSG_SIZE,
    }
)


def refusal(error: KafkaError) -> Fault:
    """Whether Kafka's error on producing a record is the record's fault or an outage."""
    return Fault.RECORD if error.code() in _REFUSED_RECORD else Fault.OUTAGE


def describe(error: BaseException) -> str:
    """What the dead-letter headers and logs say of a handling failure: the error's class and a
    fixed sentence, never its message, which may quote the record (psycopg's DataError does)."""
    return f"handling failed with {type(error).__name__}: the record's content cannot be processed"


@dataclass(frozen=True)
class PoisonPolicy:
    attempts: int = setting(3, "POISON_ATTEMPTS", minimum=1)
    """How many times a record is handled before it is taken as poison."""
    backoff: dt.timedelta = setting(dt.timedelta(seconds=0.2), "POISON_BACKOFF_SECONDS", minimum=0)
    """The wait after a record's first failure; doubled after each next one."""
    outage_backoff_max: dt.timedelta = setting(
        dt.timedelta(seconds=30), "OUTAGE_BACKOFF_MAX_SECONDS", minimum=0
    )
    """The longest wait between two tries during an outage."""

    @classmethod
    def from_env(cls) -> PoisonPolicy:
        return read_config(cls)

    def pause(self, failures: int, fault: Fault) -> float:
        """Seconds to wait after a record's ``failures``-th failure in a row."""
        seconds: float = self.backoff.total_seconds() * 2.0 ** max(0, failures - 1)
        if fault is Fault.OUTAGE:
            return min(max(seconds, 0.5), self.outage_backoff_max.total_seconds())
        return seconds


class Next(Enum):
    RETRY = "retry"
    """Handle the record again after the pause."""
    DEAD_LETTER = "dead_letter"
    """The record is poison: dead-letter it and go on with the next."""


@dataclass(frozen=True)
class Verdict:
    next: Next
    fault: Fault
    failures: int
    pause: float


class RecordAttempts:
    """Failures in a row per record (any hashable place, e.g. topic, partition, offset)."""

    def __init__(self, policy: PoisonPolicy) -> None:
        self.policy = policy
        # An outage's failures only lengthen the pause: they never bring a record nearer to
        # being taken as poison.
        self._failures: dict[tuple[Fault, Hashable], int] = {}

    def failed(self, place: Hashable, error: BaseException) -> Verdict:
        """Count a failure of the record at ``place``; what to do next. An outage is retried
        however often it fails; a record at fault, until it has failed ``attempts`` times."""
        fault = classify(error)
        failures = self._failures[fault, place] = self._failures.get((fault, place), 0) + 1
        if fault is Fault.RECORD and failures >= self.policy.attempts:
            self.done(place)
            return Verdict(Next.DEAD_LETTER, fault, failures, 0.0)
        return Verdict(Next.RETRY, fault, failures, self.policy.pause(failures, fault))

    def done(self, place: Hashable) -> None:
        """The record was handled (or dead-lettered): its counts are forgotten."""
        for fault in Fault:
            self._failures.pop((fault, place), None)

    def failures(self, place: Hashable, fault: Fault = Fault.RECORD) -> int:
        return self._failures.get((fault, place), 0)

    def run(
        self,
        place: tuple[str, int | None, int | None],
        attempt: Callable[[], None],
        dead_letter: Callable[[BaseException], None],
        log: structlog.stdlib.BoundLogger,
    ) -> bool:
        """Handle the record at ``place`` (topic, partition, offset) with ``attempt``, again after
        a failure on its content, until it succeeds (True) or has failed ``attempts`` times and
        is given to ``dead_letter`` (False). An outage is raised: the caller's loop takes its
        batch back and waits it out. So is an undecodable value, which no second try decodes:
        the caller dead-letters it at once."""
        while True:
            try:
                attempt()
            except UndecodableValue:
                self.done(place)
                raise
            except Exception as error:
                verdict = self.failed(place, error)
                if verdict.fault is Fault.OUTAGE:
                    raise
                if verdict.next is Next.DEAD_LETTER:
                    dead_letter(error)
                    return False
                log.warning(
                    "record handling failed; trying it again",
                    source="/".join(str(part) for part in place),
                    error=type(error).__name__,
                    failures=verdict.failures,
                )
                time.sleep(verdict.pause)
                continue
            self.done(place)
            return True
