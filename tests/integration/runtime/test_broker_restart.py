"""The broker restarts mid-stream: the service rides it out, losing and doubling nothing.

This module runs its own broker (restarting the session's would disturb other tests); the
``bootstrap_servers`` fixture below points the runtime ``stack`` fixture at it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from consumer.devstack import KafkaBroker
from consumer.devstack.broker import free_port
from consumer.devstack.traffic import sample_traffic
from tests.helpers.reference import (
    event_keys,
    expected_operations,
    expected_outbox,
    outbox_content,
    sandbox_event_keys,
)
from tests.integration.runtime.conftest import ServiceProcess, Stack
from tests.integration.runtime.test_crashes import (
    delivered,
    outbox_end,
    split_by_key,
    wait_for_all,
    wait_for_progress,
    wait_ready,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def restartable_broker() -> Iterator[KafkaBroker]:
    """A broker of this module's own."""
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture(scope="module")
def bootstrap_servers(restartable_broker: KafkaBroker) -> str:
    """Overrides the session broker for this module's stacks."""
    return restartable_broker.bootstrap_servers


@pytest.mark.parametrize("crash", [False, True], ids=["clean-restart", "kill-9-restart"])
async def test_broker_restart_mid_stream_loses_and_doubles_nothing(
    stack: Stack, restartable_broker: KafkaBroker, crash: bool
) -> None:
    now = datetime.now(UTC)
    traffic = sample_traffic([m.merchant_id for m in stack.merchants], 300, now)
    expected = expected_operations(traffic, stack.integrated, now)
    expected_events = event_keys(expected)
    first, second = split_by_key(traffic, 2)
    process = ServiceProcess(stack, "restart-a", http_port=free_port())
    try:
        process.start()
        await wait_ready(process)
        baseline = (await asyncio.to_thread(outbox_end, stack), delivered(stack))
        publishing = asyncio.create_task(stack.publish(first))
        await wait_for_progress(stack, process, "derive", baseline, 500)
        await asyncio.to_thread(restartable_broker.restart, crash=crash)
        await publishing
        await stack.publish(second)
        await wait_for_all(stack, expected_events, seconds=180)
        assert process.alive(), process.tail()
        assert process.terminate() == 0, process.tail()
    finally:
        if process.alive():
            process.kill()
    stored = sandbox_event_keys(stack.sandbox, [m.merchant_id for m in stack.merchants])
    assert len(stored) == len(set(stored))
    assert set(stored) == expected_events
    assert outbox_content(await stack.outbox()) == expected_outbox(expected)


async def test_sigterm_while_the_broker_is_down_exits_within_the_deadline(
    stack: Stack, restartable_broker: KafkaBroker
) -> None:
    process = ServiceProcess(stack, "outage-a", http_port=free_port())
    try:
        process.start()
        await wait_ready(process)
        merchants = [m.merchant_id for m in stack.merchants]
        await stack.publish(sample_traffic(merchants, 20, datetime.now(UTC)))
        await asyncio.to_thread(restartable_broker.kill)
        # Kafka calls now block in worker threads; the shutdown budget (15 s) plus the
        # watchdog's grace still bound the exit.
        code = await asyncio.to_thread(process.terminate, 30.0)
        assert code in (0, 1), process.tail()
    finally:
        if process.alive():
            process.kill()
        await asyncio.to_thread(restartable_broker.start)
