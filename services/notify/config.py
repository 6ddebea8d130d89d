"""Notify's own settings, beside the platform's: each with an environment variable and a default."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.delivery_proof import DSN_WINDOW
from services.common.settings import read_config, setting
from services.notify.finess import SAMPLE_EXTRACT
from services.notify.notices import MAX_RECIPIENTS
from services.notify.sensitivity import SENSITIVITY_TOML
from services.notify.wording import UNITS_CSV


@dataclass(frozen=True)
class NotifyConfig:
    input_topic: str = setting("stays.enriched", "NOTIFY_INPUT_TOPIC")
    followups_topic: str = setting("covid.followups", "NOTIFY_FOLLOWUPS_TOPIC")
    unroutable_topic: str = setting("stays.unroutable", "NOTIFY_UNROUTABLE_TOPIC")
    """Events no GP could be found for: each one goes on the worklist."""
    status_topic: str = setting("notifications.status", "NOTIFY_STATUS_TOPIC")
    dead_letter_topic: str = setting("deadletter.notify", "NOTIFY_DEADLETTER_TOPIC")
    group_id: str = setting("notify", "NOTIFY_GROUP_ID")
    intake_batch: int = setting(50, "NOTIFY_INTAKE_BATCH", minimum=1)
    """Records intake takes in one transaction at most. Its notices reach the delivery workers on
    its commit: a smaller batch lets them start sending while intake writes the next one, and a
    batch costs one commit and one offset commit, not a statement per record."""
    senders: int = setting(4, "NOTIFY_SENDERS", minimum=1)
    """Delivery workers: a slow or failing recipient holds one of them, never the service."""
    claim_batch: int = setting(8, "NOTIFY_CLAIM_BATCH", minimum=1)
    """Due notices a worker claims in one statement; it hands them to SMTP one after the other,
    gives back those not yet handed once a batch has taken a quarter of the lease, and records
    their outcomes in one transaction. Also the most a worker's crash can leave 'uncertain'
    (sent, perhaps, and never resent): 1 records each outcome on its own."""
    retry_initial: dt.timedelta = setting(
        dt.timedelta(seconds=5), "NOTIFY_RETRY_INITIAL_SECONDS", minimum=0
    )
    retry_max: dt.timedelta = setting(
        dt.timedelta(minutes=10), "NOTIFY_RETRY_MAX_SECONDS", minimum=0
    )
    give_up_after: dt.timedelta = setting(
        dt.timedelta(hours=72), "NOTIFY_GIVE_UP_AFTER_SECONDS", minimum=0
    )
    sending_lease: dt.timedelta = setting(
        dt.timedelta(minutes=10), "NOTIFY_SENDING_LEASE_SECONDS", minimum=1
    )
    """Longer than any SMTP exchange: a notice 'sending' for longer was interrupted by a crash."""
    poll_interval: float = setting(0.2, "NOTIFY_POLL_INTERVAL_SECONDS", minimum=0.01)
    extra_secure_domains: tuple[str, ...] = setting((), "NOTIFY_EXTRA_SECURE_DOMAINS")
    max_recipients: int = setting(MAX_RECIPIENTS, "NOTIFY_MAX_RECIPIENTS", minimum=1)
    """Recipients of one event past this many are recorded as skipped, with the reason."""
    retention: dt.timedelta = setting(
        dt.timedelta(days=30), "NOTIFY_RETENTION_SECONDS", "NOTIFY_RETENTION_DAYS", minimum=0
    )
    """How long after its final status (sent, failed, skipped, uncertain) a notice keeps its
    rendered message, to be resent or looked into; then only its status trail is kept."""
    finess_extract: Path = setting(SAMPLE_EXTRACT, "NOTIFY_FINESS_EXTRACT")
    """The public FINESS extract (etalab_cs1100507_stock_*.csv) naming discharge destinations;
    read at start, so a newer extract takes effect when notify restarts."""
    units_file: Path = setting(UNITS_CSV, "NOTIFY_UNITS_FILE")
    """Unit code → name per establishment, for events whose unit comes without its name."""
    sensitivity_file: Path = setting(SENSITIVITY_TOML, "NOTIFY_SENSITIVITY_FILE")
    """What a notice may say, by establishment and unit (notify, minimal, suppress)."""
    withheld_interval: float = setting(2.0, "NOTIFY_WITHHELD_INTERVAL_SECONDS", minimum=0.01)
    """How often notices held by a new objection are recorded as skipped (they are held, never
    sent, from the moment the objection is recorded)."""
    read_receipts: tuple[str, ...] = setting((), "NOTIFY_READ_RECEIPTS")
    """The RPPS ids of the practitioners whose notices ask for a read receipt (RFC 8098), or
    ``*`` for all; none by default (a GP's client may ask its user, which some find a burden)."""
    receipts_reader: str = setting("on", "NOTIFY_RECEIPTS_READER")
    """``off``: the platform's mailbox is not read (no IMAP server to read, or another notify
    reads it)."""
    dsn_window: dt.timedelta = setting(DSN_WINDOW, "NOTIFY_DSN_WINDOW_SECONDS", minimum=1)
    """A notice sent longer ago than this with no delivery report nor bounce is counted as
    unconfirmed (metric ``harpicoop_notify_unconfirmed``)."""
    receipts_poll_interval: float = setting(
        30.0, "NOTIFY_RECEIPTS_POLL_INTERVAL_SECONDS", minimum=0.01
    )
    """How often the receipts reader looks at the platform's mailbox."""
    purge_interval: float = setting(3600.0, "NOTIFY_PURGE_INTERVAL_SECONDS", minimum=0.01)
    purge_batch: int = setting(500, "NOTIFY_PURGE_BATCH", minimum=1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NotifyConfig:
        return read_config(cls, environ)

    def wants_read_receipt(self, rpps: str) -> bool:
        return "*" in self.read_receipts or rpps in self.read_receipts

    def retry_delay(self, attempt: int) -> dt.timedelta:
        """Exponential backoff from ``retry_initial``, capped at ``retry_max``."""
        delay: dt.timedelta = self.retry_initial * 2 ** max(0, attempt - 1)
        return min(self.retry_max, delay)
