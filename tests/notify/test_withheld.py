"""Stays nothing is said of: a protection indicator, the patient's objection, a unit whose
sensitivity policy suppresses notices; and the minimal notice. Pure: no stack needed."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.records import CovidFollowup, StayEvent
from services.common.skip_reasons import OTHER, SkipReason, reason_code
from services.notify.notices import (
    Earlier,
    NoticeKind,
    Privacy,
    Sensitivity,
    decide,
    decide_followup,
    withheld_reason,
)
from services.notify.render import notice_context, render
from services.notify.sensitivity import SENSITIVITY_TOML, load_policy, read_policy
from tests.notify.builders import enriched, enriched_record, recipient, recipient_record

GP = recipient("10101010101", "jeanne.martin@medecin.mssante.fr")
PHARMACIST = recipient("10101010199", "paul.roux@pharmacien.mssante.fr", role="RP")
TYPED_GP = recipient_record("10101010101", "jeanne.martin@medecin.mssante.fr")


@pytest.mark.parametrize(
    ("privacy", "reason"),
    [
        (Privacy(), None),
        (Privacy(sensitivity=Sensitivity.MINIMAL), None),
        (Privacy(protected=True), SkipReason.PROTECTED),
        (Privacy(opposed=True), SkipReason.OPPOSED),
        (Privacy(sensitivity=Sensitivity.SUPPRESS), SkipReason.SENSITIVE_UNIT),
        # The patient's own request is the reason given, whatever the unit's policy.
        (
            Privacy(protected=True, opposed=True, sensitivity=Sensitivity.SUPPRESS),
            SkipReason.PROTECTED,
        ),
        (Privacy(opposed=True, sensitivity=Sensitivity.SUPPRESS), SkipReason.OPPOSED),
    ],
)
def test_why_a_stay_is_withheld(privacy: Privacy, reason: SkipReason | None) -> None:
    assert withheld_reason(privacy) == (reason.sentence if reason else None)


def test_a_withheld_stay_gives_every_recipient_a_skipped_notice_with_the_reason() -> None:
    reason = SkipReason.PROTECTED.sentence
    notices = decide(enriched_record("V1", [GP, PHARMACIST]), {}, withheld=reason)
    assert [(n.kind, n.skip_reason) for n in notices] == [
        (NoticeKind.ADMISSION, reason),
        (NoticeKind.ADMISSION, reason),
    ]


def test_a_withheld_stay_gets_no_retraction_or_correction_either() -> None:
    """Once the patient asked for silence, not even a retraction of what went out is sent."""
    reason = SkipReason.OPPOSED.sentence
    cancel = decide(
        enriched_record("V1", [GP], action="CANCEL"),
        {GP["rpps"]: Earlier.DELIVERED},
        withheld=reason,
    )
    update = decide(
        enriched_record("V1", [GP], action="UPDATE"),
        {GP["rpps"]: Earlier.DELIVERED},
        withheld=reason,
    )
    assert [(n.kind, n.skip_reason) for n in cancel] == [(NoticeKind.RETRACTION, reason)]
    assert [(n.kind, n.skip_reason) for n in update] == [(NoticeKind.CORRECTION, reason)]


def test_a_withheld_cancellation_still_withdraws_the_waiting_notice() -> None:
    reason = SkipReason.PROTECTED.sentence
    [notice] = decide(
        enriched_record("V1", [GP], action="CANCEL"), {GP["rpps"]: Earlier.WAITING}, withheld=reason
    )
    assert notice.withdraws_waiting and notice.skip_reason == reason


def test_a_withheld_follow_up_is_skipped() -> None:
    followup = {
        "case_id": "c1",
        "reminders_sent": 0,
        "state": "OPEN",
        "gp": GP,
        "stay_key": "chrunancy:V1",
        "establishment": "chrunancy",
        "discharge_event_id": "chrunancy:MSG-V1",
        "patient": enriched("V1", [])["event"]["patient"],
        "covid_status": "POSITIVE",
        "opened_at": dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
        "updated_at": dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
    }
    reason = SkipReason.OPPOSED.sentence
    [notice] = decide_followup(CovidFollowup.from_avro(followup), withheld=reason)
    assert notice.skip_reason == reason


def test_a_minimal_notice_names_neither_unit_nor_destination() -> None:
    event = enriched("V1", [GP], kind="DISCHARGE", disposition="7", destination="CH_TOUL")["event"]
    event["movement"]["unit_name"] = "Psychiatrie générale secteur 1"
    discharge = StayEvent.from_avro(event)
    full = render(notice_context(NoticeKind.DISCHARGE, discharge, TYPED_GP, "CH Ravenel"))
    minimal = render(
        notice_context(NoticeKind.DISCHARGE, discharge, TYPED_GP, "CH Ravenel", minimal=True)
    )
    assert "Psychiatrie" in full.text
    for content in (minimal.text, minimal.html, minimal.subject):
        assert "Psychiatrie" not in content
        assert "Service" not in content and "Destination" not in content
    assert "CH Ravenel" in minimal.subject and "sortie" in minimal.text.lower()


def test_the_policy_a_unit_gets() -> None:
    policy = read_policy(
        {
            "default": "notify",
            "establishments": {
                "cpn": {"default": "suppress", "units": {"CMP": "minimal"}},
                "ravenel": {"units": {"PSY1": "minimal"}},
            },
        }
    )
    assert policy.of("cpn", "G01") is Sensitivity.SUPPRESS
    assert policy.of("cpn", None) is Sensitivity.SUPPRESS
    assert policy.of("cpn", "CMP") is Sensitivity.MINIMAL
    assert policy.of("ravenel", "PSY1") is Sensitivity.MINIMAL
    assert policy.of("ravenel", "ADM") is Sensitivity.NOTIFY
    assert policy.of("chrunancy", "CARD") is Sensitivity.NOTIFY


def test_a_misspelt_policy_is_refused_rather_than_sending() -> None:
    with pytest.raises(ValueError, match=r"establishments\.cpn\.default"):
        read_policy({"establishments": {"cpn": {"default": "supress"}}})


def test_the_deployed_policy_decides_the_psychiatric_centre() -> None:
    """deploy/sensitivity.toml, not the code, says what the psychiatric centre's stays give."""
    policy = load_policy(SENSITIVITY_TOML)
    assert policy.of("cpn", "G01") is not Sensitivity.NOTIFY
    assert policy.of("ravenel", "PSY1") is Sensitivity.MINIMAL
    assert policy.of("chrunancy", "CARD") is Sensitivity.NOTIFY


@pytest.mark.parametrize("reason", list(SkipReason))
def test_each_skip_sentence_maps_back_to_its_code(reason: SkipReason) -> None:
    sentence = reason.sentence.format(limit=10)
    assert reason_code(sentence) == reason.value


def test_a_detail_of_no_reason_of_ours_is_other() -> None:
    assert reason_code("something else") == OTHER
    assert reason_code(None) == OTHER
