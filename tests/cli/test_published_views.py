"""The run summary, its drain check and its end-of-run checks read what notify, covid and
analytics publish, as the operator: the same figures as from their tables, without any right on
those tables (a throwaway cluster, provisioned as the stack is)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import psycopg

from services.cli.reconcile import published_outcomes
from services.cli.run import awaiting_receipts, pending_notices, published_figures
from services.common.records import StayEvent
from services.common.settings import Settings
from tests.common.test_serde import stay_event
from tests.dashboard.conftest import PlatformRows

SINCE = dt.datetime(2025, 3, 10, 8, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


def test_the_operator_reads_a_runs_figures_from_the_published_views(
    owners_database: Callable[[str], str],
) -> None:
    rows = PlatformRows(owners_database("tests"))
    later = SINCE + dt.timedelta(hours=1)
    rows.notification(
        "chrunancy", "sent", later, latency=dt.timedelta(seconds=2), receipts=("delivered", "read")
    )
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
    assert figures.receipts == (1, 1, 1)  # delivered, read, bounced
    assert (figures.next_steps, figures.worklist) == (0, (1, 0))

    value = stay_event("V1")
    value.update(event_id="e-1", establishment="toul", stay_key="toul:V1")
    value["movement"].update(movement_id="M1", authority=None)
    event = StayEvent.from_avro(value)
    outcomes = published_outcomes(operator, [event], SINCE, [SINCE.date()])
    assert outcomes.ledger == [] and len(outcomes.sent) == 1
    # The bounced one is no file on disk (not in ``sent``), but its report is one of the run's.
    [(notice, sent_at, delivered_at, read_at, _)] = [
        row for row in outcomes.receipts if row[4] is None
    ]
    assert notice == outcomes.sent[0] and len(outcomes.receipts) == 2
    assert sent_at is not None and delivered_at is not None and read_at is not None
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


def test_the_run_waits_for_the_reports_of_recent_notices_and_of_the_receipts_it_sent(
    owners_database: Callable[[str], str],
) -> None:
    rows = PlatformRows(owners_database("tests"))
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)  # sent 4 s ago
    second = dt.timedelta(seconds=1)
    rows.notification("toul", "sent", now, latency=second)  # no report yet, within the window
    rows.notification("toul", "sent", now, latency=second, receipts=("delivered",))
    rows.notification("toul", "sent", now - dt.timedelta(hours=2), latency=second)  # past it
    read_asked = rows.conn.execute(
        "SELECT notification_id::text FROM notify.notification WHERE delivered_at IS NOT NULL"
    ).fetchone()
    rows.close()
    operator = Settings(database_url=owners_database("operator"))
    since = now - dt.timedelta(hours=3)
    window = dt.timedelta(minutes=1)

    assert read_asked is not None
    # The silent recent notice, and the read receipt a GP sent for the delivered one.
    assert awaiting_receipts(operator, since, window, [read_asked[0]]) == 2
    assert awaiting_receipts(operator, since, window, []) == 1
    assert awaiting_receipts(operator, since, dt.timedelta(0), []) == 0
