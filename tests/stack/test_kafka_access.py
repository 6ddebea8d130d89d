"""The stack's broker lets in only who signs in, and each principal only what
``deploy/access.toml`` gives it; ``make up`` applies that declaration and nothing else.

Against the stack the suite runs on, with the passwords ``make up`` keeps in ``.stack/secrets``.
No check here writes a record anywhere: a refused write writes nothing, and what a principal
may do is asked of the broker's authorizer (a topic's authorized operations).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from confluent_kafka._model import TopicCollection
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
    UserScramCredentialUpsertion,
)

from services.common.access import ADMIN, TESTS, LocalSecrets, declared_principals
from services.common.acls import apply_acls
from services.common.kafka import make_admin, make_consumer, make_producer
from services.common.settings import KafkaSecurity, Settings, local_kafka_security

pytestmark = pytest.mark.integration

ESTABLISHMENT_RAW = "stays.raw.chrunancy"

Signer = Callable[[str], Settings]


@pytest.fixture
def signed_in(stack: Settings) -> Signer:
    """The stack's settings signed in as a given principal, with the password ``make up`` made."""
    secrets = LocalSecrets.default()
    if secrets.get(ADMIN) is None:
        pytest.skip("no local stack passwords: the cluster is named by the environment")

    def as_principal(name: str) -> Settings:
        password = secrets.get(name)
        assert password, f"make up made no password for {name!r}"
        return dataclasses.replace(stack, kafka_security=local_kafka_security(name, password))

    return as_principal


def errors_on_connecting(settings: Settings) -> tuple[bool, list[KafkaError]]:
    """Whether a client with these settings could read the cluster's metadata, and the errors
    it was told of on the way."""
    errors: list[KafkaError] = []
    producer = make_producer(settings, "test-access", error_cb=errors.append)
    try:
        producer.list_topics(timeout=5)
        answered = True
    except KafkaException:
        answered = False
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    return answered, errors


def test_an_anonymous_client_is_refused(stack: Settings, signed_in: Signer) -> None:
    anonymous = dataclasses.replace(stack, kafka_security=KafkaSecurity())
    answered, errors = errors_on_connecting(anonymous)
    assert not answered and errors
    # The same client signed in is answered: the refusal is the missing sign-in.
    assert errors_on_connecting(signed_in("notify"))[0]


def test_a_wrong_password_is_refused(signed_in: Signer) -> None:
    notify = signed_in("notify")
    wrong = dataclasses.replace(
        notify,
        kafka_security=dataclasses.replace(notify.kafka_security, sasl_password="not-its-own"),
    )
    answered, errors = errors_on_connecting(wrong)
    assert not answered
    assert any(error.code() == KafkaError._AUTHENTICATION for error in errors), errors


def write_refusal(settings: Settings, topic: str) -> int | None:
    """The error code of a write to ``topic``, None when it was written (never expected here)."""
    outcome: list[KafkaError | None] = []
    producer = make_producer(settings, "test-access")
    producer.produce(topic, b"refused", on_delivery=lambda error, _message: outcome.append(error))
    try:
        assert producer.flush(30) == 0
    except KafkaException as fatal:
        # A principal that may write nowhere is not even given a producer id to write with.
        return int(fatal.args[0].code())
    error = outcome[0]
    return None if error is None else int(error.code())


def read_refusal(settings: Settings, topic: str) -> int | None:
    """The error code a reader of ``topic`` is refused with: its metadata (no Describe right) or
    its records (Describe but no Read). None when nothing was refused within a few seconds."""
    consumer = make_consumer(settings, "test-access", f"group-{uuid.uuid4().hex[:10]}")
    try:
        described = consumer.list_topics(topic, timeout=10).topics[topic]
        if described.error is not None:
            return int(described.error.code())
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            # The group is not the principal's: its own refusal is not what is looked at here.
            error = None if message is None else message.error()
            if error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                return int(error.code())
        return None
    finally:
        consumer.close()


TOPIC_REFUSED = KafkaError.TOPIC_AUTHORIZATION_FAILED
REFUSED_WRITES = [
    ("notify", "practitioners", TOPIC_REFUSED),
    ("gateway", "practitioners", TOPIC_REFUSED),
    ("enrich", "notifications.status", TOPIC_REFUSED),
    ("covid", "stays.enriched", TOPIC_REFUSED),
    ("analytics", "covid.followups", TOPIC_REFUSED),
    ("dedup", "stays.enriched", TOPIC_REFUSED),
    ("directory", "stays.unique", TOPIC_REFUSED),
    ("operator", "practitioners", TOPIC_REFUSED),
    ("operator", "hl7.archive", TOPIC_REFUSED),
    ("dashboard", "analytics.stay_events", KafkaError.CLUSTER_AUTHORIZATION_FAILED),
]


@pytest.mark.parametrize(("principal", "topic", "refusal"), REFUSED_WRITES)
def test_a_principal_cannot_write_a_topic_it_does_not_own(
    signed_in: Signer, principal: str, topic: str, refusal: int
) -> None:
    assert write_refusal(signed_in(principal), topic) == refusal


