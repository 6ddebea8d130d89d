"""deploy/kubernetes/users.yaml, deploy/kubernetes/network-policies.yaml and
deploy/compose-postgres-roles.sh, written from deploy/access.toml: a Strimzi ``KafkaUser`` per
deployed principal, with exactly the ACLs ``kafka_grants`` expands its rights into (the ones
``make up`` applies locally); the network policies that deny every flow in the namespace but those
the declaration implies; and the PostgreSQL roles of the compose deployment.

    .venv/bin/python -m tests.deploy.generate_access

Run it after editing access.toml; tests/deploy/test_access_manifests.py fails while a committed
file differs from what the declaration implies.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from services.common.access import Grant, Principal, deployed_principals, kafka_grants
from services.common.paths import DEPLOY_DIR
from services.stack.roles import ClusterState, database_users, plan_database, plan_roles
from tests.deploy.generate_topics import KAFKA_CLUSTER

KUBERNETES_DIR = DEPLOY_DIR / "kubernetes"
USERS_YAML = KUBERNETES_DIR / "users.yaml"
POLICIES_YAML = KUBERNETES_DIR / "network-policies.yaml"
COMPOSE_ROLES = DEPLOY_DIR / "compose-postgres-roles.sh"
COMPOSE_DATABASE = "harpicoop"
"""The services' database in deploy/compose.yaml (its superuser's too)."""

NAME_LABEL = "app.kubernetes.io/name"
"""Every workload's pods carry their principal's name under this label (the registry and the
contract Job theirs)."""

KAFKA_PORT = 9093
"""The cluster's client listener (kafka.yaml): TLS and SCRAM-SHA-512."""
REGISTRY_PORT = 8080
POSTGRES_PORT = 5432
SMTP_PORTS = (465, 587, 993)
"""The operator's relay (implicit TLS, STARTTLS) and its IMAP server (implicit TLS), where the
platform's mailbox receives delivery reports, read receipts and bounces."""
MLLP_PORT = 2575
DASHBOARD_PORT = 8088
METRICS_PORT = 9400
KUBERNETES_API_PORTS = (443, 6443)

CONTRACT = "contract"
"""The Job registering the schemas before a release (contract.yaml): the registry only."""
REGISTRY = "registry"

# Where the cluster's shared components run: the site may name them otherwise (an overlay
# patching the policies, or these constants and a regeneration).
KEDA_NAMESPACE = "keda"
MONITORING_NAMESPACE = "monitoring"
"""Prometheus, scraping the pods annotated ``prometheus.io/scrape``."""
INGRESS_NAMESPACE = "ingress-nginx"
"""The Ingress controller publishing the dashboard behind the site's sign-on."""

OUTSIDE_THE_NAMESPACE = {"autoscaler": KEDA_NAMESPACE}
"""Principals whose client runs in another namespace: no pod here, their Kafka flow is a peer of
the brokers' listener (kafka.yaml) instead of a policy of their own."""

HEADER = """\
# Generated from deploy/access.toml by
#     .venv/bin/python -m tests.deploy.generate_access
# Do not edit: tests/deploy/test_access_manifests.py checks that this file is what it implies.
"""

Resource = dict[str, Any]


# --- Kafka users ---------------------------------------------------------------------------------


def acl(grant: Grant) -> Resource:
    resource: Resource = {"type": grant.resource}
    if grant.resource != "cluster":  # the cluster has no name
        resource.update({"name": grant.name, "patternType": grant.pattern})
    return {"resource": resource, "operations": list(grant.operations), "host": "*"}


def kafka_user(who: Principal) -> Resource:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaUser",
        "metadata": {
            "name": who.name,
            "labels": {"strimzi.io/cluster": KAFKA_CLUSTER},
            "annotations": {"harpicoop.io/doc": who.doc},
        },
        "spec": {
            # The User Operator keeps its password in the Secret of the same name (key
            # `password`), which only this principal's pods read.
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": [acl(item) for item in kafka_grants(who)]},
        },
    }


def kafka_users(principals: Iterable[Principal]) -> list[Resource]:
    return [kafka_user(who) for who in principals if kafka_grants(who)]


# --- network policies ----------------------------------------------------------------------------


def pods(*names: str) -> Resource:
    if len(names) == 1:
        return {"matchLabels": {NAME_LABEL: names[0]}}
    return {"matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": sorted(names)}]}


def namespace(name: str) -> Resource:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def tcp(*numbers: int) -> list[Resource]:
    return [{"protocol": "TCP", "port": number} for number in numbers]


BROKERS: Resource = {
    "podSelector": {
        "matchLabels": {"strimzi.io/cluster": KAFKA_CLUSTER, "strimzi.io/broker-role": "true"}
    }
}
KAFKA_PODS: Resource = {"podSelector": {"matchLabels": {"strimzi.io/cluster": KAFKA_CLUSTER}}}

