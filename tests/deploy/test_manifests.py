"""The deployment files, read as a cluster or Docker Compose would read them, checked against the
code: the topics against deploy/topics.toml, the services against the packages that have a
``__main__``, the environment variables against those the code reads, the versions against
deploy/versions.mk. Pure and fast: nothing is started, no Docker engine or cluster is needed
(where kubectl is installed, its built-in kustomize renders the two kustomizations, offline).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.paths import DEPLOY_DIR, PROJECT_ROOT
from services.common.topics import TopicSpec, declared_topics
from tests.deploy.generate_topics import KAFKA_CLUSTER, TOPICS_YAML, render

KUBERNETES_DIR = DEPLOY_DIR / "kubernetes"
REHEARSAL_DIR = DEPLOY_DIR / "kubernetes-rehearsal"
"""An overlay of KUBERNETES_DIR; kustomize wants it outside the folder it lays over."""
NAMESPACE = "harpicoop"
COMPOSE_FILE = DEPLOY_DIR / "compose.yaml"
VERSIONS_MK = DEPLOY_DIR / "versions.mk"
IMAGE = "harpicoop"
"""The image built with deploy/Dockerfile, which every service runs from."""
METRICS_PORT = "9400"

NOT_DEPLOYED = {
    "stack": "the local development stack (its mail sink serves rehearsals only)",
    "cli": "the operator's command line, run in a pod of the image or with `compose run`",
    "faults": "the fault suite, run on a local stack of its own (`make faults`)",
}

STREAMS = frozenset({"KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL"})
DATABASE = frozenset({"DATABASE_URL"})
REQUIRED = {
    "gateway": STREAMS | {"MLLP_PORT", "MLLP_TLS_CERT", "MLLP_TLS_KEY", "MLLP_TLS_CLIENT_CA"},
    "notify": STREAMS | DATABASE | {"SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY", "SMTP_FROM"},
    "analytics": STREAMS | DATABASE,
    "covid": STREAMS | DATABASE,
    "directory": STREAMS | DATABASE,
    "dashboard": STREAMS | DATABASE,
    "simulator": frozenset({"MLLP_HOST", "MLLP_PORT"}),
    "stack": frozenset(),
}
"""The platform variables each service cannot do without; any other service needs STREAMS."""
SCRIPTS = {"contract": STREAMS}
"""The same for the workloads running a script (``python -c`` or ``sh -c``: the contract's
topics and schemas); others (waiting for a port, say) need none."""

FIXED_VARIABLES = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "SCHEMA_REGISTRY_URL",
    "DATABASE_URL",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_SECURITY",
    "SMTP_FROM",
    "SMTP_CLIENT_CERT",
    "SMTP_CLIENT_KEY",
    "SMTP_CA_FILE",
    "MLLP_HOST",
    "MLLP_PORT",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_LOCATION",
    "KAFKA_SSL_CERTIFICATE_LOCATION",
    "KAFKA_SSL_KEY_LOCATION",
}

LOCAL_STATE = {"analytics": "ANALYTICS_DATA_DIR"}
"""Services keeping state on local disk (faust's RocksDB tables), with the variable naming its
folder: a StatefulSet whose every replica has a volume holding that folder."""
STABLE_IDENTITY = {"dedup": "DEDUP_INSTANCE_ID", "enrich": "ENRICH_TRANSACTIONAL_ID"}
"""Services naming their Kafka identity after their host (dedup its static group membership and
transactional id, enrich its transactional id), with the variable that would override it, and
keeping nothing on disk: a StatefulSet for its stable pod names only, without a volume."""
SINGLE_REPLICA = {"analytics"}
"""Exactly one replica, never scaled: its one worker must hold every input partition."""
LAG_SCALED = {"enrich", "notify"}
"""Scaled by KEDA on their consumer lag."""

Resource = dict[str, Any]
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader where PyYAML has it: the same documents, read faster."""


# --- reading the files ---------------------------------------------------------------------------


def _documents(path: Path) -> list[Resource]:
    return [item for item in yaml.load_all(path.read_text(encoding="utf-8"), Loader) if item]


@cache
def kubernetes_files() -> tuple[Path, ...]:
    return tuple(sorted([*KUBERNETES_DIR.rglob("*.yaml"), *REHEARSAL_DIR.rglob("*.yaml")]))


@cache
def patch_files() -> frozenset[Path]:
    """The files an overlay lays over resources of the base (they are no resources of their own)."""
    return frozenset(
        path.parent / patch["path"]
        for path in kubernetes_files()
        if path.name == "kustomization.yaml"
        for patch in _documents(path)[0].get("patches", [])
        if "path" in patch
    )


@cache
def kubernetes_resources(*, patches: bool = False) -> tuple[tuple[Path, Resource], ...]:
    """Every resource of every manifest, kustomizations included; overlays' patches too when
    asked."""
    return tuple(
        (path, item)
        for path in kubernetes_files()
        if patches or path not in patch_files()
        for item in _documents(path)
    )


def resources(kind: str) -> list[Resource]:
    return [item for _, item in kubernetes_resources() if item.get("kind") == kind]


def resource(kind: str, name: str) -> Resource:
    found = [item for item in resources(kind) if item["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


@cache
def compose() -> Resource:
    document: Resource = yaml.load(COMPOSE_FILE.read_text(encoding="utf-8"), Loader)
    return document


@cache
def pinned_versions() -> dict[str, str]:
    versions = {}
    for line in VERSIONS_MK.read_text(encoding="utf-8").splitlines():
        if ":=" in line and not line.lstrip().startswith("#"):
            name, value = line.split(":=", 1)
            versions[name.strip()] = value.strip()
    return versions


def topics_by_name() -> dict[str, TopicSpec]:
    return {spec.name: spec for spec in declared_topics()}


# --- what the code reads -------------------------------------------------------------------------

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _is_environment(node: ast.expr) -> bool:
    """``env``, ``environ`` or ``os.environ``: the names the code gives the environment."""
    return (isinstance(node, ast.Name) and node.id in {"env", "environ"}) or (
        isinstance(node, ast.Attribute) and node.attr == "environ"
    )


def _environment_keys(node: ast.AST) -> list[ast.expr] | None:
    """The key expressions of ``env.get(KEY)``, ``os.getenv(KEY)`` or ``os.environ[KEY]``;
    None when the node reads no variable."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        getter = node.func.attr == "get" and _is_environment(node.func.value)
        return node.args[:1] if getter or node.func.attr == "getenv" else None
    if isinstance(node, ast.Subscript) and _is_environment(node.value):
        return [node.slice]
    return None


def _names(nodes: list[ast.expr]) -> set[str]:
    return {
        node.value
        for node in nodes
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and ENV_NAME.match(node.value)
    }


def variables_read_by(source: str) -> set[str]:
    """Variable names in ``env.get("X")``, ``os.environ["X"]``, ``os.getenv("X")``, in the
    config fields ``setting(default, "X", ...)``, and the names passed to the helpers a settings
    function defines to read them (``port("MLLP_PORT", 2575)``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        keys = _environment_keys(node)
        if keys is not None:
            names |= _names(keys)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setting"
        ):
            names |= _names(node.args[1:])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            helpers = {
                inner.name
                for inner in node.body
                if isinstance(inner, ast.FunctionDef)
                and any(_environment_keys(item) is not None for item in ast.walk(inner))
            }
            for call in ast.walk(node):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Name)
                    and call.func.id in helpers
                ):
                    names |= _names(call.args)
    return names


@cache
def variables_read() -> frozenset[str]:
    names: set[str] = set()
    for path in sorted((PROJECT_ROOT / "services").rglob("*.py")):
        names |= variables_read_by(path.read_text(encoding="utf-8"))
    return frozenset(names)


def deployable_services() -> set[str]:
    return {
        path.parent.name
        for path in (PROJECT_ROOT / "services").glob("*/__main__.py")
        if path.parent.name not in NOT_DEPLOYED
    }


# --- the containers that run the image -----------------------------------------------------------


@dataclass(frozen=True)
class Container:
    workload: str
    """The workload's (Kubernetes) or the service's (Compose) name."""
    where: str
    service: str | None
    """``<name>`` of the ``python -m services.<name>...`` it runs; None for ``python -c``."""
    env: dict[str, str]
    """Each variable it gets and its value ("" when it comes from a Secret)."""
    mounts: tuple[str, ...]
    long_running: bool
    spec: Resource


def _service_of(argv: list[str]) -> str | None:
    for position, word in enumerate(argv[:-1]):
        if word == "-m" and argv[position + 1].startswith("services."):
            return argv[position + 1].split(".")[1]
    return None


def _pod_spec(workload: Resource) -> Resource:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod: Resource = spec["template"]["spec"]
    return pod


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "CronJob")


