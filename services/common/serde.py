"""Avro values in the Confluent wire format (magic byte, schema id, Avro body) via the registry.

Writers use the schema from ``schemas/`` and look its id up under ``<topic>-value``; they never
register on the fly (schemas are registered at deploy time, where compatibility is checked).
Readers decode with the writer's schema fetched by id and resolve it to their own version of the
schema, so a consumer keeps working while producers move to a newer compatible version.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

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


class AvroSerde:
    """Serialise and deserialise the values of one schema, for any topic using it."""

    def __init__(self, registry: SchemaRegistryClient, schema_fullname: str) -> None:
        self.schema_fullname = schema_fullname
        schema_json = expanded_schema_json(schema_fullname)
        self._serializer = AvroSerializer(
            registry,
            schema_json,
            conf={"auto.register.schemas": False, "normalize.schemas": False},
        )
        self._deserializer = AvroDeserializer(registry, schema_json)

    def serialize(self, topic: str, value: dict[str, Any]) -> bytes:
        data = self._serializer(value, SerializationContext(topic, MessageField.VALUE))
        assert data is not None
        return bytes(data)

    def deserialize(self, topic: str, data: bytes) -> dict[str, Any]:
        """Decode a value.

        Raises ``UndecodableValue`` when the record itself is at fault (not Avro, or a schema id
        the registry does not have), so it can be dead-lettered; a registry that cannot be
        reached raises its own error instead, and the record must be tried again later.
        """
        try:
            value = self._deserializer(data, SerializationContext(topic, MessageField.VALUE))
        except SerializationError as error:
            raise UndecodableValue(str(error)) from error
        except SchemaRegistryError as error:
            if error.http_status_code == 404:
                raise UndecodableValue(f"unknown schema id: {error}") from error
            raise
        return value  # type: ignore[no-any-return]


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
