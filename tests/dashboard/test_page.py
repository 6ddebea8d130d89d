"""The page in headless Chromium, as a person uses it: it loads, the day's numbers appear, and
they change on their own when the services write more."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.dashboard.conftest import Dashboard, PlatformRows, at, today

pytestmark = pytest.mark.integration

NARROW_SPACE = "\u202f"  # French thousands separator


def text_of(browser: webdriver.Chrome, selector: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, selector).text)


def shows(browser: webdriver.Chrome, expected: dict[str, str], timeout: float = 30) -> None:
    """Wait until every selector's text is as expected (the page refreshes by itself)."""
    WebDriverWait(browser, timeout).until(
        lambda _: all(text_of(browser, key) == value for key, value in expected.items()),
        message=f"the page did not show {expected}",
    )


def full_page_screenshot(browser: webdriver.Chrome, path: Path) -> Path:
    """The whole page, for a person to look at: the window made as tall as the page."""
    for _ in range(2):  # the window's frame takes some height: measure again once resized
        height = browser.execute_script("return document.documentElement.scrollHeight")
        inner = browser.execute_script("return window.innerHeight")
        size = browser.get_window_size()
        browser.set_window_size(1440, size["height"] + int(height) - int(inner))
    browser.save_screenshot(str(path))
    return path


def french(number: int) -> str:
    return f"{number:,}".replace(",", NARROW_SPACE)


# A day's shape, per hour: scheduled admissions in the morning, discharges around midday,
# transfers through the day; and each establishment's size.
ADMISSIONS = (0, 0, 0, 0, 0, 0, 1, 4, 6, 5, 3, 2, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0)
DISCHARGES = (0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 4, 3, 3, 3, 4, 3, 2, 1, 0, 0, 0, 0, 0)
TRANSFERS = (1, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1)
SIZES = {"chrunancy": 5, "cpn": 1, "luneville": 2, "toul": 2, "pam": 1, "sndp": 1, "commercy": 1,
         "dieuze": 1, "ravenel": 1, "3hsante": 1, "icl": 2}  # fmt: skip


def busy_day(rows: PlatformRows, day: dt.date) -> int:
    """Stay events of a plausible day for the eleven establishments; how many in all."""
    written = 0
    for code, size in SIZES.items():
        for hour in range(24):
            for kind, shape in (
                ("ADMISSION", ADMISSIONS),
                ("DISCHARGE", DISCHARGES),
                ("TRANSFER", TRANSFERS),
            ):
                if shape[hour]:
                    rows.stays(at(day, hour), code, size * shape[hour], kind)
                    written += size * shape[hour]
    return written


def test_the_numbers_appear_and_follow_what_the_services_write(
    platform_rows: PlatformRows,
    empty_database: str,
    lagging_group: tuple[str, int],
    dashboard_factory: Callable[..., Dashboard],
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    day, rows = today(), platform_rows
    events = busy_day(rows, day)
    rows.notification("chrunancy", "sent", at(day, 9, 5), dt.timedelta(milliseconds=850))
    rows.notification("chrunancy", "sent", at(day, 9, 6), dt.timedelta(seconds=2))
    group, _ = lagging_group
    # A group that has never read anything, whatever else ran on this stack before.
    idle = f"idle-{uuid.uuid4().hex[:8]}"
    dashboard = dashboard_factory(
        empty_database, DASHBOARD_GROUPS=f"{idle},{group}", DASHBOARD_LAG_THRESHOLD="4"
    )

    browser.get(dashboard.url)
    assert "tableau de bord" in browser.title
    shows(
        browser,
        {
            "#kpi-stay-events": french(events),
            "#kpi-discharges": french(sum(DISCHARGES) * sum(SIZES.values())),
            "#kpi-emails-sent": "2",
            "#kpi-emails-failed": "0",
            "#kpi-covid-open": "0",
            '#stay-table td[data-establishment="chrunancy"][data-column="discharges"]': "150",
            '#stay-table td[data-establishment="luneville"][data-column="transfers"]': "58",
            '#heatmap [data-establishment="chrunancy"][data-hour="8"]': "45",
        },
    )
    assert text_of(browser, "#updated-at") != "—"
    assert "Jour affiché" in text_of(browser, "#day-note")
    # The group 5 records behind, over the threshold of 4, is drawn in red and said so.
    late = f'#lag-bars [data-group="{group}"]'
    WebDriverWait(browser, 30).until(lambda _: "au-delà du seuil" in text_of(browser, late))
    assert browser.find_element(By.CSS_SELECTOR, f"{late} rect").get_attribute("fill") == "#B3261E"
    assert "pas encore de position" in text_of(browser, f'#lag-bars [data-group="{idle}"]')
    first = full_page_screenshot(browser, tmp_path / "dashboard-first.png")

    # More activity: the page catches up by itself, without a reload.
    rows.stays(at(day, 11), "chrunancy", 40, "DISCHARGE")
    rows.count("unroutable_stay_events", at(day, 11), "toul", 1, event_kind="ADMISSION")
    rows.notification("toul", "failed", at(day, 11, 7))
    rows.covid_case("toul", "OPEN", at(day, 11, 8))
    rows.count("covid_discharges", at(day, 11), "toul", 1, covid_status="POSITIVE")
    rows.worklist("toul", "URG", "NO_GP", at(day, 11))
    shows(
        browser,
        {
            "#kpi-stay-events": french(events + 40),
            "#kpi-emails-failed": "1",
            "#kpi-covid-open": "1",
            "#kpi-unroutable": "1",
            '#heatmap [data-establishment="chrunancy"][data-hour="11"]': "80",
            '#covid-table td[data-establishment="toul"][data-column="open"]': "1",
            '#covid-table td[data-establishment="toul"][data-column="positive"]': "1",
            '#email-table td[data-establishment="toul"][data-column="failed"]': "1",
            # One event without a GP among Toul's 180 of the month: 0.56 %.
            '#vigilance-table td[data-establishment="toul"][data-column="NO_GP_rate"]': (
                f"0,6{NARROW_SPACE}%"
            ),
        },
    )
    failed_tile = browser.find_element(By.ID, "kpi-emails-failed").find_element(By.XPATH, "..")
    assert "nonzero" in str(failed_tile.get_attribute("class"))  # drawn in red
    # Median of 0.85 s and 2 s; the 99th percentile close to the slower.
    assert text_of(browser, "#kpi-latency") == f"1,4{NARROW_SPACE}s"
    assert text_of(browser, "#kpi-latency-p99") == f"99{NARROW_SPACE}% en moins de 2{NARROW_SPACE}s"

    # Going back a day shows that day (nothing), and the latest day again on request.
    browser.find_element(By.ID, "previous-day").click()
    shows(browser, {"#kpi-stay-events": "0", "#kpi-emails-sent": "0"})
    browser.find_element(By.ID, "latest-day").click()
    shows(browser, {"#kpi-stay-events": french(events + 40)})

    # Numbers and durations are written the French way.
    formats = browser.execute_script(
        "return [count(1234567), duration(0.0424), duration(12.34), duration(75), duration(null)]"
    )
    assert [text.replace(NARROW_SPACE, " ") for text in formats] == [
        "1 234 567",
        "42 ms",
        "12,3 s",
        "1 min 15 s",
        "—",
    ]

    updated = full_page_screenshot(browser, tmp_path / "dashboard-updated.png")
    print(f"screenshots: {first} and {updated}")
    console = browser.get_log("browser")  # type: ignore[no-untyped-call]  # untyped in selenium
    errors = [entry for entry in console if entry["level"] == "SEVERE"]
    assert errors == [], "the page logged errors (blocked resources, script errors)"
