"""The audit log of what an operator chose to see or change: one JSON line per ``--reveal``
(written and flushed to disk before anything is shown) and per change to the opposition register
(written once the change is committed, with the opposition's id only).

The file (``HARPICOOP_AUDIT_LOG``, by default the stack's ``logs/audit.log``) is opened for
appending only and created readable by its owner alone (0600). The operator is the OS account
running the command (its uid, not an environment variable a caller may set).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.stack.layout import StackLayout


def audit_log_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    configured = env.get("HARPICOOP_AUDIT_LOG")
    return Path(configured) if configured else StackLayout.default().logs / "audit.log"


def operator_login() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def record_reveal(
    path: Path, *, topic: str, offsets: Mapping[int, tuple[int, int | None]], reason: str
) -> None:
    """Append who revealed which records of ``topic`` (partition → first and last offset, last
    None when following) and why; raises ``OSError`` if the line is not on disk."""
    _append(
        path,
        "tail --reveal",
        {
            "topic": topic,
            "offsets": {
                str(p): {"first": first, "last": last} for p, (first, last) in offsets.items()
            },
            "reason": reason,
        },
    )


def record_change(path: Path, action: str, details: Mapping[str, Any]) -> None:
    """Append who made which change (``details``: ids, never names); raises ``OSError`` if the
    line is not on disk."""
    _append(path, action, details)


def _append(path: Path, action: str, details: Mapping[str, Any]) -> None:
    line = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "operator": operator_login(),
        "uid": os.getuid(),
        "action": action,
        **details,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
