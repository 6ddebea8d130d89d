"""The directory's use cases: import a day's extracts, set a practitioner's preferences, publish.

Why an outbox. Every change to the directory (an import, a preference) writes the changed RPPS
numbers into ``practitioner_outbox`` in the same PostgreSQL transaction as the change itself.
Publishing then reads the outbox, sends each practitioner's *current* state (or a tombstone when
they are gone) to the compacted ``practitioners`` topic, waits until Kafka has acknowledged every
record, and only then deletes those outbox rows. So:

- a crash or a Kafka outage after the commit loses nothing: the rows stay, and the next
  ``publish`` (or the next import, which publishes at the end) sends them;
- a crash after Kafka's acknowledgement but before the delete republishes the same state, which
  is harmless on a compacted topic keyed by RPPS;
- the database never holds a change that the topic will not eventually carry, and the topic
  never carries a change that was rolled back.

A Kafka transaction spanning the database commit would need two-phase commit, which neither
side offers here; the outbox gives the same outcome with at-least-once publication. Publishing
the current state rather than a queued copy means a practitioner changed twice before
publication is sent once, as they are now.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from services.directory.extracts import (
    ActivityRow,
    BadRow,
    MailboxRow,
    OutOfScope,
    open_extract,
    read_mssante,
    read_personnes,
)
from services.directory.publisher import PractitionerPublisher
from services.directory.records import practitioner_value
from services.directory.store import Changes, DirectoryStore

# (file label, lines read so far, share of the file read or None for a pipe), every
# PROGRESS_EVERY lines.
Progress = Callable[[str, int, float | None], None]
PROGRESS_EVERY = 100_000
# Bad rows kept for the report; the count goes on, so a broken file cannot exhaust memory.
BAD_ROWS_KEPT = 1_000
DEFAULT_MAX_REMOVED_SHARE = 0.1

_Row = TypeVar("_Row", ActivityRow, MailboxRow)


@dataclass
class FileReport:
    """What was read from one extract."""

    label: str
    path: Path
    rows: int = 0
    out_of_scope: int = 0
    bad: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)

    def add_bad(self, row: BadRow) -> None:
        self.bad += 1
        if len(self.bad_rows) < BAD_ROWS_KEPT:
            self.bad_rows.append(row)


@dataclass(frozen=True)
class ImportSummary:
    personnes: FileReport
    mssante: FileReport
    changes: Changes
    seconds: float

    @property
    def rows_read(self) -> int:
        return self.personnes.rows + self.mssante.rows

    @property
    def bad_rows(self) -> int:
        return self.personnes.bad + self.mssante.bad


def _accepted(
    items: Iterator[_Row | BadRow | OutOfScope],
    report: FileReport,
    source: BinaryIO,
    size: int,
    progress: Progress | None,
) -> Iterator[_Row]:
    """The usable rows, counting the others into ``report`` on the way."""
    for item in items:
        report.rows += 1
        if isinstance(item, BadRow):
            report.add_bad(item)
        elif isinstance(item, OutOfScope):
            report.out_of_scope += 1
        else:
            yield item
        if progress is not None and report.rows % PROGRESS_EVERY == 0:
            progress(report.label, report.rows, source.tell() / size if size else None)


def import_extracts(
    store: DirectoryStore,
    personnes: Path,
    mssante: Path,
    *,
    max_removed_share: float = DEFAULT_MAX_REMOVED_SHARE,
    progress: Progress | None = None,
) -> ImportSummary:
    """Load both extracts and apply the difference with the current directory, in one
    transaction: either all of the new day is in, with its changes queued for publishing, or
    nothing changed."""
    started = time.monotonic()
    personnes_report = FileReport("personnes", personnes)
    mssante_report = FileReport("mssante", mssante)
    with store.conn.transaction():
        store.begin_import()
        with open_extract(personnes) as source:
            size = personnes.stat().st_size
            store.copy_activities(
                _accepted(read_personnes(source), personnes_report, source, size, progress)
            )
        with open_extract(mssante) as source:
            size = mssante.stat().st_size
            store.copy_mailboxes(
                _accepted(read_mssante(source), mssante_report, source, size, progress)
            )
        changes = store.apply_import(max_removed_share)
        store.record_import(
            personnes,
            mssante,
            personnes_report.rows + mssante_report.rows,
            personnes_report.bad + mssante_report.bad,
            changes,
        )
    return ImportSummary(personnes_report, mssante_report, changes, time.monotonic() - started)


def set_preferences(
    store: DirectoryStore,
    rpps: str,
    *,
    opted_out: bool | None = None,
    preferred_address: str | None = None,
    clear_preferred_address: bool = False,
) -> None:
    with store.conn.transaction():
        store.set_preferences(
            rpps,
            opted_out=opted_out,
            preferred_address=preferred_address,
            clear_preferred_address=clear_preferred_address,
        )


def publish_pending(
    store: DirectoryStore,
    publisher: PractitionerPublisher,
    *,
    batch_size: int = 5_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Publish every queued change, batch by batch; returns how many records were sent.

    A batch's outbox rows are deleted in the same transaction that read them, after Kafka
    acknowledged the batch; if publishing fails the transaction rolls back and they stay.
    """
    published = 0
    while True:
        with store.conn.transaction():
            store.lock_publishing()
            batch = store.pending_changes(batch_size)
            if not batch:
                return published
            # One record per practitioner per batch: their current state, sent once.
            latest: dict[str, dict[str, Any] | None] = {}
            for change in batch:
                latest[change.rpps] = change.state
            published += publisher.publish(_values(latest.items()))
            store.forget_changes([change.id for change in batch])
        if progress is not None:
            progress(published)


def _values(
    states: Iterable[tuple[str, dict[str, Any] | None]],
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    for rpps, state in states:
        yield rpps, None if state is None else practitioner_value(state)
