"""The inputs of ``preview``: files and topics, decoded by the service's own decoder."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from consumer.decode import DecodeError, RecordDecoder, SchemaCatalog, encode_single_object
from consumer.decode.json_records import record_from_json
from consumer.decode.registry import SchemaRegistryClient
from consumer.kafka import CatchUp, KafkaConsumer, TopicPartition, partition_count
from consumer.settings import Settings

__all__ = ["SUBJECTS", "Input", "InputReader", "infer_subject"]

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
        kafka = self._settings.kafka
        partitions = [TopicPartition(topic, p) for p in range(partition_count(kafka, topic))]
        # assign() without commits: the group id is only a name, no group is joined.
        with KafkaConsumer(kafka, f"{kafka.group_id}-preview") as consumer:
            catch_up = CatchUp.start(consumer, partitions)
            deadline, read = time.monotonic() + timeout, 0
            while not catch_up.done and read < max_records and time.monotonic() < deadline:
                for message in consumer.consume(min(500, max_records - read), timeout=0.5):
                    if not catch_up.written_before_start(message):
                        continue
                    read += 1
                    source = f"{topic}[{message.partition}@{message.offset}]"
                    try:
                        yield Input(source, subject, record=self._decode(subject, message.value))
                    except DecodeError as exc:
                        yield Input(source, subject, error=f"{exc.reason}: {exc}")
                catch_up.advance()
            unread = [tp.partition for tp in catch_up.pending]
        if unread:
            print(
                f"klaviyo-consumer preview: {topic}: stopped at --max-records or --timeout "
                f"before the end of partitions {unread}",
                file=sys.stderr,
            )
