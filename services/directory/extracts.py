"""The two public Annuaire Santé extracts, read as published: layout, validation, streaming.

``PS_LibreAcces_Personne_activite`` has one row per activity of a health professional (so a
practitioner with two practices has two rows); ``Extraction_Correspondance_MSSante`` one row
per secure mailbox. Both are UTF-8, ``|``-separated, with one header row, no quoting, and rows
that end with a trailing ``|`` in the personnes file. Columns are found by their header name, not
their position, so the reader follows the publisher's layout changes over the years (the
personnes file has had 48, 52 and 56 columns; names changed case, accents and wording, see
``_fold`` and ``_VARIANTS``). Only the columns read are required; a file that lost one of them is
refused with an ``ExtractLayoutError`` naming it. tests/directory/layouts/ keeps every published
header found, with its source.

Everything here is pure: lines in, ``ActivityRow`` / ``MailboxRow`` / ``BadRow`` out, with the
line number of each bad row (the header is line 1).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO

from services.common.mailbox import plain_address

# The header of PS_LibreAcces_Personne_activite as published today (56 columns); the samples and
# test files are written in it.
PERSONNES_COLUMNS: tuple[str, ...] = (
    "Type d'identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Code civilité d'exercice",
    "Libellé civilité d'exercice",
    "Code civilité",
    "Libellé civilité",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Code profession",
    "Libellé profession",
    "Code catégorie professionnelle",
    "Libellé catégorie professionnelle",
    "Code type savoir-faire",
    "Libellé type savoir-faire",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Code mode exercice",
    "Libellé mode exercice",
    "Numéro SIRET site",
    "Numéro SIREN site",
    "Numéro FINESS site",
    "Numéro FINESS établissement juridique",
    "Identifiant technique de la structure",
    "Raison sociale site",
    "Enseigne commerciale site",
    "Complément destinataire (coord. structure)",
    "Complément point géographique (coord. structure)",
    "Numéro Voie (coord. structure)",
    "Indice répétition voie (coord. structure)",
    "Code type de voie (coord. structure)",
    "Libellé type de voie (coord. structure)",
    "Libellé Voie (coord. structure)",
    "Mention distribution (coord. structure)",
    "Bureau cedex (coord. structure)",
    "Code postal (coord. structure)",
    "Code commune (coord. structure)",
    "Libellé commune (coord. structure)",
    "Code pays (coord. structure)",
    "Libellé pays (coord. structure)",
    "Téléphone (coord. structure)",
    "Téléphone 2 (coord. structure)",
    "Télécopie (coord. structure)",
    "Adresse e-mail (coord. structure)",
    "Code Département (structure)",
    "Libellé Département (structure)",
    "Ancien identifiant de la structure",
    "Autorité d'enregistrement",
    "Code secteur d'activité",
    "Libellé secteur d'activité",
    "Code section tableau pharmaciens",
    "Libellé section tableau pharmaciens",
    "Code rôle",
    "Libellé rôle",
    "Code genre activité",
    "Libellé genre activité",
)

# The header of Extraction_Correspondance_MSSante (31 columns).
MSSANTE_COLUMNS: tuple[str, ...] = (
    "Type de BAL",
    "Adresse BAL",
    "Type Identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Type identifiant structure",
    "Identification Structure",
    "Service de rattachement",
    "Civilité d'exercice",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Catégorie profession",
    "Libellé de catégorie profession",
    "Code Profession",
    "Libellé Profession",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Dématérialisation",
    "Raison Sociale structure BAL",
    "Enseigne commerciale structure BAL",
    "L2COMPLEMENTLOCALISATION structure BAL",
    "L3COMPLEMENTDISTRIBUTION structure BAL",
    "L4NUMEROVOIE structure BAL",
    "L4COMPLEMENTNUMEROVOIE structure BAL",
    "NL4TYPEVOIE structure BAL",
    "L4LIBELLEVOIE structure BAL",
    "L5LIEUDITMENTION structure BAL",
    "L6LIGNEACHEMINEMENT structure BAL",
    "Code postal structure BAL",
    "Département structure BAL",
    "Pays structure BAL",
)

# "Type d'identifiant PP" of an RPPS number; 0 is the older ADELI number, out of our scope.
RPPS_IDENTIFIER_TYPE = "8"
MAILBOX_TYPES = frozenset({"PER", "ORG", "APP", "CAB"})

_RPPS = re.compile(r"^\d{11}$")


class ExtractLayoutError(ValueError):
    """The file's header lacks a column the import needs: not the extract we know."""


