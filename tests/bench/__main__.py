"""``make bench``: every ``tests/bench/bench_*.py`` against the running stack, figures as JSON.

Each benchmark module has ``run(settings) -> dict`` returning its figures (rates per second,
latencies in milliseconds, sizes). The report goes to ``bench-results/bench.json`` with the
machine's description, so figures from different runs can be compared, and the rates and
latencies are drawn in ``bench-results/bench.png``.

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

RESULTS = PROJECT_ROOT / "bench-results"


def available() -> list[str]:
    return sorted(
        path.stem.removeprefix("bench_") for path in Path(__file__).parent.glob("bench_*.py")
    )


def draw(benchmarks: dict[str, dict[str, Any]], target: Path) -> Path:
    """Two horizontal bar charts: rates (per second) and latencies (milliseconds)."""
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

    panels = [("per second", figures("per_s")), ("milliseconds", figures("_ms"))]
    panels = [(unit, rows) for unit, rows in panels if rows] or [("no figures", [("none", 0.0)])]
    height = max(3.0, 0.35 * sum(len(rows) for _, rows in panels) + 1.5)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, height), squeeze=False)
    for axis, (unit, rows) in zip(axes[:, 0], panels, strict=True):
        labels, values = zip(*rows, strict=True)
        axis.barh(labels, values, color="#1f5f99")
        axis.invert_yaxis()
        positive = [value for value in values if value > 0]
        if positive and max(positive) / min(positive) > 100:
            axis.set_xscale("log")  # rates from tens to tens of thousands stay readable
            unit += " (log scale)"
        axis.set_xlabel(unit)
        axis.grid(axis="x", alpha=0.3)
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    fig.suptitle("Harpicoop benchmarks")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"some of: {', '.join(available())}")
    args = parser.parse_args()
    names = args.names or available()
    settings = Settings.from_env(principal=TESTS)
    report: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "benchmarks": {},
    }
    failed = []
    for index, name in enumerate(names, start=1):
        print(f"[{index}/{len(names)}] {name} ...", flush=True)
        started = time.monotonic()
        try:
            module = importlib.import_module(f"tests.bench.bench_{name}")
            figures = module.run(settings)
        except Exception as error:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            figures = {"error": f"{type(error).__name__}: {error}"}
        figures["seconds"] = round(time.monotonic() - started, 1)
        report["benchmarks"][name] = figures
        print(f"    {json.dumps(figures)}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / "bench.json"
    target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    chart = draw(report["benchmarks"], RESULTS / "bench.png")
    ran = len(names) - len(failed)
    print(f"{ran} of {len(names)} benchmarks ran; report in {target}, chart in {chart}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
