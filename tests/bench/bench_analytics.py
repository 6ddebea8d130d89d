"""Analytics' throughput: a backlog of enriched stay events (a day of the eleven establishments, in
the order things happened) counted into hourly and daily windows and published, then mirrored
into PostgreSQL, by one worker started as production starts it."""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from services.common.establishments import load_establishments
from services.common.kafka import make_admin, make_consumer, make_producer
from services.common.serde import AvroSerde, make_registry_client, register_schemas
from services.common.settings import Settings
from services.common.topics import TopicSpec, ensure_topics
from tests.analytics.support import (
    Published,
    analytics_env,
    delete_internal_topics,
    enriched,
    sql_counts,
    stay,
    total,
)
from tests.support import ServiceProcess, eventually, local_database_server

EVENTS = 5_000
KINDS = ("ADMISSION", "TRANSFER", "DISCHARGE", "ADMISSION", "TRANSFER")


def _day_of_events(count: int) -> list[dict[str, Any]]:
    codes = [item.code for item in load_establishments()]
    first = dt.datetime.now(dt.UTC) - dt.timedelta(hours=24)
    step = dt.timedelta(hours=23) / count
    return [
        stay(
            codes[index % len(codes)],
            f"B{index // 3:05}",
            index,
            first + index * step,
            kind=KINDS[index % len(KINDS)],
            mode=("EMERGENCY", "SCHEDULED")[index % 2],
            covid=("NEGATIVE", "POSITIVE", "UNKNOWN")[index % 3],
        )
        for index in range(count)
    ]


def run(settings: Settings) -> dict[str, Any]:
    admin = make_admin(settings)
    registry = make_registry_client(settings)
    prefix = f"bench-analytics-{uuid.uuid4().hex[:8]}"
    hour_ms = 3_600_000
    specs = {
        "enriched": TopicSpec(
            f"{prefix}.enriched", "harpicoop.EnrichedStayEvent", 3, False, hour_ms
        ),
        "unroutable": TopicSpec(
            f"{prefix}.unroutable", "harpicoop.UnroutableStayEvent", 3, False, hour_ms
        ),
        "status": TopicSpec(f"{prefix}.status", "harpicoop.NotificationStatus", 3, False, hour_ms),
        "deadletter": TopicSpec(f"{prefix}.deadletter", None, 1, False, hour_ms),
        **{
            name: TopicSpec(f"{prefix}.{name}", "harpicoop.AnalyticsCount", 1, True, hour_ms)
            for name in ("stay_events", "notifications", "covid_discharges")
        },
    }
    ensure_topics(admin, list(specs.values()))
    register_schemas(registry, list(specs.values()))
    topics = {name: spec.name for name, spec in specs.items()}
    database = prefix.replace("-", "_")
    database_server = local_database_server()
    database_url = database_server.create(database)

    serde = AvroSerde(registry, "harpicoop.EnrichedStayEvent")
    producer = make_producer(settings, "bench-analytics")
    for event in _day_of_events(EVENTS):
        value = serde.serialize(topics["enriched"], enriched(event))
        producer.produce(topics["enriched"], key=event["stay_key"], value=value)
        producer.poll(0)
    producer.flush(60)

    published = Published(
        make_consumer(settings, "bench-analytics", f"{prefix}-reader"),
        AvroSerde(registry, "harpicoop.AnalyticsCount"),
    )
    published.consumer.subscribe([topics[name] for name in ("stay_events", "covid_discharges")])
    try:
        with tempfile.TemporaryDirectory() as folder:
            env = analytics_env(
                settings, topics, prefix, database_url, ANALYTICS_DATA_DIR=f"{folder}/state"
            )
            service = ServiceProcess("analytics", env, Path(folder) / "analytics.log")
            started = time.perf_counter()
            service.start()
            try:
                eventually(lambda: published.read().records > 0, 120, "a first count")
                first_count = time.perf_counter()
                eventually(
                    lambda: total(published.read().counts(), "stay_events", "DAY") == EVENTS,
                    600,
                    "every count",
                )
                counted = time.perf_counter()
                eventually(
                    lambda: total(sql_counts(database_url), "stay_events", "DAY") == EVENTS,
                    300,
                    "the mirror",
                )
                mirrored = time.perf_counter()
            finally:
                service.stop()
    finally:
        published.consumer.close()
        admin.delete_topics(list(topics.values()), operation_timeout=10)
        delete_internal_topics(admin, prefix)
        database_server.drop(database)
    return {
        "events": EVENTS,
        "start_to_first_count_seconds": round(first_count - started, 2),
        "events_per_second": round(EVENTS / (counted - first_count), 1),
        "counts_published": published.records,
        "sql_mirror_behind_seconds": round(mirrored - counted, 2),
    }
