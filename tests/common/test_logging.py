"""Logs are JSON lines of declared safe fields: ids, codes, counts, durations, outcomes. Anything
else, an exception's message and a library's formatted arguments included, stays in the service."""

from __future__ import annotations

import ast
import datetime as dt
import json
import logging
import threading
from typing import Any

import psycopg
import pytest
from confluent_kafka import KafkaError, KafkaException

from services.common.logging import (
    SAFE_FIELDS,
    configure_logging,
    get_logger,
    keep_safe_fields,
    scrub_text,
)
from services.common.paths import PROJECT_ROOT

CANARY = "Zéphyrine-Canari"


def _last_line(capsys: pytest.CaptureFixture[str]) -> tuple[str, dict[str, Any]]:
    line = capsys.readouterr().err.strip().splitlines()[-1]
    return line, json.loads(line)


def _failing(message: str) -> ValueError:
    try:
        raise ValueError(message)
    except ValueError as error:
        return error


def test_undeclared_keys_are_dropped_and_named() -> None:
    event = keep_safe_fields(
        None,
        "info",
        {
            "event": "stay event published",
            "event_id": "chrunancy:MSG0001",
            "ipp": "123456",
            "record": {"stay_key": "chrunancy:V1", "patient": {"family_name": "Durand"}},
            "counters": {"accepted": 3},
        },
    )
    assert event == {
        "event": "stay event published",
        "event_id": "chrunancy:MSG0001",
        "counters": {"accepted": 3},
        "dropped_fields": ["ipp", "record"],
    }


def test_a_declared_key_holding_what_its_kind_refuses_is_dropped() -> None:
    event = keep_safe_fields(
        None,
        "info",
        {
            "event": "x",
            "stay_key": "DUPONT Jean",  # an id is one token
            "reason": 'duplicate key (ins)=("1850754...")',  # a code has no quotes, no brackets
            "count": "12",  # a count is a number
            "retry_at": dt.date(1913, 7, 29),  # a bare date is what a birth date is
            "counters": {"Durand": "born 1913-07-29"},  # counts by code hold numbers
            "topics": ["stays.enriched", "a name with spaces"],  # one item refused: all dropped
            "error": "relation violates constraint: Key (name)=(Durand)",
        },
    )
    assert event == {
        "event": "x",
        "dropped_fields": [
            "count",
            "counters",
            "error",
            "reason",
            "retry_at",
            "stay_key",
            "topics",
        ],
    }


def test_nested_mappings_under_an_id_or_code_are_dropped() -> None:
    event = keep_safe_fields(None, "info", {"event": "x", "source": {"patient": "Durand"}})
    assert event == {"event": "x", "dropped_fields": ["source"]}


def test_errors_are_logged_as_their_type_never_their_message() -> None:
    timed_out = KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "record for Durand"))
    event = keep_safe_fields(
        None,
        "error",
        {
            "event": "x",
            "error": _failing(f"birth date 1913-07-29 of {CANARY}"),
            "errors": [KafkaError(KafkaError._MSG_TIMED_OUT, CANARY), timed_out],
            "exc_info": psycopg.errors.UniqueViolation(f"Key (family_name)=({CANARY})"),
        },
    )
    text = json.dumps(event, ensure_ascii=False)
    assert CANARY not in text and "1913" not in text and "Durand" not in text
    assert event["error"] == "ValueError"
    assert event["errors"][0] == "_MSG_TIMED_OUT"
    assert event["errors"][1].endswith("KafkaException(_MSG_TIMED_OUT)")
    assert event["exception"]["type"] == "psycopg.errors.UniqueViolation"


def test_a_traceback_keeps_its_frames_and_causes_not_its_messages_or_locals() -> None:
    def parse_patient(family_name: str) -> None:
        try:
            int(family_name)
        except ValueError as error:
            raise RuntimeError(f"cannot read patient {family_name}") from error

    try:
        parse_patient(CANARY)
    except RuntimeError as error:
        event = keep_safe_fields(None, "error", {"event": "x", "exc_info": error})
    text = json.dumps(event, ensure_ascii=False)
    assert CANARY not in text
    exception = event["exception"]
    assert exception["type"] == "RuntimeError"
    assert exception["frames"][-1] == f"{__name__}:parse_patient:{_line_of('raise Runtime')}"
    assert exception["cause"]["type"] == "ValueError"


