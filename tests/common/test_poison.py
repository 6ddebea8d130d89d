"""A record whose handling fails because of what it holds is poison after a few tries; an outage
of a component never is."""

from __future__ import annotations

import datetime as dt
import smtplib

import httpx2
import psycopg
import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError

from services.common.deadletter import DeadLetterError, error_headers
from services.common.poison import (
    Fault,
    Next,
    PoisonPolicy,
    RecordAttempts,
    classify,
    describe,
)
from services.common.serde import UndecodableValue
from services.common.settings import SettingsError, read_config


@pytest.mark.parametrize(
    "error",
    [
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
        psycopg.errors.NumericValueOutOfRange("value out of range"),
        psycopg.IntegrityError("duplicate key"),
        ValueError("year 10000 is out of range"),
        OverflowError("date value out of range"),
        UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed"),
        KeyError("event"),
        TypeError("'NoneType' object is not subscriptable"),
        UndecodableValue("unknown schema id 1000000"),
        SchemaRegistryError(404, 40403, "schema not found"),
    ],
)
def test_what_a_record_holds_is_its_own_fault(error: BaseException) -> None:
    assert classify(error) is Fault.RECORD


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("connection refused"),
        psycopg.errors.AdminShutdown("terminating connection"),
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.InterfaceError("the connection is closed"),
        KafkaException(KafkaError(KafkaError._TRANSPORT)),
        DeadLetterError("no confirmation from Kafka"),
        SchemaRegistryError(503, 50003, "unavailable"),
        httpx2.ConnectError("connection refused"),
        ConnectionRefusedError(111, "Connection refused"),
        smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        TimeoutError(),
        BufferError("Local: Queue full"),
    ],
)
def test_an_unreachable_component_is_an_outage(error: BaseException) -> None:
    assert classify(error) is Fault.OUTAGE


POLICY = PoisonPolicy(attempts=3, backoff=dt.timedelta(seconds=0.2))
PLACE = ("stays.enriched", 4, 1017)


def test_a_record_failing_on_its_content_is_poison_on_its_third_failure() -> None:
    attempts = RecordAttempts(POLICY)
    first = attempts.failed(PLACE, psycopg.DataError("NUL"))
    second = attempts.failed(PLACE, psycopg.DataError("NUL"))
    third = attempts.failed(PLACE, psycopg.DataError("NUL"))
    assert [first.next, second.next, third.next] == [Next.RETRY, Next.RETRY, Next.DEAD_LETTER]
    assert [first.pause, second.pause] == [0.2, 0.4]
    assert attempts.failures(PLACE) == 0, "forgotten once dead-lettered"


def test_an_outage_is_retried_however_long_it_lasts_with_a_bounded_backoff() -> None:
    attempts = RecordAttempts(POLICY)
    verdicts = [attempts.failed(PLACE, psycopg.OperationalError("down")) for _ in range(50)]
    assert {verdict.next for verdict in verdicts} == {Next.RETRY}
    assert verdicts[-1].pause == POLICY.outage_backoff_max.total_seconds()
    # Failures during the outage do not bring the record nearer to the dead-letter topic.
    assert attempts.failed(PLACE, ValueError("bad")).next is Next.RETRY


def test_a_success_forgets_the_failures_and_records_are_counted_apart() -> None:
    attempts = RecordAttempts(POLICY)
    attempts.failed(PLACE, KeyError("event"))
    attempts.failed(PLACE, KeyError("event"))
    attempts.done(PLACE)
    assert attempts.failed(PLACE, KeyError("event")).next is Next.RETRY
    other = ("stays.enriched", 4, 1018)
    attempts.failed(other, KeyError("event"))
    assert attempts.failures(PLACE) == 1 and attempts.failures(other) == 1


def test_one_attempt_dead_letters_on_the_first_failure() -> None:
    attempts = RecordAttempts(PoisonPolicy(attempts=1))
    assert attempts.failed(PLACE, OverflowError("date")).next is Next.DEAD_LETTER


def test_the_dead_letter_headers_name_the_error_class_never_its_message() -> None:
    error = psycopg.DataError("value 'DUPONT\x00Jean' is invalid")
    headers = dict(
        error_headers(
            service="notify",
            reason="handling failed",
            error=error,
            source_topic="stays.enriched",
            partition=4,
            offset=1017,
            description=describe(error),
        )
    )
    assert headers["harpicoop.errors.exception.class.name"] == b"DataError"
    assert not any("DUPONT" in str(value) for value in headers.values())


def test_the_policy_is_read_from_the_environment() -> None:
    policy = read_config(PoisonPolicy, {"POISON_ATTEMPTS": "5", "POISON_BACKOFF_SECONDS": "0.05"})
    assert policy.attempts == 5 and policy.backoff == dt.timedelta(seconds=0.05)
    assert read_config(PoisonPolicy, {}).attempts == 3
    with pytest.raises(SettingsError, match="POISON_ATTEMPTS"):
        read_config(PoisonPolicy, {"POISON_ATTEMPTS": "0"})
