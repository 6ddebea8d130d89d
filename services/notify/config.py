"""Notify's own settings, beside the platform's: each with an environment variable and a default."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass

from services.common.settings import env_seconds


@dataclass(frozen=True)
class NotifyConfig:
    input_topic: str = "stays.enriched"
    followups_topic: str = "covid.followups"
    status_topic: str = "notifications.status"
    dead_letter_topic: str = "deadletter.notify"
    group_id: str = "notify"
    senders: int = 4
    """Delivery workers: a slow or failing recipient holds one of them, never the service."""
    retry_initial: dt.timedelta = dt.timedelta(seconds=5)
    retry_max: dt.timedelta = dt.timedelta(minutes=10)
    give_up_after: dt.timedelta = dt.timedelta(hours=72)
    sending_lease: dt.timedelta = dt.timedelta(minutes=10)
    """Longer than any SMTP exchange: a notice 'sending' for longer was interrupted by a crash."""
    poll_interval: float = 0.2
    extra_secure_domains: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NotifyConfig:
        env = os.environ if environ is None else environ
        default = cls()

        domains = env.get("NOTIFY_EXTRA_SECURE_DOMAINS", "")
        return cls(
            input_topic=env.get("NOTIFY_INPUT_TOPIC") or default.input_topic,
            followups_topic=env.get("NOTIFY_FOLLOWUPS_TOPIC") or default.followups_topic,
            status_topic=env.get("NOTIFY_STATUS_TOPIC") or default.status_topic,
            dead_letter_topic=env.get("NOTIFY_DEADLETTER_TOPIC") or default.dead_letter_topic,
            group_id=env.get("NOTIFY_GROUP_ID") or default.group_id,
            senders=int(env.get("NOTIFY_SENDERS") or default.senders),
            retry_initial=env_seconds(env, "NOTIFY_RETRY_INITIAL_SECONDS", default.retry_initial),
            retry_max=env_seconds(env, "NOTIFY_RETRY_MAX_SECONDS", default.retry_max),
            give_up_after=env_seconds(env, "NOTIFY_GIVE_UP_AFTER_SECONDS", default.give_up_after),
            sending_lease=env_seconds(env, "NOTIFY_SENDING_LEASE_SECONDS", default.sending_lease),
            poll_interval=float(env.get("NOTIFY_POLL_INTERVAL_SECONDS") or default.poll_interval),
            extra_secure_domains=tuple(item.strip() for item in domains.split(",") if item.strip()),
        )

    def retry_delay(self, attempt: int) -> dt.timedelta:
        """Exponential backoff from ``retry_initial``, capped at ``retry_max``."""
        delay: dt.timedelta = self.retry_initial * 2 ** max(0, attempt - 1)
        return min(self.retry_max, delay)
