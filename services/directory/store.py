"""The directory in PostgreSQL: staging by COPY, the set-based diff, preferences.

An import runs in one transaction (the caller's): rows are copied into temporary staging tables,
the new day's state is derived from them in SQL, compared with the current tables, and only the
differences are written. ``changed_states`` then gives the new state of each changed
practitioner, for the caller to queue in the outbox within the same transaction. Nothing of an
import is visible until it commits, and a failure anywhere leaves the previous day intact.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from services.common.db import apply_migrations
from services.directory.extracts import ActivityRow, MailboxRow

MIGRATIONS = Path(__file__).parent / "migrations"
# A fixed number naming the lock: one import (or preference change) at a time.
_WRITE_LOCK = 0x44495201

_PRACTITIONER_COLUMNS = (
    "civility",
    "family_name",
    "given_name",
    "profession_code",
    "profession",
    "specialty_code",
    "specialty",
    "structure_name",
    "city",
    "postcode",
)
_COLUMNS = ", ".join(_PRACTITIONER_COLUMNS)


class DirectoryError(RuntimeError):
    """A request the directory refuses, with a message for the operator."""


@dataclass(frozen=True)
class Changes:
    """What an import changed."""

    added: int
    changed: int
    removed: int
    practitioners: int
    mailboxes: int
    mailboxes_added: int
    mailboxes_removed: int
    without_mailbox: int
    mailboxes_of_unknown_practitioners: int


# A practitioner's RPPS and current state, None once they left the directory.
PractitionerState = tuple[str, dict[str, Any] | None]


def _states(wanted: str) -> str:
    """Everything a Practitioner record needs, for each RPPS that the query ``wanted`` lists;
    ``rpps`` is null for one no longer in the directory."""
    return f"""
        WITH wanted AS ({wanted}),
        boxes AS (
            SELECT m.rpps, json_agg(json_build_object(
                       'address', m.address, 'mailbox_type', m.mailbox_type, 'domain', m.domain))
                   AS mailboxes
            FROM mailbox m WHERE m.rpps IN (SELECT rpps FROM wanted)
            GROUP BY m.rpps
        )
        SELECT w.rpps AS wanted, p.rpps,
               {", ".join(f"p.{name}" for name in _PRACTITIONER_COLUMNS)},
               greatest(p.updated_at, f.updated_at) AS updated_at,
               coalesce(f.opted_out, false) AS opted_out, f.preferred_address, b.mailboxes,
               f.event_kinds, f.mode, f.digest_hour
        FROM wanted w
        LEFT JOIN practitioner p ON p.rpps = w.rpps
        LEFT JOIN practitioner_preferences f ON f.rpps = w.rpps
        LEFT JOIN boxes b ON b.rpps = w.rpps
    """


def migrate(conn: psycopg.Connection[Any]) -> list[str]:
    return apply_migrations(conn, "directory", MIGRATIONS)


class DirectoryStore:
    """The directory's tables, through one connection in autocommit mode.

    Methods that write expect to run inside ``conn.transaction()`` opened by the caller, so that
    a whole import, or a preference change, commits or rolls back as one.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        if not conn.autocommit:
            raise ValueError("DirectoryStore needs an autocommit connection")
        self.conn = conn

    # --- import -------------------------------------------------------------------------

    def begin_import(self) -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
        # The diff sorts and hashes a whole extract: give it memory rather than temp files.
        self.conn.execute("SET LOCAL work_mem = '64MB'")
        self.conn.execute(
            """
            CREATE TEMP TABLE staging_activity (
                line bigint, rpps text, civility text, family_name text, given_name text,
                profession_code text, profession text, specialty_code text, specialty text,
                practice_mode text, structure_id text, structure_name text, postcode text,
                city text
            ) ON COMMIT DROP;
            CREATE TEMP TABLE staging_mailbox (
                line bigint, rpps text, address text, mailbox_type text, domain text
            ) ON COMMIT DROP;
            """
        )

    def copy_activities(self, rows: Iterable[ActivityRow]) -> None:
        with (
            self.conn.cursor() as cursor,
            cursor.copy(
                "COPY staging_activity (line, rpps, civility, family_name, given_name, "
                "profession_code, profession, specialty_code, specialty, practice_mode, "
                "structure_id, structure_name, postcode, city) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(
                    (
                        row.line,
                        row.rpps,
                        row.civility,
                        row.family_name,
                        row.given_name,
                        row.profession_code,
                        row.profession,
                        row.specialty_code,
                        row.specialty,
                        row.practice_mode,
                        row.structure_id,
                        row.structure_name,
                        row.postcode,
                        row.city,
                    )
                )

    def copy_mailboxes(self, rows: Iterable[MailboxRow]) -> None:
        with (
            self.conn.cursor() as cursor,
            cursor.copy(
                "COPY staging_mailbox (line, rpps, address, mailbox_type, domain) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row((row.line, row.rpps, row.address, row.mailbox_type, row.domain))

    def apply_import(self, max_removed_share: float) -> Changes:
        """Derive the new state from staging, write only what differs, queue it for publishing.

        Refuses (``DirectoryError``) to remove more than ``max_removed_share`` of the current
        practitioners: a truncated download must not empty the directory.
        """
        execute = self.conn.execute
        execute("ANALYZE staging_activity; ANALYZE staging_mailbox")
        # One row per practitioner: the main activity is a liberal practice before a salaried
        # one, then the structure's id, so the choice does not depend on the file's row order.
        execute(
            f"""
            CREATE TEMP TABLE incoming_practitioner ON COMMIT DROP AS
            SELECT DISTINCT ON (rpps) rpps, {_COLUMNS}
            FROM staging_activity
            ORDER BY rpps, (practice_mode = 'L') DESC NULLS LAST, structure_id NULLS LAST, line
            """
        )
        execute("ALTER TABLE incoming_practitioner ADD PRIMARY KEY (rpps)")
        execute(
            """
            CREATE TEMP TABLE incoming_mailbox ON COMMIT DROP AS
            SELECT DISTINCT ON (m.rpps, m.address) m.rpps, m.address, m.mailbox_type, m.domain
            FROM staging_mailbox m
            WHERE EXISTS (SELECT FROM incoming_practitioner p WHERE p.rpps = m.rpps)
            ORDER BY m.rpps, m.address, m.line
            """
        )
        execute("ANALYZE incoming_practitioner; ANALYZE incoming_mailbox")
        incoming_columns = ", ".join(f"i.{name}" for name in _PRACTITIONER_COLUMNS)
        current_columns = ", ".join(f"c.{name}" for name in _PRACTITIONER_COLUMNS)
        execute(
            f"""
            CREATE TEMP TABLE directory_change ON COMMIT DROP AS
            WITH incoming AS (
                SELECT p.*, b.boxes
                FROM incoming_practitioner p
                LEFT JOIN (
                    SELECT rpps, array_agg(address || ' ' || mailbox_type ORDER BY address) AS boxes
                    FROM incoming_mailbox GROUP BY rpps
                ) b USING (rpps)
            ), current AS (
                SELECT p.rpps, {", ".join(f"p.{name}" for name in _PRACTITIONER_COLUMNS)},
                       b.boxes
                FROM practitioner p
                LEFT JOIN (
                    SELECT rpps, array_agg(address || ' ' || mailbox_type ORDER BY address) AS boxes
                    FROM mailbox GROUP BY rpps
                ) b USING (rpps)
            )
            SELECT coalesce(i.rpps, c.rpps) AS rpps,
                   CASE WHEN c.rpps IS NULL THEN 'added'
                        WHEN i.rpps IS NULL THEN 'removed'
                        ELSE 'changed' END AS change
            FROM incoming i FULL JOIN current c ON c.rpps = i.rpps
            WHERE c.rpps IS NULL OR i.rpps IS NULL
               OR ({incoming_columns}, i.boxes) IS DISTINCT FROM ({current_columns}, c.boxes)
            """
        )
        counts = self._one(
            """
            SELECT count(*) FILTER (WHERE change = 'added') AS added,
                   count(*) FILTER (WHERE change = 'changed') AS changed,
                   count(*) FILTER (WHERE change = 'removed') AS removed,
                   (SELECT count(*) FROM practitioner) AS current_practitioners
            FROM directory_change
            """
        )
        current = counts["current_practitioners"]
        if current and counts["removed"] > max_removed_share * current:
            raise DirectoryError(
                f"the new extract would remove {counts['removed']} of {current} practitioners "
                f"(more than {max_removed_share:.0%}); is the file complete? Nothing was changed. "
                f"Allow it with a larger --max-removed-share."
            )
        mailbox_counts = self._one(
            """
            SELECT
              (SELECT count(*) FROM (
                  SELECT rpps, address, mailbox_type FROM incoming_mailbox
                  EXCEPT SELECT rpps, address, mailbox_type FROM mailbox) a) AS mailboxes_added,
              (SELECT count(*) FROM (
                  SELECT rpps, address, mailbox_type FROM mailbox
                  EXCEPT SELECT rpps, address, mailbox_type FROM incoming_mailbox) r)
                AS mailboxes_removed,
              (SELECT count(DISTINCT (rpps, address)) FROM staging_mailbox m
               WHERE NOT EXISTS (SELECT FROM incoming_practitioner p WHERE p.rpps = m.rpps))
                AS mailboxes_of_unknown_practitioners
            """
        )
        execute(
            "DELETE FROM practitioner WHERE rpps IN "
            "(SELECT rpps FROM directory_change WHERE change = 'removed')"
        )
        execute(
            "DELETE FROM mailbox WHERE rpps IN "
            "(SELECT rpps FROM directory_change WHERE change <> 'added')"
        )
        execute(
            f"""
            INSERT INTO practitioner (rpps, {_COLUMNS}, updated_at)
            SELECT i.rpps, {incoming_columns}, now()
            FROM incoming_practitioner i JOIN directory_change d USING (rpps)
            WHERE d.change <> 'removed'
            ON CONFLICT (rpps) DO UPDATE SET
                {", ".join(f"{name} = EXCLUDED.{name}" for name in _PRACTITIONER_COLUMNS)},
                updated_at = EXCLUDED.updated_at
            """
        )
        execute(
            """
            INSERT INTO mailbox (rpps, address, mailbox_type, domain)
            SELECT m.rpps, m.address, m.mailbox_type, m.domain
            FROM incoming_mailbox m JOIN directory_change d USING (rpps)
            WHERE d.change <> 'removed'
            """
        )
        # Fresh statistics for what follows in this transaction (reading the changed states
        # back), above all after a first import into empty tables.
        execute("ANALYZE practitioner; ANALYZE mailbox")
        totals = self._one(
            """
            SELECT (SELECT count(*) FROM practitioner) AS practitioners,
                   (SELECT count(*) FROM mailbox) AS mailboxes,
                   (SELECT count(*) FROM practitioner p
                    WHERE NOT EXISTS (SELECT FROM mailbox m WHERE m.rpps = p.rpps))
                     AS without_mailbox
            """
        )
        return Changes(
            added=counts["added"],
            changed=counts["changed"],
            removed=counts["removed"],
            practitioners=totals["practitioners"],
            mailboxes=totals["mailboxes"],
            mailboxes_added=mailbox_counts["mailboxes_added"],
            mailboxes_removed=mailbox_counts["mailboxes_removed"],
            without_mailbox=totals["without_mailbox"],
            mailboxes_of_unknown_practitioners=mailbox_counts["mailboxes_of_unknown_practitioners"],
        )

    def record_import(
        self, personnes: Path, mssante: Path, rows_read: int, bad_rows: int, changes: Changes
    ) -> None:
        self.conn.execute(
            """
            INSERT INTO directory_import (personnes_file, mssante_file, rows_read, bad_rows,
                                          added, changed, removed, practitioners, mailboxes)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (
                str(personnes),
                str(mssante),
                rows_read,
                bad_rows,
                changes.added,
                changes.changed,
                changes.removed,
                changes.practitioners,
                changes.mailboxes,
            ),
        )

    # --- preferences --------------------------------------------------------------------

    def set_preferences(
        self,
        rpps: str,
        *,
        opted_out: bool | None = None,
        preferred_address: str | None = None,
        clear_preferred_address: bool = False,
        event_kinds: Iterable[str] | None = None,
        mode: str | None = None,
        digest_hour: int | None = None,
    ) -> None:
        """Change what is given, keep the rest."""
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
        if self._one("SELECT count(*) AS n FROM practitioner WHERE rpps = %s", (rpps,))["n"] == 0:
            raise DirectoryError(f"no practitioner with RPPS {rpps} in the directory")
        if preferred_address is not None:
            preferred_address = preferred_address.strip().lower()
            known = self._one(
                "SELECT count(*) AS n FROM mailbox WHERE rpps = %s AND address = %s",
                (rpps, preferred_address),
            )["n"]
            if not known:
                raise DirectoryError(
                    f"{preferred_address} is not one of the secure mailboxes of {rpps}"
                )
        self.conn.execute(
            """
            INSERT INTO practitioner_preferences AS p
                (rpps, opted_out, preferred_address, event_kinds, mode, digest_hour)
            VALUES (%(rpps)s, coalesce(%(opted_out)s, false), %(preferred)s, %(kinds)s,
                    coalesce(%(mode)s, 'REALTIME'), %(hour)s)
            ON CONFLICT (rpps) DO UPDATE SET
                opted_out = coalesce(%(opted_out)s, p.opted_out),
                preferred_address = CASE WHEN %(clear)s THEN NULL
                                         ELSE coalesce(%(preferred)s, p.preferred_address) END,
                event_kinds = coalesce(%(kinds)s, p.event_kinds),
                mode = coalesce(%(mode)s, p.mode),
                digest_hour = coalesce(%(hour)s, p.digest_hour),
                updated_at = now()
            """,
            {
                "rpps": rpps,
                "opted_out": opted_out,
                "preferred": preferred_address,
                "clear": clear_preferred_address,
                "kinds": None if event_kinds is None else sorted(event_kinds),
                "mode": mode,
                "hour": digest_hour,
            },
        )

    # --- changed states ---------------------------------------------------------------

    def changed_states(self, page_size: int = 5_000) -> Iterator[list[PractitionerState]]:
        """The new state of every practitioner the import changed, page by page.

        Read through a server-side cursor, so a first import (every practitioner changed)
        never sits in memory, and the caller may use the connection between pages.
        """
        with self.conn.cursor(name="directory_changed_states", row_factory=dict_row) as cursor:
            cursor.execute(_states("SELECT rpps FROM directory_change"))
            while rows := cursor.fetchmany(page_size):
                yield [_state(row) for row in rows]

    def state_of(self, rpps: str) -> PractitionerState:
        with self.conn.cursor(row_factory=dict_row) as cursor:
            row = cursor.execute(
                _states("SELECT %s::text AS rpps"),
                (rpps,),
            ).fetchone()
        assert row is not None
        return _state(row)

    # --- reading ------------------------------------------------------------------------

    def practitioner_states(self) -> Iterator[dict[str, Any]]:
        """Every practitioner with mailboxes and preferences, in RPPS order (for checks)."""
        with self.conn.cursor(row_factory=dict_row) as cursor:
            yield from cursor.execute(
                f"""
                SELECT p.rpps, {", ".join(f"p.{name}" for name in _PRACTITIONER_COLUMNS)},
                       coalesce(f.opted_out, false) AS opted_out, f.preferred_address,
                       coalesce((SELECT array_agg(m.address ORDER BY m.address)
                                 FROM mailbox m WHERE m.rpps = p.rpps), '{{}}') AS addresses
                FROM practitioner p LEFT JOIN practitioner_preferences f USING (rpps)
                ORDER BY p.rpps
                """
            )

    def _one(self, query: str, params: Sequence[Any] | None = None) -> dict[str, Any]:
        with self.conn.cursor(row_factory=dict_row) as cursor:
            row = cursor.execute(query, params).fetchone()
        assert row is not None
        return row


def _state(row: dict[str, Any]) -> PractitionerState:
    # The row is the state as it is: ``practitioner_record`` ignores the extra "wanted" column.
    return row["wanted"], None if row["rpps"] is None else row
