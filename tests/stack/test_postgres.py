"""PostgreSQL as the local stack runs it, on a throwaway cluster of its own: started from a folder
closed to other users (a clone in root's home), its roles provisioned from ``deploy/access.toml``
by the stack's own bootstrap, and test databases made as the ``empty_database`` fixture makes
them. Each principal can do what the declaration says, and nothing else.

The shared stack's cluster is never touched: this one has its own port, folder and secrets.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import psycopg
import pytest

from services.common import settings as settings_module
from services.common.access import declared_principals
from services.common.settings import Settings
from services.stack.__main__ import clean, migrate_as_owners
from services.stack.components import Postgres
from services.stack.roles import database_users
from tests.support import OWNERS, closed_layout, started_postgres


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
    postgres = started_postgres(layout)
    try:
        assert postgres.outside and postgres.home == layout.postgres_outside
        assert (postgres.data / "PG_VERSION").exists()
        assert postgres.log.parent == postgres.home and postgres.log.stat().st_size > 0
        assert str(postgres.home) in postgres.where() and "make clean" in postgres.where()
        assert (postgres.home / "checkout").read_text().strip() == str(layout.root)
        # The superuser's socket is open to the server's user only (and root).
        assert postgres.socket_dir.stat().st_mode & 0o077 == 0
        assert postgres.stop()
        # A restart finds the same private_postgres.
        assert Postgres(layout, port=postgres.port).home == postgres.home
    finally:
        postgres.stop()
        clean(layout)
    assert not postgres.home.exists() and not layout.root.exists()
    shutil.rmtree(layout.root.parent.parent)


def test_every_object_of_a_migration_belongs_to_the_service_it_is_for(
    private_postgres: Postgres, owners_database: Callable[[str], str]
) -> None:
    with psycopg.connect(owners_database("tests")) as conn:
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


def test_a_service_cannot_touch_another_services_tables(
    owners_database: Callable[[str], str],
) -> None:
    notify = owners_database("notify")
    assert refused(notify, "SELECT * FROM covid.covid_case")
    assert refused(notify, "SELECT * FROM covid.v_cases"), "notify reads no covid view"
    assert refused(notify, "DELETE FROM analytics.analytics_counts"), "nor writes analytics' counts"
    assert refused(owners_database("analytics"), "SELECT * FROM notify.notification")
    assert refused(owners_database("covid"), "SELECT * FROM directory.practitioner")
    assert not refused(notify, "SELECT count(*) FROM notification")


@pytest.mark.parametrize("reader", ["dashboard", "operator"])
def test_the_dashboard_and_the_operator_read_published_views_only(
    owners_database: Callable[[str], str], reader: str
) -> None:
    url = owners_database(reader)
    for view in (
        "notify.v_notices",
        "notify.v_digest_lines",
        "covid.v_cases",
        "analytics.v_counts",
    ):
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
    # Resending a notice changes the ledger: the operator may ask for one, the dashboard not.
    resend = "SELECT * FROM notify.request_resend(gen_random_uuid(), true)"
    assert refused(url, resend) == ("notify" not in declared_principals()[reader].operates)
    # So does sending the waiting digests before their hour (the end of a simulated day).
    digests = "SELECT notify.send_digests_now()"
    assert refused(url, digests) == ("notify" not in declared_principals()[reader].operates)


def test_nobody_creates_in_public_nor_a_schema_of_their_own(
    owners_database: Callable[[str], str],
) -> None:
    for name, who in declared_principals().items():
        if who.schema or who.views_of:
            url = owners_database(name)
            assert refused(url, "CREATE TABLE public.smuggled (id int)"), name
            assert refused(url, f"CREATE SCHEMA smuggled_{name}"), name


def test_only_the_principals_that_need_it_reach_the_database(private_postgres: Postgres) -> None:
    for name in ("notify", "dashboard", "operator"):
        assert not refused(private_postgres.role_url(name), "SELECT 1"), name
    # A Kafka-only service has no role at all; the schema registry has no business here.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(private_postgres.role_url("gateway")).close()
    assert refused(private_postgres.role_url("registry"), "SELECT 1")
    # Nor any service in the registry's.
    assert refused(
        private_postgres.role_url("notify", private_postgres.registry_database), "SELECT 1"
    )
    assert not refused(
        private_postgres.role_url("registry", private_postgres.registry_database),
        "CREATE TABLE IF NOT EXISTS artifacts (id int)",
    )


def test_no_principal_has_an_attribute_beyond_login(private_postgres: Postgres) -> None:
    roles = [who.name for who in database_users(declared_principals().values())]
    with psycopg.connect(private_postgres.superuser_conninfo()) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper OR rolcreatedb OR rolcreaterole OR rolbypassrls, "
            "rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)",
            ([*roles, private_postgres.registry_role],),
        ).fetchall()
    assert len(rows) == len(roles) + 1
    assert all(login and not privileged for _, privileged, login in rows), rows


def test_a_changed_password_file_is_followed_by_the_next_bootstrap(
    private_postgres: Postgres,
) -> None:
    before = private_postgres.role_url("covid")
    private_postgres.secrets.path("covid").unlink()
    after = private_postgres.role_url("covid")
    assert before != after
    private_postgres.bootstrap()
    assert not refused(after, "SELECT 1")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(before).close()


def test_make_up_migrates_each_owner_as_itself_or_leaves_it_to_the_services(
    private_postgres: Postgres, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The stack's settings, as on a machine whose stack is this cluster.
    monkeypatch.setenv("HARPICOOP_STACK_DIR", str(private_postgres.layout.root))
    monkeypatch.setattr(settings_module, "LOCAL_POSTGRES", f"localhost:{private_postgres.port}")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    migrate_as_owners(Settings.from_env())
    assert "migrations of notify (as notify): 001_outbox.sql" in capsys.readouterr().out
    with psycopg.connect(private_postgres.superuser_conninfo(private_postgres.database)) as conn:
        owned = conn.execute(
            "SELECT DISTINCT n.nspname, pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'schema_migrations'"
        ).fetchall()
    assert sorted(owned) == sorted((owner, owner) for owner in OWNERS)

    # Where one DATABASE_URL is all there is (a cluster's contract job), the services do it.
    monkeypatch.setenv("DATABASE_URL", private_postgres.role_url("notify"))
    migrate_as_owners(Settings.from_env())
    assert "each service applies its own at start" in capsys.readouterr().out
