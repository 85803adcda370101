"""A rebalance storm in deliver: a member joins and leaves ten times while records flow.

Every rebalance revokes all of the steady member's outbox partitions mid-delivery (eager
assignment): their lanes stop, their work is dropped and consumed again from the committed
offsets, by whoever owns them next. Nothing may raise, and Klaviyo must count every event
exactly once. Each visiting member has its own static id, so the ones that left still hold
partitions until their session expires: joins and expiries overlap, as in a rolling deploy.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from consumer.devstack.broker import free_port
from consumer.devstack.traffic import InputRecord, sample_traffic
from tests.helpers.reference import event_keys, expected_operations, sandbox_event_keys
from tests.integration.runtime.conftest import ServiceProcess, Stack
from tests.integration.runtime.test_crashes import split_by_key, wait_for_all, wait_ready

pytestmark = pytest.mark.slow

VISITS = 10
CHUNKS = 20
CHUNK_EVERY_SECONDS = 2.0
PROBLEMS = ("Traceback", '"level":"error"', '"level":"critical"')


async def trickle(stack: Stack, chunks: list[list[InputRecord]]) -> None:
    """Publish one chunk every ``CHUNK_EVERY_SECONDS``: records flow all through the storm."""
    for chunk in chunks:
        await stack.publish(chunk)
        await asyncio.sleep(CHUNK_EVERY_SECONDS)  # the traffic's pace, not a synchronisation


def problems(process: ServiceProcess) -> list[str]:
    """Log lines that report an exception or an error."""
    lines = process.log.read_text(errors="replace").splitlines()
    return [line for line in lines if any(p in line for p in PROBLEMS)]


async def test_member_joins_and_leaves_10_times_exactly_once_no_exception(stack: Stack) -> None:
    stack.overrides["kafka"]["session_timeout_ms"] = 6_000  # departed members expire sooner
    # Small batches to a slow Klaviyo: deliver always has requests in flight and operations
    # queued, so rebalances catch lanes mid-send.
    stack.overrides["delivery"]["batch_max_events"] = 10
    for merchant in stack.merchants:
        stack.sandbox.faults(merchant.merchant_id).add_latency(0.2)
    now = datetime.now(UTC)
    traffic = sample_traffic([m.merchant_id for m in stack.merchants], 100, now)
    expected = event_keys(expected_operations(traffic, stack.integrated, now))
    steady = ServiceProcess(stack, "storm-a", http_port=free_port())
    visitors = [
        ServiceProcess(stack, f"storm-b{n}", stage="deliver", http_port=free_port())
        for n in range(VISITS)
    ]
    try:
        steady.start()
        await wait_ready(steady)
        flowing = asyncio.create_task(trickle(stack, split_by_key(traffic, CHUNKS)))
        visitors[0].start()
        for number, visitor in enumerate(visitors):
            await wait_ready(visitor)  # joined: the group rebalanced around it
            if number + 1 < VISITS:
                # The next one boots (seconds before it can join) while this one leaves, as
                # in a rolling deploy; it joins once booted, after this one was ready.
                visitors[number + 1].start()
            assert await asyncio.to_thread(visitor.terminate) == 0, visitor.tail()
            assert steady.alive(), steady.tail()
        await flowing
        await wait_for_all(stack, expected, seconds=120)
        assert steady.terminate() == 0, steady.tail()
    finally:
        for process in (steady, *visitors):
            if process.alive():
                process.kill()
    revoked = [line for line in steady.log.read_text().splitlines() if "deliver_stage" in line]
    assert sum('"partitions revoked"' in line for line in revoked) >= VISITS, steady.tail(200)
    # Some rebalances caught work unfinished: it was dropped there and sent by the next owner.
    assert any('"unfinished operations dropped"' in line for line in revoked), steady.tail(200)
    for process in (steady, *visitors):
        assert problems(process) == [], process.instance
    stored = sandbox_event_keys(stack.sandbox, [m.merchant_id for m in stack.merchants])
    assert len(stored) == len(set(stored))
    assert set(stored) == expected
