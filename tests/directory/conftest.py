"""Fixtures for the directory's integration tests: a directory on a fresh database and topic,
extract files written from a few practitioners, and a reader of what the topic holds."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from services.common.serde import AvroSerde
from services.common.settings import Settings
from services.directory.bootstrap import PRACTITIONER_SCHEMA, Directory, build
from services.directory.extracts import MSSANTE_COLUMNS, PERSONNES_COLUMNS, format_line
from services.directory.sample import row
from tests.support import as_principal


@pytest.fixture
def directory_settings(stack: Settings, empty_database: str) -> Settings:
    """The stack's settings pointing at a database of this test's own, as the directory's role
    (the directory runs in the test's process: no ``ServiceProcess`` to pick its role)."""
    return dataclasses.replace(stack, database_url=as_principal(empty_database, "directory"))


@pytest.fixture
def practitioners_topic(topic_factory: Callable[..., str]) -> str:
    """A fresh compacted topic standing for ``practitioners``, its schema registered."""
    return topic_factory(PRACTITIONER_SCHEMA, compacted=True)


@pytest.fixture
def directory(directory_settings: Settings, practitioners_topic: str) -> Iterator[Directory]:
    """The directory as the command line builds it, migrated, publishing to the test's topic."""
    built = build(directory_settings, topic=practitioners_topic)
    yield built
    built.close()


def activity(rpps: str, family_name: str, given_name: str, **columns: str) -> dict[str, str]:
    """A general practitioner's row of the personnes extract; ``columns`` override by name."""
    return {
        "Type d'identifiant PP": "8",
        "Identifiant PP": rpps,
        "Identification nationale PP": f"8{rpps}",
        "Code civilité d'exercice": "DR",
        "Nom d'exercice": family_name,
        "Prénom d'exercice": given_name,
        "Code profession": "10",
        "Libellé profession": "Médecin",
        "Code savoir-faire": "SM54",
        "Libellé savoir-faire": "Médecine Générale",
        "Code mode exercice": "L",
        "Raison sociale site": f"CABINET DU DR {given_name.upper()} {family_name}",
        "Code postal (coord. structure)": "54000",
        "Libellé commune (coord. structure)": "Nancy",
    } | columns


def mailbox(rpps: str, address: str, mailbox_type: str = "PER") -> dict[str, str]:
    """A row of the MSSanté extract."""
    return {
        "Type de BAL": mailbox_type,
        "Adresse BAL": address,
        "Type Identifiant PP": "8",
        "Identifiant PP": rpps,
        "Identification nationale PP": f"8{rpps}",
    }


def write_day(
    folder: Path,
    day: str,
    activities: list[dict[str, str]],
    mailboxes: list[dict[str, str]],
    *,
    raw_personnes_lines: dict[int, str] | None = None,
) -> tuple[Path, Path]:
    """The two extracts of one day; ``raw_personnes_lines`` inserts lines as they are, at the
    given index among the rows (to make bad rows)."""
    lines = [
        format_line(row(PERSONNES_COLUMNS, values), trailing_separator=True)
        for values in activities
    ]
    for index, text in sorted((raw_personnes_lines or {}).items()):
        lines.insert(index, text)
    personnes = folder / f"PS_LibreAcces_Personne_activite_{day}.txt"
    personnes.write_text(
        format_line(PERSONNES_COLUMNS, trailing_separator=True) + "".join(lines), "utf-8"
    )
    mssante = folder / f"Extraction_Correspondance_MSSante_{day}.txt"
    mssante.write_text(
        format_line(MSSANTE_COLUMNS, trailing_separator=False)
        + "".join(
            format_line(row(MSSANTE_COLUMNS, values), trailing_separator=False)
            for values in mailboxes
        ),
        "utf-8",
    )
    return personnes, mssante


TopicReader = Callable[[int], list[tuple[str, dict[str, Any] | None]]]


@pytest.fixture
def read_practitioners(
    consumer_factory: Callable[..., Consumer],
    serde_factory: Callable[[str], AvroSerde],
    practitioners_topic: str,
) -> TopicReader:
    """Every record of the topic so far, (RPPS, value or None for a tombstone), in the order
    of each partition; waits for ``expected`` records, then makes sure no more follow."""
    serde = serde_factory(PRACTITIONER_SCHEMA)

    def read(expected: int) -> list[tuple[str, dict[str, Any] | None]]:
        consumer = consumer_factory(practitioners_topic)
        records: list[tuple[str, dict[str, Any] | None]] = []
        deadline = time.monotonic() + 30
        while len(records) < expected and time.monotonic() < deadline:
            records += _decoded(consumer.consume(1000, timeout=0.5), serde, practitioners_topic)
        records += _decoded(consumer.consume(1000, timeout=1.0), serde, practitioners_topic)
        return records

    return read


def _decoded(
    messages: list[Any], serde: AvroSerde, topic: str
) -> list[tuple[str, dict[str, Any] | None]]:
    records: list[tuple[str, dict[str, Any] | None]] = []
    for message in messages:
        assert message.error() is None, message.error()
        value = message.value()
        records.append(
            (message.key().decode(), None if value is None else serde.deserialize(topic, value))
        )
    return records


def latest(records: list[tuple[str, dict[str, Any] | None]]) -> dict[str, dict[str, Any] | None]:
    """What a compacted topic keeps: the last value per key."""
    return dict(records)


def present(records: dict[str, dict[str, Any] | None], rpps: str) -> dict[str, Any]:
    """The practitioner's latest record, which must not be a tombstone."""
    value = records[rpps]
    assert value is not None, f"{rpps} is a tombstone"
    return value
