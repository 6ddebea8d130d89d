"""The end of a run checked against what the platform promises, from what the run produced.

- Every notifiable stay event has its notices in the ledger: one per recipient, sent or recorded
  as deliberately not sent (the rules are notify's own, ``services.notify.notices.decide``).
- A cancelled movement whose notice went out has a retraction.
- Each notice deferred to a digest (the recipient's choices, ``services.notify.choices``) is
  listed in exactly one digest email on disk (its header names the notices it lists).
- Every email the ledger says was sent is on disk exactly once (the SMTP server writes one file
  per message it accepted).
- No email shows a bare code where words are expected (unit, discharge disposition, destination,
  establishment; the test is notify's own, ``services.notify.wording.fields_without_words``).
- Every discharge with Covid-19 status POSITIVE or SUSPECTED opened a follow-up case (the rules
  are the covid service's own, ``services.covid.rules``).
- Analytics count every stay event of the days the run touched, once.
- No notice was handed to the SMTP server for a protected stay (PD1-12 or PV2-22) or an opposed
  patient once it was so (notify's own view, ``notify.v_withheld_stays``).
- Every notice sent is DELIVERED (a delivery report or a read receipt came back), or BOUNCED, or
  explicitly unconfirmed: no report ``NOTIFY_DSN_WINDOW_SECONDS`` after it was sent, so that notify
  counts it (``harpicoop_notify_unconfirmed``) and the check names it. A notice still within its
  window with no report fails the check: nobody has said yet what became of it.
- Every notice that bounced or failed for good is followed by the next step of its recipient's
  fallback chain or is on the worklist (``services.notify.chain``), and every unroutable event
  of the run is on the worklist.

Only ids are named in what a check reports: event ids, notification ids; never a patient.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from email import message_from_binary_file, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from services.cli.topics_since import records_since
from services.common.db import connect
from services.common.movements import movement_key
from services.common.records import Action, EnrichedStayEvent, StayEvent, UnroutableStayEvent
from services.common.serde import R, RecordSerde, make_registry_client
from services.common.settings import Settings
from services.covid.rules import Effect, case_id, effects
from services.notify.digests import DIGEST_LINES_HEADER
from services.notify.notices import NOTIFIABLE_KINDS, Earlier, NoticeKind, decide
from services.notify.wording import fields_without_words

NOTIFICATION_HEADER = "X-Harpicoop-Notification-Id"
SHOWN = 3
"""How many of the ids a failed check misses it names."""


@dataclass(frozen=True)
class Check:
    promise: str
    expected: int
    found: int
    missing: tuple[str, ...] = ()
    """Ids of what should be there and is not (or is there twice)."""
    hint: str = ""
    """What to look at when the check fails."""
    note: str = ""
    """What the check found besides, shown whether it passed or not (ids only)."""

    @property
    def ok(self) -> bool:
        return self.found == self.expected and not self.missing

    def line(self) -> str:
        mark = "ok    " if self.ok else "FAILED"
        text = f"  {mark} {self.promise}: {self.found:,} of {self.expected:,}"
        if not self.ok:
            shown = ", ".join(self.missing[:SHOWN])
            more = len(self.missing) - SHOWN
            if shown:
                text += f"; missing {shown}" + (f" and {more:,} more" if more > 0 else "")
            if self.hint:
                text += f" ({self.hint})"
        if self.note:
            text += f"; {self.note}"
        return text


def check(promise: str, expected: Iterable[str], found: Iterable[str], hint: str) -> Check:
    wanted, there = set(expected), set(found)
    return Check(promise, len(wanted), len(wanted & there), tuple(sorted(wanted - there)), hint)


@dataclass(frozen=True)
class RunRecords:
    """The stay events the run produced: enriched (with their recipients) and unroutable."""

    enriched: list[EnrichedStayEvent]
    unroutable: list[UnroutableStayEvent]

    @property
    def events(self) -> list[StayEvent]:
        return [item.event for item in self.enriched] + [item.event for item in self.unroutable]


def read_stays(settings: Settings, from_ms: int, run_ms: int) -> tuple[RunRecords, RunRecords]:
    """The stay events written since ``from_ms``, in one reading: those of the run (written at
    or after ``run_ms``), and all of them."""
    registry = make_registry_client(settings)

    def read(serde: RecordSerde[R], topic: str) -> tuple[list[R], list[R]]:
        run: list[R] = []
        every: list[R] = []
        for message in records_since(settings, [topic], from_ms):
            value = serde.deserialize(topic, message.value() or b"")
            every.append(value)
            if message.timestamp()[1] >= run_ms:
                run.append(value)
        return run, every

    enriched = read(RecordSerde(registry, EnrichedStayEvent), "stays.enriched")
    unroutable = read(RecordSerde(registry, UnroutableStayEvent), "stays.unroutable")
    return (
        RunRecords(enriched[0], unroutable[0]),
        RunRecords(enriched[1], unroutable[1]),
    )


LedgerRow = tuple[str, str, str, str, str, str]
"""(notification id, event id, movement key, recipient RPPS, state, kind)."""


def notices_checks(run: RunRecords, ledger: Iterable[LedgerRow]) -> list[Check]:
    """``ledger``: the rows of the notices about the run's events and their movements."""
    ledger = list(ledger)
    rows = {(event_id, rpps) for _, event_id, _, rpps, _, _ in ledger}
    expected: set[str] = set()
    present: set[str] = set()
    retractions_expected: set[str] = set()
    retractions_found: set[str] = set()
    delivered = {
        (movement, rpps)
        for _, _, movement, rpps, state, kind in ledger
        if state in ("sent", "uncertain") and kind != NoticeKind.RETRACTION
    }
    ids = {notification_id for notification_id, *_ in ledger}
    for enriched in run.enriched:
        event = enriched.event
        if event.kind not in NOTIFIABLE_KINDS:
            continue
        if event.action is Action.CANCEL:
            movement = movement_key(event)
            # The rules say a retraction when the movement's notice had been delivered.
            earlier = {
                recipient.rpps: (
                    Earlier.DELIVERED if (movement, recipient.rpps) in delivered else Earlier.NONE
                )
                for recipient in enriched.recipients
            }
            for notice in decide(enriched, earlier):
                if notice.skip_reason is None:
                    retractions_expected.add(notice.notification_id)
                    if notice.notification_id in ids:
                        retractions_found.add(notice.notification_id)
            continue
        for recipient in enriched.recipients:
            key = f"{event.event_id}|{recipient.rpps}"
            expected.add(key)
            if (event.event_id, recipient.rpps) in rows:
                present.add(key)
    return [
        check(
            "each notifiable event has a notice per recipient in the ledger",
            expected,
            present,
            "read .stack/logs/notify.log for these event ids",
        ),
        check(
            "each cancelled movement whose notice went out has a retraction",
            retractions_expected,
            retractions_found,
            "read .stack/logs/notify.log for these notification ids",
        ),
    ]


