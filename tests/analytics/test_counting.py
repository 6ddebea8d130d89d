"""What analytics counts: observations of records, windows, keys, distinct identities, lateness."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from services.analytics.config import AnalyticsConfig, AnalyticsConfigError
from services.analytics.counting import (
    EventClock,
    Granularity,
    IdSet,
    Lateness,
    LatestIds,
    Observation,
    count_key,
    count_record,
    epoch_ms,
    status_observations,
    stay_observations,
    window_start_ms,
)
from services.common.movements import movement_key
from tests.common.test_serde import stay_event

UTC = dt.UTC
HOUR_MS = 3_600_000


def discharge(action: str = "INSERT", covid_status: str = "POSITIVE") -> dict[str, Any]:
    event = stay_event("V1")
    event.update(kind="DISCHARGE", action=action, covid_status=covid_status)
    return event


def status(value: str, notification_id: str = "N1") -> dict[str, Any]:
    return {
        "notification_id": notification_id,
        "establishment": "chrunancy",
        "status": value,
        "at": dt.datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    }


def test_a_stay_event_counts_once_under_its_kind_action_and_admission_mode() -> None:
    event = stay_event("V1")
    [observation] = stay_observations(event, routed=True)
    assert observation.metric == "stay_events"
    assert observation.establishment == "chrunancy"
    assert observation.dimensions == (
        ("event_kind", "ADMISSION"),
        ("action", "INSERT"),
        ("admission_mode", "SCHEDULED"),
    )
    assert observation.identity == event["event_id"]
    assert observation.at_ms == epoch_ms(event["movement"]["occurred_at"])
    assert observation.series == (
        "stay_events|chrunancy|event_kind=ADMISSION|action=INSERT|admission_mode=SCHEDULED"
    )


def test_an_unroutable_event_is_a_stay_event_and_an_unroutable_one() -> None:
    metrics = [item.metric for item in stay_observations(stay_event("V1"), routed=False)]
    assert metrics == ["stay_events", "unroutable_stay_events"]


def test_a_discharge_is_present_under_its_status_only_and_a_cancellation_under_none() -> None:
    inserted = stay_observations(discharge(), routed=True)
    assert [item.metric for item in inserted] == ["stay_events"] + ["covid_discharges"] * 5
    words = {item.dimensions[0][1]: item.present for item in inserted[1:]}
    assert words == {
        "POSITIVE": True,
        "NEGATIVE": False,
        "SUSPECTED": False,
        "NOT_TESTED": False,
        "UNKNOWN": False,
    }
    # The movement is the identity: its correction and its cancellation speak of it.
    assert {item.identity for item in inserted[1:]} == {movement_key(discharge())}
    received = epoch_ms(discharge()["received_at"])
    assert {item.version for item in inserted[1:]} == {received}
    cancelled = stay_observations(discharge("CANCEL"), routed=True)
    assert [item.present for item in cancelled[1:]] == [False] * 5
    assert Observation.decode(inserted[1].encode()) == inserted[1]


def test_an_observation_written_before_latest_words_decodes_as_a_plain_one() -> None:
    old = b'["stay_events","chrunancy",[["event_kind","ADMISSION"]],"chrunancy:M1",1000]'
    decoded = Observation.decode(old)
    assert (decoded.present, decoded.version) == (None, 0)
    assert decoded.table_key == decoded.series


def latest(words: list[tuple[str, int, bool]]) -> bytes:
    ids = b""
    for identity, version, present in words:
        ids = LatestIds.apply(ids, identity, version, present)
    return ids


def test_the_latest_word_on_a_discharge_wins_in_any_order() -> None:
    inserted, corrected_away, cancelled = ("M1", 10, True), ("M1", 20, False), ("M1", 30, False)
    assert LatestIds.count(latest([inserted])) == 1
    for order in ([inserted, corrected_away], [corrected_away, inserted]):
        assert LatestIds.count(latest(order)) == 0
    assert LatestIds.count(latest([cancelled, inserted, inserted, ("M2", 5, True)])) == 1
    # Read again, a word changes nothing.
    once = latest([inserted, ("M2", 5, True)])
    assert latest([inserted, ("M2", 5, True), inserted, ("M2", 5, True)]) == once
    # At the same version, absent wins, whichever comes first.
    assert LatestIds.count(latest([("M3", 7, True), ("M3", 7, False)])) == 0
    assert LatestIds.count(latest([("M3", 7, False), ("M3", 7, True)])) == 0


def test_a_series_is_shown_once_something_was_present_in_it() -> None:
    assert not LatestIds.ever_present(latest([("M1", 10, False)]))
    assert not LatestIds.ever_present(latest([("M1", 10, False), ("M1", 5, True)]))
    moved_away = latest([("M1", 10, True), ("M1", 20, False)])
    assert LatestIds.ever_present(moved_away) and LatestIds.count(moved_away) == 0


def test_notices_count_once_per_final_status_and_retries_not_at_all() -> None:
    assert status_observations(status("RETRYING")) == []
    sent = status_observations(status("SENT"))
    failed = status_observations(status("FAILED"))
    assert [item.dimensions for item in sent + failed] == [
        (("delivery_status", "SENT"),),
        (("delivery_status", "FAILED"),),
    ]
    assert sent[0].identity != failed[0].identity
    assert status_observations(status("SENT")) == sent


def test_an_observation_carries_no_patient_data_and_survives_its_topic() -> None:
    event = discharge()
    for observation in stay_observations(event, routed=False):
        encoded = observation.encode()
        for value in ("Lefèvre", "Hélène", "000123456", "1948", "NDA77", "Martin"):
            assert value.encode("utf-8") not in encoded
        assert Observation.decode(encoded) == observation


def test_windows_are_utc_hours_and_days_and_the_key_names_them() -> None:
    at = epoch_ms(dt.datetime(2026, 3, 2, 8, 15, 30, tzinfo=UTC))
    hour = window_start_ms(at, Granularity.HOUR)
    day = window_start_ms(at, Granularity.DAY)
    assert hour == epoch_ms(dt.datetime(2026, 3, 2, 8, tzinfo=UTC))
    assert day == epoch_ms(dt.datetime(2026, 3, 2, tzinfo=UTC))

    [observation] = status_observations(status("SENT"))
    record = count_record(observation, Granularity.DAY, day, 7, at)
    assert record["window_end"] - record["window_start"] == dt.timedelta(days=1)
    assert record["count"] == 7
    assert record["delivery_status"] == "SENT"
    assert record["event_kind"] is None and record["covid_status"] is None
    assert count_key(record) == (
        "notifications|DAY|2026-03-02T00:00:00Z|chrunancy|delivery_status=SENT"
    )


def test_an_identity_seen_again_does_not_count_again() -> None:
    ids = b""
    for identity in ["chrunancy:M1", "chrunancy:M2", "chrunancy:M1", "chrunancy:M2"]:
        ids = IdSet.add(ids, identity)
    assert IdSet.count(ids) == 2
    assert b"M1" not in ids


def test_a_digest_matched_across_two_others_is_a_new_identity() -> None:
    class Plain(IdSet):
        @classmethod
        def digest(cls, identity: str) -> bytes:
            return identity.encode("ascii")

    ids = Plain.add(Plain.add(b"", "AAAABBBB"), "BBBBCCCC")
    # "BBBBBBBB" stands in the bytes, across the two digests: it is not one of them.
    assert Plain.count(Plain.add(ids, "BBBBBBBB")) == 3
    assert Plain.add(ids, "BBBBCCCC") == ids


def test_an_event_counts_within_the_grace_period_of_its_partition_only() -> None:
    clock = EventClock(grace=dt.timedelta(hours=2), expires=dt.timedelta(days=4))
    now = epoch_ms(dt.datetime(2026, 3, 2, 12, tzinfo=UTC))
    partition, other = ("stays.enriched", 0), ("stays.enriched", 1)
    assert clock.judge(partition, now - HOUR_MS, now) is Lateness.ON_TIME
    assert clock.judge(partition, now - 3 * HOUR_MS, now) is Lateness.ON_TIME
    assert clock.judge(partition, now - 4 * HOUR_MS, now) is Lateness.BEYOND_GRACE
    assert clock.judge(other, now - 4 * HOUR_MS, now) is Lateness.ON_TIME


def test_an_event_older_than_the_tables_keep_never_counts() -> None:
    clock = EventClock(grace=dt.timedelta(days=2), expires=dt.timedelta(days=4))
    now = epoch_ms(dt.datetime(2026, 3, 10, tzinfo=UTC))
    assert clock.judge(("t", 0), now - 4 * 24 * HOUR_MS, now) is Lateness.BEYOND_RETENTION
    assert clock.judge(("t", 0), now - 2 * 24 * HOUR_MS, now) is Lateness.ON_TIME


def test_a_sender_clock_running_fast_does_not_make_the_present_late() -> None:
    clock = EventClock(grace=dt.timedelta(hours=1), expires=dt.timedelta(days=4))
    now = epoch_ms(dt.datetime(2026, 3, 2, 12, tzinfo=UTC))
    assert clock.judge(("t", 0), now + 24 * HOUR_MS, now) is Lateness.ON_TIME
    assert clock.judge(("t", 0), now - 10 * 60_000, now) is Lateness.ON_TIME


def test_configuration_from_the_environment() -> None:
    config = AnalyticsConfig.from_env(
        {
            "ANALYTICS_ENRICHED_TOPIC": "t.enriched",
            "ANALYTICS_GROUP_ID": "analytics-test",
            "ANALYTICS_GRACE_SECONDS": "7200",
            "ANALYTICS_EXPIRES_DAYS": "3",
            "ANALYTICS_DATA_DIR": "/tmp/analytics-state",
        }
    )
    assert config.enriched_topic == "t.enriched"
    assert config.status_topic == "notifications.status"
    assert config.observations_topic == "analytics-test-observations"
    assert config.grace == dt.timedelta(hours=2)
    assert str(config.data_dir) == "/tmp/analytics-state"
    assert config.web_port is None
    with pytest.raises(AnalyticsConfigError):
        AnalyticsConfig.from_env({"ANALYTICS_GRACE_SECONDS": str(3 * 86_400)})
