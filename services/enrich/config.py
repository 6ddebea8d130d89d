"""Enrich's own settings, each with an environment variable and a default."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass

from services.common.settings import read_config, setting


@dataclass(frozen=True)
class EnrichConfig:
    input_topic: str = setting("stays.unique", "ENRICH_INPUT_TOPIC")
    practitioners_topic: str = setting("practitioners", "ENRICH_PRACTITIONERS_TOPIC")
    enriched_topic: str = setting("stays.enriched", "ENRICH_ENRICHED_TOPIC")
    unroutable_topic: str = setting("stays.unroutable", "ENRICH_UNROUTABLE_TOPIC")
    dead_letter_topic: str = setting("deadletter.enrich", "ENRICH_DEADLETTER_TOPIC")
    group_id: str = setting("enrich", "ENRICH_GROUP_ID")
    transactional_id: str = setting(f"enrich@{socket.gethostname()}", "ENRICH_TRANSACTIONAL_ID")
    """Stable per instance: a restarted instance fences its former self's open transaction."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EnrichConfig:
        return read_config(cls, environ)
