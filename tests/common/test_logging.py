"""Logs are JSON with ids, and patient-identifying fields never reach them."""

import json

import pytest

from services.common.logging import configure_logging, drop_patient_fields


def test_patient_fields_are_removed_at_any_depth() -> None:
    event = drop_patient_fields(
        None,
        "info",
        {
            "event": "stay event published",
            "event_id": "chrunancy:MSG0001",
            "ipp": "123456",
            "record": {"stay_key": "chrunancy:V1", "patient": {"family_name": "Durand"}},
            "care_team": [{"rpps": "10001234567", "birth_date": "1950-01-01"}],
        },
    )
    assert event == {
        "event": "stay event published",
        "event_id": "chrunancy:MSG0001",
        "record": {"stay_key": "chrunancy:V1"},
        "care_team": [{"rpps": "10001234567"}],
        "redacted_fields": ["care_team[].birth_date", "ipp", "record.patient"],
    }


def test_a_service_logs_one_json_object_per_line_without_patient_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = configure_logging("gateway")
    log.info("message accepted", event_id="cpn:42", family_name="Lévêque", given_name="Zoé")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["service"] == "gateway"
    assert record["event_id"] == "cpn:42"
    assert record["level"] == "info"
    assert "Lévêque" not in line and "Zoé" not in line
    assert record["redacted_fields"] == ["family_name", "given_name"]


def test_a_logger_made_before_configuration_logs_json_after_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from services.common.logging import get_logger

    early = get_logger(component="mllp")
    configure_logging("gateway")
    early.info("listening", port=2575)
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert record["component"] == "mllp" and record["port"] == 2575
