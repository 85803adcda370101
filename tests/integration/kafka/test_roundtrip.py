"""Records survive a produce/consume round trip through the facade unchanged."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from consumer.kafka import (
    OFFSET_INVALID,
    ConsumedMessage,
    KafkaConsumer,
    Producer,
    TopicPartition,
    TopicPartitionOffset,
    UnknownTopicError,
)
from consumer.settings import KafkaSettings
from tests.helpers.kafka import Record, consume_at_least, drain, unique_name


def test_produce_consume_round_trip_keeps_key_value_headers_timestamp(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    produce: Callable[..., None],
    read_committed_records: Callable[..., list[ConsumedMessage]],
) -> None:
    topic = topic_factory(partitions=2)
    produce(
        topic,
        [
            Record(
                b"k1", b"v1", headers=(("h", b"x"), ("h", b"y")), timestamp_ms=1_700_000_000_000
            ),
            Record(b"k2", None),  # a tombstone
            Record(None, b"no-key", partition=1),
        ],
    )

    seen = read_committed_records(topic, until=3)

    by_value = {m.value: m for m in seen}
    first = by_value[b"v1"]
    assert (first.topic, first.key, first.headers) == (topic, b"k1", (("h", b"x"), ("h", b"y")))
    assert first.header("h") == b"y"
    assert first.timestamp_ms == 1_700_000_000_000
    assert by_value[None].key == b"k2"
    assert by_value[b"no-key"].partition == 1
    assert by_value[b"no-key"].key is None


def test_same_key_lands_on_same_partition_in_order(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(partitions=4)
    producer = Producer(kafka_settings)
    for i in range(20):
        producer.produce(topic, b"merchant-1", str(i).encode())
    producer.flush()
    producer.close()

    seen = drain(kafka_settings, topic)

    assert len({m.partition for m in seen}) == 1
    assert [m.value for m in seen] == [str(i).encode() for i in range(20)]


def test_subscribed_consumer_commits_offsets_and_reports_assignment(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    produce: Callable[..., None],
    group_id: str,
) -> None:
    topic = topic_factory(partitions=2)
    produce(topic, [Record(b"a", b"1", partition=0), Record(b"b", b"2", partition=1)])
    assigned: list[list[TopicPartition]] = []
    consumer = KafkaConsumer(kafka_settings, group_id, extra={"session.timeout.ms": 6000})
    try:
        consumer.subscribe([topic], on_assign=assigned.append)
        seen = consume_at_least(consumer, 2)
        assert sorted(assigned[0]) == [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        assert sorted(consumer.assignment()) == sorted(assigned[0])

        consumer.commit([m.next_offset() for m in seen])

        committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        assert sorted(committed) == [
            TopicPartitionOffset(topic, 0, 1),
            TopicPartitionOffset(topic, 1, 1),
        ]
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0))
        assert (low, high) == (0, 1)
    finally:
        consumer.close()


def test_new_group_has_no_committed_offset(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str], group_id: str
) -> None:
    topic = topic_factory()
    with KafkaConsumer(kafka_settings, group_id) as consumer:
        (committed,) = consumer.committed([TopicPartition(topic, 0)])
    assert committed.offset == OFFSET_INVALID


def test_pause_stops_delivery_until_resume(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    produce: Callable[..., None],
    group_id: str,
) -> None:
    topic = topic_factory()
    tp = TopicPartition(topic, 0)
    produce(topic, [(b"k", b"1")])
    with KafkaConsumer(kafka_settings, group_id) as consumer:
        consumer.assign([TopicPartitionOffset(topic, 0, 0)])
        consumer.pause([tp])
        assert consumer.consume(10, 1.0) == []
        consumer.resume([tp])
        seen = consume_at_least(consumer, 1)
        consumer.seek(TopicPartitionOffset(topic, 0, 0))
        again = consume_at_least(consumer, 1)
        (position,) = consumer.position([tp])
    assert [m.value for m in seen] == [m.value for m in again] == [b"1"]
    assert position.offset == 1


def test_consume_from_missing_topic_raises_unknown_topic(
    kafka_settings: KafkaSettings, group_id: str
) -> None:
    missing = unique_name("missing")
    with KafkaConsumer(kafka_settings, group_id) as consumer:
        consumer.subscribe([missing])
        deadline = time.monotonic() + 30
        with pytest.raises(UnknownTopicError, match=missing):
            while time.monotonic() < deadline:
                consumer.consume(10, 0.5)
