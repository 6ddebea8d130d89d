"""Who may do what: the principals of ``deploy/access.toml``, and the local stack's secrets.

Each principal is one identity inside the platform: a Kafka user and, where it keeps state, a
PostgreSQL role owning a schema of the same name. The declaration is the only place a right is
granted; the local stack applies it (Kafka ACLs, PostgreSQL roles and grants) and the Kubernetes
manifests render it (Strimzi KafkaUser, NetworkPolicy).

On the local stack every principal has a random password, generated once by ``make up`` and kept
in ``.stack/secrets/<principal>`` (0600, in a 0700 folder). A service started on this machine
without credentials in its environment finds its own there (``Settings.from_env(principal=...)``),
as ``make run`` and a developer's ``python -m services.notify`` do. In production the
credentials come from the environment (Kubernetes Secrets) and this folder does not exist.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.paths import DEPLOY_DIR, PROJECT_ROOT
from services.common.settings import KafkaSecurity, local_kafka_security

ACCESS_TOML = DEPLOY_DIR / "access.toml"

ADMIN = "admin"
"""The local stack's Kafka super user and PostgreSQL bootstrap role: it creates topics, applies
ACLs and roles, and nothing else runs as it. Not declared in ``access.toml``: it has every right."""

TESTS = "tests"
"""The test suite's principal, declared in ``access.toml`` like any other."""


@dataclass(frozen=True)
class Principal:
    """One identity and the rights ``access.toml`` gives it."""

    name: str
    doc: str
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    transactional_ids: tuple[str, ...] = ()
    internal_prefix: str | None = None
    describe_groups: tuple[str, ...] = ()
    schema: bool = False
    views_of: tuple[str, ...] = ()
    smtp: bool = False
    mllp: bool = False
    registry: bool = False
    local_only: bool = False
    """Exists on the local stack only (the tests' principal), never rendered for deployment."""

    @property
    def uses_database(self) -> bool:
        """It connects to PostgreSQL: to own its schema, or to read others' published views."""
        return self.schema or bool(self.views_of)


_LISTS = ("read", "write", "groups", "transactional_ids", "describe_groups", "views_of")
_FLAGS = ("schema", "smtp", "mllp", "registry", "local_only")


class AccessError(ValueError):
    """``access.toml`` says something the platform cannot apply."""


def declared_principals(path: Path = ACCESS_TOML) -> dict[str, Principal]:
    """Every principal of the declaration, by name, in the file's order."""
    with open(path, "rb") as source:
        document = tomllib.load(source)
    principals: dict[str, Principal] = {}
    for name, entry in document.get("principal", {}).items():
        known = {"doc", "internal_prefix", *_LISTS, *_FLAGS}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise AccessError(f"{path}: principal {name!r} has unknown keys {unknown}")
        if name == ADMIN:
            raise AccessError(f"{path}: {ADMIN!r} is the stack's super user, not a principal")
        fields: dict[str, Any] = {key: tuple(entry.get(key, ())) for key in _LISTS}
        fields.update({key: bool(entry.get(key, False)) for key in _FLAGS})
        principals[name] = Principal(
            name=name,
            doc=str(entry.get("doc", "")),
            internal_prefix=entry.get("internal_prefix"),
            **fields,
        )
    return principals


def deployed_principals(path: Path = ACCESS_TOML) -> list[Principal]:
    """The principals a deployment renders (Kubernetes users, Secrets, network policies): every
    one but the local stack's own."""
    return [item for item in declared_principals(path).values() if not item.local_only]


def principal(name: str) -> Principal:
    found = declared_principals().get(name)
    if found is None:
        raise AccessError(f"no principal {name!r} in {ACCESS_TOML}")
    return found


def local_stack_dir() -> Path:
    """The local stack's folder, as ``services.stack.layout.StackLayout.default`` finds it."""
    return Path(os.environ.get("HARPICOOP_STACK_DIR", PROJECT_ROOT / ".stack")).resolve()


@dataclass(frozen=True)
class LocalSecrets:
    """The local stack's password of each principal, one 0600 file each."""

    folder: Path

    @classmethod
    def default(cls) -> LocalSecrets:
        return cls(local_stack_dir() / "secrets")

    def path(self, name: str) -> Path:
        return self.folder / name

    def get(self, name: str) -> str | None:
        """The password of ``name``, or None when the stack has not made one."""
        try:
            return self.path(name).read_text(encoding="ascii").strip() or None
        except (FileNotFoundError, PermissionError):
            return None

    def kafka_security(self, name: str) -> KafkaSecurity:
        """How ``name`` signs in to the local broker; its password is made if there is none."""
        return local_kafka_security(name, self.ensure(name))

    def ensure(self, name: str) -> str:
        """The password of ``name``, made now if there is none yet."""
        found = self.get(name)
        if found:
            return found
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        password = secrets.token_urlsafe(24)
        # Created 0600 from the start: never readable by others, even for a moment.
        descriptor = os.open(self.path(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(password + "\n")
        return password


@dataclass(frozen=True)
class Grant:
    """One Kafka ACL binding (always Allow, from any host): what ``make up`` applies and what a
    Strimzi ``KafkaUser`` lists, both expanded from the declaration by ``kafka_grants``."""

    resource: str
    """``topic``, ``group``, ``transactionalId`` or ``cluster`` (Strimzi's spelling)."""
    name: str
    pattern: str
    """``literal`` or ``prefix``."""
    operations: tuple[str, ...]
    """Kafka's operation names in Strimzi's spelling: ``Read``, ``Write``, ``Describe``, ..."""


ALL_OPERATIONS = ("All",)


def _named(resource: str, name: str, operations: tuple[str, ...]) -> Grant:
    """A literal name, a ``{establishment}`` template (one topic per establishment, so the
    prefix before it: a new establishment's topic is covered as soon as it is created), or a
    name ending in ``*`` (a prefix)."""
    if "{establishment}" in name:
        head, _, tail = name.partition("{establishment}")
        if tail:
            raise AccessError(f"{name!r}: {{establishment}} can only end a name")
        return Grant(resource, head, "prefix", operations)
    if name.endswith("*") and name != "*":
        return Grant(resource, name[:-1], "prefix", operations)
    return Grant(resource, name, "literal", operations)


def kafka_grants(who: Principal) -> list[Grant]:
    """The ACL bindings of ``who``, in a stable order."""
    grants: list[Grant] = []
    grants += [_named("topic", name, ("Read", "Describe")) for name in who.read]
    grants += [_named("topic", name, ("Write", "Describe")) for name in who.write]
    grants += [_named("group", name, ("Read", "Describe")) for name in who.groups]
    grants += [
        _named("transactionalId", name, ("Write", "Describe")) for name in who.transactional_ids
    ]
    if who.internal_prefix:
        # "*" is every name; any other prefix is written without its trailing star.
        owned = "*" if who.internal_prefix == "*" else f"{who.internal_prefix}*"
        grants.append(_named("topic", owned, ALL_OPERATIONS))
        grants.append(_named("group", owned, ALL_OPERATIONS))
    if who.describe_groups:
        grants += [_named("group", name, ("Describe",)) for name in who.describe_groups]
        # The lag of a group is its committed offsets against each partition's end: the topics'
        # names and offsets (Describe), never their records.
        grants.append(Grant("topic", "*", "literal", ("Describe",)))
    return grants
