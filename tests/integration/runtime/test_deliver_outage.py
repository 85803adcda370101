"""Deliver rides out a broker outage in the middle of a rebalance: no process exits.

The case from the field: a second deliver member leaves, and 0.3 s later the broker dies (for
25 s there). The remaining member's session expires while the group coordinator is unreachable
(its assignment is lost, its commits fail with "waiting for coordinator"); it must drop that
work, wait, rejoin and finish, every event reaching Klaviyo exactly once. Here the broker stays
down until that member has lost its partitions (the shortest session the settings allow, 6 s),
then restarts (5-15 s more of outage). This module runs its own broker (killing the session's
would disturb other tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from consumer.devstack import KafkaBroker
from consumer.devstack.broker import free_port
from consumer.devstack.traffic import sample_traffic
from tests.helpers.reference import event_keys, expected_operations, sandbox_event_keys
from tests.integration.runtime.conftest import ServiceProcess, Stack
from tests.integration.runtime.test_crashes import (
    delivered,
    split_by_key,
    wait_for_all,
    wait_for_progress,
    wait_ready,
)

pytestmark = pytest.mark.slow

SESSION_TIMEOUT_MS = 6_000  # the least kafka.session_timeout_ms allows
KILL_AFTER_LEAVE_SECONDS = 0.3


@pytest.fixture(scope="module")
def outage_broker() -> Iterator[KafkaBroker]:
    """A broker of this module's own."""
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture(scope="module")
def bootstrap_servers(outage_broker: KafkaBroker) -> str:
    """Overrides the session broker for this module's stacks."""
    return outage_broker.bootstrap_servers


async def outage_until_lost(process: ServiceProcess) -> None:
    """While the broker is down: the process keeps running until its deliver assignment is
    lost (its session expired), which is what the outage is for."""
    async with asyncio.timeout(60):
        while not log_lines(process, "deliver_stage", "partitions lost"):
            assert process.alive(), process.tail()
            await asyncio.sleep(0.2)  # polling a condition with a deadline


def log_lines(process: ServiceProcess, *needles: str) -> list[str]:
    """The process's log lines that contain every one of ``needles``."""
    lines = process.log.read_text(errors="replace").splitlines()
    return [line for line in lines if all(needle in line for needle in needles)]


async def test_member_leaves_then_broker_dies_past_its_session_no_process_exits(
    stack: Stack, outage_broker: KafkaBroker
) -> None:
    stack.overrides["kafka"]["session_timeout_ms"] = SESSION_TIMEOUT_MS
    now = datetime.now(UTC)
    traffic = sample_traffic([m.merchant_id for m in stack.merchants], 80, now)
    expected = event_keys(expected_operations(traffic, stack.integrated, now))
    first, second = split_by_key(traffic, 2)
    a = ServiceProcess(stack, "outage-a", http_port=free_port())
    b = ServiceProcess(stack, "outage-b", stage="deliver", http_port=free_port())
    try:
        a.start()
        b.start()
        await asyncio.gather(wait_ready(a), wait_ready(b))
        await stack.publish(first)
        await wait_for_progress(stack, a, "deliver", (0, delivered(stack)), 50)
        assert await asyncio.to_thread(b.terminate) == 0, b.tail()
        await asyncio.sleep(KILL_AFTER_LEAVE_SECONDS)  # the fault's timing, as reported
        await asyncio.to_thread(outage_broker.kill)
        try:
            await outage_until_lost(a)
        finally:
            await asyncio.to_thread(outage_broker.start)
        b.start()  # the second member comes back too: one more rebalance after the outage
        await stack.publish(second)
        await wait_for_all(stack, expected, seconds=120)
        assert a.alive(), a.tail()
        assert b.alive(), b.tail()
        assert a.terminate() == 0, a.tail()
        assert b.terminate() == 0, b.tail()
    finally:
        for process in (a, b):
            if process.alive():
                process.kill()
    # Deliver rode it out itself: lost partitions dropped, commits retried; never rebuilt.
    assert log_lines(a, "deliver_stage", "partitions lost"), "no session expired: no outage"
    assert not log_lines(a, "supervisor", '"stage":"deliver"'), a.tail(200)
    stored = sandbox_event_keys(stack.sandbox, [m.merchant_id for m in stack.merchants])
    assert len(stored) == len(set(stored))
    assert set(stored) == expected
