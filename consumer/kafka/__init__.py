"""The only package that talks to confluent-kafka: one facade module per client role.

Everything a client returns is converted to our own frozen dataclasses (``messages``), and
every confluent exception to a ``KafkaError`` whose flags carry the policy (``errors``).
All calls block; the asyncio runtime runs them with ``asyncio.to_thread``, except
``BackgroundProducer.send``, which queues for a thread of its own and returns a future.
"""

from consumer.kafka.admin import (
    KafkaAdmin,
    TopicSpec,
    ensure_topics,
    partition_count,
    wait_until_ready,
)
from consumer.kafka.background import BackgroundProducer
from consumer.kafka.catch_up import CatchUp
from consumer.kafka.config import ConfigValue
from consumer.kafka.consumer import GroupMetadata, KafkaConsumer, RebalanceCallback
from consumer.kafka.errors import (
    AbortableKafkaError,
    FatalKafkaError,
    KafkaError,
    RetriableKafkaError,
    TopicMismatchError,
    UnknownTopicError,
    wrap,
)
from consumer.kafka.messages import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    ConsumedMessage,
    Header,
    TopicPartition,
    TopicPartitionOffset,
)
from consumer.kafka.producer import Producer, TransactionalProducer

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "OFFSET_STORED",
    "AbortableKafkaError",
    "BackgroundProducer",
    "CatchUp",
    "ConfigValue",
    "ConsumedMessage",
    "FatalKafkaError",
    "GroupMetadata",
    "Header",
    "KafkaAdmin",
    "KafkaConsumer",
    "KafkaError",
    "Producer",
    "RebalanceCallback",
    "RetriableKafkaError",
    "TopicMismatchError",
    "TopicPartition",
    "TopicPartitionOffset",
    "TopicSpec",
    "TransactionalProducer",
    "UnknownTopicError",
    "ensure_topics",
    "partition_count",
    "wait_until_ready",
    "wrap",
]
