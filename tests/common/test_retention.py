"""The purge loop: batch after batch until nothing is due, stoppable between batches."""

from __future__ import annotations

import threading

import structlog

from services.common.retention import Purge, purge_due, purge_periodically


class Rows:
    """``due`` rows to purge, taken ``limit`` at a time, as a batch in the database would."""

    def __init__(self, due: int) -> None:
        self.due = due
        self.batches: list[int] = []

    def purge(self, limit: int) -> int:
        taken = min(limit, self.due)
        self.due -= taken
        self.batches.append(taken)
        return taken


def test_everything_due_is_purged_in_batches_and_a_second_round_does_nothing() -> None:
    rows = Rows(7)
    assert purge_due(Purge("rows", rows.purge, 3)) == 7
    assert rows.batches == [3, 3, 1]
    assert purge_due(Purge("rows", rows.purge, 3)) == 0


def test_an_exact_multiple_of_the_batch_ends_on_an_empty_batch() -> None:
    rows = Rows(6)
    assert purge_due(Purge("rows", rows.purge, 3)) == 6
    assert rows.batches == [3, 3, 0]


def test_a_stop_between_batches_leaves_the_rest_for_the_next_round() -> None:
    rows, stop = Rows(10), threading.Event()

    def purge_then_stop(limit: int) -> int:
        taken = rows.purge(limit)
        if len(rows.batches) == 2:
            stop.set()  # a shutdown (or a crash) after two committed batches
        return taken

    assert purge_due(Purge("rows", purge_then_stop, 3), stop) == 6
    assert rows.due == 4
    assert purge_due(Purge("rows", rows.purge, 3)) == 4  # the next start finishes it


def test_the_timer_purges_at_start_then_every_interval_until_stopped() -> None:
    rows, stop = Rows(5), threading.Event()
    rounds: list[int] = []

    def purge(limit: int) -> int:
        rounds.append(limit)
        if len(rounds) == 4:
            stop.set()
        return rows.purge(limit)

    purge_periodically(stop, [Purge("rows", purge, 10)], 0.01, structlog.get_logger())
    assert rows.due == 0 and rows.batches == [5, 0, 0, 0]
