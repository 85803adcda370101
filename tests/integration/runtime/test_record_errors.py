"""Poison records between good ones: each is dead-lettered with its reason, the rest flows.

One service runs through it all: an input record over the size limit, a decimal written with a
larger declared precision, an amount of 10^15, a record whose derivation raises (through a
test-only stage), and an outbox record deliver cannot serialise.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
from fastavro import parse_schema

from consumer.decode import SchemaCatalog
from consumer.decode.framing import encode_single_object
from consumer.derive import Derivation
from consumer.devstack.traffic import InputRecord, sample_traffic
from consumer.integrations.table import IntegrationsTable
from consumer.kafka import ConsumedMessage, Producer, TopicSpec, ensure_topics
from consumer.outbox import decode_operation, encode_operation
from consumer.paths import schemas_dir
from consumer.runtime.dead_letter import (
    H_CLASS,
    H_MESSAGE,
    H_ORIGINAL_HEADER,
    H_ORIGINAL_SIZE,
    H_REASON,
    H_STAGE,
    H_TOPIC,
)
from consumer.runtime.derive_stage import DeriveStage
from consumer.runtime.replay import replay
from consumer.runtime.service import Service
from tests.helpers.kafka import drain, read_committed, unique_name
from tests.helpers.reference import event_keys, expected_operations, sandbox_event_keys
from tests.helpers.waiting import wait_until
from tests.integration.runtime.conftest import Stack, inputs_caught_up, running_service

FAULTY_RETURN = "merchant-1-ret-faulty"
_BIG_INPUT_BYTES = 1_100_000


class _FaultyDeriveStage(DeriveStage):
    """Derivation raises an unexpected error for one chosen return (the fault hook)."""

    def derive_record(self, message: ConsumedMessage, record: dict[str, Any]) -> Derivation:
        if record.get("return_id") == FAULTY_RETURN:
            raise RuntimeError("injected fault")
        return super().derive_record(message, record)


class _FaultyService(Service):
    def _derive(self, table: IntegrationsTable) -> DeriveStage:
        return _FaultyDeriveStage(
            self.settings,
            table.get,
            self.metrics,
            self.health,
            self.instance_id,
            clients=self._clients,
        )


def _return(template: InputRecord, return_id: str, **fields: Any) -> dict[str, Any]:
    return {**template.value, "return_id": return_id, **fields}


def _wide_returns_schema() -> Any:
    """The returns contract with ``total_value`` declared as decimal(80, 4): the same
    fingerprint, since precision is not part of a schema's canonical form."""
    raw = json.loads((schemas_dir() / "returns" / "v1.avsc").read_text())
    for field in raw["fields"]:
        if field["name"] == "total_value":
            field["type"]["precision"] = 80
    return parse_schema(raw)


def _deep_outbox_record(template: bytes) -> bytes:
    """A readable outbox operation nested deeper than orjson writes (it reads 1024 levels)."""
    doc = orjson.loads(template)
    doc["pr"] = {"deep": "PLACEHOLDER"}
    doc["u"] = "deep-nesting"
    deep = b"[" * 300 + b'"leaf"' + b"]" * 300
    return orjson.dumps(doc).replace(b'"PLACEHOLDER"', deep)


