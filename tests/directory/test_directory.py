"""The directory against the real stack: imports, diffs, bad rows, failures, preferences."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from services.common.settings import Settings
from services.directory.__main__ import main
from services.directory.bootstrap import Directory, build
from services.directory.extracts import PERSONNES_COLUMNS, BadRow, format_line
from services.directory.publisher import PublishError
from services.directory.sample import (
    SAMPLE_MSSANTE,
    SAMPLE_PERSONNES,
    row,
    sample_general_practitioners,
)
from services.directory.service import import_extracts, set_preferences
from services.directory.store import DirectoryError
from tests.directory.conftest import (
    TopicReader,
    activity,
    latest,
    mailbox,
    present,
    write_day,
)
from tests.support import stack_env

pytestmark = pytest.mark.integration

A, B, C, D, E = (f"1999900000{digit}" for digit in range(1, 6))


def first_day(folder: Path) -> tuple[Path, Path]:
    return write_day(
        folder,
        "20260301",
        [
            activity(A, "MARCHAL", "Émilie"),
            activity(A, "MARCHAL", "Émilie"),  # the same row twice, as published
            activity(B, "GÉRARD", "Noël"),
            activity(C, "L'HUILLIER", "Anaïs", **{"Libellé commune (coord. structure)": "Toul"}),
            activity(D, "VAUTRIN", "Loïc"),
            # A second activity: salaried sessions at a hospital, not the main practice.
            activity(
                D,
                "VAUTRIN",
                "Loïc",
                **{"Code mode exercice": "S", "Raison sociale site": "CHRU DE NANCY"},
            ),
        ],
        [
            mailbox(A, "emilie.marchal@medecin.mssante.fr"),
            mailbox(A, "emilie.marchal@medecin.mssante.fr"),
            mailbox(B, "noel.gerard@medecin.mssante.fr"),
            mailbox(D, "loic.vautrin@medecin.mssante.fr"),
            mailbox(D, "cabinet.vautrin@medecin.mssante.fr", "CAB"),
        ],
    )


def state(directory: Directory) -> list[dict[str, object]]:
    return list(directory.store.practitioner_states())


def test_the_sample_is_imported_and_every_practitioner_published(
    directory: Directory, read_practitioners: TopicReader
) -> None:
    summary = import_extracts(
        directory.store, directory.publisher, SAMPLE_PERSONNES, SAMPLE_MSSANTE
    )
    assert summary.bad_rows == 0
    assert summary.changes.added == summary.changes.practitioners == 580
    assert summary.personnes.rows > summary.changes.practitioners  # repeated rows, one each

    assert directory.publisher.publish_queued() == 580
    records = latest(read_practitioners(580))
    assert len(records) == 580
    gps = {gp.rpps: gp for gp in sample_general_practitioners()}
    two = next(gp for gp in gps.values() if len(gp.mssante_addresses) == 2)
    none = next(gp for gp in gps.values() if not gp.mssante_addresses)
    with_two, without = records[two.rpps], records[none.rpps]
    assert with_two is not None and without is not None
    assert {box["address"] for box in with_two["mailboxes"]} == set(two.mssante_addresses)
    assert {box["mailbox_type"] for box in with_two["mailboxes"]} == {"PER", "CAB"}
    assert (with_two["family_name"], with_two["city"]) == (two.family_name, two.city)
    assert without["mailboxes"] == []


def test_a_new_day_adds_changes_and_removes_practitioners_and_mailboxes(
    directory: Directory, read_practitioners: TopicReader, tmp_path: Path
) -> None:
    import_extracts(directory.store, directory.publisher, *first_day(tmp_path))
    assert directory.publisher.publish_queued() == 4

    second_day = write_day(
        tmp_path,
        "20260302",
        [
            activity(A, "MARCHAL", "Émilie"),
            activity(B, "GÉRARD-HUMBERT", "Noël"),  # name changed
            activity(D, "VAUTRIN", "Loïc"),  # C is gone
            activity(
                E,
                "THIÉBAUT",
                "Zoé",
                **{
                    "Code postal (coord. structure)": "55200",
                    "Libellé commune (coord. structure)": "Commercy",
                },
            ),
        ],
        [
            mailbox(A, "emilie.marchal@medecin.mssante.fr"),
            mailbox(B, "noel.gerard@medecin.mssante.fr"),
            mailbox(D, "loic.vautrin@medecin.mssante.fr"),  # the CAB mailbox is gone
            mailbox(E, "zoe.thiebaut@medecin.mssante.fr"),
        ],
    )
    summary = import_extracts(
        directory.store, directory.publisher, *second_day, max_removed_share=0.5
    )
    changes = summary.changes
    assert (changes.added, changes.changed, changes.removed) == (1, 2, 1)
    assert (changes.mailboxes_added, changes.mailboxes_removed) == (1, 1)
    assert changes.practitioners == 4
    assert directory.publisher.publish_queued() == 4

    records = read_practitioners(8)
    assert len(records) == 8
    assert Counter(rpps for rpps, _ in records) == {A: 1, B: 2, C: 2, D: 2, E: 1}
    now = latest(records)
    assert now[C] is None  # a tombstone
    assert present(now, B)["family_name"] == "GÉRARD-HUMBERT"
    assert [box["address"] for box in present(now, D)["mailboxes"]] == [
        "loic.vautrin@medecin.mssante.fr"
    ]
    zoe = present(now, E)
    assert (zoe["city"], zoe["postcode"]) == ("Commercy", "55200")
    # The main activity is the liberal practice, not the hospital sessions listed after it.
    assert [entry["structure_name"] for entry in state(directory) if entry["rpps"] == D] == [
        "CABINET DU DR LOÏC VAUTRIN"
    ]

    again = import_extracts(directory.store, directory.publisher, *second_day)
    assert (again.changes.added, again.changes.changed, again.changes.removed) == (0, 0, 0)
    assert directory.publisher.pending() == 0


def test_bad_rows_are_reported_with_their_line_and_skipped(
    directory_settings: Settings,
    practitioners_topic: str,
    read_practitioners: TopicReader,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    personnes, mssante = write_day(
        tmp_path,
        "20260301",
        [activity(A, "MARCHAL", "Émilie"), activity(B, "GÉRARD", "Noël")],
        [
            mailbox(A, "emilie.marchal@medecin.mssante.fr"),
            mailbox(B, "noel.gerard@medecin"),
        ],
        raw_personnes_lines={
            1: format_line(
                row(PERSONNES_COLUMNS, activity("1999", "COURT", "Numéro")),
                trailing_separator=True,
            ),
            2: "8|19990000009|tronquée\n",
        },
    )
    argv = ["--topic", practitioners_topic, "import", "--personnes", str(personnes)]
    status = main([*argv, "--mssante", str(mssante)], directory_settings)
    assert status == 0
    out = capsys.readouterr().out
    assert "bad rows skipped: 3" in out
    assert f"{personnes.name} line 3: RPPS '1999' is not 11 digits" in out
    assert f"{personnes.name} line 4: 3 fields where the header has 56" in out
    assert f"{mssante.name} line 3: the mailbox address of RPPS {B} is not one plain address" in out
    assert "2 added" in out

    records = latest(read_practitioners(2))
    assert set(records) == {A, B}
    assert present(records, B)["mailboxes"] == []


def test_an_import_that_would_empty_the_directory_is_refused_and_changes_nothing(
    directory: Directory, tmp_path: Path
) -> None:
    import_extracts(directory.store, directory.publisher, *first_day(tmp_path))
    directory.publisher.publish_queued()
    before = state(directory)
    truncated = write_day(tmp_path, "20260302", [activity(A, "MARCHAL", "Émilie")], [])
    with pytest.raises(DirectoryError, match="remove 3 of 4"):
        import_extracts(directory.store, directory.publisher, *truncated)
    assert state(directory) == before
    assert directory.publisher.pending() == 0


def test_an_import_killed_midway_leaves_the_previous_day_intact(
    directory: Directory, directory_settings: Settings, practitioners_topic: str, tmp_path: Path
) -> None:
    import_extracts(directory.store, directory.publisher, *first_day(tmp_path))
    directory.publisher.publish_queued()
    before = state(directory)

    # The new day's personnes extract arrives through a pipe that never ends, so the import is
    # surely still loading it when it is killed.
    personnes = tmp_path / "PS_LibreAcces_Personne_activite_stream.txt"
    os.mkfifo(personnes)
    _, mssante = first_day(tmp_path)

    def stream() -> None:
        try:
            with open(personnes, "w", encoding="utf-8") as pipe:
                pipe.write(format_line(PERSONNES_COLUMNS, trailing_separator=True))
                for number in range(150_000):
                    values = activity(f"1998{number:07d}", "BÉGUIN", "Hélène")
                    pipe.write(format_line(row(PERSONNES_COLUMNS, values), trailing_separator=True))
                stop.wait(60)
        except BrokenPipeError:
            pass

    stop = threading.Event()
    writer = threading.Thread(target=stream, daemon=True)
    writer.start()
    command = [sys.executable, "-m", "services.directory", "--topic", practitioners_topic]
    command += ["import", "--personnes", str(personnes), "--mssante", str(mssante)]
    importer = subprocess.Popen(
        command,
        env=stack_env(directory_settings),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert importer.stderr is not None
        for line in importer.stderr:
            if "lines read: 100,000" in line:
                break
        else:
            pytest.fail("the import never reported its progress")
        importer.send_signal(signal.SIGKILL)
        importer.wait(10)
    finally:
        importer.kill()
        stop.set()
        writer.join(10)

    assert state(directory) == before
    assert directory.publisher.pending() == 0
    # Nothing is left locked: the next day imports normally.
    summary = import_extracts(
        directory.store,
        directory.publisher,
        *write_day(tmp_path, "20260303", [activity(E, "THIÉBAUT", "Zoé")], []),
        max_removed_share=1.0,
    )
    assert (summary.changes.added, summary.changes.removed) == (1, 4)


def test_preferences_are_kept_and_carried_on_the_topic(
    directory: Directory, read_practitioners: TopicReader, tmp_path: Path
) -> None:
    import_extracts(directory.store, directory.publisher, *first_day(tmp_path))
    directory.publisher.publish_queued()

    set_preferences(
        directory.store,
        directory.publisher,
        D,
        preferred_address="Cabinet.Vautrin@medecin.mssante.fr",
    )
    set_preferences(directory.store, directory.publisher, A, opted_out=True)
    set_preferences(directory.store, directory.publisher, A, mode="DIGEST", digest_hour=7)
    with pytest.raises(DirectoryError, match="not one of the secure mailboxes"):
        set_preferences(
            directory.store, directory.publisher, A, preferred_address="emilie@gmail.com"
        )
    with pytest.raises(DirectoryError, match="no practitioner"):
        set_preferences(directory.store, directory.publisher, E, opted_out=True)
    assert directory.publisher.publish_queued() == 3

    now = latest(read_practitioners(7))
    assert present(now, D)["preferences"] == {
        "opted_out": False,
        "preferred_address": "cabinet.vautrin@medecin.mssante.fr",
        "delivery": {
            "event_kinds": ["ADMISSION", "DISCHARGE", "CORRECTION"],
            "mode": "REALTIME",
            "digest_hour": 18,
        },
    }
    # Each change keeps what it does not name: the opt-out of A holds beside its digest.
    assert present(now, A)["preferences"]["opted_out"] is True
    assert present(now, A)["preferences"]["delivery"]["mode"] == "DIGEST"
    assert present(now, A)["preferences"]["delivery"]["digest_hour"] == 7

    # The next day drops the preferred mailbox: the record no longer offers it, the opt-out
    # of A still holds.
    second_day = write_day(
        tmp_path,
        "20260302",
        [
            activity(rpps, name, given)
            for rpps, name, given in (
                (A, "MARCHAL", "Émilie"),
                (B, "GÉRARD", "Noël"),
                (C, "L'HUILLIER", "Anaïs"),
                (D, "VAUTRIN", "Loïc"),
            )
        ],
        [mailbox(D, "loic.vautrin@medecin.mssante.fr")],
    )
    import_extracts(directory.store, directory.publisher, *second_day, max_removed_share=0.0)
    directory.publisher.publish_queued()
    now = latest(read_practitioners(10))
    assert present(now, D)["preferences"]["preferred_address"] is None
    assert present(now, A)["preferences"]["opted_out"] is True
    assert present(now, A)["preferences"]["delivery"]["mode"] == "DIGEST"


def test_the_preferences_command_sets_the_choices_of_several_gps_at_once(
    directory: Directory,
    directory_settings: Settings,
    practitioners_topic: str,
    read_practitioners: TopicReader,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import_extracts(directory.store, directory.publisher, *first_day(tmp_path))
    directory.publisher.publish_queued()
    command = ["--topic", practitioners_topic, "preferences"]

    digest = ["--mode", "digest", "--digest-hour", "7", "--kinds", "admission,transfer"]
    assert main([*command, A, B, *digest], directory_settings) == 0
    assert main([*command, C, "--mode", "discharges"], directory_settings) == 0
    records = latest(read_practitioners(6))
    for rpps in (A, B):
        assert present(records, rpps)["preferences"]["delivery"] == {
            "event_kinds": ["ADMISSION", "TRANSFER"],
            "mode": "DIGEST",
            "digest_hour": 7,
        }
    assert present(records, C)["preferences"]["delivery"]["mode"] == "DISCHARGES_ONLY"
    assert present(records, D)["preferences"]["delivery"]["mode"] == "REALTIME"

    # Words the command does not know are refused before anything changes.
    with pytest.raises(SystemExit):
        main([*command, A, "--kinds", "admission,birth"], directory_settings)
    assert "unknown event kind 'birth'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*command, A, "--digest-hour", "24"], directory_settings)
    with pytest.raises(SystemExit):
        main([*command, A, B, "--preferred-address", "x@medecin.mssante.fr"], directory_settings)
    assert "give one RPPS" in capsys.readouterr().err


def test_changes_wait_in_the_outbox_while_kafka_is_unreachable(
    directory: Directory,
    directory_settings: Settings,
    read_practitioners: TopicReader,
    tmp_path: Path,
) -> None:
    cut_off = build(
        dataclasses.replace(directory_settings, kafka_bootstrap_servers="localhost:1"),
        topic=directory.publisher.topic,
        producer_overrides={"delivery.timeout.ms": 2000, "request.timeout.ms": 1000},
    )
    try:
        import_extracts(cut_off.store, cut_off.publisher, *first_day(tmp_path))
        with pytest.raises(PublishError, match="4 stay queued"):
            cut_off.publisher.publish_queued()
    finally:
        cut_off.close()
    assert directory.publisher.pending() == 4  # committed, and still to publish

    assert directory.publisher.publish_queued() == 4
    assert set(latest(read_practitioners(4))) == {A, B, C, D}
    assert directory.publisher.pending() == 0


def test_bad_rows_are_listed_in_the_summary(directory: Directory, tmp_path: Path) -> None:
    personnes, mssante = write_day(
        tmp_path,
        "20260301",
        [activity(A, "MARCHAL", "Émilie")],
        [],
        raw_personnes_lines={0: "8|x\n"},
    )
    summary = import_extracts(directory.store, directory.publisher, personnes, mssante)
    assert summary.personnes.bad_rows == [BadRow(2, "2 fields where the header has 56")]
    assert summary.changes.practitioners == 1


@pytest.mark.usefixtures("tests_environment")  # the import publishes to the test's topic
def test_make_run_on_a_stack_holding_another_directory_says_how_to_replace_it(
    directory: Directory,
    directory_settings: Settings,
    practitioners_topic: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.cli.run import RunError, load_directory_sample

    import_extracts(directory.store, directory.publisher, *first_day(tmp_path))
    directory.publisher.publish_queued()
    before = state(directory)
    monkeypatch.setenv("DATABASE_URL", directory_settings.database_url)

    with pytest.raises(RunError, match="make run REPLACE_DIRECTORY=1"):
        load_directory_sample(False, topic=practitioners_topic)
    assert state(directory) == before

    load_directory_sample(True, topic=practitioners_topic)
    assert state(directory) != before