TO_BROKERS: Resource = {"to": [BROKERS], "ports": tcp(KAFKA_PORT)}
TO_REGISTRY: Resource = {"to": [{"podSelector": pods(REGISTRY)}], "ports": tcp(REGISTRY_PORT)}
# PostgreSQL and the MSSanté relay are outside the cluster, at addresses of the site: the port
# is what the platform knows. Narrow `to` with an ipBlock of their addresses in an overlay.
TO_POSTGRES: Resource = {"ports": tcp(POSTGRES_PORT)}
TO_SMTP: Resource = {"ports": tcp(*SMTP_PORTS)}


def policy(
    name: str,
    doc: str,
    selector: Resource,
    *,
    ingress: list[Resource] | None = None,
    egress: list[Resource] | None = None,
) -> Resource:
    """A policy for the pods ``selector`` picks; ``ingress`` or ``egress`` given (an empty list
    denies every flow that way) makes it govern that direction."""
    spec: Resource = {"podSelector": selector, "policyTypes": []}
    for kind, rules in (("Ingress", ingress), ("Egress", egress)):
        if rules is not None:
            spec["policyTypes"].append(kind)
            if rules:
                spec[kind.lower()] = rules
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "annotations": {"harpicoop.io/doc": doc}},
        "spec": spec,
    }


def principal_policy(who: Principal) -> Resource:
    """What the declaration lets ``who`` reach, and who may reach it."""
    egress = []
    if kafka_grants(who):
        egress.append(TO_BROKERS)
    if who.registry:
        egress.append(TO_REGISTRY)
    if who.uses_database:
        egress.append(TO_POSTGRES)
    if who.smtp:
        egress.append(TO_SMTP)
    # The establishments' engines are outside the cluster, behind the gateway's LoadBalancer
    # (restricted to their addresses by loadBalancerSourceRanges, gateway.yaml).
    ingress = [{"ports": tcp(MLLP_PORT)}] if who.mllp else None
    return policy(who.name, who.doc, pods(who.name), ingress=ingress, egress=egress)


def in_namespace(principals: Iterable[Principal]) -> list[Principal]:
    return [who for who in principals if who.name not in OUTSIDE_THE_NAMESPACE]


def listener_peers(principals: Iterable[Principal]) -> list[Resource]:
    """Who may open a connection to the brokers' client listener: the ``networkPolicyPeers`` of
    kafka.yaml, from which Strimzi writes the brokers' ingress policy."""
    clients = [who.name for who in principals if kafka_grants(who)]
    inside = [name for name in clients if name not in OUTSIDE_THE_NAMESPACE]
    outside = sorted({OUTSIDE_THE_NAMESPACE[name] for name in clients if name not in inside})
    return [{"podSelector": pods(*inside)}, *[namespace(name) for name in outside]]


