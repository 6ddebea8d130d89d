"""Dead-letter topics: records a service cannot process are kept, with where they came from and why.

The original key, value and headers are kept byte for byte; headers in the manner of Kafka
Connect's DLQ headers say the source topic, partition and offset, the service, the reason and the
error. ``send`` returns only once Kafka has the record, so the caller may then commit the input
offset: a poison record is never lost and never blocks the stream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from services.common.logging import error_name

HEADER_PREFIX = "harpicoop.errors."

Headers = list[tuple[str, str | bytes | None]]


class DeadLetterError(RuntimeError):
    """The dead-letter record could not be written: the input must not be committed."""


def dead_letter_topic(service: str) -> str:
    return f"deadletter.{service}"


def error_headers(
    *,
    service: str,
    reason: str,
    error: BaseException | None,
    source_topic: str | None,
    partition: int | None,
    offset: int | None,
    description: str | None = None,
) -> Headers:
    """``description`` is a message the caller vouches for (an SMTP reply, a rule's words).
    Without one the header names what the error is, never what it says: a decoder's or a
    driver's message may quote the record, and a dead-letter header is read by operators and
    kept a month (``error_name``: the exception's type, a Kafka error's code)."""
    message = description if description is not None else error_name(error) if error else None
    values = {
        "service": service,
        "reason": reason,
        "topic": source_topic,
        "partition": partition,
        "offset": offset,
        "exception.class.name": type(error).__name__ if error else None,
        "exception.message": message[:1000] if message is not None else None,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
    }
    return [
        (f"{HEADER_PREFIX}{name}", str(value).encode("utf-8"))
        for name, value in values.items()
        if value is not None
    ]


def log_dead_lettered(
    log: structlog.stdlib.BoundLogger, message: Message, reason: str, error: BaseException
) -> None:
    """The one log line of a dead-lettered record: where it was and why, never its content."""
    log.error(
        "record dead-lettered",
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        reason=reason,
        error=type(error).__name__,
    )


def header_list(
    headers: Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]] | None,
) -> Headers:
    """Headers as a list of pairs, whichever of the client's two shapes they came in."""
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def read_error_headers(
    headers: Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]] | None,
) -> dict[str, str]:
    """The error headers of a dead-letter record, without their prefix."""
    return {
        name.removeprefix(HEADER_PREFIX): (
            value.decode("utf-8", "replace") if isinstance(value, bytes) else value or ""
        )
        for name, value in header_list(headers)
        if name.startswith(HEADER_PREFIX)
    }


class DeadLetters:
    """Writes to one service's dead-letter topic and waits for Kafka to confirm each record."""

    def __init__(self, producer: Producer, service: str, topic: str | None = None) -> None:
        self.producer = producer
        self.service = service
        self.topic = topic or dead_letter_topic(service)

    def send(
        self,
        *,
        key: bytes | str | None,
        value: bytes | None,
        reason: str,
        error: BaseException | None = None,
        source_topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        headers: Sequence[tuple[str, str | bytes | None]] | None = None,
        description: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        outcome: dict[str, Any] = {}

        def delivered(err: KafkaError | None, _message: Message) -> None:
            outcome["error"] = err
            outcome["done"] = True

        original: Headers = list(headers or [])
        self.producer.produce(
            self.topic,
            key=key,
            value=value,
            headers=original
            + error_headers(
                service=self.service,
                reason=reason,
                error=error,
                source_topic=source_topic,
                partition=partition,
                offset=offset,
                description=description,
            ),
            on_delivery=delivered,
        )
        deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
        while not outcome.get("done"):
            if dt.datetime.now() > deadline:
                raise DeadLetterError(f"no confirmation from Kafka for {self.topic} in {timeout} s")
            self.producer.poll(0.1)
        if outcome["error"] is not None:
            raise DeadLetterError(f"{self.topic}: {outcome['error']}") from KafkaException(
                outcome["error"]
            )

    def send_message(
        self,
        message: Message,
        reason: str,
        error: BaseException | None = None,
        description: str | None = None,
    ) -> None:
        """Dead-letter a consumed record as it was, naming its topic, partition and offset."""
        self.send(
            key=message.key(),
            value=message.value(),
            reason=reason,
            error=error,
            source_topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            headers=header_list(message.headers()),
            description=description,
        )
