"""The benchmarks' pure parts, fast and without the stack: every module imports, and what decides
a reported figure (percentiles, ratios, targets, the tool's and /proc's text) is right. The
benchmarks themselves are never timed tests."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from services.cli.hops import percentile
from tests.bench import __main__ as runner
from tests.bench.bench_ceiling import parse_summary
from tests.bench.bench_end_to_end import shares
from tests.bench.memory import parse_parent, parse_rss_bytes, with_descendants
from tests.bench.support import keep_logs_only
from tests.bench.targets import GIB, TARGETS, Target, evaluate, human, ratio


@pytest.mark.parametrize("name", runner.available())
def test_every_benchmark_imports_and_has_run(name: str) -> None:
    module = importlib.import_module(f"tests.bench.bench_{name}")
    assert callable(module.run)


def test_the_default_run_is_the_issue_s_benchmarks_and_they_exist() -> None:
    assert set(runner.DEFAULT) <= set(runner.available())


def test_every_target_and_summary_line_names_a_benchmark_of_the_default_run() -> None:
    names = [target.figure for target in TARGETS] + [name for _, name, _ in runner.SUMMARY]
    assert {name.split(".", 1)[0] for name in names} <= set(runner.DEFAULT)


def test_percentile_is_a_value_that_occurred_nearest_rank() -> None:
    values = [float(value) for value in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(list(reversed(values)), 0.99) == 99
    assert percentile([7.0], 0.99) == 7


def test_ratio_is_to_the_passthrough_and_refuses_none() -> None:
    assert ratio(2_000, 8_000) == 0.25
    with pytest.raises(ValueError):
        ratio(1, 0)


def test_targets_at_least_and_at_most_with_the_boundary_met() -> None:
    floor = Target("streams.dedup_to_passthrough", "dedup", "0.05", at_least=0.30)
    ceiling = Target("end_to_end.steady_p99_ms", "p99", "1,600", at_most=500, unit=" ms")
    assert floor.met(0.30) and not floor.met(0.299)
    assert ceiling.met(500) and not ceiling.met(501)
    assert (floor.wanted, ceiling.wanted) == (">= 0.300", "<= 500 ms")
    assert TARGETS[-1].wanted == "<= 3.00 GiB"


def test_evaluate_reads_the_report_and_says_what_was_not_measured() -> None:
    benchmarks: dict[str, dict[str, Any]] = {
        "streams": {"dedup_to_passthrough": 0.31, "enrich_to_passthrough": 0.2},
        "end_to_end": {"error": "RuntimeError: the stack is down"},
    }
    rows = {row["figure"]: row for row in evaluate(benchmarks)}
    assert rows["streams.dedup_to_passthrough"]["met"] is True
    assert rows["streams.enrich_to_passthrough"]["met"] is False
    assert (
        rows["end_to_end.steady_p99_ms"] | {"value": None, "met": None}
        == (rows["end_to_end.steady_p99_ms"])
    )
    assert len(rows) == len(TARGETS)


def test_human_figures() -> None:
    assert human(None) == "not measured"
    assert human(1.5 * GIB, " B") == "1.50 GiB"
    assert human(0.219) == "0.219"
    assert human(12_345.6, " ms") == "12,346 ms"


def test_the_producer_perf_test_summary_is_read() -> None:
    output = (
        "150000 records sent, 30000.0 records/sec (7.72 MB/sec), 12.0 ms avg latency, "
        "900.0 ms max latency.\n"
        "300000 records sent, 94847.296712 records/sec (36.18 MB/sec), 347.10 ms avg latency, "
        "562.00 ms max latency, 353 ms 50th, 435 ms 95th, 456 ms 99th, 473 ms 99.9th.\n"
    )
    summary = parse_summary(output)
    assert (summary["records"], round(summary["per_s"]), summary["p99"]) == (300000, 94847, 456)
    with pytest.raises(RuntimeError):
        parse_summary("Exception in thread main")


def test_proc_parsing() -> None:
    status = "Name:\tjava\nVmPeak:\t 9000 kB\nVmRSS:\t  736476 kB\nThreads:\t80\n"
    assert parse_rss_bytes(status) == 736476 * 1024
    assert parse_rss_bytes("Name:\tkthreadd\n") == 0
    assert parse_parent("4242 (postgres: a (b) c) S 21033 4242 4242 0 -1") == 21033


def test_descendants_follow_the_tree_and_only_it() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 11, 20: 1, 21: 20}
    assert with_descendants([10], parents) == {10, 11, 12}
    assert with_descendants([10, 21, 0], parents) == {10, 11, 12, 21}


def test_shares_split_a_total_evenly() -> None:
    assert shares(5_000, 11) == [455] * 6 + [454] * 5
    assert sum(shares(1_000, 11)) == 1_000


def test_the_chart_is_drawn_with_ratios_and_the_ceiling(tmp_path: Path) -> None:
    benchmarks: dict[str, dict[str, Any]] = {
        "ceiling": {"producer_perf_test_per_s": 90_000},
        "streams": {"passthrough_per_s": 6_500, "dedup_per_s": 1_400, "dedup_to_passthrough": 0.2},
        "end_to_end": {"steady_p99_ms": 420},
    }
    chart = runner.draw(benchmarks, tmp_path / "bench.png")
    assert chart.stat().st_size > 10_000


def test_a_run_s_folder_keeps_its_logs_only(tmp_path: Path) -> None:
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "1.eml").write_text("Subject: admission\n")
    (tmp_path / "notify.log").write_text("{}\n")
    assert keep_logs_only(tmp_path) == str(tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["notify.log"]
