"""Ordered SQL migrations apply to an empty database, once, and refuse an edited history."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.common.db import MigrationError, apply_migrations, connect, discover_migrations
from services.common.paths import PROJECT_ROOT

pytestmark = pytest.mark.integration

FIXTURE_MIGRATIONS = Path(__file__).parent.parent / "fixtures" / "migrations"


def test_migrations_apply_in_order_to_an_empty_database_and_only_once(empty_database: str) -> None:
    with connect(empty_database) as conn:
        assert apply_migrations(conn, "wards", FIXTURE_MIGRATIONS) == [
            "001_create_wards.sql",
            "002_add_ward_beds.sql",
        ]
        assert apply_migrations(conn, "wards", FIXTURE_MIGRATIONS) == []
        assert conn.execute("SELECT code, beds FROM wards").fetchall() == [("CARDIO", 24)]


def test_every_service_migrates_an_empty_database(empty_database: str) -> None:
    folders = sorted(PROJECT_ROOT.glob("services/*/migrations"))
    with connect(empty_database) as conn:
        for folder in folders:
            expected = [migration.path.name for migration in discover_migrations(folder)]
            assert apply_migrations(conn, folder.parent.name, folder) == expected


def test_an_applied_migration_that_was_edited_is_refused(
    empty_database: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(FIXTURE_MIGRATIONS, folder)
    with connect(empty_database) as conn:
        apply_migrations(conn, "wards", folder)
        (folder / "001_create_wards.sql").write_text("CREATE TABLE wards (code text);\n")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            apply_migrations(conn, "wards", folder)


def test_a_failing_migration_leaves_nothing_half_applied(
    empty_database: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(FIXTURE_MIGRATIONS, folder)
    (folder / "003_broken.sql").write_text("ALTER TABLE wards ADD COLUMN x int; SELECT nonsense;\n")
    with connect(empty_database) as conn, pytest.raises(Exception, match="nonsense"):
        apply_migrations(conn, "wards", folder)
    with connect(empty_database) as conn:
        # One run is one transaction: the good migrations before the broken one are undone too.
        tables = conn.execute("SELECT to_regclass('wards'), to_regclass('schema_migrations')")
        assert tables.fetchone() == (None, None)
