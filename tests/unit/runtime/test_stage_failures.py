"""The stages' failure paths, on fake Kafka clients (``KafkaClients``): no broker needed."""

from __future__ import annotations

import asyncio

from consumer.kafka import AbortableKafkaError, RetriableKafkaError, TopicPartition
from consumer.kafka import TopicPartitionOffset as Offset
from consumer.observability import Health, Metrics
from consumer.runtime.dead_letter import H_REASON
from consumer.runtime.deliver_stage import DeliverStage
from consumer.runtime.derive_stage import DeriveStage
from consumer.settings import Settings
from tests.unit.runtime.fakes import FakeClients, message

SETTINGS = Settings(derive={"checkpoint_max_records": 1})
TOPICS = SETTINGS.topics
GARBAGE = b"not a record"  # no known framing: a decode error


def derive_stage(clients: FakeClients, metrics: Metrics | None = None) -> DeriveStage:
    return DeriveStage(
        SETTINGS, lambda _: None, metrics or Metrics(), Health(), "test", clients=clients
    )


def deliver_stage(clients: FakeClients, metrics: Metrics | None = None) -> DeliverStage:
    return DeliverStage(
        SETTINGS, lambda _: None, metrics or Metrics(), Health(), "test", clients=clients
    )


def dead_letters(metrics: Metrics, stage: str) -> float:
    """Dead letters counted for ``stage``, whatever the reason."""
    return sum(
        sample.value
        for metric in metrics.registry.collect()
        if metric.name == "klaviyo_consumer_dead_letters"
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["stage"] == stage
    )


def test_derive_undecodable_record_is_dead_lettered_and_its_offset_committed() -> None:
    clients, metrics = FakeClients(), Metrics()
    stage = derive_stage(clients, metrics)
    stage._turn([message(TOPICS.orders, 0, 7, GARBAGE)])

    producer = clients.producer_
    (letter,) = [r for r in producer.committed if r.topic == TOPICS.dead_letter]
    assert letter.value == GARBAGE  # the original bytes, replayable
    assert letter.header(H_REASON)
    sent = [args[0] for name, args in producer.calls if name == "send_offsets"]
    assert sent == [(Offset(TOPICS.orders, 0, 8),)]
    assert dead_letters(metrics, "derive") == 1


def test_derive_failed_commit_aborts_and_rewinds_to_the_first_offset() -> None:
    clients, metrics = FakeClients(), Metrics()
    clients.consumer_.assigned = [TopicPartition(TOPICS.orders, 0)]
    clients.producer_.fail["commit"] = [AbortableKafkaError("transaction doomed")]
    stage = derive_stage(clients, metrics)
    stage._turn([message(TOPICS.orders, 0, 7, GARBAGE)])

    assert "producer.abort" in clients.journal
    assert clients.consumer_.seeks == [Offset(TOPICS.orders, 0, 7)]
    assert clients.producer_.committed == []
    assert dead_letters(metrics, "derive") == 0  # counted only once committed

    stage._turn([message(TOPICS.orders, 0, 7, GARBAGE)])  # redelivered after the seek
    assert [r.topic for r in clients.producer_.committed] == [TOPICS.dead_letter]
    assert dead_letters(metrics, "derive") == 1


async def test_deliver_unreadable_operation_is_dead_lettered_acknowledged_then_committed() -> None:
    clients, metrics = FakeClients(), Metrics()
    stage = deliver_stage(clients, metrics)
    stage._submit(message(TOPICS.outbox, 0, 3, GARBAGE))
    await asyncio.gather(*stage._writes)
    await stage._commit()

    (letter,) = clients.producer_.committed
    assert (letter.topic, letter.value) == (TOPICS.dead_letter, GARBAGE)
    assert letter.header(H_REASON)
    assert clients.consumer_.commits == [(Offset(TOPICS.outbox, 0, 4),)]
    journal = clients.journal
    assert journal.index("producer.send") < journal.index("consumer.commit")
    assert dead_letters(metrics, "deliver") == 1
    await stage._sink.close(0.0)


async def test_deliver_commit_failing_for_now_is_left_to_the_next_commit() -> None:
    clients = FakeClients()
    clients.consumer_.fail["commit"] = [RetriableKafkaError("coordinator moving")]
    stage = deliver_stage(clients)
    stage._submit(message(TOPICS.outbox, 0, 3, GARBAGE))
    await asyncio.gather(*stage._writes)
    await stage._commit()  # does not raise
    assert clients.consumer_.commits == []
    await stage._commit()
    assert clients.consumer_.commits == [(Offset(TOPICS.outbox, 0, 4),)]
    await stage._sink.close(0.0)
