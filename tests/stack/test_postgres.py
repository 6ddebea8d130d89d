"""PostgreSQL as the local stack runs it, on a throwaway cluster of its own: started from a folder
closed to other users (a clone in root's home), its roles provisioned from ``deploy/access.toml``
by the stack's own bootstrap, and test databases made as the ``empty_database`` fixture makes
them. Each principal can do what the declaration says, and nothing else.

The shared stack's cluster is never touched: this one has its own port, folder and secrets.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from services.common import outbox
from services.common.access import declared_principals
from services.common.db import apply_migrations
from services.common.paths import PROJECT_ROOT
from services.stack.__main__ import clean
from services.stack.components import Postgres
from services.stack.layout import StackLayout
from tests.support import DatabaseServer, as_principal, free_port

OWNERS = ("notify", "analytics", "covid", "directory")


def closed_layout() -> StackLayout:
    """A stack folder inside a 0700 folder, as a clone in root's home."""
    closed = Path(tempfile.mkdtemp(prefix="harpicoop-closed-"))
    os.chmod(closed, 0o700)
    layout = StackLayout(closed / "clone" / ".stack")
    layout.make_dirs()
    return layout


def started(layout: StackLayout) -> Postgres:
    postgres = Postgres(layout, port=free_port())
    postgres.start()
    postgres.wait_healthy()
    return postgres


@pytest.fixture(scope="module")
def cluster() -> Iterator[Postgres]:
    """A throwaway cluster bootstrapped as ``make up`` does; its secrets are the ones
    ``LocalSecrets.default()`` finds while it runs (``HARPICOOP_STACK_DIR``), as for a stack of
    one's own. Stopped and removed, folder outside included, at the end."""
    layout = closed_layout()
    previous = os.environ.get("HARPICOOP_STACK_DIR")
    os.environ["HARPICOOP_STACK_DIR"] = str(layout.root)
    postgres = started(layout)
    try:
        postgres.bootstrap()
        yield postgres
    finally:
        postgres.stop()
        clean(layout)
        shutil.rmtree(layout.root.parent.parent, ignore_errors=True)
        if previous is None:
            os.environ.pop("HARPICOOP_STACK_DIR", None)
        else:
            os.environ["HARPICOOP_STACK_DIR"] = previous


@pytest.fixture
def migrated(cluster: Postgres) -> Iterator[str]:
    """A test database made as ``empty_database`` makes it, each owner's migrations applied as
    that owner (the common outbox included, as the services do); the tests' role's URL."""
    server = DatabaseServer(cluster.superuser_conninfo(), "localhost", cluster.port, True)
    name = f"test_{uuid.uuid4().hex[:10]}"
    url = server.create(name)
    for owner in OWNERS:
        with psycopg.connect(as_principal(url, owner)) as conn:
            apply_migrations(conn, "common", outbox.MIGRATIONS)
            apply_migrations(conn, owner, PROJECT_ROOT / "services" / owner / "migrations")
    yield url
    server.drop(name)


def refused(url: str, statement: str) -> bool:
    """True when PostgreSQL refuses ``statement`` to the URL's role for want of a right."""
    try:
        with psycopg.connect(url) as conn:
            conn.execute(statement)  # type: ignore[arg-type]  # the tests' own statements
    except psycopg.errors.InsufficientPrivilege:
        return True
    except psycopg.OperationalError as error:
        return "permission denied" in str(error)
    return False


def test_a_clone_in_a_closed_folder_keeps_postgres_data_where_its_user_reaches() -> None:
    if os.geteuid() != 0:
        pytest.skip("as another user than root, the server runs as that user, in the clone")
    layout = closed_layout()
    postgres = started(layout)
    try:
        assert postgres.outside and postgres.home == layout.postgres_outside
        assert (postgres.data / "PG_VERSION").exists()
        assert postgres.log.parent == postgres.home and postgres.log.stat().st_size > 0
        assert str(postgres.home) in postgres.where() and "make clean" in postgres.where()
        assert (postgres.home / "checkout").read_text().strip() == str(layout.root)
        # The superuser's socket is open to the server's user only (and root).
        assert postgres.socket_dir.stat().st_mode & 0o077 == 0
        assert postgres.stop()
        # A restart finds the same cluster.
        assert Postgres(layout, port=postgres.port).home == postgres.home
    finally:
        postgres.stop()
        clean(layout)
    assert not postgres.home.exists() and not layout.root.exists()
    shutil.rmtree(layout.root.parent.parent)