def _header_on_disk(maildir: Path, started: float, header: str) -> Iterator[str]:
    """``header`` of each message the SMTP server wrote since ``started`` (empty when absent)."""
    parser = BytesHeaderParser()
    for path in maildir.glob("*.eml"):
        if path.stat().st_mtime < started:
            continue
        with open(path, "rb") as message:
            yield str(parser.parse(message).get(header) or "").strip()


def emails_on_disk(maildir: Path, started: float) -> collections.Counter[str]:
    """Notification id → how many files the SMTP server wrote for it since ``started``."""
    return collections.Counter(
        found for found in _header_on_disk(maildir, started, NOTIFICATION_HEADER) if found
    )


def digest_lines_on_disk(maildir: Path, started: float) -> collections.Counter[str]:
    """Deferred notice id → how many digest emails written since ``started`` list it."""
    found: collections.Counter[str] = collections.Counter()
    for listed in _header_on_disk(maildir, started, DIGEST_LINES_HEADER):
        found.update(listed.split())
    return found


def digests_check(deferred: Iterable[str], listed: Mapping[str, int]) -> Check:
    """``deferred``: ids of the run's deferred notices; ``listed``: how many digests list each."""
    wanted = set(deferred)
    once = {item for item in wanted if listed.get(item, 0) == 1}
    wrong = sorted(f"{item} (in {listed.get(item, 0)} digests)" for item in wanted - once)
    return Check(
        "each deferred event appears in exactly one digest",
        len(wanted),
        len(once),
        tuple(wrong),
        "read .stack/logs/notify.log for these notification ids",
    )


