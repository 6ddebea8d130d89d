"""Where analytics keeps each series in its table: one partition per series, the same in every
process, reached without an event of that partition at hand."""

from __future__ import annotations

from typing import cast

from faust.streams import current_event
from faust.tables.wrappers import WindowWrapper

from services.analytics.counting import Granularity, WindowCount
from services.analytics.tables import WindowTable, chunk_key, head_key
from services.common.faust_apps import in_table_partition


def test_a_series_lives_in_one_partition_the_same_in_every_process() -> None:
    table = WindowTable(cast(WindowWrapper, None), 3, "stays.enriched")
    keys = [f"stay_events|est{number}|event_kind=ADMISSION" for number in range(300)]
    partitions = [table.partition_of(key) for key in keys]
    # Fixed forever: a worker started later must find what an earlier one wrote.
    assert table.partition_of("stay_events|chrunancy|event_kind=ADMISSION") == 1
    assert set(partitions) == {0, 1, 2}
    assert min(partitions.count(number) for number in range(3)) > 60


def test_a_window_s_keys_name_it_and_its_chunks_follow_its_head() -> None:
    window = (Granularity.HOUR, 3_600_000, "notifications|chrunancy|delivery_status=SENT")
    assert head_key(window) == "HOUR|3600000|notifications|chrunancy|delivery_status=SENT"
    assert chunk_key(window, 2) == f"{head_key(window)}#2"


def test_table_reads_and_writes_go_to_the_partition_chosen() -> None:
    assert current_event() is None
    with in_table_partition(2, "stays.enriched"):
        event = current_event()
        assert event is not None
        assert (event.message.topic, event.message.partition) == ("stays.enriched", 2)
    assert current_event() is None


def test_windows_that_can_take_no_more_events_leave_memory() -> None:
    table = WindowTable(cast(WindowWrapper, None), 3, "stays.enriched")
    hour, day = Granularity.HOUR, Granularity.DAY
    for window in [(hour, 0, "a"), (hour, 3_600_000, "a"), (day, 0, "a")]:
        table.cache[window] = WindowCount(latest=False)
    table.drop_ended_before(3_600_001)
    assert set(table.cache) == {(hour, 3_600_000, "a"), (day, 0, "a")}
