"""The deliver stage under a backlog, default delivery settings, a real broker and sandbox:
many merchants' operations in one outbox partition, as the outbox is keyed by merchant."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from consumer.kafka import (
    KafkaAdmin,
    KafkaConsumer,
    RetriableKafkaError,
    TopicPartition,
    TopicSpec,
)
from consumer.klaviyo import BULK_CREATE_EVENTS
from consumer.observability import Health, Metrics
from consumer.outbox import encode_operation
from consumer.runtime.clients import BrokerClients
from consumer.runtime.deliver_stage import DeliverStage
from consumer.sandbox import Sandbox
from consumer.settings import Settings
from tests.helpers.kafka import Record, produce_records, unique_name
from tests.unit.deliver import factories

MERCHANTS = [f"merchant-{n}" for n in range(8)]
KEYS = {m: f"pk_test_{m.replace('-', '_')}_0001" for m in MERCHANTS}
BOUND = Settings().delivery.max_in_flight_per_partition  # the default, 10,000
HOLD_SECONDS = 10.0  # Klaviyo's answer delay in the bound test (its sandbox waits that out)


def settings_for(bootstrap_servers: str, sandbox: Sandbox, **delivery: int) -> Settings:
    prefix = unique_name("deliver-backlog")
    topics = {name: f"{prefix}-{name}" for name in ("outbox", "dead_letter", "parked")}
    return Settings(
        kafka={"bootstrap_servers": bootstrap_servers, "group_id": prefix},
        topics=topics,
        klaviyo={"base_url": sandbox.url},
        delivery=delivery,
    )


def publish(settings: Settings, merchants: list[str], start: int = 0) -> int:
    """One event per entry of ``merchants``, in that order, in one outbox partition."""
    admin = KafkaAdmin(settings.kafka)
    topics = settings.topics
    admin.ensure_topics(
        [TopicSpec(t, 1) for t in (topics.outbox, topics.dead_letter, topics.parked)]
    )
    records = [
        Record(m.encode(), encode_operation(factories.event(n, merchant=m)))
        for n, m in enumerate(merchants, start)
    ]
    produce_records(settings.kafka, topics.outbox, records)
    return len(records)


def publish_backlog(settings: Settings, per_merchant: int) -> int:
    """``per_merchant`` events of each merchant, interleaved, in one outbox partition."""
    return publish(settings, [m for _ in range(per_merchant) for m in MERCHANTS])


def request_sizes(sandbox: Sandbox, merchant: str) -> list[int]:
    events = sandbox.events(merchant)
    sizes = Counter(e.request_number for e in events if e.operation_id == BULK_CREATE_EVENTS)
    return [sizes[n] for n in sorted(sizes)]


@asynccontextmanager
async def deliver_stage(settings: Settings, sandbox: Sandbox) -> AsyncIterator[Metrics]:
    """The deliver stage running in this process (stopped on exit); its metrics."""
    for merchant, key in KEYS.items():
        sandbox.add_account(merchant, key)
    merchants = {m: factories.merchant(m, key=k) for m, k in KEYS.items()}
    metrics = Metrics()
    stage = DeliverStage(
        settings, merchants.get, metrics, Health(), "t", clients=BrokerClients(settings.kafka)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(stage.run(stop, shutdown_seconds=2.0))
    try:
        yield metrics
    finally:
        stop.set()
        async with asyncio.timeout(20):
            await task


async def wait_for(
    condition: Callable[[], bool], within: float, progress: Callable[[], object]
) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not reached in {within} s: {progress()}"
        await asyncio.sleep(0.05)  # polling a condition with a deadline


def committed(settings: Settings) -> int:
    """The group's committed offset (0 while none, or while the coordinator is not ready)."""
    consumer = KafkaConsumer(settings.kafka, f"{settings.kafka.group_id}-deliver")
    try:
        (offset,) = consumer.committed([TopicPartition(settings.topics.outbox, 0)])
    except RetriableKafkaError:
        return 0
    finally:
        consumer.close()
    return max(0, offset.offset)


async def test_backlog_of_8_merchants_in_one_partition_goes_out_in_full_requests(
    bootstrap_servers: str, sandbox: Sandbox
) -> None:
    """Default settings: every request but each merchant's last carries 1,000 events."""
    settings = settings_for(bootstrap_servers, sandbox)
    total = await asyncio.to_thread(publish_backlog, settings, 2_500)
    async with deliver_stage(settings, sandbox):
        await sandbox.wait_for_events(MERCHANTS[-1], 2_500, timeout=60)
        for merchant in MERCHANTS:
            await sandbox.wait_for_events(merchant, 2_500, timeout=30)
        await wait_for(lambda: committed(settings) == total, 30, lambda: committed(settings))
    for merchant in MERCHANTS:
        assert request_sizes(sandbox, merchant) == [1_000, 1_000, 500], merchant


async def test_a_paused_partition_whose_lanes_only_input_can_fill_resumes_below_its_bound(
    bootstrap_servers: str, sandbox: Sandbox
) -> None:
    """Bound 2,000: the stage pauses after a's 1,000 and b's and c's first 500 each; a's full
    request goes out and is answered. What waits (1,000: b's and c's halves) is not below
    half the bound, but nothing of the partition is in a request, so only more input can
    fill b's and c's batches: the partition resumes (before, they were sent as 500s)."""
    a, b, c = MERCHANTS[:3]
    settings = settings_for(bootstrap_servers, sandbox, max_in_flight_per_partition=2_000)
    head = [a, a, b, c] * 500
    tail = [a] * 1_000 + [b, c] * 500 + [a] * 5_000
    total = await asyncio.to_thread(publish, settings, head + tail)
    async with deliver_stage(settings, sandbox):
        await wait_for(lambda: committed(settings) == total, 60, lambda: committed(settings))
    assert request_sizes(sandbox, b) == [1_000]
    assert request_sizes(sandbox, c) == [1_000]


async def test_operations_in_requests_do_not_count_against_the_in_flight_bound(
    bootstrap_servers: str, sandbox: Sandbox
) -> None:
    """With every merchant's first request held by Klaviyo, the stage reads on until what
    *waits* reaches the bound: 8 x 1,000 in requests + 10,000 waiting (counting the requests,
    it stopped at 10,000 and a lane had nothing to fill its next batch with)."""
    settings = settings_for(bootstrap_servers, sandbox)
    for merchant in MERCHANTS:
        sandbox.faults(merchant).add_latency(HOLD_SECONDS)
    total = await asyncio.to_thread(publish_backlog, settings, 3_000)
    async with deliver_stage(settings, sandbox) as metrics:

        def in_flight() -> float:
            value = metrics.registry.get_sample_value("klaviyo_consumer_operations_in_flight")
            return value or 0.0

        in_requests = len(MERCHANTS) * 1_000
        await wait_for(lambda: in_flight() >= in_requests + BOUND, HOLD_SECONDS - 2, in_flight)
        assert in_flight() < in_requests + BOUND + 1_000  # paused: the bound + one poll
        assert committed(settings) == 0 < total  # nothing finished yet: nothing committed
