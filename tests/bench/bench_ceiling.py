"""The broker's ceiling: Kafka's own producer benchmark (``kafka-producer-perf-test``, the class
``org.apache.kafka.tools.ProducerPerformance``) writing records of a StayEvent's size to a fresh
three-partition topic of the local broker, as fast as it can with ``acks=all``.

The stack fetches only the broker's jars from Maven Central (no tarball, so no ``bin/``); the
tool's jar, ``kafka-tools`` of the same version, is fetched once beside them
(``.stack/dist/kafka-tools-<version>/``) and run on the broker's classpath, which holds its
dependencies. It signs in as the tests' principal through a client properties file written 0600
in a temporary folder, removed afterwards.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

from services.common.kafka import make_admin
from services.common.settings import Settings
from services.common.topics import TopicSpec, ensure_topics
from services.stack.components import Kafka
from services.stack.layout import StackLayout

RECORDS = 300_000
RECORD_BYTES = 270
"""About a StayEvent's Avro encoding (``bench_streams`` reports the size of its records)."""
TOOL = "org.apache.kafka.tools.ProducerPerformance"
SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<per_s>[\d.]+) records/sec \((?P<mb>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, "
    r"(?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th"
)


def classpath(layout: StackLayout | None = None) -> str:
    """The broker's jars and the tool's, fetched with Maven the first time."""
    kafka = Kafka(layout or StackLayout.default())
    version = kafka.versions["KAFKA_VERSION"]
    tools = kafka.layout.dist / f"kafka-tools-{version}"
    jar = tools / f"kafka-tools-{version}.jar"
    if not jar.exists():
        tools.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "dependency:copy",
                f"-Dartifact=org.apache.kafka:kafka-tools:{version}",
                f"-DoutputDirectory={tools}",
            ],
            cwd=tools,  # Maven without a POM leaves marker folders in its working directory
            check=True,
            capture_output=True,
        )
    return f"{kafka.libs}/*:{jar}"


def client_properties(settings: Settings, folder: Path) -> Path:
    """The Java client's sign-in as the settings' principal, readable by its owner only."""
    security = settings.kafka_security
    lines = [
        f"bootstrap.servers={settings.kafka_bootstrap_servers}",
        f"security.protocol={security.protocol}",
    ]
    if security.sasl_mechanism:
        module = "org.apache.kafka.common.security.scram.ScramLoginModule"
        lines += [
            f"sasl.mechanism={security.sasl_mechanism}",
            f'sasl.jaas.config={module} required username="{security.sasl_username}" '
            f'password="{security.sasl_password}";',
        ]
    path = folder / "client.properties"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return path


def parse_summary(output: str) -> dict[str, float]:
    """The tool's last line: records/s, MB/s and its latencies."""
    found = list(SUMMARY.finditer(output))
    if not found:
        raise RuntimeError(f"no summary in the tool's output: {output[-500:]!r}")
    last = found[-1]
    return {name: float(value) for name, value in last.groupdict().items()}


def run(settings: Settings) -> dict[str, Any]:
    jars = classpath()
    topic = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    admin = make_admin(settings)
    ensure_topics(admin, [TopicSpec(topic, None, 3, False, retention_ms=3_600_000)])
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ceiling-") as folder:
            properties = client_properties(settings, Path(folder))
            done = subprocess.run(
                [
                    "java",
                    "-Xmx256m",
                    "-cp",
                    jars,
                    TOOL,
                    "--topic",
                    topic,
                    "--num-records",
                    str(RECORDS),
                    "--record-size",
                    str(RECORD_BYTES),
                    "--throughput",
                    "-1",
                    "--command-config",
                    str(properties),
                    "--command-property",
                    "acks=all",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
    finally:
        admin.delete_topics([topic])
    summary = parse_summary(done.stdout)
    return {
        "records": int(summary["records"]),
        "record_bytes": RECORD_BYTES,
        "producer_perf_test_per_s": round(summary["per_s"]),
        "producer_perf_test_mb_per_second": summary["mb"],
        "producer_perf_test_p99_ms": summary["p99"],
    }
