"""Where the local stack keeps downloads, data, logs and pid files, and which versions it runs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from services.common.paths import DEPLOY_DIR, PROJECT_ROOT

VERSIONS_FILE = DEPLOY_DIR / "versions.mk"


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
    def postgres(self) -> Path:
        return self.root / "postgres"

    @property
    def mail(self) -> Path:
        """Every message the local SMTP server accepted, one ``.eml`` file each."""
        return self.root / "mail"

    @property
    def tls(self) -> Path:
        """The local GHT CA and the MLLP certificates it issued (``services.stack.tls``)."""
        return self.root / "tls"

    @property
    def secrets(self) -> Path:
        """One password per principal of ``deploy/access.toml``, and the Kafka super user's
        (``services.common.access.LocalSecrets``)."""
        return self.root / "secrets"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def pidfile(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    def make_dirs(self) -> None:
        for folder in (self.dist, self.logs, self.run, self.kafka, self.postgres, self.mail):
            folder.mkdir(parents=True, exist_ok=True)
