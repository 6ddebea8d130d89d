"""The stack as testcontainers, for machines with a Docker engine (none runs on ours).

Same components and versions as the local stack (deploy/versions.mk); the SMTP server is the
project's own, run in-process. The settings are also exported to the environment so that
services started as subprocesses by tests reach the same containers.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from services.common.settings import Settings
from services.stack.layout import read_versions
from services.stack.process import wait_until
from services.stack.smtp_sink import build_controller
from tests.support import free_port


@contextmanager
def containers_stack() -> Iterator[Settings]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    from services.stack.__main__ import deploy_contract

    versions = read_versions()
    with (
        PostgresContainer(
            "postgres:15", username="harpicoop", password="harpicoop", dbname="harpicoop"
        ) as pg,
        KafkaContainer(f"apache/kafka:{versions['KAFKA_VERSION']}").with_kraft() as kafka,
        DockerContainer(
            f"apicurio/apicurio-registry:{versions['APICURIO_VERSION']}"
        ).with_exposed_ports(8080) as registry,
        tempfile.TemporaryDirectory() as maildir,
    ):
        registry_url = (
            f"http://{registry.get_container_host_ip()}:{registry.get_exposed_port(8080)}"
        )
        wait_until(
            lambda: (
                httpx.get(f"{registry_url}/apis/ccompat/v7/subjects", timeout=2).status_code == 200
            ),
            timeout=120,
            what="registry container",
        )
        smtp_port = free_port()
        smtp = build_controller("localhost", smtp_port, Path(maildir))
        smtp.start()
        database_url = (
            f"postgresql://harpicoop:harpicoop@{pg.get_container_host_ip()}:"
            f"{pg.get_exposed_port(5432)}/harpicoop"
        )
        with psycopg.connect(database_url) as conn:
            conn.execute("SELECT 1")
        environment = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka.get_bootstrap_server(),
            "SCHEMA_REGISTRY_URL": f"{registry_url}/apis/ccompat/v7",
            "DATABASE_URL": database_url,
            "SMTP_HOST": "localhost",
            "SMTP_PORT": str(smtp_port),
            "HARPICOOP_MAILDIR": maildir,
        }
        previous = {key: os.environ.get(key) for key in environment}
        os.environ.update(environment)
        try:
            settings = Settings.from_env()
            deploy_contract(settings)
            yield settings
        finally:
            smtp.stop()
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
