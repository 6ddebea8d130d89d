"""Budgets at the gateway's edge: the connections an address may hold, and how much of the input
refused from one address is archived. Pure: no sockets, the time is passed in.

Connections. A cap per source address and a cap in total bound what the listener holds, without
letting noise lock engines out. A connection is *proven* once it delivered a complete frame from
a known establishment; until then it is *unproven*. A new connection arriving over a cap takes the
place of the oldest unproven connection (of its own address for the per-address cap, of any
address for the total cap), which is closed; only when every connection held is proven is the
newcomer refused. An engine sends its first message within milliseconds of connecting, so it is
proven long before enough newer connections could displace it, while connections that only send
noise or never-ending frames are displaced by whoever comes next. The server's idle timer is reset
by complete frames only, so noise never keeps even an uncontested slot beyond the idle time-out.

Refused input. Frames refused before anyone vouched for them (unreadable, oversized, or from an
unknown sending facility) are archived within a token bucket per source address: so many frames
and so many bytes a minute. Past it they are only counted, and the count is reported at most once
a minute per address (``LogThrottle``), so a flood costs neither the archive nor the log.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from services.common.settings import setting

H = TypeVar("H")

REFUSED_PER_ADDRESS = "per_address_cap"
REFUSED_TOTAL = "total_cap"


@dataclass(frozen=True)
class Admission(Generic[H]):
    """The answer to a new connection: admitted or refused (with the cap), and who made room."""

    admitted: bool
    refused_by: str | None = None
    displaced: list[H] = field(default_factory=list)


class ConnectionSlots(Generic[H]):
    """Who holds a connection slot, by source address; ``H`` is whatever the server closes."""

    def __init__(self, per_address: int, total: int) -> None:
        self.per_address = per_address
        self.total = total
        self._by_address: dict[str, OrderedDict[H, bool]] = {}
        """Each address's holders, oldest first, with whether each is proven."""
        self._address_of: dict[H, str] = {}
        self._unproven: OrderedDict[H, None] = OrderedDict()
        """Every unproven holder, oldest first."""

    def __len__(self) -> int:
        return len(self._address_of)

    def held_by(self, address: str) -> int:
        return len(self._by_address.get(address, ()))

    def admit(self, address: str, holder: H) -> Admission[H]:
        displaced: list[H] = []
        held = self._by_address.get(address)
        if held is not None and len(held) >= self.per_address:
            oldest = next((item for item, proven in held.items() if not proven), None)
            if oldest is None:
                return Admission(False, REFUSED_PER_ADDRESS)
            self.release(oldest)
            displaced.append(oldest)
        elif len(self._address_of) >= self.total:  # (a displaced holder freed a slot in total)
            if not self._unproven:
                return Admission(False, REFUSED_TOTAL)
            oldest = next(iter(self._unproven))
            self.release(oldest)
            displaced.append(oldest)
        self._add(address, holder)
        return Admission(True, None, displaced)

    def prove(self, holder: H, proven: bool = True) -> None:
        """Mark a holder proven (or no longer: it goes back among the unproven as the newest)."""
        address = self._address_of.get(holder)
        if address is None:
            return
        held = self._by_address[address]
        held[holder] = proven
        if proven:
            self._unproven.pop(holder, None)
        else:
            held.move_to_end(holder)
            self._unproven[holder] = None
            self._unproven.move_to_end(holder)

    def release(self, holder: H) -> None:
        """Free the holder's slot; releasing twice is harmless."""
        address = self._address_of.pop(holder, None)
        if address is None:
            return
        held = self._by_address[address]
        del held[holder]
        if not held:
            del self._by_address[address]
        self._unproven.pop(holder, None)

    def _add(self, address: str, holder: H) -> None:
        self._by_address.setdefault(address, OrderedDict())[holder] = False
        self._address_of[holder] = address
        self._unproven[holder] = None


class LogThrottle:
    """At most one report per key and interval: the first event is reported at once, later
    ones are counted and reported together once the interval has passed."""

    def __init__(self, interval: float = 60.0, max_keys: int = 10_000) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self._pending: dict[str, int] = {}
        self._last_report: dict[str, float] = {}

    def note(self, key: str, now: float, count: int = 1) -> int | None:
        """Count events; the number to report now, or None when a report was made recently."""
        self._pending[key] = self._pending.get(key, 0) + count
        last = self._last_report.get(key)
        if last is not None and now - last < self.interval:
            return None
        self._forget_old(now)
        self._last_report[key] = now
        return self._pending.pop(key)

    def _forget_old(self, now: float) -> None:
        if len(self._last_report) < self.max_keys:
            return
        # Keys quiet for an interval are forgotten; their next event is reported at once anyway.
        for key, last in list(self._last_report.items()):
            if now - last >= self.interval:
                del self._last_report[key]
                self._pending.pop(key, None)


@dataclass(frozen=True)
class RefusedArchiveBudget:
    """What of the input refused from one source address is archived, per minute."""

    frames_per_minute: int = setting(60, "MLLP_REFUSED_ARCHIVE_FRAMES_PER_MINUTE", minimum=0)
    bytes_per_minute: int = setting(1024 * 1024, "MLLP_REFUSED_ARCHIVE_BYTES_PER_MINUTE", minimum=0)


@dataclass
class _Bucket:
    frames: float
    size: float
    updated: float


class RefusedArchive:
    """The token buckets of ``RefusedArchiveBudget``, one per source address."""

    def __init__(self, budget: RefusedArchiveBudget, max_addresses: int = 10_000) -> None:
        self.budget = budget
        self.max_addresses = max_addresses
        self._buckets: dict[str, _Bucket] = {}
        self.log = LogThrottle(60.0, max_addresses)
        """Reports of frames not archived, per address."""

    def admit(self, address: str, size: int, now: float) -> bool:
        """Whether a refused frame of ``size`` archived bytes from ``address`` may be archived."""
        frames_cap, bytes_cap = self.budget.frames_per_minute, self.budget.bytes_per_minute
        bucket = self._buckets.get(address)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[address] = _Bucket(frames_cap, bytes_cap, now)
        else:
            elapsed = max(now - bucket.updated, 0.0)
            bucket.frames = min(frames_cap, bucket.frames + elapsed * frames_cap / 60.0)
            bucket.size = min(bytes_cap, bucket.size + elapsed * bytes_cap / 60.0)
            bucket.updated = now
        if bucket.frames < 1 or bucket.size < size:
            return False
        bucket.frames -= 1
        bucket.size -= size
        return True

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self.max_addresses:
            return
        # A bucket untouched for a minute is full again: forgetting it changes nothing.
        for address, bucket in list(self._buckets.items()):
            if now - bucket.updated >= 60.0:
                del self._buckets[address]
        while len(self._buckets) >= self.max_addresses:  # many addresses at once: oldest first
            del self._buckets[next(iter(self._buckets))]
