"""The page's figures for one local day, shaped from the rows the store read: pure, no database,
no Kafka, no sockets.

Days are local days in France (Europe/Paris), as in the analytics views; an hour is the local hour
its window starts in. On the autumn day with 25 hours, both 2 o'clock hours add up in one cell;
on the spring day with 23, the 2 o'clock cell stays empty.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from services.cli.lag import GroupLag
from services.common.establishments import Establishment

PARIS = ZoneInfo("Europe/Paris")
HOURS_PER_DAY = 24

# The parts of one establishment's bar: disjoint kinds of stay events, ``other`` being the rest
# (pre-admissions, registrations, leaves, admissions of unknown mode...), so that the bar's
# length is every stay event of the day.
STAY_PARTS = (
    "scheduled_admissions",
    "emergency_admissions",
    "transfers",
    "discharges",
    "corrections",
    "cancellations",
)
# Columns of the ``daily_stays`` view shown per establishment; unroutable events are a part of
# the others (no GP could be told), not a kind of their own.
STAY_COLUMNS = ("stay_events", "admissions", *STAY_PARTS, "unroutable")
EMAIL_COLUMNS = ("sent", "failed", "waiting", "delivered", "read", "bounced", "unconfirmed")
# The share of sent notices a receipt proved delivered, or read (None when none was sent).
EMAIL_SHARES = ("delivered", "read")
COVID_CASE_COLUMNS = ("open", "reminded", "opened_on_day")
# Columns of the ``daily_covid_discharges`` view: discharges by Covid-19 status at discharge.
COVID_STATUS_COLUMNS = ("positive", "suspected", "negative", "not_tested", "unknown")
# Reasons of notify's worklist: an unroutable event's (enrich's), then a notice's whose chain
# ended without a delivery.
UNROUTABLE_REASONS = ("NO_GP", "UNKNOWN_RPPS", "NO_SECURE_ADDRESS", "OTHER")
WORKLIST_REASONS = (*UNROUTABLE_REASONS, "BOUNCED", "FAILED")
# The reasons the identity-vigilance team follows as monthly rates.
VIGILANCE_REASONS = ("NO_GP", "UNKNOWN_RPPS", "NO_SECURE_ADDRESS")

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Latency:
    """From the platform's receipt of an event to the SMTP server's acceptance of its notice."""

    p50_seconds: float | None
    p99_seconds: float | None
    count: int


@dataclass(frozen=True)
class DayRows:
    """What the store read for one local day, as plain rows keyed by column name."""

    day: dt.date
    hourly: Sequence[Row]
    """establishment, hour (local, 0-23), stay_events."""
    stays: Sequence[Row]
    """Rows of the ``daily_stays`` view."""
    emails: Sequence[Row]
    """establishment and ``EMAIL_COLUMNS``, for notices created that day."""
    latency: Latency
    covid_cases: Sequence[Row]
    """establishment and ``COVID_CASE_COLUMNS``: cases not closed, and opened that day."""
    covid_discharges: Sequence[Row]
    """Rows of the ``daily_covid_discharges`` view."""
    worklist: Sequence[Row] = ()
    """establishment, unit ('' when none), reason, open: open worklist entries."""
    worklist_entries: Sequence[Row] = ()
    """The latest open entries: establishment, unit, reason, event_id, notification_id,
    recorded_at."""
    month_unroutable: Sequence[Row] = ()
    """establishment, reason, events: unroutable events of the day's month."""
    month_stays: Sequence[Row] = ()
    """establishment, stay_events: every stay event of the day's month."""


@dataclass(frozen=True)
class LagReading:
    """The latest reading of the consumer groups' lag, or why there is none."""

    groups: Sequence[GroupLag] = ()
    checked_at: dt.datetime | None = None
    error: str | None = None


def local_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(PARIS).date()


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The local day's first instant and the next day's (midnight always exists in Paris)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=PARIS)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=PARIS)
    return start, end


def month_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The local month of ``day``: its first instant and the next month's."""
    first = day.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return day_bounds(first)[0], day_bounds(following)[0]


def default_day(today: dt.date, latest_activity: dt.datetime | None) -> dt.date:
    """Today; or, when today has no stay event yet, the last day that had one."""
    if latest_activity is None:
        return today
    return min(today, local_day(latest_activity))


