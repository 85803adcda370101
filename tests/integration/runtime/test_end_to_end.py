"""The service end to end on a real broker and the Klaviyo sandbox over HTTP."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp

from consumer.decode import encode_confluent
from consumer.derive import Metric
from consumer.devstack.traffic import InputRecord, sample_traffic
from consumer.kafka import Producer
from consumer.outbox import EventOperation
from consumer.runtime.dead_letter import H_MERCHANT, H_OFFSET, H_REASON, H_TOPIC
from tests.helpers.kafka import read_committed
from tests.helpers.reference import (
    event_keys,
    expected_operations,
    expected_outbox,
    outbox_content,
    sandbox_event_keys,
    sandbox_subscription_keys,
    subscription_keys,
)
from tests.integration.runtime.conftest import Stack, running_service


async def wait_for_event_keys(stack: Stack, expected: set[tuple[str, str, str, str]]) -> None:
    """Wait until the sandbox holds at least as many events as expected for each merchant."""
    per_account = Counter(key[0] for key in expected)
    for account, count in per_account.items():
        await stack.sandbox.wait_for_events(account, count, timeout=90)


async def test_service_sample_traffic_reaches_klaviyo_exactly_as_derived(stack: Stack) -> None:
    now = datetime.now(UTC)
    merchants = [m.merchant_id for m in stack.merchants]
    traffic = sample_traffic(merchants, 18, now)
    expected = expected_operations(traffic, stack.integrated, now)
    expected_events = event_keys(expected)
    assert {op.metric for op in expected if isinstance(op, EventOperation)} == {
        m.value for m in Metric
    }, "the sample traffic must cover every metric"
    async with running_service(stack.settings) as service:
        await stack.publish(traffic)
        await wait_for_event_keys(stack, expected_events)
        subscriptions = Counter(key[0] for key in subscription_keys(expected))
        for account, count in subscriptions.items():
            await stack.sandbox.wait_for_subscriptions(account, count, timeout=30)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{service.url}/metrics") as response:
                metrics = await response.text()
            async with http.get(f"{service.url}/readyz") as response:
                assert response.status == 200
    stored = sandbox_event_keys(stack.sandbox, merchants)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert set(stored) == expected_events
    assert sandbox_subscription_keys(stack.sandbox, merchants) == subscription_keys(expected)
    assert stack.sandbox.events("merchant-4") == []  # no integration: nothing sent
    # Properties and values arrive exactly as derived.
    by_key = {
        (op.merchant_id, op.metric, op.unique_id): op
        for op in expected
        if isinstance(op, EventOperation)
    }
    for account in merchants[:3]:
        for event in stack.sandbox.events(account):
            op = by_key[(account, event.metric, event.unique_id)]
            assert dict(event.properties) == dict(op.properties)
            assert (Decimal(str(event.value)) if event.value is not None else None) == op.value
            assert event.value_currency == op.value_currency
    assert outbox_content(await stack.outbox()) == expected_outbox(expected)
    assert 'klaviyo_consumer_records_skipped_total{reason="merchant_not_integrated"}' in metrics
    assert 'klaviyo_consumer_transactions_total{outcome="committed"}' in metrics
    accepted = r'klaviyo_requests_total\{endpoint="bulk_create_events",status_class="2xx"\} [1-9]'
    assert re.search(accepted, metrics), "accepted requests are counted"


async def test_service_poison_input_is_dead_lettered_while_good_records_flow(stack: Stack) -> None:
    now = datetime.now(UTC)
    good = sample_traffic(["merchant-1"], 4, now)
    nameless = sample_traffic(["merchant-1"], 1, now, seed=99)[0]
    assert nameless.subject == "orders"
    no_identity = InputRecord(
        nameless.subject,
        "no-identity",
        {
            **nameless.value,
            "order_id": "no-identity",
            "customer": {"email": None, "phone": None, "external_id": None},
        },
    )
    topics = stack.settings.topics
    async with running_service(stack.settings):
        await stack.publish(good[:10])
        producer = Producer(stack.settings.kafka)
        producer.produce(topics.orders, b"corrupt", b"\xc3\x01" + b"\x00" * 8 + b"\xff\xff")
        producer.produce(
            topics.returns, b"bad-schema-id", encode_confluent(999, {"type": "string"}, "x")
        )
        producer.produce(topics.storefront_events, b"not-avro", b'{"hello": "json"}')
        producer.flush()
        producer.close()
        await stack.publish([no_identity, *good[10:]])
        expected = event_keys(expected_operations(good, stack.integrated, now))
        await wait_for_event_keys(stack, expected)
        dead = await asyncio.to_thread(
            read_committed, stack.settings.kafka, topics.dead_letter, until=4, timeout=30
        )
    reasons = {m.key: (m.header(H_REASON), m.header(H_TOPIC)) for m in dead}
    assert reasons[b"corrupt"] == (b"unknown_fingerprint", topics.orders.encode())
    assert reasons[b"bad-schema-id"] == (b"unknown_schema_id", topics.returns.encode())
    assert reasons[b"not-avro"] == (b"unknown_magic_byte", topics.storefront_events.encode())
    assert reasons[b"no-identity"] == (b"no_identifier", topics.orders.encode())
    no_id = next(m for m in dead if m.key == b"no-identity")
    assert no_id.header(H_MERCHANT) == b"merchant-1"
    assert no_id.header(H_OFFSET) is not None
    assert set(sandbox_event_keys(stack.sandbox, ["merchant-1"])) == expected
