"""The published corpus (tests/gateway/corpus) through the gateway's pure intake: each message
gets the ACK code its manifest expects, with the error where the manifest says, an ACK that
hl7apy reads as HL7's own ACK structure, and, for a movement, the StayEvent the manifest states.
The same corpus goes through a running gateway in test_corpus_gateway.py."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest

from services.common.establishments import establishments_by_facility
from services.common.movements import movement_key
from services.common.records import StayEvent
from services.common.streams import SourceRecord
from services.dedup.rules import Claim, Verdict, decide
from services.gateway import pam
from services.gateway.ack import build_ack, code_to_send
from services.gateway.covid import load_covid_mapping
from services.gateway.intake import IntakeRules, take_in
from tests.gateway.corpus import CORPUS, ExpectedMerge, Published
from tests.gateway.independent import parse_ack

RULES = IntakeRules(establishments_by_facility(), load_covid_mapping(), ZoneInfo("Europe/Paris"))
NAMES = [published.file for published in CORPUS]


def event_fields(value: dict[str, object]) -> dict[str, object]:
    """The StayEvent's fields the manifest states, read from a published value."""
    movement = value["movement"]
    assert isinstance(movement, dict)
    team = value["care_team"]
    assert isinstance(team, list)
    return {
        "kind": value["kind"],
        "action": value["action"],
        "establishment": value["establishment"],
        "stay_key": value["stay_key"],
        "movement_id": movement["movement_id"],
        "authority": movement["authority"],
        "unit": movement["unit"],
        "gp_rpps": next((member["rpps"] for member in team if member["role"] == "ODRP"), None),
    }


def expected_fields(published: Published) -> dict[str, object]:
    assert published.event is not None
    return {
        "kind": published.event.kind,
        "action": published.event.action,
        "establishment": published.establishment,
        "stay_key": published.event.stay_key,
        "movement_id": published.event.movement_id,
        "authority": published.event.authority,
        "unit": published.event.unit,
        "gp_rpps": published.event.gp_rpps,
    }


def merge_fields(value: dict[str, object]) -> ExpectedMerge:
    """The PatientMerge's fields the manifest states, read from a published value."""
    patient = value["patient"]
    assert isinstance(patient, dict)
    return ExpectedMerge(surviving_ipp=patient["ipp"], merged_ipp=str(value["merged_ipp"]))


def test_the_corpus_is_broad_and_every_message_keeps_its_source() -> None:
    assert len(CORPUS) >= 50
    assert len({published.repository for published in CORPUS}) >= 8
    triggers = {published.trigger for published in CORPUS}
    # Every trigger the gateway takes in, but A07, A52 and A53: no published one found yet.
    assert pam.MOVEMENT_TRIGGERS - {"A07", "A52", "A53"} <= triggers
    assert {pam.MERGE_TRIGGER, *pam.IDENTITY_TRIGGERS} <= triggers
    for published in CORPUS:
        assert published.repository.count("/") == 1 and published.path, published.file
        assert len(published.commit) == 40 and int(published.commit, 16) >= 0, published.file
        # MSA-1: AA, AE or AR, or in enhanced mode (MSH-15/16 valued) the commit ACK's CA, CE, CR.
        assert published.ack in {"AA", "AE", "AR", "CA", "CE", "CR"}, published.file
        # An error states its ERR; a published movement states its event.
        accepted = published.ack in {"AA", "CA"}
        assert (published.error_code is not None) == (not accepted), published.file
        published_record = published.event is not None or published.merge is not None
        assert published_record == (published.outcome == "PUBLISHED"), published.file
        assert published.event is None or published.merge is None, published.file
    outcomes = Counter(published.ack for published in CORPUS)
    assert {"AA", "AE", "AR"} <= set(outcomes)
    assert {published.outcome for published in CORPUS} == {
        "PUBLISHED",
        "KEPT",
        "IGNORED",
        "ERROR",
        "REJECTED",
    }


def test_the_ans_examples_reuse_movement_312_across_five_stays() -> None:
    stays = {
        published.event.stay_key
        for published in CORPUS
        if published.event
        and published.event.movement_id == "312"
        and published.establishment == "chrunancy"
    }
    assert len(stays) == 5


def test_five_stays_reusing_movement_312_are_five_movements_for_dedup() -> None:
    # As published, each stay's movement is 312 of the same numbering (ZBE-1 312^CHU-X^000897406):
    # only the stay tells them apart, and dedup must let all five admissions through.
    events = []
    for published in CORPUS:
        if (
            published.event
            and published.event.movement_id == "312"
            and published.establishment == "chrunancy"
        ):
            intake = take_in(published.raw, RULES, published.received_at, published.establishment)
            assert intake.publication is not None
            assert isinstance(intake.publication.value, StayEvent)
            events.append(intake.publication.value)
    assert {event.movement.authority for event in events} == {"CHU-X"}
    assert len({movement_key(event) for event in events}) == len(events) == 5
    claims: dict[str, Claim] = {}
    verdicts = []
    for offset, event in enumerate(events):
        source = SourceRecord("stays.raw.chrunancy", 0, offset)
        # Dedup reads the Avro value.
        decision = decide(event, source, claims.get, dt.timedelta(days=2), offset)
        claims.update(decision.claims)
        verdicts.append(decision.verdict)
    assert verdicts.count(Verdict.UNIQUE) == 5
    assert set(verdicts) <= {
        Verdict.UNIQUE,
        Verdict.REPEATED_MOVEMENT_ACTION,
        Verdict.RESENT_MESSAGE,
    }


@pytest.mark.parametrize("published", CORPUS, ids=NAMES)
def test_a_published_message_gets_the_outcome_its_manifest_states(published: Published) -> None:
    intake = take_in(published.raw, RULES, published.received_at, published.establishment)

    answer = code_to_send(intake.context, intake.code)
    assert (answer, intake.outcome.value) == (published.ack, published.outcome)
    if published.error_code is not None:
        first = intake.problems[0]
        location = str(first.location) if first.location else None
        assert (first.code.code, location) == (published.error_code, published.error_location)
    if published.event is not None:
        assert intake.publication is not None
        assert intake.publication.stream == "stays"
        assert event_fields(intake.publication.value.to_avro()) == expected_fields(published)
    elif published.merge is not None:
        assert intake.publication is not None
        assert intake.publication.stream == "merges"
        assert merge_fields(intake.publication.value.to_avro()) == published.merge
    else:
        assert intake.publication is None


@pytest.mark.parametrize("published", CORPUS, ids=NAMES)
def test_the_ack_to_a_published_message_is_an_hl7_ack(published: Published) -> None:
    intake = take_in(published.raw, RULES, published.received_at, published.establishment)
    code = code_to_send(intake.context, intake.code)
    assert code is not None
    payload = build_ack(
        intake.context, code, intake.problems, control_id="ACK1", now=published.received_at
    )

    ack = parse_ack(
        payload.decode(intake.context.codec if intake.context else "ascii"),
        strict=published.ack_strict,
    )

    assert ack.msa.msa_1.value == published.ack
    assert ack.msa.msa_2.value == published.echoed_control_id
