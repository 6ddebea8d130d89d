"""Each hop's share of the latency from the gateway's receipt of a message to the SMTP server's
acceptance of its notice.

The points in time are the ones the platform already keeps: the event's ``received_at`` (the
gateway's receipt), the timestamps of its records on ``stays.raw.*`` (the gateway's produce),
``stays.unique`` (dedup's) and ``stays.enriched`` (enrich's), and the ledger's ``created_at``
(notice recorded by notify's intake) and ``sent_at`` (accepted by SMTP). Events are matched by
their ``event_id``; only event ids and times are read, never what the records say of a patient.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.cli.topics_since import records_since
from services.common.outbox import Conn
from services.common.records import EnrichedStayEvent, StayEvent
from services.common.serde import RecordSerde, make_registry_client
from services.common.settings import Settings

HOPS = (
    ("gateway", "receipt → stays.raw"),
    ("dedup", "stays.raw → stays.unique"),
    ("enrich", "stays.unique → stays.enriched"),
    ("notify intake", "stays.enriched → notice recorded"),
    ("delivery", "notice recorded → SMTP acceptance"),
)
TOPIC_TYPES: dict[str, type[StayEvent] | type[EnrichedStayEvent]] = {
    "raw": StayEvent,
    "unique": StayEvent,
    "enriched": EnrichedStayEvent,
}


@dataclass(frozen=True)
class Hop:
    name: str
    span: str
    p50_ms: float
    p99_ms: float
    share: float
    """Of the median end-to-end time, the part this hop's median takes."""


@dataclass(frozen=True)
class HopReport:
    notices: int
    total_p50_ms: float
    total_p99_ms: float
    hops: tuple[Hop, ...]


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: a value that occurred."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def report(
    received: Mapping[str, dt.datetime],
    stamps: Mapping[str, Mapping[str, dt.datetime]],
    notices: Iterable[tuple[str, dt.datetime, dt.datetime]],
) -> HopReport:
    """From the events' receipts, their first record on each topic (``raw``, ``unique``,
    ``enriched``) and the sent notices (event id, created_at, sent_at): a pure function.

    A notice whose event is missing from a topic (read past its retention, say) is left out."""
    spans: list[list[float]] = [[] for _ in HOPS]
    totals: list[float] = []
    for event_id, created_at, sent_at in notices:
        points = [received.get(event_id)]
        points += [stamps.get(topic, {}).get(event_id) for topic in ("raw", "unique", "enriched")]
        points += [created_at, sent_at]
        if any(point is None for point in points):
            continue
        times = [point for point in points if point is not None]
        for index in range(len(HOPS)):
            spans[index].append((times[index + 1] - times[index]).total_seconds() * 1000)
        totals.append((times[-1] - times[0]).total_seconds() * 1000)
    if not totals:
        return HopReport(0, 0.0, 0.0, ())
    median_total = statistics.median(totals) or 1.0
    return HopReport(
        notices=len(totals),
        total_p50_ms=percentile(totals, 0.5),
        total_p99_ms=percentile(totals, 0.99),
        hops=tuple(
            Hop(
                name,
                span,
                percentile(values, 0.5),
                percentile(values, 0.99),
                statistics.median(values) / median_total,
            )
            for (name, span), values in zip(HOPS, spans, strict=True)
        ),
    )


def render(hops: HopReport) -> str:
    if not hops.notices:
        return "  hops: no sent notice to measure"
    lines = [
        f"  hops of {hops.notices} sent notices (p50 / p99, share of the median): "
        f"total {hops.total_p50_ms:,.0f} / {hops.total_p99_ms:,.0f} ms"
    ]
    for hop in hops.hops:
        lines.append(
            f"    {hop.name:<14} {hop.span:<36} {hop.p50_ms:>8,.0f} / {hop.p99_ms:>8,.0f} ms"
            f"  {hop.share:>4.0%}"
        )
    return "\n".join(lines)


def measure(
    settings: Settings,
    conn: Conn,
    topics: Mapping[str, Sequence[str]],
    since: dt.datetime,
    *,
    exclude_event_ids: Collection[str] = (),
) -> HopReport:
    """The report for the notices of the events received since ``since``, reading the records
    of ``topics`` (``raw``: the raw topics; ``unique``; ``enriched``) written since then."""
    rows = conn.execute(
        "SELECT event_id, received_at, created_at, sent_at FROM notify.v_notices "
        "WHERE state = 'sent' AND received_at >= %s",
        (since,),
    ).fetchall()
    rows = [row for row in rows if row[0] not in exclude_event_ids]
    registry = make_registry_client(settings)
    since_ms = int(since.timestamp() * 1000)
    stamps = {
        name: _first_stamps(settings, list(topics[name]), RecordSerde(registry, kind), since_ms)
        for name, kind in TOPIC_TYPES.items()
    }
    received = {str(row[0]): row[1] for row in rows}
    return report(received, stamps, [(str(row[0]), row[2], row[3]) for row in rows])


def _event_id(value: StayEvent | EnrichedStayEvent) -> str:
    event = value.event if isinstance(value, EnrichedStayEvent) else value
    return event.event_id


def _first_stamps(
    settings: Settings,
    topics: list[str],
    serde: RecordSerde[StayEvent | EnrichedStayEvent],
    since_ms: int,
) -> dict[str, dt.datetime]:
    """Each event's first record's timestamp on ``topics``."""
    found: dict[str, dt.datetime] = {}
    for message in records_since(settings, topics, since_ms):
        raw = message.value()
        if raw is None:
            continue
        event_id = _event_id(serde.deserialize(str(message.topic()), raw))
        if event_id not in found:
            found[event_id] = dt.datetime.fromtimestamp(message.timestamp()[1] / 1000, dt.UTC)
    return found
