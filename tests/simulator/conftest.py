"""Fixtures of the simulator's tests: the real profiles and the directory sample's GPs, and a
simulated Monday built once per session (building a day is pure and deterministic)."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.establishments import load_establishments
from services.simulator.model import Practitioner
from services.simulator.practitioners import directory_gps
from services.simulator.profiles import Profile, load_profiles
from services.simulator.scenario import Day, DayConfig, build_day

MONDAY = dt.date(2026, 3, 2)


@pytest.fixture(scope="session")
def profiles() -> list[Profile]:
    return load_profiles(load_establishments())


@pytest.fixture(scope="session")
def gps() -> list[Practitioner]:
    """The GPs of the directory's shipped sample, as patients declare them."""
    return directory_gps()


@pytest.fixture(scope="session")
def monday(profiles: list[Profile], gps: list[Practitioner]) -> Day:
    """A full Monday of the eleven establishments at the typical volume."""
    return build_day(DayConfig(MONDAY, seed=1), profiles, gps)
