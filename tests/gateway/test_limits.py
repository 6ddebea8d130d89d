"""The edge's budgets as a specification: who gets a connection slot, what refused input is
archived, how often a flood is reported."""

from __future__ import annotations

from services.common.settings import read_config
from services.gateway.limits import (
    REFUSED_PER_ADDRESS,
    REFUSED_TOTAL,
    ConnectionSlots,
    LogThrottle,
    RefusedArchive,
    RefusedArchiveBudget,
)
from services.gateway.server import ServerLimits

ENGINE = "10.1.0.7"
OTHER = "10.1.0.8"


def test_connections_up_to_the_caps_are_admitted() -> None:
    slots: ConnectionSlots[str] = ConnectionSlots(per_address=2, total=3)
    assert slots.admit(ENGINE, "a").admitted
    assert slots.admit(ENGINE, "b").admitted
    assert slots.admit(OTHER, "c").admitted
    assert len(slots) == 3 and slots.held_by(ENGINE) == 2


def test_a_newcomer_over_its_address_cap_displaces_the_oldest_unproven_connection() -> None:
    slots: ConnectionSlots[str] = ConnectionSlots(per_address=2, total=10)
    slots.admit(ENGINE, "noise1")
    slots.admit(ENGINE, "noise2")
    admission = slots.admit(ENGINE, "engine")
    assert admission.admitted and admission.displaced == ["noise1"]
    assert slots.held_by(ENGINE) == 2


def test_proven_connections_are_never_displaced_and_a_full_address_refuses() -> None:
    slots: ConnectionSlots[str] = ConnectionSlots(per_address=2, total=10)
    for holder in ("engine1", "engine2"):
        slots.admit(ENGINE, holder)
        slots.prove(holder)
    refused = slots.admit(ENGINE, "noise")
    assert not refused.admitted and refused.refused_by == REFUSED_PER_ADDRESS
    assert refused.displaced == []
    assert slots.held_by(ENGINE) == 2


def test_over_the_total_cap_the_oldest_unproven_connection_of_any_address_gives_way() -> None:
    slots: ConnectionSlots[str] = ConnectionSlots(per_address=5, total=2)
    slots.admit(OTHER, "noise")
    slots.admit(ENGINE, "engine1")
    slots.prove("engine1")
    admission = slots.admit(ENGINE, "engine2")
    assert admission.admitted and admission.displaced == ["noise"]
    slots.prove("engine2")
    refused = slots.admit(OTHER, "late")
    assert not refused.admitted and refused.refused_by == REFUSED_TOTAL


def test_a_connection_answered_as_unknown_goes_back_among_the_unproven() -> None:
    slots: ConnectionSlots[str] = ConnectionSlots(per_address=2, total=10)
    slots.admit(ENGINE, "unknown")
    slots.admit(ENGINE, "noise")
    slots.prove("unknown")  # while its frame is answered
    slots.prove("unknown", False)  # the frame came from no known establishment
    assert slots.admit(ENGINE, "engine").displaced == ["noise"]
    assert slots.admit(ENGINE, "engine2").displaced == ["unknown"]


def test_a_released_slot_is_free_again_and_releasing_twice_is_harmless() -> None:
    slots: ConnectionSlots[str] = ConnectionSlots(per_address=1, total=1)
    slots.admit(ENGINE, "a")
    slots.prove("a")
    slots.release("a")
    slots.release("a")
    assert len(slots) == 0
    assert slots.admit(ENGINE, "b").admitted


def test_refused_frames_are_archived_up_to_the_frame_budget_then_refill_over_the_minute() -> None:
    archive = RefusedArchive(RefusedArchiveBudget(frames_per_minute=60, bytes_per_minute=10**9))
    admitted = sum(archive.admit(ENGINE, 100, now=0.0) for _ in range(100))
    assert admitted == 60
    assert not archive.admit(ENGINE, 100, now=0.5)
    assert archive.admit(ENGINE, 100, now=1.1)  # one frame a second comes back
    assert archive.admit(OTHER, 100, now=1.1)  # another address has its own budget


def test_refused_frames_are_archived_up_to_the_byte_budget() -> None:
    archive = RefusedArchive(RefusedArchiveBudget(frames_per_minute=1000, bytes_per_minute=1000))
    assert archive.admit(ENGINE, 600, now=0.0)
    assert not archive.admit(ENGINE, 600, now=0.0)
    assert archive.admit(ENGINE, 400, now=0.0)
    assert archive.admit(ENGINE, 600, now=36.0)  # 600 bytes back after 36 s


def test_a_zero_budget_archives_nothing() -> None:
    archive = RefusedArchive(RefusedArchiveBudget(frames_per_minute=0, bytes_per_minute=0))
    assert not archive.admit(ENGINE, 1, now=0.0)


def test_addresses_beyond_the_memory_bound_are_forgotten_oldest_first() -> None:
    archive = RefusedArchive(RefusedArchiveBudget(frames_per_minute=1), max_addresses=3)
    for index in range(10):
        assert archive.admit(f"10.0.0.{index}", 1, now=0.0)
    assert len(archive._buckets) <= 3


def test_a_flood_is_reported_at_once_then_at_most_once_a_minute_with_its_count() -> None:
    throttle = LogThrottle(interval=60.0)
    reports = [throttle.note(ENGINE, now=float(second)) for second in range(125)]
    assert [(second, count) for second, count in enumerate(reports) if count] == [
        (0, 1),
        (60, 60),
        (120, 60),
    ]
    assert throttle.note(OTHER, now=1.0) == 1


def test_the_caps_and_budgets_are_read_from_the_environment() -> None:
    limits = read_config(
        ServerLimits,
        {
            "MLLP_MAX_CONNECTIONS_PER_ADDRESS": "4",
            "MLLP_MAX_CONNECTIONS": "40",
            "MLLP_IDLE_TIMEOUT_SECONDS": "30",
            "MLLP_TLS_HANDSHAKE_TIMEOUT_SECONDS": "5",
        },
    )
    budget = read_config(RefusedArchiveBudget, {"MLLP_REFUSED_ARCHIVE_FRAMES_PER_MINUTE": "6"})
    assert (limits.max_connections_per_address, limits.max_connections) == (4, 40)
    assert (limits.idle_timeout, limits.tls_handshake_timeout) == (30.0, 5.0)
    assert (budget.frames_per_minute, budget.bytes_per_minute) == (6, 1024 * 1024)
    assert read_config(ServerLimits, {}) == ServerLimits()
