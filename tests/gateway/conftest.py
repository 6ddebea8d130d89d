"""Fixtures of the gateway's integration tests: fresh topics shared by a module, a gateway on a
free port writing to them, and decoders for what it wrote."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.gateway.handler import Topics
from tests.gateway.support import create_gateway_topics


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