def kubernetes_workloads() -> Iterator[Resource]:
    for _, item in kubernetes_resources():
        if item.get("kind") in WORKLOAD_KINDS:
            yield item


def _config_map_data(name: str) -> dict[str, str]:
    data: dict[str, str] = {}
    for config_map in resources("ConfigMap"):
        if config_map["metadata"]["name"] == name:
            data.update(config_map.get("data") or {})
    assert data, f"no ConfigMap {name} in deploy/kubernetes"
    return data


@cache
def kubernetes_containers() -> tuple[Container, ...]:
    containers = []
    for workload in kubernetes_workloads():
        pod = _pod_spec(workload)
        for spec in pod.get("initContainers", []) + pod["containers"]:
            if spec["image"].split(":")[0] != IMAGE:
                continue
            env: dict[str, str] = {}
            for source in spec.get("envFrom", []):
                assert "configMapRef" in source, "variables from a whole Secret cannot be checked"
                env.update(_config_map_data(source["configMapRef"]["name"]))
            for variable in spec.get("env", []):
                env[variable["name"]] = str(variable.get("value", ""))
            containers.append(
                Container(
                    workload=workload["metadata"]["name"],
                    where=f"{workload['kind']} {workload['metadata']['name']}",
                    service=_service_of(spec.get("command", []) + spec.get("args", [])),
                    env=env,
                    mounts=tuple(mount["mountPath"] for mount in spec.get("volumeMounts", [])),
                    long_running=workload["kind"] in {"Deployment", "StatefulSet"},
                    spec=spec,
                )
            )
    return tuple(containers)


