"""The synthetic Annuaire Santé sample shipped with the project, and the generator behind it.

Invented people only: names are drawn from common French first and family names, every RPPS
starts with ``1999`` (no real RPPS does), phone numbers are in ARCEP's range reserved for fiction
(03 53 01 xx xx), practices are in Meurthe-et-Moselle, Meuse, Moselle and the Vosges, around the
GHT Sud Lorraine's establishments. The files have the real column layout (see ``extracts``), one
row per activity, a few rows repeated, and most general practitioners have one personal (PER)
secure mailbox, some a practice (CAB) one as well, some none.

    python -m services.directory.sample            # rewrite deploy/directory/*.sample.txt

The same generator streams a million-row extract for the benchmark. It is deterministic: the
same seed gives the same files, byte for byte.

``sample_general_practitioners()`` lists the sample's GPs for the simulator;
``practice_backed_gps()`` those with a personal mailbox and a practice (CAB) one behind it, of
whom ``make run`` makes a couple's personal address bounce (``services.simulator.bounces``).
"""

from __future__ import annotations

import argparse
import random
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.common.establishments import load_establishments
from services.common.paths import DEPLOY_DIR
from services.directory.extracts import (
    MSSANTE_COLUMNS,
    PERSONNES_COLUMNS,
    ActivityRow,
    MailboxRow,
    format_line,
    open_extract,
    read_mssante,
    read_personnes,
)

SAMPLE_DIR = DEPLOY_DIR / "directory"
SAMPLE_PERSONNES = SAMPLE_DIR / "PS_LibreAcces_Personne_activite.sample.txt"
SAMPLE_MSSANTE = SAMPLE_DIR / "Extraction_Correspondance_MSSante.sample.txt"
SAMPLE_SEED = 54_000

GENERAL_PRACTICE = ("SM54", "Médecine Générale")

_MALE_NAMES = (
    "Étienne", "Jérôme", "François", "Noël", "Loïc", "Benoît", "Frédéric", "Sébastien",
    "Aurélien", "Grégoire", "Rémi", "Cédric", "Hervé", "Jean-Noël", "Thierry", "Mathieu",
    "Julien", "Nicolas", "Pierre", "Olivier", "Bertrand", "Gaël", "Hugo", "Luc", "Maxime",
    "Romain", "Thibaut", "Vincent", "Yannick", "Jean-Rémy", "Joël", "Stéphane",
)  # fmt: skip
_FEMALE_NAMES = (
    "Émilie", "Hélène", "Cécile", "Anaïs", "Gaëlle", "Maëlle", "Agnès", "Inès", "Clémence",
    "Valérie", "Zoé", "Léa", "Chloé", "Mélanie", "Sophie", "Nathalie", "Isabelle", "Camille",
    "Pauline", "Aurélie", "Géraldine", "Séverine", "Françoise", "Bénédicte", "Joëlle",
    "Marie-Hélène", "Anne-Sophie", "Élodie", "Laëtitia", "Noémie", "Thérèse", "Solène",
)  # fmt: skip
_FAMILY_NAMES = (
    "MARCHAL", "COLIN", "HUMBERT", "DIDIER", "GÉRARD", "VAUTRIN", "PERRIN", "GRANDJEAN",
    "JACQUOT", "MANGIN", "LÉONARD", "BÉGUIN", "FRÉMONT", "THIÉBAUT", "CHRÉTIEN", "MÉTIVIER",
    "DEMANGE", "GEORGES", "HENRION", "PIERSON", "CLAUDEL", "MASSON", "ANCEL", "BAILLY",
    "COLLIGNON", "DUVAL", "ÉTIENNE", "FERRY", "GAILLOT", "GUÉNOT", "HACQUARD", "JEANDEL",
    "KIEFFER", "LALLEMAND", "MICHEL", "NOËL", "PARISOT", "RÉMY", "SIMONIN", "THOUVENIN",
    "VUILLAUME", "WEBER", "ZIMMERMANN", "L'HUILLIER", "MOUGENOT", "BRÉMONT", "DELÉTANG",
    "VALENTIN", "BOURGUIGNON", "GRÉGOIRE", "LECLÈRE", "SAINT-DIZIER", "HOUOT", "ROUYER",
    "FRANÇOIS", "BRIOT", "CUNY", "DAUPHIN", "ÉVRARD", "FLORENTIN", "GODARD", "HÉNIN",
)  # fmt: skip

