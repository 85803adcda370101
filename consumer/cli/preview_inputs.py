"""The inputs of ``preview``: files and topics, decoded by the service's own decoder, and a
merchant's real settings from the integrations topic."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from consumer.decode import DecodeError, RecordDecoder, SchemaCatalog, encode_single_object
from consumer.decode.json_records import record_from_json
from consumer.decode.registry import SchemaRegistryClient
from consumer.integrations.codec import IntegrationCodec, IntegrationRecord
from consumer.integrations.errors import IntegrationRecordError
from consumer.kafka import (
    CatchUp,
    ConsumedMessage,
    KafkaConsumer,
    TopicPartition,
    partition_count,
)
from consumer.merchant import MerchantSettings
from consumer.settings import Settings

__all__ = [
    "NO_KEY",
    "SUBJECTS",
    "Input",
    "InputReader",
    "infer_subject",
    "integration_record",
    "keyless_settings",
]

NO_KEY = SecretStr("never-read-from-the-integration")
"""Stands in for the API key: derivation needs settings, never the key."""

SUBJECTS = ("returns", "orders", "storefront-events")


def infer_subject(path: Path) -> str | None:
    """The subject a file name names (``orders.json``, ``orders-old.json``), or None."""
    stem = path.name.split(".")[0]
    for subject in sorted(SUBJECTS, key=len, reverse=True):
        if stem == subject or stem.startswith((f"{subject}-", f"{subject}_")):
            return subject
    return None


@dataclass(frozen=True, slots=True)
class Input:
    """One record to derive, or why it could not be read. ``source`` is ``file[index]``."""

    source: str
    subject: str
    record: dict[str, Any] | None = None
    error: str | None = None


def integration_record(
    settings: Settings, merchant_id: str, timeout: float
) -> IntegrationRecord | None:
    """The merchant's latest usable record on the integrations topic (None: none, or removed).

    Its API key stays as stored, encrypted: preview needs no key-encryption key and never
    holds a merchant's key. A record that does not decode is passed over, as the service's
    table does, so the one before it stays in force.

    Raises:
        KafkaError: the broker cannot be reached or the topic does not exist.
        TimeoutError: the topic was not read to its end within ``timeout`` seconds.
    """
    topic = settings.topics.integrations

    def incomplete(partitions: list[int]) -> None:
        raise TimeoutError(f"{topic}: partitions {partitions} not read to the end in {timeout}s")

    wanted = merchant_id.encode("utf-8")
    codec = IntegrationCodec()
    latest: IntegrationRecord | None = None
    for message in _committed(settings, topic, "settings", sys.maxsize, timeout, incomplete):
        if message.key != wanted:
            continue
        if message.value is None:
            latest = None
            continue
        try:
            latest = codec.decode(message.value)
        except (DecodeError, IntegrationRecordError):
            continue
    return latest


def keyless_settings(record: IntegrationRecord) -> MerchantSettings:
    """The merchant's settings from its record, with ``NO_KEY`` in place of its API key."""
    values: dict[str, Any] = record.settings_values()
    return MerchantSettings(merchant_id=record.merchant_id, api_key=NO_KEY, **values)


def _committed(
    settings: Settings,
    topic: str,
    purpose: str,
    max_records: int,
    timeout: float,
    unread: Callable[[list[int]], None],
) -> Iterator[ConsumedMessage]:
    """The committed records of ``topic`` up to its end when reading starts, partition by
    partition order; ``unread(partitions)`` is told what ``max_records``/``timeout`` cut off."""
    kafka = settings.kafka
    partitions = [TopicPartition(topic, p) for p in range(partition_count(kafka, topic))]
    # assign() without commits: the group id is only a name, no group is joined.
    with KafkaConsumer(kafka, f"{kafka.group_id}-preview-{purpose}") as consumer:
        catch_up = CatchUp.start(consumer, partitions)
        deadline, read = time.monotonic() + timeout, 0
        while not catch_up.done and read < max_records and time.monotonic() < deadline:
            for message in consumer.consume(min(500, max_records - read), timeout=0.05):
                if catch_up.written_before_start(message):
                    read += 1
                    yield message
            catch_up.advance()
        pending = [tp.partition for tp in catch_up.pending]
    if pending:
        unread(pending)


class InputReader:
    """Turns files and topics into decoded records, through the service's own decoder."""

    def __init__(self, settings: Settings) -> None:
        self._catalog = SchemaCatalog()
        self._settings = settings
        self._decoders: dict[str, RecordDecoder] = {}

    def _decoder(self, subject: str) -> RecordDecoder:
        if subject not in self._decoders:
            limit = self._settings.derive.max_record_bytes
            self._decoders[subject] = RecordDecoder(self._catalog, subject, limit)
        return self._decoders[subject]

    def _decode(self, subject: str, payload: bytes | None) -> dict[str, Any]:
        decoder = self._decoder(subject)
        unknown = decoder.unknown_schema_ids([payload])
        if unknown:
            registry = self._settings.schema_registry
            client = SchemaRegistryClient(registry) if registry.url else None
            for schema_id in unknown:
                schema = asyncio.run(client.fetch(schema_id)) if client else None
                decoder.learn_schema(schema_id, schema)
        return decoder.decode(payload)

    def read(self, path: Path, subject: str) -> Iterator[Input]:
        """The records of one JSON or binary file (see the module docstring).

        Raises:
            OSError: the file cannot be read.
            orjson.JSONDecodeError: the file looks like JSON but is not.
        """
        data = path.read_bytes()
        if data.lstrip()[:1] not in (b"[", b"{"):
            try:
                yield Input(str(path), subject, record=self._decode(subject, data))
            except DecodeError as exc:
                yield Input(str(path), subject, error=f"{exc.reason}: {exc}")
            return
        values = orjson.loads(data)
        schema = self._catalog.latest(subject).schema
        for index, value in enumerate(values if isinstance(values, list) else [values]):
            source = f"{path}[{index}]"
            try:
                payload = encode_single_object(schema, record_from_json(schema, value))
                yield Input(source, subject, record=self._decode(subject, payload))
            except (KeyError, TypeError, ValueError) as exc:
                # fastavro and record_from_json report a record that does not fit the schema
                # with these; the message names the field.
                yield Input(source, subject, error=f"does not fit the {subject} schema: {exc!r}")
            except DecodeError as exc:
                yield Input(source, subject, error=f"{exc.reason}: {exc}")

    def read_topic(
        self, topic: str, subject: str, max_records: int, timeout: float
    ) -> Iterator[Input]:
        """The committed values of ``topic`` up to its current end, partition by partition order.

        Raises:
            KafkaError: the broker cannot be reached or the topic does not exist.
        """

        def unread(partitions: list[int]) -> None:
            print(
                f"klaviyo-consumer preview: {topic}: stopped at --max-records or --timeout "
                f"before the end of partitions {partitions}",
                file=sys.stderr,
            )

        messages = _committed(self._settings, topic, "records", max_records, timeout, unread)
        for message in messages:
            source = f"{topic}[{message.partition}@{message.offset}]"
            try:
                yield Input(source, subject, record=self._decode(subject, message.value))
            except DecodeError as exc:
                yield Input(source, subject, error=f"{exc.reason}: {exc}")
