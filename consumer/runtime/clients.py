"""Where the stages get their Kafka clients: one factory, built once by the service.

The stages never construct a client themselves; they ask a ``KafkaClients``. The service
passes ``BrokerClients`` (real clients on the configured cluster); unit tests pass small fakes,
so the stages' failure paths run without a broker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from consumer.kafka import BackgroundProducer, ConfigValue, KafkaConsumer, TransactionalProducer
from consumer.settings import KafkaSettings

__all__ = ["BrokerClients", "KafkaClients"]


class KafkaClients(Protocol):
    """Makes the Kafka clients of a stage (a new one per call)."""

    def consumer(
        self,
        group_id: str,
        *,
        group_instance_id: str | None = None,
        on_stats: Callable[[str], None] | None = None,
        extra: Mapping[str, ConfigValue] | None = None,
    ) -> KafkaConsumer:
        """A group member (read_committed, manual commits); ``on_stats`` gets librdkafka's
        statistics JSON; ``extra``: more librdkafka properties (the stage's own tuning)."""
        ...

    def producer(self) -> BackgroundProducer:
        """An idempotent producer for event-loop code (its own thread; ``send`` never blocks)."""
        ...

    def transactional_producer(self, transactional_id: str) -> TransactionalProducer:
        """A transactional producer (``init_transactions`` not yet called)."""
        ...


@dataclass(frozen=True, slots=True)
class BrokerClients:
    """``KafkaClients`` on the cluster of ``settings``."""

    settings: KafkaSettings

    def consumer(
        self,
        group_id: str,
        *,
        group_instance_id: str | None = None,
        on_stats: Callable[[str], None] | None = None,
        extra: Mapping[str, ConfigValue] | None = None,
    ) -> KafkaConsumer:
        """A ``KafkaConsumer`` in ``group_id``."""
        return KafkaConsumer(
            self.settings,
            group_id,
            group_instance_id=group_instance_id,
            on_stats=on_stats,
            extra=extra,
        )

    def producer(self) -> BackgroundProducer:
        """A ``BackgroundProducer`` (deliver writes its failure records with it)."""
        return BackgroundProducer(self.settings, name="deliver-failures")

    def transactional_producer(self, transactional_id: str) -> TransactionalProducer:
        """A ``TransactionalProducer`` with ``transactional_id``."""
        return TransactionalProducer(self.settings, transactional_id=transactional_id)
