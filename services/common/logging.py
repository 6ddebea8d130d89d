"""structlog JSON logging for every service, with patient data kept out of the logs.

Logs carry ids (event id, stay key, movement id, RPPS), never a patient's name, birth date or
identifiers. ``drop_patient_fields`` removes such fields wherever a caller puts them, even nested,
so a careless ``log.info("x", patient=...)`` cannot leak; the names of what was removed are kept
so that the mistake can be found and fixed.
"""

from __future__ import annotations

import faulthandler
import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# Keys whose values identify a patient. Matching is on the key's lower-cased name.
PATIENT_FIELDS: frozenset[str] = frozenset(
    {
        "patient",
        "patient_name",
        "family_name",
        "given_name",
        "birth_name",
        "birth_date",
        "date_of_birth",
        "ipp",
        "ins",
        "nir",
        "patient_address",
        "patient_phone",
        "hl7",
        "hl7_message",
        "raw_message",
        "message_text",
    }
)


def _scrub(value: Any, path: str, removed: list[str]) -> Any:
    if isinstance(value, Mapping):
        return {
            key: _scrub(item, f"{path}.{key}", removed)
            for key, item in value.items()
            if not _is_patient_field(key, f"{path}.{key}", removed)
        }
    if isinstance(value, list | tuple):
        return [_scrub(item, f"{path}[]", removed) for item in value]
    return value


def _is_patient_field(key: object, path: str, removed: list[str]) -> bool:
    if isinstance(key, str) and key.lower() in PATIENT_FIELDS:
        removed.append(path.lstrip("."))
        return True
    return False


def drop_patient_fields(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: remove patient-identifying fields, at any depth."""
    removed: list[str] = []
    for key in list(event_dict):
        if _is_patient_field(key, key, removed):
            del event_dict[key]
        else:
            event_dict[key] = _scrub(event_dict[key], key, removed)
    if removed:
        event_dict["redacted_fields"] = sorted(removed)
    return event_dict


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is when a line is logged, not when logging was set up
    (a test harness, for one, swaps and closes its stand-ins)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(service: str, level: str = "INFO") -> structlog.stdlib.BoundLogger:
    """JSON lines on stderr, one object per event, bound to the service's name.

    A crash in native code also leaves every Python thread's stack there (faulthandler). A
    crash on a thread that librdkafka started cannot: those threads block every signal, so the
    kernel ends the process before Python hears of it, and only the exit signal tells.
    """
    if not faulthandler.is_enabled() and sys.__stderr__ is not None:
        faulthandler.enable(file=sys.__stderr__, all_threads=True)
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper())
    # One plain-text line per HTTP request to the registry is noise, not news.
    for noisy in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        drop_patient_fields,
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(ensure_ascii=False),
    ]
    structlog.configure(
        processors=shared,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    return structlog.get_logger().bind(service=service)  # type: ignore[no-any-return]


def get_logger(**bindings: Any) -> structlog.stdlib.BoundLogger:
    """A logger with the given ids bound (for instance ``event_id``).

    It stays lazy: made at import time, it still logs through the configuration that
    ``configure_logging`` sets up later.
    """
    return structlog.get_logger(**bindings)  # type: ignore[no-any-return]