def _argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(word) for word in value]


def _compose_mount(volume: str) -> str:
    """The target of ``SOURCE:TARGET[:MODE]``; the source may hold ``${NAME:-default}``."""
    return [part for part in volume.split(":") if part.startswith("/")][-1]


@cache
def compose_containers() -> tuple[Container, ...]:
    containers = []
    for name, service in compose()["services"].items():
        if "build" not in service and not str(service.get("image", "")).startswith(IMAGE):
            continue
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        containers.append(
            Container(
                workload=name,
                where=f"compose service {name}",
                service=_service_of(
                    _argv(service.get("entrypoint")) + _argv(service.get("command"))
                ),
                env={key: str(value) for key, value in environment.items()},
                mounts=tuple(_compose_mount(str(volume)) for volume in service.get("volumes", [])),
                long_running=not service.get("profiles") and service.get("restart") != "no",
                spec=service,
            )
        )
    return tuple(containers)


def all_containers() -> tuple[Container, ...]:
    return kubernetes_containers() + compose_containers()


# --- the files themselves ------------------------------------------------------------------------


def test_every_manifest_is_yaml_of_resources_with_api_version_kind_and_name() -> None:
    assert kubernetes_files(), "no manifest in deploy/kubernetes"
    problems = []
    for path, item in kubernetes_resources(patches=True):
        where = path.relative_to(DEPLOY_DIR)
        if not (item.get("apiVersion") and item.get("kind")):
            problems.append(f"{where}: a document without apiVersion or kind")
        elif item["kind"] != "Kustomization" and not item.get("metadata", {}).get("name"):
            problems.append(f"{where}: a {item['kind']} without metadata.name")
    assert not problems, "\n".join(problems)


def test_each_kustomization_lists_every_manifest_of_its_folder_and_nothing_missing() -> None:
    kustomizations = [path for path in kubernetes_files() if path.name == "kustomization.yaml"]
    assert KUBERNETES_DIR / "kustomization.yaml" in kustomizations
    for path in kustomizations:
        (kustomization,) = _documents(path)
        listed = set(kustomization.get("resources", [])) | {
            patch["path"] for patch in kustomization.get("patches", []) if "path" in patch
        }
        for entry in listed:
            assert (path.parent / entry).exists(), f"{path}: {entry} does not exist"
        in_folder = {item.name for item in path.parent.glob("*.yaml")} - {path.name}
        assert in_folder <= listed, f"{path} leaves out {sorted(in_folder - listed)}"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (for its kustomize) not here")
