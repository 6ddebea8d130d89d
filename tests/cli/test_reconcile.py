"""The end-of-run checks: what each promise expects from a run's records, and what a failure
names (ids, never a patient)."""

from __future__ import annotations

import collections
import datetime as dt
from email.message import EmailMessage
from pathlib import Path

from services.cli.reconcile import (
    RunRecords,
    acked_on_raw_check,
    analytics_check,
    covid_check,
    dead_letters_check,
    digest_lines_on_disk,
    digests_check,
    duplicated_emails,
    emails_check,
    emails_on_disk,
    notices_checks,
    receipts_check,
    setbacks_check,
    stay_days,
    withheld_check,
    words_check,
)
from services.common.movements import movement_key
from services.common.records import EnrichedStayEvent, UnroutableReason, UnroutableStayEvent
from services.covid.rules import case_id
from services.notify.notices import NoticeKind, notification_id
from services.notify.render import notice_context, render
from tests.notify.builders import enriched_record, recipient

GP = recipient("10101010101", "jeanne.martin@medecin.mssante.fr")
OTHER = recipient("20202020202", "paul.durand@medecin.mssante.fr")


def ledger_row(
    enriched: EnrichedStayEvent, rpps: str, kind: NoticeKind, state: str
) -> tuple[str, str, str, str, str, str]:
    event = enriched.event
    return (
        notification_id(event.event_id, rpps, kind),
        event.event_id,
        movement_key(event),
        rpps,
        state,
        kind.value,
    )


def test_every_recipient_of_a_notifiable_event_needs_a_notice() -> None:
    admission = enriched_record("V1", [GP, OTHER])
    run = RunRecords([admission], [])
    notices, _ = notices_checks(
        run, [ledger_row(admission, GP["rpps"], NoticeKind.ADMISSION, "sent")]
    )
    assert not notices.ok
    assert (notices.expected, notices.found) == (2, 1)
    assert notices.missing == (f"{admission.event.event_id}|{OTHER['rpps']}",)
    # A notice deliberately not sent (opt-out, say) is one the ledger holds.
    skipped = ledger_row(admission, OTHER["rpps"], NoticeKind.ADMISSION, "skipped")
    notices, _ = notices_checks(
        run, [ledger_row(admission, GP["rpps"], NoticeKind.ADMISSION, "sent"), skipped]
    )
    assert notices.ok


def test_a_cancelled_movement_needs_a_retraction_only_where_its_notice_went_out() -> None:
    admission = enriched_record("V2", [GP, OTHER])
    cancel = enriched_record("V2", [GP, OTHER], action="CANCEL", message_id="MSG-V2-cancel")
    run = RunRecords([admission, cancel], [])
    ledger = [
        ledger_row(admission, GP["rpps"], NoticeKind.ADMISSION, "sent"),
        # Withdrawn while it waited: nothing went out, nothing to retract.
        ledger_row(admission, OTHER["rpps"], NoticeKind.ADMISSION, "skipped"),
    ]
    _, retractions = notices_checks(run, ledger)
    assert (retractions.expected, retractions.found) == (1, 0)
    retraction = notification_id(cancel.event.event_id, GP["rpps"], NoticeKind.RETRACTION)
    assert retractions.missing == (retraction,)
    _, retractions = notices_checks(
        run, [*ledger, ledger_row(cancel, GP["rpps"], NoticeKind.RETRACTION, "sent")]
    )
    assert retractions.ok


def test_an_email_missing_twice_or_unknown_on_disk_fails_the_check() -> None:
    assert emails_check(["a", "b"], {"a": 1, "b": 1}).ok
    failed = emails_check(["a", "b", "c"], {"a": 2, "b": 1, "z": 1})
    assert not failed.ok
    assert failed.missing == ("c", "a (x2)", "z (not in the ledger)")
    assert "FAILED" in failed.line() and "2 of 3" in failed.line()


def test_emails_on_disk_are_counted_by_notification_id(tmp_path: Path) -> None:
    for name, ident in (("1.eml", "a"), ("2.eml", "a"), ("3.eml", "b")):
        (tmp_path / name).write_bytes(
            f"X-Harpicoop-Notification-Id: {ident}\r\nSubject: x\r\n\r\nbody\r\n".encode()
        )
    assert emails_on_disk(tmp_path, 0.0) == collections.Counter({"a": 2, "b": 1})


