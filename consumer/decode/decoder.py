"""Payload bytes → a record dict, for one topic's contract.

The read function for each writer schema is chosen once, when the writer is first seen: when
writer and reader are the same schema, resolution is skipped (it halves fastavro's speed).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from fastavro import parse_schema, schemaless_reader
from fastavro.read import SchemaResolutionError

from consumer.decode.catalog import SchemaCatalog, canonical_fingerprint
from consumer.decode.errors import (
    CorruptAvro,
    IncompatibleWriterSchema,
    OversizedPayload,
    UnknownFingerprint,
    UnknownSchemaId,
)
from consumer.decode.framing import parse_frame

__all__ = ["RecordDecoder"]

ReadFn = Callable[[io.BytesIO], Any]

# What fastavro raises on bytes that do not match the writer schema.
_CORRUPTION = (EOFError, IndexError, ValueError, OverflowError, UnicodeDecodeError, KeyError)


class RecordDecoder:
    """Decodes one subject's payloads in either framing into the newest reader schema.

    Confluent schema ids must be learnt first (``unknown_schema_ids`` then ``learn_schema``),
    because fetching a schema is I/O and this class does none.
    """

    def __init__(self, catalog: SchemaCatalog, subject: str, max_bytes: int) -> None:
        self.subject = subject
        self._reader = catalog.latest(subject)
        self._catalog = catalog
        self._max_bytes = max_bytes
        self._by_fingerprint: dict[bytes, ReadFn] = {}
        self._by_schema_id: dict[int, ReadFn | None] = {}

    def _read_fn(self, writer_schema: Any) -> ReadFn:
        reader = self._reader.schema
        if canonical_fingerprint(writer_schema) == self._reader.fingerprint:
            return lambda body: schemaless_reader(body, reader, None)
        return lambda body: schemaless_reader(body, writer_schema, reader)

    def unknown_schema_ids(self, payloads: Iterable[bytes | None]) -> set[int]:
        """Confluent schema ids in ``payloads`` that have not been learnt yet."""
        ids = set()
        for payload in payloads:
            if payload and payload[:1] == b"\x00" and len(payload) >= 5:
                schema_id = int.from_bytes(payload[1:5], "big")
                if schema_id not in self._by_schema_id:
                    ids.add(schema_id)
        return ids

    def learn_schema(self, schema_id: int, writer_schema: Any | None) -> None:
        """Remember the registry's answer for ``schema_id`` (``None`` = unknown there)."""
        self._by_schema_id[schema_id] = (
            None if writer_schema is None else self._read_fn(parse_schema(writer_schema))
        )

    def _for_fingerprint(self, value: bytes) -> ReadFn:
        read = self._by_fingerprint.get(value)
        if read is None:
            version = self._catalog.by_fingerprint(value)
            if version is None:
                raise UnknownFingerprint(f"no schema in the catalog has fingerprint {value.hex()}")
            read = self._by_fingerprint[value] = self._read_fn(version.schema)
        return read

    def decode(self, payload: bytes | None) -> dict[str, Any]:
        """Decode one payload.

        Raises:
            DecodeError: a subclass whose ``reason`` says what is wrong with the payload.
            KeyError: a Confluent schema id that was never learnt (a caller bug).
        """
        frame = parse_frame(payload)
        payload = payload or b""
        if len(payload) > self._max_bytes:
            raise OversizedPayload(f"{len(payload)} bytes exceeds the limit of {self._max_bytes}")
        if frame.fingerprint is not None:
            read = self._for_fingerprint(frame.fingerprint)
        else:
            known = self._by_schema_id[frame.schema_id or 0]
            if known is None:
                raise UnknownSchemaId(f"schema registry has no schema id {frame.schema_id}")
            read = known
        body = io.BytesIO(payload)
        body.seek(frame.body_offset)
        try:
            record = read(body)
        except SchemaResolutionError as exc:
            raise IncompatibleWriterSchema(
                f"writer schema does not resolve to {self.subject}: {exc}"
            ) from exc
        except _CORRUPTION as exc:
            raise CorruptAvro(f"invalid Avro body: {type(exc).__name__}") from exc
        if body.tell() != len(payload):
            raise CorruptAvro(f"{len(payload) - body.tell()} unexpected trailing bytes")
        if not isinstance(record, dict):
            raise IncompatibleWriterSchema(f"writer schema of {self.subject} is not a record")
        return record
