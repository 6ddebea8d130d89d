"""What analytics counts: observations of records, windows, keys, distinct identities, lateness."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from services.analytics.config import AnalyticsConfig, AnalyticsConfigError
from services.analytics.counting import (
    TAIL_LIMIT,
    EventClock,
    Granularity,
    Lateness,
    Observation,
    WindowCount,
    count_key,
    count_record,
    epoch_ms,
    status_observations,
    stay_observations,
    window_start_ms,
    windows_of,
)
from services.common.movements import movement_key
from services.common.records import DeliveryStatus, NoticeKind, NotificationStatus, StayEvent
from services.common.skip_reasons import SkipReason
from tests.common.test_serde import stay_event

UTC = dt.UTC
HOUR_MS = 3_600_000


def stay(visit: str) -> StayEvent:
    return StayEvent.from_avro(stay_event(visit))


def discharge(action: str = "INSERT", covid_status: str = "POSITIVE") -> StayEvent:
    event = stay_event("V1")
    event.update(kind="DISCHARGE", action=action, covid_status=covid_status)
    return StayEvent.from_avro(event)


def status(value: str, notification_id: str = "N1") -> NotificationStatus:
    return NotificationStatus.from_avro(
        {
            "notification_id": notification_id,
            "event_id": "chrunancy:MSG-V1",
            "stay_key": "chrunancy:V1",
            "establishment": "chrunancy",
            "kind": "ADMISSION",
            "recipient_rpps": "10101010101",
            "recipient_address": "jeanne.martin@medecin.mssante.fr",
            "status": value,
            "attempt": 1,
            "at": dt.datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        }
    )


def test_a_stay_event_counts_once_under_its_kind_action_and_admission_mode() -> None:
    event = stay("V1")
    [observation] = stay_observations(event, routed=True)
    assert observation.metric == "stay_events"
    assert observation.establishment == "chrunancy"
    assert observation.dimensions == (
        ("event_kind", "ADMISSION"),
        ("action", "INSERT"),
        ("admission_mode", "SCHEDULED"),
    )
    assert observation.identity == event.event_id
    assert observation.at_ms == epoch_ms(event.movement.occurred_at)
    assert observation.series == (
        "stay_events|chrunancy|event_kind=ADMISSION|action=INSERT|admission_mode=SCHEDULED"
    )


def test_an_unroutable_event_is_a_stay_event_and_an_unroutable_one() -> None:
    metrics = [item.metric for item in stay_observations(stay("V1"), routed=False)]
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
    received = epoch_ms(discharge().received_at)
    assert {item.version for item in inserted[1:]} == {received}
    cancelled = stay_observations(discharge("CANCEL"), routed=True)
    assert [item.present for item in cancelled[1:]] == [False] * 5


def word(identity: str, version: int, present: bool) -> Observation:
    return Observation("covid_discharges", "chrunancy", (), identity, 0, present, version)


def seen(identity: str) -> Observation:
    return Observation("stay_events", "chrunancy", (), identity, 0)


def counted(observations: list[Observation], *, latest: bool = True) -> WindowCount:
    """A window that read ``observations`` in this order, from one input partition."""
    window = WindowCount(latest)
    for offset, observation in enumerate(observations):
        window.apply(observation, "stays.enriched/0", offset)
    return window


def test_the_latest_word_on_a_discharge_wins_in_any_order() -> None:
    inserted, corrected_away = word("M1", 10, True), word("M1", 20, False)
    cancelled = word("M1", 30, False)
    assert counted([inserted]).count == 1
    for order in ([inserted, corrected_away], [corrected_away, inserted]):
        assert counted(order).count == 0
    assert counted([cancelled, inserted, inserted, word("M2", 5, True)]).count == 1
    # Read again, a word changes nothing.
    again = counted([inserted, word("M2", 5, True), inserted, word("M2", 5, True)])
    assert again.count == 2 and again.members == counted([inserted, word("M2", 5, True)]).members
    # At the same version, absent wins, whichever comes first.
    assert counted([word("M3", 7, True), word("M3", 7, False)]).count == 0
    assert counted([word("M3", 7, False), word("M3", 7, True)]).count == 0
    with pytest.raises(ValueError):
        counted([word("M4", 0, True)])


def test_a_series_is_shown_once_something_was_present_in_it() -> None:
    assert not counted([word("M1", 10, False)]).shown
    assert not counted([word("M1", 10, False), word("M1", 5, True)]).shown
    moved_away = counted([word("M1", 10, True), word("M1", 20, False)])
    assert moved_away.shown and moved_away.count == 0
    assert counted([], latest=False).shown


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


def test_a_skipped_notice_also_counts_under_its_reason_and_kind_and_nothing_else() -> None:
    skipped = dataclasses.replace(
        status("SKIPPED", "N7"), kind=NoticeKind.TRANSFER, detail=SkipReason.PROTECTED.sentence
    )
    by_status, by_reason = status_observations(skipped)
    assert by_status.metric == "notifications"
    assert by_reason.metric == "skipped_notifications"
    assert by_reason.establishment == "chrunancy"
    assert by_reason.dimensions == (("skip_reason", "protected"), ("notice_kind", "TRANSFER"))
    for value in ("10101010101", "jeanne.martin", "V1", "PD1-12"):
        assert value not in f"{by_reason.table_key}|{by_reason.identity}"
    unknown = status_observations(dataclasses.replace(skipped, detail="a detail naming someone"))[1]
    assert unknown.dimensions[0] == ("skip_reason", "other")
    key = count_key(count_record(by_reason, Granularity.DAY, 0, 3, 0))
    assert key.endswith("|chrunancy|skip_reason=protected|notice_kind=TRANSFER")


def test_what_the_table_keeps_carries_no_patient_data() -> None:
    for observation in stay_observations(discharge(), routed=False):
        window = counted([observation], latest=observation.present is not None)
        chunk, head = window.seal()
        for value in ("Lefèvre", "Hélène", "000123456", "1948", "NDA77", "Martin", "V1"):
            assert value.encode("utf-8") not in (chunk or b"") + head
            assert value not in observation.table_key


def test_windows_are_utc_hours_and_days_and_the_key_names_them() -> None:
    at = epoch_ms(dt.datetime(2026, 3, 2, 8, 15, 30, tzinfo=UTC))
    hour = window_start_ms(at, Granularity.HOUR)
    day = window_start_ms(at, Granularity.DAY)
    assert hour == epoch_ms(dt.datetime(2026, 3, 2, 8, tzinfo=UTC))
    assert day == epoch_ms(dt.datetime(2026, 3, 2, tzinfo=UTC))

    [observation] = status_observations(status("SENT"))
    record = count_record(observation, Granularity.DAY, day, 7, at)
    assert record.window_end - record.window_start == dt.timedelta(days=1)
    assert record.count == 7
    assert record.delivery_status is DeliveryStatus.SENT
    assert record.event_kind is None and record.covid_status is None
    assert count_key(record) == (
        "notifications|DAY|2026-03-02T00:00:00Z|chrunancy|delivery_status=SENT"
    )


def test_an_event_time_no_count_can_carry_is_refused_with_its_record() -> None:
    [observation] = status_observations(status("SENT"))
    assert [granularity for granularity, _ in windows_of(observation)] == list(Granularity)
    end_of_time = epoch_ms(dt.datetime(9999, 12, 31, 23, 30, tzinfo=UTC))
    with pytest.raises((OverflowError, ValueError)):
        windows_of(Observation("stay_events", "chrunancy", (), "M1", end_of_time))
    with pytest.raises(ValueError):
        windows_of(word("M1", 0, True))


def test_an_identity_seen_again_does_not_count_again() -> None:
    window = counted([seen("chrunancy:M1"), seen("chrunancy:M2"), seen("chrunancy:M1")])
    assert window.count == 2
    chunk, head = window.seal()
    assert chunk is None and b"M1" not in head


def test_a_batch_writes_what_it_changed_not_the_whole_window() -> None:
    window = WindowCount(latest=False)
    offset = 0
    for batch in range(20):
        for number in range(batch * 50, batch * 50 + 50):
            # Each identity twice, the second time in the next batch.
            for identity in {number, max(number - 50, 0)}:
                window.apply(seen(f"chrunancy:M{identity}"), "stays.enriched/0", offset)
                offset += 1
        chunk, head = window.seal()
        # A head never outgrows its limit, and a chunk holds new members only.
        assert len(head) < 80 + 16 * TAIL_LIMIT
        assert chunk is None or len(chunk) <= 16 * (TAIL_LIMIT + 50)
    assert window.count == 1000
    assert window.chunks < 20
    # Nothing new: the head alone, with its marks.
    window.apply(seen("chrunancy:M2"), "stays.enriched/0", offset)
    assert window.seal()[0] is None


def test_a_window_read_back_from_its_head_and_chunks_is_the_one_written() -> None:
    window = counted([word(f"M{number}", 10, True) for number in range(TAIL_LIMIT + 1)])
    chunks = [window.seal()[0]]
    window.apply(word("M1", 20, False), "stays.unroutable/0", 7)
    window.apply(word("M1", 15, True), "stays.unroutable/0", 8)
    _, head = window.seal()
    assert chunks[0] is not None
    again = WindowCount.from_head(True, head)
    again.add_chunks([chunk for chunk in chunks if chunk is not None])
    assert (again.count, again.members, again.high_water) == (
        TAIL_LIMIT,
        window.members,
        {"stays.enriched/0": TAIL_LIMIT, "stays.unroutable/0": 8},
    )
    assert again.ever_present and again.chunks == 1


def test_a_record_under_the_marks_is_not_counted_again_but_its_window_written_again() -> None:
    window = counted([seen(f"chrunancy:M{number}") for number in range(100)], latest=False)
    first_chunk, head = window.seal()
    restarted = WindowCount.from_head(False, head)
    assert restarted.taken_into_account("stays.enriched/0", 99)
    assert not restarted.taken_into_account("stays.enriched/0", 100)
    assert not restarted.taken_into_account("stays.enriched/1", 0)
    # After a restart, the local store may hold a chunk the changelog never received: the
    # first record read again has every member written again, once.
    assert first_chunk is not None
    restarted.add_chunks([first_chunk])
    restarted.restate()
    again, _ = restarted.seal()
    assert again is not None and len(again) == len(first_chunk)
    restarted.restate()
    assert restarted.seal()[0] is None


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
    assert config.batch_size == 2000
    assert config.grace == dt.timedelta(hours=2)
    assert str(config.data_dir) == "/tmp/analytics-state"
    assert config.web_port is None
    with pytest.raises(AnalyticsConfigError):
        AnalyticsConfig.from_env({"ANALYTICS_GRACE_SECONDS": str(3 * 86_400)})
