"""The Kubernetes manifests against deploy/access.toml: each deployed principal's KafkaUser holds
exactly the ACLs ``kafka_grants`` expands its rights into (the ones ``make up`` applies locally),
each workload holds its own principal's credentials and no other's, and the network policies let
through only the flows the declaration implies. Pure and fast, like test_manifests.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import pytest

from services.common.access import Principal, deployed_principals, kafka_grants
from tests.deploy.generate_access import (
    COMPOSE_ROLES,
    CONTRACT,
    DASHBOARD_PORT,
    KAFKA_PORT,
    METRICS_PORT,
    MLLP_PORT,
    NAME_LABEL,
    OUTSIDE_THE_NAMESPACE,
    POLICIES_YAML,
    POSTGRES_PORT,
    REGISTRY,
    REGISTRY_PORT,
    SMTP_PORTS,
    USERS_YAML,
    compose_roles_script,
    database_roles,
    listener_peers,
    password_variable,
    render_policies,
    render_users,
    scraped_workloads,
)
from tests.deploy.generate_topics import KAFKA_CLUSTER
from tests.deploy.test_manifests import (
    IMAGE,
    KUBERNETES_DIR,
    WORKLOAD_KINDS,
    Resource,
    compose,
    compose_containers,
    kubernetes_resources,
    resource,
    resources,
)

CLUSTER_CA = "harpicoop-cluster-ca-cert"
POSTGRES_CA = "postgres-ca"
POSTGRES_CA_DIR = "/etc/harpicoop/postgres-ca"
TRUST_ANCHORS = frozenset({CLUSTER_CA, POSTGRES_CA})
"""Public certificates any pod may mount: they grant nothing."""
OWN_SECRETS = {
    "gateway": frozenset({"gateway-mllp-tls", "ght-mllp-client-ca"}),
    "notify": frozenset({"mssante-client-certificate"}),
    "simulator": frozenset({"simulator-mllp-clients"}),
    REGISTRY: frozenset({"postgres-registry"}),
}
"""The other Secrets a workload needs, by the name its pods carry."""
REGENERATE = "run .venv/bin/python -m tests.deploy.generate_access"


@cache
def principals() -> dict[str, Principal]:
    return {who.name: who for who in deployed_principals()}


def postgres_secret(name: str) -> str:
    return f"postgres-{name}"


# --- the generated files -------------------------------------------------------------------------


def test_users_yaml_is_what_the_declaration_renders() -> None:
    expected = render_users(deployed_principals())
    assert USERS_YAML.read_text(encoding="utf-8") == expected, f"users.yaml is stale: {REGENERATE}"


def test_network_policies_yaml_is_what_the_declaration_renders() -> None:
    expected = render_policies(deployed_principals(), scraped_workloads())
    assert POLICIES_YAML.read_text(encoding="utf-8") == expected, (
        f"network-policies.yaml is stale: {REGENERATE}"
    )


# --- Kafka ---------------------------------------------------------------------------------------


def _bindings(acls: list[Resource]) -> set[tuple[str, str | None, str | None, frozenset[str], str]]:
    return {
        (
            rule["resource"]["type"],
            rule["resource"].get("name"),
            rule["resource"].get("patternType"),
            frozenset(rule["operations"]),
            rule["host"],
        )
        for rule in acls
    }


def test_each_deployed_principal_is_a_kafka_user_with_exactly_its_declared_acls() -> None:
    users = {item["metadata"]["name"]: item for item in resources("KafkaUser")}
    clients = {name for name, who in principals().items() if kafka_grants(who)}
    assert set(users) == clients, "a KafkaUser per deployed principal with Kafka rights, no other"
    for name, user in users.items():
        spec = user["spec"]
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == KAFKA_CLUSTER, name
        assert spec["authentication"]["type"] == "scram-sha-512", name
        assert spec["authorization"]["type"] == "simple", name
        declared = {
            (
                grant.resource,
                None if grant.resource == "cluster" else grant.name,
                None if grant.resource == "cluster" else grant.pattern,
                frozenset(grant.operations),
                "*",
            )
            for grant in kafka_grants(principals()[name])
        }
        rendered = _bindings(spec["authorization"]["acls"])
        assert rendered - declared == set(), f"{name}: ACLs the declaration does not grant"
        assert declared - rendered == set(), f"{name}: declared rights without an ACL"


def test_no_local_only_principal_is_deployed() -> None:
    from services.common.access import declared_principals

    local = {who.name for who in declared_principals().values() if who.local_only}
    names = {item["metadata"]["name"] for item in resources("KafkaUser")}
    assert not local & names


def test_the_brokers_authenticate_every_client_and_authorize_by_acl_only() -> None:
    kafka = resource("Kafka", KAFKA_CLUSTER)["spec"]
    listeners = kafka["kafka"]["listeners"]
    assert all(
        item["tls"] and item["authentication"]["type"] == "scram-sha-512" for item in listeners
    )
    authorization = kafka["kafka"]["authorization"]
    assert authorization["type"] == "simple"
    # Strimzi's own operators are super users by their certificates; nobody else is.
    assert not authorization.get("superUsers")
    assert "super.users" not in kafka["kafka"].get("config", {})
    assert kafka["entityOperator"]["userOperator"] is not None


def test_only_the_declared_principals_may_open_a_connection_to_the_brokers() -> None:
    (listener,) = resource("Kafka", KAFKA_CLUSTER)["spec"]["kafka"]["listeners"]
    assert listener["port"] == KAFKA_PORT
    assert listener["networkPolicyPeers"] == listener_peers(deployed_principals())


def test_keda_scales_as_the_autoscaler_principal() -> None:
    for scaled in resources("ScaledObject"):
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["metadata"]["sasl"] == "scram_sha512"
        assert trigger["metadata"]["tls"] == "enable"
        authentication = resource("TriggerAuthentication", trigger["authenticationRef"]["name"])
        secrets = {ref["parameter"]: ref for ref in authentication["spec"]["secretTargetRef"]}
        assert (secrets["password"]["name"], secrets["password"]["key"]) == (
            "autoscaler",
            "password",
        )
        assert secrets["ca"]["name"] == CLUSTER_CA
        (username,) = authentication["spec"]["configMapTargetRef"]
        config = resource("ConfigMap", username["name"])
        assert config["data"][username["key"]] == "autoscaler"
        # It describes the very group it scales on.
        group = trigger["metadata"]["consumerGroup"]
        assert any(
            grant.resource == "group" and grant.name == group and "Describe" in grant.operations
            for grant in kafka_grants(principals()["autoscaler"])
        ), group
    assert "autoscaler" in OUTSIDE_THE_NAMESPACE


def test_the_autoscaler_reads_the_lag_of_no_group_it_does_not_scale_on() -> None:
    # Least privilege: a service no longer scaled (analytics) takes its group out of the grant.
    scaled_on = {
        item["spec"]["triggers"][0]["metadata"]["consumerGroup"]
        for item in resources("ScaledObject")
    }
    autoscaler = principals()["autoscaler"]
    assert set(autoscaler.describe_groups) == scaled_on
    assert not (autoscaler.read or autoscaler.write or autoscaler.groups), "it only reads lag"


# --- the credentials each workload holds ---------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    where: str
    name: str
    """The ``app.kubernetes.io/name`` of its pods: its principal's name, for a principal's."""
    spec: Resource

    def containers(self) -> list[Resource]:
        return [*self.spec.get("initContainers", []), *self.spec["containers"]]

    def secret_volumes(self) -> dict[str, str]:
        """Each volume holding a Secret, by volume name."""
        found = {}
        for volume in self.spec.get("volumes", []):
            if "secret" in volume:
                found[volume["name"]] = volume["secret"]["secretName"]
            for source in volume.get("projected", {}).get("sources", []):
                if "secret" in source:
                    found[volume["name"]] = source["secret"]["name"]
        return found


def pods() -> Iterator[Pod]:
    for path, item in kubernetes_resources():
        if item.get("kind") not in WORKLOAD_KINDS:
            continue
        spec = item["spec"]
        if item["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        template = spec["template"]
        yield Pod(
            where=f"{path.parent.name}/{path.name}: {item['kind']} {item['metadata']['name']}",
            name=template["metadata"]["labels"][NAME_LABEL],
            spec=template["spec"],
        )


def _env(container: Resource) -> dict[str, Resource]:
    return {item["name"]: item for item in container.get("env", [])}


def _secret_refs(container: Resource) -> set[tuple[str, str]]:
    assert not any("secretRef" in item for item in container.get("envFrom", [])), (
        "a whole Secret as variables cannot be checked"
    )
    return {
        (ref["name"], ref["key"])
        for item in container.get("env", [])
        if (ref := item.get("valueFrom", {}).get("secretKeyRef"))
    }


def test_every_principal_in_the_namespace_runs_somewhere() -> None:
    running = {pod.name for pod in pods()}
    expected = set(principals()) - set(OUTSIDE_THE_NAMESPACE)
    assert expected <= running, f"no workload for {sorted(expected - running)}"


def test_each_workload_holds_its_own_principals_credentials_and_no_others() -> None:
    problems = []
    for pod in pods():
        who = principals().get(pod.name)
        for container in pod.containers():
            if container["image"].split(":")[0] != IMAGE:
                continue
            refs = _secret_refs(container)
            env = _env(container)
            expected: set[tuple[str, str]] = set()
            if who is not None and kafka_grants(who):
                expected.add((who.name, "password"))
                if env.get("KAFKA_SASL_USERNAME", {}).get("value") != who.name:
                    problems.append(f"{pod.where}: KAFKA_SASL_USERNAME is not {who.name}")
                ref = env.get("KAFKA_SASL_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef")
                if ref != {"name": who.name, "key": "password"}:
                    problems.append(f"{pod.where}: KAFKA_SASL_PASSWORD not from Secret {who.name}")
            if who is not None and who.uses_database:
                expected.add((postgres_secret(who.name), "DATABASE_URL"))
                ref = env.get("DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef")
                if ref != {"name": postgres_secret(who.name), "key": "DATABASE_URL"}:
                    problems.append(
                        f"{pod.where}: DATABASE_URL not from {postgres_secret(who.name)}"
                    )
            elif "DATABASE_URL" in env:
                problems.append(f"{pod.where}: DATABASE_URL without a declared schema or views")
            if who is not None and who.smtp:
                # The platform's mailbox at the operator, where its delivery receipts arrive.
                expected.add(("mssante-mailbox", "password"))
            if refs != expected:
                problems.append(
                    f"{pod.where}: reads Secrets {sorted(refs)}, expected {sorted(expected)}"
                )
        mounted = set(pod.secret_volumes().values())
        allowed = TRUST_ANCHORS | OWN_SECRETS.get(pod.name, frozenset())
        if mounted - allowed:
            problems.append(f"{pod.where}: mounts Secrets {sorted(mounted - allowed)}")
    assert not problems, "\n".join(problems)


def test_no_workload_reads_another_principals_secret() -> None:
    """The same rule seen from the Secrets: a principal's are read by its own pods only."""
    owners = {name: name for name in principals()} | {
        postgres_secret(name): name for name in principals()
    }
    owners[postgres_secret(REGISTRY)] = REGISTRY
    for pod in pods():
        names = set(pod.secret_volumes().values()) | {
            ref[0] for container in pod.containers() for ref in _secret_refs(container)
        }
        for secret in names & set(owners):
            assert owners[secret] == pod.name, f"{pod.where} reads {secret}"
    # What no workload may hold any more: the one role that served every service.
    assert not any(
        "harpicoop-database" in str(item) for _, item in kubernetes_resources(patches=True)
    )


