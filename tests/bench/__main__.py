"""``make bench``: issue 14's benchmarks side by side in one run, against the running stack.

By default, in this order: Kafka's own producer benchmark (``ceiling``), the stream stages as
ratios to a passthrough measured in the same run (``streams``), the gateway's ACK rate over
eleven connections (``gateway``), and the whole platform at a steady rate and in a burst with the
memory it takes (``end_to_end``). The other benchmarks run when named.

Each benchmark module has ``run(settings) -> dict`` returning its figures (rates per second,
latencies in milliseconds, sizes). The report goes to ``bench-results/bench.json`` with the
machine's description and its load (``/proc/loadavg``) before and after each benchmark, each
target of issue 14 with whether it is met (``targets``); the figures are drawn in
``bench-results/bench.png`` and summed up in a table at the end.

    python -m tests.bench [name ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from services.common.access import TESTS
from services.common.paths import PROJECT_ROOT
from services.common.settings import Settings
from tests.bench.targets import TARGETS, evaluate, figure, human

RESULTS = PROJECT_ROOT / "bench-results"
DEFAULT = ["ceiling", "streams", "gateway", "end_to_end"]
CEILING = "ceiling.producer_perf_test_per_s"
SUMMARY = [
    ("Kafka producer-perf-test (ceiling)", CEILING, "/s"),
    ("passthrough consume→produce", "streams.passthrough_per_s", "/s"),
    ("dedup", "streams.dedup_per_s", "/s"),
    ("enrich", "streams.enrich_per_s", "/s"),
    ("analytics", "streams.analytics_per_s", "/s"),
    ("gateway ACKs, 11 TLS connections", "gateway.eleven_connections_acked_per_s", "/s"),
    ("end to end at 100/s offered, p50", "end_to_end.steady_p50_ms", " ms"),
    ("end to end at 100/s offered, p99", "end_to_end.steady_p99_ms", " ms"),
    ("burst of 5,000, emails/s", "end_to_end.burst_emails_per_s", "/s"),
    ("peak RSS, stack", "end_to_end.peak_rss_stack_bytes", " B"),
    ("peak RSS, services", "end_to_end.peak_rss_services_bytes", " B"),
]


def available() -> list[str]:
    return sorted(
        path.stem.removeprefix("bench_") for path in Path(__file__).parent.glob("bench_*.py")
    )


def loadavg() -> str:
    return Path("/proc/loadavg").read_text(encoding="ascii").strip()


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    models = [
        line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line
    ]
    meminfo = Path("/proc/meminfo").read_text(encoding="ascii").splitlines()
    memory_kib = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": models[0] if models else platform.processor(),
        "memory_bytes": memory_kib * 1024,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def draw(benchmarks: dict[str, dict[str, Any]], target: Path) -> Path:
    """Up to three horizontal bar charts: the stages' ratios to the passthrough (with their
    targets), the rates per second with Kafka's own ceiling as a line, the latencies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def figures(suffix: str) -> list[tuple[str, float]]:
        return [
            (f"{name}: {key.removesuffix(suffix).rstrip('_')}", float(value))
            for name, values in benchmarks.items()
            for key, value in values.items()
            if key.endswith(suffix) and isinstance(value, int | float)
        ]

    wanted = {t.figure.split(".", 1)[1]: t.at_least for t in TARGETS if t.at_least is not None}
    panels = [
        ("ratio to the passthrough of the same run (| target)", figures("_to_passthrough")),
        ("per second", figures("per_s")),
        ("milliseconds", figures("_ms")),
    ]
    panels = [(unit, rows) for unit, rows in panels if rows] or [("no figures", [("none", 0.0)])]
    height = max(3.0, 0.35 * sum(len(rows) for _, rows in panels) + 2.0 * len(panels))
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, height), squeeze=False)
    ceiling = figure(benchmarks, CEILING)
    for axis, (unit, rows) in zip(axes[:, 0], panels, strict=True):
        labels, values = zip(*rows, strict=True)
        axis.barh(labels, values, color="#1f5f99")
        axis.invert_yaxis()
        if unit.startswith("ratio"):
            for y, label in enumerate(labels):
                goal = wanted.get(label.split(": ", 1)[1] + "_to_passthrough")
                if goal is not None:
                    axis.plot([goal, goal], [y - 0.4, y + 0.4], color="#c0392b", linewidth=2)
        positive = [value for value in values if value > 0]
        if unit == "per second" and ceiling:
            axis.axvline(ceiling, color="#c0392b", linestyle="--", label="Kafka's own ceiling")
            axis.legend(loc="lower right", fontsize=8)
            positive.append(ceiling)
        if positive and max(positive) / min(positive) > 100:
            axis.set_xscale("log")  # rates from tens to tens of thousands stay readable
            unit += " (log scale)"
        axis.set_xlabel(unit)
        axis.grid(axis="x", alpha=0.3)
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:,.3g}" if value < 10 else f" {value:,.0f}", va="center")
    fig.suptitle(f"Harpicoop benchmarks (load {loadavg().split()[0]} at the end)")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def summary(report: dict[str, Any]) -> str:
    """The table printed at the end: every headline figure, then each target met or not."""
    benchmarks = report["benchmarks"]
    lines = [f"{'figure':<40} {'value':>14}"]
    for label, name, unit in SUMMARY:
        lines.append(f"{label:<40} {human(figure(benchmarks, name), unit):>14}")
    lines += ["", f"{'target (issue 14)':<44} {'before':>18} {'target':>12} {'now':>12}  met"]
    units = {target.figure: target.unit for target in TARGETS}
    for row in report["targets"]:
        met = {True: "yes", False: "NO", None: "-"}[row["met"]]
        value = human(row["value"], units[row["figure"]])
        lines.append(f"{row['label']:<44} {row['now']:>18} {row['target']:>12} {value:>12}  {met}")
    lines.append(f"load average: {report['loadavg_at_start']} → {report['loadavg_at_end']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"some of: {', '.join(available())}")
    args = parser.parse_args()
    names = args.names or DEFAULT
    settings = Settings.from_env(principal=TESTS)
    report: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "loadavg_at_start": loadavg(),
        "benchmarks": {},
    }
    failed = []
    for index, name in enumerate(names, start=1):
        print(f"[{index}/{len(names)}] {name} (load {loadavg()}) ...", flush=True)
        started = time.monotonic()
        before = loadavg()
        try:
            module = importlib.import_module(f"tests.bench.bench_{name}")
            figures = module.run(settings)
        except Exception as error:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            figures = {"error": f"{type(error).__name__}: {error}"}
        figures["seconds"] = round(time.monotonic() - started, 1)
        figures["loadavg"] = {"before": before, "after": loadavg()}
        report["benchmarks"][name] = figures
        print(f"    {json.dumps(figures)}", flush=True)
    report["loadavg_at_end"] = loadavg()
    report["targets"] = evaluate(report["benchmarks"])
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / "bench.json"
    target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    chart = draw(report["benchmarks"], RESULTS / "bench.png")
    print()
    print(summary(report))
    ran = len(names) - len(failed)
    print(f"\n{ran} of {len(names)} benchmarks ran; report in {target}, chart in {chart}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