def emails_check(
    sent: Iterable[str], on_disk: Mapping[str, int], uncertain: Iterable[str] = ()
) -> Check:
    """``uncertain``: notices interrupted while handed to the SMTP server (a crash, the database
    gone before 'sent' was recorded), which notify never sends again (at most once, state
    'uncertain' after its lease): each may be on disk, once."""
    wanted = set(sent)
    twice = sorted(f"{item} (x{count})" for item, count in on_disk.items() if count > 1)
    unknown = sorted(
        f"{item} (not in the ledger)" for item in set(on_disk) - wanted - set(uncertain)
    )
    return Check(
        "each email sent is on disk exactly once",
        len(wanted),
        len(wanted & set(on_disk)),
        (*sorted(wanted - set(on_disk)), *twice, *unknown),
        "the SMTP server's log is .stack/logs/smtp.log",
    )


def words_check(maildir: Path, started: float) -> Check:
    """Each email written since ``started`` reads its fields in words: a failure names the
    notification and the fields that show a code, never what they show."""
    read = 0
    coded: list[str] = []
    for path in sorted(maildir.glob("*.eml")):
        if path.stat().st_mtime < started:
            continue
        with open(path, "rb") as source:
            email = message_from_binary_file(source, _class=EmailMessage, policy=policy.default)
        body = email.get_body(("plain",))
        if body is None:
            continue
        read += 1
        fields = fields_without_words(body.get_content())
        if fields:
            name = str(email.get(NOTIFICATION_HEADER, path.name)).strip()
            coded.append(f"{name} ({', '.join(fields)})")
    return Check(
        "each email shows words, never a bare code, in its unit, discharge and destination",
        read,
        read - len(coded),
        tuple(coded),
        "deploy/units.csv and the FINESS extract name what notify knows; "
        "services/notify/wording.py says what is words",
    )


def covid_check(run: RunRecords, opened: Iterable[str]) -> Check:
    expected = {
        case_id(movement_key(event)) for event in run.events if Effect.OPEN in effects(event)
    }
    return check(
        "each positive or suspected discharge opened a Covid-19 follow-up",
        expected,
        {str(item) for item in opened},
        "read .stack/logs/covid.log",
    )


def analytics_check(
    days: Mapping[tuple[str, dt.date], set[str]], counted: Mapping[tuple[str, dt.date], int]
) -> Check:
    """``days``: per (establishment, UTC day), the ids of its stay events; ``counted``: the
    daily ``stay_events`` analysts read in PostgreSQL."""
    expected = sum(len(ids) for ids in days.values())
    found = sum(min(counted.get(key, 0), len(ids)) for key, ids in days.items())
    wrong = tuple(
        f"{establishment} {day}: {counted.get((establishment, day), 0):,} counted, "
        f"{len(ids):,} sent"
        for (establishment, day), ids in sorted(days.items())
        if counted.get((establishment, day), 0) != len(ids)
    )
    return Check(
        "analytics count each stay event of the run's days once",
        expected,
        found,
        wrong,
        "events more than the grace period behind later ones are not counted: "
        "analytics.late_record in .stack/logs/analytics.log",
    )


def stay_days(events: Iterable[StayEvent]) -> dict[tuple[str, dt.date], set[str]]:
    days: dict[tuple[str, dt.date], set[str]] = collections.defaultdict(set)
    for event in events:
        occurred = event.movement.occurred_at.astimezone(dt.UTC).date()
        days[(event.establishment, occurred)].add(event.event_id)
    return days


