"""The service starts before its broker: it waits (not ready), then processes everything.

Uses the session's broker, killed for the test and started again once the process has been
seen waiting (two attempts, answering "not ready"); the broker's restart, 5-15 s, is the rest of
the outage. About 25 s in all.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
import pytest

from consumer.devstack import KafkaBroker
from consumer.devstack.broker import free_port
from consumer.devstack.traffic import sample_traffic
from consumer.runtime.startup import wait_for_kafka
from consumer.settings import Settings
from tests.helpers.reference import event_keys, expected_operations, sandbox_event_keys
from tests.integration.runtime.conftest import ServiceProcess, Stack
from tests.integration.runtime.test_crashes import split_by_key, wait_for_all, wait_ready

pytestmark = pytest.mark.slow

WAITING = "waiting for the Kafka broker"
ATTEMPTS = 2
"""Failed attempts to reach the broker the process is seen through before it comes back."""


async def readyz_status(http: aiohttp.ClientSession, process: ServiceProcess) -> int | None:
    try:
        async with http.get(f"{process.url()}/readyz") as response:
            return response.status
    except aiohttp.ClientConnectionError:
        return None  # not listening yet


def attempts_waited(process: ServiceProcess) -> int:
    """Failed attempts to reach the broker the process has logged so far."""
    return process.log.read_text(errors="replace").count(WAITING)


async def test_service_started_before_its_broker_becomes_ready_and_processes_everything(
    stack: Stack, kafka_broker: KafkaBroker | None
) -> None:
    if kafka_broker is None:
        pytest.skip("needs the session's own broker (not an external one)")
    stack.overrides["kafka"]["startup_timeout_seconds"] = 120
    now = datetime.now(UTC)
    traffic = sample_traffic([m.merchant_id for m in stack.merchants], 200, now)
    expected = event_keys(expected_operations(traffic, stack.integrated, now))
    before, after = split_by_key(traffic, 2)
    await stack.publish(before)  # already waiting in the topics when the broker comes back
    process = ServiceProcess(stack, "early", http_port=free_port())
    await asyncio.to_thread(kafka_broker.kill)
    try:
        process.start()
        statuses: set[int | None] = set()
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            # Watch the process through the outage until it has waited out a few attempts.
            while 503 not in statuses or attempts_waited(process) < ATTEMPTS:
                assert process.alive(), process.tail()
                statuses.add(await readyz_status(http, process))
                await asyncio.sleep(0.2)  # polling a condition with a deadline
        assert statuses <= {None, 503}, statuses
        assert 503 in statuses  # the endpoints answer, "not ready", while it waits
        log = process.log.read_text(errors="replace")
        assert WAITING in log
        assert "kafka.bootstrap_servers" in log
        assert kafka_broker.bootstrap_servers in log

        await asyncio.to_thread(kafka_broker.start)
        await wait_ready(process)
        await stack.publish(after)
        await wait_for_all(stack, expected, seconds=120)
        assert process.alive(), process.tail()
        assert process.terminate() == 0, process.tail()
    finally:
        if process.alive():
            process.kill()
        if not kafka_broker.running:
            await asyncio.to_thread(kafka_broker.start)
    stored = sandbox_event_keys(stack.sandbox, [m.merchant_id for m in stack.merchants])
    assert len(stored) == len(set(stored))
    assert set(stored) == expected


async def test_wait_for_kafka_stops_waiting_when_told_to() -> None:
    """SIGTERM while no broker answers ends the wait after the current attempt (no broker)."""
    settings = Settings(
        kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}", "startup_timeout_seconds": 300}
    )
    stop = asyncio.Event()
    stop.set()
    async with asyncio.timeout(15):
        assert await wait_for_kafka(settings, stop) is False
