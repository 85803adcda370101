"""Confluent-framed records decode with writer schemas fetched from a registry over HTTP."""

from __future__ import annotations

import json

import pytest

from consumer.decode import (
    RecordDecoder,
    SchemaCatalog,
    SchemaRegistryClient,
    SchemaRegistryUnavailable,
    encode_confluent,
)
from consumer.decode.json_records import record_from_json
from consumer.devstack.registry import LocalSchemaRegistry
from consumer.settings import SchemaRegistrySettings


async def test_registry_fetch_then_decode_confluent_framed_record() -> None:
    catalog = SchemaCatalog()
    v1 = catalog.versions("storefront-events")[0]
    raw_v1 = json.loads((catalog.root / "storefront-events" / "v1.avsc").read_text())
    registry = LocalSchemaRegistry()
    async with registry.run() as url:
        schema_id = registry.register("storefront-events-value", raw_v1)
        client = SchemaRegistryClient(SchemaRegistrySettings(url=url))
        record = {
            "event_id": "e1", "merchant_id": "m1", "event_type": "ACCOUNT_CREATED",
            "occurred_at": "2026-11-01T00:00:00Z",
            "customer": {"email": "a@example.com"}, "wishlist": None, "signup": None,
        }  # fmt: skip
        payload = encode_confluent(schema_id, v1.schema, record_from_json(v1.schema, record))
        decoder = RecordDecoder(catalog, "storefront-events", 1_000_000)
        for unknown in decoder.unknown_schema_ids([payload]):
            decoder.learn_schema(unknown, await client.fetch(unknown))
        decoded = decoder.decode(payload)
        assert decoded["event_type"] == "ACCOUNT_CREATED"
        assert await client.fetch(schema_id + 100) is None


async def test_registry_unreachable_raises_retriable_error() -> None:
    registry = LocalSchemaRegistry()
    async with registry.run() as url:
        pass  # the server is gone once the context exits
    client = SchemaRegistryClient(SchemaRegistrySettings(url=url, timeout_seconds=2))
    with pytest.raises(SchemaRegistryUnavailable) as err:
        await client.fetch(1)
    assert err.value.retriable
