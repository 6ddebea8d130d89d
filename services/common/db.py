"""PostgreSQL access: connections from DATABASE_URL and ordered SQL migrations per component.

Each component keeps its migrations as ``NNN_what.sql`` files in its own folder. They are applied
in order, each in its own transaction, under an advisory lock so that several replicas starting
together apply them once. An applied migration must not change: its checksum is kept and checked.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from services.common.settings import Settings

_MIGRATION_FILE = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
# Any fixed number: it names the lock that serialises migrations across processes.
_MIGRATION_LOCK = 0x4A525043


class MigrationError(RuntimeError):
    """The migrations folder or the database's migration history is not in a state to proceed."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def connect(settings: Settings | str, **kwargs: Any) -> psycopg.Connection[Any]:
    url = settings.database_url if isinstance(settings, Settings) else settings
    return psycopg.connect(url, **kwargs)


def discover_migrations(folder: Path) -> list[Migration]:
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNN_what.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [migration.version for migration in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{folder}: two migrations share a number")
    return sorted(migrations, key=lambda migration: migration.version)


def apply_migrations(conn: psycopg.Connection[Any], component: str, folder: Path) -> list[str]:
    """Apply what is new in ``folder`` for ``component``; returns the file names applied."""
    migrations = discover_migrations(folder)
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                component  text        NOT NULL,
                version    integer     NOT NULL,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            )
            """
        )
        done = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT version, checksum FROM schema_migrations WHERE component = %s",
                (component,),
            )
        }
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{migration.path} was changed after it was applied; add a new "
                        f"migration instead of editing an applied one"
                    )
                continue
            with conn.transaction():
                conn.execute(migration.sql)  # type: ignore[arg-type]  # trusted file
                conn.execute(
                    "INSERT INTO schema_migrations (component, version, name, checksum) "
                    "VALUES (%s, %s, %s, %s)",
                    (component, migration.version, migration.name, migration.checksum),
                )
            applied.append(migration.path.name)
    return applied
