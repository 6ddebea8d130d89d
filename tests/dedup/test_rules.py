"""Which stay events dedup lets through: resends, repeated movement actions, replays, horizon."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.common.records import StayEvent
from services.common.streams import SourceRecord
from services.dedup.rules import Claim, Verdict, content_fingerprint, decide, is_expired
from tests.dedup.support import BASE_TIME, event

HORIZON = dt.timedelta(days=2)
NOW_MS = 1_800_000_000_000


class Memory:
    """Claims as the table keeps them: what passed is remembered."""

    def __init__(self) -> None:
        self.claims: dict[str, Claim] = {}

    def offer(self, value: dict[str, Any], offset: int, topic: str = "stays.raw.alpha") -> Verdict:
        decision = decide(
            StayEvent.from_avro(value),
            SourceRecord(topic, 0, offset),
            self.claims.get,
            HORIZON,
            NOW_MS + offset,
        )
        self.claims.update(decision.claims)
        return decision.verdict


def test_a_resent_message_is_dropped() -> None:
    memory = Memory()
    admission = event("alpha", "V1", "M1", "MVT1")
    assert memory.offer(admission, 0) is Verdict.UNIQUE
    assert memory.offer(admission, 1) is Verdict.RESENT_MESSAGE


def test_the_same_message_id_from_another_establishment_is_another_message() -> None:
    memory = Memory()
    assert memory.offer(event("alpha", "V1", "M1", "MVT1"), 0) is Verdict.UNIQUE
    assert memory.offer(event("beta", "V1", "M1", "MVT1"), 1, "stays.raw.beta") is Verdict.UNIQUE


def test_a_movement_inserted_twice_under_two_message_ids_is_dropped() -> None:
    memory = Memory()
    assert memory.offer(event("alpha", "V1", "M1", "MVT1"), 0) is Verdict.UNIQUE
    assert memory.offer(event("alpha", "V1", "M2", "MVT1"), 1) is Verdict.REPEATED_MOVEMENT_ACTION


def test_two_stays_that_reuse_a_movement_number_are_two_movements() -> None:
    # Engines that number movements per stay (the ANS examples reuse 312 across five stays).
    memory = Memory()
    verdicts = [
        memory.offer(event("alpha", f"V{stay}", f"M{stay}", "312"), stay) for stay in range(5)
    ]
    assert verdicts == [Verdict.UNIQUE] * 5


def test_two_numberings_in_one_stay_are_two_movements() -> None:
    memory = Memory()
    emergency = event("alpha", "V1", "M1", "7")
    emergency["movement"]["authority"] = "URG-SYS"
    admissions = event("alpha", "V1", "M2", "7")
    admissions["movement"]["authority"] = "GAM-SYS"
    assert memory.offer(emergency, 0) is Verdict.UNIQUE
    assert memory.offer(admissions, 1) is Verdict.UNIQUE
    resent_elsewhere = event("alpha", "V1", "M3", "7")
    resent_elsewhere["movement"]["authority"] = "GAM-SYS"
    assert memory.offer(resent_elsewhere, 2) is Verdict.REPEATED_MOVEMENT_ACTION


def test_inserting_then_cancelling_a_movement_are_two_actions() -> None:
    memory = Memory()
    assert memory.offer(event("alpha", "V1", "M1", "MVT1"), 0) is Verdict.UNIQUE
    cancel = event("alpha", "V1", "M2", "MVT1", action="CANCEL", trigger="A11")
    assert memory.offer(cancel, 1) is Verdict.UNIQUE
    again = event("alpha", "V1", "M3", "MVT1", action="CANCEL", trigger="A11")
    assert memory.offer(again, 2) is Verdict.REPEATED_MOVEMENT_ACTION


def test_two_different_corrections_of_a_movement_pass_and_a_repeated_one_does_not() -> None:
    memory = Memory()
    first = event("alpha", "V1", "M1", "MVT1", action="UPDATE", trigger="Z99", unit="NEURO")
    second = event("alpha", "V1", "M2", "MVT1", action="UPDATE", trigger="Z99", unit="CARDIO")
    first_again = {**first, "message_control_id": "M3", "event_id": "alpha:M3"}
    assert memory.offer(first, 0) is Verdict.UNIQUE
    assert memory.offer(second, 1) is Verdict.UNIQUE
    assert memory.offer(first_again, 2) is Verdict.REPEATED_MOVEMENT_ACTION


def test_a_fingerprint_is_the_content_s_whatever_the_transport_and_fixed_across_releases() -> None:
    correction = event(
        "alpha",
        "V1",
        "M1",
        "MVT1",
        action="UPDATE",
        trigger="Z99",
        unit="NEURO",
        others=(("RP", "20202020202"),),
    )
    resent = {**correction, "message_control_id": "M9", "event_id": "alpha:M9"}
    resent["sent_at"] = resent["received_at"] = BASE_TIME + dt.timedelta(hours=1)
    fingerprint = content_fingerprint(StayEvent.from_avro(correction))
    assert content_fingerprint(StayEvent.from_avro(resent)) == fingerprint
    other_unit = {**correction, "movement": {**correction["movement"], "unit": "CARDIO"}}
    assert content_fingerprint(StayEvent.from_avro(other_unit)) != fingerprint
    # Claims in the changelog hold fingerprints: the one an earlier release remembered for this
    # content (from the event's Avro value) must still be the one it gives.
    assert fingerprint == "471e559c67284d0f5f947c84"


def test_reading_the_record_that_passed_again_is_a_replay_not_a_duplicate() -> None:
    memory = Memory()
    admission = event("alpha", "V1", "M1", "MVT1")
    assert memory.offer(admission, 7) is Verdict.UNIQUE
    assert memory.offer(admission, 7) is Verdict.REPLAYED
    assert memory.offer(admission, 8) is Verdict.RESENT_MESSAGE


def test_a_message_older_than_the_horizon_is_forgotten() -> None:
    memory = Memory()
    first = event("alpha", "V1", "M1", "MVT1", received_at=BASE_TIME)
    within = {**first, "received_at": BASE_TIME + HORIZON - dt.timedelta(minutes=1)}
    beyond = {**first, "received_at": BASE_TIME + HORIZON + dt.timedelta(minutes=1)}
    assert memory.offer(first, 0) is Verdict.UNIQUE
    assert memory.offer(within, 1) is Verdict.RESENT_MESSAGE
    assert memory.offer(beyond, 2) is Verdict.UNIQUE


def test_claims_survive_their_encoding_and_expire_by_receipt_time() -> None:
    claim = Claim(SourceRecord("stays.raw.alpha", 2, 41), 1_000, 5_000)
    assert Claim.decode(claim.encode()) == claim
    horizon_ms = round(HORIZON.total_seconds() * 1000)
    assert not is_expired(claim, 1_000 + horizon_ms, HORIZON)
    assert is_expired(claim, 1_001 + horizon_ms, HORIZON)


def test_a_source_names_its_topic_partition_and_offset() -> None:
    source = SourceRecord("stays.raw.ch-toul_2", 1, 99)
    assert SourceRecord.decode(source.encode()) == source
    assert SourceRecord.from_headers([("trace", b"x"), source.header()]) == source
    assert SourceRecord.from_headers([("trace", b"x")]) is None