def test_each_positive_or_suspected_discharge_needs_a_follow_up() -> None:
    positive = enriched_record(
        "V3", [GP], kind="DISCHARGE", covid_status="POSITIVE", movement_id="M3"
    )
    negative = enriched_record(
        "V4", [GP], kind="DISCHARGE", covid_status="NEGATIVE", movement_id="M4"
    )
    suspected = enriched_record(
        "V5", [GP], kind="DISCHARGE", covid_status="SUSPECTED", movement_id="M5"
    )
    unroutable = UnroutableStayEvent(
        event=suspected.event,
        reason=UnroutableReason.NO_GP,
        detail="no GP",
        detected_at=suspected.enriched_at,
    )
    run = RunRecords([positive, negative], [unroutable])
    result = covid_check(run, [case_id(movement_key(positive.event))])
    assert (result.expected, result.found) == (2, 1)
    assert result.missing == (case_id(movement_key(suspected.event)),)


def test_analytics_must_count_every_event_of_a_day_once() -> None:
    events = [enriched_record(f"V{n}", [GP]).event for n in range(3)]
    day = events[0].movement.occurred_at.date()
    days = stay_days(events)
    assert days == {("chrunancy", day): {event.event_id for event in events}}
    assert analytics_check(days, {("chrunancy", day): 3}).ok
    short = analytics_check(days, {("chrunancy", day): 2})
    assert (short.expected, short.found) == (3, 2)
    assert short.missing == (f"chrunancy {day}: 2 counted, 3 sent",)
    # Counting too much is as wrong as counting too little.
    assert not analytics_check(days, {("chrunancy", day): 4}).ok
    assert dt.date(2026, 3, 2) == day


def _eml(folder: Path, name: str, ident: str, body: str) -> None:
    message = EmailMessage()
    message["X-Harpicoop-Notification-Id"] = ident
    message["Subject"] = "Sortie"
    message.set_content(body)
    message.add_alternative(f"<p>{body}</p>", subtype="html")
    (folder / name).write_bytes(message.as_bytes())


def test_an_email_showing_a_bare_code_fails_the_words_check(tmp_path: Path) -> None:
    _eml(tmp_path, "1.eml", "a", "Service : Cardiologie\nMode de sortie : retour à domicile\n")
    _eml(tmp_path, "2.eml", "b", "Service : 4011\nMode de sortie : 3\n")
    _eml(tmp_path, "3.eml", "c", "Destination : CH_TOUL\n")
    check_ = words_check(tmp_path, 0.0)
    assert not check_.ok and (check_.expected, check_.found) == (3, 1)
    assert check_.missing == ("b (Service, Mode de sortie)", "c (Destination)")
    # Files older than the run are not the run's.
    assert words_check(tmp_path, float("inf")).expected == 0


def test_rendered_notices_pass_the_words_check(tmp_path: Path) -> None:
    enriched = enriched_record("V1", [recipient("10101010101", "a@b.mssante.fr")], kind="DISCHARGE")
    content = render(
        notice_context(
            NoticeKind.DISCHARGE, enriched.event, enriched.recipients[0], "CHRU de Nancy"
        )
    )
    _eml(tmp_path, "1.eml", "a", content.text)
    assert words_check(tmp_path, 0.0).ok


def test_a_notice_sent_for_a_protected_or_opposed_stay_fails_the_check() -> None:
    ok = withheld_check([("chrunancy:V1", 0), ("cpn:V2", 0)])
    assert ok.ok and ok.expected == 2
    failed = withheld_check([("chrunancy:V1", 0), ("toul:V3", 2)])
    assert not failed.ok and failed.found == 1
    assert failed.missing == ("toul:V3 (2 sent)",)
    assert "no notice sent for a protected or opposed patient" in failed.line()


def test_each_deferred_notice_must_be_in_exactly_one_digest_on_disk(tmp_path: Path) -> None:
    for name, ident, lines in (
        ("1.eml", "d1", "n1 n2"),
        ("2.eml", "d2", "n3 n2"),  # n2 listed a second time
        ("3.eml", "a", ""),  # a notice sent alone lists nothing
    ):
        header = f"X-Harpicoop-Digest-Lines: {lines}\r\n" if lines else ""
        (tmp_path / name).write_bytes(
            f"X-Harpicoop-Notification-Id: {ident}\r\n{header}Subject: x\r\n\r\nbody\r\n".encode()
        )
    listed = digest_lines_on_disk(tmp_path, 0.0)
    assert listed == collections.Counter({"n1": 1, "n2": 2, "n3": 1})
    assert digests_check(["n1", "n3"], listed).ok
    failed = digests_check(["n1", "n2", "n4"], listed)
    assert (failed.expected, failed.found) == (3, 1)
    assert failed.missing == ("n2 (in 2 digests)", "n4 (in 0 digests)")
    assert failed.line().startswith("  FAILED each deferred event appears in exactly one digest")


def test_a_bounce_neither_followed_by_a_step_nor_on_the_worklist_fails_the_check() -> None:
    ok = setbacks_check([("n1", True, False), ("n2", False, True)])
    assert ok.ok and (ok.expected, ok.found) == (2, 2)
    failed = setbacks_check([("n1", True, False), ("n3", False, False)])
    assert not failed.ok and failed.found == 1 and failed.missing == ("n3",)
    assert failed.line().startswith(
        "  FAILED every bounce followed by the next step or a worklist entry: 1 of 2; missing n3"
    )


