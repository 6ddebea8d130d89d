"""Reading the Annuaire Santé extracts: columns by name, bad rows with their line number."""

from __future__ import annotations

import io

import pytest

from services.directory.extracts import (
    MSSANTE_COLUMNS,
    PERSONNES_COLUMNS,
    ActivityRow,
    BadRow,
    ExtractLayoutError,
    MailboxRow,
    OutOfScope,
    format_line,
    read_mssante,
    read_personnes,
)
from services.directory.sample import row

GP = {
    "Type d'identifiant PP": "8",
    "Identifiant PP": "19990000001",
    "Identification nationale PP": "819990000001",
    "Code civilité d'exercice": "DR",
    "Code civilité": "MME",
    "Nom d'exercice": "THIÉBAUT",
    "Prénom d'exercice": "Anaïs",
    "Code profession": "10",
    "Libellé profession": "Médecin",
    "Code savoir-faire": "SM54",
    "Libellé savoir-faire": "Médecine Générale",
    "Code mode exercice": "L",
    "Raison sociale site": "CABINET DU DR ANAÏS THIÉBAUT",
    "Code postal (coord. structure)": "54300",
    "Libellé commune (coord. structure)": "Lunéville",
}


def personnes(*lines: str, header: tuple[str, ...] = PERSONNES_COLUMNS) -> io.BytesIO:
    text = format_line(header, trailing_separator=True) + "".join(lines)
    return io.BytesIO(text.encode("utf-8"))


def personnes_line(**changes: str) -> str:
    return format_line(row(PERSONNES_COLUMNS, GP | changes), trailing_separator=True)


def mssante(*lines: str) -> io.BytesIO:
    text = format_line(MSSANTE_COLUMNS, trailing_separator=False) + "".join(lines)
    return io.BytesIO(text.encode("utf-8"))


def mssante_line(**values: str) -> str:
    defaults = {
        "Type de BAL": "PER",
        "Adresse BAL": "anais.thiebaut@medecin.mssante.fr",
        "Type Identifiant PP": "8",
        "Identifiant PP": "19990000001",
    }
    return format_line(row(MSSANTE_COLUMNS, defaults | values), trailing_separator=False)


def test_a_practitioner_is_read_with_accents_and_practice() -> None:
    [activity] = read_personnes(personnes(personnes_line()))
    assert activity == ActivityRow(
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
        structure_id=None,
        structure_name="CABINET DU DR ANAÏS THIÉBAUT",
        postcode="54300",
        city="Lunéville",
    )


def test_columns_are_found_by_name_whatever_their_order_or_a_new_trailing_column() -> None:
    header = (*reversed(PERSONNES_COLUMNS), "Une colonne ajoutée")
    values = row(header, GP)
    [activity] = read_personnes(
        personnes(format_line(values, trailing_separator=True), header=header)
    )
    assert isinstance(activity, ActivityRow)
    assert (activity.rpps, activity.city) == ("19990000001", "Lunéville")


def test_lines_without_the_trailing_separator_and_with_crlf_are_read() -> None:
    line = "|".join(row(PERSONNES_COLUMNS, GP)) + "\r\n"
    [activity] = read_personnes(personnes(line))
    assert isinstance(activity, ActivityRow)


def test_bad_rows_carry_their_line_number_and_the_reason() -> None:
    source = personnes(
        personnes_line(),
        "8|19990000002|truncated|\n",
        personnes_line(**{"Identifiant PP": "1234"}),
        personnes_line(**{"Nom d'exercice": ""}),
        personnes_line(**{"Identifiant PP": "19990000003"}),
    )
    items = list(read_personnes(source))
    bad = {item.line: item.reason for item in items if isinstance(item, BadRow)}
    assert set(bad) == {3, 4, 5}
    assert "fields" in bad[3]
    assert "11 digits" in bad[4]
    assert "family name" in bad[5]
    good = [item.line for item in items if isinstance(item, ActivityRow)]
    assert good == [2, 6]


def test_a_line_that_is_not_utf8_is_a_bad_row() -> None:
    source = io.BytesIO(
        format_line(PERSONNES_COLUMNS, trailing_separator=True).encode()
        + personnes_line().encode("utf-8")
        + personnes_line().encode("latin-1")
    )
    items = list(read_personnes(source))
    assert isinstance(items[0], ActivityRow)
    assert items[1] == BadRow(3, "not valid UTF-8")


def test_adeli_rows_are_outside_the_directory() -> None:
    [item] = read_personnes(personnes(personnes_line(**{"Type d'identifiant PP": "0"})))
    assert item == OutOfScope(2)


def test_a_file_without_the_needed_columns_is_refused() -> None:
    with pytest.raises(ExtractLayoutError, match="Identifiant PP"):
        list(read_personnes(io.BytesIO(b"Nom|Pr\xc3\xa9nom\nA|B\n")))
    with pytest.raises(ExtractLayoutError, match="empty"):
        list(read_mssante(io.BytesIO(b"")))


def test_mailboxes_are_read_lower_cased_with_their_domain_and_type() -> None:
    items = list(
        read_mssante(
            mssante(
                mssante_line(**{"Adresse BAL": "Anais.Thiebaut@Medecin.MSSante.fr"}),
                mssante_line(**{"Type de BAL": "CAB", "Adresse BAL": "cabinet@medecin.mssante.fr"}),
                mssante_line(**{"Type de BAL": "XYZ", "Adresse BAL": "autre@medecin.mssante.fr"}),
            )
        )
    )
    assert items == [
        MailboxRow(
            2, "19990000001", "anais.thiebaut@medecin.mssante.fr", "PER", "medecin.mssante.fr"
        ),
        MailboxRow(3, "19990000001", "cabinet@medecin.mssante.fr", "CAB", "medecin.mssante.fr"),
        MailboxRow(4, "19990000001", "autre@medecin.mssante.fr", "OTHER", "medecin.mssante.fr"),
    ]


def test_mailboxes_of_no_practitioner_are_out_of_scope_and_garbage_is_bad() -> None:
    items = list(
        read_mssante(
            mssante(
                mssante_line(
                    **{"Type de BAL": "ORG", "Type Identifiant PP": "", "Identifiant PP": ""}
                ),
                mssante_line(**{"Adresse BAL": "pas une adresse"}),
                mssante_line(**{"Identifiant PP": "ABC"}),
                "PER|x@y.fr\n",
            )
        )
    )
    assert items[0] == OutOfScope(2)
    assert [(item.line, type(item)) for item in items[1:]] == [
        (3, BadRow),
        (4, BadRow),
        (5, BadRow),
    ]


@pytest.mark.parametrize(
    "address",
    [
        "a,b@medecin.mssante.fr",
        "a@medecin.mssante.fr>",
        '"a b"@medecin.mssante.fr',
        "Dr Martin <a@medecin.mssante.fr>",
        "a\x00@medecin.mssante.fr",
        "a" * 65 + "@medecin.mssante.fr",
    ],
)
def test_a_mailbox_that_is_not_one_plain_address_is_a_bad_row_that_names_only_its_rpps(
    address: str,
) -> None:
    [item] = read_mssante(mssante(mssante_line(**{"Adresse BAL": address})))
    assert isinstance(item, BadRow)
    assert item.line == 2
    assert "19990000001" in item.reason
    assert address.lower() not in item.reason and "medecin" not in item.reason
