"""Which fields of the platform's records are patient data, declared once, and how to hide them.

The declaration names schema fields (``schemas/``); ``hide_patient_data`` walks a decoded record
along its schema and hides those fields wherever the type occurs (a ``Patient`` inside a
``StayEvent`` inside an ``EnrichedStayEvent``...). A raw HL7 frame is shown as its outline: its
MSH and EVN segments (who sent what, when) and only the names of the other segments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from services.common.schemas import expanded_schema_json

HIDDEN = "[hidden]"

EVERY_FIELD = frozenset({"*"})

PATIENT_DATA: Mapping[str, frozenset[str]] = {
    # Who the stay is for: names, birth date, sex, the establishment's and the national ids.
    "harpicoop.Patient": EVERY_FIELD,
    # A name as sent (PID-5's used and birth names): patient data wherever it is used.
    "harpicoop.PersonName": EVERY_FIELD,
    # The patient id merged away and its billing number: they find the patient's other record.
    "harpicoop.PatientMerge": frozenset({"merged_ipp", "merged_billing_number"}),
    # The message as received, and the parser's explanation, which may quote a field of it.
    "harpicoop.RawMessage": frozenset({"raw", "error_detail"}),
}
"""Patient data by schema type: the fields (``*``: all of them) an operator sees only when they
give a reason (``harpicoop tail --reveal``)."""

DEAD_LETTER_HEADERS_HIDDEN = frozenset({"exception.message"})
"""A dead letter's headers: the error's message may quote the record it could not process."""

SHOWN_SEGMENTS = frozenset({"MSH", "EVN"})
"""HL7 segments that say who sent which message when, never whom it is about."""

_SEGMENT_NAME = re.compile(rb"[A-Z][A-Z0-9]{2}")
_SHOWN = frozenset(name.encode() for name in SHOWN_SEGMENTS)


def hl7_outline(raw: bytes) -> list[str]:
    """The frame's MSH and EVN segments in full, the other segments by name only.

    A segment whose start is not a segment name (a frame that is not HL7) shows as ``?``."""
    outline = []
    for segment in re.split(rb"\r\n|\r|\n", raw):
        if not segment:
            continue
        name = segment[:3]
        if name in _SHOWN and segment[3:4] in (b"|", b""):
            outline.append(segment.decode("utf-8", "replace"))
        elif _SEGMENT_NAME.fullmatch(name) and segment[3:4] in (b"|", b""):
            outline.append(name.decode())
        else:
            outline.append("?")
    return outline


def _hidden(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field == "raw" and isinstance(value, bytes):
        return hl7_outline(value)
    return HIDDEN


@cache
def _named_types(fullname: str) -> dict[str, dict[str, Any]]:
    """Every named type of the expanded schema, by full name (later uses refer to them by name)."""
    found: dict[str, dict[str, Any]] = {}

    def visit(schema: Any, namespace: str) -> None:
        if isinstance(schema, list):
            for branch in schema:
                visit(branch, namespace)
        elif isinstance(schema, dict):
            kind = schema.get("type")
            if kind in ("record", "enum", "fixed"):
                space = schema.get("namespace", namespace)
                name = schema["name"] if "." in schema["name"] else f"{space}.{schema['name']}"
                found[name] = schema
                for field in schema.get("fields", []):
                    visit(field["type"], space)
            elif kind == "array":
                visit(schema["items"], namespace)
            elif kind == "map":
                visit(schema["values"], namespace)

    root = json.loads(expanded_schema_json(fullname))
    visit(root, fullname.rpartition(".")[0])
    return found


def hide_patient_data(fullname: str, record: Any) -> Any:
    """A decoded record of schema ``fullname`` with its patient data hidden."""
    named = _named_types(fullname)
    return _walk(named[fullname], record, named, fullname.rpartition(".")[0])


def _walk(schema: Any, value: Any, named: Mapping[str, Any], namespace: str) -> Any:
    if value is None:
        return None
    if isinstance(schema, str):
        target = named.get(schema) or named.get(f"{namespace}.{schema}")
        return value if target is None else _walk(target, value, named, namespace)
    if isinstance(schema, list):  # a union: the branch the value's shape fits
        branch = _branch(schema, value, named, namespace)
        if branch is None:  # a shape the schema does not explain: shown to no one by default
            return HIDDEN
        return _walk(branch, value, named, namespace)
    kind = schema.get("type")
    if kind == "record" and isinstance(value, Mapping):
        space = schema.get("namespace", namespace)
        name = schema["name"] if "." in schema["name"] else f"{space}.{schema['name']}"
        private = PATIENT_DATA.get(name, frozenset())
        hidden: dict[str, Any] = {}
        for field in schema["fields"]:
            key = field["name"]
            if key not in value:
                continue
            if private is EVERY_FIELD or key in private:
                hidden[key] = _hidden(key, value[key])
            else:
                hidden[key] = _walk(field["type"], value[key], named, space)
        return hidden
    if kind == "array" and isinstance(value, list):
        return [_walk(schema["items"], item, named, namespace) for item in value]
    if kind == "map" and isinstance(value, Mapping):
        return {k: _walk(schema["values"], item, named, namespace) for k, item in value.items()}
    return value


def _branch(union: list[Any], value: Any, named: Mapping[str, Any], namespace: str) -> Any | None:
    fits: Callable[[Any], bool]
    if isinstance(value, Mapping):
        keys = set(value)

        def fits(branch: Any) -> bool:
            resolved = named.get(branch, branch) if isinstance(branch, str) else branch
            if isinstance(resolved, str):
                resolved = named.get(f"{namespace}.{resolved}", resolved)
            if not isinstance(resolved, dict):
                return False
            if resolved.get("type") == "record":
                return keys <= {field["name"] for field in resolved["fields"]}
            return resolved.get("type") == "map"
    elif isinstance(value, list):

        def fits(branch: Any) -> bool:
            return isinstance(branch, dict) and branch.get("type") == "array"
    else:
        return "null"  # a scalar: nothing below it to walk
    return next((branch for branch in union if fits(branch)), None)


def hide_dead_letter_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: HIDDEN if name in DEAD_LETTER_HEADERS_HIDDEN else value
        for name, value in headers.items()
    }
