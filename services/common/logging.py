"""structlog JSON logging for every service: only declared safe fields leave a service.

A log line carries ids, codes, counts, durations and outcomes, never a patient's name, birth date
or identifiers. Rather than list what must not be logged (a list that misses the next careless
key), ``SAFE_FIELDS`` declares every key a log line may carry, each of a ``FieldKind`` that says
why it is safe and which values it accepts. Any other key, or a value its kind refuses, is dropped
and its name kept in ``dropped_fields`` so that the mistake can be found and fixed.

Exceptions are logged as their type and their frames (module, function, line): their message and
their locals are dropped, since a database or Kafka error quotes the values it refused. The
standard library's log records (faust, aiokafka, psycopg, httpx, uvicorn...) go through the same
filter: their message template is kept, its arguments never are. faulthandler's crash dumps hold
stack frames only, and stay.
"""

from __future__ import annotations

import datetime as dt
import enum
import faulthandler
import logging
import re
import sys
import threading
import types
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException

_DROP = object()
"""A kind's answer for a value it does not accept."""

_TOKEN = re.compile(r"[\w.:/@#+\-]{0,200}")
"""An id or a code: no spaces, quotes, brackets or ``=``, which free text (an error message
quoting a record, a name with a given name) has."""
_WORDS = re.compile(r"[\w.:/+\- ]{0,80}")
"""A reason or state written in the code, a few words at most."""
_TYPE_NAME = re.compile(r"[A-Za-z_][\w.]{0,120}")


def _scalar(accepts: Callable[[Any], bool]) -> Callable[[Any], Any]:
    """A value check that also takes lists of such values (the topics read, the inputs...)."""

    def check(value: Any) -> Any:
        if isinstance(value, list | tuple | set | frozenset):
            items = [check(item) for item in value]
            return _DROP if any(item is _DROP for item in items) else items
        if value is None or accepts(value):
            return value.value if isinstance(value, enum.Enum) else value
        return _DROP

    return check


def _is_id(value: Any) -> bool:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool | int):
        return True
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def _is_code(value: Any) -> bool:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool | int):
        return True
    return isinstance(value, str) and _WORDS.fullmatch(value) is not None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, enum.Enum)


def _counts(value: Any) -> Any:
    """A number, or numbers by a code (outcome → count)."""
    if isinstance(value, Mapping):
        if all(_is_id(key) and _is_number(count) for key, count in value.items()):
            return dict(value)
        return _DROP
    return _scalar(_is_number)(value)


def _is_time(value: Any) -> bool:
    # A datetime is when the platform did something; a bare date is what a birth date is.
    return _is_number(value) or isinstance(value, dt.datetime | dt.timedelta)


def _time(value: Any) -> Any:
    checked = _scalar(_is_time)(value)
    if isinstance(checked, dt.datetime | dt.timedelta):
        return str(checked)
    return checked


def error_name(error: Any) -> str | None:
    """What an error is, never what it says: an exception's qualified type, a Kafka error's code.

    a ``KafkaException`` says its code too, ``cimpl.KafkaException(_MSG_TIMED_OUT)``."""
    if isinstance(error, KafkaError):
        return str(error.name())
    if isinstance(error, type) and issubclass(error, BaseException):
        return _qualified(error)
    if isinstance(error, BaseException):
        code = error.args[0] if isinstance(error, KafkaException) and error.args else None
        if isinstance(code, KafkaError):
            return f"{_qualified(type(error))}({code.name()})"
        # The registry's own error code (40403: no such schema) says what went wrong, no more.
        registry_code = getattr(error, "error_code", None)
        if isinstance(registry_code, int):
            return f"{_qualified(type(error))}({registry_code})"
        return _qualified(type(error))
    if isinstance(error, str) and _TYPE_NAME.fullmatch(error):
        return error  # a type name or an error code the caller already reduced it to
    return None


def _error(value: Any) -> Any:
    if isinstance(value, list | tuple):
        items = [_error(item) for item in value]
        return _DROP if any(item is _DROP for item in items) else items
    name = error_name(value)
    return _DROP if name is None and value is not None else name


def _qualified(kind: type) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


@dataclass(frozen=True)
class FieldKind:
    name: str
    reason: str
    """Why a value of this kind cannot identify a patient."""
    check: Callable[[Any], Any]
    """The value as logged, or ``_DROP`` when the value is not of this kind."""


