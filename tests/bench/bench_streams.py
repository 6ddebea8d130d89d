"""Each stream stage's rate as a fraction of a plain passthrough, all in one run on one backlog.

A backlog of stay events of the last hours (one record in ten resent) waits on two raw topics.
Then, each measured on its own, one after the other:

- the passthrough: a plain confluent-kafka consume-and-produce of those raw records with the
  platform's producer settings, the ceiling every stage's ratio is taken to;
- dedup (``python -m services.dedup``) reading the backlog;
- enrich (``python -m services.enrich``) reading dedup's output;
- analytics (``python -m services.analytics``) counting enrich's output into its windows.

Every rate, the passthrough's included, is measured the same way: the input worked through over
the time between the first and the last output record's creation (for analytics, between its
first count published and the counts adding up to every event), so start-up is not counted and
the ratios compare like with like. A stage that writes in batches shows its first output only
once its first batch is done, so the backlog is large enough (some 22,000 records) for that
first batch to be a small part of the whole.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

from services.common.kafka import make_admin, make_consumer, make_producer
from services.common.serde import AvroSerde, make_registry_client
from services.common.settings import Settings
from tests.analytics.support import Published, analytics_env, sql_counts, total
from tests.bench.support import keep_logs_only
from tests.bench.targets import ratio
from tests.dedup.support import PrivateTopics, event, produce_bytes, reader
from tests.enrich.builders import practitioner
from tests.support import ServiceProcess, eventually, local_database_server, stack_env

STAYS = 2_000
MOVEMENTS = 10
RESEND_EVERY = 10
GPS = 50


def backlog(first: dt.datetime) -> list[dict[str, Any]]:
    """Stay events of two establishments, in order within each stay, with resends; dated from
    ``first`` on (analytics counts only events younger than its windows' expiry)."""
    values = []
    for stay in range(STAYS):
        code = "alpha" if stay % 2 else "beta"
        for step in range(MOVEMENTS):
            at = first + dt.timedelta(seconds=stay + step * STAYS)
            value = event(
                code,
                f"V{stay:05}",
                f"B{stay}-{step}",
                f"B{stay}-MVT{step}",
                kind="TRANSFER",
                trigger="A02",
                received_at=at,
                gp_rpps=f"{10_000_000_000 + stay % GPS}",
            )
            value["movement"] = {**value["movement"], "occurred_at": at}
            values.append(value)
            if len(values) % RESEND_EVERY == 0:
                values.append(value)
    return values


def produce_all(producer: Producer, records: list[tuple[str, bytes, bytes | None]]) -> None:
    for topic, key, value in records:
        produce_bytes(producer, topic, key, value)
    assert producer.flush(120) == 0


def passthrough(settings: Settings, sources: list[str], target: str, expected: int) -> None:
    """Consume every record of ``sources`` and produce it to ``target``, in the same partition
    (its rate is read from ``target`` as every stage's is, by ``output_span``)."""
    consumer = make_consumer(settings, "bench-passthrough", f"bench-{uuid.uuid4().hex[:8]}")
    producer = make_producer(settings, "bench-passthrough")
    consumer.subscribe(sources)
    moved = 0
    deadline = time.monotonic() + 300
    while moved < expected and time.monotonic() < deadline:
        messages = consumer.consume(1000, timeout=1.0)
        for message in messages:
            if message.error() is not None:
                continue
            while True:
                try:
                    producer.produce(
                        target,
                        key=message.key(),
                        value=message.value(),
                        partition=message.partition() or 0,
                        headers=message.headers(),
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            moved += 1
        producer.poll(0)
        if messages:
            consumer.commit(asynchronous=True)
    assert producer.flush(60) == 0
    consumer.close()
    assert moved == expected, f"passthrough moved {moved} of {expected}"


def output_span(consumer: Consumer, expected: int, timeout: float = 300) -> tuple[int, float]:
    """Reads until ``expected`` records; their count and the seconds between the first and the
    last one's creation (the writer's clock)."""
    count, first, last = 0, None, None
    deadline = time.monotonic() + timeout
    while count < expected and time.monotonic() < deadline:
        for message in consumer.consume(1000, timeout=1.0):
            if message.error() is not None:
                continue
            count += 1
            stamp = message.timestamp()[1]
            first = stamp if first is None else min(first, stamp)
            last = stamp if last is None else max(last, stamp)
    consumer.close()
    if first is None or last is None or count < expected:
        raise AssertionError(f"only {count} of {expected} records came out")
    return count, (last - first) / 1000


def counted_span(published: Published, events: int, timeout: float = 300) -> float:
    """Seconds from analytics' first count published to its daily stay counts adding up to
    ``events``."""
    eventually(lambda: published.read().records > 0, 120, "a first count")
    first = time.perf_counter()
    eventually(
        lambda: total(published.read().counts(), "stay_events", "DAY") == events,
        timeout,
        "every count",
    )
    return time.perf_counter() - first


def run(settings: Settings) -> dict[str, Any]:
    admin = make_admin(settings)
    registry = make_registry_client(settings)
    serde = AvroSerde(registry, "harpicoop.StayEvent")
    topics = PrivateTopics(admin, registry, f"bench{uuid.uuid4().hex[:8]}", [])
    folder = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    database_server = local_database_server()
    database = topics.prefix
    database_url = database_server.create(database)
    services: list[ServiceProcess] = []

    def started(name: str, **env: str) -> ServiceProcess:
        print(f"    {name} ...", flush=True)
        service = ServiceProcess(name, stack_env(settings, **env), folder / f"{name}.log")
        services.append(service)
        service.start()
        return service

    try:
        raw = {
            code: topics.create(f"stays.raw.{code}", "harpicoop.StayEvent")
            for code in ("alpha", "beta")
        }
        names = {
            "unique": topics.create("stays.unique", "harpicoop.StayEvent"),
            "copy": topics.create("passthrough"),
            "practitioners": topics.create("practitioners", "harpicoop.Practitioner"),
            "enriched": topics.create("stays.enriched", "harpicoop.EnrichedStayEvent"),
            "unroutable": topics.create("stays.unroutable", "harpicoop.UnroutableStayEvent"),
        }
        counts = {
            name: topics.create(name, "harpicoop.AnalyticsCount", partitions=1, compacted=True)
            for name in ("stay_events", "notifications", "covid_discharges")
        }
        values = backlog(dt.datetime.now(dt.UTC) - dt.timedelta(hours=6))
        unique = len({value["event_id"] for value in values})
        producer = make_producer(settings, "bench-streams")
        practitioners = AvroSerde(registry, "harpicoop.Practitioner")
        produce_all(
            producer,
            [
                (
                    names["practitioners"],
                    rpps.encode(),
                    practitioners.serialize(
                        names["practitioners"],
                        practitioner(rpps, ("PER", f"gp{rpps}@medecin.mssante.fr")),
                    ),
                )
                for rpps in (f"{10_000_000_000 + index}" for index in range(GPS))
            ],
        )
        produce_all(
            producer,
            [
                (
                    raw[value["establishment"]],
                    value["stay_key"].encode(),
                    serde.serialize(raw[value["establishment"]], value),
                )
                for value in values
            ],
        )
        record_bytes = len(serde.serialize(raw["alpha"], values[0]))

        print("    passthrough ...", flush=True)
        passthrough(settings, list(raw.values()), names["copy"], len(values))
        _, passthrough_seconds = output_span(reader(settings, names["copy"]), len(values))
        ceiling = len(values) / passthrough_seconds

        dedup = started(
            "dedup",
            DEDUP_INPUT_PATTERN=rf"{topics.prefix}\.stays\.raw\..+",
            DEDUP_OUTPUT_TOPIC=names["unique"],
            DEDUP_DEADLETTER_TOPIC=topics.create("deadletter.dedup"),
            DEDUP_GROUP_ID=f"{topics.prefix}-dedup",
        )
        dedup_out, dedup_seconds = output_span(reader(settings, names["unique"]), unique)
        dedup.stop()

        enrich = started(
            "enrich",
            ENRICH_INPUT_TOPIC=names["unique"],
            ENRICH_PRACTITIONERS_TOPIC=names["practitioners"],
            ENRICH_ENRICHED_TOPIC=names["enriched"],
            ENRICH_UNROUTABLE_TOPIC=names["unroutable"],
            ENRICH_DEADLETTER_TOPIC=topics.create("deadletter.enrich"),
            ENRICH_GROUP_ID=f"{topics.prefix}-enrich",
            ENRICH_TRANSACTIONAL_ID=f"{topics.prefix}-enrich",
        )
        enriched = reader(settings, names["enriched"], names["unroutable"])
        enrich_out, enrich_seconds = output_span(enriched, unique)
        enrich.stop()

        published = Published(
            make_consumer(settings, "bench-analytics", f"{topics.prefix}-reader"),
            AvroSerde(registry, "harpicoop.AnalyticsCount"),
        )
        published.consumer.subscribe([counts["stay_events"]])
        analytics_topics = {
            "enriched": names["enriched"],
            "unroutable": names["unroutable"],
            "status": topics.create("notifications.status", "harpicoop.NotificationStatus"),
            "deadletter": topics.create("deadletter.analytics"),
            **counts,
        }
        print("    analytics ...", flush=True)
        analytics = ServiceProcess(
            "analytics",
            analytics_env(
                settings,
                analytics_topics,
                f"{topics.prefix}-analytics",
                database_url,
                ANALYTICS_DATA_DIR=str(folder / "analytics"),
            ),
            folder / "analytics.log",
        )
        services.append(analytics)
        analytics.start()
        try:
            analytics_seconds = counted_span(published, unique)
            counted = time.perf_counter()
            eventually(
                lambda: total(sql_counts(database_url), "stay_events", "DAY") == unique,
                120,
                "the PostgreSQL mirror",
            )
            mirror_behind = time.perf_counter() - counted
        finally:
            published.consumer.close()
            analytics.stop()
    finally:
        for service in services:
            service.stop()
        topics.delete_all()
        database_server.drop(database)

    rates = {
        "dedup": len(values) / dedup_seconds,
        "enrich": unique / enrich_seconds,
        "analytics": unique / analytics_seconds,
    }
    figures: dict[str, Any] = {
        "records": len(values),
        "unique_events": unique,
        "avg_record_bytes": record_bytes,
        "passthrough_per_s": round(ceiling),
    }
    for stage, rate in rates.items():
        figures[f"{stage}_per_s"] = round(rate)
        figures[f"{stage}_to_passthrough"] = ratio(rate, ceiling)
    figures |= {
        "dedup_unique_out": dedup_out,
        "enrich_out": enrich_out,
        "analytics_sql_mirror_behind_s": round(mirror_behind, 2),
        "logs": keep_logs_only(folder),
    }
    return figures
