"""The shipped synthetic sample: reproducible, invented, and what the simulator relies on."""

from __future__ import annotations

from pathlib import Path

from services.directory.extracts import ActivityRow, BadRow, open_extract, read_personnes
from services.directory.sample import (
    SAMPLE_MSSANTE,
    SAMPLE_PERSONNES,
    sample_general_practitioners,
    write_sample,
)


def test_the_committed_sample_is_what_the_generator_writes(tmp_path: Path) -> None:
    written = write_sample(tmp_path)
    assert written.personnes.read_bytes() == SAMPLE_PERSONNES.read_bytes()
    assert written.mssante.read_bytes() == SAMPLE_MSSANTE.read_bytes()


def test_the_sample_reads_without_a_bad_row_and_repeats_some_rows() -> None:
    with open_extract(SAMPLE_PERSONNES) as source:
        rows = list(read_personnes(source))
    assert not [row for row in rows if isinstance(row, BadRow)]
    activities = [row for row in rows if isinstance(row, ActivityRow)]
    assert len({row.rpps for row in activities}) < len(activities)


def test_general_practitioners_for_the_simulator() -> None:
    gps = sample_general_practitioners()
    assert len(gps) == 400
    assert len({gp.rpps for gp in gps}) == 400
    # Synthetic numbers only: no real RPPS starts with 1999.
    assert all(gp.rpps.startswith("1999") and len(gp.rpps) == 11 for gp in gps)
    assert all(gp.postcode and gp.postcode[:2] in {"54", "55", "57", "88"} for gp in gps)
    mailbox_counts = {len(gp.mssante_addresses) for gp in gps}
    assert mailbox_counts == {0, 1, 2}
    assert any(not name.isascii() for gp in gps for name in (gp.given_name, gp.family_name))
