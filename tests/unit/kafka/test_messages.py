"""Confluent messages become our frozen ConsumedMessage, and partitions convert both ways."""

from __future__ import annotations

import dataclasses

import confluent_kafka
import pytest

from consumer.kafka import ConsumedMessage, TopicPartition, TopicPartitionOffset
from consumer.kafka.messages import (
    message_from_confluent,
    offsets_from_confluent,
    partitions_from_confluent,
    to_confluent,
)


def test_message_from_confluent_copies_every_field() -> None:
    raw = confluent_kafka.Message(
        topic="orders",
        partition=3,
        offset=41,
        key=b"m1",
        value=b"{}",
        headers=[("trace", b"abc"), ("empty", None)],
        timestamp=(confluent_kafka.TIMESTAMP_CREATE_TIME, 1_700_000_000_123),
    )

    message = message_from_confluent(raw)

    assert message == ConsumedMessage(
        topic="orders",
        partition=3,
        offset=41,
        key=b"m1",
        value=b"{}",
        headers=(("trace", b"abc"), ("empty", b"")),
        timestamp_ms=1_700_000_000_123,
    )
    assert message.next_offset() == TopicPartitionOffset("orders", 3, 42)
    assert message.topic_partition == TopicPartition("orders", 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.offset = 0  # type: ignore[misc]


def test_message_without_timestamp_reads_minus_one() -> None:
    raw = confluent_kafka.Message(
        topic="t", partition=0, offset=0, timestamp=(confluent_kafka.TIMESTAMP_NOT_AVAILABLE, 0)
    )

    assert message_from_confluent(raw).timestamp_ms in (-1, 0)
    assert message_from_confluent(raw).headers == ()


def test_partitions_round_trip_through_confluent() -> None:
    ours = [TopicPartitionOffset("a", 0, 5), TopicPartitionOffset("b", 2, -2)]

    theirs = to_confluent(ours)

    assert offsets_from_confluent(theirs) == ours
    assert partitions_from_confluent(theirs) == [TopicPartition("a", 0), TopicPartition("b", 2)]
    assert [(tp.topic, tp.partition) for tp in to_confluent([TopicPartition("c", 1)])] == [("c", 1)]
