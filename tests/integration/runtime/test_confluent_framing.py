"""The local stack speaks both framings: what ``dev up`` wires (registry with the input
schemas, the service pointed at it) and ``dev produce --framing confluent``."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest

from consumer.cli.main import main
from consumer.devstack.registry import LocalSchemaRegistry, register_inputs
from consumer.devstack.traffic import sample_traffic
from consumer.outbox import EventOperation
from consumer.settings import Settings
from tests.helpers.kafka import drain
from tests.helpers.reference import expected_operations
from tests.integration.runtime.conftest import Stack, running_service

MERCHANTS = ["merchant-1", "merchant-2"]
ORDERS = 3


async def test_dev_produce_confluent_is_decoded_via_the_registry_and_delivered(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = LocalSchemaRegistry()
    async with registry.run() as url:
        settings = Settings(**{**stack.overrides, "schema_registry": {"url": url}})
        ids = register_inputs(registry, settings)
        assert set(ids) == {f"{settings.topics.orders}-value", f"{settings.topics.returns}-value",
                            f"{settings.topics.storefront_events}-value"}  # fmt: skip
        for name, value in stack.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("KLAVIYO_CONSUMER_SCHEMA_REGISTRY__URL", url)
        now = datetime.now(UTC)
        expected = [
            op
            for op in expected_operations(
                sample_traffic(MERCHANTS, ORDERS, now), stack.integrated, now
            )
            if isinstance(op, EventOperation)
        ]
        wanted = Counter((op.merchant_id, op.metric) for op in expected)
        async with running_service(settings):
            argv = ["dev", "produce", "--framing", "confluent", "--sample-merchants", "2",
                    "--orders", str(ORDERS)]  # fmt: skip
            assert await asyncio.to_thread(main, argv) == 0
            for merchant in MERCHANTS:
                count = sum(n for (m, _), n in wanted.items() if m == merchant)
                await stack.sandbox.wait_for_events(merchant, count, timeout=60)
        stored = Counter(
            (merchant, event.metric)
            for merchant in MERCHANTS
            for event in stack.sandbox.events(merchant)
        )
        assert stored == wanted
        assert registry.lookups >= 1  # the service fetched writer schemas by id
    framed = drain(settings.kafka, settings.topics.orders)
    assert framed and all((m.value or b"")[:1] == b"\x00" for m in framed)  # Confluent magic