@pytest.mark.parametrize("folder", [KUBERNETES_DIR, REHEARSAL_DIR], ids=lambda path: path.name)
def test_kustomize_builds_every_resource_into_the_namespace(folder: Path) -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    for item in yaml.load_all(built.stdout, Loader):
        if item["kind"] != "Namespace":
            assert item["metadata"]["namespace"] == NAMESPACE, (item["kind"], item["metadata"])


def test_no_secret_is_written_in_the_manifests() -> None:
    # Credentials and certificates are created at install time (deploy/README.md).
    assert not resources("Secret")


# --- Kafka and its topics ------------------------------------------------------------------------


def test_the_kafka_topics_file_is_what_the_declaration_implies() -> None:
    expected = render(declared_topics())
    assert TOPICS_YAML.read_text(encoding="utf-8") == expected, (
        "deploy/kubernetes/topics.yaml is out of date: run "
        ".venv/bin/python -m tests.deploy.generate_topics"
    )


def test_every_declared_topic_has_one_kafka_topic_with_its_partitions_and_cleanup() -> None:
    declared = topics_by_name()
    seen: dict[str, int] = {}
    for item in resources("KafkaTopic"):
        spec = item["spec"]
        name = spec.get("topicName", item["metadata"]["name"])
        seen[name] = seen.get(name, 0) + 1
        assert name in declared, f"KafkaTopic {name} is not declared in deploy/topics.toml"
        topic = declared[name]
        config = spec["config"]
        assert item["metadata"]["labels"]["strimzi.io/cluster"] == KAFKA_CLUSTER
        assert spec["partitions"] == topic.partitions, name
        assert spec["replicas"] == 3, name
        assert config["cleanup.policy"] == ("compact" if topic.compacted else "delete"), name
        assert int(config["min.insync.replicas"]) == 2, name
        annotations = item["metadata"]["annotations"]
        assert annotations["harpicoop.io/retention-reason"] == topic.retention_reason, name
        if not topic.compacted:
            assert int(config["retention.ms"]) == topic.retention_ms, name
    assert set(seen) == set(declared), f"no KafkaTopic for {sorted(set(declared) - set(seen))}"
    assert all(count == 1 for count in seen.values()), {k: v for k, v in seen.items() if v > 1}


def test_one_raw_topic_per_establishment_is_among_them() -> None:
    from services.common.establishments import load_establishments

    names = {item["spec"]["topicName"] for item in resources("KafkaTopic")}
    assert {f"stays.raw.{item.code}" for item in load_establishments()} <= names


def test_kafka_runs_three_brokers_in_kraft_mode_at_the_pinned_version() -> None:
    kafka = resource("Kafka", KAFKA_CLUSTER)
    assert kafka["spec"]["kafka"]["version"] == pinned_versions()["KAFKA_VERSION"]
    assert "zookeeper" not in kafka["spec"]
    pools = [
        pool
        for pool in resources("KafkaNodePool")
        if pool["metadata"]["labels"]["strimzi.io/cluster"] == KAFKA_CLUSTER
    ]
    brokers = sum(pool["spec"]["replicas"] for pool in pools if "broker" in pool["spec"]["roles"])
    controllers = sum(
        pool["spec"]["replicas"] for pool in pools if "controller" in pool["spec"]["roles"]
    )
    assert brokers == 3
    assert controllers % 2 == 1, "a KRaft quorum needs an odd number of controllers"
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["offsets.topic.replication.factor"] == 3
    assert kafka["spec"]["entityOperator"]["topicOperator"] is not None


