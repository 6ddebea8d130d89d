"""Reads the day's figures from PostgreSQL, in one read-only snapshot so that the figures on the
page agree with each other: only the views that analytics, notify and covid publish to the
dashboard's role (``deploy/access.toml``, ``views_of``), never their tables.

Those views carry no patient data (no patient, INS or identity key of a case; no rendered message
or recipient's address of a notice): only counts, states and times leave the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import psycopg
from psycopg.rows import dict_row

from services.common.delivery_proof import DSN_WINDOW, UNCONFIRMED
from services.dashboard.overview import DayRows, Latency, day_bounds, default_day, month_bounds

LATEST_ACTIVITY = """
    SELECT max(window_start) AS latest FROM analytics.v_counts
    WHERE metric = 'stay_events' AND granularity = 'HOUR' AND window_start < %(before)s
"""

HOURLY_STAYS = """
    SELECT establishment,
           extract(hour FROM window_start AT TIME ZONE 'Europe/Paris')::int AS hour,
           sum(count)::bigint AS stay_events
    FROM analytics.v_counts
    WHERE metric = 'stay_events' AND granularity = 'HOUR'
      AND window_start >= %(start)s AND window_start < %(end)s
    GROUP BY 1, 2
"""

DAILY_STAYS = "SELECT * FROM analytics.daily_stays WHERE day = %(day)s"

# 'sending' is with the SMTP server right now; 'uncertain' went out or not before a crash and is
# never resent: an operator looks at those in the ledger, they are not 'waiting'. Delivered, read
# and bounced come from the platform's mailbox (notify's receipts reader), after 'sent'.
EMAILS = f"""
    SELECT establishment,
           count(*) FILTER (WHERE state = 'sent') AS sent,
           count(*) FILTER (WHERE state = 'failed') AS failed,
           count(*) FILTER (WHERE state IN ('pending', 'retrying', 'sending')) AS waiting,
           count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
           count(*) FILTER (WHERE read_at IS NOT NULL) AS read,
           count(*) FILTER (WHERE bounced_at IS NOT NULL) AS bounced,
           count(*) FILTER (WHERE {UNCONFIRMED}) AS unconfirmed
    FROM notify.v_notices
    WHERE created_at >= %(start)s AND created_at < %(end)s
    GROUP BY establishment
"""

LATENCY = """
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS p50,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY seconds) AS p99,
           count(*) AS count
    FROM (
        SELECT extract(epoch FROM sent_at - received_at)::float8 AS seconds
        FROM notify.v_notices
        WHERE state = 'sent' AND sent_at IS NOT NULL AND received_at IS NOT NULL
          AND created_at >= %(start)s AND created_at < %(end)s
    ) AS delivered
"""

COVID_CASES = """
    SELECT establishment,
           count(*) FILTER (WHERE state <> 'CLOSED') AS open,
           count(*) FILTER (WHERE state = 'REMINDED') AS reminded,
           count(*) FILTER (WHERE opened_at >= %(start)s AND opened_at < %(end)s) AS opened_on_day
    FROM covid.v_cases
    WHERE state <> 'CLOSED' OR (opened_at >= %(start)s AND opened_at < %(end)s)
    GROUP BY establishment
"""

COVID_DISCHARGES = "SELECT * FROM analytics.daily_covid_discharges WHERE day = %(day)s"

# notify's worklist (ids and reasons only): what is open now, by establishment, unit and reason,
# and the latest open entries themselves.
WORKLIST = """
    SELECT establishment, coalesce(unit, '') AS unit, reason, count(*) AS open
    FROM notify.v_worklist WHERE resolved_at IS NULL
    GROUP BY 1, 2, 3
"""

WORKLIST_ENTRIES = """
    SELECT establishment, coalesce(unit, '') AS unit, reason, event_id,
           notification_id::text AS notification_id, recorded_at
    FROM notify.v_worklist WHERE resolved_at IS NULL
    ORDER BY recorded_at DESC, entry_id LIMIT %(limit)s
"""

# The identity-vigilance rates of the shown day's month: the events no GP could be found for
# (resolved since or not: they were unroutable when they came), over the month's stay events,
# both counted at the movement's time.
MONTH_UNROUTABLE = """
    SELECT establishment, reason, count(*) AS events
    FROM notify.v_worklist
    WHERE notification_id IS NULL
      AND occurred_at >= %(month_start)s AND occurred_at < %(month_end)s
    GROUP BY 1, 2
"""

MONTH_STAYS = """
    SELECT establishment, sum(count)::bigint AS stay_events
    FROM analytics.v_counts
    WHERE metric = 'stay_events' AND granularity = 'HOUR'
      AND window_start >= %(month_start)s AND window_start < %(month_end)s
    GROUP BY 1
"""

WORKLIST_ENTRIES_SHOWN = 50


class DashboardStore:
    """One connection, reopened after a failure; one snapshot at a time."""

    def __init__(self, database_url: str, dsn_window: dt.timedelta = DSN_WINDOW) -> None:
        self.database_url = database_url
        self.dsn_window = dsn_window
        self._conn: psycopg.AsyncConnection[dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def read_day(self, day: dt.date | None, today: dt.date) -> DayRows:
        """The figures of ``day``, or of the default day (see ``default_day``) when it is None."""
        async with self._lock:
            conn = await self._connection()
            try:
                async with conn.transaction():
                    return await self._read(conn, day, today)
            except psycopg.OperationalError:
                await self.close()
                raise

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _connection(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self.database_url, row_factory=dict_row, connect_timeout=5
            )
            # One consistent snapshot per page refresh, and never a write.
            await self._conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
            await self._conn.set_read_only(True)
        return self._conn

    async def _read(
        self, conn: psycopg.AsyncConnection[dict[str, Any]], day: dt.date | None, today: dt.date
    ) -> DayRows:
        if day is None:
            _, end_of_today = day_bounds(today)
            cursor = await conn.execute(LATEST_ACTIVITY, {"before": end_of_today})
            latest = await cursor.fetchone()
            day = default_day(today, latest["latest"] if latest else None)
        start, end = day_bounds(day)
        month_start, month_end = month_bounds(day)
        window = {
            "day": day,
            "start": start,
            "end": end,
            "month_start": month_start,
            "month_end": month_end,
            "limit": WORKLIST_ENTRIES_SHOWN,
            "dsn_window": self.dsn_window,
        }

        async def rows(query: str) -> list[dict[str, Any]]:
            cursor = await conn.execute(query, window)
            return await cursor.fetchall()

        latency = (await rows(LATENCY))[0]
        return DayRows(
            day=day,
            hourly=await rows(HOURLY_STAYS),
            stays=await rows(DAILY_STAYS),
            emails=await rows(EMAILS),
            latency=Latency(latency["p50"], latency["p99"], int(latency["count"])),
            covid_cases=await rows(COVID_CASES),
            covid_discharges=await rows(COVID_DISCHARGES),
            worklist=await rows(WORKLIST),
            worklist_entries=await rows(WORKLIST_ENTRIES),
            month_unroutable=await rows(MONTH_UNROUTABLE),
            month_stays=await rows(MONTH_STAYS),
        )

    def reachable(self) -> bool:
        """For the health endpoint, from its own thread: can a connection be made at all."""
        with psycopg.connect(self.database_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