@dataclass(frozen=True, slots=True)
class ActivityRow:
    """One activity of one practitioner, as the personnes extract lists it."""

    line: int
    rpps: str
    civility: str | None
    family_name: str
    given_name: str
    profession_code: str | None
    profession: str | None
    specialty_code: str | None
    specialty: str | None
    practice_mode: str | None
    structure_id: str | None
    structure_name: str | None
    postcode: str | None
    city: str | None


@dataclass(frozen=True, slots=True)
class MailboxRow:
    """One secure mailbox attached to a practitioner's RPPS."""

    line: int
    rpps: str
    address: str
    mailbox_type: str
    domain: str


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that cannot be used, with why; it is reported and skipped."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class OutOfScope:
    """A well-formed row the directory does not keep (an ADELI number, a mailbox of no one)."""

    line: int


# Other spellings under which ANS has published a column the import reads (the name in the
# layouts above is today's). Case, accents, spacing and the apostrophe's form need no entry:
# ``_fold`` makes them equal. The other renamings seen (``Code département (coord. structure)``,
# ``Code fonction``, ``Code genre d'activité``...) are of columns nobody reads, so they do not
# matter. tests/directory/layouts/ keeps each published header with its source.
_VARIANTS: dict[str, tuple[str, ...]] = {
    # The mono-table extraction that preceded PS_LibreAcces.
    "Code civilité d'exercice": ("Code civilité exercice",),
    "Identifiant technique de la structure": ("Identifiant structure",),
    # The MSSanté extract as some descriptions of it spell this column, like the personnes one.
    "Type Identifiant PP": ("Type d'identifiant PP",),
}

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})