ID = FieldKind(
    "id",
    "Ids the platform or the establishments' systems give to messages, stays, movements, "
    "notices, practitioners (RPPS), topics, partitions and offsets: they find a record in a "
    "store that access controls guard, and say nothing of who the patient is. One token, no "
    "spaces: a name with its given name, or an error message, is refused.",
    _scalar(_is_id),
)
CODE = FieldKind(
    "code",
    "Values of a closed vocabulary written in the code: HL7 triggers and ACK codes, SMTP reply "
    "codes, outcomes, states, reasons. A few words at most, no quotes or brackets.",
    _scalar(_is_code),
)
COUNT = FieldKind(
    "count", "Numbers of things, or numbers by an outcome code: totals, not people.", _counts
)
DURATION = FieldKind(
    "duration",
    "Seconds to wait, days to keep, times at which the platform acts: clock values of the "
    "platform. A bare date (what a birth date is) is refused.",
    _time,
)
NETWORK = FieldKind(
    "network",
    "Addresses and ports of the machines that speak to a service: establishments' engines and "
    "the service's own listeners, not people.",
    _scalar(_is_id),
)
ERROR = FieldKind(
    "error",
    "What went wrong, as an exception's type or a Kafka error code. The message is dropped: a "
    "database or broker error quotes the values it refused.",
    _error,
)

SAFE_FIELDS: Mapping[str, FieldKind] = {
    # What structlog and this module add to every line.
    "event": CODE,  # the message: a literal of the code (checked apart, see keep_safe_fields)
    "level": CODE,
    "logger": ID,
    "service": ID,
    "part": ID,
    "component": ID,
    # Ids.
    "event_id": ID,
    "stay_key": ID,
    "movement_id": ID,
    "control_id": ID,
    "notification_id": ID,
    "digest_id": ID,
    "row_id": ID,
    "rpps": ID,
    "establishment": ID,
    "sending_facility": ID,
    "source": ID,
    "first_seen": ID,
    "identity": ID,
    "topic": ID,
    "topics": ID,
    "inputs": ID,
    "input_topic": ID,
    "pattern": ID,
    "partition": ID,
    "offset": ID,
    "first": ID,
    "group": ID,
    "owner": ID,
    "cn": ID,
    # Codes.
    "ack": CODE,
    "code": CODE,
    "error_code": CODE,
    "error_location": CODE,
    "smtp_code": CODE,
    "trigger": CODE,
    "kind": CODE,
    "outcome": CODE,
    "state": CODE,
    "reason": CODE,
    "fault": CODE,
    "effect": CODE,
    "lateness": CODE,
    "skipped": CODE,
    "tls": CODE,
    "what": CODE,  # what a retention purge removes, named in the code
    # Counts.
    "count": COUNT,
    "counts": COUNT,
    "counters": COUNT,
    "this_run": COUNT,
    "totals": COUNT,
    "added": COUNT,
    "changed": COUNT,
    "removed": COUNT,
    "bad_rows": COUNT,
    "rows_read": COUNT,
    "mailboxes": COUNT,
    "practitioners": COUNT,
    "recipients": COUNT,
    "records": COUNT,
    "claims": COUNT,
    "held": COUNT,
    "windows_in_memory": COUNT,
    "partitions": COUNT,
    "expected": COUNT,
    "attempt": COUNT,
    "sends": COUNT,
    "failures": COUNT,
    "outages": COUNT,
    "cases": COUNT,
    "reminded": COUNT,
    "completed": COUNT,
    "senders": COUNT,
    "undelivered": COUNT,
    "unconfirmed": COUNT,
    "not_archived": COUNT,
    "notices_purged": COUNT,
    # Durations and the platform's times.
    "retry_in": DURATION,
    "retry_at": DURATION,
    "grace_seconds": DURATION,
    "expires_days": DURATION,
    "event_time_ms": DURATION,
    # Machines.
    "peer": NETWORK,
    "address": NETWORK,
    "host": NETWORK,
    "port": NETWORK,
    "url": NETWORK,
    # Errors.
    "error": ERROR,
    "errors": ERROR,
}
"""Every key a log line may carry. A new key is added here, with the kind that says why it is
safe; a key that fits no kind does not belong in a log."""


def _frames(traceback: types.TracebackType | None) -> list[str]:
    """``module:function:line`` of each frame: where, never the locals."""
    frames = []
    while traceback is not None:
        frame = traceback.tb_frame
        module = frame.f_globals.get("__name__", "?")
        frames.append(f"{module}:{frame.f_code.co_name}:{traceback.tb_lineno}")
        traceback = traceback.tb_next
    return frames


