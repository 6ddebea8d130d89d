"""The dashboard's store reads a day's figures as the dashboard's role: from the views analytics,
notify and covid publish to it, on a throwaway cluster provisioned as the stack is."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

from services.dashboard.overview import DayRows
from services.dashboard.store import DashboardStore
from tests.dashboard.conftest import PlatformRows, at


def test_the_dashboard_role_reads_a_days_figures_from_the_published_views(
    owners_database: Callable[[str], str],
) -> None:
    day = dt.date(2025, 3, 10)
    rows = PlatformRows(owners_database("tests"))
    rows.stays(at(day, 9), "chrunancy", 4, "DISCHARGE")
    rows.notification(
        "chrunancy", "sent", at(day, 9), latency=dt.timedelta(seconds=3), receipts=("delivered",)
    )
    rows.notification("chrunancy", "retrying", at(day, 10))
    # Sent (in 2025) and never confirmed: past any window.
    rows.notification("chrunancy", "sent", at(day, 10), latency=dt.timedelta(seconds=2))
    rows.covid_case("toul", "REMINDED", at(day, 11), patient={"family_name": "DUPONT"})
    rows.count("covid_discharges", at(day, 11), "toul", 1, covid_status="POSITIVE")
    rows.worklist("toul", "URG", "NO_GP", at(day, 8))
    rows.worklist("toul", "URG", "NO_GP", at(dt.date(2025, 3, 1), 0, 30))
    rows.worklist("toul", None, "BOUNCED", at(day, 8))
    rows.worklist("toul", "URG", "NO_GP", at(dt.date(2025, 2, 28), 23, 30))  # last month
    rows.close()

    async def read() -> DayRows:
        store = DashboardStore(owners_database("dashboard"))
        try:
            return await store.read_day(day, today=day + dt.timedelta(days=1))
        finally:
            await store.close()

    figures = asyncio.run(read())
    assert figures.hourly == [{"establishment": "chrunancy", "hour": 9, "stay_events": 4}]
    assert figures.stays[0]["discharges"] == 4
    assert figures.emails == [
        {
            "establishment": "chrunancy",
            **{"sent": 2, "failed": 0, "waiting": 1, "delivered": 1, "read": 0, "bounced": 0},
            "unconfirmed": 1,
        }
    ]
    assert figures.latency.count == 2
    assert figures.covid_cases == [
        {"establishment": "toul", "open": 1, "reminded": 1, "opened_on_day": 1}
    ]
    assert figures.covid_discharges[0]["positive"] == 1
    assert sorted((r["unit"], r["reason"], r["open"]) for r in figures.worklist) == [
        ("", "BOUNCED", 1),
        ("URG", "NO_GP", 3),
    ]
    assert len(figures.worklist_entries) == 4
    # The month's unroutable events (the bounce is no unroutable event), over its stay events.
    assert figures.month_unroutable == [{"establishment": "toul", "reason": "NO_GP", "events": 2}]
    assert figures.month_stays == [{"establishment": "chrunancy", "stay_events": 4}]
    assert "DUPONT" not in str(figures)
