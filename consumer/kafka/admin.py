"""Topic administration: create the topics this service owns, check the ones that exist.

Blocking calls, made at start-up (or from tests); the runtime runs them through
``asyncio.to_thread`` if it must not block the loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import confluent_kafka
from confluent_kafka.admin import AdminClient

# confluent_kafka.admin re-exports these without __all__, which strict mypy refuses; import
# them from where they are defined.
from confluent_kafka.admin._config import ConfigEntry, ConfigResource
from confluent_kafka.cimpl import NewTopic

from consumer.kafka.config import ConfigValue, build_config
from consumer.kafka.errors import (
    RetriableKafkaError,
    TopicMismatchError,
    UnknownTopicError,
    wrap,
)
from consumer.settings import KafkaSettings

__all__ = ["KafkaAdmin", "TopicSpec", "ensure_topics", "partition_count", "wait_until_ready"]

_METADATA_RETRY_SECONDS: Final = 0.05


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as this service needs it.

    ``config`` holds topic properties used on creation (e.g. ``{"cleanup.policy": "compact"}``);
    of these only ``cleanup.policy`` (equal) and ``max.message.bytes`` (at least) are checked
    on an existing topic, since operators may legitimately tune retention and the like.
    """

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)
    replication_factor: int = 1

    @property
    def cleanup_policy(self) -> frozenset[str]:
        """The expected cleanup policies (Kafka's default is ``delete``)."""
        return _policies(self.config.get("cleanup.policy", "delete"))


def _check_message_bytes(spec: TopicSpec, entry: ConfigEntry | None) -> None:
    needed = spec.config.get("max.message.bytes")
    if needed is None or entry is None or entry.value is None:
        return  # not asked for, or a broker that does not say (its default applies)
    if int(entry.value) < int(needed):
        raise TopicMismatchError(
            f"topic {spec.name!r} has max.message.bytes={entry.value}, expected at least "
            f"{needed} (kafka.max_message_bytes)"
        )


def _policies(value: str) -> frozenset[str]:
    return frozenset(p.strip() for p in value.split(",") if p.strip())