REFUSED_READS = [
    ("analytics", "hl7.archive"),
    ("gateway", ESTABLISHMENT_RAW),
    ("gateway", "hl7.archive"),
    ("dashboard", "stays.enriched"),
    ("dashboard", "hl7.archive"),
    ("notify", "practitioners"),
    ("directory", "practitioners"),
    ("enrich", "hl7.archive"),
    ("covid", "hl7.archive"),
    ("dedup", "hl7.archive"),
]


@pytest.mark.parametrize(("principal", "topic"), REFUSED_READS)
def test_a_principal_cannot_read_a_topic_it_does_not_own(
    signed_in: Signer, principal: str, topic: str
) -> None:
    assert read_refusal(signed_in(principal), topic) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def authorized(settings: Settings, topic: str) -> set[str]:
    """What the broker's authorizer lets these settings' principal do on ``topic``."""
    admin = make_admin(settings)
    topics = TopicCollection([topic])
    future = admin.describe_topics(topics, include_authorized_operations=True)[topic]
    return {operation.name for operation in future.result(timeout=30).authorized_operations}


OWNED = [
    ("gateway", ESTABLISHMENT_RAW, {"WRITE", "DESCRIBE"}),
    ("gateway", "hl7.archive", {"WRITE", "DESCRIBE"}),
    ("dedup", ESTABLISHMENT_RAW, {"READ", "DESCRIBE"}),
    ("dedup", "stays.unique", {"READ", "WRITE", "DESCRIBE"}),
    ("enrich", "practitioners", {"READ", "DESCRIBE"}),
    ("enrich", "stays.enriched", {"WRITE", "DESCRIBE"}),
    ("notify", "stays.enriched", {"READ", "DESCRIBE"}),
    ("notify", "notifications.status", {"WRITE", "DESCRIBE"}),
    ("analytics", "analytics.stay_events", {"READ", "WRITE", "DESCRIBE"}),
    ("covid", "covid.followups", {"WRITE", "DESCRIBE"}),
    ("covid", "patients.merges", {"READ", "DESCRIBE"}),
    ("directory", "practitioners", {"WRITE", "DESCRIBE"}),
    ("dashboard", "stays.enriched", {"DESCRIBE"}),
    ("operator", "hl7.archive", {"READ", "DESCRIBE"}),
    ("operator", "stays.unique", {"READ", "WRITE", "DESCRIBE"}),
]


@pytest.mark.parametrize(("principal", "topic", "operations"), OWNED)
def test_a_principal_may_do_what_it_owns_and_no_more(
    signed_in: Signer, principal: str, topic: str, operations: set[str]
) -> None:
    assert authorized(signed_in(principal), topic) == operations


def test_a_service_may_use_its_own_transactional_id_only(signed_in: Signer) -> None:
    mine = make_producer(
        signed_in("enrich"),
        "test-access",
        **{"transactional.id": f"enrich@test-{uuid.uuid4().hex[:8]}"},
    )
    mine.init_transactions(30)
    theirs = make_producer(signed_in("notify"), "test-access", **{"transactional.id": "enrich@x"})
    with pytest.raises(KafkaException) as refused:
        theirs.init_transactions(30)
    assert refused.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def test_the_tests_principal_is_no_super_user(signed_in: Signer) -> None:
    admin = make_admin(signed_in(TESTS))
    grant = AclBinding(
        ResourceType.TOPIC,
        "hl7.archive",
        ResourcePatternType.LITERAL,
        "User:gateway",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    with pytest.raises(KafkaException):
        admin.create_acls([grant], request_timeout=30)[grant].result()
    password = UserScramCredentialUpsertion(
        "notify", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"taken-over"
    )
    with pytest.raises(KafkaException):
        for future in admin.alter_user_scram_credentials([password]).values():
            future.result()


def acl_present(admin: AdminClient, binding: AclBinding) -> bool:
    exact = AclBindingFilter(
        binding.restype,
        binding.name,
        binding.resource_pattern_type,
        binding.principal,
        binding.host,
        binding.operation,
        binding.permission_type,
    )
    return bool(admin.describe_acls(exact, request_timeout=30).result())


def test_applying_the_declaration_again_changes_nothing_and_removes_a_stale_acl(
    signed_in: Signer,
) -> None:
    admin = make_admin(signed_in(ADMIN))
    # As make up applies it on the local stack: every principal, the tests' included.
    principals = list(declared_principals().values())
    retired = uuid.uuid4().hex[:10]
    stale = AclBinding(
        ResourceType.TOPIC,
        f"test-{retired}",
        ResourcePatternType.LITERAL,
        f"User:retired-{retired}",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    admin.create_acls([stale], request_timeout=30)[stale].result()
    # The broker learns it from the controller a moment after it is committed.
    deadline = time.monotonic() + 30
    while not acl_present(admin, stale):
        assert time.monotonic() < deadline, "the stale ACL never showed"
        time.sleep(0.1)

    first = apply_acls(admin, principals)
    assert first.removed >= 1
    assert not acl_present(admin, stale)
    again = apply_acls(admin, principals)
    assert (again.added, again.removed) == (0, 0)
    assert again.declared == first.declared
