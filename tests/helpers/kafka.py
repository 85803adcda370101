"""Kafka helpers for tests: unique names, producing records, reading them back.

Everything goes through ``consumer.kafka`` (never confluent-kafka directly), so the tests
exercise the same facade the service uses. Reads wait on a condition with a deadline.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from consumer.kafka import (
    OFFSET_BEGINNING,
    ConsumedMessage,
    Header,
    KafkaConsumer,
    Producer,
    TopicPartition,
    TopicPartitionOffset,
    TransactionalProducer,
    partition_count,
)
from consumer.settings import KafkaSettings

__all__ = [
    "Record",
    "RecordLike",
    "consume_at_least",
    "drain",
    "produce_records",
    "produce_transaction",
    "read_committed",
    "unique_name",
]

_COUNTER = itertools.count()


def unique_name(prefix: str) -> str:
    """A name no other test (nor an earlier run against the same broker) has used."""
    return f"{prefix}-{os.getpid()}-{next(_COUNTER)}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Record:
    """A record to produce; ``partition=None`` lets the key pick it."""

    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()
    partition: int | None = None
    timestamp_ms: int | None = None


RecordLike = Record | tuple[bytes | None, bytes | None]


def _as_record(item: RecordLike) -> Record:
    return item if isinstance(item, Record) else Record(item[0], item[1])


def _produce_all(
    producer: Producer | TransactionalProducer, topic: str, records: Iterable[RecordLike]
) -> None:
    for item in records:
        record = _as_record(item)
        producer.produce(
            topic,
            record.key,
            record.value,
            record.headers,
            partition=record.partition,
            timestamp_ms=record.timestamp_ms,
        )


def produce_records(
    settings: KafkaSettings, topic: str, records: Iterable[RecordLike], *, timeout: float = 30.0
) -> None:
    """Produce ``records`` (``Record`` or ``(key, value)``) with an idempotent producer; flush."""
    producer = Producer(settings)
    try:
        _produce_all(producer, topic, records)
        producer.flush(timeout)
    finally:
        producer.close()


def produce_transaction(
    settings: KafkaSettings,
    topic: str,
    records: Iterable[RecordLike],
    *,
    commit: bool = True,
    transactional_id: str | None = None,
    timeout: float = 30.0,
) -> None:
    """Produce ``records`` in one transaction, then commit it (or abort it if not ``commit``)."""
    producer = TransactionalProducer(settings, transactional_id or unique_name("test-txn"))
    try:
        producer.init_transactions(timeout)
        producer.begin()
        _produce_all(producer, topic, records)
        producer.flush(timeout)
        if commit:
            producer.commit(timeout)
        else:
            producer.abort(timeout)
    finally:
        producer.close()


def _assign_from_beginning(
    settings: KafkaSettings, topics: Sequence[str], group_id: str | None
) -> tuple[KafkaConsumer, list[TopicPartition]]:
    consumer = KafkaConsumer(settings, group_id or unique_name("test-reader"))
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        for p in range(partition_count(settings, topic))
    ]
    # Assigned, not subscribed: no group join, so reading starts at once.
    consumer.assign(
        [TopicPartitionOffset(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions]
    )
    return consumer, partitions


def read_committed(
    settings: KafkaSettings,
    topics: str | Sequence[str],
    *,
    until: Callable[[list[ConsumedMessage]], bool] | int,
    timeout: float = 30.0,
    group_id: str | None = None,
) -> list[ConsumedMessage]:
    """Read ``topics`` from the beginning (read_committed) until ``until`` holds.

    ``until`` is a predicate over everything read so far, or a record count (at least).

    Raises:
        AssertionError: the condition did not hold within ``timeout`` (lists what was read).
    """
    names = [topics] if isinstance(topics, str) else list(topics)
    done = (lambda seen: len(seen) >= until) if isinstance(until, int) else until
    consumer, _ = _assign_from_beginning(settings, names, group_id)
    seen: list[ConsumedMessage] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"condition not met within {timeout} s; read {len(seen)} records: "
                    f"{[(m.topic, m.partition, m.offset, m.key, m.value) for m in seen][:50]}"
                )
            seen.extend(consumer.consume(500, min(remaining, 0.5)))
    finally:
        consumer.close()
    return seen


def drain(
    settings: KafkaSettings, topics: str | Sequence[str], *, timeout: float = 30.0
) -> list[ConsumedMessage]:
    """Every committed record of ``topics`` up to their current end (high watermark).

    Aborted records and transaction markers are skipped by the consumer, whose position
    still moves past them, so "position reached the high watermark" means caught up.
    """
    names = [topics] if isinstance(topics, str) else list(topics)
    consumer, partitions = _assign_from_beginning(settings, names, None)
    seen: list[ConsumedMessage] = []
    deadline = time.monotonic() + timeout
    try:
        ends = {tp: consumer.get_watermark_offsets(tp, timeout)[1] for tp in partitions}
        pending = {tp for tp, end in ends.items() if end > 0}
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"not caught up within {timeout} s on {sorted(pending)}; read {len(seen)}"
                )
            seen.extend(consumer.consume(500, min(remaining, 0.5)))
            for position in consumer.position(sorted(pending)):
                if position.offset >= ends[position.topic_partition]:
                    pending.discard(position.topic_partition)
    finally:
        consumer.close()
    return seen


def consume_at_least(
    consumer: KafkaConsumer, count: int, *, timeout: float = 30.0
) -> list[ConsumedMessage]:
    """Consume with ``consumer`` until ``count`` records arrived (more may come in the batch).

    Raises:
        AssertionError: fewer than ``count`` arrived within ``timeout``.
    """
    seen: list[ConsumedMessage] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"only {len(seen)} of {count} records within {timeout} s")
        seen.extend(consumer.consume(max(count - len(seen), 1), min(remaining, 0.5)))
    return seen
