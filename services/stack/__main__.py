"""``python -m services.stack up|down|clean|status|contract|topics|schemas|roles|tls``: the local
stack, as ``make up`` and ``make down``; ``contract`` deploys only the topics, schemas and
migrations, to any cluster the environment names; ``topics`` and ``schemas`` only create the
missing topics and register the schemas, for a deployment where each service migrates its own
schema as its owner when it starts (compose runs both; on Kubernetes the Topic Operator makes the
topics, so ``schemas`` alone); ``roles`` provisions the roles, schemas and grants of
``deploy/access.toml`` in the database of ``DATABASE_URL``, an administrator's (passwords are the
administrator's to set); ``tls`` only writes the local CA and the MLLP certificates under
``.stack/tls/`` (``up`` does it too).

``up`` runs Kafka as one node, or as three (``HARPICOOP_BROKERS=3``, ``make up BROKERS=3``;
``services.stack.brokers``) which later commands find without being told. It installs what is
missing, starts each component, waits for its health check, provisions
PostgreSQL's roles from ``deploy/access.toml``, then deploys the platform's contract: every
declared topic, ``deploy/access.toml`` as each principal's SCRAM credential and Kafka ACLs
(applied as the broker's super user ``admin``), every value schema (BACKWARD compatible), every
owner's database migrations (run as that owner). Running it twice is harmless. ``clean`` removes
what ``up`` made, PostgreSQL's data kept outside the stack folder included (``make clean``, after
``down``).

``contract --acls`` and ``topics --acls`` also apply the declaration's ACLs (not its credentials,
which a real cluster keeps elsewhere) to a cluster that is the platform's own and not managed by
Strimzi; they run as the principal the environment names, which must be allowed to alter the
cluster's ACLs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import sys
import time

from services.common import outbox
from services.common.access import ADMIN, LocalSecrets, declared_principals
from services.common.acls import apply_access
from services.common.db import apply_migrations, connect
from services.common.kafka import make_admin
from services.common.paths import PROJECT_ROOT
from services.common.serde import SchemaCompatibilityError, make_registry_client, register_schemas
from services.common.settings import Settings
from services.common.topics import declared_topics, ensure_topics
from services.stack.brokers import (
    BrokerCountError,
    choose_brokers,
    remembered_brokers,
    requested_brokers,
)
from services.stack.components import (
    Component,
    Imap,
    Kafka,
    Postgres,
    Registry,
    Smtp,
    all_components,
    stop_together,
)
from services.stack.layout import StackLayout
from services.stack.process import StackError
from services.stack.roles import owners, provision
from services.stack.tls import ensure_tls


def _say(message: str) -> None:
    print(message, flush=True)


def deploy_contract(
    settings: Settings, *, acls: bool = False, credentials: LocalSecrets | None = None
) -> None:
    """Topics, schemas and migrations: what every service relies on being there (``acls`` and
    ``credentials``: as ``deploy_topics``)."""
    deploy_topics(settings, acls=acls, credentials=credentials)
    deploy_schemas(settings)
    migrate_as_owners(settings)


def migrate_as_owners(settings: Settings) -> None:
    """Each owner's migrations, and the common outbox's, in its own schema, connected as that
    owner: never as a superuser, so that what they create belongs to the service.

    Only where the environment gives each owner its own credentials (the local stack's
    secrets); elsewhere each service applies its own at start, as it always does.
    """
    for owner in owners(declared_principals().values()):
        folder = PROJECT_ROOT / "services" / owner / "migrations"
        if not folder.is_dir():
            continue
        as_owner = Settings.from_env(principal=owner)
        if as_owner.database_url == settings.database_url:
            _say("  migrations: each service applies its own at start (no owner credentials)")
            return
        with connect(as_owner) as conn:
            applied = apply_migrations(conn, "common", outbox.MIGRATIONS)
            applied += apply_migrations(conn, owner, folder)
        if applied:
            _say(f"  migrations of {owner} (as {owner}): {', '.join(applied)}")


def deploy_topics(
    settings: Settings, *, acls: bool = False, credentials: LocalSecrets | None = None
) -> None:
    """Every declared topic that does not exist yet (an existing one is never changed). With
    ``acls``, the access declaration's ACLs too; with ``credentials`` (the local stack's
    passwords), each principal's SCRAM credential and the local-only principals (the tests')."""
    admin = make_admin(settings)
    specs = declared_topics()
    created = ensure_topics(admin, specs)
    _say(f"  topics: {len(specs)} declared, {len(created)} created")
    if acls or credentials is not None:
        _say(f"  access: {apply_access(admin, local=credentials)}")


def deploy_schemas(settings: Settings) -> None:
    """Every value schema, registered with BACKWARD compatibility: a release that would break a
    consumer stops here. Needs the registry only."""
    ids = register_schemas(make_registry_client(settings), declared_topics())
    _say(f"  schemas: {len(ids)} subjects registered (BACKWARD)")


def tls(layout: StackLayout) -> None:
    written = ensure_tls(layout.tls)
    done = f"{', '.join(written)} written" if written else "certificates kept"
    _say(f"  tls: {done} in {layout.tls}")


def stack_brokers(layout: StackLayout) -> int:
    """How many Kafka nodes ``up`` starts: ``HARPICOOP_BROKERS`` (``make up BROKERS=3``), else
    as many as the stack was made with, else one; a count its data was not made with is
    refused (``services.stack.brokers.choose_brokers``)."""
    try:
        return choose_brokers(
            requested_brokers(os.environ),
            remembered_brokers(layout.kafka_bootstrap, layout.kafka / "data"),
            data_exists=any(layout.kafka.glob("**/meta.properties")),
        )
    except BrokerCountError as error:
        raise StackError(str(error)) from None


def remember_brokers(layout: StackLayout, nodes: list[Kafka]) -> None:
    """Write the cluster's bootstrap list, which ``make down``/``status``, the tests and every
    service's default settings read (``Settings.from_env``)."""
    servers = nodes[0].bootstrap_servers + "\n"
    with contextlib.suppress(FileNotFoundError):
        if layout.kafka_bootstrap.read_text(encoding="ascii") == servers:
            return
    layout.kafka_bootstrap.parent.mkdir(parents=True, exist_ok=True)
    layout.kafka_bootstrap.write_text(servers, encoding="ascii")


