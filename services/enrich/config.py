"""Enrich's own settings, each with an environment variable and a default."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class EnrichConfig:
    input_topic: str = "stays.unique"
    practitioners_topic: str = "practitioners"
    enriched_topic: str = "stays.enriched"
    unroutable_topic: str = "stays.unroutable"
    dead_letter_topic: str = "deadletter.enrich"
    group_id: str = "enrich"
    transactional_id: str = f"enrich@{socket.gethostname()}"
    """Stable per instance: a restarted instance fences its former self's open transaction."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EnrichConfig:
        env = os.environ if environ is None else environ
        default = cls()
        return cls(
            input_topic=env.get("ENRICH_INPUT_TOPIC") or default.input_topic,
            practitioners_topic=env.get("ENRICH_PRACTITIONERS_TOPIC")
            or default.practitioners_topic,
            enriched_topic=env.get("ENRICH_ENRICHED_TOPIC") or default.enriched_topic,
            unroutable_topic=env.get("ENRICH_UNROUTABLE_TOPIC") or default.unroutable_topic,
            dead_letter_topic=env.get("ENRICH_DEADLETTER_TOPIC") or default.dead_letter_topic,
            group_id=env.get("ENRICH_GROUP_ID") or default.group_id,
            transactional_id=env.get("ENRICH_TRANSACTIONAL_ID") or default.transactional_id,
        )
