"""``python -m services.faults``: the fault suite, on a stack of its own.

The suite kills brokers, PostgreSQL, the registry and SMTP, so it never runs on a developer's
stack: its state folder is ``.stack/faults`` and every port is shifted by ``FAULTS_PORT_SHIFT``
(``services.common.ports``), so it runs beside that stack, and beside ``make test``. Both are set
here, before anything reads them (ports are read at import), and passed to every process the
suite starts.
"""

import os
import sys

from services.common.paths import PROJECT_ROOT

FAULTS_PORT_SHIFT = "22000"
"""Kafka on 31092-31097, the registry 30081, PostgreSQL 27433, SMTP 24525, MLLP 24575, metrics
31401-31408, the dashboard 30088: clear of the developer's stack, of the tests' throwaway
brokers (19092, 29092 and up) and below the kernel's ephemeral ports (32768 and up)."""
FAULTS_STACK = PROJECT_ROOT / ".stack" / "faults"
POINTING_ELSEWHERE = ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "DATABASE_URL", "SMTP_PORT")


def own_stack() -> str | None:
    """Point this process at the suite's stack; what stands in the way, or None."""
    if os.environ.setdefault("HARPICOOP_PORT_SHIFT", FAULTS_PORT_SHIFT).strip() in ("", "0"):
        return "HARPICOOP_PORT_SHIFT=0 would put the suite on the developer stack's ports"
    stack = os.path.realpath(os.environ.setdefault("HARPICOOP_STACK_DIR", str(FAULTS_STACK)))
    if stack == os.path.realpath(PROJECT_ROOT / ".stack"):
        return "HARPICOOP_STACK_DIR names the developer stack's folder; the suite needs its own"
    set_elsewhere = [name for name in POINTING_ELSEWHERE if os.environ.get(name)]
    if set_elsewhere:
        return f"unset {', '.join(set_elsewhere)}: the suite runs on its own stack, not that one"
    os.environ["HARPICOOP_BROKERS"] = "3"
    # Analytics' local state (faust's table) goes with the suite's stack, never in the
    # checkout's .stack/ beside a developer's run.
    os.environ.setdefault("ANALYTICS_DATA_DIR", os.path.join(stack, "analytics"))
    return None


if __name__ == "__main__":
    refused = own_stack()
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        sys.exit(2)
    from services.faults.suite import main

    sys.exit(main())
