"""The dashboard's JSON against the real PostgreSQL and Kafka: the figures a person reads are
those the services wrote, for the right local day, and no patient data comes out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.dashboard.conftest import Dashboard, PlatformRows, at, today
from tests.support import eventually

pytestmark = pytest.mark.integration

SECOND = dt.timedelta(seconds=1)


def test_the_figures_are_those_of_the_tables_for_the_local_day(
    platform_rows: PlatformRows,
    empty_database: str,
    lagging_group: tuple[str, int],
    dashboard_factory: Callable[..., Dashboard],
) -> None:
    day = today() - dt.timedelta(days=2)
    before, after = day - dt.timedelta(days=1), day + dt.timedelta(days=1)
    rows = platform_rows
    # Midnight in France is 23:00 or 22:00 UTC the day before: it belongs to ``day``.
    rows.count("stay_events", at(day, 0), "chrunancy", 1,
               event_kind="ADMISSION", action="INSERT", admission_mode="EMERGENCY")  # fmt: skip
    rows.stays(at(day, 9), "chrunancy", 3, "ADMISSION")
    rows.count("stay_events", at(day, 9), "chrunancy", 2,
               event_kind="ADMISSION", action="INSERT", admission_mode="EMERGENCY")  # fmt: skip
    rows.stays(at(day, 14), "chrunancy", 4, "DISCHARGE")
    rows.stays(at(day, 14), "chrunancy", 1, "TRANSFER")
    rows.count("unroutable_stay_events", at(day, 14), "chrunancy", 1,
               event_kind="DISCHARGE", action="INSERT")  # fmt: skip
    rows.stays(at(day, 10), "toul", 2, "PRE_ADMISSION")
    rows.stays(at(day, 10), "toul", 1, "DISCHARGE", action="UPDATE")
    rows.stays(at(day, 23), "toul", 1, "ADMISSION", action="CANCEL")
    rows.count("covid_discharges", at(day, 14), "chrunancy", 1, covid_status="POSITIVE")
    rows.count("covid_discharges", at(day, 14), "chrunancy", 3, covid_status="NEGATIVE")
    # Not of the day: the hours around it, and the daily window that repeats the hours.
    rows.stays(at(before, 23), "chrunancy", 50, "DISCHARGE")
    rows.stays(at(after, 0), "chrunancy", 60, "DISCHARGE")
    rows.count("stay_events", at(day, 0), "chrunancy", 11, granularity="DAY",
               event_kind="DISCHARGE", action="INSERT")  # fmt: skip

    # What came back from the platform's mailbox: read, delivered, nothing yet.
    for latency, receipts in ((1, ("delivered", "read")), (2, ("delivered",)), (3, ())):
        rows.notification("chrunancy", "sent", at(day, 14, 5), latency * SECOND, receipts=receipts)
    rows.notification("chrunancy", "failed", at(day, 14, 6))
    rows.notification("toul", "pending", at(day, 23, 59))
    rows.notification("toul", "retrying", at(day, 10))
    rows.notification("toul", "skipped", at(day, 10))  # deliberately not sent: neither
    rows.notification("toul", "sent", at(before, 12), 100 * SECOND)  # another day

    patient = {"family_name": "DUPONT-TESTPATIENT", "birth_date": "1950-01-01"}
    rows.covid_case("chrunancy", "OPEN", at(day, 14), patient)
    rows.covid_case("toul", "REMINDED", at(day - dt.timedelta(days=8), 11))
    rows.covid_case("chrunancy", "CLOSED", at(day, 15))  # opened that day, closed since
    rows.covid_case("icl", "CLOSED", at(before, 9))  # nothing to show
    rows.notification("icl", "sent", at(day, 16), SECOND, message="DUPONT-TESTPATIENT est sorti")

    # notify's worklist: an event with no GP, and a notice no step of its chain delivered.
    rows.worklist("chrunancy", "CARD", "NO_GP", at(day, 14))
    rows.worklist("toul", None, "BOUNCED", at(day, 10))

    group, lag = lagging_group
    dashboard = dashboard_factory(
        empty_database, DASHBOARD_GROUPS=group, DASHBOARD_LAG_THRESHOLD="4"
    )

    figures = eventually(
        lambda: (body := dashboard.overview(day.isoformat()).json())["lag"]["groups"] and body,
        what="a first reading of the consumer lag",
    )
    assert figures["day"] == day.isoformat()
    assert len(figures["establishments"]) == 11
    hourly = {line["establishment"]: line["counts"] for line in figures["stays"]["hourly"]}
    assert hourly["chrunancy"][0] == 1 and hourly["chrunancy"][9] == 5
    assert hourly["chrunancy"][14] == 5  # the unroutable one is a part of them, not more
    assert sum(hourly["chrunancy"]) == 11
    assert hourly["toul"][10] == 3 and hourly["toul"][23] == 1
    assert figures["stays"]["peak"] == 5

    stays = {line["establishment"]: line for line in figures["stays"]["by_establishment"]}
    assert stays["chrunancy"] == {
        "establishment": "chrunancy",
        "stay_events": 11,
        "admissions": 6,
        "scheduled_admissions": 3,
        "emergency_admissions": 3,
        "transfers": 1,
        "discharges": 4,
        "corrections": 0,
        "cancellations": 0,
        "unroutable": 1,
        "other": 0,
    }
    assert stays["toul"]["corrections"] == 1 and stays["toul"]["cancellations"] == 1
    assert stays["toul"]["other"] == 2  # the pre-admissions
    assert figures["stays"]["total"]["stay_events"] == 15

    emails = figures["emails"]
    by_place = {line["establishment"]: line for line in emails["by_establishment"]}

    def sent_failed_waiting(line: dict[str, Any]) -> tuple[int, int, int]:
        return line["sent"], line["failed"], line["waiting"]

    assert sent_failed_waiting(by_place["chrunancy"]) == (3, 1, 0)
    assert sent_failed_waiting(by_place["toul"]) == (0, 0, 2)
    assert sent_failed_waiting(emails["total"]) == (4, 1, 2)
    assert (emails["total"]["delivered"], emails["total"]["read"]) == (2, 1)
    assert by_place["chrunancy"]["delivered_share"] == pytest.approx(0.667, abs=0.001)
    latency = emails["latency_seconds"]
    assert latency["count"] == 4 and latency["p50"] == pytest.approx(1.5)
    assert latency["p99"] == pytest.approx(2.97)  # between the two slowest, as percentile_cont

    covid = {line["establishment"]: line for line in figures["covid"]["by_establishment"]}
    assert (covid["chrunancy"]["open"], covid["chrunancy"]["opened_on_day"]) == (1, 2)
    assert (covid["toul"]["open"], covid["toul"]["reminded"]) == (1, 1)
    assert covid["icl"]["open"] == 0
    assert (covid["chrunancy"]["positive"], covid["chrunancy"]["negative"]) == (1, 3)
    assert figures["covid"]["total"]["open"] == 2

    worklist = figures["worklist"]
    assert [
        (u["establishment"], u["unit"], u["NO_GP"], u["BOUNCED"]) for u in worklist["by_unit"]
    ] == [
        ("chrunancy", "CARD", 1, 0),
        ("toul", "", 0, 1),
    ]
    rates = {line["establishment"]: line for line in worklist["rates"]}
    month_events = rates["chrunancy"]["stay_events"]
    assert month_events >= 11 and rates["chrunancy"]["NO_GP"] == 1
    assert rates["chrunancy"]["NO_GP_rate"] == round(1 / month_events, 4)
    assert rates["toul"]["NO_GP"] == 0  # a bounced notice is no unroutable event
    assert worklist["month"] == day.strftime("%Y-%m")

    assert figures["lag"]["groups"] == [
        {"group": group, "lag": lag, "partitions": 1, "over_threshold": True}
    ]

    # Nothing today yet: by default, the last day with stays (yesterday).
    latest = dashboard.overview().json()
    assert latest["day"] == after.isoformat() and latest["today"] == today().isoformat()
    assert latest["stays"]["total"]["discharges"] == 60
    other = dashboard.overview(before.isoformat()).json()
    assert other["stays"]["total"]["discharges"] == 50
    assert other["emails"]["total"]["sent"] == 1
    # Patient data never leaves the database.
    for body in (figures, latest, other):
        assert "DUPONT-TESTPATIENT" not in str(body) and "1950-01-01" not in str(body)
    assert dashboard.overview("31/12/2025").status_code == 400

    port = eventually(dashboard.process.observability_port, what="the observability port")
    assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()["healthy"] is True


def test_without_its_database_the_dashboard_says_so_and_is_unhealthy(
    empty_database: str, dashboard_factory: Callable[..., Dashboard]
) -> None:
    base, _, _ = empty_database.rpartition("/")
    dashboard = dashboard_factory(f"{base}/no_such_database", DASHBOARD_GROUPS="none")
    refused = dashboard.overview()
    assert refused.status_code == 503
    assert refused.json() == {"error": "base de données indisponible"}
    port = eventually(dashboard.process.observability_port, what="the observability port")
    health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
    assert health.status_code == 503 and health.json()["checks"] == {"database": False}
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'harpicoop_failures_total{reason="database",service="dashboard"}' in metrics
