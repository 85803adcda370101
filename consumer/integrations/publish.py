"""Writing integration changes: the topics, and one Kafka transaction per change set.

Each integration record and its audit record are produced in the same transaction, so a
reader (read_committed, as the table is) never sees a change without its audit entry, and a
rotation of many merchants becomes visible all at once or not at all.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence

from consumer.integrations.audit import AuditRecord, encode_audit
from consumer.integrations.codec import IntegrationCodec, IntegrationRecord
from consumer.kafka import (
    ConfigValue,
    KafkaAdmin,
    KafkaError,
    TopicSpec,
    TransactionalProducer,
    UnknownTopicError,
)
from consumer.settings import KafkaSettings, TopicSettings

__all__ = ["IntegrationPublisher", "ensure_integration_topics", "integration_topic_specs"]


def integration_topic_specs(topics: TopicSettings, partitions: int = 1) -> list[TopicSpec]:
    """The integrations topic (compacted: one value per merchant) and the audit topic.

    The audit topic keeps records forever by default: it is tiny, and an audit trail that
    expires silently is not one. Operators may set a retention on it.
    """
    return [
        TopicSpec(
            topics.integrations,
            partitions,
            {"cleanup.policy": "compact"},
            topics.replication_factor,
        ),
        TopicSpec(
            topics.integrations_audit,
            partitions,
            {"cleanup.policy": "delete", "retention.ms": "-1"},
            topics.replication_factor,
        ),
    ]


def ensure_integration_topics(
    kafka: KafkaSettings, topics: TopicSettings, timeout: float = 30.0
) -> list[str]:
    """Create the two topics if missing; check the cleanup policy of existing ones.

    An existing topic keeps whatever partition count it has: the table reads them all.

    Returns:
        The names of the topics created.

    Raises:
        TopicMismatchError: an existing topic has the wrong cleanup policy (for example an
            integrations topic that is not compacted would lose merchants over time).
    """
    admin = KafkaAdmin(kafka)
    specs = []
    for spec in integration_topic_specs(topics):
        try:
            existing = admin.partition_count(spec.name, timeout)
        except UnknownTopicError:
            specs.append(spec)
        else:
            specs.append(TopicSpec(spec.name, existing, spec.config, spec.replication_factor))
    return admin.ensure_topics(specs, timeout)


class IntegrationPublisher:
    """Publishes integration records with their audit records, transactionally.

    Args:
        kafka: Connection settings.
        topics: Names of the integrations and audit topics.
        codec: Encodes integration records.
        extra: More librdkafka producer properties.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: TopicSettings,
        codec: IntegrationCodec | None = None,
        *,
        extra: Mapping[str, ConfigValue] | None = None,
    ) -> None:
        self._topics = topics
        self._codec = codec or IntegrationCodec()
        # A fresh id per publisher: two operators running the CLI at once must not fence
        # each other; nothing needs to survive a crash of a one-shot command.
        transactional_id = f"{kafka.client_id}-integrations-cli-{uuid.uuid4().hex[:12]}"
        self._producer = TransactionalProducer(kafka, transactional_id, extra=extra)
        self._initialised = False

    def prepare(self, timeout: float = 30.0) -> None:
        """Register the transactional id now (blocking), so ``publish`` only has to commit."""
        if not self._initialised:
            self._producer.init_transactions(timeout)
            self._initialised = True

    def publish(
        self, changes: Sequence[tuple[IntegrationRecord, AuditRecord]], timeout: float = 30.0
    ) -> None:
        """Write every record and its audit record in one transaction (blocking).

        Raises:
            KafkaError: nothing was committed (the transaction was aborted if possible).
        """
        if not changes:
            return
        self.prepare(timeout)
        self._producer.begin()
        try:
            for record, audit in changes:
                key = record.merchant_id.encode("utf-8")
                self._producer.produce(self._topics.integrations, key, self._codec.encode(record))
                self._producer.produce(self._topics.integrations_audit, key, encode_audit(audit))
            self._producer.commit(timeout)
        except KafkaError:
            # The first error is the one to report; the broker aborts on timeout anyway.
            with contextlib.suppress(KafkaError):
                self._producer.abort(timeout)
            raise

    def close(self) -> None:
        """Release the producer (an open transaction is aborted)."""
        self._producer.close()

    def __enter__(self) -> IntegrationPublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
