"""The two wire framings of Avro values on our topics, in both directions.

- Confluent: ``0x00`` + 4-byte big-endian schema id (Schema Registry) + Avro body.
- Avro single-object encoding: ``0xC3 0x01`` + 8-byte little-endian CRC-64-AVRO fingerprint
  + Avro body (the writer schema is one of the versions in ``schemas/``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from fastavro import schemaless_writer

from consumer.decode.catalog import canonical_fingerprint
from consumer.decode.errors import EmptyPayload, UnknownMagicByte

__all__ = [
    "CONFLUENT_MAGIC",
    "SINGLE_OBJECT_MAGIC",
    "Frame",
    "encode_confluent",
    "encode_single_object",
    "parse_frame",
]

CONFLUENT_MAGIC = b"\x00"
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
_CONFLUENT_HEADER = 5
_SINGLE_OBJECT_HEADER = 10


@dataclass(frozen=True, slots=True)
class Frame:
    """Which writer schema a payload names, and where its Avro body starts."""

    schema_id: int | None
    fingerprint: bytes | None
    body_offset: int


def parse_frame(payload: bytes | None) -> Frame:
    """Read the framing header.

    Raises:
        EmptyPayload: no payload, or shorter than its header.
        UnknownMagicByte: neither framing.
    """
    if not payload:
        raise EmptyPayload("record has no value")
    if payload[:1] == CONFLUENT_MAGIC:
        if len(payload) < _CONFLUENT_HEADER:
            raise EmptyPayload(f"{len(payload)} bytes is shorter than the Confluent header")
        return Frame(int.from_bytes(payload[1:5], "big"), None, _CONFLUENT_HEADER)
    if payload[:2] == SINGLE_OBJECT_MAGIC:
        if len(payload) < _SINGLE_OBJECT_HEADER:
            raise EmptyPayload(f"{len(payload)} bytes is shorter than the single-object header")
        return Frame(None, bytes(payload[2:10]), _SINGLE_OBJECT_HEADER)
    raise UnknownMagicByte(f"unknown magic byte 0x{payload[0]:02x}")


def _body(schema: Any, record: Any) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, schema, record)
    return out.getvalue()


def encode_single_object(schema: Any, record: Any, fingerprint: bytes | None = None) -> bytes:
    """Encode ``record`` with a parsed writer schema in single-object encoding.

    ``fingerprint`` is the schema's (``SchemaVersion.fingerprint``); computing it costs far
    more than encoding a record, so bulk writers pass it.
    """
    prefix = fingerprint if fingerprint is not None else canonical_fingerprint(schema)
    return SINGLE_OBJECT_MAGIC + prefix + _body(schema, record)


def encode_confluent(schema_id: int, schema: Any, record: Any) -> bytes:
    """Encode ``record`` in Confluent framing for a registry schema id."""
    return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big") + _body(schema, record)