def _fold(name: str) -> str:
    """A header name reduced to what tells columns apart: "Libellé" and "Libelle", "Code
    Département" and "code département", "d\u2019exercice" and "d'exercice", doubled or
    non-breaking spaces are all one name."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_APOSTROPHES))
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def _spellings(name: str) -> tuple[str, ...]:
    return (name, *_VARIANTS.get(name, ()))


class _Layout:
    """Where the columns the import reads sit in this particular file.

    ``pick(fields)`` returns the wanted columns' stripped values in the order they were asked
    for, all at once (one ``itemgetter``: the per-row cost matters on two million rows); a
    column the file lacks reads as "".
    """

    def __init__(
        self, header: list[str], required: tuple[str, ...], optional: tuple[str, ...], file: str
    ) -> None:
        positions: dict[str, int] = {}
        for index, name in enumerate(header):
            # The first of two columns with one name wins, as a reader by position would.
            if name.strip():
                positions.setdefault(_fold(name), index)
        self.width = len(header)

        def find(name: str) -> int | None:
            for spelling in _spellings(name):
                if (index := positions.get(_fold(spelling))) is not None:
                    return index
            return None

        found = {name: find(name) for name in (*required, *optional)}
        missing = [name for name in required if found[name] is None]
        if missing:
            # Double quotes: the names themselves hold apostrophes ("Nom d'exercice").
            names = ", ".join(f'"{name}"' for name in missing)
            raise ExtractLayoutError(
                f"{file}: the header has no column {names} (under any spelling it is known "
                f"by); is this really the {file} extract?"
            )
        # A lacking optional column points one past the row, where "" is appended.
        self._getter = itemgetter(
            *(self.width if index is None else index for index in found.values())
        )

    def pick(self, fields: list[str]) -> list[str]:
        fields.append("")
        return [value.strip() for value in self._getter(fields)]


def _fields(text: str, width: int | None = None) -> list[str]:
    """Split a line. The personnes extract ends every line, header included, with a ``|``:
    that empty last field is dropped, but only when the line has one field too many, since a
    line without it may legitimately end with an empty column."""
    fields = text.rstrip("\r\n").split("|")
    if fields[-1] == "" and (width is None or len(fields) == width + 1):
        fields.pop()
    return fields


def _lines(source: BinaryIO) -> Iterator[tuple[int, str | None]]:
    """(line number, text) for each line; text is None when the line is not valid UTF-8."""
    for number, raw in enumerate(source, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, None
            continue
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield number, text


_PERSONNES_REQUIRED = (
    "Type d'identifiant PP",
    "Identifiant PP",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Code profession",
)
_PERSONNES_OPTIONAL = (
    "Code civilité d'exercice",
    "Code civilité",
    "Libellé profession",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Code mode exercice",
    "Identifiant technique de la structure",
    "Raison sociale site",
    "Enseigne commerciale site",
    "Code postal (coord. structure)",
    "Libellé commune (coord. structure)",
    "Bureau cedex (coord. structure)",
)


def _city(commune: str, cedex: str) -> str | None:
    if commune:
        return commune
    # Some rows only fill the "bureau cedex" line, "54000 NANCY": keep its town part.
    if cedex[:5].isdigit() and " " in cedex:
        return cedex.split(" ", 1)[1].strip()
    return cedex or None


def read_personnes(source: BinaryIO) -> Iterator[ActivityRow | BadRow | OutOfScope]:
    """Each data row of a personnes extract, validated, in file order."""
    records = _records(
        source, _PERSONNES_REQUIRED, _PERSONNES_OPTIONAL, "PS_LibreAcces_Personne_activite"
    )
    for record in records:
        if isinstance(record, BadRow):
            yield record
            continue
        number, values = record
        (
            identifier_type,
            rpps,
            family_name,
            given_name,
            profession_code,
            civility,
            civil_status,
            profession,
            specialty_code,
            specialty,
            practice_mode,
            structure_id,
            structure_name,
            trade_name,
            postcode,
            commune,
            cedex,
        ) = values
        if identifier_type != RPPS_IDENTIFIER_TYPE:
            yield OutOfScope(number)
            continue
        if not _RPPS.match(rpps):
            yield BadRow(number, f"RPPS {rpps!r} is not 11 digits")
            continue
        if not family_name:
            yield BadRow(number, "no family name (Nom d'exercice)")
            continue
        yield ActivityRow(
            line=number,
            rpps=rpps,
            civility=civility or civil_status or None,
            family_name=family_name,
            given_name=given_name,
            profession_code=profession_code or None,
            profession=profession or None,
            specialty_code=specialty_code or None,
            specialty=specialty or None,
            practice_mode=practice_mode or None,
            structure_id=structure_id or None,
            structure_name=structure_name or trade_name or None,
            postcode=postcode or None,
            city=_city(commune, cedex),
        )


_MSSANTE_REQUIRED = ("Type de BAL", "Adresse BAL", "Type Identifiant PP", "Identifiant PP")


def read_mssante(source: BinaryIO) -> Iterator[MailboxRow | BadRow | OutOfScope]:
    """Each mailbox of an MSSanté extract that belongs to a practitioner's RPPS, validated.

    Organisational and applicative mailboxes with no practitioner, and mailboxes of an ADELI
    number, are out of scope: the directory routes to practitioners by RPPS.
    """
    for record in _records(source, _MSSANTE_REQUIRED, (), "Extraction_Correspondance_MSSante"):
        if isinstance(record, BadRow):
            yield record
            continue
        number, (mailbox_type, address, identifier_type, rpps) = record
        if not rpps or identifier_type != RPPS_IDENTIFIER_TYPE:
            yield OutOfScope(number)
            continue
        if not _RPPS.match(rpps):
            yield BadRow(number, f"RPPS {rpps!r} is not 11 digits")
            continue
        # The address stays out of the reason: reports and logs name rows by line and RPPS.
        plain = plain_address(address.lower())
        if plain is None:
            yield BadRow(number, f"the mailbox address of RPPS {rpps} is not one plain address")
            continue
        mailbox_type = mailbox_type.upper()
        yield MailboxRow(
            line=number,
            rpps=rpps,
            address=plain,
            mailbox_type=mailbox_type if mailbox_type in MAILBOX_TYPES else "OTHER",
            domain=plain.rpartition("@")[2],
        )


def _records(
    source: BinaryIO, required: tuple[str, ...], optional: tuple[str, ...], file: str
) -> Iterator[tuple[int, list[str]] | BadRow]:
    """(line number, the wanted columns' values) for each data line with the header's number
    of fields, a ``BadRow`` for the others; blank lines are skipped."""
    lines = _lines(source)
    first = next(lines, None)
    if first is None or first[1] is None:
        raise ExtractLayoutError(f"{file}: the file is empty or its header is not UTF-8")
    layout = _Layout(_fields(first[1]), required, optional, file)
    for number, text in lines:
        if text is None:
            yield BadRow(number, "not valid UTF-8")
            continue
        if not text.strip():
            continue
        fields = _fields(text, layout.width)
        if len(fields) != layout.width:
            yield BadRow(number, f"{len(fields)} fields where the header has {layout.width}")
            continue
        yield number, layout.pick(fields)


def format_line(values: Iterable[str], *, trailing_separator: bool) -> str:
    """One extract line as the publisher writes it (used to write samples and test files)."""
    line = "|".join(values)
    return f"{line}|\n" if trailing_separator else f"{line}\n"


def open_extract(path: Path) -> BinaryIO:
    # Large buffer: the extracts are read once, front to back.
    return open(path, "rb", buffering=1 << 20)