def test_clients_reach_the_brokers_through_a_listener_of_the_cluster() -> None:
    kafka = resource("Kafka", KAFKA_CLUSTER)
    listeners = {item["port"]: item for item in kafka["spec"]["kafka"]["listeners"]}
    platform = _config_map_data("harpicoop-platform")
    host, port = platform["KAFKA_BOOTSTRAP_SERVERS"].split(":")
    assert host == f"{KAFKA_CLUSTER}-kafka-bootstrap"
    listener = listeners[int(port)]
    # TLS and SCRAM on the listener is SASL_SSL for the client, with the same mechanism.
    assert listener["tls"] is True
    assert listener["authentication"]["type"] == "scram-sha-512"
    assert platform["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert platform["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"


# --- services and their environment --------------------------------------------------------------


def test_the_scanner_sees_the_variables_settings_read() -> None:
    assert variables_read() >= FIXED_VARIABLES
    assert variables_read_by('def f(env):\n    return env.get("A_B"), env["C"]\n') == {"A_B", "C"}
    field = 'class C:\n    delay: dt.timedelta = setting(ONE, "D_SECONDS", "D_DAYS", minimum=0)\n'
    assert variables_read_by(field) == {"D_SECONDS", "D_DAYS"}
    assert {"NOTIFY_RETRY_MAX_SECONDS", "DEDUP_HORIZON_DAYS"} <= variables_read()


def test_every_service_runs_both_on_kubernetes_and_with_compose() -> None:
    services = deployable_services()
    assert {"gateway", "notify", "covid", "directory"} <= services
    on_kubernetes = {item.service for item in kubernetes_containers()}
    with_compose = {item.service for item in compose_containers()}
    assert services <= on_kubernetes, f"no workload for {sorted(services - on_kubernetes)}"
    assert services <= with_compose, f"no compose service for {sorted(services - with_compose)}"
    assert "dashboard" in on_kubernetes & with_compose


def test_every_variable_set_for_a_service_is_one_the_code_reads() -> None:
    read = variables_read()
    unknown = [
        f"{container.where}: {name}"
        for container in all_containers()
        for name in container.env
        if name not in read
    ]
    assert not unknown, "set but read by no code:\n" + "\n".join(unknown)


def test_overlays_only_set_variables_the_code_reads() -> None:
    read = variables_read()
    for path in patch_files():
        for item in _documents(path):
            if item["kind"] == "ConfigMap":
                assert set(item["data"]) <= read, f"{path}: {set(item['data']) - read}"


def test_every_service_gets_the_platform_variables_it_needs() -> None:
    missing = []
    for container in all_containers():
        if container.service is None:
            needed = SCRIPTS.get(container.workload, frozenset())
        else:
            needed = REQUIRED.get(container.service, STREAMS)
        lacking = needed - set(container.env)
        if lacking:
            missing.append(f"{container.where}: {sorted(lacking)}")
    assert not missing, "\n".join(missing)


def test_files_named_in_variables_are_on_a_mounted_volume() -> None:
    problems = []
    for container in all_containers():
        for name, value in container.env.items():
            if name.endswith(("_LOCATION", "_CERT", "_KEY", "_FILE", "_DATA_DIR")) and value:
                if value.startswith("$"):  # compose leaves it to the operator's .env
                    continue
                if not any(
                    value.startswith(mount.rstrip("/") + "/") or value == mount
                    for mount in container.mounts
                ):
                    problems.append(f"{container.where}: {name}={value} is on no volume")
    assert not problems, "\n".join(problems)


def test_long_running_services_serve_metrics_and_health_on_metrics_port() -> None:
    for container in all_containers():
        if container.long_running and container.service not in {"stack", None}:
            assert container.env.get("METRICS_PORT") == METRICS_PORT, container.where


# --- Kubernetes workloads ------------------------------------------------------------------------


def _port_number(spec: Resource, port: int | str) -> int:
    if isinstance(port, int):
        return port
    for item in spec.get("ports", []):
        if item.get("name") == port:
            number: int = item["containerPort"]
            return number
    raise AssertionError(f"no container port named {port}")


def test_every_container_has_resource_requests_and_limits() -> None:
    for workload in kubernetes_workloads():
        for spec in _pod_spec(workload)["containers"]:
            resources_ = spec.get("resources", {})
            where = f"{workload['kind']} {workload['metadata']['name']}"
            assert {"cpu", "memory"} <= set(resources_.get("requests", {})), where
            assert {"cpu", "memory"} <= set(resources_.get("limits", {})), where


def test_services_are_probed_and_scraped_on_their_metrics_port() -> None:
    for workload in kubernetes_workloads():
        name = workload["metadata"]["name"]
        # The registry and the mail sink are not ours; the operator's console serves nothing.
        if workload["kind"] not in {"Deployment", "StatefulSet"} or workload["metadata"][
            "name"
        ] in {"registry", "mail-sink", "operator"}:
            continue
        template = workload["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == METRICS_PORT, name
        assert annotations["prometheus.io/path"] == "/metrics", name
        (spec,) = template["spec"]["containers"]
        for probe in ("readinessProbe", "livenessProbe"):
            check = spec[probe]["httpGet"]
            assert check["path"] == "/health", (name, probe)
            assert str(_port_number(spec, check["port"])) == METRICS_PORT, (name, probe)


def _names_after_host(service: str) -> bool:
    """Whether the service's code calls ``socket.gethostname()``: an identity taken from the
    host, which only a StatefulSet keeps across restarts on Kubernetes."""
    return any(
        isinstance(node, ast.Attribute) and node.attr == "gethostname"
        for path in sorted((PROJECT_ROOT / "services" / service).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
    )


def _stream_partitions() -> int:
    return min(
        spec.partitions
        for spec in declared_topics()
        if spec.name.startswith("stays.raw.") or spec.name in {"stays.unique", "stays.enriched"}
    )


def test_stateful_sets_are_the_services_with_a_host_named_identity_or_local_state() -> None:
    assert not set(LOCAL_STATE) & set(STABLE_IDENTITY)
    assert {name for name in deployable_services() if _names_after_host(name)} == set(
        STABLE_IDENTITY
    )
    stateful_sets = {item["metadata"]["name"] for item in resources("StatefulSet")}
    assert stateful_sets & deployable_services() == set(LOCAL_STATE) | set(STABLE_IDENTITY)
    for name in stateful_sets & deployable_services():
        assert resource("StatefulSet", name)["spec"].get("replicas", 1) <= _stream_partitions()


@pytest.mark.parametrize("service", sorted(STABLE_IDENTITY))
def test_services_with_a_host_named_identity_keep_it_and_no_volume(service: str) -> None:
    variable = STABLE_IDENTITY[service]
    assert variable in variables_read(), f"{variable} is read nowhere"
    workload = resource("StatefulSet", service)
    assert "volumeClaimTemplates" not in workload["spec"], "it keeps nothing on disk"
    pod = workload["spec"]["template"]["spec"]
    # Secrets (certificates) and scratch space only: nothing that would outlive the pod.
    assert all({"secret", "emptyDir"} & set(volume) for volume in pod["volumes"]), service
    (composed,) = [item for item in compose_containers() if item.service == service]
    # Compose names a container's host after its id unless told: a new one on every re-creation.
    assert composed.spec.get("hostname") == service
    assert not composed.mounts, f"compose service {service} keeps nothing on disk"
    for container in all_containers():
        # One value for every replica would have them fence one another.
        if container.service == service:
            assert variable not in container.env, container.where


@pytest.mark.parametrize("service", sorted(LOCAL_STATE))
def test_services_with_local_state_keep_it_on_a_volume_of_each_replica(service: str) -> None:
    workload = resource("StatefulSet", service)
    claims = {claim["metadata"]["name"] for claim in workload["spec"]["volumeClaimTemplates"]}
    (spec,) = workload["spec"]["template"]["spec"]["containers"]
    on_claims = [item["mountPath"] for item in spec["volumeMounts"] if item["name"] in claims]
    data_dir = next(item["value"] for item in spec["env"] if item["name"] == LOCAL_STATE[service])
    assert any(data_dir == path or data_dir.startswith(path + "/") for path in on_claims), data_dir
    (composed,) = [item for item in compose_containers() if item.service == service]
    named_volumes = set(compose().get("volumes") or {})
    assert any(
        str(volume).split(":")[0] in named_volumes
        and _compose_mount(str(volume)) == composed.env[LOCAL_STATE[service]]
        for volume in composed.spec.get("volumes", [])
    ), f"compose service {service}: its {LOCAL_STATE[service]} on no named volume"


@pytest.mark.parametrize("service", sorted(SINGLE_REPLICA))
def test_single_replica_services_run_exactly_one_pod_and_are_never_scaled(service: str) -> None:
    # A StatefulSet, not a Deployment: a Deployment's rolling update starts the new pod beside
    # the old one; a StatefulSet never runs two pods of one ordinal at once.
    workload = resource("StatefulSet", service)
    assert workload["spec"].get("replicas") == 1, "written out: no autoscaler owns the count"
    assert service not in scaled_objects(), f"a ScaledObject scales {service}"
    autoscalers = resources("HorizontalPodAutoscaler")
    assert not [item for item in autoscalers if item["spec"]["scaleTargetRef"]["name"] == service]
    assert not [item for item in resources("Deployment") if item["metadata"]["name"] == service]
    (composed,) = [item for item in compose_containers() if item.service == service]
    assert "scale" not in composed.spec
    assert composed.spec.get("deploy", {}).get("replicas", 1) == 1


@cache
def scaled_objects() -> dict[str, Resource]:
    return {item["spec"]["scaleTargetRef"]["name"]: item for item in resources("ScaledObject")}


def test_lag_scaled_services_have_a_keda_kafka_trigger_within_their_partitions() -> None:
    assert set(scaled_objects()) == LAG_SCALED
    declared = topics_by_name()
    for name, scaled in scaled_objects().items():
        target = scaled["spec"]["scaleTargetRef"]
        resource(target.get("kind", "Deployment"), name)
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "kafka", name
        metadata = trigger["metadata"]
        topic = declared[metadata["topic"]]
        assert scaled["spec"]["minReplicaCount"] >= 1, name
        assert scaled["spec"]["maxReplicaCount"] <= topic.partitions, name
        assert metadata["bootstrapServers"].startswith(f"{KAFKA_CLUSTER}-kafka-bootstrap."), name
        assert metadata.get("tls") == "enable", name
        resource("TriggerAuthentication", trigger["authenticationRef"]["name"])
        # The HorizontalPodAutoscaler KEDA makes owns the count.
        assert "replicas" not in resource(target.get("kind", "Deployment"), name)["spec"], name


@pytest.mark.parametrize("service", sorted(LAG_SCALED))
def test_keda_watches_the_consumer_group_the_service_uses(service: str) -> None:
    try:
        config = importlib.import_module(f"services.{service}.config")
    except ModuleNotFoundError:
        pytest.skip(f"services.{service} has no config module yet")
    groups = {
        field.default
        for item in vars(config).values()
        if dataclasses.is_dataclass(item) and isinstance(item, type)
        for field in dataclasses.fields(item)
        if field.name == "group_id"
    }
    assert scaled_objects()[service]["spec"]["triggers"][0]["metadata"]["consumerGroup"] in groups


def test_the_gateway_takes_mllp_connections_and_keeps_one_replica_through_disruptions() -> None:
    gateway = resource("Deployment", "gateway")
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    (spec,) = gateway["spec"]["template"]["spec"]["containers"]
    mllp_port = int(next(item for item in spec["env"] if item["name"] == "MLLP_PORT")["value"])
    service = resource("Service", "gateway")
    (port,) = service["spec"]["ports"]
    assert port["protocol"] == "TCP"
    assert port["port"] == 2575
    assert _port_number(spec, port["targetPort"]) == mllp_port
    assert service["spec"]["selector"].items() <= labels.items()
    budget = resource("PodDisruptionBudget", "gateway")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] >= 1
    autoscaler = resource("HorizontalPodAutoscaler", "gateway")
    assert autoscaler["spec"]["minReplicas"] > budget["spec"]["minAvailable"]


def test_the_dashboard_is_served_on_its_port() -> None:
    dashboard = resource("Deployment", "dashboard")
    (spec,) = dashboard["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in spec["env"]}
    (port,) = resource("Service", "dashboard")["spec"]["ports"]
    assert port["port"] == 8088
    assert str(_port_number(spec, port["targetPort"])) == env["DASHBOARD_PORT"]
    assert env["DASHBOARD_HOST"] == "0.0.0.0"


def test_notify_presents_the_mssante_client_certificate_from_a_secret() -> None:
    notify = resource("Deployment", "notify")
    pod = notify["spec"]["template"]["spec"]
    (container,) = [item for item in kubernetes_containers() if item.where == "Deployment notify"]
    volumes = {item["name"]: item for item in pod["volumes"]}
    (mount,) = [
        item
        for item in container.spec["volumeMounts"]
        if "secret" in volumes[item["name"]]
        and volumes[item["name"]]["secret"]["secretName"] == "mssante-client-certificate"
    ]
    assert container.env["SMTP_SECURITY"] in {"tls", "starttls"}
    for name in ("SMTP_CLIENT_CERT", "SMTP_CLIENT_KEY"):
        assert container.env[name].startswith(mount["mountPath"] + "/"), name


def test_the_registry_is_apicurio_at_the_pinned_version_storing_in_postgresql() -> None:
    registry = resource("Deployment", "registry")
    (spec,) = registry["spec"]["template"]["spec"]["containers"]
    image, tag = spec["image"].rsplit(":", 1)
    assert image.endswith("apicurio/apicurio-registry")
    assert tag == pinned_versions()["APICURIO_VERSION"]
    env = {item["name"]: item for item in spec["env"]}
    assert env["APICURIO_STORAGE_KIND"]["value"] == "sql"
    assert env["APICURIO_STORAGE_SQL_KIND"]["value"] == "postgresql"
    for name in ("URL", "USERNAME", "PASSWORD"):
        assert "secretKeyRef" in env[f"APICURIO_DATASOURCE_{name}"]["valueFrom"], name
    platform = _config_map_data("harpicoop-platform")
    port = resource("Service", "registry")["spec"]["ports"][0]["port"]
    assert platform["SCHEMA_REGISTRY_URL"] == f"http://registry:{port}/apis/ccompat/v7"


# --- Docker Compose ------------------------------------------------------------------------------


def _image_tag(service: str) -> tuple[str, str]:
    image, tag = str(compose()["services"][service]["image"]).rsplit(":", 1)
    return image, tag


def test_compose_runs_kafka_and_apicurio_at_the_pinned_versions() -> None:
    assert _image_tag("kafka") == ("apache/kafka", pinned_versions()["KAFKA_VERSION"])
    image, tag = _image_tag("registry")
    assert image.endswith("apicurio/apicurio-registry")
    assert tag == pinned_versions()["APICURIO_VERSION"]
    kafka = compose()["services"]["kafka"]["environment"]
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}


def test_compose_builds_every_service_from_the_dockerfile() -> None:
    for container in compose_containers():
        build = container.spec["build"]
        assert (COMPOSE_FILE.parent / build["context"] / build["dockerfile"]).resolve() == (
            DEPLOY_DIR / "Dockerfile"
        ), container.where


def test_compose_services_are_health_checked_and_wait_for_what_they_need() -> None:
    services = compose()["services"]

    def satisfiable(condition: str, target: Resource) -> bool:
        if condition == "service_healthy":
            return "healthcheck" in target
        if condition == "service_completed_successfully":
            return bool(target.get("restart") == "no")  # a one-shot job
        return condition == "service_started"

    for name, service in services.items():
        long_running = not service.get("profiles") and service.get("restart") != "no"
        assert not long_running or "healthcheck" in service, f"{name} has no healthcheck"
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
        for target, rule in depends_on.items():
            assert target in services, f"{name} depends on an unknown {target}"
            condition = rule["condition"]
            assert satisfiable(condition, services[target]), f"{name} → {target}: {condition}"


def test_the_dockerfile_installs_the_project_for_a_user_without_privileges() -> None:
    dockerfile = (DEPLOY_DIR / "Dockerfile").read_text(encoding="utf-8")
    instructions = [line.split(None, 1) for line in dockerfile.splitlines() if line[:1].isalpha()]
    assert instructions[0] == ["FROM", "python:3.11-slim"]
    users = [argument for keyword, argument in instructions if keyword == "USER"]
    assert users and not users[-1].startswith(("0", "root"))
    assert any(keyword == "RUN" and "pip install" in argument for keyword, argument in instructions)
    assert not re.search(r"(PASSWORD|SECRET|TOKEN)\s*=", dockerfile)
