"""The guarantees under failure: kill -9 and rebalances.

Each test computes what a correct run produces with the pure derivation alone
(``tests/helpers/reference.py``) and compares: the committed outbox must equal it as a
multiset (nothing missing, nothing doubled), and the sandbox must hold each expected event
exactly once by Klaviyo's count (profile, metric, unique_id).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import aiohttp
import pytest

from consumer.devstack.broker import free_port
from consumer.devstack.traffic import InputRecord, sample_traffic
from consumer.kafka import KafkaConsumer, KafkaError, TopicPartition
from tests.helpers.reference import (
    event_keys,
    expected_operations,
    expected_outbox,
    outbox_content,
    sandbox_event_keys,
)
from tests.integration.runtime.conftest import (
    ServiceProcess,
    Stack,
    inputs_caught_up,
)

pytestmark = pytest.mark.slow


def split_by_key(records: Sequence[InputRecord], parts: int) -> list[list[InputRecord]]:
    """``parts`` phases; each key's records are spread over them in order."""
    streams: dict[str, list[InputRecord]] = defaultdict(list)
    for record in records:
        streams[record.key].append(record)
    phases: list[list[InputRecord]] = [[] for _ in range(parts)]
    position = {key: 0 for key in streams}
    for record in records:  # keep the interleaving of the original order
        stream = streams[record.key]
        index = position[record.key]
        position[record.key] += 1
        phases[min(parts - 1, index * parts // len(stream))].append(record)
    return phases


async def wait_for_all(
    stack: Stack, expected: set[tuple[str, str, str, str]], seconds: float
) -> None:
    """Until the sandbox stored every expected event."""
    for account, count in Counter(key[0] for key in expected).items():
        await stack.sandbox.wait_for_events(account, count, timeout=seconds)


def outbox_end(stack: Stack) -> int:
    """Sum of the outbox's end offsets: grows as derive commits (or aborts) transactions."""
    topic = stack.settings.topics.outbox
    consumer = KafkaConsumer(stack.settings.kafka, f"{stack.settings.kafka.group_id}-probe")
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in range(3))
    finally:
        consumer.close()


def delivered(stack: Stack) -> int:
    """Events the sandbox stored so far, over all merchants."""
    return sum(len(stack.sandbox.events(m.merchant_id)) for m in stack.merchants)


async def wait_for_progress(
    stack: Stack, process: ServiceProcess, stage: str, baseline: tuple[int, int], step: int
) -> None:
    """Until ``stage`` moved ``step`` records past ``baseline`` (outbox end, events stored)."""
    async with asyncio.timeout(90):
        while True:
            assert process.alive(), process.tail()
            if stage == "derive":
                try:
                    end = await asyncio.to_thread(outbox_end, stack)
                except KafkaError:  # the probe met a partition between leaders (failover tests)
                    continue
                if end >= baseline[0] + step:
                    return
            elif delivered(stack) >= baseline[1] + step:
                return
            await asyncio.sleep(0.02)  # polling progress with a deadline


async def test_service_killed_9_times_mid_stream_loses_and_doubles_nothing(stack: Stack) -> None:
    now = datetime.now(UTC)
    traffic = sample_traffic([m.merchant_id for m in stack.merchants], 1_150, now)
    assert len(traffic) >= 20_000
    expected = expected_operations(traffic, stack.integrated, now)
    expected_events = event_keys(expected)
    rng = random.Random(1234)  # reproducible kill points
    process = ServiceProcess(stack, "crash-a", http_port=free_port())
    killed_in: list[str] = []
    try:
        process.start()
        await wait_ready(process)
        for number, chunk in enumerate(split_by_key(traffic, 6)):
            # Kill while this chunk flows: alternately mid-derive and mid-deliver.
            stage = ("derive", "deliver")[number % 2]
            baseline = (await asyncio.to_thread(outbox_end, stack), delivered(stack))
            publishing = asyncio.create_task(stack.publish(chunk))
            await wait_for_progress(stack, process, stage, baseline, rng.randrange(100, 2500))
            process.kill()
            killed_in.append(stage)
            process.start()
            await publishing
        await wait_for_all(stack, expected_events, seconds=240)
        assert process.terminate() == 0, process.tail()
    finally:
        if process.alive():
            process.kill()
    assert killed_in.count("derive") >= 3 and killed_in.count("deliver") >= 3
    stored = sandbox_event_keys(stack.sandbox, [m.merchant_id for m in stack.merchants])
    assert len(stored) == len(set(stored))
    assert set(stored) == expected_events
    assert outbox_content(await stack.outbox()) == expected_outbox(expected)


async def test_second_instance_joins_and_leaves_state_follows_partitions(stack: Stack) -> None:
    now = datetime.now(UTC)
    traffic = sample_traffic([m.merchant_id for m in stack.merchants], 150, now)
    expected = expected_operations(traffic, stack.integrated, now)
    first, second, third = split_by_key(traffic, 3)
    a = ServiceProcess(stack, "rebalance-a", http_port=free_port())
    b = ServiceProcess(stack, "rebalance-b", http_port=free_port())
    try:
        a.start()
        await stack.publish(first)
        await wait_caught_up(stack)
        b.start()
        await wait_ready(b)
        await stack.publish(second)  # orders begun on A continue on B for B's partitions
        await wait_caught_up(stack)
        assert b.terminate() == 0, b.tail()  # leaves the group; A takes everything back
        await stack.publish(third)
        await wait_for_all(stack, event_keys(expected), seconds=120)
        assert a.terminate() == 0, a.tail()
    finally:
        for process in (a, b):
            if process.alive():
                process.kill()
    assert "partitions assigned" in b.tail(400), "B never owned partitions: no rebalance happened"
    stored = sandbox_event_keys(stack.sandbox, [m.merchant_id for m in stack.merchants])
    assert len(stored) == len(set(stored))
    assert set(stored) == event_keys(expected)
    assert outbox_content(await stack.outbox()) == expected_outbox(expected)


async def wait_caught_up(stack: Stack) -> None:
    """Until the derive stage committed every published input record."""
    async with asyncio.timeout(90):
        while True:
            if await asyncio.to_thread(inputs_caught_up, stack.settings):
                return
            await asyncio.sleep(0.1)  # polling a condition with a deadline


async def wait_ready(process: ServiceProcess) -> None:
    """Until the process answers /readyz with 200 (it owns partitions)."""
    async with asyncio.timeout(60), aiohttp.ClientSession() as http:
        while True:
            assert process.alive(), process.tail()
            try:
                async with http.get(f"{process.url()}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass  # not listening yet
            await asyncio.sleep(0.1)  # polling a condition with a deadline
