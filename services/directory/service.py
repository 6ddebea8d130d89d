"""The directory's use cases: import a day's extracts, set a practitioner's preferences.

Why an outbox. Every change to the directory (an import, a preference) queues the changed
practitioners' records in the platform's transactional outbox (``services.common.outbox``) in
the same PostgreSQL transaction as the change itself. The outbox relay then sends them to the
compacted ``practitioners`` topic, waits until Kafka has acknowledged every record, and only then
deletes them. So:

- a crash or a Kafka outage after the commit loses nothing: the records stay queued, and the
  next run (``python -m services.directory publish``, or any import) sends them;
- a crash after Kafka's acknowledgement but before the delete publishes the same state again,
  which is harmless on a compacted topic keyed by RPPS;
- the database never holds a change that the topic will not eventually carry, and the topic
  never carries a change that was rolled back; records of one RPPS keep their order.

A Kafka transaction spanning the database commit would need two-phase commit, which neither
side offers; the outbox gives the same outcome with at-least-once publication. Each record is
the practitioner's whole state, so a consumer never needs an earlier one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar

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
from services.directory.store import Changes, DirectoryStore

# (what, how many so far, share done or None when unknown, e.g. a file read from a pipe),
# every PROGRESS_EVERY lines read or changes queued.
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


def passed_a_milestone(before: int, now: int) -> bool:
    """Whether a count went past a multiple of PROGRESS_EVERY: time to say how far we are."""
    return now // PROGRESS_EVERY > before // PROGRESS_EVERY


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
            share = source.tell() / size if size else None
            progress(f"{report.label} lines read", report.rows, share)


def import_extracts(
    store: DirectoryStore,
    publisher: PractitionerPublisher,
    personnes: Path,
    mssante: Path,
    *,
    max_removed_share: float = DEFAULT_MAX_REMOVED_SHARE,
    progress: Progress | None = None,
) -> ImportSummary:
    """Load both extracts and apply the difference with the current directory, in one
    transaction: either all of the new day is in, with its changes queued for publishing, or
    nothing changed. Publishing is the caller's next step (``publisher.publish_queued``)."""
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
        total = changes.added + changes.changed + changes.removed
        queued = 0
        for page in store.changed_states():
            before, queued = queued, queued + publisher.queue(page)
            if progress is not None and passed_a_milestone(before, queued):
                progress("changes queued for publishing", queued, queued / total)
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
    publisher: PractitionerPublisher,
    rpps: str,
    *,
    opted_out: bool | None = None,
    preferred_address: str | None = None,
    clear_preferred_address: bool = False,
    event_kinds: Iterable[str] | None = None,
    mode: str | None = None,
    digest_hour: int | None = None,
) -> None:
    with store.conn.transaction():
        store.set_preferences(
            rpps,
            opted_out=opted_out,
            preferred_address=preferred_address,
            clear_preferred_address=clear_preferred_address,
            event_kinds=event_kinds,
            mode=mode,
            digest_hour=digest_hour,
        )
        publisher.queue([store.state_of(rpps)])
