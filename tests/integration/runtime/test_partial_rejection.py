"""One event in 1,000 refused by Klaviyo, end to end: the real service, broker and sandbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp

from consumer.devstack.traffic import sample_traffic
from consumer.kafka import KafkaConsumer, RetriableKafkaError, TopicPartition
from consumer.outbox import EventOperation, decode_operation
from consumer.runtime.dead_letter import H_MERCHANT, H_MESSAGE, H_REASON
from consumer.sandbox import EventRejection
from consumer.settings import Settings
from tests.helpers.kafka import drain, read_committed
from tests.helpers.reference import expected_operations
from tests.integration.runtime.conftest import Stack, running_service

MERCHANT = "merchant-1"
REASON = "Profile is suppressed for this metric."
# The first 373 records of 89 sample orders derive exactly 1,000 events (asserted below).
ORDERS, RECORDS, EVENTS = 89, 373, 1000


def deliver_committed_outbox(settings: Settings) -> bool:
    """Whether deliver committed past every outbox record (the outbox is transactional, so
    its end offsets count commit markers a consumer never commits past)."""
    records = drain(settings.kafka, settings.topics.outbox)
    needed: dict[TopicPartition, int] = {}
    for record in records:
        tp = record.topic_partition
        needed[tp] = max(needed.get(tp, 0), record.offset + 1)
    consumer = KafkaConsumer(settings.kafka, f"{settings.kafka.group_id}-deliver")
    try:
        committed = {o.topic_partition: o.offset for o in consumer.committed(list(needed))}
    except RetriableKafkaError:
        return False  # e.g. the group coordinator is still loading: ask again
    finally:
        consumer.close()
    return bool(needed) and all(committed[tp] >= end for tp, end in needed.items())


async def wait_for_deliver_commits(settings: Settings, within: float) -> None:
    """Return once deliver committed every outbox record, or fail after ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            if await asyncio.to_thread(deliver_committed_outbox, settings):
                return
            await asyncio.sleep(0.1)  # polling a condition with a deadline


async def test_one_event_refused_in_1000_is_dead_lettered_and_the_other_999_stored(
    stack: Stack,
) -> None:
    now = datetime.now(UTC)
    traffic = sample_traffic([MERCHANT], ORDERS, now)[:RECORDS]
    events = [
        op
        for op in expected_operations(traffic, stack.integrated, now)
        if isinstance(op, EventOperation)
    ]
    assert len(events) == EVENTS
    refused = events[EVENTS // 2]
    assert [e.unique_id for e in events].count(refused.unique_id) == 1
    stack.sandbox.faults(MERCHANT).reject_events(
        EventRejection(unique_id=refused.unique_id, detail=REASON)
    )
    settings = stack.settings
    async with running_service(settings) as service:
        await stack.publish(traffic)
        [dead] = await asyncio.to_thread(
            read_committed, settings.kafka, settings.topics.dead_letter, until=1, timeout=30
        )
        await stack.sandbox.wait_for_events(MERCHANT, EVENTS - 1, timeout=30)
        await wait_for_deliver_commits(settings, within=30)
        async with aiohttp.ClientSession() as http, http.get(f"{service.url}/readyz") as ready:
            assert ready.status == 200, "the service keeps running after the rejection"
        assert not service.stop.is_set()
    stored = {e.unique_id for e in stack.sandbox.events(MERCHANT)}
    assert stack.sandbox.unique_event_count(MERCHANT) == EVENTS - 1
    assert stored == {e.unique_id for e in events} - {refused.unique_id}
    assert len(drain(settings.kafka, settings.topics.dead_letter)) == 1
    assert dead.header(H_REASON) == b"klaviyo_rejected"
    assert dead.header(H_MERCHANT) == MERCHANT.encode()
    message = (dead.header(H_MESSAGE) or b"").decode()
    assert REASON in message
    assert "/attributes/unique_id" in message, "Klaviyo's pointer names the refused field"
    assert decode_operation(dead.value or b"") == refused
