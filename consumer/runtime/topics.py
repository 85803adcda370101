"""The topics this service owns, created with the right configuration or checked at start.

The integrations topics are the integrations package's (``ensure_integration_topics``).
"""

from __future__ import annotations

from consumer.errors import ConfigError
from consumer.integrations.publish import ensure_integration_topics
from consumer.kafka import KafkaAdmin, TopicSpec, UnknownTopicError
from consumer.settings import Settings, setting_name

__all__ = ["ensure_service_topics", "service_topic_specs"]

_COMPACT = {"cleanup.policy": "compact"}
_INPUTS = ("returns", "orders", "storefront_events")


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
        ConfigError: an input topic does not exist (upstream creates them, so the likeliest
            cause is a wrong name): the message names each such setting.
        TopicMismatchError: an internal topic exists with the wrong partitions or policy, or
            a ``max.message.bytes`` below ``kafka.max_message_bytes``.
    """
    admin = KafkaAdmin(settings.kafka)
    topics = settings.topics
    counts: list[int] = []
    missing: list[str] = []
    for field in _INPUTS:
        name = getattr(topics, field)
        try:
            counts.append(admin.partition_count(name))
        except UnknownTopicError:
            missing.append(f"{setting_name('topics', field)}: input topic {name!r} does not exist")
    if missing:
        # Upstream creates its topics, so the likeliest cause is a wrong name (or cluster).
        raise ConfigError("; ".join(missing) + " (check the name and kafka.bootstrap_servers)")
    created = ensure_integration_topics(settings.kafka, topics)
    return created + admin.ensure_topics(service_topic_specs(settings, max(counts), counts[1]))
