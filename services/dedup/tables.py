"""The worker's faust tables (RocksDB, with changelog topics): claims and drop counts.

Values are bytes encoded here; faust stores and replicates them as they are.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import faust
from faust.types import TableT

from services.dedup.rules import Claim, is_expired


class TableClaims:
    def __init__(self, table: TableT[bytes, bytes]) -> None:
        self.table = table

    def get(self, identity: str) -> Claim | None:
        data = self.table.get(identity.encode("utf-8"))
        return None if data is None else Claim.decode(data)

    def put(self, identity: str, claim: Claim) -> None:
        self.table[identity.encode("utf-8")] = claim.encode()


class TableCounts:
    """Counters that survive restarts; each partition keeps its own, ``totals`` sums them."""

    def __init__(self, table: TableT[bytes, bytes]) -> None:
        self.table = table

    def add(self, name: str) -> None:
        key = name.encode("ascii")
        self.table[key] = str(int(self.table.get(key, b"0")) + 1).encode("ascii")

    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for key, value in self.table.items():
            name = key.decode("ascii")
            totals[name] = totals.get(name, 0) + int(value)
        return totals


async def sweep(
    app: faust.App,
    table: TableT[bytes, bytes],
    latest_received_ms: dict[int, int],
    horizon: dt.timedelta,
) -> int:
    """Delete claims older than the horizon from the active partitions, store and changelog;
    how many. A partition's clock is the latest receipt time seen in it.

    faust tables offer no expiry for plain keys, so this reaches into the RocksDB store. Each
    key is read again just before it is deleted: the stream may have renewed it meanwhile.
    """
    store: Any = table.data
    changelog = table.changelog_topic.get_topic_name()
    removed = 0
    for tp in sorted(app.assignor.assigned_actives()):
        latest = latest_received_ms.get(tp.partition)
        if tp.topic != changelog or latest is None:
            continue
        db = store._db_for_partition(tp.partition)
        expired = [
            key
            for key, value in db.items()
            if key != store.offset_key and is_expired(Claim.decode(value), latest, horizon)
        ]
        for index, key in enumerate(expired):
            value = db.get(key)
            if value is not None and is_expired(Claim.decode(value), latest, horizon):
                db.delete(key)
                table.send_changelog(tp.partition, key, None)
                removed += 1
            if index % 1000 == 999:
                await asyncio.sleep(0)
    return removed
