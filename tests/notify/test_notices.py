"""Which notices an event gives: the rules a GP relies on, without Kafka or SMTP."""

from __future__ import annotations

import pytest

from services.notify.notices import Earlier, NoticeKind, decide, notification_id
from tests.notify.builders import EVERY_KIND, enriched_record, recipient

GP = recipient("10101010101", "jeanne.martin@medecin.mssante.fr", choices=EVERY_KIND)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("ADMISSION", NoticeKind.ADMISSION),
        ("CHANGE_TO_INPATIENT", NoticeKind.ADMISSION),
        ("TRANSFER", NoticeKind.TRANSFER),
        ("DISCHARGE", NoticeKind.DISCHARGE),
    ],
)
def test_a_new_hospital_movement_gives_one_notice_per_recipient(
    kind: str, expected: NoticeKind
) -> None:
    other = recipient(
        "10101010199", "paul.roux@pharmacien.mssante.fr", role="RP", choices=EVERY_KIND
    )
    notices = decide(enriched_record("V1", [GP, other], kind=kind), {})
    assert [(n.kind, n.recipient.rpps, n.skip_reason) for n in notices] == [
        (expected, "10101010101", None),
        (expected, "10101010199", None),
    ]


@pytest.mark.parametrize(
    "kind", ["PRE_ADMISSION", "REGISTRATION", "LEAVE_OF_ABSENCE", "ATTENDING_DOCTOR_CHANGE"]
)
def test_other_movements_give_no_notice(kind: str) -> None:
    assert decide(enriched_record("V1", [GP], kind=kind), {}) == []


def test_the_same_event_and_recipient_always_give_the_same_notification_id() -> None:
    first = decide(enriched_record("V1", [GP]), {})[0]
    again = decide(enriched_record("V1", [GP]), {})[0]
    assert first.notification_id == again.notification_id
    assert first.notification_id == notification_id(
        "chrunancy:MSG-V1-ADMISSION-INSERT", "10101010101", NoticeKind.ADMISSION
    )


def test_a_cancellation_retracts_a_delivered_notice_and_withdraws_a_waiting_one() -> None:
    cancel = enriched_record("V1", [GP], action="CANCEL")
    [retraction] = decide(cancel, {"10101010101": Earlier.DELIVERED})
    assert (retraction.kind, retraction.skip_reason, retraction.withdraws_waiting) == (
        NoticeKind.RETRACTION,
        None,
        False,
    )

    [withdrawal] = decide(cancel, {"10101010101": Earlier.WAITING})
    assert withdrawal.withdraws_waiting and withdrawal.skip_reason

    assert decide(cancel, {}) == []


def test_a_correction_of_a_delivered_notice_is_a_correction_otherwise_the_notice_itself() -> None:
    update = enriched_record("V1", [GP], kind="DISCHARGE", action="UPDATE")
    assert decide(update, {"10101010101": Earlier.DELIVERED})[0].kind is NoticeKind.CORRECTION
    [replacement] = decide(update, {"10101010101": Earlier.WAITING})
    assert (replacement.kind, replacement.withdraws_waiting) == (NoticeKind.DISCHARGE, True)
    assert decide(update, {})[0].kind is NoticeKind.DISCHARGE


def test_opted_out_missing_malformed_and_insecure_addresses_are_skipped_with_the_reason() -> None:
    recipients = [
        recipient("1", "a@medecin.mssante.fr", opted_out=True),
        recipient("2", None),
        recipient("3", "b@gmail.com"),
        recipient("4", "a,b@medecin.mssante.fr"),
        recipient("5", "a@medecin.mssante.fr\r\nRCPT TO:<b@evil.com>"),
        recipient("6", "a@evil-mssante.fr"),
    ]
    reasons = [n.skip_reason for n in decide(enriched_record("V1", recipients), {})]
    assert reasons == [
        "the practitioner opted out of notifications",
        "the practitioner has no secure messaging address",
        "the address is outside the MSSanté secure domains",
        "the address is not one plain email address",
        "the address is not one plain email address",
        "the address is outside the MSSanté secure domains",
    ]


def test_an_operator_may_add_a_secure_domain() -> None:
    [notice] = decide(
        enriched_record("V1", [recipient("1", "dr@apicrypt.org")]), {}, ["apicrypt.org"]
    )
    assert notice.skip_reason is None


def test_recipients_past_the_cap_get_nothing_new_and_are_recorded_with_the_reason() -> None:
    team = [GP] + [
        recipient(f"101010102{number:02d}", f"p{number}@medecin.mssante.fr", role="RP")
        for number in range(11)
    ]
    notices = decide(enriched_record("V1", team), {}, max_recipients=10)
    assert [n.skip_reason for n in notices[:10]] == [None] * 10
    past = "past the first 10 recipients of the event"
    assert [n.skip_reason for n in notices[10:]] == [past, past]

    # A notice that went out before the cap was lowered is still retracted.
    last = team[-1]["rpps"]
    cancelled = decide(
        enriched_record("V1", team, action="CANCEL"), {last: Earlier.DELIVERED}, max_recipients=10
    )
    assert [(n.kind, n.recipient.rpps, n.skip_reason) for n in cancelled] == [
        (NoticeKind.RETRACTION, last, None)
    ]
