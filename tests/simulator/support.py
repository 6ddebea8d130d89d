"""Topics for a gateway that the simulator drives: eleven fresh raw topics, one per
establishment as in production, and the gateway's merges and archive topics."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from services.common.establishments import load_establishments
from services.common.serde import register_schemas
from services.common.topics import TopicSpec, ensure_topics
from services.gateway.handler import Topics
from services.gateway.intake import PATIENT_MERGE_SCHEMA, RAW_MESSAGE_SCHEMA, STAY_EVENT_SCHEMA

HOUR_MS = 3_600_000


def create_simulator_topics(
    admin: AdminClient, registry: SchemaRegistryClient, prefix: str, partitions: int = 1
) -> tuple[Topics, list[str]]:
    """``<prefix>.<establishment>`` for each establishment, ``<prefix>-merges`` and
    ``<prefix>-archive``, created with their value schemas; the gateway's Topics and every name."""
    specs = [
        TopicSpec(f"{prefix}.{item.code}", STAY_EVENT_SCHEMA, partitions, False, HOUR_MS)
        for item in load_establishments()
    ]
    specs += [
        TopicSpec(f"{prefix}-merges", PATIENT_MERGE_SCHEMA, 1, False, HOUR_MS),
        TopicSpec(f"{prefix}-archive", RAW_MESSAGE_SCHEMA, partitions, False, HOUR_MS),
    ]
    ensure_topics(admin, specs)
    register_schemas(registry, specs)
    topics = Topics(
        stays=f"{prefix}.{{establishment}}", merges=f"{prefix}-merges", archive=f"{prefix}-archive"
    )
    return topics, [spec.name for spec in specs]
