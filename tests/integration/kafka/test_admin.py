"""ensure_topics creates what is missing and refuses topics laid out differently."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from consumer.kafka import (
    KafkaAdmin,
    TopicMismatchError,
    TopicSpec,
    UnknownTopicError,
    ensure_topics,
    partition_count,
)
from consumer.settings import KafkaSettings
from tests.helpers.kafka import unique_name

COMPACT = {"cleanup.policy": "compact"}


def test_ensure_topics_creates_compacted_topic_then_is_idempotent(
    kafka_settings: KafkaSettings,
) -> None:
    spec = TopicSpec(unique_name("test-state"), partitions=3, config=COMPACT)

    assert ensure_topics(kafka_settings, [spec]) == [spec.name]
    assert ensure_topics(kafka_settings, [spec]) == []
    assert partition_count(kafka_settings, spec.name) == 3


def test_ensure_topics_rejects_other_partition_count(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str]
) -> None:
    name = topic_factory(partitions=2, config=COMPACT)

    with pytest.raises(TopicMismatchError, match=f"{name}.*2 partitions, expected 4"):
        ensure_topics(kafka_settings, [TopicSpec(name, partitions=4, config=COMPACT)])


def test_ensure_topics_rejects_other_cleanup_policy(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str]
) -> None:
    name = topic_factory(partitions=1)  # cleanup.policy=delete

    with pytest.raises(
        TopicMismatchError, match=f"{name}.*cleanup.policy=delete, expected compact"
    ):
        ensure_topics(kafka_settings, [TopicSpec(name, partitions=1, config=COMPACT)])


def test_ensure_topics_accepts_policy_list_in_any_order(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str]
) -> None:
    name = topic_factory(config={"cleanup.policy": "compact,delete"})

    spec = TopicSpec(name, partitions=1, config={"cleanup.policy": "delete,compact"})
    assert ensure_topics(kafka_settings, [spec]) == []


def test_partition_count_of_unknown_topic_raises(kafka_settings: KafkaSettings) -> None:
    with pytest.raises(UnknownTopicError, match="does not exist"):
        KafkaAdmin(kafka_settings).partition_count(unique_name("missing"))


def test_ensure_topics_creates_with_max_message_bytes_and_refuses_a_smaller_one(
    kafka_settings: KafkaSettings,
) -> None:
    name = unique_name("test-sized")
    sized = TopicSpec(name, partitions=1, config={"max.message.bytes": "1048576"})
    assert ensure_topics(kafka_settings, [sized]) == [name]
    # A topic that takes larger records than needed is fine ...
    smaller = TopicSpec(name, partitions=1, config={"max.message.bytes": "500000"})
    assert ensure_topics(kafka_settings, [smaller]) == []
    # ... one that cannot take every record the service may write is refused at start.
    larger = TopicSpec(name, partitions=1, config={"max.message.bytes": "2000000"})
    with pytest.raises(
        TopicMismatchError, match=f"{name}.*max.message.bytes=1048576, expected at least 2000000"
    ):
        ensure_topics(kafka_settings, [larger])