def platform_policies(principals: list[Principal], scraped: list[str]) -> list[Resource]:
    """The flows of the platform's own machinery, which no principal declares."""
    registry_clients = [who.name for who in in_namespace(principals) if who.registry]
    everything: Resource = {}
    return [
        policy(
            "default-deny",
            "Nothing reaches a pod of the namespace, and no pod reaches anything, unless a "
            "policy below allows it.",
            everything,
            ingress=[],
            egress=[],
        ),
        policy(
            "dns",
            "Every pod resolves names through the cluster's DNS.",
            everything,
            egress=[
                {
                    "to": [
                        {
                            **namespace("kube-system"),
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        ),
        policy(
            "kafka-cluster",
            "The Strimzi pods talk among themselves (controllers, brokers, entity operator); "
            "their ingress is the policies Strimzi writes from kafka.yaml.",
            KAFKA_PODS["podSelector"],
            egress=[{"to": [KAFKA_PODS]}],
        ),
        policy(
            "entity-operator",
            "The Topic and User Operators watch their resources in the Kubernetes API.",
            {
                "matchLabels": {
                    "strimzi.io/cluster": KAFKA_CLUSTER,
                    "strimzi.io/name": f"{KAFKA_CLUSTER}-entity-operator",
                }
            },
            egress=[{"ports": tcp(*KUBERNETES_API_PORTS)}],
        ),
        policy(
            REGISTRY,
            "The schema registry: reached by the principals with `registry = true` and the "
            "contract Job; keeps its schemas in its own PostgreSQL database.",
            pods(REGISTRY),
            ingress=[
                {
                    "from": [{"podSelector": pods(*registry_clients, CONTRACT)}],
                    "ports": tcp(REGISTRY_PORT),
                }
            ],
            egress=[TO_POSTGRES],
        ),
        policy(
            CONTRACT,
            "Registers the value schemas before a release.",
            pods(CONTRACT),
            egress=[TO_REGISTRY],
        ),
        policy(
            "dashboard-http",
            "The dashboard's page, published by the site's Ingress controller.",
            pods("dashboard"),
            ingress=[{"from": [namespace(INGRESS_NAMESPACE)], "ports": tcp(DASHBOARD_PORT)}],
        ),
        policy(
            "prometheus-scraping",
            "Prometheus scrapes /metrics of the pods annotated prometheus.io/scrape.",
            pods(*scraped),
            ingress=[{"from": [namespace(MONITORING_NAMESPACE)], "ports": tcp(METRICS_PORT)}],
        ),
    ]


def network_policies(principals: list[Principal], scraped: list[str]) -> list[Resource]:
    return platform_policies(principals, scraped) + [
        principal_policy(who) for who in in_namespace(principals)
    ]


@cache
def scraped_workloads(folder: Path = KUBERNETES_DIR) -> tuple[str, ...]:
    """The workloads whose pods the manifests annotate for Prometheus."""
    names = set()
    for path in sorted(folder.glob("*.yaml")):
        if path in {USERS_YAML, POLICIES_YAML}:
            continue
        for item in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            template = ((item or {}).get("spec") or {}).get("template") or {}
            annotations = (template.get("metadata") or {}).get("annotations") or {}
            if annotations.get("prometheus.io/scrape") == "true":
                names.add(template["metadata"]["labels"][NAME_LABEL])
    return tuple(sorted(names))


# --- the compose deployment's PostgreSQL roles ---------------------------------------------------


def password_variable(name: str) -> str:
    """The variable of deploy/.env holding the PostgreSQL password of ``name``."""
    return f"{name.upper()}_DATABASE_PASSWORD"


def database_roles(principals: Iterable[Principal]) -> list[str]:
    """The roles of the compose deployment's PostgreSQL that log in: each principal that
    connects, and the registry, whose database is its own."""
    return [who.name for who in database_users(principals)] + [REGISTRY]


COMPOSE_ROLES_HEADER = """\
# Run once by the postgres image when compose creates its volume (deploy/compose.yaml): a role
# per principal that connects, with the password of its variable in deploy/.env.
"""


def compose_roles_script(principals: list[Principal]) -> str:
    """Run by the postgres image once, when compose creates its volume (as its superuser): the
    statements ``make up`` runs on a new cluster (``services.stack.roles``), the passwords
    apart."""
    roles = database_roles(principals)
    statements = [
        f"{statement.as_string(None)};"
        for statement in plan_roles(principals, ClusterState(), None)
    ]
    statements.append(f"CREATE ROLE {REGISTRY} LOGIN;")
    # The passwords reach psql as variables, quoted by it (:'name'), never spliced into SQL.
    statements += [f"ALTER ROLE {name} PASSWORD :'{name}';" for name in roles]
    # Only the platform's roles reach its database, each owner in its schema; the readers get
    # the views their owners' migrations grant to <schema>_reader.
    statements += [
        f"{statement.as_string(None)};" for statement in plan_database(COMPOSE_DATABASE, principals)
    ]
    # Only the registry reaches its own.
    statements.append(f"CREATE DATABASE {REGISTRY} OWNER {REGISTRY};")
    statements.append(f"REVOKE ALL ON DATABASE {REGISTRY} FROM PUBLIC;")
    # The passwords reach psql as variables, quoted by it (:'name'), never spliced into SQL.
    command = [
        'psql --set=ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB"',
        *[f'    --set={name}="${password_variable(name)}"' for name in roles],
        "    <<'SQL'",
    ]
    return "".join(
        [
            "#!/bin/sh\n",
            HEADER,
            COMPOSE_ROLES_HEADER,
            " \\\n".join(command) + "\n",
            *[statement + "\n" for statement in statements],
            "SQL\n",
        ]
    )


# --- files ---------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no types here
    """Writes a selector used twice in full: a manifest reads better without YAML anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _render(documents: list[Resource]) -> str:
    texts = [
        yaml.dump(item, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
        for item in documents
    ]
    return HEADER + "---\n" + "---\n".join(texts)


def render_users(principals: list[Principal]) -> str:
    return _render(kafka_users(principals))


def render_policies(principals: list[Principal], scraped: Iterable[str]) -> str:
    return _render(network_policies(principals, list(scraped)))


def write() -> list[Path]:
    principals = deployed_principals()
    USERS_YAML.write_text(render_users(principals), encoding="utf-8")
    POLICIES_YAML.write_text(render_policies(principals, scraped_workloads()), encoding="utf-8")
    COMPOSE_ROLES.write_text(compose_roles_script(principals), encoding="utf-8")
    return [USERS_YAML, POLICIES_YAML, COMPOSE_ROLES]


if __name__ == "__main__":
    for path in write():
        print(f"wrote {path}")
