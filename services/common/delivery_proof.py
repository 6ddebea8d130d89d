"""What counts as a notice the platform cannot prove delivered, over notify's ledger and its
published view ``notify.v_notices`` alike: notify's gauge (``harpicoop_notify_unconfirmed``) and
the dashboard count the same notices, with the same window (``NOTIFY_DSN_WINDOW_SECONDS``)."""

from __future__ import annotations

import datetime as dt

DSN_WINDOW = dt.timedelta(hours=1)
"""How long a delivery report may take before a notice counts as unconfirmed, by default
(``NOTIFY_DSN_WINDOW_SECONDS``)."""

UNCONFIRMED = (
    "state = 'sent' AND delivered_at IS NULL AND bounced_at IS NULL "
    "AND sent_at < now() - %(dsn_window)s"
)
"""A notice sent longer ago than the window (``dsn_window``) that no delivery report nor bounce
confirmed: a server that sends no DSN, or one still to come. Over the ledger and ``v_notices``
alike: notify's gauge and the dashboard count the same."""
