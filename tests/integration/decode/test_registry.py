"""Confluent-framed records decode with writer schemas fetched from a registry over HTTP."""

from __future__ import annotations

import json

import aiohttp
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


async def test_local_registry_speaks_confluents_subject_api() -> None:
    registry = LocalSchemaRegistry()
    string = {"type": "string"}
    async with registry.run() as url, aiohttp.ClientSession() as http:

        async def call(method: str, path: str, body: object = None) -> tuple[int, object]:
            data = json.dumps(body) if body is not None else None
            async with http.request(method, url + path, data=data) as response:
                return response.status, await response.json(content_type=None)

        assert await call("POST", "/subjects/a-value/versions", {"schema": json.dumps(string)}) == (
            200,
            {"id": 1},
        )
        # The same schema spelt differently keeps its id, under another subject too.
        assert await call(
            "POST", "/subjects/b-value/versions", {"schema": '{"type": "string"}'}
        ) == (
            200,
            {"id": 1},
        )
        assert await call("GET", "/subjects") == (200, ["a-value", "b-value"])
        assert await call("GET", "/subjects/a-value/versions") == (200, [1])
        status, latest = await call("GET", "/subjects/a-value/versions/latest")
        assert status == 200
        assert isinstance(latest, dict)
        assert (latest["id"], latest["version"], json.loads(latest["schema"])) == (1, 1, string)
        assert (await call("GET", "/subjects/c-value/versions"))[1] == {
            "error_code": 40401,
            "message": "Subject not found.",
        }
        assert (await call("GET", "/subjects/a-value/versions/9"))[0] == 404
        status, invalid = await call(
            "POST", "/subjects/a-value/versions", {"schema": '{"type": "x"}'}
        )
        assert status == 422
        assert isinstance(invalid, dict) and invalid["error_code"] == 42201
        assert registry.lookups == 0
        assert (await call("GET", "/schemas/ids/1"))[0] == 200
        assert registry.lookups == 1