def up(layout: StackLayout, components: list[Component] | None = None) -> list[Component]:
    """Start ``components`` (every one by default, with ``stack_brokers`` Kafka nodes) and deploy
    the contract; those it started, for a caller that stops only what it started (``down``'s
    ``components``)."""
    started = time.monotonic()
    layout.make_dirs()
    tls(layout)
    components = all_components(layout, stack_brokers(layout)) if components is None else components
    nodes = [item for item in components if isinstance(item, Kafka)]
    remember_brokers(layout, nodes)
    newly_started: list[Component] = []
    _say(f"Local stack under {layout.root}")
    for component in components:
        component.install()
    postgres = next(item for item in components if isinstance(item, Postgres))
    for component in components:
        was_started = component.start()
        if was_started:
            newly_started.append(component)
        _say(
            f"  {component.name:9} {'starting' if was_started else 'already running'} "
            f"(port {component.port}, log {component.log})"
        )
        if isinstance(component, Imap):
            _say(f"  {'':9} {component.where()}")
        if component is postgres:
            _say(f"  {'':9} {postgres.where()}")
            # The registry keeps its data here: it must be up before the registry starts.
            postgres.wait_healthy()
            postgres.bootstrap()
    for component in components:
        component.wait_healthy()
        _say(f"  {component.name:9} healthy")
    kafka = nodes[0]
    # Kafka as its super user, the one principal that may create topics and apply the ACLs.
    admin = dataclasses.replace(
        Settings.from_env(),
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        kafka_security=kafka.security(ADMIN),
    )
    deploy_contract(admin, credentials=kafka.secrets)
    brokers = f"{len(nodes)} brokers " if len(nodes) > 1 else ""
    _say(
        f"Stack up in {time.monotonic() - started:.1f} s: Kafka {brokers}"
        f"{kafka.bootstrap_servers}, registry "
        f"http://localhost:{Registry.port}/apis/ccompat/v7, PostgreSQL localhost:{Postgres.port}, "
        f"SMTP localhost:{Smtp.port} "
        f"(mail in {layout.mail}), IMAP localhost:{Imap.port} (the platform's mailbox)"
    )
    return newly_started


def down(layout: StackLayout, components: list[Component] | None = None) -> None:
    components = all_components(layout) if components is None else components
    nodes = [item for item in components if isinstance(item, Kafka)]
    for component in reversed(components):
        if isinstance(component, Kafka):
            # The nodes of a cluster go together (``stop_together``), when the first is reached.
            if component is nodes[0]:
                stopped_nodes = stop_together(nodes)
                for node in nodes:
                    state = "stopped" if node in stopped_nodes else "not running"
                    _say(f"  {node.name:9} {state}")
            continue
        stopped = component.stop()
        _say(f"  {component.name:9} {'stopped' if stopped else 'not running'}")


def clean(layout: StackLayout) -> None:
    """Everything ``up`` made: the stack folder and PostgreSQL's data kept outside it."""
    for server in (Postgres(layout), Imap(layout)):
        removed = server.forget()
        if removed:
            _say(f"  {server.name:9} removed {removed}")
    shutil.rmtree(layout.root, ignore_errors=True)
    _say(f"  removed {layout.root}")


def status(layout: StackLayout) -> int:
    unhealthy = 0
    for component in all_components(layout):
        if not component.running():
            state = "stopped"
            unhealthy += 1
        elif component.healthy():
            state = f"healthy (pid {component.pid()})"
        else:
            state = f"running but not answering (pid {component.pid()}); read {component.log}"
            unhealthy += 1
        _say(f"  {component.name:9} port {component.port:<5} {state}")
        if isinstance(component, Kafka) and len(component.cluster) > 1:
            _say(f"  {'':9} controller port {component.controller_port}, data {component.data}")
    return 1 if unhealthy else 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.stack", description=__doc__)
    parser.add_argument(
        "command",
        choices=["up", "down", "clean", "status", "contract", "topics", "schemas", "roles", "tls"],
    )
    parser.add_argument(
        "--acls",
        action="store_true",
        help="contract, topics: also apply deploy/access.toml as ACLs (a cluster that is the "
        "platform's own and not managed by Strimzi)",
    )
    args = parser.parse_args()
    layout = StackLayout.default()
    try:
        if args.command == "up":
            up(layout)
        elif args.command == "down":
            down(layout)
        elif args.command == "clean":
            down(layout)
            clean(layout)
        elif args.command == "tls":
            tls(layout)
        elif args.command == "contract":
            deploy_contract(Settings.from_env(principal=ADMIN), acls=args.acls)
        elif args.command == "topics":
            deploy_topics(Settings.from_env(principal=ADMIN), acls=args.acls)
        elif args.command == "schemas":
            deploy_schemas(Settings.from_env())
        elif args.command == "roles":
            deployed = [who for who in declared_principals().values() if not who.local_only]
            with connect(Settings.from_env()) as conn:
                provision(conn, deployed)
        else:
            sys.exit(status(layout))
    except (StackError, SchemaCompatibilityError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
