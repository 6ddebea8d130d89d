"""The one place the platform's local ports move: ``HARPICOOP_PORT_SHIFT`` adds the same offset
to every default port (Kafka's nodes, the registry, PostgreSQL, SMTP, IMAP, MLLP, each service's
metrics and the dashboard), so that a second stack and its services run beside a developer's.

The fault suite (``make faults``) runs that way, on a stack of its own it may kill at will;
unset, every default is the one the documentation gives. The shift is read when a module's
defaults are built, at import: a process and the services it starts inherit it together.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

PORT_SHIFT_VARIABLE = "HARPICOOP_PORT_SHIFT"
HIGHEST_DEFAULT = 9408
"""The highest default port (the dashboard's metrics): a shift must keep it a port."""


def port_shift(environ: Mapping[str, str] | None = None) -> int:
    """The offset ``HARPICOOP_PORT_SHIFT`` asks for, 0 when unset."""
    env = os.environ if environ is None else environ
    raw = env.get(PORT_SHIFT_VARIABLE, "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or HIGHEST_DEFAULT + int(raw) > 65535:
        raise ValueError(
            f"{PORT_SHIFT_VARIABLE}={raw!r}: a whole number from 0 to {65535 - HIGHEST_DEFAULT}"
        )
    return int(raw)


def local_port(default: int, environ: Mapping[str, str] | None = None) -> int:
    """``default`` moved by the shift."""
    return default + port_shift(environ)
