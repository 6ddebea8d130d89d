"""The operator's command line against the real stack."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from services.cli.__main__ import main
from services.cli.audit import operator_login
from services.common.deadletter import DeadLetters, read_error_headers
from services.common.patient_data import HIDDEN, hl7_outline
from services.common.serde import AvroSerde
from tests.common.test_patient_data import FRAME
from tests.common.test_serde import consume_one, stay_event

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("tests_environment")]


def test_tail_decodes_records_and_hides_patient_data_unless_revealed_for_a_reason(
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    serde_factory: Callable[[str], AvroSerde],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    audit = tmp_path / "audit.log"
    monkeypatch.setenv("HARPICOOP_AUDIT_LOG", str(audit))
    topic = topic_factory("harpicoop.StayEvent", partitions=1)  # "the last two" is then exact
    producer = producer_factory()
    serde = serde_factory("harpicoop.StayEvent")
    for visit in ("V1", "V2", "V3"):
        producer.produce(
            topic, key=f"chrunancy:{visit}", value=serde.serialize(topic, stay_event(visit))
        )
    producer.flush(10)

    assert main(["tail", topic, "-n", "2", "--schema", "harpicoop.StayEvent"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["key"] for line in lines] == ["chrunancy:V2", "chrunancy:V3"]
    assert lines[0]["value"]["kind"] == "ADMISSION"
    assert lines[0]["value"]["patient"]["family_name"] == HIDDEN
    assert "Lefèvre" not in json.dumps(lines, ensure_ascii=False)
    assert not audit.exists()

    with pytest.raises(SystemExit):  # no reason, nothing shown
        main(["tail", topic, "-n", "1", "--schema", "harpicoop.StayEvent", "--reveal"])
    assert "Lefèvre" not in capsys.readouterr().out

    revealed = ["tail", topic, "-n", "2", "--schema", "harpicoop.StayEvent", "--reveal"]
    assert main([*revealed, "--reason", "INC-1234: GP says no notice arrived"]) == 0
    assert "Lefèvre" in capsys.readouterr().out
    (entry,) = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    assert entry["topic"] == topic and entry["operator"] == operator_login()
    assert entry["offsets"] == {"0": {"first": 1, "last": 2}}
    assert entry["reason"] == "INC-1234: GP says no notice arrived"

    # No audit line, nothing shown.
    monkeypatch.setenv("HARPICOOP_AUDIT_LOG", str(audit / "not-a-folder" / "audit.log"))
    assert main([*revealed, "--reason", "INC-1235"]) == 1
    assert "Lefèvre" not in capsys.readouterr().out


def test_tail_of_the_archive_shows_the_frame_outline(
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    serde_factory: Callable[[str], AvroSerde],
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = topic_factory("harpicoop.RawMessage", partitions=1)
    serde = serde_factory("harpicoop.RawMessage")
    at = dt.datetime.now(dt.UTC)
    archived = {
        "received_at": at,
        "peer": "10.0.0.7:41000",
        "raw": FRAME,
        "size": len(FRAME),
        "truncated": False,
        "outcome": "PUBLISHED",
    }
    producer = producer_factory()
    producer.produce(topic, key=b"chrunancy", value=serde.serialize(topic, archived))
    producer.flush(10)

    assert main(["tail", topic, "--schema", "harpicoop.RawMessage"]) == 0
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert line["value"]["raw"] == hl7_outline(FRAME)
    assert "LEFEVRE" not in json.dumps(line)


def test_dead_letters_are_replayed_to_their_source_once(
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, dead = topic_factory(), topic_factory()
    DeadLetters(producer_factory(), "enrich", topic=dead).send(
        key=b"chrunancy:V7", value=b"payload", reason="unknown practitioner", source_topic=source
    )
    assert main(["replay-dead-letters", dead]) == 0
    assert "replayed 1 record(s)" in capsys.readouterr().out
    replayed = consume_one(consumer_factory(source))
    assert (replayed.key(), replayed.value()) == (b"chrunancy:V7", b"payload")
    assert read_error_headers(replayed.headers()) == {}

    assert main(["replay-dead-letters", dead]) == 0
    assert "replayed 0 record(s)" in capsys.readouterr().out


def test_unroutable_events_go_back_to_enrichment(
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
    serde_factory: Callable[[str], AvroSerde],
    capsys: pytest.CaptureFixture[str],
) -> None:
    unroutable, unique = (
        topic_factory("harpicoop.UnroutableStayEvent"),
        topic_factory("harpicoop.StayEvent"),
    )
    event = stay_event("V9")
    record = {
        "event": event,
        "reason": "UNKNOWN_RPPS",
        "gp_rpps": "19990000001",
        "detail": "unknown",
        "detected_at": event["received_at"],
    }
    producer = producer_factory()
    producer.produce(
        unroutable,
        key=event["stay_key"],
        value=serde_factory("harpicoop.UnroutableStayEvent").serialize(unroutable, record),
    )
    producer.flush(10)

    assert main(["reenrich", "--from", unroutable, "--to", unique]) == 0
    assert "sent 1 unroutable event(s)" in capsys.readouterr().out
    again = consume_one(consumer_factory(unique))
    assert serde_factory("harpicoop.StayEvent").deserialize(unique, again.value()) == event
