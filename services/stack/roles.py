"""PostgreSQL roles, schemas and grants, from ``deploy/access.toml``: one function, ``provision``,
for the stack's database, every test database and a real server's (``python -m services.stack
roles``); its plan, rendered, is the compose deployment's init script.

- Every principal that uses the database is a LOGIN role of its name, with no attribute beyond
  LOGIN, and may connect; no other role may (a Kafka-only service has no role at all).
- A principal with ``schema = true`` owns the schema of its name, and its search path is that
  schema alone: its migrations and queries, written unqualified, land there and nowhere else.
- An owner publishes what others may read by granting SELECT on views to ``<schema>_reader``
  (a NOLOGIN group role, in its own migrations); ``views_of`` makes a principal a member of that
  group. A reader thus gets USAGE on the schema and SELECT on the published views, never on a
  table: a view runs with its owner's rights.
- Nobody may use or create in ``public``.
- The tests' principal (local only) is a member of every owner: it plays each service to seed
  and inspect their tables, while the services it starts connect as themselves.

The database belongs to the administrator who runs this (the cluster's superuser locally), not
to any service: the owner of a database owns its ``public`` schema too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from services.common.access import TESTS, AccessError, Principal

Statement = sql.Composed | sql.SQL


def reader_role(schema: str) -> str:
    """The group role an owner grants its published views to."""
    return f"{schema}_reader"


def owners(principals: Iterable[Principal]) -> list[str]:
    return [who.name for who in principals if who.schema]


def search_path(who: Principal, principals: Iterable[Principal]) -> str | None:
    """The role's search path: its own schema; for the tests, theirs first then every owner's
    (a test reads a service's table unqualified); None for a pure reader, who names the view's
    schema in every query."""
    if who.name == TESTS:
        return ", ".join([TESTS] + [name for name in owners(principals) if name != TESTS])
    return who.name if who.schema else None


def memberships(principals: Iterable[Principal]) -> dict[str, set[str]]:
    """Group role -> the declared members: the readers of each owner's views, and the tests in
    every owner role."""
    listed = list(principals)
    groups: dict[str, set[str]] = {
        reader_role(name): set() for name in owners(listed) if name != TESTS
    }
    for who in listed:
        for schema in who.views_of:
            if reader_role(schema) not in groups:
                raise AccessError(f"{who.name} reads views of {schema!r}, which owns no schema")
            groups[reader_role(schema)].add(who.name)
    if any(who.name == TESTS for who in listed):
        for name in owners(listed):
            if name != TESTS:
                groups.setdefault(name, set()).add(TESTS)
    return groups


def database_users(principals: Iterable[Principal]) -> list[Principal]:
    """The principals that get a role: those that connect (the tests' principal owns a schema)."""
    return [who for who in principals if who.uses_database]


@dataclass(frozen=True)
class ClusterState:
    """What the cluster holds already, read before planning so that only what differs changes
    (role rows are shared by every database: rewriting them from several sessions at once fails
    with "tuple concurrently updated")."""

    roles: frozenset[str] = frozenset()
    search_paths: Mapping[str, str] = field(default_factory=dict)
    """Role -> its ``search_path`` setting, for roles that have one."""
    members: frozenset[tuple[str, str]] = frozenset()
    """(group, member) pairs, for the groups this module manages."""


def plan_roles(
    principals: Iterable[Principal],
    state: ClusterState,
    password_of: Callable[[str], str] | None,
) -> list[Statement]:
    """The cluster-wide statements: roles, passwords (when ``password_of`` is given: they follow
    the secrets file), search paths and group memberships."""
    listed = database_users(principals)
    statements: list[Statement] = []
    groups = memberships(listed)
    for who in listed:
        role = sql.Identifier(who.name)
        if who.name not in state.roles:
            statements.append(sql.SQL("CREATE ROLE {} LOGIN").format(role))
        if password_of is not None:
            statements.append(
                sql.SQL(
                    "ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                    "NOBYPASSRLS PASSWORD {}"
                ).format(role, sql.Literal(password_of(who.name)))
            )
        wanted = search_path(who, listed)
        if wanted is not None and state.search_paths.get(who.name) != wanted:
            names = sql.SQL(", ").join(sql.Identifier(part) for part in wanted.split(", "))
            statements.append(sql.SQL("ALTER ROLE {} SET search_path = {}").format(role, names))
    for group in groups:
        if group not in state.roles and group.endswith("_reader"):
            statements.append(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
    for group, members in groups.items():
        for member in sorted(members - {m for g, m in state.members if g == group}):
            statements.append(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(member))
            )
    for group, member in sorted(state.members):
        if member not in groups.get(group, set()):
            statements.append(
                sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), sql.Identifier(member))
            )
    return statements


def plan_database(database: str, principals: Iterable[Principal]) -> list[Statement]:
    """The statements of one database: who may connect, the owners' schemas, nothing in public."""
    listed = database_users(principals)
    db = sql.Identifier(database)
    statements: list[Statement] = [
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db),
        sql.SQL("REVOKE ALL ON SCHEMA public FROM PUBLIC"),
    ]
    statements += [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, sql.Identifier(who.name))
        for who in listed
    ]
    readers = memberships(listed)
    for name in owners(listed):
        schema = sql.Identifier(name)
        statements += [
            # An owner's work may stage rows in temporary tables (the directory's import does);
            # revoked from PUBLIC above, so given back to owners only.
            sql.SQL("GRANT TEMPORARY ON DATABASE {} TO {}").format(db, schema),
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(schema, schema),
            sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(schema, schema),
            sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema),
        ]
        if reader_role(name) in readers:
            statements.append(
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                    schema, sql.Identifier(reader_role(name))
                )
            )
    return statements


def read_state(conn: psycopg.Connection[Any], principals: Iterable[Principal]) -> ClusterState:
    groups = list(memberships(database_users(principals)))
    roles = {row[0] for row in conn.execute("SELECT rolname FROM pg_roles")}
    paths = {
        role: setting.partition("=")[2]
        for role, settings in conn.execute(
            "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s "
            "JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = 0"
        )
        for setting in settings or ()
        if setting.startswith("search_path=")
    }
    members = {
        (group, member)
        for group, member in conn.execute(
            "SELECT g.rolname, m.rolname FROM pg_auth_members a "
            "JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
            "WHERE g.rolname = ANY(%s)",
            (groups,),
        )
    }
    return ClusterState(frozenset(roles), paths, frozenset(members))


def provision(
    conn: psycopg.Connection[Any],
    principals: Iterable[Principal],
    password_of: Callable[[str], str] | None = None,
) -> None:
    """Roles, schemas and grants of ``access.toml`` in the database ``conn`` is connected to, as
    a superuser. Idempotent; passwords are (re)set only when ``password_of`` is given."""
    listed = database_users(principals)
    database = conn.info.dbname
    with conn.transaction():
        for statement in plan_roles(listed, read_state(conn, listed), password_of):
            conn.execute(statement)
        for statement in plan_database(database, listed):
            conn.execute(statement)
