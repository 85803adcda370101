"""Transactions: aborted records stay invisible; offsets commit with the records."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from consumer.kafka import (
    ConsumedMessage,
    KafkaConsumer,
    KafkaError,
    TopicPartition,
    TopicPartitionOffset,
    TransactionalProducer,
)
from consumer.settings import KafkaSettings
from tests.helpers.kafka import consume_at_least, drain, unique_name


def test_read_committed_sees_committed_transaction_not_aborted_one(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    produce: Callable[..., None],
) -> None:
    topic = topic_factory()
    produce(topic, [(b"k", b"committed-1"), (b"k", b"committed-2")], transactional=True)
    produce(topic, [(b"k", b"aborted-1"), (b"k", b"aborted-2")], transactional=True, commit=False)

    seen = drain(kafka_settings, topic)

    assert [m.value for m in seen] == [b"committed-1", b"committed-2"]


def test_send_offsets_commits_group_offset_with_transaction(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    produce: Callable[..., None],
    read_committed_records: Callable[..., list[ConsumedMessage]],
    group_id: str,
) -> None:
    source = topic_factory()
    sink = topic_factory()
    produce(source, [(b"k", b"a"), (b"k", b"b"), (b"k", b"c")])
    producer = TransactionalProducer(kafka_settings, unique_name("test-eos"))
    consumer = KafkaConsumer(kafka_settings, group_id)
    try:
        producer.init_transactions()
        consumer.subscribe([source])
        batch = consume_at_least(consumer, 3)

        producer.begin()
        for message in batch:
            producer.produce(sink, message.key, (message.value or b"").upper())
        producer.send_offsets([batch[-1].next_offset()], consumer.group_metadata())
        producer.commit()

        (committed,) = consumer.committed([TopicPartition(source, 0)])
    finally:
        consumer.close()
        producer.close()
    assert committed == TopicPartitionOffset(source, 0, 3)
    assert [m.value for m in read_committed_records(sink, until=3)] == [b"A", b"B", b"C"]


def test_aborted_transaction_leaves_group_offset_unchanged(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    produce: Callable[..., None],
    group_id: str,
) -> None:
    source = topic_factory()
    produce(source, [(b"k", b"a")])
    producer = TransactionalProducer(kafka_settings, unique_name("test-eos"))
    consumer = KafkaConsumer(kafka_settings, group_id)
    try:
        producer.init_transactions()
        consumer.subscribe([source])
        batch = consume_at_least(consumer, 1)
        producer.begin()
        producer.send_offsets([batch[-1].next_offset()], consumer.group_metadata())
        producer.abort()
        (committed,) = consumer.committed([TopicPartition(source, 0)])
    finally:
        consumer.close()
        producer.close()
    assert committed.offset < 0


def test_new_producer_with_same_transactional_id_fences_old_one(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory()
    transactional_id = unique_name("test-fence")
    old = TransactionalProducer(kafka_settings, transactional_id)
    new = TransactionalProducer(kafka_settings, transactional_id)
    try:
        old.init_transactions()
        old.begin()
        old.produce(topic, b"k", b"zombie")
        old.flush()
        new.init_transactions()  # aborts the old instance's open transaction

        with pytest.raises(KafkaError) as caught:
            old.commit()
        assert caught.value.fatal or caught.value.abortable

        new.begin()
        new.produce(topic, b"k", b"fresh")
        new.commit()
    finally:
        old.close()
        new.close()
    assert [m.value for m in drain(kafka_settings, topic)] == [b"fresh"]
