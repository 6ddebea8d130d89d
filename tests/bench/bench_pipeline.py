"""End to end at a fixed offered rate: HL7 over MLLP in, emails accepted by SMTP out.

A Monday morning (08:00 to 12:00, the busiest hours) of the eleven establishments is paced at
720 simulated seconds per second, through every service started as its own process, as
``make run`` does; the latency is from the gateway's receipt of a message to the SMTP server's
acceptance of its notice (the notification ledger's ``received_at`` and ``sent_at``).
"""

from __future__ import annotations

from typing import Any

from services.cli import run as pipeline
from services.common.settings import Settings

SPEED = 720
DAY = ["--date", "2026-03-09", "--start", "08:00", "--duration", "4h", "--seed", "bench"]


def run(settings: Settings) -> dict[str, Any]:
    measured: list[pipeline.RunFigures] = []
    status = pipeline.run(
        settings, ["--speed", str(SPEED), *DAY], keep_running=False, figures=measured
    )
    if status != 0 or not measured:
        raise RuntimeError("the run did not complete; read .stack/logs/")
    figures = measured[0]
    return {
        "simulated_speed": SPEED,
        "messages": figures.received,
        "offered_messages_per_s": round(figures.received / figures.send_seconds, 1),
        "emails_sent": figures.emails_sent,
        "emails_on_disk": figures.emails_on_disk,
        "receipt_to_smtp_p50_ms": round(figures.latency_p50_ms or 0),
        "receipt_to_smtp_p99_ms": round(figures.latency_p99_ms or 0),
    }
