"""Failover on a three-broker cluster: partition leaders die (kill -9) mid-stream.

Production runs Kafka replicated: three copies of every partition, two of them in sync
(``dev broker --brokers 3`` builds the same). When a broker dies, its leaderships move to
followers within seconds and every client must follow: producers (the transactional one of
derive, the idempotent ones of the tests and of deliver) retry on the new leader, consumers
fetch from it, group and transaction coordinators move with their partitions. First the
leader of an input partition dies while derive works, then the leader of an outbox partition
while deliver works; each comes back later. The process never exits, and the outbox and
Klaviyo hold every expected record exactly once. This module runs its own cluster.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from consumer.devstack import KafkaCluster
from consumer.devstack.broker import free_port
from consumer.devstack.traffic import sample_traffic
from consumer.kafka import KafkaAdmin, KafkaError
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

STEP = 30
"""Records a stage must move past a point (the kill) to count as going on."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    """Three nodes of this module's own."""
    with KafkaCluster(3) as running:
        yield running


@pytest.fixture(scope="module")
def bootstrap_servers(cluster: KafkaCluster) -> str:
    """Overrides the session broker for this module's stacks."""
    return cluster.bootstrap_servers


@pytest.fixture
def replication_factor() -> int:
    """Every topic replicated on all three nodes, as in production."""
    return 3


async def progress(stack: Stack) -> tuple[int, int]:
    """Where derive (outbox end) and deliver (events stored) are now.

    Asked again while a partition has no leader yet (the seconds after a kill).
    """
    async with asyncio.timeout(60):
        while True:
            try:
                return await asyncio.to_thread(outbox_end, stack), delivered(stack)
            except KafkaError:  # e.g. _DESTROY_BROKER while the killed node leaves metadata
                continue  # the request itself waited (up to its timeout) for the failover


def leader(stack: Stack, topic: str, partition: int = 0) -> int:
    """The node id leading ``topic``'s ``partition`` now."""
    node = KafkaAdmin(stack.settings.kafka).partition_leaders(topic)[partition]
    assert node > 0, f"{topic}[{partition}] has no leader"
    return node


async def test_leaders_of_an_input_then_an_outbox_partition_die_mid_stream(
    stack: Stack, cluster: KafkaCluster
) -> None:
    for merchant in stack.merchants:
        stack.sandbox.faults(merchant.merchant_id).add_latency(0.3)  # deliver stays busy
    now = datetime.now(UTC)
    traffic = sample_traffic([m.merchant_id for m in stack.merchants], 120, now)
    expected = expected_operations(traffic, stack.integrated, now)
    first, second, third = split_by_key(traffic, 3)
    process = ServiceProcess(stack, "failover-a", http_port=free_port())
    killed: list[int] = []
    try:
        process.start()
        await wait_ready(process)

        # The leader of an input partition, while derive reads it and writes the outbox.
        publishing = asyncio.create_task(stack.publish(first))
        await wait_for_progress(stack, process, "derive", await progress(stack), STEP)
        node = cluster.node(leader(stack, stack.settings.topics.orders))
        await asyncio.to_thread(node.kill)
        killed.append(node.config.node_id)
        await publishing
        at_kill = await progress(stack)
        await stack.publish(second)
        await wait_for_progress(stack, process, "derive", at_kill, STEP)
        # It comes back while the records of the next phase flow (a JVM takes seconds to
        # start); the next kill waits until it answers, so two nodes stay up throughout.
        await asyncio.to_thread(node.launch)
        back = node

        # The leader of an outbox partition, while derive writes it and deliver reads it.
        publishing = asyncio.create_task(stack.publish(third))
        await wait_for_progress(stack, process, "derive", await progress(stack), STEP)
        await asyncio.to_thread(back.wait_started, time.monotonic() + back.startup_timeout)
        node = cluster.node(leader(stack, stack.settings.topics.outbox))
        await asyncio.to_thread(node.kill)
        killed.append(node.config.node_id)
        await publishing
        await wait_for_all(stack, event_keys(expected), seconds=180)  # on two nodes
        await asyncio.to_thread(node.start)

        assert process.alive(), process.tail()
        assert process.terminate() == 0, process.tail()
    finally:
        if process.alive():
            process.kill()
        await asyncio.to_thread(cluster.start)  # whatever died comes back for the next test
    assert len(killed) == 2
    stored = sandbox_event_keys(stack.sandbox, [m.merchant_id for m in stack.merchants])
    assert len(stored) == len(set(stored))
    assert set(stored) == event_keys(expected)
    assert outbox_content(await stack.outbox()) == expected_outbox(expected)
