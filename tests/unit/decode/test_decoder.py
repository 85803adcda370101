"""Decoding both framings into the reader schema, and every way a payload can be bad."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer

from consumer.decode import (
    CorruptAvro,
    EmptyPayload,
    IncompatibleWriterSchema,
    OversizedPayload,
    RecordDecoder,
    SchemaCatalog,
    UnknownFingerprint,
    UnknownMagicByte,
    UnknownSchemaId,
    encode_confluent,
    encode_single_object,
)
from consumer.decode.json_records import record_from_json

EXAMPLES = Path(__file__).parents[3] / "schemas" / "examples"


@pytest.fixture(scope="module")
def catalog() -> SchemaCatalog:
    return SchemaCatalog()


def example(name: str, index: int = 0) -> dict[str, Any]:
    records: list[dict[str, Any]] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return records[index]


def encoded_return(catalog: SchemaCatalog) -> bytes:
    schema = catalog.latest("returns").schema
    return encode_single_object(schema, record_from_json(schema, example("returns")))


def test_decode_single_object_returns_reader_record(catalog: SchemaCatalog) -> None:
    decoder = RecordDecoder(catalog, "returns", 1_000_000)
    record = decoder.decode(encoded_return(catalog))
    assert record["return_id"] == "ret_1001_a"
    assert record["total_value"] == Decimal("108.50")
    assert record["items"][1]["new_sku"] == "JEANS-34"
    assert record["created_at"].isoformat() == "2026-11-20T14:03:00+00:00"


def test_decode_confluent_after_learning_schema_id(catalog: SchemaCatalog) -> None:
    decoder = RecordDecoder(catalog, "returns", 1_000_000)
    version = catalog.latest("returns")
    payload = encode_confluent(
        7, version.schema, record_from_json(version.schema, example("returns"))
    )
    assert decoder.unknown_schema_ids([payload, None, b""]) == {7}
    decoder.learn_schema(7, json.loads((catalog.root / "returns" / "v1.avsc").read_text()))
    assert decoder.unknown_schema_ids([payload]) == set()
    assert decoder.decode(payload)["order_name"] == "#1001"


def test_decode_confluent_id_unknown_to_registry_raises_unknown_schema_id(
    catalog: SchemaCatalog,
) -> None:
    decoder = RecordDecoder(catalog, "returns", 1_000_000)
    decoder.learn_schema(99, None)
    with pytest.raises(UnknownSchemaId) as err:
        decoder.decode(b"\x00\x00\x00\x00\x63" + b"\x02")
    assert err.value.reason == "unknown_schema_id"


def test_decode_older_writer_version_resolves_to_newer_reader(catalog: SchemaCatalog) -> None:
    v1, v2 = catalog.versions("storefront-events")[:2]
    assert v1.fingerprint != v2.fingerprint
    record = example("storefront-events", 1)
    del record["wishlist"]["product_url"], record["wishlist"]["image_url"]
    payload = encode_single_object(v1.schema, record_from_json(v1.schema, record))
    decoded = RecordDecoder(catalog, "storefront-events", 1_000_000).decode(payload)
    assert decoded["wishlist"]["product_name"] == "Rain Jacket"
    assert decoded["wishlist"]["product_url"] is None  # default from the newer reader


def test_decode_writer_of_other_subject_raises_incompatible(catalog: SchemaCatalog) -> None:
    orders = catalog.latest("orders").schema
    payload = encode_single_object(orders, record_from_json(orders, example("orders")))
    with pytest.raises(IncompatibleWriterSchema) as err:
        RecordDecoder(catalog, "returns", 1_000_000).decode(payload)
    assert err.value.reason == "incompatible_schema"


def test_decode_registry_writer_missing_required_field_raises_incompatible(
    catalog: SchemaCatalog,
) -> None:
    writer = {"type": "record", "name": "ReturnChange", "namespace": "commerce.returns",
              "fields": [{"name": "return_id", "type": "string"}]}  # fmt: skip
    body = io.BytesIO()
    schemaless_writer(body, parse_schema(writer), {"return_id": "r1"})
    decoder = RecordDecoder(catalog, "returns", 1_000_000)
    decoder.learn_schema(3, writer)
    with pytest.raises(IncompatibleWriterSchema):
        decoder.decode(b"\x00\x00\x00\x00\x03" + body.getvalue())


@pytest.mark.parametrize(
    ("payload", "error", "reason"),
    [
        (None, EmptyPayload, "empty_payload"),
        (b"", EmptyPayload, "empty_payload"),
        (b"\x00\x00\x01", EmptyPayload, "empty_payload"),
        (b"\xc3\x01\x01\x02", EmptyPayload, "empty_payload"),
        (b'{"json": true}', UnknownMagicByte, "unknown_magic_byte"),
        (b"\xc3\x01" + b"\xee" * 8 + b"\x02", UnknownFingerprint, "unknown_fingerprint"),
    ],
)
def test_decode_bad_header_raises_typed_error(
    catalog: SchemaCatalog, payload: bytes | None, error: type[Exception], reason: str
) -> None:
    with pytest.raises(error) as err:
        RecordDecoder(catalog, "returns", 1_000_000).decode(payload)
    assert getattr(err.value, "reason", None) == reason


def test_decode_truncated_body_raises_corrupt(catalog: SchemaCatalog) -> None:
    payload = encoded_return(catalog)
    with pytest.raises(CorruptAvro) as err:
        RecordDecoder(catalog, "returns", 1_000_000).decode(payload[:-20])
    assert err.value.reason == "corrupt_avro"


def test_decode_trailing_bytes_raise_corrupt(catalog: SchemaCatalog) -> None:
    with pytest.raises(CorruptAvro, match="trailing"):
        RecordDecoder(catalog, "returns", 1_000_000).decode(encoded_return(catalog) + b"\x00")


def test_decode_garbage_body_raises_corrupt(catalog: SchemaCatalog) -> None:
    header = encoded_return(catalog)[:10]
    with pytest.raises(CorruptAvro):
        RecordDecoder(catalog, "returns", 1_000_000).decode(header + b"\xff" * 40)


def test_decode_oversized_payload_raises_oversized(catalog: SchemaCatalog) -> None:
    payload = encoded_return(catalog)
    with pytest.raises(OversizedPayload) as err:
        RecordDecoder(catalog, "returns", len(payload) - 1).decode(payload)
    assert err.value.reason == "oversized_payload"