async def test_poison_records_are_dead_lettered_and_good_records_delivered(
    stack: Stack,
) -> None:
    # A returns topic that takes the 1.1 MB record (the broker accepts it, as upstream's would).
    wide = unique_name("returns-wide")
    await asyncio.to_thread(
        ensure_topics,
        stack.settings.kafka,
        [TopicSpec(wide, 3, {"max.message.bytes": "2000000"})],
    )
    overrides = {**stack.overrides, "topics": {**stack.overrides["topics"], "returns": wide}}
    stack = Stack(overrides, stack.sandbox, stack.merchants, stack.log_dir)
    settings, topics = stack.settings, stack.settings.topics

    now = datetime.now(UTC)
    good = sample_traffic(["merchant-1"], 6, now)
    template = next(r for r in good if r.subject == "returns")
    item = template.value["items"][0]
    schema = SchemaCatalog().latest("returns").schema
    big = _return(template, "ret-big", items=[{**item, "product_name": "x" * _BIG_INPUT_BYTES}])
    huge_item = _return(template, "ret-huge", items=[{**item, "value": Decimal(10) ** 15}])
    wide_total = _return(template, "ret-wide", total_value=Decimal(10) ** 70)
    faulty = _return(template, FAULTY_RETURN)
    poison = [
        (b"ret-big", encode_single_object(schema, big), ()),
        (b"ret-huge", encode_single_object(schema, huge_item), (("trace-id", b"t-1"),)),
        (b"ret-wide", encode_single_object(_wide_returns_schema(), wide_total), ()),
        (FAULTY_RETURN.encode(), encode_single_object(schema, faulty), ()),
    ]
    producer = Producer(settings.kafka, extra={"message.max.bytes": 2_000_000})
    service_metrics = ""
    try:
        async with running_service(settings, service_type=_FaultyService) as service:
            chunk = len(good) // (len(poison) + 1) + 1
            for n, (key, value, headers) in enumerate(poison):
                await stack.publish(good[n * chunk : (n + 1) * chunk])
                producer.produce(topics.returns, key, value, headers)
                await asyncio.to_thread(producer.flush)
            await stack.publish(good[len(poison) * chunk :])
            # An outbox record deliver cannot serialise, on merchant-1's outbox partition.
            operations = expected_operations(good, stack.integrated, now)
            bad_op = _deep_outbox_record(encode_operation(operations[0]))
            producer.produce(topics.outbox, b"merchant-1", bad_op)
            await asyncio.to_thread(producer.flush)

            expected = event_keys(operations)
            await stack.sandbox.wait_for_events("merchant-1", len(expected), timeout=60)
            dead = await asyncio.to_thread(
                read_committed, settings.kafka, topics.dead_letter, until=5, timeout=30
            )
            # Every input offset commits, the poison ones too: no manual offset move.
            await asyncio.to_thread(
                wait_until, lambda: inputs_caught_up(settings), what="derive caught up"
            )
            async with aiohttp.ClientSession() as http, http.get(f"{service.url}/metrics") as got:
                service_metrics = await got.text()
    finally:
        producer.close()

    assert set(sandbox_event_keys(stack.sandbox, ["merchant-1"])) == expected
    by_key = {m.key: m for m in dead}
    assert set(by_key) == {
        b"ret-big",
        b"ret-huge",
        b"ret-wide",
        FAULTY_RETURN.encode(),
        b"merchant-1",
    }

    oversized = by_key[b"ret-big"]
    assert oversized.header(H_REASON) == b"oversized_payload"
    original_size = len(poison[0][1])
    assert oversized.header(H_ORIGINAL_SIZE) == str(original_size).encode()
    assert oversized.value is not None
    assert 0 < len(oversized.value) < original_size
    assert poison[0][1].startswith(oversized.value)
    assert oversized.header(H_TOPIC) == topics.returns.encode()

    out_of_range = by_key[b"ret-huge"]
    assert out_of_range.header(H_REASON) == b"amount_out_of_range"
    assert b"items/0/value" in (out_of_range.header(H_MESSAGE) or b"")
    assert out_of_range.header(H_ORIGINAL_HEADER + "trace-id") == b"t-1"
    assert out_of_range.value == poison[1][1]
    wide_dead = by_key[b"ret-wide"]
    assert wide_dead.header(H_REASON) == b"amount_out_of_range"
    assert b"total_value" in (wide_dead.header(H_MESSAGE) or b"")

    fault = by_key[FAULTY_RETURN.encode()]
    assert (fault.header(H_REASON), fault.header(H_CLASS)) == (b"internal_error", b"RuntimeError")
    assert fault.header(H_STAGE) == b"derive"

    unserialisable = by_key[b"merchant-1"]
    assert unserialisable.header(H_STAGE) == b"deliver"
    assert (unserialisable.header(H_REASON), unserialisable.header(H_CLASS)) == (
        b"internal_error",
        b"TypeError",
    )
    assert unserialisable.value == bad_op
    assert decode_operation(bad_op).unique_id == "deep-nesting"  # readable, just not writable
    assert 'klaviyo_consumer_record_errors_total{error="RuntimeError",stage="derive"} 1.0' in (
        service_metrics
    )
    assert (
        'klaviyo_consumer_record_errors_total{error="TypeError",stage="deliver"} 1.0'
        in service_metrics
    )

    # Replay restores the original headers and skips what was truncated.
    report = await asyncio.to_thread(replay, settings, "dead-letter", datetime.now(UTC))
    assert (report.to_source_topics, report.truncated, report.to_outbox) == (3, 1, 1)
    replayed = await asyncio.to_thread(drain, settings.kafka, topics.returns)
    again = [m for m in replayed if m.key == b"ret-huge"]
    assert [m.header("trace-id") for m in again] == [b"t-1", b"t-1"]
