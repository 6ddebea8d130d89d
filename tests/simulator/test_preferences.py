"""Which sample GPs a simulated day gives a digest, discharges only, or transfers too."""

from __future__ import annotations

from services.simulator.practitioners import directory_gps
from services.simulator.preferences import choice_groups


def test_a_few_gps_of_the_sample_get_each_choice_the_same_on_every_run() -> None:
    gps = directory_gps()
    groups = choice_groups(gps)
    assert [group.name for group in groups] == [
        "daily digest",
        "discharges only",
        "real time, transfers included",
    ]
    chosen = [rpps for group in groups for rpps in group.rpps]
    assert len(chosen) == len(set(chosen)), "each GP is in one group at most"
    assert all(group.rpps for group in groups)
    assert len(chosen) < len(gps) / 4, "most GPs keep the defaults"
    assert choice_groups(list(reversed(gps))) == groups
    assert groups[0].command()[:2] == ["preferences", groups[0].rpps[0]]
    assert groups[0].command()[-6:] == [
        "--mode",
        "digest",
        "--digest-hour",
        "18",
        "--kinds",
        "admission,transfer,discharge,correction",
    ]
