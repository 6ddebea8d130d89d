"""Messages as others published them, for the gateway's tests of PAM FR fields.

Each keeps its source (repository, path, commit). The text is the publisher's, segments joined
with ``\\r``; a test that sends one through intake names a GHT establishment in MSH-4 with
``as_establishment`` (the publishers' sending facilities are not the GHT's).
"""

from __future__ import annotations

SPEC_A31_INS_NIR = "\r".join(
    [
        # IHE PAM France 2.11.2, section 4.4.1 (INS-NIA to INS-NIR): the used name (D) carries
        # only the used given name, the birth name (L) the family name and the given names.
        # Interop-Sante/ihe.iti.pam.fr, Publication/Publication-IHE_FRANCE_PAM_National_
        # Extension_v2.11.2.pdf, commit 9f886cab0eb56105b978938eb2e57458329a1a18 (the text's
        # line breaks, made by the PDF's layout, are undone).
        "MSH|^~\\&|Gazelle|PAM_FR|PatientManager|PAM_FR|20210318151910||ADT^A31^ADT_A05|"
        "20210318151910|P|2.5^FRA^2.10||||||UNICODE UTF-8",
        "EVN||20210318151910",
        "PID|1||1900068^^^&350000121&M^PI~260058815400244^^^ASIP-SANTE-INS-NIA&1.2.250.1.213.1.4.9"
        "&ISO^INS~260058815400233^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||"
        "^MARIE-CECILE^^^^^D~DARK^JEANNE^JEANNE MARIE CECILE^^Mme^^L||19600530|F|||"
        "^^^^^FRA^BDL^^88154|||||S|||||||||1|||||N||VALI",
    ]
)

SPEC_A47_INS_DELETED = "\r".join(
    [
        # IHE PAM France 2.11.2, section 4.4.3 (deleting an INS): PID-3 holds the IPP and the
        # HL7 null "" with the INS-NIR's authority; MRG-1 the INS deleted. Same source as above.
        "MSH|^~\\&|Gazelle|PAM_FR|PatientManager|PAM_FR|20210318151910||ADT^A47^ADT_A30|"
        "20210318151910|P|2.5^FRA^2.9||||||UNICODE UTF-8",
        "EVN||20210318151910",
        'PID|1||1900068^^^&350000121&M^PI~""^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||'
        "^MARIE-CECILE^^^^^D~DARK^JEANNE^JEANNE MARIE CECILE^^Mme^^L||19600530|F|||"
        "^^^^^FRA^BDL^^88154|||||S|||||||||1|||||N||VALI",
        "MRG|260058815400233^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS",
    ]
)

ANS_A01_WITH_GP = "\r".join(
    [
        # An admission with the declared GP (ROL ODRP, RPPS), the attending and admitting doctor
        # by national id (IDNPS 8 + RPPS), and the medical and care units in ZBE-7 and ZBE-8 with
        # their names. ansforge/hl7V2-exemples, "Vague 2/Consentement_DMP_PAMFR/Consentement
        # Consultation_NonOppositionAlimentation.er7", commit
        # b43e5fcc446868072eaa9e9e794adfd8b4c96aa1 (as of 60339877cf87ab36c2428dd84311ce7fcac4c33e).
        "MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240306111154||ADT^A01^ADT_A01|3975|D|2.5^FRA^2.11|||||"
        "FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM",
        "EVN||20240306111154||||20240306110000|",
        "PID|1||000003^^^CHU-X&000897406&N^PI~279035121518989^^^ASIP-SANTE-INS-NIR"
        "&1.2.250.1.213.1.4.10&ISO^INS^^20101207||PAT-TROIS^DOMINIQUE^DOMINIQUE^^^^L||19790328|F"
        "|||28 Av de Breteuil^^PARIS^^75007^FRA^H^^^^^^^~^^^^^^BDL^^63220|||||S||"
        "24000006^^^CHU-X&000897406&M^AN|||||||1|||||N||VALI|20240306111153||||||",
        "PD1||U||||||||||N|||||||||",
        "ROL||UC|ODRP|10000023084^AGNES^Isabelle^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^L^^^RPPS"
        "|||||||144 RUE EMILE NORMANDIN^CABINET DU DR ISABELLE AGNES^La Rochelle^^17000^FRA^O"
        "^^^^^^^|^WPN^PH^^^^^^^^^0546442221",
        "PV1|1|I|^^^CHU-X&000897406&M^O^^|R|||801234567897^Réault^Pierre^^^^^^ASIP-SANTE-PS"
        "&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS|||||||||N|801234567897^Réault^Pierre^^^^^^ASIP-SANTE-PS"
        "&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS||000897406^^^CHU-X&000897406&M^VN^^20210409|||N||||||"
        "||||||||4||||||||20240306110000|||||||V|",
        "PV2|||||||CS|20240306100000|20240310080000|||Surveillance||||||AN||||N||||||||F||||||N"
        "|||||||||||||",
        "ZBE|312^CHU-X^000897406|20240306110000||INSERT|N||Chir V^^^^^CHU-X&000897406&N^UF^^^6268"
        "|Chir V^^^^^CHU-X&000897406&N^UF^^^6268|HMS",
        "ZFA|ACTIF|20240306111154|||||||INO|20240306111154|IC|20240306111154",
        "ZFM|8|||",
        "ZFD|||Y|N|INSI|20211201||",
    ]
)

# Practitioner identifiers (XCN) as IHE France's data types show them: IHE_France_Constraints_
# on_HL7_data_types_for_ITI_V1.8.2.pdf, XCN (same repository and commit as the spec above).
XCN_ADELI = "751012344^Dupont^Jean^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^ADELI"
XCN_RPPS = "01234567897^Dupont^Jean^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS"
XCN_IDNPS_ADELI = "0751012344^Dupont^Jean^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
XCN_IDNPS_RPPS = "801234567897^Dupont^Jean^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
XCN_LOCAL = "750100125/50362^Dupont^Jean^^^^^^AUT-AFFECTATION&3750100125&M^D^^^EI"
RPPS = "01234567897"


def as_establishment(message: str, facility: str = "CHRU_NANCY") -> bytes:
    """The message with MSH-4 naming a GHT establishment, encoded as its MSH-18 says (UTF-8)."""
    fields = message.split("|")
    fields[3] = facility
    return "|".join(fields).encode("utf-8")


def with_fields(raw: bytes, segment: str, values: dict[int, str], codec: str = "utf-8") -> bytes:
    """``raw`` with fields of its first ``segment`` set (``values`` by HL7 field number)."""
    lines = raw.decode(codec).split("\r")
    for index, line in enumerate(lines):
        if line.startswith(segment + "|"):
            fields = line.split("|")
            for number, value in values.items():
                fields += [""] * (number + 1 - len(fields))
                fields[number] = value
            lines[index] = "|".join(fields)
            break
    return "\r".join(lines).encode(codec)
