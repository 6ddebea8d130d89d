"""Headless Chromium, from Debian's ``chromium`` and ``chromium-driver`` packages, driven by
Selenium through the packaged chromedriver: nothing is downloaded at test time.

When the packages are missing and the tests run as root, they are installed with apt-get, once
per session; otherwise the browser tests are skipped, saying how to install them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from services.stack.process import apt_install

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver")

# Quiet and self-contained: no sandbox (containers run as root), no GPU, no calls home.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--lang=fr-FR",
    "--window-size=1440,1000",
)


def _installed() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The browser's path, installing Debian's packages first when missing and allowed to."""
    if _installed():
        return CHROMIUM
    if os.geteuid() != 0:
        pytest.skip(
            f"{CHROMIUM} or {CHROMEDRIVER} is missing and installing needs root: "
            f"run `apt-get install {' '.join(PACKAGES)}` as root"
        )
    apt_install(PACKAGES, f"{CHROMIUM} is missing")
    assert _installed(), f"apt-get installed {PACKAGES} but {CHROMIUM} is still missing"
    return CHROMIUM


@pytest.fixture
def browser(chromium: Path, tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium with a profile of its own, in French, 1440 px wide."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    # The page's console (script errors, blocked requests) for the test to read.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
