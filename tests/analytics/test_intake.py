"""Which failures the record is to blame for (dead-lettered) and which the platform (waited out)."""

from __future__ import annotations

import httpx2
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import SerializationError

from services.analytics.intake import dead_letter_headers, record_at_fault
from services.common.deadletter import read_error_headers
from services.common.serde import UndecodableValue


def test_bad_bytes_and_unknown_schemas_are_the_record_s_fault() -> None:
    assert record_at_fault(SerializationError("unknown magic byte"))
    # The serde names an unknown schema id (the registry's 404) or a truncated body so.
    assert record_at_fault(UndecodableValue("unknown schema id 1000000"))
    assert record_at_fault(KeyError("event"))


def test_an_unreachable_or_failing_registry_is_not() -> None:
    assert not record_at_fault(httpx2.ConnectError("connection refused"))
    assert not record_at_fault(SchemaRegistryError(503, 50003, "unavailable"))
    assert not record_at_fault(TimeoutError())


def test_a_dead_letter_keeps_the_record_s_headers_and_says_where_it_came_from() -> None:
    headers = dead_letter_headers(
        [("traceparent", b"00-abc")], SerializationError("bad"), "stays.enriched", 2, 41
    )
    assert headers[0] == ("traceparent", b"00-abc")
    errors = read_error_headers(headers)
    assert errors["service"] == "analytics"
    assert (errors["topic"], errors["partition"], errors["offset"]) == ("stays.enriched", "2", "41")
