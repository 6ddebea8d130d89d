"""The run summary, its drain check and its end-of-run checks read what notify, covid and
analytics publish, as the operator: the same figures as from their tables, without any right on
those tables (a throwaway cluster, provisioned as the stack is)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import psycopg

from services.cli.reconcile import published_outcomes
from services.cli.run import pending_notices, published_figures
from services.common.settings import Settings
from tests.dashboard.conftest import PlatformRows

SINCE = dt.datetime(2025, 3, 10, 8, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


def test_the_operator_reads_a_runs_figures_from_the_published_views(
    owners_database: Callable[[str], str],
) -> None:
    rows = PlatformRows(owners_database("tests"))
    later = SINCE + dt.timedelta(hours=1)
    rows.notification("chrunancy", "sent", later, latency=dt.timedelta(seconds=2))
    rows.notification("chrunancy", "pending", later)
    rows.notification("toul", "failed", later)
    # Sent, then bounced: not on the SMTP server's disk, and its chain must go on.
    rows.notification("chrunancy", "sent", later, latency=SECOND, receipts=("bounced",))
    rows.worklist("toul", "URG", "NO_GP", later, event_id="e-1")
    rows.covid_case("toul", "OPEN", later)
    rows.stays(later, "chrunancy", 5, "ADMISSION")
    rows.count("stay_events", SINCE, "chrunancy", 7, granularity="DAY")
    # The case of the movement below (the helper makes up a movement key of its own).
    opened = rows.conn.execute(
        "UPDATE covid_case SET movement_key = 'toul:V1||M1' RETURNING case_id::text"
    ).fetchone()
    # A stay under PD1-12 Y: the check "no notice sent for a protected or opposed patient".
    rows.conn.execute(
        "INSERT INTO notify.stay_privacy (stay_key, establishment, ipp, patient_protected, "
        "protected_since) VALUES ('toul:V1', 'toul', 'IPP1', true, now())"
    )
    rows.close()
    operator = Settings(database_url=owners_database("operator"))
    rows_conn = psycopg.connect(owners_database("tests"), autocommit=True)

    assert pending_notices(operator) == 1
    figures = published_figures(operator, SINCE)
    assert figures.states == {"sent": 2, "pending": 1, "failed": 1}
    assert figures.p50 is not None and 1 <= figures.p50 <= 2
    assert figures.covid == (1, 1) and figures.analytics == (5, 0)
    assert (figures.bounced, figures.next_steps, figures.worklist) == (1, 0, (1, 0))

    event = {
        "event_id": "e-1",
        "establishment": "toul",
        "stay_key": "toul:V1",
        "movement": {"movement_id": "M1"},
    }
    outcomes = published_outcomes(operator, [event], SINCE, [SINCE.date()])
    assert outcomes.ledger == [] and len(outcomes.sent) == 1
    assert outcomes.opened == [opened[0] if opened else None]
    assert outcomes.counted == {("chrunancy", SINCE.date()): 7}
    assert outcomes.withheld == [("toul:V1", 0)]
    # The failed and the bounced notices, neither followed by a step nor on the worklist.
    setbacks = rows_conn.execute(
        "SELECT notification_id::text, false, false FROM notify.notification "
        "WHERE state = 'failed' OR bounced_at IS NOT NULL"
    ).fetchall()
    assert len(setbacks) == 2 and sorted(outcomes.setbacks) == sorted(setbacks)
    assert outcomes.worklisted == ["e-1"]
