"""``Checkpoint``: the commit steps in order, retries, abort rewinding, due — with fake clients."""

from __future__ import annotations

import pytest

from consumer.kafka import RetriableKafkaError, TopicPartition, TopicPartitionOffset
from consumer.observability import Metrics
from consumer.runtime.checkpoint import Checkpoint
from consumer.state.store import StateStore
from tests.unit.runtime.fakes import FakeConsumer, FakeProducer, message

ORDERS = "orders"
CHANGELOG = "tracking-state"


class Clock:
    """A monotonic clock a test moves by hand (each read may also advance it)."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 100.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def text_store() -> StateStore[str]:
    store: StateStore[str] = StateStore(lambda b: b.decode(), lambda s: s.encode())
    store.install(0, store.empty())
    return store


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(f"klaviyo_consumer_{name}", labels) or 0.0


Parts = tuple[FakeProducer, FakeConsumer, StateStore[str], Metrics]


@pytest.fixture
def parts() -> Parts:
    return FakeProducer(), FakeConsumer(), text_store(), Metrics()


def checkpoint(
    parts: Parts,
    clock: Clock | None = None,
    retry_seconds: float = 120.0,
) -> Checkpoint:
    producer, consumer, store, metrics = parts
    return Checkpoint(
        producer,
        consumer,
        store,
        CHANGELOG,
        metrics,
        clock=clock or Clock(),
        retry_seconds=retry_seconds,
    )


def test_checkpoint_commit_runs_changelog_offsets_commit_in_order(parts: Parts) -> None:
    producer, consumer, store, metrics = parts
    cp = checkpoint(parts)
    cp.begin()
    store.partition(0).put("ord_1", "shipped")
    for offset in (5, 6):
        cp.processed(message(ORDERS, 0, offset, b"x"))
    cp.processed(message(ORDERS, 1, 10, b"x"))
    cp.outcomes[("skipped", "merchant_disabled")] += 2
    assert cp.records == 3

    cp.commit()

    assert producer.names() == ["begin", "produce", "send_offsets", "commit"]
    assert producer.committed[0].topic == CHANGELOG
    assert (producer.committed[0].key, producer.committed[0].value) == (b"ord_1", b"shipped")
    assert producer.committed[0].partition == 0  # state of input partition p lives in p
    _, (offsets, metadata) = producer.calls[2]
    assert offsets == (
        TopicPartitionOffset(ORDERS, 0, 7),
        TopicPartitionOffset(ORDERS, 1, 11),
    )
    assert metadata == consumer.group_metadata()
    assert store.partition(0).get("ord_1") == "shipped"
    assert list(store.changelog_records()) == []  # folded in: nothing dirty any more
    assert sample(metrics, "records_consumed_total", stage="derive", topic=ORDERS) == 3
    assert sample(metrics, "records_skipped_total", reason="merchant_disabled") == 2
    assert sample(metrics, "transactions_total", outcome="committed") == 1
    assert not cp.is_open


def test_checkpoint_commit_without_transaction_does_nothing(parts: Parts) -> None:
    producer = parts[0]
    checkpoint(parts).commit()
    assert producer.calls == []


def test_checkpoint_commit_retries_a_retriable_step_until_it_succeeds(parts: Parts) -> None:
    producer, *_ = parts
    producer.fail["commit"] = [RetriableKafkaError("timed out"), RetriableKafkaError("again")]
    cp = checkpoint(parts)
    cp.begin()
    cp.processed(message(ORDERS, 0, 1, b"x"))
    cp.commit()
    assert producer.names().count("commit") == 3
    assert not cp.is_open


def test_checkpoint_commit_gives_up_after_the_retry_budget(parts: Parts) -> None:
    producer, _, _, metrics = parts
    producer.fail["commit"] = [RetriableKafkaError("timed out")] * 10
    cp = checkpoint(parts, clock=Clock(step=1.0), retry_seconds=2.5)
    cp.begin()
    cp.processed(message(ORDERS, 0, 1, b"x"))
    with pytest.raises(RetriableKafkaError):
        cp.commit()
    assert 1 < producer.names().count("commit") < 10
    assert sample(metrics, "records_consumed_total", stage="derive", topic=ORDERS) == 0


def test_checkpoint_abort_rewinds_state_and_positions_of_assigned_partitions(parts: Parts) -> None:
    producer, consumer, store, metrics = parts
    consumer.assigned = [TopicPartition(ORDERS, 0)]  # partition 1 was revoked meanwhile
    cp = checkpoint(parts)
    cp.begin()
    store.partition(0).put("ord_1", "shipped")
    for offset in (5, 6):
        cp.processed(message(ORDERS, 0, offset, b"x"))
    cp.processed(message(ORDERS, 1, 10, b"x"))
    cp.outcomes[("skipped", "merchant_disabled")] += 1

    cp.abort()

    assert producer.names() == ["begin", "abort"]
    assert consumer.seeks == [TopicPartitionOffset(ORDERS, 0, 5)]
    assert store.partition(0).get("ord_1") is None
    assert cp.records == 0
    assert not cp.outcomes
    assert sample(metrics, "records_skipped_total", reason="merchant_disabled") == 0
    assert sample(metrics, "transactions_total", outcome="aborted") == 1


def test_checkpoint_forget_leaves_revoked_partitions_out_of_the_offsets(parts: Parts) -> None:
    producer, *_ = parts
    cp = checkpoint(parts)
    cp.begin()
    cp.processed(message(ORDERS, 0, 5, b"x"))
    cp.processed(message(ORDERS, 1, 10, b"x"))
    cp.forget([TopicPartition(ORDERS, 1)])
    cp.commit()
    _, (offsets, _) = next(c for c in producer.calls if c[0] == "send_offsets")
    assert offsets == (TopicPartitionOffset(ORDERS, 0, 6),)


def test_checkpoint_due_after_max_records_or_interval(parts: Parts) -> None:
    clock = Clock()
    cp = checkpoint(parts, clock=clock)
    assert not cp.due(1.0, 2)  # nothing open
    cp.begin()
    cp.processed(message(ORDERS, 0, 0, b"x"))
    assert not cp.due(1.0, 2)
    cp.processed(message(ORDERS, 0, 1, b"x"))
    assert cp.due(1.0, 2)  # by records
    assert not cp.due(1.0, 10)
    clock.now += 1.0
    assert cp.due(1.0, 10)  # by time


def test_checkpoint_tells_how_long_until_it_is_due_by_time(parts: Parts) -> None:
    clock = Clock()
    cp = checkpoint(parts, clock=clock)
    assert cp.seconds_until_due(1.0) == float("inf")  # nothing open: no deadline
    cp.begin()
    clock.now += 0.75
    assert cp.seconds_until_due(1.0) == pytest.approx(0.25)
    clock.now += 0.5
    assert cp.seconds_until_due(1.0) == pytest.approx(-0.25)  # overdue
