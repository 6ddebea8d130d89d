"""The figures issue 14 sets a target for, and whether a run met them: pure, no I/O.

A figure is named ``<benchmark>.<key>`` after the JSON report (``bench-results/bench.json``);
"now" is the figure the issue measured before its work, on the same two-core machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GIB = 1024**3


@dataclass(frozen=True)
class Target:
    figure: str
    """``<benchmark>.<key>`` in the report."""
    label: str
    now: str
    at_least: float | None = None
    at_most: float | None = None
    unit: str = ""

    def met(self, value: float) -> bool:
        if self.at_least is not None and value < self.at_least:
            return False
        return self.at_most is None or value <= self.at_most

    @property
    def wanted(self) -> str:
        if self.at_least is not None:
            return f">= {human(self.at_least, self.unit)}"
        return f"<= {human(self.at_most, self.unit)}"


TARGETS = (
    Target("streams.dedup_to_passthrough", "dedup / passthrough", "0.05", at_least=0.30),
    Target("streams.enrich_to_passthrough", "enrich / passthrough", "0.14", at_least=0.30),
    Target("streams.analytics_to_passthrough", "analytics / passthrough", "0.012", at_least=0.10),
    Target(
        "end_to_end.steady_p99_ms",
        "end to end at 100 msg/s offered, p99",
        "~1,600 ms at 50/s",
        at_most=500,
        unit=" ms",
    ),
    Target(
        "end_to_end.burst_emails_per_s",
        "5,000-admission burst, emails/s end to end",
        "~107",
        at_least=500,
    ),
    Target(
        "end_to_end.peak_rss_bytes",
        "whole stack + services, peak RSS",
        "~1.7 GB",
        at_most=3 * GIB,
        unit=" B",
    ),
)


def figure(benchmarks: Mapping[str, Mapping[str, Any]], name: str) -> float | None:
    """The value of ``<benchmark>.<key>``; None when that benchmark failed or did not run."""
    benchmark, _, key = name.partition(".")
    value = benchmarks.get(benchmark, {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def evaluate(
    benchmarks: Mapping[str, Mapping[str, Any]], targets: tuple[Target, ...] = TARGETS
) -> list[dict[str, Any]]:
    """Each target with the run's value and whether it is met (None: not measured)."""
    rows = []
    for target in targets:
        value = figure(benchmarks, target.figure)
        rows.append(
            {
                "figure": target.figure,
                "label": target.label,
                "now": target.now,
                "target": target.wanted,
                "value": value,
                "met": None if value is None else target.met(value),
            }
        )
    return rows


def ratio(rate: float, passthrough: float) -> float:
    """A stage's rate as a fraction of the passthrough measured in the same run."""
    if passthrough <= 0:
        raise ValueError("the passthrough rate must be positive")
    return round(rate / passthrough, 3)


def human(value: float | None, unit: str = "") -> str:
    """A figure for the summary table: bytes in GiB, the rest with thousands separated."""
    if value is None:
        return "not measured"
    if unit == " B":
        return f"{value / GIB:.2f} GiB"
    if abs(value) < 10:
        return f"{value:.3f}"
    return f"{value:,.0f}{unit}"
