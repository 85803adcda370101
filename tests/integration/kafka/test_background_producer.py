"""``BackgroundProducer``: sends never block the event loop; each future tells a record's fate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from consumer.devstack import free_port
from consumer.kafka import BackgroundProducer, KafkaError, RetriableKafkaError
from consumer.settings import KafkaSettings
from tests.helpers.kafka import drain


async def test_futures_end_once_the_broker_has_the_records(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(partitions=2)
    producer = BackgroundProducer(kafka_settings)
    try:
        sends = [
            producer.send(topic, b"k%d" % (n % 3), b"v%d" % n, [("n", b"%d" % n)])
            for n in range(50)
        ]
        async with asyncio.timeout(30):
            await asyncio.gather(*sends)
        # Acknowledged means readable: no flush, no wait.
        records = await asyncio.to_thread(drain, kafka_settings, topic)
    finally:
        await asyncio.to_thread(producer.close)
    assert sorted(r.value or b"" for r in records) == sorted(b"v%d" % n for n in range(50))
    assert {r.headers for r in records if r.value == b"v7"} == {(("n", b"7"),)}


async def test_a_record_the_broker_refuses_fails_its_future_only(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory()
    producer = BackgroundProducer(kafka_settings, extra={"message.max.bytes": 10_000})
    try:
        too_large = producer.send(topic, b"k", b"x" * 20_000)
        fine = producer.send(topic, b"k", b"small")
        async with asyncio.timeout(30):
            with pytest.raises(KafkaError) as refused:
                await too_large
            await fine
    finally:
        await asyncio.to_thread(producer.close)
    assert not refused.value.retriable
    assert "MSG_SIZE_TOO_LARGE" in str(refused.value)


async def test_without_a_broker_sends_return_at_once_and_the_loop_keeps_turning() -> None:
    unreachable = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    producer = BackgroundProducer(unreachable, extra={"message.timeout.ms": 1_000})
    turns = 0

    async def tick() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0.01)  # a loop task that must keep running meanwhile

    ticker = asyncio.create_task(tick())
    try:
        began = time.monotonic()
        pending = [producer.send("nowhere", None, b"v") for _ in range(200)]
        sent_in = time.monotonic() - began
        async with asyncio.timeout(20):
            outcomes = await asyncio.gather(*pending, return_exceptions=True)
    finally:
        ticker.cancel()
        await asyncio.to_thread(producer.close, 1.0)
    assert sent_in < 0.1
    assert all(isinstance(o, RetriableKafkaError) for o in outcomes), outcomes[:3]
    assert turns >= 20  # the loop ran while librdkafka timed the records out
