"""The topics this service owns, created with the right configuration or checked at start.

The integrations topics are the integrations package's (``ensure_integration_topics``).
"""

from __future__ import annotations

from consumer.integrations.publish import ensure_integration_topics
from consumer.kafka import KafkaAdmin, TopicSpec
from consumer.settings import Settings

__all__ = ["ensure_service_topics", "service_topic_specs"]

_COMPACT = {"cleanup.policy": "compact"}


def service_topic_specs(
    settings: Settings, input_partitions: int, order_partitions: int
) -> list[TopicSpec]:
    """Specs of the internal topics for inputs with these partition counts.

    The changelog has exactly as many partitions as ``orders``: state of input partition *p*
    lives in changelog partition *p*, so it moves with its partition on rebalance.
    """
    topics = settings.topics
    partitions = topics.internal_partitions or input_partitions
    rf = topics.replication_factor
    # Every record the service writes is at most the producers' message.max.bytes (the same
    # setting): an existing topic with a smaller max.message.bytes is refused at start.
    sized = {"max.message.bytes": str(settings.kafka.max_message_bytes)}
    return [
        TopicSpec(topics.outbox, partitions, sized, replication_factor=rf),
        TopicSpec(topics.tracking_state, order_partitions, _COMPACT | sized, replication_factor=rf),
        TopicSpec(topics.dead_letter, partitions, sized, replication_factor=rf),
        TopicSpec(topics.parked, partitions, sized, replication_factor=rf),
    ]


def ensure_service_topics(settings: Settings) -> list[str]:
    """Create missing internal topics, check existing ones; returns the names created.

    Raises:
        UnknownTopicError: an input topic does not exist (upstream must create it).
        TopicMismatchError: an internal topic exists with the wrong partitions or policy, or
            a ``max.message.bytes`` below ``kafka.max_message_bytes``.
    """
    admin = KafkaAdmin(settings.kafka)
    topics = settings.topics
    counts = [
        admin.partition_count(name)
        for name in (topics.returns, topics.orders, topics.storefront_events)
    ]
    created = ensure_integration_topics(settings.kafka, topics)
    return created + admin.ensure_topics(service_topic_specs(settings, max(counts), counts[1]))