# (postcode, INSEE code, commune, département code, département, weight): weighted towards the
# towns of the GHT's establishments.
_PLACES = (
    ("54000", "54395", "Nancy", "54", "Meurthe-et-Moselle", 14),
    ("54500", "54547", "Vandœuvre-lès-Nancy", "54", "Meurthe-et-Moselle", 5),
    ("54600", "54578", "Villers-lès-Nancy", "54", "Meurthe-et-Moselle", 3),
    ("54520", "54304", "Laxou", "54", "Meurthe-et-Moselle", 3),
    ("54320", "54357", "Maxéville", "54", "Meurthe-et-Moselle", 2),
    ("54220", "54339", "Malzéville", "54", "Meurthe-et-Moselle", 2),
    ("54270", "54184", "Essey-lès-Nancy", "54", "Meurthe-et-Moselle", 2),
    ("54140", "54274", "Jarville-la-Malgrange", "54", "Meurthe-et-Moselle", 2),
    ("54130", "54482", "Saint-Max", "54", "Meurthe-et-Moselle", 2),
    ("54510", "54526", "Tomblaine", "54", "Meurthe-et-Moselle", 2),
    ("54300", "54329", "Lunéville", "54", "Meurthe-et-Moselle", 6),
    ("54200", "54528", "Toul", "54", "Meurthe-et-Moselle", 5),
    ("54700", "54431", "Pont-à-Mousson", "54", "Meurthe-et-Moselle", 5),
    ("54210", "54483", "Saint-Nicolas-de-Port", "54", "Meurthe-et-Moselle", 3),
    ("54110", "54159", "Dombasle-sur-Meurthe", "54", "Meurthe-et-Moselle", 2),
    ("54340", "54430", "Pompey", "54", "Meurthe-et-Moselle", 2),
    ("54390", "54215", "Frouard", "54", "Meurthe-et-Moselle", 2),
    ("54230", "54397", "Neuves-Maisons", "54", "Meurthe-et-Moselle", 2),
    ("54710", "54328", "Ludres", "54", "Meurthe-et-Moselle", 2),
    ("54120", "54039", "Baccarat", "54", "Meurthe-et-Moselle", 2),
    ("54480", "54129", "Cirey-sur-Vezouze", "54", "Meurthe-et-Moselle", 2),
    ("55200", "55122", "Commercy", "55", "Meuse", 4),
    ("55000", "55029", "Bar-le-Duc", "55", "Meuse", 2),
    ("55300", "55463", "Saint-Mihiel", "55", "Meuse", 2),
    ("57260", "57177", "Dieuze", "57", "Moselle", 4),
    ("57170", "57132", "Château-Salins", "57", "Moselle", 2),
    ("57400", "57630", "Sarrebourg", "57", "Moselle", 2),
    ("88500", "88304", "Mirecourt", "88", "Vosges", 4),
    ("88130", "88090", "Charmes", "88", "Vosges", 2),
    ("88800", "88516", "Vittel", "88", "Vosges", 2),
    ("88000", "88160", "Épinal", "88", "Vosges", 2),
)
_STREETS = (
    ("R", "Rue", "DE LA RÉPUBLIQUE"), ("AV", "Avenue", "DU GÉNÉRAL LECLERC"),
    ("R", "Rue", "SAINT-DIZIER"), ("PL", "Place", "DE LA CATHÉDRALE"),
    ("BD", "Boulevard", "JEAN JAURÈS"), ("R", "Rue", "DES JARDINIERS"), ("R", "Rue", "DU MOULIN"),
    ("ALL", "Allée", "DES TILLEULS"), ("R", "Rue", "PASTEUR"), ("R", "Rue", "VICTOR HUGO"),
    ("CHE", "Chemin", "DES VIGNES"), ("R", "Rue", "DE L'ÉGLISE"), ("R", "Rue", "DES FRÈRES"),
    ("AV", "Avenue", "DE LA LIBÉRATION"), ("R", "Rue", "GAMBETTA"), ("R", "Rue", "DU CHÂTEAU"),
)  # fmt: skip
# (code, label, mailbox domain, registration authority)
_PROFESSIONS = {
    "doctor": ("10", "Médecin", "medecin.mssante.fr", "CNOM/CNOM/CNOM"),
    "pharmacist": ("21", "Pharmacien", "pharmacien.mssante.fr", "CNOP/CNOP/CNOP"),
    "nurse": ("60", "Infirmier", "infirmier.mssante.fr", "ONI/ONI/ONI"),
}
_SPECIALISTS = (("SM04", "Cardiologie et maladies vasculaires"),)
# The establishments' own MSSanté domain, for hospital practitioners: invented, like the rest.
_HOSPITAL_DOMAIN = "ght-sud-lorraine.mssante.fr"


