"""The command line: a day written to files for inspection, and its options read as meant."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest

from services.gateway.hl7 import parse
from services.simulator.app import main, parse_duration


def test_the_day_is_written_to_one_file_per_establishment_in_its_charset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "day"
    code = main(["--date", "2026-03-02", "--rate", "0.1", "--seed", "7", "--out", str(folder)])

    assert code == 0
    files = sorted(path.name for path in folder.iterdir())
    assert len(files) == 11 and "chrunancy.hl7" in files and "cpn.hl7" in files
    latin = (folder / "cpn.hl7").read_bytes()
    messages = [b"MSH" + chunk for chunk in latin.split(b"\nMSH")[1:]]
    assert messages
    assert all(parse(message).charset == "8859/1" for message in messages)
    (folder / "chrunancy.hl7").read_bytes().decode("utf-8")
    out = capsys.readouterr().out
    assert "Monday 02 March 2026" in out and "messages from 11 establishments" in out


def test_one_establishment_can_be_simulated_alone(tmp_path: Path) -> None:
    main(["--date", "2026-03-03", "--establishments", "toul", "--out", str(tmp_path)])
    assert [path.name for path in tmp_path.iterdir()] == ["toul.hl7"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("24h", dt.timedelta(hours=24)),
        ("90m", dt.timedelta(minutes=90)),
        ("1h30m", dt.timedelta(hours=1, minutes=30)),
        ("45s", dt.timedelta(seconds=45)),
    ],
)
def test_durations(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "tomorrow", "3d"])
def test_nonsense_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)
