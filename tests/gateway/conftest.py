"""Fixtures of the gateway's integration tests: fresh topics shared by a module, a gateway on a
free port writing to them, and decoders for what it wrote."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.serde import register_schemas
from services.common.topics import TopicSpec, ensure_topics
from services.gateway.handler import Topics
from services.gateway.intake import PATIENT_MERGE_SCHEMA, RAW_MESSAGE_SCHEMA, STAY_EVENT_SCHEMA
from tests.conftest import unique


def create_gateway_topics(
    admin: AdminClient, registry: SchemaRegistryClient, partitions: int = 3
) -> tuple[Topics, list[str]]:
    """One stays topic standing for all eleven raw topics, a merges and an archive topic."""
    specs = [
        TopicSpec(unique(f"test-gw-{stream}"), schema, partitions, False, retention_ms=3_600_000)
        for stream, schema in (
            ("stays", STAY_EVENT_SCHEMA),
            ("merges", PATIENT_MERGE_SCHEMA),
            ("archive", RAW_MESSAGE_SCHEMA),
        )
    ]
    ensure_topics(admin, specs)
    register_schemas(registry, specs)
    names = [spec.name for spec in specs]
    return Topics(stays=names[0], merges=names[1], archive=names[2]), names


@pytest.fixture(scope="module")
def module_topics(admin: AdminClient, registry: SchemaRegistryClient) -> Iterator[Topics]:
    """Topics shared by the tests of one module, which tell their records apart by message id.

    ``topic_factory`` gives each test its own topics; the conformance suite sends dozens of
    messages through one gateway, and three topics per message would cost more than the suite.
    """
    topics, names = create_gateway_topics(admin, registry)
    yield topics
    for future in admin.delete_topics(names, operation_timeout=10).values():
        future.result()
