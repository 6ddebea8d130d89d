"""For engines that write StayEvents to Kafka themselves: same schema, same topics as the gateway.

    python -m services.gateway.publish --establishment chrunancy events.jsonl

Each line of the file is one StayEvent as JSON (the fields of schemas/harpicoop.StayEvent.avsc;
timestamps as ISO 8601 with an offset or epoch milliseconds, dates as YYYY-MM-DD; fields with a
default may be left out, ``received_at`` defaults to now). Every line is checked against the
schema and the establishment before anything is sent; then each event goes to
``stays.raw.<establishment>`` keyed by its stay key, confirmed by Kafka (acks=all).

From Python::

    with StayEventPublisher(settings, "chrunancy") as publisher:
        publisher.publish(event)   # raises InvalidStayEvent; the with-block waits for Kafka
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, Message
from fastavro.validation import ValidationError, validate

from services.common.establishments import load_establishments
from services.common.kafka import make_producer
from services.common.records import StayEvent
from services.common.schemas import expanded_schema_json, parsed_schema
from services.common.serde import RecordSerde, make_registry_client
from services.common.settings import Settings
from services.common.topics import raw_topic
from services.gateway.intake import STAY_EVENT_SCHEMA


class InvalidStayEvent(ValueError):
    """The event does not fit the schema or does not belong to the publisher's establishment."""


class PublishError(RuntimeError):
    """Kafka did not confirm every event."""


def from_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """A StayEvent decoded from JSON with its timestamps and dates as Python values.

    Walks the schema itself, so a field added to the schema needs no change here.
    """
    schema = json.loads(expanded_schema_json(STAY_EVENT_SCHEMA))
    converted = _convert(schema, dict(value), {}, "StayEvent")
    assert isinstance(converted, dict)
    return converted


def _convert(schema: Any, value: Any, named: dict[str, Any], path: str) -> Any:
    if isinstance(schema, str):
        return _convert(named[schema], value, named, path) if schema in named else value
    if isinstance(schema, list):  # a union: null, or the first branch the value fits
        if value is None:
            return None
        for branch in (item for item in schema if item != "null"):
            try:
                return _convert(branch, value, named, path)
            except (TypeError, ValueError):
                continue
        return value
    kind = schema["type"]
    if kind in ("record", "enum", "fixed"):
        named[schema["name"]] = schema
        named[f"{schema.get('namespace', 'harpicoop')}.{schema['name']}"] = schema
    if kind == "record":
        if not isinstance(value, Mapping):
            return value
        fields = {field["name"]: field["type"] for field in schema["fields"]}
        return {
            name: _convert(fields[name], item, named, f"{path}.{name}") if name in fields else item
            for name, item in value.items()
        }
    if kind == "array" and isinstance(value, list):
        return [_convert(schema["items"], item, named, f"{path}[]") for item in value]
    logical = schema.get("logicalType")
    if logical == "timestamp-millis" and isinstance(value, str):
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise InvalidStayEvent(f"{path}: {value!r} needs a UTC offset")
        return moment
    if logical == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


class StayEventPublisher:
    """Publishes one establishment's StayEvents to its raw topic."""

    def __init__(self, settings: Settings, establishment: str, *, topic: str | None = None) -> None:
        codes = {item.code for item in load_establishments()}
        if establishment not in codes:
            raise InvalidStayEvent(f"{establishment!r} is not in deploy/establishments.csv")
        self.establishment = establishment
        self.topic = topic or raw_topic(establishment)
        self._schema = parsed_schema(STAY_EVENT_SCHEMA)
        self._serde = RecordSerde(make_registry_client(settings), StayEvent)
        self._producer = make_producer(settings, f"harpicoop-publish-{establishment}")
        self._failures: list[str] = []
        self.sent = 0

    def check(self, event: Mapping[str, Any]) -> StayEvent:
        """The event ready to send (JSON values converted, ``received_at`` filled in), or
        ``InvalidStayEvent`` saying which field is wrong (never its value: it may be a name)."""
        if not isinstance(event, Mapping):
            raise InvalidStayEvent("a stay event is a JSON object")
        record = from_json(event)
        record.setdefault("received_at", dt.datetime.now(dt.UTC))
        try:
            validate(record, self._schema, raise_errors=True)
        except ValidationError as error:
            # The field names only: the values may be a patient's.
            fields = sorted({str(item.field) for item in error.errors})
            raise InvalidStayEvent(f"does not fit the schema at {', '.join(fields)}") from None
        code = self.establishment
        expected_key = f"{code}:{record['stay']['visit_number']}"
        if record["establishment"] != code:
            raise InvalidStayEvent(f"establishment is {record['establishment']!r}, not {code!r}")
        if record["stay_key"] != expected_key:
            raise InvalidStayEvent(
                f"stay_key must be <establishment>:<visit number> ({expected_key})"
            )
        if not record["event_id"].startswith(f"{code}:"):
            raise InvalidStayEvent(f"event_id must start with {code}:")
        return StayEvent.from_avro(record)

    def publish(self, event: Mapping[str, Any]) -> None:
        """Check and queue one event; ``flush`` (or leaving the with-block) waits for Kafka."""
        record = self.check(event)
        value = self._serde.serialize(self.topic, record)
        while True:
            try:
                self._producer.produce(
                    self.topic,
                    key=record.stay_key.encode(),
                    value=value,
                    on_delivery=self._delivered,
                )
                break
            except BufferError:
                self._producer.poll(0.1)
        self._producer.poll(0)

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is None:
            self.sent += 1
        else:
            self._failures.append(error.str())

    def flush(self, timeout: float = 60.0) -> None:
        left = self._producer.flush(timeout)
        if left or self._failures:
            raise PublishError(
                f"{left} events unconfirmed, {len(self._failures)} refused"
                + (f": {self._failures[0]}" if self._failures else "")
            )

    def __enter__(self) -> StayEventPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.flush()


def read_lines(sources: Iterable[Path]) -> list[tuple[str, int, dict[str, Any]]]:
    """(file, line number, JSON object) for every non-blank line; ``-`` is standard input."""
    events = []
    for source in sources:
        name = str(source)
        text = sys.stdin.read() if name == "-" else source.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                events.append((name, number, json.loads(line)))
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.gateway.publish",
        description="Publish StayEvents (JSON lines) to an establishment's raw topic.",
    )
    parser.add_argument(
        "--establishment", required=True, help="code from deploy/establishments.csv"
    )
    parser.add_argument("--topic", help="another topic than stays.raw.<establishment>")
    parser.add_argument("files", nargs="+", type=Path, help="JSON lines files; - for stdin")
    args = parser.parse_args(argv)
    try:
        publisher = StayEventPublisher(
            Settings.from_env(principal="gateway"), args.establishment, topic=args.topic
        )
        lines = read_lines(args.files)
    except (InvalidStayEvent, OSError, json.JSONDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    problems = []
    for name, number, event in lines:
        try:
            publisher.check(event)
        except (InvalidStayEvent, KeyError, TypeError, ValueError) as error:
            problems.append(f"{name}:{number}: {error}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(
            f"nothing published: {len(problems)} of {len(lines)} events are invalid",
            file=sys.stderr,
        )
        return 1
    try:
        with publisher:
            for _name, _number, event in lines:
                publisher.publish(event)
    except PublishError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"published {publisher.sent} stay events to {publisher.topic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
