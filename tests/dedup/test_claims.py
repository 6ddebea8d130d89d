"""What dedup remembers per partition: a batch's claims count only once committed, and the
changelog records rebuild exactly the committed state."""

from __future__ import annotations

import collections
import datetime as dt

from services.common.streams import SourceRecord
from services.dedup.claims import ClaimStore
from services.dedup.rules import Claim

HOUR_MS = 3_600_000
HORIZON = dt.timedelta(hours=2)


def claim(offset: int, received_ms: int = 0) -> Claim:
    return Claim(SourceRecord("stays.raw.alpha", 0, offset), received_ms, received_ms)


def store_with(partition: int = 0) -> ClaimStore:
    store = ClaimStore()
    store.load(partition, ())
    return store


def test_a_batch_sees_its_own_claims_and_they_count_only_once_committed() -> None:
    store = store_with()
    store.put(0, "message|alpha|M1", claim(1))
    assert store.get(0, "message|alpha|M1") == claim(1)
    store.abort()
    assert store.get(0, "message|alpha|M1") is None

    store.put(0, "message|alpha|M1", claim(1))
    store.commit()
    assert store.get(0, "message|alpha|M1") == claim(1)
    assert store.changes() == {}


def test_the_changelog_records_of_a_batch_rebuild_the_committed_state() -> None:
    store = store_with()
    store.put(0, "message|alpha|M1", claim(1))
    store.put(0, "movement|alpha:V1|MVT1|INSERT", claim(1))
    store.add(0, collections.Counter({"dropped.resent_message": 2}))
    first = store.changes()[0]
    store.commit()
    store.add(0, collections.Counter({"dropped.resent_message": 1}))
    second = store.changes()[0]
    store.commit()

    rebuilt = ClaimStore()
    rebuilt.load(0, [*first, *second])
    assert rebuilt.get(0, "message|alpha|M1") == claim(1)
    assert rebuilt.get(0, "movement|alpha:V1|MVT1|INSERT") == claim(1)
    # A count's record holds the partition's total, so the latest one is enough.
    assert rebuilt.totals() == store.totals() == {"dropped.resent_message": 3}


def test_claims_older_than_the_horizon_become_tombstones_in_the_partition_clock() -> None:
    store = store_with()
    store.put(0, "message|alpha|OLD", claim(1, received_ms=0))
    store.put(0, "message|alpha|NEW", claim(2, received_ms=2 * HOUR_MS))
    store.commit()
    store.see(0, 2 * HOUR_MS + 1)

    assert store.sweep(HORIZON) == 1
    tombstones = store.changes()[0]
    assert tombstones == [(b"message|alpha|OLD", None)]
    store.commit()
    assert store.get(0, "message|alpha|OLD") is None
    rebuilt = ClaimStore()
    rebuilt.load(0, [(b"message|alpha|OLD", claim(1).encode()), *tombstones])
    assert rebuilt.get(0, "message|alpha|OLD") is None


def test_a_claim_renewed_in_the_batch_is_not_swept() -> None:
    store = store_with()
    store.put(0, "message|alpha|M1", claim(1, received_ms=0))
    store.commit()
    store.see(0, 3 * HOUR_MS)
    store.put(0, "message|alpha|M1", claim(5, received_ms=3 * HOUR_MS))
    assert store.sweep(HORIZON) == 0
    store.commit()
    assert store.get(0, "message|alpha|M1") == claim(5, received_ms=3 * HOUR_MS)


def test_partitions_are_apart_and_a_dropped_one_is_forgotten() -> None:
    store = store_with(0)
    store.load(1, ())
    store.put(0, "message|alpha|M1", claim(1))
    store.commit()
    assert store.get(1, "message|alpha|M1") is None
    store.drop([0])
    assert store.held() == {1}
