"""The roles, schemas and grants planned from the access declaration, before any database."""

from __future__ import annotations

from psycopg import sql

from services.common.access import Principal, declared_principals
from services.stack.roles import ClusterState, memberships, plan_database, plan_roles

OWNER = Principal("notify", "", schema=True)
READER = Principal("dashboard", "", views_of=("notify",))
KAFKA_ONLY = Principal("gateway", "")
TESTS = Principal("tests", "", schema=True, local_only=True)
DECLARED = [OWNER, READER, KAFKA_ONLY, TESTS]


def text(statements: list[sql.Composed | sql.SQL]) -> list[str]:
    return [statement.as_string(None) for statement in statements]


def test_a_reader_joins_the_owners_reader_group_and_nothing_else() -> None:
    assert memberships(DECLARED) == {"notify_reader": {"dashboard"}, "notify": {"tests"}}


def test_only_the_roles_that_use_the_database_may_connect_and_nobody_uses_public() -> None:
    planned = text(plan_database("harpicoop", DECLARED))
    assert 'REVOKE ALL ON DATABASE "harpicoop" FROM PUBLIC' in planned
    assert "REVOKE ALL ON SCHEMA public FROM PUBLIC" in planned
    connect = {line.rsplit(" ", 1)[1] for line in planned if line.startswith("GRANT CONNECT")}
    assert connect == {'"notify"', '"dashboard"', '"tests"'}
    assert not [line for line in planned if "gateway" in line]
    assert 'CREATE SCHEMA IF NOT EXISTS "notify" AUTHORIZATION "notify"' in planned
    assert 'GRANT USAGE ON SCHEMA "notify" TO "notify_reader"' in planned
    # Readers get the schema's names; SELECT is the owner's to grant, on its views only.
    assert not [line for line in planned if "SELECT" in line or "ON TABLE" in line]


def test_roles_are_made_once_and_only_what_differs_changes() -> None:
    first = text(plan_roles(DECLARED, ClusterState(), lambda name: f"secret-{name}"))
    assert 'CREATE ROLE "notify" LOGIN' in first and 'CREATE ROLE "notify_reader" NOLOGIN' in first
    assert 'ALTER ROLE "notify" SET search_path = "notify"' in first
    assert 'ALTER ROLE "tests" SET search_path = "tests", "notify"' in first, (
        "the tests read every owner's tables unqualified, their own objects first"
    )
    assert not [line for line in first if line.startswith('ALTER ROLE "dashboard" SET')]
    assert 'GRANT "notify_reader" TO "dashboard"' in first
    assert any("PASSWORD 'secret-dashboard'" in line and "NOSUPERUSER" in line for line in first)
    assert not [line for line in first if "gateway" in line], "a Kafka-only service has no role"

    settled = ClusterState(
        roles=frozenset({"notify", "dashboard", "gateway", "tests", "notify_reader"}),
        search_paths={"notify": "notify", "tests": "tests, notify"},
        members=frozenset({("notify_reader", "dashboard"), ("notify", "tests")}),
    )
    assert text(plan_roles(DECLARED, settled, None)) == []


def test_a_right_taken_out_of_the_declaration_is_revoked() -> None:
    before = ClusterState(
        roles=frozenset({"notify", "dashboard", "operator", "tests", "notify_reader"}),
        search_paths={"notify": "notify", "tests": "tests, notify"},
        members=frozenset({("notify_reader", "dashboard"), ("notify_reader", "operator")}),
    )
    planned = text(plan_roles(DECLARED, before, None))
    assert 'REVOKE "notify_reader" FROM "operator"' in planned
    assert 'GRANT "notify" TO "tests"' in planned


def test_the_declaration_gives_the_dashboard_and_the_operator_views_only() -> None:
    principals = declared_principals()
    groups = memberships(principals.values())
    for reader in ("dashboard", "operator"):
        assert not principals[reader].schema
        joined = {group for group, members in groups.items() if reader in members}
        assert joined == {f"{schema}_reader" for schema in principals[reader].views_of}
    assert {name for name, who in principals.items() if who.schema} == {
        "notify",
        "analytics",
        "covid",
        "directory",
        "tests",
    }