def scrubbed_exception(error: BaseException) -> dict[str, Any]:
    """An exception as its type and frames, with its causes, without any message."""
    described: dict[str, Any] = {"type": error_name(error), "frames": _frames(error.__traceback__)}
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    if cause is not None and cause is not error:
        described["cause"] = scrubbed_exception(cause)
    return described


def _exception_of(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info[1]  # type: ignore[no-any-return]
    if exc_info:
        return sys.exc_info()[1]
    return None


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|<[^>]*>|\([^)]*\)|\[[^\]]*\]|\{[^}]*\}|\d+")


def scrub_text(text: str) -> str:
    """A library's message without what may be a value: quoted or bracketed parts, numbers.

    Used on the message templates of library log records. A template's arguments are never kept;
    the template itself is the library's code, but a library may have formatted a value into it
    before logging (an f-string), and values mostly come quoted, bracketed or as digits."""
    return _QUOTED.sub("…", text)[:300]


def keep_safe_fields(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: keep the declared safe fields, scrub exceptions, drop the rest."""
    dropped: list[str] = []
    kept: dict[str, Any] = {}
    error = _exception_of(event_dict.pop("exc_info", None))
    for key, value in event_dict.items():
        kind = SAFE_FIELDS.get(key) if isinstance(key, str) else None
        if key == "event":
            # A literal of the code, or a library's template (see library_record_fields).
            kept[key] = value if isinstance(value, str) else type(value).__name__
            continue
        checked = kind.check(value) if kind is not None else _DROP
        if checked is _DROP:
            dropped.append(str(key))
        else:
            kept[key] = checked
    if error is not None:
        kept["exception"] = scrubbed_exception(error)
    if dropped:
        kept["dropped_fields"] = sorted(dropped)
    return kept


def library_record_fields(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog pre-chain for standard-library records: the logger's name, the message template
    scrubbed (its arguments are never formatted in), the exception kept for scrubbing."""
    record: logging.LogRecord = event_dict["_record"]
    template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
    fields: dict[str, Any] = {"event": scrub_text(template), "logger": record.name}
    if record.exc_info:
        fields["exc_info"] = record.exc_info
    return fields


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is when a line is logged, not when logging was set up
    (a test harness, for one, swaps and closes its stand-ins)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _add_service(service: str) -> Callable[..., MutableMapping[str, Any]]:
    def add(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def _library_handler(service: str) -> logging.Handler:
    """The root logger's one handler: library records as JSON lines through the same filter."""
    handler = logging.StreamHandler(_CurrentStderr())  # type: ignore[arg-type]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                library_record_fields,
                structlog.processors.add_log_level,
                _add_service(service),
            ],
            processors=[
                keep_safe_fields,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(ensure_ascii=False),
            ],
            use_get_message=False,  # the template, never the formatted arguments
        )
    )
    return handler


def _log_uncaught(log: structlog.stdlib.BoundLogger) -> None:
    """An exception nobody caught is logged scrubbed, not printed whole by the interpreter."""

    def on_main(kind: type[BaseException], error: BaseException, _tb: Any) -> None:
        if issubclass(kind, KeyboardInterrupt):
            return
        log.critical("uncaught exception", exc_info=error)

    def on_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None and not isinstance(args.exc_value, SystemExit):
            log.critical("uncaught exception in a thread", exc_info=args.exc_value)

    sys.excepthook = on_main
    threading.excepthook = on_thread


def configure_logging(service: str, level: str = "INFO") -> structlog.stdlib.BoundLogger:
    """JSON lines on stderr, one object per event, bound to the service's name.

    A crash in native code also leaves every Python thread's stack there (faulthandler). A
    crash on a thread that librdkafka started cannot: those threads block every signal, so the
    kernel ends the process before Python hears of it, and only the exit signal tells.
    """
    if not faulthandler.is_enabled() and sys.__stderr__ is not None:
        faulthandler.enable(file=sys.__stderr__, all_threads=True)
    root = logging.getLogger()
    root.handlers = [_library_handler(service)]
    root.setLevel(level.upper())
    # One line per HTTP request to the registry is noise, not news.
    for noisy in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            keep_safe_fields,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    log: structlog.stdlib.BoundLogger = structlog.get_logger().bind(service=service)
    _log_uncaught(log)
    return log


def get_logger(**bindings: Any) -> structlog.stdlib.BoundLogger:
    """A logger with the given ids bound (for instance ``event_id``).

    It stays lazy: made at import time, it still logs through the configuration that
    ``configure_logging`` sets up later.
    """
    return structlog.get_logger(**bindings)  # type: ignore[no-any-return]
