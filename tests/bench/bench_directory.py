"""The directory import at national scale: a generated personnes extract of one million rows
(with its MSSanté extract), imported into an empty directory, then the next day's extracts
applied as a diff; each followed by publishing the changes on a compacted topic.

The extracts are streamed to and from a temporary folder; nothing holds a whole file in memory.
"""

from __future__ import annotations

import dataclasses
import resource
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import Schema

from services.common.kafka import make_admin
from services.common.schemas import expanded_schema_json
from services.common.serde import make_registry_client
from services.common.settings import Settings
from services.common.topics import TopicSpec, ensure_topics
from services.directory.bootstrap import PRACTITIONER_SCHEMA, build
from services.directory.extracts import MSSANTE_COLUMNS, PERSONNES_COLUMNS, format_line
from services.directory.sample import (
    Person,
    mssante_rows,
    personnes_rows,
    synthetic_people,
    write_extracts,
)
from services.directory.service import ImportSummary, import_extracts
from tests.support import as_principal, local_database_server

# About 1.1 activity rows per practitioner: this many give a personnes extract of a million rows.
PRACTITIONERS = 905_000
# The next day: one practitioner in this many leaves, one is renamed, one loses a mailbox,
# and NEW_PRACTITIONERS arrive.
CHURN = 200
NEW_PRACTITIONERS = 5_000

_FAMILY_NAME = PERSONNES_COLUMNS.index("Nom d'exercice")
_PERSONNES_RPPS = PERSONNES_COLUMNS.index("Identifiant PP")
_MSSANTE_RPPS = MSSANTE_COLUMNS.index("Identifiant PP")


def _generate_first_day(folder: Path) -> tuple[Path, Path]:
    share = PRACTITIONERS // 10
    people = synthetic_people(
        20_260_301,
        general_practitioners=2 * share,
        pharmacists=share,
        nurses=4 * share,
        specialists=PRACTITIONERS - 7 * share,
        rpps_gap=9,
    )
    written = write_extracts(people, folder / "personnes-1.txt", folder / "mssante-1.txt")
    return written.personnes, written.mssante


def _derive_next_day(personnes: Path, mssante: Path, folder: Path) -> tuple[Path, Path]:
    """Yesterday's files with churn applied, line by line, plus new practitioners."""
    next_personnes, next_mssante = folder / "personnes-2.txt", folder / "mssante-2.txt"
    with (
        open(personnes, encoding="utf-8") as source,
        open(next_personnes, "w", encoding="utf-8") as target,
    ):
        target.write(next(source))
        for line in source:
            fields = line.split("|")
            fate = int(fields[_PERSONNES_RPPS]) % CHURN
            if fate == 0:
                continue
            if fate == 1:
                fields[_FAMILY_NAME] += "-MARCHAL"
                line = "|".join(fields)
            target.write(line)
        for person in _new_people():
            for values in personnes_rows(person):
                target.write(format_line(values, trailing_separator=True))
    with (
        open(mssante, encoding="utf-8") as source,
        open(next_mssante, "w", encoding="utf-8") as target,
    ):
        target.write(next(source))
        for line in source:
            if int(line.split("|")[_MSSANTE_RPPS]) % CHURN not in (0, 2):
                target.write(line)
        for person in _new_people():
            for values in mssante_rows(person):
                target.write(format_line(values, trailing_separator=False))
    return next_personnes, next_mssante


def _new_people() -> Iterator[Person]:
    return synthetic_people(
        20_260_302, general_practitioners=NEW_PRACTITIONERS, first_rpps=9_000_000, rpps_gap=9
    )


def _figures(summary: ImportSummary, publish_seconds: float, published: int) -> dict[str, Any]:
    return {
        "rows": summary.rows_read,
        "personnes_rows": summary.personnes.rows,
        "mssante_rows": summary.mssante.rows,
        "import_seconds": round(summary.seconds, 1),
        "import_rows_per_s": round(summary.rows_read / summary.seconds),
        "added": summary.changes.added,
        "changed": summary.changes.changed,
        "removed": summary.changes.removed,
        "practitioners": summary.changes.practitioners,
        "mailboxes": summary.changes.mailboxes,
        "published": published,
        "publish_seconds": round(publish_seconds, 1),
        "publish_per_s": round(published / publish_seconds) if publish_seconds else None,
    }


def run(settings: Settings) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    database = f"bench_directory_{suffix}"
    topic = f"bench-practitioners-{suffix}"
    database_server = local_database_server()
    # The directory's own role, as the service runs: its migrations land in its schema.
    database_url = as_principal(database_server.create(database), "directory")
    admin = make_admin(settings)
    spec = TopicSpec(topic, PRACTITIONER_SCHEMA, 3, True, retention_ms=3_600_000)
    ensure_topics(admin, [spec])
    make_registry_client(settings).register_schema(
        spec.subject, Schema(expanded_schema_json(PRACTITIONER_SCHEMA), "AVRO")
    )
    bench_settings = dataclasses.replace(settings, database_url=database_url)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-directory-") as name:
            folder = Path(name)
            started = time.perf_counter()
            first_day = _generate_first_day(folder)
            second_day = _derive_next_day(*first_day, folder)
            generate_seconds = time.perf_counter() - started

            directory = build(bench_settings, topic=topic)
            try:
                first = import_extracts(directory.store, directory.publisher, *first_day)
                started = time.perf_counter()
                first_published = directory.publisher.publish_queued()
                first_publish = time.perf_counter() - started

                diff = import_extracts(directory.store, directory.publisher, *second_day)
                started = time.perf_counter()
                diff_published = directory.publisher.publish_queued()
                diff_publish = time.perf_counter() - started
            finally:
                directory.close()
    finally:
        admin.delete_topics([topic])
        database_server.drop(database)
    return {
        "generate_seconds": round(generate_seconds, 1),
        "first_import": _figures(first, first_publish, first_published),
        "diff_import": _figures(diff, diff_publish, diff_published),
        # Of the whole benchmark process: the figure to watch is that it does not grow with
        # the extract's size.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
