"""Every layout in which ANS has published the two extracts is read (tests/directory/layouts/
keeps each header line as published, with its source in SOURCES.md)."""

from __future__ import annotations

import io
import subprocess
import sys
import unicodedata
from collections.abc import Mapping
from pathlib import Path

import pytest

from services.common.settings import Settings
from services.directory.__main__ import IMPORT_REFUSED
from services.directory.bootstrap import Directory
from services.directory.extracts import (
    ActivityRow,
    BadRow,
    ExtractLayoutError,
    MailboxRow,
    OutOfScope,
    read_mssante,
    read_personnes,
)
from tests.directory.conftest import TopicReader, latest, present
from tests.support import stack_env

LAYOUTS = Path(__file__).parent / "layouts"


class Header:
    """A published header line: its column names, and whether it ends with a ``|``."""

    def __init__(self, text: str) -> None:
        self.trailing = text.endswith("|")
        self.names = text.removesuffix("|").split("|")

    @classmethod
    def published(cls, name: str) -> Header:
        return cls(LAYOUTS.joinpath(name).read_text(encoding="utf-8").rstrip("\n"))

    def line(self, values: Mapping[str, str] | None = None) -> str:
        """The header itself with no values, else a row with these values by column name."""
        fields = self.names if values is None else [values.get(n, "") for n in self.names]
        return "|".join(fields) + ("|\n" if self.trailing else "\n")

    def extract(self, *rows: Mapping[str, str]) -> io.BytesIO:
        text = self.line() + "".join(self.line(row) for row in rows)
        return io.BytesIO(text.encode("utf-8"))


GP = {
    "Type d'identifiant PP": "8",
    "Identifiant PP": "19990000001",
    "Identification nationale PP": "819990000001",
    "Code civilité d'exercice": "DR",
    "Nom d'exercice": "THIÉBAUT",
    "Prénom d'exercice": "Anaïs",
    "Code profession": "10",
    "Libellé profession": "Médecin",
    "Code savoir-faire": "SM54",
    "Libellé savoir-faire": "Médecine Générale",
    "Code mode exercice": "L",
    "Identifiant technique de la structure": "R19990000001001",
    "Raison sociale site": "CABINET DU DR ANAÏS THIÉBAUT",
    "Code postal (coord. structure)": "54300",
    "Libellé commune (coord. structure)": "Lunéville",
}
ADELI = GP | {"Type d'identifiant PP": "0", "Identifiant PP": "549999999"}

EXPECTED_GP = ActivityRow(
    line=2,
    rpps="19990000001",
    civility="DR",
    family_name="THIÉBAUT",
    given_name="Anaïs",
    profession_code="10",
    profession="Médecin",
    specialty_code="SM54",
    specialty="Médecine Générale",
    practice_mode="L",
    structure_id="R19990000001001",
    structure_name="CABINET DU DR ANAÏS THIÉBAUT",
    postcode="54300",
    city="Lunéville",
)


@pytest.mark.parametrize(
    ("layout", "width"),
    [
        ("personnes-48.header", 48),
        ("personnes-52.header", 52),
        ("personnes-56.header", 56),
        ("personnes-56-variant.header", 56),
    ],
)
def test_each_published_personnes_layout_is_read(layout: str, width: int) -> None:
    header = Header.published(layout)
    assert len(header.names) == width and header.trailing
    source = header.extract(GP, ADELI)
    source.seek(0, io.SEEK_END)
    source.write(b"8|19990000002|truncated|\n")
    source.seek(0)
    assert list(read_personnes(source)) == [
        EXPECTED_GP,
        OutOfScope(3),
        BadRow(4, f"4 fields where the header has {width}"),
    ]


MAILBOX = {
    "Type de BAL": "PER",
    "Adresse BAL": "Anais.Thiebaut@medecin.mssante.fr",
    "Type Identifiant PP": "8",
    "Identifiant PP": "19990000001",
}
SERVICE = {"Type de BAL": "ORG", "Adresse BAL": "cardiologie@chu.mssante.fr"}


@pytest.mark.parametrize("layout", ["mssante-31.header", "mssante-31-short.header"])
def test_each_published_mssante_layout_is_read(layout: str) -> None:
    header = Header.published(layout)
    assert len(header.names) == 31 and not header.trailing
    assert list(read_mssante(header.extract(MAILBOX, SERVICE))) == [
        MailboxRow(
            line=2,
            rpps="19990000001",
            address="anais.thiebaut@medecin.mssante.fr",
            mailbox_type="PER",
            domain="medecin.mssante.fr",
        ),
        OutOfScope(3),
    ]


def _respelled(name: str) -> str:
    """A column name as a careless export writes it: no accents, other case, curly apostrophe,
    doubled spaces."""
    bare = "".join(c for c in unicodedata.normalize("NFD", name) if not unicodedata.combining(c))
    return bare.upper().replace("'", "\u2019").replace(" ", "  ")