@dataclass(frozen=True)
class Activity:
    """One practice of a synthetic practitioner: one row of the personnes extract."""

    salaried: bool
    structure_id: str
    structure_name: str
    group_practice: bool
    street_number: str
    street: tuple[str, str, str]
    place: tuple[str, str, str, str, str, int]
    phone: str


@dataclass(frozen=True)
class Person:
    """A synthetic practitioner, with their activities and secure mailboxes."""

    rpps: str
    kind: str
    female: bool
    family_name: str
    given_name: str
    specialty: tuple[str, str] | None
    activities: tuple[Activity, ...]
    mailboxes: tuple[tuple[str, str], ...] = field(default=())


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.replace("œ", "oe").replace("Œ", "OE"))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _slug(text: str) -> str:
    return _ascii(text).lower().replace("'", "").replace(" ", "-")


class _Generator:
    """Draws practitioners from one seeded random stream, so the output never varies."""

    def __init__(self, seed: int, first_rpps: int = 0, rpps_gap: int = 40) -> None:
        self.rng = random.Random(seed)
        self.next_number = first_rpps
        self.rpps_gap = rpps_gap
        self.namesakes: Counter[tuple[str, str]] = Counter()
        self.place_weights = [place[5] for place in _PLACES]
        places = {place[2]: place for place in _PLACES}
        self.hospitals = [
            (establishment.name, places[establishment.city])
            for establishment in sorted(load_establishments(), key=lambda item: item.code)
            if establishment.city in places
        ]

    def rpps(self) -> str:
        self.next_number += self.rng.randint(1, self.rpps_gap)
        if self.next_number >= 10_000_000:
            raise ValueError("synthetic RPPS numbers exhausted: use a smaller rpps_gap")
        return f"1999{self.next_number:07d}"

    def address(self, local: str, domain: str) -> str:
        # Namesakes get a number: marie.colin@, marie.colin2@... (locals never end in a digit).
        self.namesakes[local, domain] += 1
        count = self.namesakes[local, domain]
        return f"{local}{count if count > 1 else ''}@{domain}"

    def activity(self, rpps: str, structure_name: str, index: int, *, may_group: bool) -> Activity:
        place = self.rng.choices(_PLACES, weights=self.place_weights)[0]
        group = may_group and self.rng.random() < 0.35
        if group:
            structure_name = f"MAISON DE SANTÉ {place[2].upper()}"
        return self._activity(rpps, structure_name, place, index, salaried=False, group=group)

    def hospital_activity(self, rpps: str, index: int) -> Activity:
        name, place = self.rng.choice(self.hospitals)
        return self._activity(rpps, name.upper(), place, index, salaried=True, group=False)

    def _activity(
        self,
        rpps: str,
        structure_name: str,
        place: tuple[str, str, str, str, str, int],
        index: int,
        *,
        salaried: bool,
        group: bool,
    ) -> Activity:
        rng = self.rng
        return Activity(
            salaried=salaried,
            structure_id=f"R{rpps}{index:03d}",
            structure_name=structure_name,
            group_practice=group,
            street_number=str(rng.randint(1, 120)),
            street=rng.choice(_STREETS),
            place=place,
            phone=f"035301{rng.randint(0, 9999):04d}",
        )

    def person(self, kind: str) -> Person:
        rng = self.rng
        rpps = self.rpps()
        female = rng.random() < 0.55
        given = rng.choice(_FEMALE_NAMES if female else _MALE_NAMES)
        family = rng.choice(_FAMILY_NAMES)
        specialty: tuple[str, str] | None = None
        if kind == "gp":
            specialty = GENERAL_PRACTICE
        elif kind == "specialist":
            specialty = rng.choice(_SPECIALISTS)
        own = {
            "gp": f"CABINET DU DR {given.upper()} {family}",
            "specialist": f"CABINET DU DR {given.upper()} {family}",
            "pharmacist": f"PHARMACIE {family}",
            "nurse": f"CABINET INFIRMIER {family}",
        }[kind]
        salaried_only = kind == "specialist" and rng.random() < 0.6
        activities = [
            self.hospital_activity(rpps, 1)
            if salaried_only
            else self.activity(rpps, own, 1, may_group=kind != "pharmacist")
        ]
        if kind in ("gp", "specialist") and rng.random() < 0.15:
            # A second activity: a few sessions at one of the GHT's hospitals, or a second
            # practice.
            activities.append(
                self.hospital_activity(rpps, 2)
                if rng.random() < 0.5
                else self.activity(rpps, own, 2, may_group=True)
            )
        domain = _PROFESSIONS["doctor" if kind in ("gp", "specialist") else kind][2]
        local = f"{_slug(given)}.{_slug(family)}"
        mailboxes: list[tuple[str, str]] = []
        draw = rng.random()
        if kind == "gp":
            if draw < 0.86:
                mailboxes.append(("PER", self.address(local, domain)))
            if 0.76 <= draw < 0.86:
                mailboxes.append(("CAB", self.address(f"cabinet.{_slug(family)}", domain)))
            if 0.86 <= draw < 0.90:
                # Only an establishment's address, from their hospital sessions.
                mailboxes.append(("PER", self.address(local, _HOSPITAL_DOMAIN)))
        elif draw < 0.7:
            mailboxes.append(
                ("PER", self.address(local, _HOSPITAL_DOMAIN if salaried_only else domain))
            )
        return Person(
            rpps=rpps,
            kind=kind,
            female=female,
            family_name=family,
            given_name=given,
            specialty=specialty,
            activities=tuple(activities),
            mailboxes=tuple(mailboxes),
        )