def reconcile(
    settings: Settings,
    since: dt.datetime,
    started: float,
    maildir: Path,
    *,
    analytics_days: int,
    dsn_window: dt.timedelta,
) -> list[Check]:
    """Every check, on the run that began at ``since`` (``started``, as a Unix time).

    Analytics are checked over the run's days that analytics still keep (``analytics_days``
    back from now); every stay event of those days is read, whichever run sent it.
    ``dsn_window`` is notify's ``NOTIFY_DSN_WINDOW_SECONDS``: after it, a notice with no report
    is unconfirmed.
    """
    # Every stay event analytics may still hold, whichever run sent it, for the analytics check
    # (a replayed day is sent in minutes, on or near the day it simulates): a few days more.
    since_ms = int(since.timestamp() * 1000)
    back = dt.datetime.now(dt.UTC) - dt.timedelta(days=analytics_days + 3)
    run, everything = read_stays(settings, min(since_ms, int(back.timestamp() * 1000)), since_ms)
    oldest = (dt.datetime.now(dt.UTC) - dt.timedelta(days=analytics_days)).date()
    touched = {day for _, day in stay_days(run.events) if day > oldest}
    found = published_outcomes(settings, run.events, since, touched)
    days = {key: ids for key, ids in stay_days(everything.events).items() if key[1] in touched}
    return [
        *notices_checks(run, found.ledger),
        emails_check(found.sent, emails_on_disk(maildir, started), found.uncertain),
        digests_check(found.deferred, digest_lines_on_disk(maildir, started)),
        words_check(maildir, started),
        covid_check(run, found.opened),
        analytics_check(days, found.counted),
        withheld_check(found.withheld),
        setbacks_check(found.setbacks),
        check(
            "each unroutable event is on the worklist",
            [item.event.event_id for item in run.unroutable],
            found.worklisted,
            "read .stack/logs/notify.log for these event ids",
        ),
        receipts_check(found.receipts, dt.datetime.now(dt.UTC), dsn_window),
    ]


def setbacks_check(setbacks: Iterable[tuple[str, bool, bool]]) -> Check:
    """``setbacks``: each notice of the run that bounced or failed for good, whether the next
    step of its chain followed it, and whether it is on the worklist."""
    rows = list(setbacks)
    dropped = tuple(sorted(notice for notice, step, listed in rows if not (step or listed)))
    return Check(
        "every bounce followed by the next step or a worklist entry",
        len(rows),
        len(rows) - len(dropped),
        dropped,
        "notify.v_notices (successor_id) and notify.v_worklist; "
        "read .stack/logs/notify.log for these notification ids",
    )


ReceiptRow = tuple[str, dt.datetime, dt.datetime | None, dt.datetime | None, dt.datetime | None]
"""(notification id, sent at, delivered at, read at, bounced at) of a notice sent."""


def receipts_check(rows: Iterable[ReceiptRow], now: dt.datetime, window: dt.timedelta) -> Check:
    """``rows``: the notices sent during the run. Each must have come back DELIVERED (or READ,
    which says as much), or BOUNCED (its next step is another check's), or be explicitly
    unconfirmed: sent longer than ``window`` (``NOTIFY_DSN_WINDOW_SECONDS``) ago with no report,
    as notify counts it in ``harpicoop_notify_unconfirmed``; those are named by id. A notice
    still within its window is neither: the run stopped waiting for its report too early."""
    delivered: list[str] = []
    bounced: list[str] = []
    unconfirmed: list[str] = []
    awaiting: list[str] = []
    for notification_id, sent_at, delivered_at, read_at, bounced_at in rows:
        if delivered_at is not None or read_at is not None:
            delivered.append(notification_id)
        elif bounced_at is not None:
            bounced.append(notification_id)
        elif sent_at <= now - window:
            unconfirmed.append(notification_id)
        else:
            awaiting.append(notification_id)
    expected = len(delivered) + len(bounced) + len(unconfirmed) + len(awaiting)
    notes = [f"{len(delivered):,} delivered", f"{len(bounced):,} bounced"]
    if unconfirmed:
        shown = ", ".join(sorted(unconfirmed)[:SHOWN])
        more = len(unconfirmed) - SHOWN
        tail = f" and {more:,} more" if more > 0 else ""
        notes.append(f"{len(unconfirmed):,} unconfirmed ({shown}{tail})")
    return Check(
        "every sent notice DELIVERED or explicitly unconfirmed",
        expected,
        expected - len(awaiting),
        tuple(f"{item} (no report yet)" for item in sorted(awaiting)),
        "the run waits for reports at most the window NOTIFY_DSN_WINDOW_SECONDS and a margin; "
        "read the 'receipts' lines of .stack/logs/notify.log and .stack/logs/imap.log",
        ", ".join(notes),
    )


