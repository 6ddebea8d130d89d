"""The platform's topics, declared once in deploy/topics.toml, and their creation.

``declared_topics()`` expands ``stays.raw.{establishment}`` for every row of
deploy/establishments.csv, so a twelfth establishment is one line of data. Every topic's
retention is written with its reason: a declaration without one is refused.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from services.common.establishments import Establishment, load_establishments
from services.common.paths import TOPICS_TOML

RAW_TOPIC_PREFIX = "stays.raw."
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    value_schema: str | None
    """None for topics whose values are kept as received (dead letters)."""
    partitions: int
    compacted: bool
    retention_ms: int
    doc: str = ""
    retention_reason: str = ""
    """Why its records are kept as long as they are (required in deploy/topics.toml)."""

    @property
    def subject(self) -> str:
        """The registry subject of its values (TopicNameStrategy)."""
        return f"{self.name}-value"

    def config(self, replication: int) -> dict[str, str]:
        config = {
            "cleanup.policy": "compact" if self.compacted else "delete",
            "min.insync.replicas": str(min(2, replication)),
        }
        if not self.compacted:
            config["retention.ms"] = str(self.retention_ms)
        return config


class TopicDeclarationError(ValueError):
    """deploy/topics.toml declares a topic the platform cannot create as written."""


def _retention_ms(entry: dict[str, Any], path: Path) -> int:
    """A topic's time retention, checked against its purpose: every topic gives its reason; a
    deleting topic says how many days, a compacted one keeps the latest record per key and
    must not pretend otherwise."""
    name = entry["name"]
    if not str(entry.get("retention_reason", "")).strip():
        raise TopicDeclarationError(f"{path}: topic {name!r} has no retention_reason")
    compacted = bool(entry.get("compacted", False))
    if compacted and "retention_days" in entry:
        raise TopicDeclarationError(
            f"{path}: topic {name!r} is compacted: it keeps the latest record of each key, "
            "retention_days does not apply (say in retention_reason when a key goes)"
        )
    if not compacted and "retention_days" not in entry:
        raise TopicDeclarationError(f"{path}: topic {name!r} has no retention_days")
    return int(entry.get("retention_days", 0)) * DAY_MS


def raw_topic(establishment_code: str) -> str:
    return f"{RAW_TOPIC_PREFIX}{establishment_code}"


def declared_topics(
    path: Path = TOPICS_TOML, establishments: list[Establishment] | None = None
) -> list[TopicSpec]:
    with open(path, "rb") as source:
        declaration = tomllib.load(source)
    defaults = declaration.get("defaults", {})
    codes = [item.code for item in (establishments or load_establishments())]
    specs: list[TopicSpec] = []
    for entry in declaration["topic"]:
        retention_ms = _retention_ms(entry, path)
        names = (
            [entry["name"].format(establishment=code) for code in codes]
            if "{establishment}" in entry["name"]
            else [entry["name"]]
        )
        for name in names:
            specs.append(
                TopicSpec(
                    name=name,
                    value_schema=entry.get("value_schema"),
                    partitions=int(entry.get("partitions", defaults.get("partitions", 3))),
                    compacted=bool(entry.get("compacted", False)),
                    retention_ms=retention_ms,
                    doc=entry.get("doc", ""),
                    retention_reason=entry["retention_reason"].strip(),
                )
            )
    return specs


def topic_spec(name: str) -> TopicSpec:
    for spec in declared_topics():
        if spec.name == name:
            return spec
    raise KeyError(f"topic {name!r} is not declared in {TOPICS_TOML}")


def value_schemas() -> list[str]:
    """Every distinct value schema used by a declared topic."""
    return sorted({spec.value_schema for spec in declared_topics() if spec.value_schema})


def ensure_topics(admin: AdminClient, specs: list[TopicSpec], timeout: float = 30.0) -> list[str]:
    """Create the declared topics that do not exist yet; returns the names created.

    Replication is the smaller of 3 and the number of brokers, so that one list serves the
    local single broker and a real cluster.
    """
    metadata = admin.list_topics(timeout=timeout)
    replication = min(3, max(1, len(metadata.brokers)))
    missing = [spec for spec in specs if spec.name not in metadata.topics]
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=replication,
                config=spec.config(replication),
            )
            for spec in missing
        ],
        request_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except Exception as error:  # an existing topic (a concurrent creator) is fine
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise
    return created