def test_names_are_matched_whatever_their_accents_case_apostrophe_spacing_and_bom() -> None:
    published = Header.published("personnes-56.header")
    respelled = Header("|".join(_respelled(name) for name in published.names))
    assert not respelled.trailing and "LIBELLE  PROFESSION" in respelled.names
    text = "\ufeff" + respelled.line() + "|".join(GP.get(n, "") for n in published.names)
    [activity] = read_personnes(io.BytesIO((text + "\r\n").encode("utf-8")))
    assert activity == EXPECTED_GP


def test_the_older_spellings_of_the_columns_read_are_known() -> None:
    header = Header.published("personnes-56.header")
    older = {
        "Code civilité d'exercice": "Code civilité exercice",
        "Identifiant technique de la structure": "Identifiant structure",
    }
    renamed = Header("|".join(older.get(name, name) for name in header.names) + "|")
    values = {older.get(name, name): value for name, value in GP.items()}
    [activity] = read_personnes(renamed.extract(values))
    assert activity == EXPECTED_GP

    mssante = Header.published("mssante-31.header")
    spelled = {"Type Identifiant PP": "Type d'identifiant PP"}
    renamed = Header("|".join(spelled.get(name, name) for name in mssante.names))
    values = {spelled.get(name, name): value for name, value in MAILBOX.items()}
    [mailbox] = read_mssante(renamed.extract(values))
    assert isinstance(mailbox, MailboxRow) and mailbox.rpps == "19990000001"


@pytest.mark.parametrize("lost", ["Identifiant PP", "Nom d'exercice", "Code profession"])
def test_a_personnes_file_without_a_column_it_needs_is_refused_naming_it(lost: str) -> None:
    header = Header.published("personnes-56.header")
    without = Header("|".join(name for name in header.names if name != lost) + "|")
    with pytest.raises(ExtractLayoutError, match=f'no column "{lost}"'):
        list(read_personnes(without.extract(GP)))


def test_an_unused_column_may_be_missing_and_an_mssante_file_without_addresses_is_refused() -> None:
    header = Header.published("personnes-56.header")
    unused = ("Libellé savoir-faire", "Bureau cedex (coord. structure)", "Code rôle")
    kept = Header("|".join(name for name in header.names if name not in unused) + "|")
    [activity] = read_personnes(kept.extract(GP))
    assert isinstance(activity, ActivityRow) and activity.specialty is None

    mssante = Header.published("mssante-31.header")
    without = Header("|".join(name for name in mssante.names if name != "Adresse BAL"))
    with pytest.raises(ExtractLayoutError, match='no column "Adresse BAL"'):
        list(read_mssante(without.extract(MAILBOX)))


@pytest.mark.integration
def test_the_import_command_takes_the_layouts_in_turn_and_refuses_a_file_missing_a_column(
    directory: Directory,
    directory_settings: Settings,
    practitioners_topic: str,
    read_practitioners: TopicReader,
    tmp_path: Path,
) -> None:
    def run_import(
        day: str, personnes: Header, mssante: Header
    ) -> subprocess.CompletedProcess[str]:
        personnes_file = tmp_path / f"PS_LibreAcces_Personne_activite_{day}.txt"
        personnes_file.write_bytes(personnes.extract(GP, ADELI).getvalue())
        mssante_file = tmp_path / f"Extraction_Correspondance_MSSante_{day}.txt"
        mssante_file.write_bytes(mssante.extract(MAILBOX, SERVICE).getvalue())
        command = [sys.executable, "-m", "services.directory", "--topic", practitioners_topic]
        command += ["import", "--personnes", str(personnes_file), "--mssante", str(mssante_file)]
        env = stack_env(directory_settings)
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    older = run_import(
        "202112010000",
        Header.published("personnes-52.header"),
        Header.published("mssante-31.header"),
    )
    assert older.returncode == 0, older.stderr
    assert "practitioners: 1 added" in older.stdout
    gp = present(latest(read_practitioners(1)), GP["Identifiant PP"])
    assert (gp["family_name"], gp["city"]) == ("THIÉBAUT", "Lunéville")
    assert [box["address"] for box in gp["mailboxes"]] == [MAILBOX["Adresse BAL"].lower()]
    before = list(directory.store.practitioner_states())

    # The same people in another layout are the same directory: nothing to change.
    variant = run_import(
        "202609230000",
        Header.published("personnes-56-variant.header"),
        Header.published("mssante-31-short.header"),
    )
    assert variant.returncode == 0, variant.stderr
    assert "practitioners: 0 added, 0 changed, 0 removed" in variant.stdout

    published = Header.published("personnes-56.header")
    lost = Header("|".join(name for name in published.names if name != "Nom d'exercice") + "|")
    refused = run_import("202612060000", lost, Header.published("mssante-31.header"))
    assert refused.returncode == IMPORT_REFUSED
    assert 'no column "Nom d\'exercice"' in refused.stderr
    assert list(directory.store.practitioner_states()) == before
    assert directory.publisher.pending() == 0
