"""What a GP's own choices do to their notices: kinds, real time, digest, discharges only."""

from __future__ import annotations

import pytest

from services.common.preferences import (
    DeliveryChoices,
    EventChoice,
    Mode,
    choices_of,
    parse_kinds,
)
from services.notify.notices import Earlier, NoticeKind, decide
from tests.notify.builders import EVERY_KIND, enriched_record, recipient

ADDRESS = "jeanne.martin@medecin.mssante.fr"
DIGEST = DeliveryChoices(kinds=frozenset(EventChoice), mode=Mode.DIGEST, digest_hour=18)
DISCHARGES = DeliveryChoices(kinds=frozenset(EventChoice), mode=Mode.DISCHARGES_ONLY)


def outcome(
    choices: DeliveryChoices | None,
    kind: str,
    *,
    action: str = "INSERT",
    admission_mode: str = "SCHEDULED",
    before: Earlier = Earlier.NONE,
) -> tuple[NoticeKind, str | None, bool]:
    gp = recipient("10101010101", ADDRESS, choices=choices)
    [notice] = decide(
        enriched_record("V1", [gp], kind=kind, action=action, admission_mode=admission_mode),
        {"10101010101": before},
    )
    return notice.kind, notice.skip_reason, notice.deferred


def test_by_default_a_gp_is_told_of_admissions_and_discharges_but_not_transfers() -> None:
    assert outcome(None, "ADMISSION") == (NoticeKind.ADMISSION, None, False)
    assert outcome(None, "DISCHARGE") == (NoticeKind.DISCHARGE, None, False)
    assert outcome(None, "TRANSFER") == (
        NoticeKind.TRANSFER,
        "the practitioner does not ask to be told of transfers",
        False,
    )
    assert outcome(EVERY_KIND, "TRANSFER") == (NoticeKind.TRANSFER, None, False)


def test_a_record_written_before_choices_existed_means_the_defaults() -> None:
    assert choices_of(None) == DeliveryChoices()
    assert choices_of({"mode": "DIGEST"}) == DeliveryChoices(mode=Mode.DIGEST)
    assert EventChoice.TRANSFER not in DeliveryChoices().kinds


def test_corrections_and_retractions_follow_the_correction_choice() -> None:
    no_corrections = DeliveryChoices(kinds=frozenset({EventChoice.ADMISSION}))
    assert outcome(no_corrections, "ADMISSION", action="CANCEL", before=Earlier.DELIVERED) == (
        NoticeKind.RETRACTION,
        "the practitioner does not ask to be told of corrections and retractions",
        False,
    )
    assert outcome(None, "ADMISSION", action="CANCEL", before=Earlier.DELIVERED) == (
        NoticeKind.RETRACTION,
        None,
        False,
    )


@pytest.mark.parametrize(
    ("kind", "admission_mode"),
    [("ADMISSION", "SCHEDULED"), ("CHANGE_TO_INPATIENT", "UNKNOWN"), ("TRANSFER", "EMERGENCY")],
)
def test_a_digest_holds_back_what_is_not_urgent(kind: str, admission_mode: str) -> None:
    _, skipped, deferred = outcome(DIGEST, kind, admission_mode=admission_mode)
    assert (skipped, deferred) == (None, True)


@pytest.mark.parametrize(
    ("kind", "admission_mode"),
    [("DISCHARGE", "SCHEDULED"), ("ADMISSION", "EMERGENCY"), ("CHANGE_TO_INPATIENT", "EMERGENCY")],
)
@pytest.mark.parametrize("choices", [DIGEST, DISCHARGES], ids=["digest", "discharges-only"])
def test_discharges_and_emergency_admissions_go_at_once_whatever_the_mode(
    kind: str, admission_mode: str, choices: DeliveryChoices
) -> None:
    _, skipped, deferred = outcome(choices, kind, admission_mode=admission_mode)
    assert (skipped, deferred) == (None, False)


def test_a_retraction_of_a_discharge_goes_at_once_like_the_discharge() -> None:
    assert outcome(DIGEST, "DISCHARGE", action="CANCEL", before=Earlier.DELIVERED) == (
        NoticeKind.RETRACTION,
        None,
        False,
    )


def test_a_retraction_of_a_digest_line_already_sent_goes_in_the_next_digest() -> None:
    assert outcome(DIGEST, "ADMISSION", action="CANCEL", before=Earlier.DELIVERED) == (
        NoticeKind.RETRACTION,
        None,
        True,
    )


def test_a_cancellation_of_a_line_still_waiting_withdraws_it() -> None:
    gp = recipient("10101010101", ADDRESS, choices=DIGEST)
    [notice] = decide(
        enriched_record("V1", [gp], kind="ADMISSION", action="CANCEL", admission_mode="SCHEDULED"),
        {"10101010101": Earlier.WAITING},
    )
    assert notice.withdraws_waiting and notice.skip_reason and not notice.deferred


def test_discharges_only_skips_the_rest_with_the_reason() -> None:
    assert outcome(DISCHARGES, "ADMISSION") == (
        NoticeKind.ADMISSION,
        "the practitioner asks for discharges and emergency admissions only",
        False,
    )
    # What went out alone before the mode changed is still corrected alone.
    assert outcome(DISCHARGES, "TRANSFER", action="CANCEL", before=Earlier.DELIVERED) == (
        NoticeKind.RETRACTION,
        None,
        False,
    )


def test_an_opt_out_still_wins_over_any_choice() -> None:
    gp = recipient("10101010101", ADDRESS, opted_out=True, choices=DIGEST)
    [notice] = decide(enriched_record("V1", [gp], admission_mode="SCHEDULED"), {})
    assert notice.skip_reason == "the practitioner opted out of notifications"
    assert not notice.deferred


def test_kinds_are_read_as_people_write_them() -> None:
    assert parse_kinds(["admission", " Transfer", "retraction"]) == {
        EventChoice.ADMISSION,
        EventChoice.TRANSFER,
        EventChoice.CORRECTION,
    }
    with pytest.raises(ValueError, match="unknown event kind 'birth'"):
        parse_kinds(["birth"])
    with pytest.raises(ValueError, match="not an hour"):
        DeliveryChoices(digest_hour=24)
