"""deploy/kubernetes/topics.yaml, a Strimzi ``KafkaTopic`` per declared topic, written from
deploy/topics.toml and deploy/establishments.csv.

    .venv/bin/python -m tests.deploy.generate_topics

Run it after adding a topic or an establishment; tests/deploy/test_manifests.py fails while the
committed file differs from what the declaration implies. The topic settings come from
``TopicSpec.config``, the function ``make up`` creates topics with, so both agree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from services.common.paths import DEPLOY_DIR
from services.common.topics import TopicSpec, declared_topics

TOPICS_YAML = DEPLOY_DIR / "kubernetes" / "topics.yaml"
KAFKA_CLUSTER = "harpicoop"
"""The ``Kafka`` resource of deploy/kubernetes/kafka.yaml: the Topic Operator's cluster label."""
REPLICAS = 3
"""Every topic on all three brokers; with ``min.insync.replicas`` 2, one may be down."""

HEADER = """\
# Generated from deploy/topics.toml and deploy/establishments.csv by
#     .venv/bin/python -m tests.deploy.generate_topics
# Do not edit: tests/deploy/test_manifests.py checks that this file is what they imply.
"""


def resource_name(topic: str) -> str:
    """A Kubernetes name for the topic (``_`` is not allowed there); ``topicName`` keeps the
    real one."""
    return re.sub(r"[^a-z0-9.-]", "-", topic.lower())


def kafka_topic(spec: TopicSpec) -> dict[str, Any]:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {
            "name": resource_name(spec.name),
            "labels": {"strimzi.io/cluster": KAFKA_CLUSTER},
            "annotations": {
                "harpicoop.io/doc": spec.doc,
                "harpicoop.io/retention-reason": spec.retention_reason,
            },
        },
        "spec": {
            "topicName": spec.name,
            "partitions": spec.partitions,
            "replicas": REPLICAS,
            "config": spec.config(REPLICAS),
        },
    }


def render(specs: list[TopicSpec]) -> str:
    documents = [
        yaml.safe_dump(kafka_topic(spec), sort_keys=False, allow_unicode=True, width=100)
        for spec in specs
    ]
    return HEADER + "---\n" + "---\n".join(documents)


def write(path: Path = TOPICS_YAML) -> Path:
    path.write_text(render(declared_topics()), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
