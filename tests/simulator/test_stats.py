"""Progress and summary say what the engines did, per establishment, per trigger and per ACK."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from services.simulator.engine import Pacer
from services.simulator.stats import EngineStats, progress_line, summary, summary_text

NINE = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def engines() -> list[EngineStats]:
    toul = EngineStats("toul", 3, Counter({"A01": 2, "A03": 1}), sent=4, acked=3, resent=1)
    toul.ack_codes.update({"AA": 3, "AE": 1})
    toul.simulated_time = NINE
    icl = EngineStats("icl", 2, Counter({"A04": 2}), sent=1, acked=1)
    icl.ack_codes.update({"CA": 1})
    icl.simulated_time = NINE - dt.timedelta(hours=1)
    return [toul, icl]


def test_the_summary_adds_up_establishments_triggers_and_ack_codes() -> None:
    report = summary(engines(), 12.34)
    assert (report["messages"], report["acked"], report["sent"], report["resent"]) == (5, 4, 5, 1)
    assert report["triggers"] == {"A01": 2, "A03": 1, "A04": 2}
    assert report["ack_codes"] == {"AA": 3, "AE": 1, "CA": 1}
    text = summary_text(report)
    assert "toul" in text and "icl" in text and "AE 1" in text and "A04 2" in text
    assert text.splitlines()[3].split() == ["total", "5", "4", "5", "1", "0", "0", "0", "0"]


def test_progress_shows_the_engine_furthest_behind_unless_paced() -> None:
    line = progress_line(engines(), 3.0)
    assert "simulated Mon 02 Mar 08:00" in line and "acked 4/5" in line and "toul 3/3+1" in line
    paced = progress_line(engines(), 3.0, NINE + dt.timedelta(minutes=30))
    assert "simulated Mon 02 Mar 09:30" in paced


def test_the_pacer_maps_simulated_time_to_wall_time() -> None:
    pacer = Pacer(NINE, speed=3600.0)
    assert 0.9 < pacer.delay(NINE + dt.timedelta(hours=1)) <= 1.0
    assert pacer.delay(NINE - dt.timedelta(hours=1)) < 0
    assert Pacer(NINE, speed=None).delay(NINE + dt.timedelta(days=1)) == 0.0
