"""Avro values in the Confluent wire format (magic byte, schema id, Avro body) via the registry.

Writers use the schema from ``schemas/`` and look its id up under ``<topic>-value``; they never
register on the fly (schemas are registered at deploy time, where compatibility is checked).
Readers decode with the writer's schema fetched by id and resolve it to their own version of the
schema, so a consumer keeps working while producers move to a newer compatible version.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import SerializationError
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from services.common.schemas import expanded_schema_json
from services.common.settings import Settings
from services.common.topics import TopicSpec


class UndecodableValue(SerializationError):
    """The bytes are not a value of a schema the registry knows: a poison record.

    A ``SerializationError``, so code that catches those catches this too.
    """


class SchemaCompatibilityError(RuntimeError):
    """A schema in ``schemas/`` breaks compatibility with what the registry already holds."""


def make_registry_client(settings: Settings) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": settings.schema_registry_url})


MAGIC_BYTE = 0
HEADER_SIZE = 5
"""The magic byte, then the schema id in four big-endian bytes."""

# What the Avro reader raises on a body it cannot read: cut short (EOFError), an out-of-range
# union branch or enum symbol (IndexError), bad UTF-8 or a negative length (ValueError), a
# writer's schema that does not resolve to ours (SchemaResolutionError).
_BODY_ERRORS = (EOFError, IndexError, ValueError, OverflowError, SchemaResolutionError)


@dataclass(frozen=True)
class _Reader:
    writer: Any
    reader: Any | None
    """Our schema when the writer's differs (Avro resolution), None when they are the same."""


class AvroSerde:
    """Serialise and deserialise the values of one schema, for any topic using it.

    fastavro does the Avro work, with every schema parsed once: the id of ours per subject, and
    per writer's id its parsed schema; a value written with our very schema is read without
    schema resolution, which is most of the cost of a read that needs it.
    """

    def __init__(self, registry: SchemaRegistryClient, schema_fullname: str) -> None:
        self.registry = registry
        self.schema_fullname = schema_fullname
        self._schema_json = expanded_schema_json(schema_fullname)
        self._parsed = parse_schema(json.loads(self._schema_json), named_schemas={})
        self._ids: dict[str, int] = {}
        self._readers: dict[int, _Reader] = {}
        self._tail: Any = None

    def serialize(self, topic: str, value: dict[str, Any]) -> bytes:
        """Encode a value of our schema under the id it has for ``topic``; a value that does
        not fit the schema raises ``ValueError`` (or ``TypeError``)."""
        schema_id = self._own_id(topic)
        if schema_id is None:
            raise SchemaRegistryError(
                404, 40403, f"{self.schema_fullname} is not registered under {topic}-value"
            )
        body = io.BytesIO()
        body.write(struct.pack(">bI", MAGIC_BYTE, schema_id))
        schemaless_writer(body, self._parsed, value)
        return body.getvalue()

    def own_body(self, data: bytes) -> bytes | None:
        """The Avro body of a value this serde has decoded, when it was written with our very
        schema: the bytes that value encodes to wherever our schema is embedded in another
        (``serialize_after``). None for a value written with another version of the schema,
        whose bytes are not ours, or not decoded yet."""
        if len(data) <= HEADER_SIZE or data[0] != MAGIC_BYTE:
            return None
        reader = self._readers.get(int.from_bytes(data[1:HEADER_SIZE], "big"))
        return data[HEADER_SIZE:] if reader is not None and reader.reader is None else None

    def serialize_after(self, topic: str, first_body: bytes, rest: dict[str, Any]) -> bytes:
        """``serialize`` of a value of our record schema whose first field is given already
        encoded (``own_body`` of the serde of that field's schema): Avro writes a record's fields
        one after the other with nothing around them, so only the other fields are encoded."""
        schema_id = self._own_id(topic)
        if schema_id is None:
            raise SchemaRegistryError(
                404, 40403, f"{self.schema_fullname} is not registered under {topic}-value"
            )
        body = io.BytesIO()
        body.write(struct.pack(">bI", MAGIC_BYTE, schema_id))
        body.write(first_body)
        schemaless_writer(body, self._after_first(), rest)
        return body.getvalue()

    def _after_first(self) -> Any:
        """Our record schema without its first field, parsed once (its named types are those
        of the whole schema, wherever they are defined)."""
        if self._tail is None:
            whole = json.loads(self._schema_json)
            named: dict[str, Any] = {}
            parse_schema(whole, named_schemas=named)
            tail = {
                **whole,
                "name": f"{whole['name']}AfterFirstField",
                "fields": whole["fields"][1:],
            }
            self._tail = parse_schema(tail, named_schemas=named)
        return self._tail

    def _own_id(self, topic: str) -> int | None:
        """The id of our schema under the topic's subject; None when it is not registered
        (not remembered: it may be registered while this process runs)."""
        schema_id = self._ids.get(topic)
        if schema_id is None:
            try:
                # Schemas are registered at deploy time: a lookup, never a registration.
                registered = self.registry.lookup_schema(
                    f"{topic}-value", Schema(self._schema_json, "AVRO"), normalize_schemas=False
                )
            except SchemaRegistryError as error:
                if error.http_status_code != 404:
                    raise
                return None
            if registered.schema_id is None:
                return None
            schema_id = self._ids[topic] = registered.schema_id
        return schema_id

    def deserialize(self, topic: str, data: bytes) -> dict[str, Any]:
        """Decode a value, resolved to our schema.

        Raises ``UndecodableValue`` when the record itself is at fault (not in the wire format,
        a schema id the registry does not have, a body that does not read as its schema says),
        so it can be dead-lettered; a registry that cannot be reached raises its own error
        instead, and the record must be tried again later.
        """
        if len(data) <= HEADER_SIZE or data[0] != MAGIC_BYTE:
            raise UndecodableValue(
                f"{topic}: {len(data)} bytes not in the Confluent wire format (magic byte 0, "
                "schema id, Avro body): not written by a schema registry serialiser"
            )
        schema_id = int.from_bytes(data[1:HEADER_SIZE], "big")
        reader = self._readers.get(schema_id) or self._reader_for(topic, schema_id)
        try:
            value = schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), reader.writer, reader.reader)
        except _BODY_ERRORS as error:
            raise UndecodableValue(
                f"{topic}: the body does not read as schema id {schema_id} says "
                f"({type(error).__name__}: {error})"
            ) from error
        if not isinstance(value, dict):
            raise UndecodableValue(f"{topic}: schema id {schema_id} is not a record schema")
        return value

    def _reader_for(self, topic: str, schema_id: int) -> _Reader:
        try:
            registered = self.registry.get_schema(schema_id)
        except SchemaRegistryError as error:
            if error.http_status_code == 404:
                raise UndecodableValue(f"unknown schema id {schema_id}: {error}") from error
            raise
        if registered.schema_str is None or (registered.schema_type or "AVRO") != "AVRO":
            raise UndecodableValue(f"schema id {schema_id} is not an Avro schema")
        writer = json.loads(registered.schema_str)
        # The registry may return a schema in another form (names split into name and
        # namespace): whether it is ours is asked by id.
        same = schema_id == self._own_id(topic)
        reader = _Reader(
            self._parsed if same else parse_schema(writer, named_schemas={}),
            None if same else self._parsed,
        )
        self._readers[schema_id] = reader
        return reader