def test_database_clients_check_the_server_against_the_postgres_ca() -> None:
    for pod in pods():
        volumes = pod.secret_volumes()
        for container in pod.containers():
            env = _env(container)
            if "DATABASE_URL" not in env and not any(
                name.startswith("APICURIO_DATASOURCE_URL") for name in env
            ):
                continue
            mounts = {
                item["mountPath"]: volumes.get(item["name"])
                for item in container.get("volumeMounts", [])
            }
            assert mounts.get(POSTGRES_CA_DIR) == POSTGRES_CA, pod.where


def test_the_contract_job_holds_no_credential() -> None:
    (contract,) = [pod for pod in pods() if pod.name == CONTRACT]
    (container,) = contract.containers()
    assert container["command"][-1] == "schemas"
    assert not _secret_refs(container)


# --- network policies ----------------------------------------------------------------------------


def policies(*, rehearsal: bool = False) -> dict[str, Resource]:
    """The network policies of production, and those the rehearsal overlay adds when asked."""
    return {
        item["metadata"]["name"]: item
        for path, item in kubernetes_resources()
        if item.get("kind") == "NetworkPolicy" and (rehearsal or path.parent == KUBERNETES_DIR)
    }


def _ports(rules: list[Resource]) -> set[int]:
    return {port["port"] for rule in rules for port in rule.get("ports", [])}


