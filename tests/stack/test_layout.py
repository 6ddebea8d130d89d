"""Versions are pinned in one place, which both the Makefile and the stack read."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.stack.layout import (
    OUTSIDE_STATE,
    StackLayout,
    postgres_home,
    reachable_by,
    read_versions,
)


def test_versions_are_pinned_exactly() -> None:
    versions = read_versions()
    assert versions["KAFKA_VERSION"].startswith("4.")
    assert versions["APICURIO_VERSION"].startswith("3.")
    for name, value in versions.items():
        assert all(part.isdigit() for part in value.split(".")), f"{name}={value} is not exact"


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user can reach (pytest's own temporary folders are closed to others)."""
    folder = Path(tempfile.mkdtemp(prefix="harpicoop-layout-", dir="/tmp"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder)


def test_a_folder_closed_to_other_users_is_out_of_their_reach(open_folder: Path) -> None:
    closed = open_folder / "home"
    stack = closed / "checkout" / ".stack"
    stack.mkdir(parents=True)
    other = os.getuid() + 4242
    os.chmod(closed, 0o700)
    assert not reachable_by(stack / "postgres", other, [])
    assert reachable_by(stack / "postgres", os.getuid(), [])
    os.chmod(closed, 0o710)
    assert reachable_by(stack / "postgres", other, [os.stat(closed).st_gid])
    assert not reachable_by(stack / "postgres", other, [])
    os.chmod(closed, 0o711)
    assert reachable_by(stack / "postgres", other, [])


def test_postgres_keeps_its_data_outside_a_closed_checkout_and_then_stays_there(
    open_folder: Path,
) -> None:
    closed = open_folder / "root-home"
    layout = StackLayout(closed / "clone" / ".stack")
    layout.root.mkdir(parents=True)
    os.chmod(closed, 0o700)
    outside = open_folder / "var-lib-harpicoop" / "3c26185b162b"
    server = os.getuid() + 4242
    assert postgres_home(layout.postgres, outside, None, []) == layout.postgres
    assert postgres_home(layout.postgres, outside, server, []) == outside
    os.chmod(closed, 0o755)
    assert postgres_home(layout.postgres, outside, server, []) == layout.postgres
    (outside / "data").mkdir(parents=True)
    (outside / "data" / "PG_VERSION").write_text("15\n")
    assert postgres_home(layout.postgres, outside, server, []) == outside, "never moved back"


def test_each_checkout_has_its_own_folder_outside() -> None:
    one = StackLayout(Path("/root/harpicoop/.stack")).postgres_outside
    other = StackLayout(Path("/root/harpicoop-2/.stack")).postgres_outside
    assert one.parent == other.parent == OUTSIDE_STATE
    assert one != other and len(one.name) == 12
    assert StackLayout(Path("/root/harpicoop/.stack")).postgres_outside == one
