"""The receipts reader: the platform's mailbox over IMAP in, receipts recorded on the ledger.

It runs as one of notify's threads (``services.notify.service``), not as a service of its own:
what it records belongs to notify's ledger and goes out through notify's outbox, so it is notify
(the same principal, database role and topic) and needs no right of its own. It can also run one
pass by hand: ``python -m services.notify.receipts_reader``.

Each pass reads every message in the INBOX: parsed by ``services.notify.receipts``, recorded
(``ledger.record_receipt``, once per message), then moved to ``Processed`` (matched) or
``Unmatched`` (kept there for an operator). A message recorded but not yet moved (a crash in
between) is read again next time and changes nothing. A message whose handling fails on its
content is tried ``POISON_ATTEMPTS`` times, then moved to ``Unmatched``; an outage (IMAP or
PostgreSQL unreachable) ends the pass, to be tried again.

What a report said is kept on the ledger (``notification_receipt``: the kind, a status code or
disposition, never the report's text); the report itself is deleted from ``Processed`` once it has
been there longer than the notices' retention (``NOTIFY_RETENTION_DAYS``): a relay that ignores
``RET=HDRS`` may have returned a whole notice in it. ``Unmatched`` is an operator's to empty.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import imaplib
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import structlog

from services.common.observability import RECEIPTS, UNCONFIRMED
from services.common.outbox import Conn
from services.common.poison import Fault, PoisonPolicy, RecordAttempts, classify
from services.common.settings import Settings
from services.notify import ledger
from services.notify.receipts import MAX_RECEIPT_BYTES, ReceiptKind, read_receipt
from services.notify.status import StatusRecorder

PROCESSED = "Processed"
UNMATCHED = "Unmatched"

_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def imap_date(day: dt.date) -> str:
    """A date as IMAP's SEARCH writes it (RFC 3501 ``date``), whatever the locale."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


class MailboxError(OSError):
    """The IMAP server refused a command: an outage for the reader, not a message's fault."""


def _ok(answer: tuple[str, Any], what: str) -> list[Any]:
    status, data = answer
    if status != "OK":
        raise MailboxError(f"IMAP {what} refused: {status}")
    return list(data)