NOW = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(seconds=60)


def sent_notice(
    name: str,
    sent_ago: float,
    *,
    delivered: bool = False,
    read: bool = False,
    bounced: bool = False,
) -> tuple[str, dt.datetime, dt.datetime | None, dt.datetime | None, dt.datetime | None]:
    sent_at = NOW - dt.timedelta(seconds=sent_ago)
    later = sent_at + dt.timedelta(seconds=1)
    return (
        name,
        sent_at,
        later if delivered else None,
        later if read else None,
        later if bounced else None,
    )


def test_every_sent_notice_delivered_bounced_or_named_unconfirmed_passes() -> None:
    rows = [
        sent_notice("n-delivered", 90, delivered=True),
        sent_notice("n-read-only", 90, read=True),  # a read receipt says it arrived
        sent_notice("n-bounced", 90, bounced=True),
        sent_notice("n-silent", 61),  # the window passed with no report: unconfirmed
    ]
    result = receipts_check(rows, NOW, WINDOW)
    assert result.ok and (result.found, result.expected) == (4, 4)
    line = result.line()
    assert "2 delivered, 1 bounced, 1 unconfirmed (n-silent)" in line and line.startswith("  ok")


def test_a_notice_still_within_its_window_without_a_report_fails_the_check() -> None:
    rows = [sent_notice("n-delivered", 5, delivered=True), sent_notice("n-waiting", 30)]
    result = receipts_check(rows, NOW, WINDOW)
    assert not result.ok and result.missing == ("n-waiting (no report yet)",)
    assert "FAILED" in result.line() and "NOTIFY_DSN_WINDOW_SECONDS" in result.line()


def test_unconfirmed_notices_are_named_a_few_then_counted() -> None:
    rows = [sent_notice(f"n-{index}", 600) for index in range(5)]
    line = receipts_check(rows, NOW, WINDOW).line()
    assert "5 unconfirmed (n-0, n-1, n-2 and 2 more)" in line


def test_a_run_with_nothing_sent_has_nothing_to_confirm() -> None:
    assert receipts_check([], NOW, WINDOW).ok


def test_an_acked_message_missing_from_its_raw_topic_is_a_loss() -> None:
    sends = collections.Counter({("cpn", "M1"): 1, ("cpn", "M2"): 2, ("toul", "M1"): 1})
    acked = [("cpn", "M1"), ("cpn", "M2"), ("toul", "M1")]
    found = acked_on_raw_check(sends, acked, {("cpn", "M1"): 1, ("cpn", "M2"): 2})
    assert not found.ok
    assert found.expected == 3 and found.found == 2
    assert found.missing == ("toul:M1 (lost)",)


def test_a_message_on_its_raw_topic_as_often_as_it_was_sent_is_no_duplicate() -> None:
    sends = collections.Counter({("cpn", "M1"): 2, ("cpn", "M2"): 1})
    # M1 resent after a late ACK: written twice, for dedup to drop; M2 unacked but written.
    assert acked_on_raw_check(sends, [("cpn", "M1")], {("cpn", "M1"): 2, ("cpn", "M2"): 1}).ok


def test_a_message_written_more_often_than_sent_is_a_duplicate() -> None:
    sends = collections.Counter({("cpn", "M1"): 1})
    found = acked_on_raw_check(sends, [("cpn", "M1")], {("cpn", "M1"): 2})
    assert not found.ok and found.missing == ("cpn:M1 (x2, sent 1)",)


def test_dead_letters_are_fine_only_where_a_scenario_accounted_for_them() -> None:
    assert dead_letters_check({}, {}).ok
    assert dead_letters_check({"deadletter.notify": 4}, {"deadletter.notify": 4}).ok
    stray = dead_letters_check({"deadletter.notify": 4, "deadletter.enrich": 1}, {})
    assert not stray.ok
    assert stray.missing == ("deadletter.enrich (1)", "deadletter.notify (4)")


def test_duplicated_emails_are_the_extra_copies() -> None:
    assert duplicated_emails(collections.Counter({"a": 1, "b": 3, "c": 2})) == 3


def test_an_interrupted_notice_may_be_on_disk_once_but_never_twice() -> None:
    # Handed to the SMTP server as PostgreSQL went away: 'sent' never recorded, never resent.
    on_disk = collections.Counter({"a": 1, "interrupted": 1})
    assert not emails_check(["a"], on_disk).ok
    assert emails_check(["a"], on_disk, uncertain=["interrupted"]).ok
    twice = emails_check(["a"], {"a": 1, "interrupted": 2}, uncertain=["interrupted"])
    assert not twice.ok and twice.missing == ("interrupted (x2)",)