def withheld_check(withheld: Iterable[tuple[str, int]]) -> Check:
    """``withheld``: each of the run's stays withheld from everyone (protected, or its patient
    opposed), with how many of its notices were handed to the SMTP server after that."""
    rows = list(withheld)
    sent = tuple(sorted(f"{stay} ({count} sent)" for stay, count in rows if count))
    return Check(
        "no notice sent for a protected or opposed patient",
        len(rows),
        len(rows) - len(sent),
        sent,
        "notify.v_withheld_stays says since when each stay is withheld; "
        "read .stack/logs/notify.log for these stay keys",
    )


@dataclass(frozen=True)
class PublishedOutcomes:
    """What the services recorded of a run, as the views they publish to the operator show it."""

    ledger: list[LedgerRow]
    sent: list[str]
    """Ids of the notices sent since the run began."""
    deferred: list[str]
    """Ids of the notices about the run's events still deferred to a digest (not withdrawn)."""
    opened: list[str]
    """Ids of the follow-up cases of the run's movements."""
    counted: dict[tuple[str, dt.date], int]
    """Stay events counted per establishment and UTC day, for the days asked."""
    withheld: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    """The stays asked that are withheld from everyone, and their notices sent since."""
    setbacks: list[tuple[str, bool, bool]] = dataclasses.field(default_factory=list)
    """Notices created since that bounced or failed for good: id, followed by a next step, on
    the worklist."""
    worklisted: list[str] = dataclasses.field(default_factory=list)
    """Event ids asked that are on the worklist as unroutable."""
    receipts: list[ReceiptRow] = dataclasses.field(default_factory=list)
    """The notices sent since the run began, with what came back of each."""
    uncertain: list[str] = dataclasses.field(default_factory=list)
    """Ids of the notices created since that were interrupted while handed to the SMTP server
    ('sending' past its worker, 'uncertain' once its lease expired)."""


def published_outcomes(
    settings: Settings,
    events: Iterable[StayEvent],
    since: dt.datetime,
    days: Iterable[dt.date],
) -> PublishedOutcomes:
    """Read from notify's, covid's and analytics' published views (``settings`` names the
    operator), never from their tables."""
    events = list(events)
    event_ids = [event.event_id for event in events]
    stays = {event.stay_key for event in events}
    movements = [movement_key(event) for event in events]
    with connect(settings) as conn:
        ledger = conn.execute(
            "SELECT notification_id::text, event_id, movement_key, recipient_rpps, state, kind "
            "FROM notify.v_notices WHERE event_id = ANY(%s) OR movement_key = ANY(%s)",
            (event_ids, movements),
        ).fetchall()
        sent = conn.execute(
            "SELECT notification_id::text, sent_at, delivered_at, read_at, bounced_at "
            "FROM notify.v_notices WHERE state = 'sent' AND sent_at >= %s",
            (since,),
        ).fetchall()
        setbacks = conn.execute(
            "SELECT n.notification_id::text, n.successor_id IS NOT NULL, EXISTS ("
            "  SELECT 1 FROM notify.v_worklist w WHERE w.notification_id = n.notification_id) "
            "FROM notify.v_notices n WHERE n.created_at >= %s "
            "AND (n.bounced_at IS NOT NULL OR n.state = 'failed')",
            (since,),
        ).fetchall()
        uncertain = conn.execute(
            "SELECT notification_id::text FROM notify.v_notices "
            "WHERE state IN ('sending', 'uncertain') AND created_at >= %s",
            (since,),
        ).fetchall()
        worklisted = conn.execute(
            "SELECT event_id FROM notify.v_worklist "
            "WHERE notification_id IS NULL AND event_id = ANY(%s)",
            (event_ids,),
        ).fetchall()
        # By event id only: a movement's lines from an earlier run went in that run's digests.
        deferred = conn.execute(
            "SELECT notification_id::text FROM notify.v_digest_lines "
            "WHERE state = 'deferred' AND event_id = ANY(%s)",
            (event_ids,),
        ).fetchall()
        opened = conn.execute(
            "SELECT case_id::text FROM covid.v_cases WHERE movement_key = ANY(%s)", (movements,)
        ).fetchall()
        counted = conn.execute(
            "SELECT establishment, (window_start AT TIME ZONE 'UTC')::date, sum(count) "
            "FROM analytics.v_counts WHERE metric = 'stay_events' AND granularity = 'DAY' "
            "AND (window_start AT TIME ZONE 'UTC')::date = ANY(%s) GROUP BY 1, 2",
            (sorted(days),),
        ).fetchall()
        withheld = withheld_stays(conn, stays)
    return PublishedOutcomes(
        ledger=[tuple(str(value) for value in row) for row in ledger],  # type: ignore[misc]
        # A bounced email was accepted, then returned: the SMTP server kept no file of it.
        sent=[str(row[0]) for row in sent if row[4] is None],
        deferred=[str(row[0]) for row in deferred],
        opened=[str(row[0]) for row in opened],
        counted={(str(place), day): int(count) for place, day, count in counted},
        withheld=withheld,
        setbacks=[(str(row[0]), bool(row[1]), bool(row[2])) for row in setbacks],
        worklisted=[str(row[0]) for row in worklisted],
        receipts=[(str(row[0]), row[1], row[2], row[3], row[4]) for row in sent],
        uncertain=[str(row[0]) for row in uncertain],
    )


