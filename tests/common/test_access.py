"""The access declaration and its expansion into Kafka ACL bindings (no broker needed)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from services.common.access import (
    ADMIN,
    TESTS,
    AccessError,
    Grant,
    Principal,
    declared_principals,
    kafka_grants,
)
from services.common.acls import acl_bindings, declared_bindings
from services.common.topics import declared_topics


def test_each_right_expands_to_its_grants_in_order() -> None:
    who = Principal(
        name="relay",
        doc="",
        read=("stays.raw.{establishment}", "practitioners"),
        write=("stays.unique",),
        groups=("relay", "harpicoop-readback-*"),
        transactional_ids=("relay@*",),
        internal_prefix="relay-",
        describe_groups=("enrich",),
    )
    assert kafka_grants(who) == [
        Grant("topic", "stays.raw.", "prefix", ("Read", "Describe")),
        Grant("topic", "practitioners", "literal", ("Read", "Describe")),
        Grant("topic", "stays.unique", "literal", ("Write", "Describe")),
        Grant("group", "relay", "literal", ("Read", "Describe")),
        Grant("group", "harpicoop-readback-", "prefix", ("Read", "Describe")),
        Grant("transactionalId", "relay@", "prefix", ("Write", "Describe")),
        Grant("topic", "relay-", "prefix", ("All",)),
        Grant("group", "relay-", "prefix", ("All",)),
        Grant("group", "enrich", "literal", ("Describe",)),
        Grant("topic", "*", "literal", ("Describe",)),
    ]


def test_a_star_alone_is_every_name() -> None:
    who = Principal(name="suite", doc="", internal_prefix="*", transactional_ids=("*",))
    assert kafka_grants(who) == [
        Grant("transactionalId", "*", "literal", ("Write", "Describe")),
        Grant("topic", "*", "literal", ("All",)),
        Grant("group", "*", "literal", ("All",)),
    ]


def test_the_establishment_can_only_end_a_topic_name() -> None:
    with pytest.raises(AccessError, match="can only end"):
        kafka_grants(Principal(name="x", doc="", read=("stays.{establishment}.raw",)))


def test_a_grant_is_one_allow_binding_per_operation_for_its_user() -> None:
    bindings = acl_bindings(Grant("topic", "stays.raw.", "prefix", ("Read", "Describe")), "dedup")
    assert [(b.operation, b.name, b.principal, b.host) for b in bindings] == [
        (AclOperation.READ, "stays.raw.", "User:dedup", "*"),
        (AclOperation.DESCRIBE, "stays.raw.", "User:dedup", "*"),
    ]
    assert {(b.restype, b.resource_pattern_type, b.permission_type) for b in bindings} == {
        (ResourceType.TOPIC, ResourcePatternType.PREFIXED, AclPermissionType.ALLOW)
    }
    (cluster,) = acl_bindings(Grant("cluster", "", "literal", ("Describe",)), "operator")
    assert (cluster.restype, cluster.name) == (ResourceType.BROKER, "kafka-cluster")


def _topic_matches(pattern: str, topic_names: list[str]) -> bool:
    name = pattern.replace("{establishment}", "*")
    return any(fnmatch.fnmatchcase(topic, name) for topic in topic_names)


def test_every_topic_the_declaration_names_is_declared() -> None:
    """A misspelt topic in access.toml would grant nothing and fail only at run time."""
    topics = [spec.name for spec in declared_topics()]
    for who in declared_principals().values():
        for name in (*who.read, *who.write):
            if name != "*":
                assert _topic_matches(name, topics), f"{who.name}: {name} is not in topics.toml"


def test_only_the_local_tests_principal_holds_wildcards_and_admin_is_not_declared() -> None:
    principals = declared_principals()
    assert ADMIN not in principals
    assert principals[TESTS].local_only
    for who in principals.values():
        if who.name == TESTS:
            continue
        assert not who.local_only
        for grant in kafka_grants(who):
            wildcard = grant.name == "*"
            # Knowing where every topic's end is (lag) is the one right over every name.
            assert not wildcard or grant == Grant("topic", "*", "literal", ("Describe",)), (
                who.name,
                grant,
            )


def test_the_declared_rights_are_those_the_services_need() -> None:
    bindings = {
        (b.principal, b.restype, b.name, b.resource_pattern_type, b.operation)
        for b in declared_bindings(declared_principals().values())
    }
    topic, literal, prefix = (
        ResourceType.TOPIC,
        ResourcePatternType.LITERAL,
        ResourcePatternType.PREFIXED,
    )
    write, read = AclOperation.WRITE, AclOperation.READ
    assert ("User:notify", topic, "practitioners", literal, write) not in bindings
    assert ("User:directory", topic, "practitioners", literal, write) in bindings
    assert ("User:analytics", topic, "hl7.archive", literal, read) not in bindings
    assert ("User:gateway", topic, "stays.raw.", prefix, write) in bindings
    assert ("User:gateway", topic, "stays.raw.", prefix, read) not in bindings
    assert ("User:dedup", topic, "stays.unique", literal, read) in bindings  # its replay fence
    assert not any(
        principal == "User:dashboard" and operation == read for principal, *_, operation in bindings
    )


def test_the_declaration_is_read_strictly(tmp_path: Path) -> None:
    path = tmp_path / "access.toml"
    path.write_text('[principal.notify]\nreads = ["stays.enriched"]\n', encoding="utf-8")
    with pytest.raises(AccessError, match="unknown keys"):
        declared_principals(path)
    path.write_text('[principal.admin]\ndoc = "no"\n', encoding="utf-8")
    with pytest.raises(AccessError, match="super user"):
        declared_principals(path)
