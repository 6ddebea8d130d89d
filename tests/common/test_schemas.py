"""The Avro contract: every schema parses, is documented, is released, and evolves BACKWARD.

The compatibility verdicts come from the real registry (Apicurio's Avro compatibility checker),
the same one that guards the shared subjects at deploy time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from services.common.paths import SCHEMAS_DIR
from services.common.schemas import expanded_schema_json, history, parsed_schema
from services.common.topics import value_schemas
from tests.conftest import unique

ALL_SCHEMAS = sorted(path.stem for path in SCHEMAS_DIR.glob("*.avsc"))


def _fields(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        if schema.get("type") == "record":
            for field in schema["fields"]:
                yield field
                yield from _fields(field["type"])
        elif schema.get("type") == "array":
            yield from _fields(schema["items"])
    elif isinstance(schema, list):
        for branch in schema:
            yield from _fields(branch)


@pytest.mark.parametrize("fullname", ALL_SCHEMAS)
def test_every_schema_parses_and_documents_each_field(fullname: str) -> None:
    parsed_schema(fullname)
    undocumented = [
        field["name"]
        for field in _fields(json.loads(expanded_schema_json(fullname)))
        if not field.get("doc")
    ]
    assert undocumented == []


def test_dates_and_timestamps_use_logical_types() -> None:
    stay_event = expanded_schema_json("harpicoop.StayEvent")
    assert '"logicalType":"timestamp-millis"' in stay_event
    assert '"logicalType":"date"' in stay_event


@pytest.mark.parametrize("fullname", value_schemas())
def test_the_current_schema_is_released(fullname: str) -> None:
    releases = history(fullname)
    assert releases, f"{fullname} has no released version in schemas/history"
    latest = json.loads(releases[-1].read_text(encoding="utf-8"))
    assert latest == json.loads(expanded_schema_json(fullname)), (
        f"{fullname} changed since {releases[-1].name}: once it is BACKWARD compatible, record it "
        f"with `python -m services.common.schemas release`"
    )


def _register_in_order(registry: SchemaRegistryClient, subject: str, schemas: list[str]) -> None:
    registry.set_compatibility(subject, "BACKWARD")
    for schema in schemas:
        registry.register_schema(subject, Schema(schema, "AVRO"))


@pytest.mark.integration
@pytest.mark.parametrize("fullname", value_schemas())
def test_each_version_is_backward_compatible_with_the_one_before(
    registry: SchemaRegistryClient, fullname: str
) -> None:
    subject = unique(f"compat-{fullname}")
    versions = [path.read_text(encoding="utf-8") for path in history(fullname)]
    _register_in_order(registry, subject, versions)
    current = Schema(expanded_schema_json(fullname), "AVRO")
    assert registry.test_compatibility(subject, current), (
        f"schemas/{fullname}.avsc is not BACKWARD compatible with its released history"
    )


@pytest.mark.integration
def test_the_registry_refuses_an_incompatible_schema(registry: SchemaRegistryClient) -> None:
    subject = unique("compat-incompatible")
    stay_event = json.loads(expanded_schema_json("harpicoop.StayEvent"))
    _register_in_order(registry, subject, [json.dumps(stay_event)])

    # A new required field, with no default, cannot be read from the records already written.
    broken = json.loads(json.dumps(stay_event))
    broken["fields"].append({"name": "bed", "type": "string", "doc": "Bed number."})
    assert not registry.test_compatibility(subject, Schema(json.dumps(broken), "AVRO"))
    with pytest.raises(SchemaRegistryError) as refused:
        registry.register_schema(subject, Schema(json.dumps(broken), "AVRO"))
    assert refused.value.http_status_code == 409

    # The same field with a default is a compatible evolution.
    evolved = json.loads(json.dumps(stay_event))
    evolved["fields"].append(
        {"name": "bed", "type": ["null", "string"], "default": None, "doc": "Bed number."}
    )
    assert registry.test_compatibility(subject, Schema(json.dumps(evolved), "AVRO"))