def withheld_stays(conn: Any, stays: Iterable[str]) -> list[tuple[str, int]]:
    """Of ``stays``, those withheld from everyone, with their notices sent since (notify's
    published view: stay keys and counts only)."""
    rows = conn.execute(
        "SELECT stay_key, sent_since FROM notify.v_withheld_stays WHERE stay_key = ANY(%s)",
        (sorted(stays),),
    ).fetchall()
    return [(str(stay), int(count)) for stay, count in rows]


def acked_on_raw_check(
    sends: Mapping[tuple[str, str], int],
    accepted: Iterable[tuple[str, str]],
    on_raw: Mapping[tuple[str, str], int],
) -> Check:
    """Every message the gateway acknowledged (AA) is on its raw topic, and none more often
    than its engine sent it. Keys are (establishment, MSH-10); ``sends`` counts each send and
    resend, ``on_raw`` the stay events written for it.

    A resend is a message the engine sent again (its ACK late or lost), which the gateway rightly
    writes again for dedup to drop: so a message may be on its raw topic as many times as it was
    sent, never more (that would be a producer's retry written twice). An AA'd message absent is
    a loss: the one thing the gateway's ACK promises never happens."""
    acked = set(accepted)
    lost = sorted(f"{code}:{control_id} (lost)" for code, control_id in acked - set(on_raw))
    extra = sorted(
        f"{code}:{control_id} (x{count}, sent {sends.get((code, control_id), 0)})"
        for (code, control_id), count in on_raw.items()
        if count > sends.get((code, control_id), 0)
    )
    return Check(
        "each ACKed HL7 message is on its raw topic, never more often than sent",
        len(acked),
        len(acked & set(on_raw)),
        (*lost, *extra),
        "read the gateway's log for these MSH-10 (messages_unconfirmed, kafka errors)",
    )


def raw_messages(
    settings: Settings, raw_topics: Iterable[str], from_ms: int
) -> collections.Counter[tuple[str, str]]:
    """(establishment, MSH-10) → how many stay events were written for it since ``from_ms``."""
    serde = RecordSerde(make_registry_client(settings), StayEvent)
    found: collections.Counter[tuple[str, str]] = collections.Counter()
    for message in records_since(settings, list(raw_topics), from_ms):
        event = serde.deserialize(message.topic() or "", message.value() or b"")
        found[(event.establishment, event.message_control_id)] += 1
    return found


def dead_letters_check(found: Mapping[str, int], accounted: Mapping[str, int]) -> Check:
    """No record stayed on a dead-letter topic unaccounted for: ``found`` per topic since the
    run began, ``accounted`` those a scenario put there on purpose and dealt with (the notices
    given up while SMTP refused, then replayed as the README says)."""
    stray = {
        topic: count - accounted.get(topic, 0)
        for topic, count in found.items()
        if count > accounted.get(topic, 0)
    }
    total = sum(found.values())
    return Check(
        "no record left on a dead-letter topic unaccounted for",
        total,
        total - sum(stray.values()),
        tuple(f"{topic} ({count})" for topic, count in sorted(stray.items())),
        "harpicoop tail <topic> shows each record's error headers (the reason, where it came from)",
    )


def duplicated_emails(on_disk: Mapping[str, int]) -> int:
    """Emails the SMTP server accepted more than once for one notification (the extra copies)."""
    return sum(count - 1 for count in on_disk.values() if count > 1)