def _line_of(snippet: str) -> int:
    with open(__file__, encoding="utf-8") as source:
        return next(
            n for n, line in enumerate(source, 1) if snippet in line and "_line_of" not in line
        )


def test_library_text_loses_quoted_bracketed_and_numeric_parts() -> None:
    assert scrub_text("Record <ConsumerRecord value=b'x'> for 'Durand' born 19130729 failed") == (
        "Record … for … born … failed"
    )


def test_every_declared_kind_says_why_it_is_safe() -> None:
    for key, kind in SAFE_FIELDS.items():
        assert len(kind.reason) > 40, key


def test_a_service_logs_one_json_object_per_line_without_patient_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = configure_logging("gateway")
    log.info("message accepted", event_id="cpn:42", family_name="Lévêque", given_name="Zoé")
    line, record = _last_line(capsys)
    assert record["service"] == "gateway"
    assert record["event_id"] == "cpn:42"
    assert record["level"] == "info"
    assert "Lévêque" not in line and "Zoé" not in line
    assert record["dropped_fields"] == ["family_name", "given_name"]


def test_log_exception_is_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    log = configure_logging("notify")
    try:
        raise _failing(f"no mailbox for {CANARY}")
    except ValueError:
        log.exception("notice failed", notification_id="n-1")
    line, record = _last_line(capsys)
    assert CANARY not in line
    assert record["exception"]["type"] == "ValueError"
    assert record["exception"]["frames"]


def test_library_records_keep_their_template_not_their_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("dedup")
    library = logging.getLogger("faust.agents")
    library.warning("Agent error for value %r", {"family_name": CANARY})
    line, record = _last_line(capsys)
    assert CANARY not in line
    assert record["event"] == "Agent error for value %r"
    assert (record["logger"], record["level"], record["service"]) == (
        "faust.agents",
        "warning",
        "dedup",
    )

    library.error(f"Error in {CANARY!r} born 19130729")  # a value formatted in before logging
    line, record = _last_line(capsys)
    assert CANARY not in line and "19130729" not in line

    try:
        raise _failing(f"Key (ins)=({CANARY})")
    except ValueError:
        logging.getLogger("psycopg").exception("query failed")
    line, record = _last_line(capsys)
    assert CANARY not in line
    assert record["exception"]["type"] == "ValueError"
    assert record["event"] == "query failed"


def test_an_uncaught_exception_in_a_thread_is_logged_scrubbed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("covid")

    def fail() -> None:
        raise _failing(f"case of {CANARY}")

    thread = threading.Thread(target=fail)
    thread.start()
    thread.join()
    line, record = _last_line(capsys)
    assert CANARY not in line
    assert record["event"] == "uncaught exception in a thread"
    assert record["exception"]["type"] == "ValueError"


def test_a_logger_made_before_configuration_logs_json_after_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    early = get_logger(component="mllp")
    configure_logging("gateway")
    early.info("listening", port=2575)
    _line, record = _last_line(capsys)
    assert record["component"] == "mllp" and record["port"] == 2575


LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "bind", "msg"}


def test_every_key_the_services_log_is_declared_and_every_message_is_a_literal() -> None:
    """A key missing from ``SAFE_FIELDS`` would be dropped silently in production, and a message
    is kept as it is: both are found here."""
    undeclared = set()
    for path in (PROJECT_ROOT / "services").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_METHODS | {"bind_contextvars"}
            ):
                where = f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}"
                for keyword in node.keywords:
                    if keyword.arg not in SAFE_FIELDS and keyword.arg != "exc_info":
                        undeclared.add(f"{where} {keyword.arg or '**'}")
                message = node.args[0] if node.args else None
                receiver = ast.unparse(node.func.value)
                if (
                    "log" in receiver
                    and message is not None
                    and not isinstance(message, ast.Constant)
                ):
                    undeclared.add(f"{where} message not a literal")
    assert undeclared == set()
