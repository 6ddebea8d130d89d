"""French given and family names for synthetic patients and hospital doctors.

Accents, apostrophes, hyphens and spaces are deliberate: they exercise the charsets (MSH-18) and
the HL7 rendering of every establishment.
"""

from __future__ import annotations

# fmt: off
FEMALE_GIVEN_NAMES: tuple[str, ...] = (
    "Adèle", "Agnès", "Amélie", "Anaïs", "Anne-Laure", "Aurélie", "Béatrice", "Bérénice",
    "Brigitte", "Camille", "Catherine", "Cécile", "Chloé", "Christiane", "Claire", "Clémence",
    "Colette", "Danièle", "Denise", "Éléonore", "Élise", "Élodie", "Emma", "Françoise",
    "Gaëlle", "Geneviève", "Germaine", "Hélène", "Inès", "Irène", "Jacqueline", "Jeanne",
    "Joëlle", "Josiane", "Juliette", "Léa", "Léonie", "Lucie", "Madeleine", "Maëlys",
    "Marie-Thérèse", "Marion", "Mégane", "Michèle", "Monique", "Nathalie", "Noémie", "Océane",
    "Odile", "Paulette", "Renée", "Simone", "Solène", "Stéphanie", "Suzanne", "Sylvie",
    "Thérèse", "Valérie", "Véronique", "Yvette", "Zoé",
)

MALE_GIVEN_NAMES: tuple[str, ...] = (
    "Adrien", "Alexandre", "André", "Antoine", "Arnaud", "Benoît", "Bernard", "Bruno",
    "Claude", "Clément", "Cédric", "Damien", "Didier", "Émile", "Éric", "Étienne", "Fabrice",
    "François", "Frédéric", "Gérard", "Gilles", "Grégoire", "Hervé", "Hugo", "Jean-Noël",
    "Jean-Pierre", "Jérôme", "Joël", "Jules", "Julien", "Léon", "Loïc", "Louis", "Lucas",
    "Maël", "Marcel", "Mathéo", "Maxime", "Michel", "Noël", "Pascal", "Patrice", "Philippe",
    "Pierre", "Raphaël", "Raymond", "Régis", "Rémi", "René", "Sébastien", "Stéphane",
    "Thierry", "Théo", "Thibaut", "Valentin", "Victor", "Yannick", "Yves",
)

FAMILY_NAMES: tuple[str, ...] = (
    "ANDRÉ", "ANTOINE", "ARNOULD", "AUBRY", "BARBIER", "BARTHÉLEMY", "BÉNARD", "BERNARD",
    "BERTRAND", "BLAISE", "BOULANGER", "BOURGEOIS", "CARRÉ", "CHÉRY", "CLAUDE", "CLÉMENT",
    "COLIN", "COLLIGNON", "CUNY", "D'ALMEIDA", "DA SILVA", "DE SAINT-ÉLOI", "DIDIER",
    "DUBOIS", "DURAND", "ÉTIENNE", "FAIVRE", "FRANÇOIS", "GAUTHIER", "GÉRARD", "GÉRARDIN",
    "GIRARD", "GRANDJEAN", "GUÉRIN", "HENRION", "HOUILLON", "HUMBERT", "HUSSON", "JACQUOT",
    "KIEFFER", "L'HUILLIER", "LAMBERT", "LAURENT", "LE GALL", "LEFÈVRE", "LÉGER",
    "LEMAÎTRE", "LÉVÊQUE", "MANGIN", "MARCHAL", "MARÉCHAL", "MARTIN", "MASSON", "MATHIS",
    "MÉNARD", "MEYER", "MICHEL", "MOREL", "MULLER", "N'DIAYE", "NICOLAS", "NOËL",
    "PERRIN", "PETITJEAN", "PIERSON", "POIRIER", "PRÉVOST", "RÉMY", "RENAUD", "RICHARD",
    "RIVIÈRE", "ROBERT", "ROUSSEL", "SCHMITT", "SCHNEIDER", "SIMON", "THIÉBAUT",
    "THIÉRY", "THOMAS", "THOMASSIN", "VAUTRIN", "VINCENT", "WEBER", "ZIMMERMANN",
)
# fmt: on
