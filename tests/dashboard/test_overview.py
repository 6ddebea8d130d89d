"""The page's figures shaped from the rows read: every establishment shown, days in France."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.cli.lag import GroupLag
from services.common.establishments import Establishment, load_establishments
from services.dashboard.config import DashboardConfig
from services.dashboard.overview import (
    DayRows,
    LagReading,
    Latency,
    day_bounds,
    default_day,
    hourly_counts,
    overview,
)

NANCY = Establishment("chrunancy", "CHRU de Nancy", "", "CHRU_NANCY")
TOUL = Establishment("toul", "Centre hospitalier de Toul", "", "CH_TOUL")
NOON = dt.datetime(2025, 3, 10, 11, 0, tzinfo=dt.UTC)


def rows(**overrides: Any) -> DayRows:
    fields: dict[str, Any] = {
        "day": dt.date(2025, 3, 10),
        "hourly": [],
        "stays": [],
        "emails": [],
        "latency": Latency(None, None, 0),
        "covid_cases": [],
        "covid_discharges": [],
    }
    fields.update(overrides)
    return DayRows(**fields)


def shaped(day_rows: DayRows, lag: LagReading | None = None) -> dict[str, Any]:
    return overview(day_rows, [NANCY, TOUL], lag or LagReading(), 1000, NOON, 5.0)


def test_a_day_is_the_local_day_in_france_across_both_clock_changes() -> None:
    def hours(day: dt.date) -> float:
        start, end = day_bounds(day)
        return (end.astimezone(dt.UTC) - start.astimezone(dt.UTC)) / dt.timedelta(hours=1)

    start, _ = day_bounds(dt.date(2025, 3, 30))
    assert start.astimezone(dt.UTC) == dt.datetime(2025, 3, 29, 23, tzinfo=dt.UTC)
    assert hours(dt.date(2025, 3, 30)) == 23  # spring forward
    assert hours(dt.date(2025, 10, 26)) == 25  # fall back


def test_the_default_day_is_today_or_else_the_last_day_with_stays() -> None:
    today = dt.date(2025, 3, 10)
    assert default_day(today, None) == today
    assert default_day(today, dt.datetime(2025, 3, 10, 6, tzinfo=dt.UTC)) == today
    # 23:00 UTC on the 7th is already the 8th in France.
    assert default_day(today, dt.datetime(2025, 3, 7, 23, tzinfo=dt.UTC)) == dt.date(2025, 3, 8)


def test_every_establishment_appears_with_zeros_when_it_had_nothing() -> None:
    figures = shaped(rows())
    assert [item["code"] for item in figures["establishments"]] == ["chrunancy", "toul"]
    stays = figures["stays"]
    assert stays["by_establishment"][1] == {
        "establishment": "toul",
        "stay_events": 0,
        "admissions": 0,
        "scheduled_admissions": 0,
        "emergency_admissions": 0,
        "transfers": 0,
        "discharges": 0,
        "corrections": 0,
        "cancellations": 0,
        "unroutable": 0,
        "other": 0,
    }
    assert stays["hourly"][0]["counts"] == [0] * 24
    assert figures["emails"]["latency_seconds"] == {"p50": None, "p99": None, "count": 0}


def test_an_establishment_no_longer_in_the_file_keeps_its_history_under_its_code() -> None:
    figures = shaped(rows(stays=[{"establishment": "old", "stay_events": 4}]))
    assert figures["establishments"][-1] == {"code": "old", "name": "old"}
    assert figures["stays"]["total"]["stay_events"] == 4


def test_the_other_part_of_the_bar_is_what_no_named_kind_covers() -> None:
    stays = {
        "establishment": "chrunancy",
        "stay_events": 20,
        "admissions": 6,  # one of unknown mode
        "scheduled_admissions": 3,
        "emergency_admissions": 2,
        "transfers": 4,
        "discharges": 5,
        "corrections": 1,
        "cancellations": 2,
        "unroutable": 7,  # a part of the others, not a kind of its own
    }
    line = shaped(rows(stays=[stays]))["stays"]["by_establishment"][0]
    assert line["other"] == 20 - (3 + 2 + 4 + 5 + 1 + 2)


def test_hourly_counts_add_up_the_two_windows_of_the_repeated_hour() -> None:
    hourly = [
        {"establishment": "toul", "hour": 2, "stay_events": 3},
        {"establishment": "toul", "hour": 2, "stay_events": 4},
        {"establishment": "toul", "hour": 23, "stay_events": 1},
    ]
    counts = hourly_counts(["chrunancy", "toul"], hourly)
    assert counts["toul"][2] == 7 and counts["toul"][23] == 1
    assert sum(counts["chrunancy"]) == 0


def test_totals_and_peak_over_establishments() -> None:
    figures = shaped(
        rows(
            hourly=[
                {"establishment": "chrunancy", "hour": 10, "stay_events": 12},
                {"establishment": "toul", "hour": 9, "stay_events": 5},
            ],
            emails=[
                {"establishment": "chrunancy", "sent": 10, "failed": 1, "waiting": 2},
                {"establishment": "toul", "sent": 3, "failed": 0, "waiting": 0},
            ],
            latency=Latency(1.23456, 9.87654, 13),
            covid_cases=[{"establishment": "toul", "open": 2, "reminded": 1, "opened_on_day": 1}],
            covid_discharges=[{"establishment": "chrunancy", "positive": 1, "negative": 4}],
        )
    )
    assert figures["stays"]["peak"] == 12
    emails = figures["emails"]
    assert emails["total"] == {
        **{"sent": 13, "failed": 1, "waiting": 2, "delivered": 0, "read": 0, "bounced": 0},
        "unconfirmed": 0,
        **{"delivered_share": 0.0, "read_share": 0.0},
    }
    assert emails["latency_seconds"] == {"p50": 1.235, "p99": 9.877, "count": 13}
    covid = figures["covid"]
    assert covid["total"]["open"] == 2 and covid["total"]["positive"] == 1
    assert covid["by_establishment"][1]["reminded"] == 1
    assert covid["by_establishment"][0]["negative"] == 4
    assert figures["day"] == "2025-03-10" and figures["today"] == "2025-03-10"
    assert figures["generated_at"] == "2025-03-10T12:00:00+01:00"


def test_lag_above_the_threshold_is_flagged() -> None:
    reading = LagReading(
        [GroupLag("notify", 1001, 3), GroupLag("covid", 1000, 3)],
        dt.datetime(2025, 3, 10, 11, 0, 5, tzinfo=dt.UTC),
    )
    lag = shaped(rows(), reading)["lag"]
    assert [group["over_threshold"] for group in lag["groups"]] == [True, False]
    assert lag["checked_at"] == "2025-03-10T12:00:05+01:00"
    assert lag["error"] is None


def test_settings_from_the_environment() -> None:
    config = DashboardConfig.from_env(
        {
            "DASHBOARD_PORT": "9000",
            "DASHBOARD_GROUPS": "notify, covid,",
            "DASHBOARD_HOST": "0.0.0.0",
        }
    )
    assert config.port == 9000 and config.groups == ("notify", "covid")
    assert config.url == "http://localhost:9000/"
    default = DashboardConfig.from_env({})
    assert default.url == "http://127.0.0.1:8088/"
    assert "analytics-sql" in default.groups


def test_the_establishments_file_names_every_establishment_shown() -> None:
    establishments = load_establishments()
    figures = overview(rows(), establishments, LagReading(), 1000, NOON, 5.0)
    assert len(figures["establishments"]) == len(establishments) == 11
    assert all(item["name"] for item in figures["establishments"])


def test_the_shares_of_sent_notices_delivered_and_read_per_establishment() -> None:
    figures = shaped(
        rows(
            emails=[
                {"establishment": "chrunancy", "sent": 8, "delivered": 6, "read": 2, "bounced": 1},
                {"establishment": "toul", "sent": 0, "waiting": 3},
            ]
        )
    )
    by_place = {line["establishment"]: line for line in figures["emails"]["by_establishment"]}
    assert (by_place["chrunancy"]["delivered_share"], by_place["chrunancy"]["read_share"]) == (
        0.75,
        0.25,
    )
    # Nothing sent: no share to show, rather than a zero that would look like a failure.
    assert by_place["toul"]["delivered_share"] is None
    assert figures["emails"]["total"]["bounced"] == 1


def test_the_worklist_by_unit_and_the_months_vigilance_rates_per_establishment() -> None:
    recorded = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)
    report = shaped(
        rows(
            worklist=[
                {"establishment": "toul", "unit": "URG", "reason": "NO_GP", "open": 3},
                {"establishment": "toul", "unit": "URG", "reason": "BOUNCED", "open": 1},
                {"establishment": "chrunancy", "unit": "", "reason": "UNKNOWN_RPPS", "open": 2},
            ],
            worklist_entries=[
                {
                    "establishment": "toul",
                    "unit": "URG",
                    "reason": "BOUNCED",
                    "event_id": "toul:MSG1",
                    "notification_id": "3f1b0a52-54c4-4a2c-9d0e-4c1c7e0f9a01",
                    "recorded_at": recorded,
                }
            ],
            month_unroutable=[
                {"establishment": "toul", "reason": "NO_GP", "events": 5},
                {"establishment": "toul", "reason": "NO_SECURE_ADDRESS", "events": 1},
            ],
            month_stays=[{"establishment": "toul", "stay_events": 200}],
        )
    )["worklist"]
    assert report["month"] == "2025-03"
    assert [(u["establishment"], u["unit"], u["total"]) for u in report["by_unit"]] == [
        ("chrunancy", "", 2),
        ("toul", "URG", 4),
    ]
    assert report["by_unit"][1]["NO_GP"] == 3 and report["by_unit"][1]["BOUNCED"] == 1
    assert report["total"]["total"] == 6 and report["total"]["UNKNOWN_RPPS"] == 2
    assert report["entries"][0]["recorded_at"] == "2025-03-10T10:30:00+01:00"
    nancy, toul = report["rates"]
    # A month without a stay event has no rate to show, not a rate of zero.
    assert nancy["stay_events"] == 0 and nancy["NO_GP_rate"] is None
    assert (toul["NO_GP"], toul["NO_GP_rate"]) == (5, 0.025)
    assert (toul["UNKNOWN_RPPS_rate"], toul["NO_SECURE_ADDRESS_rate"]) == (0.0, 0.005)


def test_a_month_is_the_local_month_in_france() -> None:
    from services.dashboard.overview import month_bounds

    start, end = month_bounds(dt.date(2025, 12, 31))
    assert start.astimezone(dt.UTC) == dt.datetime(2025, 11, 30, 23, tzinfo=dt.UTC)
    assert end.astimezone(dt.UTC) == dt.datetime(2025, 12, 31, 23, tzinfo=dt.UTC)
