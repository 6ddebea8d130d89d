"""Versions are pinned in one place, which both the Makefile and the stack read."""

from services.stack.layout import read_versions


def test_versions_are_pinned_exactly() -> None:
    versions = read_versions()
    assert versions["KAFKA_VERSION"].startswith("4.")
    assert versions["APICURIO_VERSION"].startswith("3.")
    for name, value in versions.items():
        assert all(part.isdigit() for part in value.split(".")), f"{name}={value} is not exact"