@contextmanager
def mailbox(settings: Settings, timeout: float = 30.0) -> Iterator[imaplib.IMAP4]:
    """The platform's mailbox, logged in, its INBOX selected (``IMAP_*`` settings)."""
    context = None
    if settings.imap_security != "none":
        context = ssl.create_default_context(cafile=settings.imap_ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    client: imaplib.IMAP4
    if settings.imap_security == "tls":
        client = imaplib.IMAP4_SSL(
            settings.imap_host, settings.imap_port, ssl_context=context, timeout=timeout
        )
    else:
        client = imaplib.IMAP4(settings.imap_host, settings.imap_port, timeout=timeout)
    try:
        if settings.imap_security == "starttls":
            client.starttls(ssl_context=context)
        client.login(settings.imap_user, settings.imap_password or "")
        for folder in (PROCESSED, UNMATCHED):
            client.create(folder)  # refused when it exists: nothing to do
        _ok(client.select("INBOX"), "SELECT INBOX")
        yield client
    finally:
        with suppress(OSError, imaplib.IMAP4.error):
            client.logout()


def receipt_id(raw: bytes) -> str:
    """The same message read twice has the same id."""
    return hashlib.sha256(raw).hexdigest()


class ReceiptsReader:
    def __init__(
        self,
        *,
        settings: Settings,
        conn: Conn,
        statuses: StatusRecorder,
        log: structlog.stdlib.BoundLogger,
        poll_interval: float = 30.0,
        unconfirmed_after: dt.timedelta = dt.timedelta(hours=1),
        policy: PoisonPolicy | None = None,
        retention: dt.timedelta | None = None,
        purge_interval: float = 3600.0,
    ) -> None:
        """``retention``: how long a recorded report stays in ``Processed`` (None: for ever),
        looked at every ``purge_interval`` seconds."""
        self.settings = settings
        self.conn = conn
        self.statuses = statuses
        self.log = log
        self.poll_interval = poll_interval
        self.unconfirmed_after = unconfirmed_after
        self.attempts = RecordAttempts(policy or PoisonPolicy.from_env())
        self.counts: dict[str, int] = {}
        self._gauged: set[str] = set()
        self.retention = retention
        self.purge_interval = purge_interval
        self._purged_at: float | None = None

    def run(self, stop: threading.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                self.read_once()
                self.count_unconfirmed()
                now = time.monotonic()
                if self._purged_at is None or now - self._purged_at >= self.purge_interval:
                    self.purge_processed()
                    self._purged_at = now
                failures = 0
                stop.wait(self.poll_interval)
            except Exception as error:
                if classify(error) is not Fault.OUTAGE and not isinstance(
                    error, imaplib.IMAP4.error
                ):
                    raise
                failures += 1
                pause = self.attempts.policy.pause(failures, Fault.OUTAGE)
                self.log.warning(
                    "receipts not read; trying again", error=type(error).__name__, retry_in=pause
                )
                stop.wait(max(pause, self.poll_interval))

    def read_once(self) -> dict[str, int]:
        """One pass over the INBOX; how many messages of each outcome."""
        counts: dict[str, int] = {}
        with mailbox(self.settings) as client:
            found = _ok(client.uid("SEARCH", "ALL"), "SEARCH")[0] or b""
            uids = [uid.decode("ascii") for uid in found.split()]
            for uid in uids:
                outcome = self._one(client, uid)
                counts[outcome] = counts.get(outcome, 0) + 1
            client.expunge()
        for outcome, count in counts.items():
            self.counts[outcome] = self.counts.get(outcome, 0) + count
            RECEIPTS.labels(outcome).inc(count)
        if counts:
            self.log.info("receipts read", counts=counts)
        return counts

    def purge_processed(self, today: dt.date | None = None) -> int:
        """Delete the reports that arrived in ``Processed`` more than the retention before
        ``today`` (IMAP compares whole days, so up to a day later); how many."""
        if self.retention is None:
            return 0
        day = (today or dt.datetime.now(dt.UTC).date()) - self.retention
        with mailbox(self.settings) as client:
            _ok(client.select(PROCESSED), f"SELECT {PROCESSED}")
            found = _ok(client.uid("SEARCH", "BEFORE", imap_date(day)), "SEARCH")[0] or b""
            uids = found.decode("ascii").split()
            if uids:
                _ok(client.uid("STORE", ",".join(uids), "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
                client.expunge()
        if uids:
            self.log.info("receipts purged", count=len(uids))
        return len(uids)

    def count_unconfirmed(self) -> dict[str, int]:
        """Notices sent longer ago than the window with no delivery report nor bounce, by
        establishment, into the ``harpicoop_notify_unconfirmed`` gauge."""
        counts = ledger.unconfirmed(self.conn, self.unconfirmed_after)
        for establishment in self._gauged - counts.keys():
            UNCONFIRMED.labels(establishment).set(0)
        for establishment, count in counts.items():
            UNCONFIRMED.labels(establishment).set(count)
        self._gauged = set(counts) | self._gauged
        return counts

    def _one(self, client: imaplib.IMAP4, uid: str) -> str:
        size = _SIZE.search(
            b" ".join(
                item if isinstance(item, bytes) else b""
                for item in _ok(client.uid("FETCH", uid, "(RFC822.SIZE)"), "FETCH")
            )
        )
        if size is None:
            return "gone"  # expunged by someone else meanwhile
        if int(size.group(1)) > MAX_RECEIPT_BYTES:
            # Not fetched: its id is its place and size, enough to record it once.
            outcome = self._record(f"oversize:{uid}:{size.group(1).decode()}", None)
        else:
            data = _ok(client.uid("FETCH", uid, "(BODY.PEEK[])"), "FETCH")
            raw = next(
                (item[1] for item in data if isinstance(item, tuple) and len(item) == 2), None
            )
            if not isinstance(raw, bytes):
                return "gone"
            outcome = self._handle(uid, raw)
        folder = UNMATCHED if outcome == "unmatched" else PROCESSED
        _ok(client.uid("MOVE", uid, folder), "MOVE")
        return outcome

    def _handle(self, uid: str, raw: bytes) -> str:
        place = ("imap", None, int(uid))
        outcome = "unmatched"

        def attempt() -> None:
            nonlocal outcome
            outcome = self._record(receipt_id(raw), raw)

        def give_up(error: BaseException) -> None:
            nonlocal outcome
            self.log.error("receipt not recorded; kept as unmatched", error=type(error).__name__)
            outcome = "unmatched"

        self.attempts.run(place, attempt, give_up, self.log)
        return outcome

    def _record(self, key: str, raw: bytes | None) -> str:
        """``raw`` None: a message too large to be read."""
        receipt = read_receipt(raw) if raw is not None else None
        kind = receipt.kind.value if receipt else ReceiptKind.UNMATCHED.value
        detail = receipt.detail if receipt else f"larger than {MAX_RECEIPT_BYTES} bytes"
        outcome = ledger.record_receipt(
            self.conn,
            self.statuses,
            key,
            kind,
            receipt.notification_id if receipt else None,
            detail,
        )
        self.log.info(
            "receipt read",
            outcome=outcome,
            kind=kind,
            notification_id=receipt.notification_id if receipt else None,
        )
        return outcome


def main() -> None:
    """One pass by hand, as notify (its principal's credentials and ledger)."""
    from services.common.db import connect
    from services.common.logging import configure_logging
    from services.common.records import NotificationStatus
    from services.common.serde import RecordSerde, make_registry_client
    from services.notify.config import NotifyConfig

    settings = Settings.from_env(principal="notify")
    config = NotifyConfig.from_env()
    log = configure_logging("notify").bind(part="receipts")
    statuses = StatusRecorder(
        RecordSerde(make_registry_client(settings), NotificationStatus),
        config.status_topic,
    )
    with connect(settings, autocommit=True) as conn:
        reader = ReceiptsReader(settings=settings, conn=conn, statuses=statuses, log=log)
        print(reader.read_once())


if __name__ == "__main__":
    main()
