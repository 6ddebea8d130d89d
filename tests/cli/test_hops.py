"""The hop report's arithmetic (services.cli.hops.report): a pure function of the points in
time."""

from __future__ import annotations

import datetime as dt

from services.cli.hops import HOPS, percentile, render, report

T0 = dt.datetime(2026, 3, 9, 8, 0, tzinfo=dt.UTC)


def at(milliseconds: int) -> dt.datetime:
    return T0 + dt.timedelta(milliseconds=milliseconds)


def test_each_hop_is_the_time_between_its_two_points_and_its_share_of_the_median() -> None:
    received = {"e1": at(0), "e2": at(0)}
    stamps = {
        "raw": {"e1": at(10), "e2": at(20)},
        "unique": {"e1": at(110), "e2": at(120)},
        "enriched": {"e1": at(160), "e2": at(170)},
    }
    notices = [("e1", at(200), at(400)), ("e2", at(220), at(420))]

    hops = report(received, stamps, notices)

    assert hops.notices == 2
    assert (hops.total_p50_ms, hops.total_p99_ms) == (400.0, 420.0)
    assert [hop.name for hop in hops.hops] == [name for name, _span in HOPS]
    assert [hop.p50_ms for hop in hops.hops] == [10.0, 100.0, 50.0, 40.0, 200.0]
    assert [hop.p99_ms for hop in hops.hops] == [20.0, 100.0, 50.0, 50.0, 200.0]
    # Shares of the median total (410 ms): the medians of each hop.
    assert [round(hop.share, 3) for hop in hops.hops] == [0.037, 0.244, 0.122, 0.110, 0.488]
    assert "delivery" in render(hops)


def test_a_notice_missing_a_point_is_left_out_and_none_left_says_so() -> None:
    hops = report({"e1": at(0)}, {"raw": {"e1": at(5)}}, [("e1", at(10), at(20))])
    assert hops.notices == 0
    assert render(hops) == "  hops: no sent notice to measure"


def test_percentiles_are_values_that_occurred() -> None:
    values = [float(number) for number in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99)) == (50.0, 99.0)
    assert percentile([7.0], 0.99) == 7.0
