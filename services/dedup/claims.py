"""What dedup remembers, per partition: the claims (``rules.Claim``, keyed by identity) and the
drop counts, held in memory and kept in a compacted changelog topic (no Kafka here: the records
are read and written by the processor).

The changelog's partition N holds what the records of every raw topic's partition N claimed
(a stay's events all come through one partition number). Its records:

- a claim: the identity (``message|…`` or ``movement|…``) as key, ``Claim.encode()`` as value;
  a tombstone once the claim is older than the horizon;
- a count: ``count|<outcome>`` as key, the partition's total as ASCII digits.

A batch's changes are staged, seen by the batch's own later records, and become the state only
when its transaction commits; an aborted batch leaves the state as it was, as it leaves the
changelog.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.dedup.rules import Claim, is_expired

COUNT_PREFIX = "count|"

Change = tuple[bytes, bytes | None]
"""A changelog record: key, and value or None (a tombstone)."""


@dataclass
class PartitionState:
    claims: dict[str, Claim] = field(default_factory=dict)
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    latest_received_ms: int = 0
    """The latest receipt time seen in the partition: the clock of the expiry sweep."""

    def see(self, received_ms: int) -> None:
        self.latest_received_ms = max(self.latest_received_ms, received_ms)


@dataclass
class _Staged:
    claims: dict[str, Claim | None] = field(default_factory=dict)
    counts: collections.Counter[str] = field(default_factory=collections.Counter)


class ClaimStore:
    def __init__(self) -> None:
        self._partitions: dict[int, PartitionState] = {}
        self._staged: dict[int, _Staged] = {}

    # --- partitions coming and going -------------------------------------------------------

    def held(self) -> set[int]:
        return set(self._partitions)

    def load(self, partition: int, records: Iterable[Change]) -> PartitionState:
        """A partition's state from its changelog, read from the beginning (the latest record of
        a key wins, a tombstone deletes it)."""
        state = PartitionState()
        for key, value in records:
            name = key.decode("utf-8")
            if name.startswith(COUNT_PREFIX):
                outcome = name.removeprefix(COUNT_PREFIX)
                if value is None:
                    state.counts.pop(outcome, None)
                else:
                    state.counts[outcome] = int(value)
            elif value is None:
                state.claims.pop(name, None)
            else:
                claim = Claim.decode(value)
                state.claims[name] = claim
                state.see(claim.received_at_ms)
        self._partitions[partition] = state
        return state

    def drop(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._partitions.pop(partition, None)
            self._staged.pop(partition, None)

    # --- a batch ---------------------------------------------------------------------------

    def get(self, partition: int, identity: str) -> Claim | None:
        staged = self._staged.get(partition)
        if staged is not None and identity in staged.claims:
            return staged.claims[identity]
        return self._partitions[partition].claims.get(identity)

    def put(self, partition: int, identity: str, claim: Claim) -> None:
        self._stage(partition).claims[identity] = claim

    def add(self, partition: int, counts: collections.Counter[str]) -> None:
        self._stage(partition).counts.update(counts)

    def see(self, partition: int, received_ms: int) -> None:
        # Not staged: a receipt time seen in an aborted batch is seen again when it is read
        # again, and only moves the sweep's clock.
        self._partitions[partition].see(received_ms)

    def sweep(self, horizon: dt.timedelta) -> int:
        """Stage the deletion of every claim older than the horizon, in each partition's own
        clock; how many."""
        removed = 0
        for partition, state in self._partitions.items():
            staged = self._stage(partition)
            for identity, claim in state.claims.items():
                if identity not in staged.claims and is_expired(
                    claim, state.latest_received_ms, horizon
                ):
                    staged.claims[identity] = None
                    removed += 1
        return removed

    def changes(self) -> dict[int, list[Change]]:
        """The changelog records of the staged changes, per partition."""
        changes: dict[int, list[Change]] = {}
        for partition, staged in self._staged.items():
            records = changes.setdefault(partition, [])
            for identity, claim in staged.claims.items():
                records.append(
                    (identity.encode("utf-8"), None if claim is None else claim.encode())
                )
            totals = self._partitions[partition].counts
            for outcome, count in staged.counts.items():
                total = totals.get(outcome, 0) + count
                records.append((f"{COUNT_PREFIX}{outcome}".encode("ascii"), str(total).encode()))
        return changes

    def commit(self) -> None:
        for partition, staged in self._staged.items():
            state = self._partitions[partition]
            for identity, claim in staged.claims.items():
                if claim is None:
                    state.claims.pop(identity, None)
                else:
                    state.claims[identity] = claim
            state.counts.update(staged.counts)
        self._staged.clear()

    def abort(self) -> None:
        self._staged.clear()

    def _stage(self, partition: int) -> _Staged:
        staged = self._staged.get(partition)
        if staged is None:
            staged = self._staged[partition] = _Staged()
        return staged

    # --- reporting -------------------------------------------------------------------------

    def claim_count(self) -> int:
        return sum(len(state.claims) for state in self._partitions.values())

    def totals(self) -> dict[str, int]:
        """The counts of every partition held, summed."""
        totals: collections.Counter[str] = collections.Counter()
        for state in self._partitions.values():
            totals.update(state.counts)
        return dict(totals)
