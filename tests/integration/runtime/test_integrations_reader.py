"""The integrations table's reader dies inside a running service: ``/readyz`` 503, then back."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.integration.runtime.conftest import Stack, running_service

DEADLINE = 30.0


async def readyz(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, object]]:
    async with session.get(f"{url}/readyz") as response:
        return response.status, await response.json()


async def test_killed_integrations_reader_makes_readyz_503_until_restarted(stack: Stack) -> None:
    async with running_service(stack.settings) as service, aiohttp.ClientSession() as session:
        table = service.table
        assert table is not None
        assert table._reader is not None
        assert (await readyz(session, service.url))[0] == 200

        table._reader.cancel()  # the reader task dies
        async with asyncio.timeout(DEADLINE):
            await table.wait_until(lambda t: not t.ready)
        # The restart waits out a back-off (1 s) first: this is the stale window.
        status, body = await readyz(session, service.url)
        assert status == 503, body
        assert body["components"]["integrations"] is False  # type: ignore[index]
        sample = service.metrics.registry.get_sample_value
        assert sample("klaviyo_consumer_integrations_reader_up") == 0
        failures = sample(
            "klaviyo_consumer_integrations_reader_failures_total", {"error": "ReaderStopped"}
        )
        assert failures == 1

        async with asyncio.timeout(DEADLINE):
            await table.wait_until(lambda t: t.ready)
        assert (await readyz(session, service.url))[0] == 200
        assert sample("klaviyo_consumer_integrations_reader_up") == 1
        assert set(table.merchant_ids()) == set(stack.integrated)
