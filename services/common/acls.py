"""``deploy/access.toml`` applied to a Kafka cluster: each principal's SCRAM credential and the
ACLs its rights expand to (``access.kafka_grants``).

The cluster's ACLs are the declaration's: applying it adds the bindings missing and removes every
other one, so a right taken out of the file is taken away from the cluster too. Use it on a
cluster that is the platform's own (the local stack, or a cluster not managed by Strimzi, whose
``KafkaUser`` resources carry the same declaration instead). It must run as a principal allowed
to alter the cluster (the local stack's ``admin``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from services.common.access import (
    Grant,
    LocalSecrets,
    Principal,
    declared_principals,
    kafka_grants,
)

_RESOURCES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactionalId": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.BROKER,
}
_PATTERNS = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}
_OPERATIONS = {
    "All": AclOperation.ALL,
    "Read": AclOperation.READ,
    "Write": AclOperation.WRITE,
    "Create": AclOperation.CREATE,
    "Delete": AclOperation.DELETE,
    "Alter": AclOperation.ALTER,
    "Describe": AclOperation.DESCRIBE,
    "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
    "AlterConfigs": AclOperation.ALTER_CONFIGS,
    "IdempotentWrite": AclOperation.IDEMPOTENT_WRITE,
}
CLUSTER_RESOURCE = "kafka-cluster"
"""The one name Kafka gives the cluster resource."""

SCRAM_ITERATIONS = 8192

TIMEOUT = 30.0


def acl_bindings(grant: Grant, principal: str) -> list[AclBinding]:
    """The ACL bindings of one grant of ``principal``: one per operation, allowed from any host."""
    name = CLUSTER_RESOURCE if grant.resource == "cluster" else grant.name
    return [
        AclBinding(
            _RESOURCES[grant.resource],
            name,
            _PATTERNS[grant.pattern],
            f"User:{principal}",
            "*",
            _OPERATIONS[operation],
            AclPermissionType.ALLOW,
        )
        for operation in grant.operations
    ]


def declared_bindings(principals: Iterable[Principal]) -> set[AclBinding]:
    """Every ACL binding the principals' rights expand to."""
    return {
        binding
        for who in principals
        for grant in kafka_grants(who)
        for binding in acl_bindings(grant, who.name)
    }


@dataclass(frozen=True)
class AclChanges:
    declared: int
    added: int
    removed: int


def _every_acl(admin: AdminClient) -> set[AclBinding]:
    # None matches any name, principal and host (the stubs say str only).
    every = AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    return set(admin.describe_acls(every, request_timeout=TIMEOUT).result())


def apply_acls(admin: AdminClient, principals: Iterable[Principal]) -> AclChanges:
    """Make the cluster's ACLs exactly those of ``principals``; running it again changes nothing.
    Returns once the broker enforces them (it learns them from the controller a moment after the
    change is committed), so a service started next is not refused for a while."""
    wanted = declared_bindings(principals)
    present = _every_acl(admin)
    missing = sorted(wanted - present, key=str)
    stale = sorted(present - wanted, key=str)
    if missing:
        for future in admin.create_acls(missing, request_timeout=TIMEOUT).values():
            future.result()
    if stale:
        # A filter naming every field of a binding matches that binding only.
        exact = [
            AclBindingFilter(
                binding.restype,
                binding.name,
                binding.resource_pattern_type,
                binding.principal,
                binding.host,
                binding.operation,
                binding.permission_type,
            )
            for binding in stale
        ]
        for future in admin.delete_acls(exact, request_timeout=TIMEOUT).values():
            future.result()
    deadline = time.monotonic() + TIMEOUT
    while (missing or stale) and _every_acl(admin) != wanted:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the broker did not apply the ACLs within {TIMEOUT:.0f} s")
        time.sleep(0.1)
    return AclChanges(declared=len(wanted), added=len(missing), removed=len(stale))


def set_scram_credentials(
    admin: AdminClient, names: Iterable[str], password_of: Callable[[str], str]
) -> int:
    """Each principal's SCRAM-SHA-512 credential, from its password (set again if it was there:
    a renewed password takes effect, an unchanged one stays valid). The number set."""
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(
            name,
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS),
            password_of(name).encode("utf-8"),
        )
        for name in names
    ]
    if upserts:
        for future in admin.alter_user_scram_credentials(upserts).values():
            future.result()
    return len(upserts)


def apply_access(admin: AdminClient, *, local: LocalSecrets | None = None) -> str:
    """``deploy/access.toml`` on the cluster: its ACLs and, on the local stack (``local``: the
    stack's passwords), each principal's SCRAM credential and the local-only principals (the
    tests'). The one-line summary of what was done."""
    principals = [
        who for who in declared_principals().values() if local is not None or not who.local_only
    ]
    credentials = (
        set_scram_credentials(admin, [who.name for who in principals], local.ensure)
        if local is not None
        else 0
    )
    changes = apply_acls(admin, principals)
    return (
        f"{len(principals)} principals, {credentials} SCRAM credentials set, "
        f"{changes.declared} ACLs ({changes.added} added, {changes.removed} removed)"
    )
