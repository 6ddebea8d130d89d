"""The stream processors' throughput against their ceiling, in one run on the same records.

A backlog of stay events (one in ten resent) waits on two raw topics. Then, each measured on its
own: a plain confluent-kafka consume-and-produce passthrough of those raw records (the ceiling:
what the broker and the client allow, with the platform's producer settings), dedup reading the
backlog (``python -m services.dedup``), and enrich reading dedup's output
(``python -m services.enrich``). A service's rate is the input it worked through over the time
between its first and its last output record, so start-up is not counted; each rate is also
given as a fraction of the ceiling.
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
from tests.dedup.support import BASE_TIME, PrivateTopics, event, produce_bytes, reader
from tests.enrich.builders import practitioner
from tests.support import ServiceProcess, stack_env

STAYS = 1_000
MOVEMENTS = 10
RESEND_EVERY = 10
GPS = 50


def backlog() -> list[dict[str, Any]]:
    """Stay events of two establishments, in order within each stay, with resends."""
    values = []
    for stay in range(STAYS):
        code = "alpha" if stay % 2 else "beta"
        for step in range(MOVEMENTS):
            value = event(
                code,
                f"V{stay:05}",
                f"B{stay}-{step}",
                f"B{stay}-MVT{step}",
                kind="TRANSFER",
                trigger="A02",
                received_at=BASE_TIME + dt.timedelta(seconds=step),
                gp_rpps=f"{10_000_000_000 + stay % GPS}",
            )
            values.append(value)
            if len(values) % RESEND_EVERY == 0:
                values.append(value)
    return values


def produce_all(producer: Producer, records: list[tuple[str, bytes, bytes | None]]) -> None:
    for topic, key, value in records:
        produce_bytes(producer, topic, key, value)
    assert producer.flush(120) == 0


def passthrough(settings: Settings, sources: list[str], target: str, expected: int) -> float:
    """Consume every record of ``sources`` and produce it to ``target``, in the same partition;
    records per second, from the first record consumed to the last one acknowledged."""
    consumer = make_consumer(settings, "bench-passthrough", f"bench-{uuid.uuid4().hex[:8]}")
    producer = make_producer(settings, "bench-passthrough")
    consumer.subscribe(sources)
    moved, started = 0, 0.0
    deadline = time.monotonic() + 300
    while moved < expected and time.monotonic() < deadline:
        messages = consumer.consume(1000, timeout=1.0)
        if messages and not started:
            started = time.perf_counter()
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
    elapsed = time.perf_counter() - started
    consumer.close()
    assert moved == expected, f"passthrough moved {moved} of {expected}"
    return moved / elapsed


def output_span(consumer: Consumer, expected: int, timeout: float = 600) -> tuple[int, float]:
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
    if first is None or last is None or count < expected:
        raise AssertionError(f"only {count} of {expected} records came out")
    return count, (last - first) / 1000


def run(settings: Settings) -> dict[str, Any]:
    registry = make_registry_client(settings)
    serde = AvroSerde(registry, "harpicoop.StayEvent")
    topics = PrivateTopics(make_admin(settings), registry, f"bench{uuid.uuid4().hex[:8]}", [])
    folder = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    services: list[ServiceProcess] = []
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
        values = backlog()
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

        ceiling = passthrough(settings, list(raw.values()), names["copy"], len(values))

        dedup = ServiceProcess(
            "dedup",
            stack_env(
                settings,
                DEDUP_INPUT_PATTERN=rf"{topics.prefix}\.stays\.raw\..+",
                DEDUP_OUTPUT_TOPIC=names["unique"],
                DEDUP_DEADLETTER_TOPIC=topics.create("deadletter.dedup"),
                DEDUP_GROUP_ID=f"{topics.prefix}-dedup",
                DEDUP_DATA_DIR=str(folder / "dedup"),
            ),
            folder / "dedup.log",
        )
        services.append(dedup)
        dedup.start()
        dedup_out, dedup_seconds = output_span(reader(settings, names["unique"]), unique)
        dedup.stop()

        enrich = ServiceProcess(
            "enrich",
            stack_env(
                settings,
                ENRICH_INPUT_TOPIC=names["unique"],
                ENRICH_PRACTITIONERS_TOPIC=names["practitioners"],
                ENRICH_ENRICHED_TOPIC=names["enriched"],
                ENRICH_UNROUTABLE_TOPIC=names["unroutable"],
                ENRICH_DEADLETTER_TOPIC=topics.create("deadletter.enrich"),
                ENRICH_GROUP_ID=f"{topics.prefix}-enrich",
                ENRICH_TRANSACTIONAL_ID=f"{topics.prefix}-enrich",
            ),
            folder / "enrich.log",
        )
        services.append(enrich)
        enrich.start()
        enriched = reader(settings, names["enriched"], names["unroutable"])
        enrich_out, enrich_seconds = output_span(enriched, unique)
        enrich.stop()
    finally:
        for service in services:
            service.stop()
        topics.delete_all()

    dedup_rate = len(values) / dedup_seconds
    enrich_rate = unique / enrich_seconds
    return {
        "records": len(values),
        "unique_events": unique,
        "avg_record_bytes": record_bytes,
        "passthrough_per_s": round(ceiling),
        "dedup_per_s": round(dedup_rate),
        "dedup_to_ceiling": round(dedup_rate / ceiling, 3),
        "dedup_unique_out": dedup_out,
        "enrich_per_s": round(enrich_rate),
        "enrich_to_ceiling": round(enrich_rate / ceiling, 3),
        "enrich_out": enrich_out,
        "logs": str(folder),
    }