class AvroRecord(Protocol):
    """A record type of ``services.common.records``: its schema and its Avro value both ways."""

    SCHEMA: ClassVar[str]

    @classmethod
    def from_avro(cls, value: Mapping[str, Any]) -> Self: ...

    @classmethod
    def adopt_avro(cls, value: dict[str, Any]) -> Self: ...

    def to_avro(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=AvroRecord)


class RecordSerde(Generic[R]):
    """An ``AvroSerde`` that reads and writes the record type of its schema, not dicts.

    The wire format, the schema lookups and the resolution of older versions are the
    ``AvroSerde``'s: a value written with any released version decodes into the latest type.
    """

    def __init__(self, registry: SchemaRegistryClient, record_type: type[R]) -> None:
        self.avro = AvroSerde(registry, record_type.SCHEMA)
        self.record_type = record_type
        # The decoded dict is the serde's own: the record takes it over rather than copy it.
        self._adopt = record_type.adopt_avro
        # The record types are generated dataclasses (the protocol above cannot say so).
        fields = dataclasses.fields(record_type)  # type: ignore[arg-type]
        self._after_first = [field.name for field in fields][1:]

    def serialize(self, topic: str, record: R) -> bytes:
        return self.avro.serialize(topic, record.to_avro())

    def serialize_after(self, topic: str, first_body: bytes, record: R) -> bytes:
        """``serialize`` of a record whose first field is given already encoded (``own_body`` of
        the serde that decoded it): that field's value is not even turned into Avro again."""
        rest = {name: _avro_value(getattr(record, name)) for name in self._after_first}
        return self.avro.serialize_after(topic, first_body, rest)

    def deserialize(self, topic: str, data: bytes) -> R:
        """As ``AvroSerde.deserialize``, into the record type."""
        return self._adopt(self.avro.deserialize(topic, data))


def _avro_value(value: Any) -> Any:
    """A field's Avro value, as the record's ``to_avro`` gives it: nested records by theirs,
    arrays as lists; enums are strs and the rest is written as it is."""
    if isinstance(value, tuple):
        return [_avro_value(item) for item in value]
    to_avro = getattr(value, "to_avro", None)
    return value if to_avro is None else to_avro()


def register_schemas(registry: SchemaRegistryClient, specs: list[TopicSpec]) -> dict[str, int]:
    """Register each topic's value schema with BACKWARD compatibility; subject → schema id.

    Compatibility is set before registering, so an incompatible change is refused by the
    registry itself, with a message naming the subject and the schema file.
    """
    ids: dict[str, int] = {}
    for spec in specs:
        if spec.value_schema is None:
            continue
        schema = Schema(expanded_schema_json(spec.value_schema), "AVRO")
        registry.set_compatibility(spec.subject, "BACKWARD")
        subjects = registry.get_subjects()
        if spec.subject in subjects and not registry.test_compatibility(spec.subject, schema):
            raise SchemaCompatibilityError(
                f"schemas/{spec.value_schema}.avsc is not BACKWARD compatible with the latest "
                f"version registered under {spec.subject}: give new fields defaults and do not "
                f"remove or retype existing ones"
            )
        ids[spec.subject] = registry.register_schema(spec.subject, schema)
    return ids
