"""Kafka adapter: Avro-encode records and write them, awaiting the broker's confirmation.

The producer is the platform's (acks=all, idempotent). Its delivery callbacks run on a poll
thread and settle asyncio futures through the event loop, so a coroutine can ``await`` the moment
Kafka has the record, and the gateway acknowledges only then.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable

import httpx
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from services.common.serde import AvroRecord, RecordSerde

# How long produce() may wait for room in a full local queue before giving up.
QUEUE_FULL_PAUSE = 0.01


class WriteFailed(Exception):
    """Kafka did not confirm the write (broker down, timed out, refused)."""


class RegistryUnavailable(WriteFailed):
    """The schema id could not be looked up; nothing was written."""


class RecordUnencodable(Exception):
    """The record does not fit its schema; retrying will not help."""


class KafkaWriter:
    def __init__(
        self,
        producer: Producer,
        registry: SchemaRegistryClient,
        record_types: Iterable[type[AvroRecord]],
    ) -> None:
        self._producer = producer
        self._serdes: dict[type[AvroRecord], RecordSerde[AvroRecord]] = {
            record_type: RecordSerde(registry, record_type) for record_type in record_types
        }
        self._warm_topics: set[str] = set()
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)

    def start(self) -> None:
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)

    async def encode(self, topic: str, record: AvroRecord) -> bytes:
        serde = self._serdes[type(record)]
        try:
            if topic in self._warm_topics:
                return serde.serialize(topic, record)
            # The first record of a topic looks its schema id up over HTTP: not on the loop.
            data = await asyncio.to_thread(serde.serialize, topic, record)
            self._warm_topics.add(topic)
            return data
        except (SchemaRegistryError, httpx.HTTPError, OSError) as error:
            raise RegistryUnavailable(f"schema registry: {type(error).__name__}") from error
        except Exception as error:
            raise RecordUnencodable(f"{record.SCHEMA}: {type(error).__name__}") from error

    async def send(self, topic: str, key: str, value: bytes) -> None:
        """Returns once Kafka has the record (acks=all); raises ``WriteFailed`` otherwise."""
        loop = asyncio.get_running_loop()
        confirmed: asyncio.Future[None] = loop.create_future()

        def settle(error: KafkaError | None, _message: Message) -> None:
            # A closed loop means nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, confirmed, error)

        while True:
            try:
                self._producer.produce(topic, key=key.encode(), value=value, on_delivery=settle)
                break
            except BufferError:
                await asyncio.sleep(QUEUE_FULL_PAUSE)
        await confirmed

    def close(self, timeout: float = 10.0) -> int:
        """Deliver what is queued, for up to ``timeout`` seconds; returns what is left."""
        self._stopping.set()
        if self._poller.is_alive():
            self._poller.join()
        return int(self._producer.flush(timeout))


def _settle(confirmed: asyncio.Future[None], error: KafkaError | None) -> None:
    if confirmed.done():  # the waiter gave up (time-out, closed connection)
        return
    if error is None:
        confirmed.set_result(None)
    else:
        confirmed.set_exception(WriteFailed(f"{error.name()}: {error.str()}"))
