"""The FINESS establishments extract, read as published."""

from __future__ import annotations

from pathlib import Path

from services.notify.finess import (
    SAMPLE_EXTRACT,
    STRUCTUREET_FIELDS,
    decode,
    load_finess_names,
    read_structures,
)


def _row(**values: str) -> str:
    return ";".join(["structureet", *(values.get(name, "") for name in STRUCTUREET_FIELDS)])


def test_the_published_layout_has_31_fields_after_the_section_tag() -> None:
    assert len(STRUCTUREET_FIELDS) == 31
    assert STRUCTUREET_FIELDS[:4] == ("nofinesset", "nofinessej", "rs", "rslongue")


def test_structures_are_read_by_position_and_other_lines_passed_over() -> None:
    lines = [
        "finess;etalab;95;2026-01-09",
        _row(
            nofinesset="990000021",
            rs="CH TOUL",
            rslongue="CENTRE HOSPITALIER DE TOUL",
            ligneacheminement="54200 TOUL",
        )
        + "\r\n",
        _row(nofinesset="990000039", rs="CH COURT"),  # no long name: the short one
        _row(nofinesset="12345", rslongue="NO VALID NUMBER"),
        "structureet;990000047",  # cut short
        "geolocalisation;990000021;950000.0;6850000.0;1,ATLASANTE,100,IGN,BD_ADRESSE,V2.2;2026-01-01",
    ]
    found = read_structures(lines)
    assert sorted(found) == ["990000021", "990000039"]
    assert found["990000021"].wording == "CENTRE HOSPITALIER DE TOUL (54200 TOUL)"
    assert found["990000039"].wording == "CH COURT"


def test_corsican_numbers_are_numbers() -> None:
    found = read_structures([_row(nofinesset="2A0000000", rslongue="CH CORSE")])
    assert list(found) == ["2A0000000"]


def test_windows_1252_and_utf_8_files_are_both_read() -> None:
    text = "CENTRE HOSPITALIER DE LUNÉVILLE, VANDŒUVRE"
    assert decode(text.encode("cp1252")) == text
    assert decode(text.encode("utf-8")) == text


def test_the_sample_in_deploy_is_in_the_published_layout(tmp_path: Path) -> None:
    raw = SAMPLE_EXTRACT.read_bytes()
    assert raw.startswith(b"finess;etalab;")
    names = load_finess_names()
    assert len(names) == 5
    # A copy under the published file name reads the same.
    copy = tmp_path / "etalab_cs1100507_stock_20260109-0425.csv"
    copy.write_bytes(raw)
    assert load_finess_names(copy) == names
