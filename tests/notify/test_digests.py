"""The digest's ids and due times: the same on every replay, at the GP's hour in Paris."""

from __future__ import annotations

import datetime as dt
import itertools

from services.notify.digests import PARIS, digest_id, slots


def at(day: str, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=PARIS)


def first(after: dt.datetime, hour: int, count: int = 1) -> list[tuple[dt.date, dt.datetime]]:
    return list(itertools.islice(slots(after, hour), count))


def test_an_event_before_the_hour_goes_in_that_days_digest_after_it_in_the_next() -> None:
    assert first(at("2026-03-02", 9), 18) == [(dt.date(2026, 3, 2), at("2026-03-02", 18))]
    assert first(at("2026-03-02", 18), 18) == [(dt.date(2026, 3, 3), at("2026-03-03", 18))]
    assert first(at("2026-03-02", 19, 30), 7, 2) == [
        (dt.date(2026, 3, 3), at("2026-03-03", 7)),
        (dt.date(2026, 3, 4), at("2026-03-04", 7)),
    ]


def test_the_hour_is_paris_time_across_a_change_of_summer_time() -> None:
    # 28-29 March 2026: Paris goes from UTC+1 to UTC+2 at night.
    [(_, winter), (_, summer)] = first(at("2026-03-28", 8), 18, 2)
    assert winter.astimezone(dt.UTC).hour == 17
    assert summer.astimezone(dt.UTC).hour == 16
    assert summer.astimezone(PARIS).hour == winter.astimezone(PARIS).hour == 18


def test_a_digest_id_is_fixed_by_recipient_and_day() -> None:
    day = dt.date(2026, 3, 2)
    assert digest_id("10101010101", day) == digest_id("10101010101", day)
    assert digest_id("10101010101", day) != digest_id("10101010101", day + dt.timedelta(1))
    assert digest_id("10101010101", day) != digest_id("10101010102", day)
    # Fixed forever: a digest already sent keeps its id after an upgrade.
    assert digest_id("10101010101", day) == "4eacc7fc-11c8-5dba-974f-f3d52e15795c"