class KafkaAdmin:
    """A small admin client over ``confluent_kafka.admin.AdminClient``."""

    def __init__(
        self, settings: KafkaSettings, *, extra: Mapping[str, ConfigValue] | None = None
    ) -> None:
        conf = build_config(settings, defaults={}, pinned={}, extra=extra)
        self._admin = AdminClient(conf)

    def wait_until_ready(self, timeout: float) -> None:
        """Return once a broker answers a metadata request.

        Raises:
            RetriableKafkaError: no broker answered within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        pause = threading.Event()
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                metadata = self._admin.list_topics(timeout=min(remaining, 2.0))
            except confluent_kafka.KafkaException as exc:
                last = exc
                pause.wait(_METADATA_RETRY_SECONDS)  # in case the failure was immediate
                continue
            if metadata.brokers:
                return
        raise RetriableKafkaError(f"no Kafka broker answered within {timeout} s: {last}")

    def partition_count(self, topic: str, timeout: float = 10.0) -> int:
        """The number of partitions of ``topic``.

        Raises:
            UnknownTopicError: the topic does not exist.
        """
        counts = self._partition_counts(timeout)
        if topic not in counts:
            raise UnknownTopicError(f"topic {topic!r} does not exist")
        return counts[topic]

    def partition_leaders(self, topic: str, timeout: float = 10.0) -> dict[int, int]:
        """Partition → node id of its leader (-1 while it has none), e.g. to fail one over.

        Raises:
            UnknownTopicError: the topic does not exist.
        """
        try:
            metadata = self._admin.list_topics(topic, timeout=timeout)
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "list_topics") from exc
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise UnknownTopicError(f"topic {topic!r} does not exist")
        return {number: partition.leader for number, partition in found.partitions.items()}

    def topic_id(self, topic: str, timeout: float = 10.0) -> str:
        """The broker's id of ``topic``: a topic deleted and created again gets a new one.

        Raises:
            KafkaError: the topic does not exist, or the broker did not answer.
        """
        futures = self._admin.describe_topics(
            confluent_kafka.TopicCollection([topic]), request_timeout=timeout
        )
        try:
            (description,) = [future.result() for future in futures.values()]
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, f"describe topic {topic!r}") from exc
        return str(description.topic_id)

    def topic_config(self, topic: str, timeout: float = 10.0) -> dict[str, str]:
        """The configuration of ``topic`` as the broker applies it (defaults included).

        Raises:
            KafkaError: the broker did not answer, or refused (e.g. no DescribeConfigs ACL).
        """
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        futures = self._admin.describe_configs([resource], request_timeout=timeout)
        try:
            (entries,) = [future.result() for future in futures.values()]
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, f"describe topic {topic!r}") from exc
        return {name: entry.value for name, entry in entries.items() if entry.value is not None}

    def ensure_topics(self, specs: Sequence[TopicSpec], timeout: float = 30.0) -> list[str]:
        """Create the missing topics of ``specs``, check the existing ones; return those created.

        Returns once the created topics have a leader for every partition.

        Raises:
            TopicMismatchError: an existing topic has another partition count or cleanup
                policy than its spec (the message names the topic and both values).
            KafkaError: creation or description failed.
        """
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate topic names in {names}")
        existing = self._partition_counts(timeout)
        missing = [spec for spec in specs if spec.name not in existing]
        created = self._create(missing, timeout) if missing else []
        # A topic another instance created in the meantime is checked like any existing one.
        to_check = [spec for spec in specs if spec.name not in created]
        if to_check:
            self._check(to_check, timeout)
        if created:
            self._wait_for_leaders({s.name: s.partitions for s in missing}, timeout)
        return created

    def _partition_counts(self, timeout: float) -> dict[str, int]:
        try:
            metadata = self._admin.list_topics(timeout=timeout)
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "list_topics") from exc
        return {
            name: len(topic.partitions)
            for name, topic in metadata.topics.items()
            if topic.error is None
        }

    def _create(self, specs: Sequence[TopicSpec], timeout: float) -> list[str]:
        new_topics = [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                config=dict(spec.config),
            )
            for spec in specs
        ]
        futures = self._admin.create_topics(
            new_topics, operation_timeout=timeout, request_timeout=timeout
        )
        created: list[str] = []
        for name, future in futures.items():
            try:
                future.result()
            except confluent_kafka.KafkaException as exc:
                error = wrap(exc, f"create topic {name!r}")
                if error.code != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                    raise error from exc
            else:
                created.append(name)
        return created

    def _check(self, specs: Sequence[TopicSpec], timeout: float) -> None:
        counts = self._partition_counts(timeout)
        for spec in specs:
            actual = counts.get(spec.name)
            if actual is None:
                raise UnknownTopicError(f"topic {spec.name!r} vanished while being checked")
            if actual != spec.partitions:
                raise TopicMismatchError(
                    f"topic {spec.name!r} has {actual} partitions, expected {spec.partitions}"
                )
        resources = [ConfigResource(ConfigResource.Type.TOPIC, spec.name) for spec in specs]
        futures = self._admin.describe_configs(resources, request_timeout=timeout)
        by_name = {resource.name: future for resource, future in futures.items()}
        for spec in specs:
            try:
                entries = by_name[spec.name].result()
            except confluent_kafka.KafkaException as exc:
                raise wrap(exc, f"describe topic {spec.name!r}") from exc
            entry = entries.get("cleanup.policy")
            actual_policy = _policies(entry.value or "delete") if entry else _policies("delete")
            if actual_policy != spec.cleanup_policy:
                raise TopicMismatchError(
                    f"topic {spec.name!r} has cleanup.policy={','.join(sorted(actual_policy))}, "
                    f"expected {','.join(sorted(spec.cleanup_policy))}"
                )
            _check_message_bytes(spec, entries.get("max.message.bytes"))

    def _wait_for_leaders(self, expected: Mapping[str, int], timeout: float) -> None:
        # Creation returns when the controller has the topic; producers and consumers need
        # the brokers' metadata to show a leader for every partition, which follows shortly.
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while True:
            try:
                metadata = self._admin.list_topics(timeout=max(deadline - time.monotonic(), 0.1))
            except confluent_kafka.KafkaException as exc:
                raise wrap(exc, "list_topics") from exc
            waiting = [
                name
                for name, count in expected.items()
                if (topic := metadata.topics.get(name)) is None
                or topic.error is not None
                or len(topic.partitions) != count
                or any(p.leader < 0 for p in topic.partitions.values())
            ]
            if not waiting:
                return
            if time.monotonic() >= deadline:
                raise RetriableKafkaError(f"topics {waiting} have no leader after {timeout} s")
            pause.wait(_METADATA_RETRY_SECONDS)  # metadata has no change notification to wait on


def ensure_topics(
    settings: KafkaSettings, specs: Sequence[TopicSpec], timeout: float = 30.0
) -> list[str]:
    """``KafkaAdmin(settings).ensure_topics(specs)``: create missing topics, check the others."""
    return KafkaAdmin(settings).ensure_topics(specs, timeout)


def partition_count(settings: KafkaSettings, topic: str, timeout: float = 10.0) -> int:
    """``KafkaAdmin(settings).partition_count(topic)``."""
    return KafkaAdmin(settings).partition_count(topic, timeout)


def wait_until_ready(settings: KafkaSettings, timeout: float) -> None:
    """``KafkaAdmin(settings).wait_until_ready(timeout)``."""
    KafkaAdmin(settings).wait_until_ready(timeout)
