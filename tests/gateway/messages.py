"""PAM FR messages for the gateway's tests and benchmark, written the way engines write them.

``movement`` builds an ADT movement (MSH, EVN, PID, PV1, ZBE, ROL, OBX) with French names and
accents, encoded in the character set MSH-18 names; every part can be changed or left out to
make a broken message. ``identity`` builds A28, A31 and A40.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.gateway.hl7 import codec_for
from services.gateway.pam import expected_action

SENT_AT = "20260302081530+0100"
MOVED_AT = "20260302081000"

Practitioner = tuple[str, str, str, str]
"""Role (ROL-3), RPPS, family name, given name."""

GP: Practitioner = ("ODRP", "10101010101", "Martin", "Jeanne")


def _codec(charset: str) -> str:
    return codec_for(charset) or "utf-8"


def _msh(
    trigger: str,
    control_id: str,
    facility: str,
    charset: str,
    structure: str,
    accept_ack: str = "",
    application_ack: str = "",
    message_code: str = "ADT",
) -> str:
    return "|".join(
        [
            "MSH",
            "^~\\&",
            "SIH_GAM",
            facility,
            "HARPICOOP",
            "GHT_SUD_LORRAINE",
            SENT_AT,
            "",
            f"{message_code}^{trigger}^{structure}",
            control_id,
            "P",
            "2.5",
            "",
            "",
            accept_ack,
            application_ack,
            "FRA",
            charset,
            "",
            "",
            "2.11~IHE_FR",  # MSH-21: the PAM FR profile
        ]
    )


def _pid(
    ipp: str,
    family: str,
    given: str,
    *,
    birth_name: str | None,
    ins: str | None,
    identity_status: str,
    billing_number: str,
    birth_date: str = "19480714",
) -> str:
    ids = [f"{ipp}^^^CHRU&1.2.250.1.999.1.1&ISO^PI"]
    if ins:
        ids.append(f"{ins}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS")
    names = [f"{family}^{given}^^^^^D"]
    if birth_name:
        names.append(f"{birth_name}^{given}^^^^^L")
    fields = ["PID", "1", "", "~".join(ids), "", "~".join(names), "", birth_date, "F"]
    fields += [""] * 9 + [billing_number]  # PID-18
    fields += [""] * 13 + [identity_status]  # PID-32
    return "|".join(fields)


def _pv1(
    visit: str,
    patient_class: str,
    admission_type: str,
    admit_source: str,
    disposition: str,
    destination: str,
    admitted_at: str,
    discharged_at: str,
) -> str:
    fields = ["PV1", "1", patient_class, "CARDIO^101^1", admission_type]
    fields += [""] * 9 + [admit_source]  # PV1-14
    fields += [""] * 4 + [visit]  # PV1-19
    fields += [""] * 16 + [disposition, destination]  # PV1-36, PV1-37
    fields += [""] * 6 + [admitted_at, discharged_at]  # PV1-44, PV1-45
    return "|".join(fields)


def _rol(index: int, practitioner: Practitioner) -> str:
    role, rpps, family, given = practitioner
    person = f"{rpps}^{family}^{given}^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS"
    return "|".join(["ROL", str(index), "UC", f"{role}^^IHE_FR", person])


def _obx(loinc: str, result: str) -> str:
    return "|".join(
        [
            "OBX",
            "1",
            "CE",
            f"{loinc}^SARS-CoV-2 ARN^LN",
            "",
            f"{result}^^SCT",
            "",
            "",
            "",
            "",
            "",
            "F",
        ]
    )


def movement(
    trigger: str = "A01",
    *,
    control_id: str = "MSG00001",
    facility: str = "CHRU_NANCY",
    charset: str = "8859/1",
    action: str | None = None,
    original_trigger: str = "",
    movement_id: str = "MVT0001",
    moved_at: str = MOVED_AT,
    visit: str = "V0001",
    ipp: str = "IPP0001",
    family: str = "Lefèvre",
    given: str = "Hélène",
    birth_name: str | None = "Müller-Château",
    birth_date: str = "19480714",
    ins: str | None = None,
    identity_status: str = "PROV",
    billing_number: str = "NDA0001",
    patient_class: str = "I",
    admission_type: str = "R",
    admit_source: str = "",
    unit: str = "Cardiologie adulte^^^^^^UF^^^4012",
    disposition: str = "",
    destination: str = "",
    admitted_at: str = "",
    discharged_at: str = "",
    care_team: Sequence[Practitioner] = (GP,),
    covid: tuple[str, str] | None = None,
    accept_ack: str = "",
    application_ack: str = "",
    message_code: str = "ADT",
    segment_end: str = "\r",
    without: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> bytes:
    """One movement message; ``without`` drops segments by name, ``extra`` appends lines."""
    structure = {"A01": "ADT_A01", "A04": "ADT_A01", "A05": "ADT_A05"}.get(trigger, "ADT_A01")
    segments = [
        _msh(
            trigger,
            control_id,
            facility,
            charset,
            structure,
            accept_ack,
            application_ack,
            message_code,
        ),
        f"EVN||{SENT_AT}||||{moved_at}",
        _pid(
            ipp,
            family,
            given,
            birth_name=birth_name,
            ins=ins,
            identity_status=identity_status,
            billing_number=billing_number,
            birth_date=birth_date,
        ),
        *[_rol(index, item) for index, item in enumerate(care_team, start=1)],
        _pv1(
            visit,
            patient_class,
            admission_type,
            admit_source,
            disposition,
            destination,
            admitted_at,
            discharged_at,
        ),
        "|".join(
            [
                "ZBE",
                f"{movement_id}^SIH_GAM",
                moved_at,
                "",
                action or expected_action(trigger),
                "N",
                original_trigger,
                unit,
                "",
                "HMS",
            ]
        ),
    ]
    if covid:
        segments.append(_obx(*covid))
    segments += extra
    kept = [segment for segment in segments if segment[:3] not in without]
    text = segment_end.join(kept) + segment_end
    return text.encode(_codec(charset))


def identity(
    trigger: str,
    *,
    control_id: str = "MSG-ID-001",
    facility: str = "CHRU_NANCY",
    charset: str = "UNICODE UTF-8",
    ipp: str = "IPP0001",
    family: str = "Lefèvre",
    given: str = "Hélène",
    ins: str | None = None,
    identity_status: str = "PROV",
    merged_ipp: str | None = "IPP0999",
) -> bytes:
    """A28 (create), A31 (update) or A40 (merge, with MRG naming ``merged_ipp``)."""
    structure = "ADT_A39" if trigger == "A40" else "ADT_A05"
    segments = [
        _msh(trigger, control_id, facility, charset, structure),
        f"EVN||{SENT_AT}||||{MOVED_AT}",
        _pid(
            ipp,
            family,
            given,
            birth_name=None,
            ins=ins,
            identity_status=identity_status,
            billing_number="",
        ),
    ]
    if trigger == "A40" and merged_ipp:
        segments.append(f"MRG|{merged_ipp}^^^CHRU&1.2.250.1.999.1.1&ISO^PI||NDA0999")
    return ("\r".join(segments) + "\r").encode(_codec(charset))
