"""The typed records are the schemas': regenerated, they are the committed module; any value of
any released version of a topic's schema reads into its type, and the type writes it back."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any, cast

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common import records
from services.common.records_codegen import TARGET, generate
from services.common.schemas import expanded_schema_json, history, short_name
from services.common.serde import AvroRecord
from services.common.topics import value_schemas
from tests.common.test_serde import stay_event

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "bytes": st.binary(max_size=20),
    "string": st.text(max_size=12),
}


def test_the_committed_module_is_what_the_schemas_give() -> None:
    assert TARGET.read_text(encoding="utf-8") == generate(), (
        "services/common/records.py differs from schemas/: regenerate it with "
        "`python -m services.common.records_codegen`"
    )


def _values(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Any Avro value of ``schema``, as fastavro reads it (logical types as Python objects)."""
    if isinstance(schema, str):
        return PRIMITIVES[schema] if schema in PRIMITIVES else _values(named[schema], named)
    if isinstance(schema, list):
        return st.one_of([_values(branch, named) for branch in schema])
    kind = schema["type"]
    if isinstance(kind, (dict, list)):
        return _values(kind, named)
    logical = schema.get("logicalType")
    if logical == "timestamp-millis":
        # Within the years datetime can hold, to the millisecond as Avro keeps them.
        millis = st.integers(-62_135_596_800_000, 253_402_300_799_999)
        return millis.map(lambda ms: EPOCH + dt.timedelta(milliseconds=ms))
    if logical == "date":
        return st.dates()
    if kind == "record":
        named[schema["name"]] = schema
        if "namespace" in schema:
            named[f"{schema['namespace']}.{schema['name']}"] = schema
        fields = {field["name"]: _values(field["type"], named) for field in schema["fields"]}
        return st.fixed_dictionaries(fields)
    if kind == "enum":
        named[schema["name"]] = schema
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(_values(schema["items"], named), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=5), _values(schema["values"], named), max_size=3)
    return PRIMITIVES[kind]


def _record_type(fullname: str) -> type[AvroRecord]:
    return cast(type[AvroRecord], getattr(records, short_name(fullname)))


def _write(schema: Any, value: Any) -> bytes:
    body = io.BytesIO()
    schemaless_writer(body, schema, value)
    return body.getvalue()


# Every released version of every topic's schema, read with the latest one.
VERSIONS = [(fullname, path) for fullname in value_schemas() for path in history(fullname)]


@pytest.mark.parametrize(
    ("fullname", "version"), VERSIONS, ids=[f"{n}-{p.stem}" for n, p in VERSIONS]
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_value_of_any_version_reads_into_the_latest_type_and_back(
    fullname: str, version: Path, data: st.DataObject
) -> None:
    record_type = _record_type(fullname)
    written_schema = json.loads(version.read_text(encoding="utf-8"))
    writer = parse_schema(written_schema, named_schemas={})
    reader = parse_schema(json.loads(expanded_schema_json(fullname)), named_schemas={})
    value = data.draw(_values(written_schema, {}))

    decoded = schemaless_reader(io.BytesIO(_write(writer, value)), writer, reader)
    assert isinstance(decoded, dict)
    record = record_type.from_avro(decoded)

    assert isinstance(record, record_type)
    assert record.to_avro() == decoded
    # What the serde does with the dict it decoded: the same record, the dict taken over.
    assert record_type.adopt_avro(copy.deepcopy(decoded)) == record
    again = schemaless_reader(io.BytesIO(_write(reader, record.to_avro())), reader, None)
    assert isinstance(again, dict)
    assert record_type.from_avro(again) == record


def test_a_stay_event_is_typed_all_the_way_down() -> None:
    event = records.StayEvent.from_avro(stay_event("V0001"))

    assert event.kind is records.EventKind.ADMISSION
    assert event.kind == "ADMISSION"  # a StrEnum: its symbol, for code comparing strings
    assert event.movement.authority == "CHRU-NANCY-GAM"
    assert event.patient.birth_date == dt.date(1948, 7, 14)
    assert event.patient.used_name is not None
    assert event.patient.used_name.given_name == "Hélène"
    assert event.stay.admission_mode is records.AdmissionMode.SCHEDULED
    assert event.care_team[0].role is records.CareRole.ODRP
    assert event.to_avro() == stay_event("V0001")


def test_a_record_is_immutable_and_hashable() -> None:
    event = records.StayEvent.from_avro(stay_event("V0001"))

    with pytest.raises(AttributeError):
        event.stay_key = "chrunancy:V0002"  # type: ignore[misc]
    assert hash(event) == hash(records.StayEvent.from_avro(stay_event("V0001")))


def test_fields_left_out_take_their_schema_defaults() -> None:
    """As the Avro writer does: a value built by hand may leave out what has a default."""
    value = stay_event("V0001")
    for name in ("care_team", "covid_status", "patient_protected", "stay_protected"):
        del value[name]
    event = records.StayEvent.from_avro(value)

    assert event.care_team == ()
    assert event.covid_status is records.CovidStatus.UNKNOWN
    assert event.patient_protected is None
    recipient = records.Recipient(
        role=records.CareRole.ODRP, rpps="10101010101", family_name="Martin", given_name="Jeanne"
    )
    assert recipient.delivery.mode is records.DeliveryMode.REALTIME
    assert recipient.delivery.event_kinds == (
        records.PreferredEventKind.ADMISSION,
        records.PreferredEventKind.DISCHARGE,
        records.PreferredEventKind.CORRECTION,
    )
    assert recipient == records.Recipient.from_avro(recipient.to_avro())
