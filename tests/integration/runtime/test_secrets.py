"""No merchant API key in logs, metrics, debug output, dead-letter or parked records."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import aiohttp
import pytest

from consumer.devstack.traffic import sample_traffic
from consumer.kafka import Producer
from tests.helpers.kafka import read_committed
from tests.helpers.secrets import SecretScanner
from tests.integration.runtime.conftest import Stack, running_service


async def test_service_with_revoked_key_leaks_no_key_anywhere(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = [m.api_key for m in stack.merchants if m.api_key]
    scanner = SecretScanner(*keys)
    revoked = stack.merchants[0]
    assert revoked.api_key is not None
    stack.sandbox.revoke_key(revoked.api_key)  # its operations get parked with Klaviyo's 401
    topics = stack.settings.topics
    async with running_service(stack.settings) as service:
        await stack.publish(sample_traffic([revoked.merchant_id], 3, datetime.now(UTC)))
        producer = Producer(stack.settings.kafka)
        producer.produce(topics.orders, b"poison", b"\x00\x00\x00\x00\x07garbage")
        producer.flush()
        producer.close()
        parked = await asyncio.to_thread(
            read_committed, stack.settings.kafka, topics.parked, until=1, timeout=60
        )
        dead = await asyncio.to_thread(
            read_committed, stack.settings.kafka, topics.dead_letter, until=1, timeout=60
        )
        async with aiohttp.ClientSession() as http:
            for path in ("/metrics", "/debug/merchants", "/readyz", "/healthz"):
                async with http.get(f"{service.url}{path}") as response:
                    scanner.add(path, await response.read())
    assert parked[0].header("klaviyo_consumer.reason") == b"unauthorized"
    scanner.add_messages("parked", parked)
    scanner.add_messages("dead-letter", dead)
    scanner.add_logs(caplog.records)
    scanner.add("settings repr", repr(stack.settings))
    scanner.assert_clean()
