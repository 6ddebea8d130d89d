"""What the engines did: counters per establishment, the progress line and the final summary.

Plain data and text; the engines update the counters, ``app`` prints them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EngineStats:
    """One establishment's engine: its messages and what became of them."""

    establishment: str
    messages: int
    """Messages of the day to send."""
    triggers: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    """Sends, resends included."""
    acked: int = 0
    """Messages accepted (AA, or CA in enhanced mode)."""
    resent: int = 0
    rejected: int = 0
    """Messages refused for good (AR, CR): not sent again."""
    given_up: int = 0
    """Messages still not accepted after every attempt."""
    ack_codes: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0
    """Sends that got no ACK in time."""
    connection_losses: int = 0
    connects: int = 0
    simulated_time: dt.datetime | None = None
    """MSH-7 of the last message sent: how far into the day this engine is."""

    @property
    def done(self) -> int:
        return self.acked + self.rejected + self.given_up

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "acked": self.acked,
            "sent": self.sent,
            "resent": self.resent,
            "rejected": self.rejected,
            "given_up": self.given_up,
            "timeouts": self.timeouts,
            "connection_losses": self.connection_losses,
            "connects": self.connects,
            "ack_codes": dict(sorted(self.ack_codes.items())),
            "triggers": dict(sorted(self.triggers.items())),
        }


def progress_line(
    engines: list[EngineStats], elapsed: float, simulated_now: dt.datetime | None = None
) -> str:
    """One line: the simulated clock, totals, and each establishment's acked/messages.

    Without a paced clock (as fast as possible), the clock is that of the engine furthest
    behind: the day is sent up to there."""
    if simulated_now is None:
        busy = [item for item in engines if item.done < item.messages] or engines
        clocks = [item.simulated_time for item in busy if item.simulated_time is not None]
        simulated_now = min(clocks) if clocks else None
    clock = f"{simulated_now:%a %d %b %H:%M}" if simulated_now else "--"
    total = sum(item.messages for item in engines)
    parts = [
        f"[{elapsed:6.1f}s] simulated {clock}",
        f"acked {sum(item.acked for item in engines)}/{total}",
        f"sent {sum(item.sent for item in engines)}",
        f"resent {sum(item.resent for item in engines)}",
    ]
    per_engine = " ".join(
        f"{item.establishment} {item.acked}/{item.messages}"
        + (f"+{item.resent}" if item.resent else "")
        for item in engines
    )
    return " | ".join(parts) + " | " + per_engine


def summary(engines: list[EngineStats], elapsed: float) -> dict[str, Any]:
    triggers: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    for item in engines:
        triggers.update(item.triggers)
        codes.update(item.ack_codes)
    return {
        "elapsed_seconds": round(elapsed, 1),
        "messages": sum(item.messages for item in engines),
        "acked": sum(item.acked for item in engines),
        "sent": sum(item.sent for item in engines),
        "resent": sum(item.resent for item in engines),
        "rejected": sum(item.rejected for item in engines),
        "given_up": sum(item.given_up for item in engines),
        "ack_codes": dict(sorted(codes.items())),
        "triggers": dict(sorted(triggers.items())),
        "establishments": {item.establishment: item.as_dict() for item in engines},
    }


def summary_text(report: dict[str, Any]) -> str:
    """The summary as a table per establishment, then per trigger and per ACK code."""
    columns = (
        "messages", "acked", "sent", "resent", "rejected", "given_up", "timeouts",
        "connection_losses",
    )  # fmt: skip
    titles = ("messages", "acked", "sent", "resent", "rejected", "given up", "time-outs", "lost")
    lines = [f"{'establishment':<14}" + "".join(f"{title:>10}" for title in titles)]
    for code, figures in report["establishments"].items():
        lines.append(f"{code:<14}" + "".join(f"{figures[name]:>10}" for name in columns))
    totals = {
        name: sum(item[name] for item in report["establishments"].values()) for name in columns
    }
    lines.append(f"{'total':<14}" + "".join(f"{totals[name]:>10}" for name in columns))
    lines.append("")
    lines.append(
        "by trigger: "
        + ", ".join(f"{trigger} {count}" for trigger, count in report["triggers"].items())
    )
    lines.append(
        "ACK codes:  "
        + (", ".join(f"{code} {count}" for code, count in report["ack_codes"].items()) or "none")
    )
    lines.append(f"elapsed:    {report['elapsed_seconds']} s")
    return "\n".join(lines)