def _selects(policy: Resource, labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    if not all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def test_the_namespace_denies_every_flow_by_default() -> None:
    deny = policies()["default-deny"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert not deny.get("ingress") and not deny.get("egress")


@pytest.mark.parametrize("name", sorted(set(principals()) - set(OUTSIDE_THE_NAMESPACE)))
def test_a_principal_reaches_what_its_declaration_implies_and_nothing_else(name: str) -> None:
    who = principals()[name]
    labels = {NAME_LABEL: name}
    mine = [
        item
        for item in policies().values()
        if _selects(item, labels) and item["spec"]["podSelector"] != {}
    ]
    egress = {port for item in mine for port in _ports(item["spec"].get("egress", []))}
    ingress = {port for item in mine for port in _ports(item["spec"].get("ingress", []))}
    assert (KAFKA_PORT in egress) == bool(kafka_grants(who))
    assert (REGISTRY_PORT in egress) == who.registry
    assert (POSTGRES_PORT in egress) == who.uses_database
    assert (set(SMTP_PORTS) <= egress) == who.smtp
    assert not (set(SMTP_PORTS) & egress) or who.smtp
    assert (MLLP_PORT in ingress) == who.mllp
    assert egress <= {KAFKA_PORT, REGISTRY_PORT, POSTGRES_PORT, *SMTP_PORTS}
    # Beyond its declared ingress, only Prometheus and, for the dashboard, its page.
    assert ingress - {MLLP_PORT} <= {METRICS_PORT, DASHBOARD_PORT}, ingress


def test_the_registry_is_reached_only_by_declared_clients_and_the_contract_job() -> None:
    (rule,) = policies()[REGISTRY]["spec"]["ingress"]
    (peer,) = rule["from"]
    (expression,) = peer["podSelector"]["matchExpressions"]
    inside = set(principals()) - set(OUTSIDE_THE_NAMESPACE)
    clients = {name for name in inside if principals()[name].registry}
    assert set(expression["values"]) == clients | {CONTRACT}
    assert "dashboard" not in expression["values"]


def test_every_pod_has_a_policy_of_its_own_beyond_the_default_deny_and_dns() -> None:
    shared = {"default-deny", "dns"}
    for pod in pods():
        labels = {NAME_LABEL: pod.name}
        own = [
            name
            for name, item in policies(rehearsal=True).items()
            if name not in shared and _selects(item, labels)
        ]
        assert own, f"{pod.where}: every flow denied"


def test_only_annotated_pods_are_open_to_scraping() -> None:
    scraping = policies()["prometheus-scraping"]
    for pod_name in {pod.name for pod in pods()}:
        assert _selects(scraping, {NAME_LABEL: pod_name}) == (pod_name in scraped_workloads())


# --- Docker Compose ------------------------------------------------------------------------------

COMPOSE_PRINCIPALS = {"cli": "operator"}
"""Compose services named otherwise than the principal they run as."""


def test_compose_postgres_roles_are_what_the_declaration_renders() -> None:
    expected = compose_roles_script(deployed_principals())
    assert COMPOSE_ROLES.read_text(encoding="utf-8") == expected, (
        f"{COMPOSE_ROLES.name} is stale: {REGENERATE}"
    )
    postgres = compose()["services"]["postgres"]
    (config,) = postgres["configs"]
    assert compose()["configs"][config["source"]]["file"] == f"./{COMPOSE_ROLES.name}"
    assert config["target"].startswith("/docker-entrypoint-initdb.d/")
    passwords = {name for name in postgres["environment"] if name.endswith("_DATABASE_PASSWORD")}
    assert passwords == {password_variable(name) for name in database_roles(principals().values())}


def test_each_compose_service_connects_to_postgresql_as_its_own_role() -> None:
    for container in compose_containers():
        name = COMPOSE_PRINCIPALS.get(container.workload, container.workload)
        who = principals().get(name)
        url = container.env.get("DATABASE_URL")
        if who is None or not who.uses_database:
            assert url is None, container.where
            continue
        assert url is not None, container.where
        assert url.startswith(f"postgresql://{who.name}:${{{password_variable(who.name)}:?"), url
        others = {password_variable(other) for other in principals() if other != who.name}
        assert not any(variable in value for value in container.env.values() for variable in others)
    registry = compose()["services"][REGISTRY]["environment"]
    assert registry["APICURIO_DATASOURCE_USERNAME"] == REGISTRY
    assert password_variable(REGISTRY) in registry["APICURIO_DATASOURCE_PASSWORD"]