def test_every_object_of_a_migration_belongs_to_the_service_it_is_for(
    cluster: Postgres, migrated: str
) -> None:
    with psycopg.connect(migrated) as conn:
        owners = conn.execute(
            "SELECT c.relname, n.nspname, pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'v', 'S') AND n.nspname = ANY(%s)",
            (list(OWNERS),),
        ).fetchall()
        public = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public'"
        ).fetchone()
    assert {schema for _, schema, _ in owners} == set(OWNERS)
    assert all(owner == schema for _, schema, owner in owners), owners
    assert {"notification", "v_notices", "outbox", "schema_migrations"} <= {
        name for name, schema, _ in owners if schema == "notify"
    }
    assert public == (0,)


def test_a_service_cannot_touch_another_services_tables(migrated: str) -> None:
    notify = as_principal(migrated, "notify")
    assert refused(notify, "SELECT * FROM covid.covid_case")
    assert refused(notify, "SELECT * FROM covid.v_cases"), "notify reads no covid view"
    assert refused(notify, "DELETE FROM analytics.analytics_counts"), "nor writes analytics' counts"
    assert refused(as_principal(migrated, "analytics"), "SELECT * FROM notify.notification")
    assert refused(as_principal(migrated, "covid"), "SELECT * FROM directory.practitioner")
    assert not refused(notify, "SELECT count(*) FROM notification")


@pytest.mark.parametrize("reader", ["dashboard", "operator"])
def test_the_dashboard_and_the_operator_read_published_views_only(
    migrated: str, reader: str
) -> None:
    url = as_principal(migrated, reader)
    for view in ("notify.v_notices", "covid.v_cases", "analytics.v_counts"):
        assert not refused(url, f"SELECT * FROM {view}"), view
    assert not refused(url, "SELECT * FROM analytics.daily_stays")
    for table in ("notify.notification", "covid.covid_case", "analytics.analytics_counts"):
        assert refused(url, f"SELECT * FROM {table}"), table
    assert refused(url, "SELECT * FROM notify.outbox")
    # No write, not even through a view PostgreSQL could update.
    assert refused(url, "DELETE FROM notify.v_notices")
    assert refused(url, "UPDATE covid.v_cases SET state = 'CLOSED'")
    directory = refused(url, "SELECT * FROM directory.v_imports")
    assert directory == ("directory" not in declared_principals()[reader].views_of)
    assert refused(url, "SELECT * FROM directory.practitioner")


def test_nobody_creates_in_public_nor_a_schema_of_their_own(migrated: str) -> None:
    for name, who in declared_principals().items():
        if who.schema or who.views_of:
            url = as_principal(migrated, name)
            assert refused(url, "CREATE TABLE public.smuggled (id int)"), name
            assert refused(url, f"CREATE SCHEMA smuggled_{name}"), name


def test_only_the_principals_that_need_it_reach_the_database(cluster: Postgres) -> None:
    for name in ("notify", "dashboard", "operator"):
        assert not refused(cluster.role_url(name), "SELECT 1"), name
    # Kafka-only services, and the schema registry, have no business in the platform's database.
    assert refused(cluster.role_url("gateway"), "SELECT 1")
    assert refused(cluster.role_url("registry"), "SELECT 1")
    # Nor any service in the registry's.
    assert refused(cluster.role_url("notify", cluster.registry_database), "SELECT 1")
    assert not refused(
        cluster.role_url("registry", cluster.registry_database),
        "CREATE TABLE IF NOT EXISTS artifacts (id int)",
    )


def test_no_principal_has_an_attribute_beyond_login(cluster: Postgres) -> None:
    with psycopg.connect(cluster.superuser_conninfo()) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper OR rolcreatedb OR rolcreaterole OR rolbypassrls, "
            "rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)",
            ([*declared_principals(), cluster.registry_role],),
        ).fetchall()
    assert len(rows) == len(declared_principals()) + 1
    assert all(login and not privileged for _, privileged, login in rows), rows


def test_a_changed_password_file_is_followed_by_the_next_bootstrap(cluster: Postgres) -> None:
    before = cluster.role_url("covid")
    cluster.secrets.path("covid").unlink()
    after = cluster.role_url("covid")
    assert before != after
    cluster.bootstrap()
    assert not refused(after, "SELECT 1")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(before).close()