def synthetic_people(
    seed: int,
    *,
    general_practitioners: int,
    pharmacists: int = 0,
    nurses: int = 0,
    specialists: int = 0,
    first_rpps: int = 0,
    rpps_gap: int = 40,
) -> Iterator[Person]:
    """Practitioners in RPPS order, drawn lazily (a million rows never sit in memory); RPPS
    numbers grow from ``first_rpps`` by random steps of at most ``rpps_gap``."""
    generator = _Generator(seed, first_rpps, rpps_gap)
    kinds = (
        ["gp"] * general_practitioners
        + ["pharmacist"] * pharmacists
        + ["nurse"] * nurses
        + ["specialist"] * specialists
    )
    random.Random(seed + 1).shuffle(kinds)
    for kind in kinds:
        yield generator.person(kind)


def row(columns: tuple[str, ...], values: Mapping[str, str]) -> list[str]:
    """A row of an extract from its values by column name; other columns are empty."""
    unknown = set(values) - set(columns)
    if unknown:
        raise KeyError(f"no column {sorted(unknown)}")
    return [values.get(name, "") for name in columns]


def personnes_rows(person: Person) -> list[list[str]]:
    """The person's rows in the personnes extract: one per activity."""
    code, label, _, authority = _PROFESSIONS[
        "doctor" if person.kind in ("gp", "specialist") else person.kind
    ]
    doctor = code == "10"
    rows = []
    for activity in person.activities:
        postcode, insee, city, department, department_label, _ = activity.place
        street_type, street_label, street = activity.street
        values = {
            "Type d'identifiant PP": "8",
            "Identifiant PP": person.rpps,
            "Identification nationale PP": f"8{person.rpps}",
            "Code civilité d'exercice": "DR" if doctor else "",
            "Libellé civilité d'exercice": "Docteur" if doctor else "",
            "Code civilité": "MME" if person.female else "M",
            "Libellé civilité": "Madame" if person.female else "Monsieur",
            "Nom d'exercice": person.family_name,
            "Prénom d'exercice": person.given_name,
            "Code profession": code,
            "Libellé profession": label,
            "Code catégorie professionnelle": "C",
            "Libellé catégorie professionnelle": "Civil",
            "Code mode exercice": "S" if activity.salaried else "L",
            "Libellé mode exercice": "Salarié" if activity.salaried else "Libéral",
            "Identifiant technique de la structure": activity.structure_id,
            "Raison sociale site": activity.structure_name,
            "Complément destinataire (coord. structure)": activity.structure_name,
            "Numéro Voie (coord. structure)": activity.street_number,
            "Code type de voie (coord. structure)": street_type,
            "Libellé type de voie (coord. structure)": street_label,
            "Libellé Voie (coord. structure)": street,
            "Bureau cedex (coord. structure)": f"{postcode} {_ascii(city).upper()}",
            "Code postal (coord. structure)": postcode,
            "Code commune (coord. structure)": insee,
            "Libellé commune (coord. structure)": city,
            "Code pays (coord. structure)": "99100",
            "Libellé pays (coord. structure)": "France",
            "Téléphone (coord. structure)": activity.phone,
            "Code Département (structure)": department,
            "Libellé Département (structure)": department_label,
            "Autorité d'enregistrement": authority,
            "Code genre activité": "GENR01",
            "Libellé genre activité": "Activité standard de soin ou de pharmacien",
        }
        if person.specialty:
            values |= {
                "Code type savoir-faire": "S",
                "Libellé type savoir-faire": "Spécialité ordinale",
                "Code savoir-faire": person.specialty[0],
                "Libellé savoir-faire": person.specialty[1],
            }
        if activity.salaried:
            values |= {"Code secteur d'activité": "SA01"}
            values |= {"Libellé secteur d'activité": "Etablissement public de santé"}
        elif doctor:
            values |= {
                "Code secteur d'activité": "SA08" if activity.group_practice else "SA07",
                "Libellé secteur d'activité": "Cabinet de groupe"
                if activity.group_practice
                else "Cabinet individuel",
            }
        if person.kind == "pharmacist":
            values |= {
                "Code section tableau pharmaciens": "A",
                "Libellé section tableau pharmaciens": "Pharmacien titulaire d'officine",
            }
        rows.append(row(PERSONNES_COLUMNS, values))
    return rows