def overview(
    rows: DayRows,
    establishments: Sequence[Establishment],
    lag: LagReading,
    lag_threshold: int,
    now: dt.datetime,
    refresh_seconds: float,
) -> dict[str, Any]:
    """Everything the page draws, as JSON-ready values; every establishment appears, with zeros
    when it had nothing."""
    codes = _codes(
        establishments,
        rows.hourly,
        rows.stays,
        rows.emails,
        rows.covid_cases,
        rows.covid_discharges,
    )
    names = {item.code: item.name for item in establishments}
    stays = _per_establishment(codes, rows.stays, STAY_COLUMNS)
    for line in stays:
        line["other"] = line["stay_events"] - sum(line[part] for part in STAY_PARTS)
    emails = _per_establishment(codes, rows.emails, EMAIL_COLUMNS)
    email_total: dict[str, Any] = dict(_total(emails, EMAIL_COLUMNS))
    for line in [*emails, email_total]:
        line.update(_shares(line))
    covid_cases = _per_establishment(codes, rows.covid_cases, COVID_CASE_COLUMNS)
    covid_discharges = _per_establishment(codes, rows.covid_discharges, COVID_STATUS_COLUMNS)
    hourly = hourly_counts(codes, rows.hourly)
    return {
        "generated_at": now.astimezone(PARIS).isoformat(timespec="seconds"),
        "today": local_day(now).isoformat(),
        "day": rows.day.isoformat(),
        "refresh_seconds": refresh_seconds,
        "establishments": [{"code": code, "name": names.get(code) or code} for code in codes],
        "stays": {
            "hourly": [{"establishment": code, "counts": hourly[code]} for code in codes],
            "peak": max((max(counts) for counts in hourly.values()), default=0),
            "by_establishment": stays,
            "total": _total(stays, (*STAY_COLUMNS, "other")),
        },
        "emails": {
            "by_establishment": emails,
            "total": email_total,
            "latency_seconds": {
                "p50": _rounded(rows.latency.p50_seconds),
                "p99": _rounded(rows.latency.p99_seconds),
                "count": rows.latency.count,
            },
        },
        "covid": {
            "by_establishment": [
                {**cases, **discharges}
                for cases, discharges in zip(covid_cases, covid_discharges, strict=True)
            ],
            "total": {
                **_total(covid_cases, COVID_CASE_COLUMNS),
                **_total(covid_discharges, COVID_STATUS_COLUMNS),
            },
        },
        "lag": lag_report(lag, lag_threshold),
        "worklist": worklist_report(rows, codes),
    }


def worklist_report(rows: DayRows, codes: Sequence[str]) -> dict[str, Any]:
    """Open worklist entries by establishment and unit, the latest ones (ids and reasons), and
    the month's NO_GP / UNKNOWN_RPPS / NO_SECURE_ADDRESS rates per establishment (each reason's
    unroutable events over the month's stay events; None when the month has none)."""
    units: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows.worklist:
        place = (row["establishment"], row["unit"])
        line = units.setdefault(
            place,
            {"establishment": place[0], "unit": place[1], **dict.fromkeys(WORKLIST_REASONS, 0)},
        )
        reason = row["reason"] if row["reason"] in WORKLIST_REASONS else "OTHER"
        line[reason] += int(row["open"])
    by_unit = [units[place] for place in sorted(units)]
    for line in by_unit:
        line["total"] = sum(line[reason] for reason in WORKLIST_REASONS)
    stays = {row["establishment"]: int(row["stay_events"] or 0) for row in rows.month_stays}
    unroutable: dict[tuple[str, str], int] = {
        (row["establishment"], row["reason"]): int(row["events"]) for row in rows.month_unroutable
    }
    rates = []
    for code in codes:
        events = stays.get(code, 0)
        rate: dict[str, Any] = {"establishment": code, "stay_events": events}
        for reason in VIGILANCE_REASONS:
            found = unroutable.get((code, reason), 0)
            rate[reason] = found
            rate[f"{reason}_rate"] = round(found / events, 4) if events else None
        rates.append(rate)
    return {
        "month": rows.day.strftime("%Y-%m"),
        "by_unit": by_unit,
        "total": _total(by_unit, (*WORKLIST_REASONS, "total")),
        "entries": [
            {
                "establishment": row["establishment"],
                "unit": row["unit"],
                "reason": row["reason"],
                "event_id": row["event_id"],
                "notification_id": row["notification_id"],
                "recorded_at": row["recorded_at"].astimezone(PARIS).isoformat(timespec="seconds"),
            }
            for row in rows.worklist_entries
        ],
        "rates": rates,
    }


def hourly_counts(codes: Sequence[str], hourly: Iterable[Row]) -> dict[str, list[int]]:
    """Stay events per establishment and local hour, 24 cells each."""
    counts = {code: [0] * HOURS_PER_DAY for code in codes}
    for row in hourly:
        counts[row["establishment"]][int(row["hour"])] += int(row["stay_events"])
    return counts


def lag_report(lag: LagReading, threshold: int) -> dict[str, Any]:
    return {
        "threshold": threshold,
        "checked_at": (
            lag.checked_at.astimezone(PARIS).isoformat(timespec="seconds")
            if lag.checked_at
            else None
        ),
        "error": lag.error,
        "groups": [
            {
                "group": group.group,
                "lag": group.lag,
                "partitions": group.partitions,
                "over_threshold": group.lag > threshold,
            }
            for group in lag.groups
        ],
    }


def _codes(establishments: Sequence[Establishment], *row_lists: Iterable[Row]) -> list[str]:
    """The GHT's establishments in the file's order, then any other code found in the rows
    (an establishment removed from the file still has its history)."""
    known = [item.code for item in establishments]
    seen = {row["establishment"] for rows in row_lists for row in rows}
    return known + sorted(seen - set(known))


def _per_establishment(
    codes: Sequence[str], rows: Iterable[Row], columns: Sequence[str]
) -> list[dict[str, Any]]:
    by_code = {row["establishment"]: row for row in rows}
    return [
        {
            "establishment": code,
            **{column: int(by_code.get(code, {}).get(column) or 0) for column in columns},
        }
        for code in codes
    ]


def _total(lines: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, int]:
    return {column: sum(int(line[column]) for line in lines) for column in columns}


def _shares(line: Mapping[str, Any]) -> dict[str, float | None]:
    sent = int(line["sent"])
    return {
        f"{column}_share": round(int(line[column]) / sent, 3) if sent else None
        for column in EMAIL_SHARES
    }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(float(seconds), 3)
