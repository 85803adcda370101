"""A clean stop of the deliver stage with operations queued behind a rate limit: it stops at
once instead of waiting out its shutdown share, commits only what Klaviyo accepted, and the
next run sends the rest (a real broker and sandbox)."""

from __future__ import annotations

import asyncio
import time

from consumer.kafka import KafkaAdmin, TopicSpec
from consumer.observability import Health, Metrics
from consumer.outbox import encode_operation
from consumer.runtime.clients import BrokerClients
from consumer.runtime.deliver_stage import DeliverStage
from consumer.sandbox import Sandbox
from consumer.settings import Settings
from tests.helpers.kafka import Record, produce_records, unique_name
from tests.integration.deliver.test_stage_backlog import committed, wait_for
from tests.unit.deliver import factories

MERCHANT = "merchant-0"
KEY = "pk_test_merchant_0_0001"
EVENTS = 1_500  # one full request goes out, then the rate limit holds the other 500
SHUTDOWN_SECONDS = 30.0  # the close's share (0.6 x) is 18 s: far more than the stop may take
STOP_WITHIN = 6.0


async def run_stage(settings: Settings, stop: asyncio.Event) -> None:
    merchants = {MERCHANT: factories.merchant(MERCHANT, key=KEY)}
    stage = DeliverStage(
        settings, merchants.get, Metrics(), Health(), "t", clients=BrokerClients(settings.kafka)
    )
    await stage.run(stop, shutdown_seconds=SHUTDOWN_SECONDS)


async def test_clean_stop_behind_a_rate_limit_is_prompt_and_commits_only_the_accepted(
    bootstrap_servers: str, sandbox: Sandbox
) -> None:
    prefix = unique_name("deliver-stop")
    topics = {name: f"{prefix}-{name}" for name in ("outbox", "dead_letter", "parked")}
    base = {
        "kafka": {"bootstrap_servers": bootstrap_servers, "group_id": prefix},
        "topics": topics,
        "klaviyo": {"base_url": sandbox.url},
    }
    # One request a minute: after the first, the lane must wait about 60 s to send again.
    one_a_minute = {"events_burst_per_second": 1, "events_steady_per_minute": 1}
    limited = Settings(**base, delivery=one_a_minute)
    await asyncio.to_thread(
        KafkaAdmin(limited.kafka).ensure_topics, [TopicSpec(t, 1) for t in topics.values()]
    )
    records = [
        Record(MERCHANT.encode(), encode_operation(factories.event(n, merchant=MERCHANT)))
        for n in range(EVENTS)
    ]
    await asyncio.to_thread(produce_records, limited.kafka, topics["outbox"], records)
    sandbox.add_account(MERCHANT, KEY)

    def progress() -> tuple[int, int]:
        return len(sandbox.events(MERCHANT)), committed(limited)

    stop = asyncio.Event()
    task = asyncio.create_task(run_stage(limited, stop))
    # The first request is accepted and committed; the rest waits on the rate limit.
    await wait_for(lambda: progress() == (1_000, 1_000), 30, progress)
    stop.set()
    stopping = time.monotonic()
    async with asyncio.timeout(STOP_WITHIN):  # without the change: 18 s, the whole share
        await task
    assert time.monotonic() - stopping < STOP_WITHIN
    assert progress() == (1_000, 1_000)  # nothing committed past what Klaviyo accepted

    # The next run (a fresh rate limiter) sends what the stop left.
    stop = asyncio.Event()
    task = asyncio.create_task(run_stage(Settings(**base), stop))
    try:
        await wait_for(lambda: progress()[1] == EVENTS, 30, progress)
    finally:
        stop.set()
        async with asyncio.timeout(20):
            await task
    unique = {e.unique_id for e in sandbox.events(MERCHANT)}
    assert len(unique) == EVENTS