def mssante_rows(person: Person) -> list[list[str]]:
    """The person's rows in the MSSanté extract: one per mailbox."""
    code, label, _, _ = _PROFESSIONS[
        "doctor" if person.kind in ("gp", "specialist") else person.kind
    ]
    activity = person.activities[0]
    postcode, _, city, department, _, _ = activity.place
    street_type, _, street = activity.street
    rows = []
    for mailbox_type, address in person.mailboxes:
        values = {
            "Type de BAL": mailbox_type,
            "Adresse BAL": address,
            "Type Identifiant PP": "8",
            "Identifiant PP": person.rpps,
            "Identification nationale PP": f"8{person.rpps}",
            "Civilité d'exercice": "DR" if code == "10" else "",
            "Nom d'exercice": person.family_name,
            "Prénom d'exercice": person.given_name,
            "Catégorie profession": "C",
            "Libellé de catégorie profession": "Civil",
            "Code Profession": code,
            "Libellé Profession": label,
            "Code savoir-faire": person.specialty[0] if person.specialty else "",
            "Libellé savoir-faire": person.specialty[1] if person.specialty else "",
            "Raison Sociale structure BAL": activity.structure_name,
            "L4NUMEROVOIE structure BAL": activity.street_number,
            "NL4TYPEVOIE structure BAL": street_type,
            "L4LIBELLEVOIE structure BAL": street,
            "L6LIGNEACHEMINEMENT structure BAL": f"{postcode} {_ascii(city).upper()}",
            "Code postal structure BAL": postcode,
            "Département structure BAL": department,
            "Pays structure BAL": "99100",
        }
        rows.append(row(MSSANTE_COLUMNS, values))
    return rows


@dataclass
class WrittenExtracts:
    personnes: Path
    mssante: Path
    personnes_rows: int = 0
    mssante_rows: int = 0
    practitioners: int = 0


