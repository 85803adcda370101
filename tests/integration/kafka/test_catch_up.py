"""CatchUp: read to the end a partition had at the start, whatever lies at that end."""

from __future__ import annotations

import time
from collections.abc import Callable

from consumer.kafka import CatchUp, ConsumedMessage, KafkaConsumer, TopicPartition
from consumer.settings import KafkaSettings
from tests.helpers.kafka import Record
from tests.integration.conftest import TopicFactory


def read_all(catch_up: CatchUp, consumer: KafkaConsumer) -> list[ConsumedMessage]:
    records: list[ConsumedMessage] = []
    deadline = time.monotonic() + 30
    while not catch_up.done:
        assert time.monotonic() < deadline, f"still pending: {catch_up.pending}"
        records += consumer.consume(100, 0.2)
        catch_up.advance()
    return records


def test_ends_behind_an_aborted_transaction_and_skips_empty_partitions(
    kafka_settings: KafkaSettings, topic_factory: TopicFactory, produce: Callable[..., None]
) -> None:
    topic = topic_factory(partitions=3)
    produce(topic, [(b"k", b"committed")], transactional=True)
    # The partition's end is now an aborted record plus a marker: no record sits at end - 1.
    produce(topic, [(b"k", b"aborted")], transactional=True, commit=False)
    partitions = [TopicPartition(topic, p) for p in range(3)]
    with KafkaConsumer(kafka_settings, "catch-up-test") as consumer:
        catch_up = CatchUp.start(consumer, partitions)
        assert len(catch_up.pending) == 1  # the two empty partitions are done at once
        records = read_all(catch_up, consumer)
    assert [r.value for r in records] == [b"committed"]


def test_records_written_after_the_start_are_told_apart(
    kafka_settings: KafkaSettings, topic_factory: TopicFactory, produce: Callable[..., None]
) -> None:
    topic = topic_factory(partitions=1)
    produce(topic, [(b"k", b"before")])
    with KafkaConsumer(kafka_settings, "catch-up-test") as consumer:
        catch_up = CatchUp.start(consumer, [TopicPartition(topic, 0)])
        produce(topic, [(b"k", b"after")])
        records = read_all(catch_up, consumer)
        deadline = time.monotonic() + 30
        while len(records) < 2:
            assert time.monotonic() < deadline, records
            records += consumer.consume(100, 0.2)
    assert [catch_up.written_before_start(r) for r in records] == [True, False]


def test_a_start_offset_reads_only_from_there_and_one_at_the_end_is_done(
    kafka_settings: KafkaSettings, topic_factory: TopicFactory, produce: Callable[..., None]
) -> None:
    topic = topic_factory(partitions=2)
    produce(topic, [Record(b"k", f"v{n}".encode(), partition=0) for n in range(5)])
    tail, ended = TopicPartition(topic, 0), TopicPartition(topic, 1)
    with KafkaConsumer(kafka_settings, "catch-up-test") as consumer:
        catch_up = CatchUp.start(consumer, [tail, ended], starts={tail: 3, ended: 0})
        assert catch_up.pending == [tail]  # partition 1 is empty: its end is its start
        records = read_all(catch_up, consumer)
    assert [r.value for r in records] == [b"v3", b"v4"]
