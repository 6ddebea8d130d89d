"""Where the local stack keeps downloads, data, logs and pid files, and which versions it runs."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from services.common.paths import DEPLOY_DIR, PROJECT_ROOT
from services.common.settings import LOCAL_KAFKA_BOOTSTRAP

VERSIONS_FILE = DEPLOY_DIR / "versions.mk"

OUTSIDE_STATE = Path("/var/lib/harpicoop")
"""Where PostgreSQL keeps a checkout's data when its server user cannot reach the stack folder
(a clone in root's home, closed to other users): one folder per checkout."""


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """The pinned versions, from the one file the Makefile includes too (``NAME := value``)."""
    versions: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Z0-9_]+)\s*:?=\s*(\S+)\s*$", line)
        if match:
            versions[match.group(1)] = match.group(2)
    return versions


@dataclass(frozen=True)
class StackLayout:
    """The state folder and everything under it."""

    root: Path
    shared_dist: Path | None = None
    """Another layout's downloads to reuse (a throwaway broker in a test needs no new fetch)."""

    @classmethod
    def default(cls) -> StackLayout:
        return cls(Path(os.environ.get("HARPICOOP_STACK_DIR", PROJECT_ROOT / ".stack")).resolve())

    @property
    def dist(self) -> Path:
        """Downloaded distributions (Kafka jars, the registry), reused across runs."""
        return self.shared_dist or self.root / "dist"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Pid files."""
        return self.root / "run"

    @property
    def kafka(self) -> Path:
        return self.root / "kafka"

    @property
    def kafka_bootstrap(self) -> Path:
        """The brokers the stack was made with, as a bootstrap list (``services.stack.brokers``)."""
        return self.root / LOCAL_KAFKA_BOOTSTRAP

    def kafka_node(self, node_id: int, count: int) -> Path:
        """A node's configuration and data: a single node keeps the folder it always had."""
        return self.kafka if count == 1 else self.kafka / f"node-{node_id}"

    @property
    def postgres(self) -> Path:
        return self.root / "postgres"

    @property
    def postgres_outside(self) -> Path:
        """This checkout's PostgreSQL folder under ``OUTSIDE_STATE``, named by a short hash of
        the stack folder's path so that two checkouts never share one."""
        key = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return OUTSIDE_STATE / key

    @property
    def imap(self) -> Path:
        """The IMAP server's configuration, users and mailboxes (``components.Imap``)."""
        return self.root / "imap"

    @property
    def imap_outside(self) -> Path:
        """As ``postgres_outside``, for the IMAP server's user."""
        return self.postgres_outside.with_name(f"{self.postgres_outside.name}-imap")

    @property
    def secrets(self) -> Path:
        """The principals' passwords (``services.common.access.LocalSecrets``)."""
        return self.root / "secrets"

    @property
    def mail(self) -> Path:
        """Every message the local SMTP server accepted, one ``.eml`` file each."""
        return self.root / "mail"

    @property
    def tls(self) -> Path:
        """The local GHT CA and the MLLP certificates it issued (``services.stack.tls``)."""
        return self.root / "tls"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def pidfile(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    def make_dirs(self) -> None:
        for folder in (self.dist, self.logs, self.run, self.kafka, self.postgres, self.mail):
            folder.mkdir(parents=True, exist_ok=True)


def reachable_by(path: Path, uid: int, gids: Collection[int]) -> bool:
    """True when the user ``uid`` (in groups ``gids``) may traverse every existing folder from
    ``/`` down to ``path``, by the permission bits the kernel checks (ACLs aside). Folders not
    made yet are the stack's to create with the right owner."""
    if uid == 0:
        return True
    for folder in [*reversed(path.parents), path]:
        try:
            info = folder.stat()
        except FileNotFoundError:
            return True
        if info.st_uid == uid:
            bit = stat.S_IXUSR
        elif info.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def postgres_home(
    inside: Path, outside: Path, server_uid: int | None, server_gids: Collection[int]
) -> Path:
    """Where PostgreSQL keeps its data, socket and log: in the stack folder (``inside``) when
    the server's user can reach it, else ``outside``. Once a cluster lives outside it stays
    there, even if the checkout's folder is opened later: its data is not moved behind the
    user's back. ``server_uid`` None: the server runs as us."""
    return server_home(inside, outside, server_uid, server_gids, Path("data") / "PG_VERSION")


def server_home(
    inside: Path,
    outside: Path,
    server_uid: int | None,
    server_gids: Collection[int],
    kept: Path,
) -> Path:
    """Where a server run as an unprivileged user keeps its state: ``inside`` the stack folder
    when that user can reach it, else ``outside``; once ``outside / kept`` exists (its state was
    made there), always ``outside``."""
    if (outside / kept).exists():
        return outside
    if server_uid is None or reachable_by(inside, server_uid, server_gids):
        return inside
    return outside