def write_extracts(
    people: Iterable[Person],
    personnes: Path,
    mssante: Path,
    *,
    seed: int = SAMPLE_SEED,
    repeat_share: float = 0.03,
) -> WrittenExtracts:
    """Stream people into the two extracts; ``repeat_share`` of rows are written twice."""
    rng = random.Random(seed + 2)
    written = WrittenExtracts(personnes, mssante)
    with (
        open(personnes, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as activities,
        open(mssante, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as mailboxes,
    ):
        activities.write(format_line(PERSONNES_COLUMNS, trailing_separator=True))
        mailboxes.write(format_line(MSSANTE_COLUMNS, trailing_separator=False))
        for person in people:
            written.practitioners += 1
            for values in personnes_rows(person):
                times = 2 if rng.random() < repeat_share else 1
                activities.write(format_line(values, trailing_separator=True) * times)
                written.personnes_rows += times
            for values in mssante_rows(person):
                times = 2 if rng.random() < repeat_share else 1
                mailboxes.write(format_line(values, trailing_separator=False) * times)
                written.mssante_rows += times
    return written


def write_sample(folder: Path = SAMPLE_DIR) -> WrittenExtracts:
    people = synthetic_people(
        SAMPLE_SEED, general_practitioners=400, pharmacists=60, nurses=80, specialists=40
    )
    return write_extracts(
        people,
        folder / SAMPLE_PERSONNES.name,
        folder / SAMPLE_MSSANTE.name,
        seed=SAMPLE_SEED,
    )


@dataclass(frozen=True)
class SamplePractitioner:
    """A practitioner of the shipped sample, as the simulator needs them for ROL segments."""

    rpps: str
    civility: str | None
    family_name: str
    given_name: str
    profession_code: str | None
    specialty_code: str | None
    postcode: str | None
    city: str | None
    mssante_addresses: tuple[str, ...]

    @property
    def is_general_practitioner(self) -> bool:
        return self.profession_code == "10" and self.specialty_code == GENERAL_PRACTICE[0]


def sample_practitioners(
    personnes: Path = SAMPLE_PERSONNES, mssante: Path = SAMPLE_MSSANTE
) -> list[SamplePractitioner]:
    """Every practitioner of the sample, in RPPS order, at their first-listed activity."""
    first: dict[str, ActivityRow] = {}
    with open_extract(personnes) as source:
        for item in read_personnes(source):
            if isinstance(item, ActivityRow):
                first.setdefault(item.rpps, item)
    addresses: dict[str, list[str]] = {}
    with open_extract(mssante) as source:
        for mailbox in read_mssante(source):
            if isinstance(mailbox, MailboxRow):
                known = addresses.setdefault(mailbox.rpps, [])
                if mailbox.address not in known:
                    known.append(mailbox.address)
    return [
        SamplePractitioner(
            rpps=activity.rpps,
            civility=activity.civility,
            family_name=activity.family_name,
            given_name=activity.given_name,
            profession_code=activity.profession_code,
            specialty_code=activity.specialty_code,
            postcode=activity.postcode,
            city=activity.city,
            mssante_addresses=tuple(addresses.get(activity.rpps, ())),
        )
        for activity in sorted(first.values(), key=lambda item: item.rpps)
    ]


def sample_general_practitioners(
    personnes: Path = SAMPLE_PERSONNES, mssante: Path = SAMPLE_MSSANTE
) -> list[SamplePractitioner]:
    """The sample's general practitioners (profession 10, SM54), in RPPS order."""
    return [
        practitioner
        for practitioner in sample_practitioners(personnes, mssante)
        if practitioner.is_general_practitioner
    ]


@dataclass(frozen=True)
class PracticeBackedGp:
    """A sample GP with a personal mailbox and their practice's behind it."""

    rpps: str
    personal: str
    practice: str


def practice_backed_gps(
    personnes: Path = SAMPLE_PERSONNES, mssante: Path = SAMPLE_MSSANTE
) -> list[PracticeBackedGp]:
    """The sample's GPs with both a PER and a CAB mailbox, in RPPS order."""
    gps = {item.rpps for item in sample_general_practitioners(personnes, mssante)}
    mailboxes: dict[str, dict[str, str]] = {}
    with open_extract(mssante) as source:
        for mailbox in read_mssante(source):
            if isinstance(mailbox, MailboxRow) and mailbox.rpps in gps:
                mailboxes.setdefault(mailbox.rpps, {}).setdefault(
                    mailbox.mailbox_type, mailbox.address
                )
    return [
        PracticeBackedGp(rpps, types["PER"], types["CAB"])
        for rpps, types in sorted(mailboxes.items())
        if "PER" in types and "CAB" in types
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="Rewrite the synthetic Annuaire Santé sample.")
    parser.add_argument("--folder", type=Path, default=SAMPLE_DIR)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    written = write_sample(args.folder)
    print(
        f"{written.practitioners} practitioners: {written.personnes_rows} rows in "
        f"{written.personnes}, {written.mssante_rows} in {written.mssante}"
    )


if __name__ == "__main__":
    main()
