"""``KafkaConsumer``: the one consumer facade (read_committed, manual commits, eager rebalances).

Every method blocks (network round trips, or up to ``timeout`` seconds in ``consume``). The
asyncio runtime calls them through ``asyncio.to_thread``, one call at a time per consumer: the
underlying client is not meant for concurrent use from several threads. Rebalance callbacks
run inside ``consume`` on that same worker thread; to reach the event loop from one, use
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import confluent_kafka

from consumer.kafka.config import ConfigValue, build_config, log_client_error
from consumer.kafka.errors import PARTITION_EOF, KafkaError, wrap
from consumer.kafka.messages import (
    ConsumedMessage,
    TopicPartition,
    TopicPartitionOffset,
    message_from_confluent,
    offsets_from_confluent,
    partitions_from_confluent,
    to_confluent,
)
from consumer.settings import KafkaSettings

__all__ = ["Entry", "GroupMetadata", "KafkaConsumer", "RebalanceCallback"]

RebalanceCallback = Callable[[list[TopicPartition]], None]
"""Called with the partitions assigned, revoked or lost."""

_PINNED: Final[Mapping[str, ConfigValue]] = {
    # Transactions of aborted or open producers must stay invisible (exactly-once reads).
    "isolation.level": "read_committed",
    # Offsets are committed only by the runtime, and only for finished work.
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    # Eager: a rebalance revokes everything first, which keeps checkpoint-on-revoke simple.
    "partition.assignment.strategy": "range",
}
_DEFAULTS: Final[Mapping[str, ConfigValue]] = {
    "auto.offset.reset": "earliest",
    "enable.partition.eof": False,
}
_SKIPPED_ERRORS: Final = frozenset({PARTITION_EOF})

T = TypeVar("T")
Entry = tuple[int, bytes | None, bytes | None]
"""A record's partition, key and value."""


def _entry(message: confluent_kafka.Message) -> Entry:
    partition = message.partition()
    if partition is None:
        raise ValueError("not a consumed record: partition missing")
    return partition, message.key(), message.value()


_STATS_INTERVAL_MS: Final = 5000


@dataclass(frozen=True, slots=True)
class GroupMetadata:
    """The group's generation, opaque: hand it to ``TransactionalProducer.send_offsets``."""

    handle: Any


class KafkaConsumer:
    """A group member that reads committed records and commits offsets only when told to.

    Args:
        settings: Connection settings.
        group_id: The consumer group (full name, e.g. ``klaviyo-consumer-derive``).
        group_instance_id: Static membership id: a restart within the session timeout keeps
            the assignment without a rebalance. Pass one per (process, group).
        extra: More librdkafka properties (e.g. ``session.timeout.ms`` in tests). The
            properties above, in ``_PINNED``, cannot be changed.
        on_stats: Receives librdkafka's statistics JSON every ``statistics.interval.ms``
            (default 5 s), inside ``consume``.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        group_id: str,
        *,
        group_instance_id: str | None = None,
        extra: Mapping[str, ConfigValue] | None = None,
        on_stats: Callable[[str], None] | None = None,
    ) -> None:
        pinned: dict[str, ConfigValue] = {**_PINNED, "group.id": group_id}
        if group_instance_id:
            pinned["group.instance.id"] = group_instance_id
        defaults = {**_DEFAULTS, "session.timeout.ms": settings.session_timeout_ms}
        if on_stats is not None:
            defaults["statistics.interval.ms"] = _STATS_INTERVAL_MS
        self._fatal: KafkaError | None = None
        self._fatal_lock = threading.Lock()
        conf = build_config(
            settings, defaults=defaults, pinned=pinned, extra=extra, error_cb=self._on_error
        )
        if on_stats is not None:
            conf["stats_cb"] = on_stats
        self.group_id = group_id
        self._consumer = confluent_kafka.Consumer(conf)
        # Records and an error that followed them in one batch: the records are returned
        # first, the error is raised by the next call, and what came after it the call after.
        self._pending: collections.deque[confluent_kafka.Message] = collections.deque()

    def _on_error(self, error: confluent_kafka.KafkaError) -> None:
        log_client_error(error)
        if error.fatal():
            with self._fatal_lock:
                self._fatal = self._fatal or wrap(error, "consumer")

    def _raise_if_fatal(self) -> None:
        with self._fatal_lock:
            fatal = self._fatal
        if fatal is not None:
            raise type(fatal)(str(fatal), code=fatal.code, name=fatal.name)

    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        """Join the group for ``topics``; callbacks run inside ``consume``.

        Assignment with eager rebalancing: ``on_revoke`` gets every owned partition before a
        new assignment; without ``on_lost``, lost partitions go to ``on_revoke`` too. An
        exception raised by a callback propagates out of ``consume``.
        """

        callbacks = {"on_assign": on_assign, "on_revoke": on_revoke, "on_lost": on_lost}
        kwargs = {name: _adapt(cb) for name, cb in callbacks.items() if cb is not None}
        try:
            self._consumer.subscribe(list(topics), **kwargs)
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "subscribe") from exc

    def consume(self, max_messages: int, timeout: float) -> list[ConsumedMessage]:
        """Up to ``max_messages`` records, waiting at most ``timeout`` seconds for the first.

        Partition-EOF events are skipped. Records are returned in the order read.

        Raises:
            KafkaError: a real error (its flags say what to do); records that preceded it in
                the same batch were returned by the previous call, none is dropped.
        """
        return self._take(max_messages, timeout, message_from_confluent)

    def consume_entries(self, max_messages: int, timeout: float) -> list[Entry]:
        """As ``consume``, but only ``(partition, key, value)`` of each record: reading a
        changelog back touches millions of records and needs nothing else of them."""
        return self._take(max_messages, timeout, _entry)

    def _take(
        self, max_messages: int, timeout: float, convert: Callable[[confluent_kafka.Message], T]
    ) -> list[T]:
        self._raise_if_fatal()
        if not self._pending:
            try:
                batch = self._consumer.consume(num_messages=max_messages, timeout=timeout)
            except confluent_kafka.KafkaException as exc:
                raise wrap(exc, "consume") from exc
            self._pending.extend(batch)
        result: list[T] = []
        while self._pending and len(result) < max_messages:
            message = self._pending[0]
            error = message.error()
            if error is not None and error.code() not in _SKIPPED_ERRORS:
                if result:
                    break  # hand over the records first; the error comes next call
                self._pending.popleft()
                raise wrap(error, f"consume {message.topic()}[{message.partition()}]")
            self._pending.popleft()
            if error is None:
                result.append(convert(message))
        return result

    def commit(self, offsets: Sequence[TopicPartitionOffset]) -> None:
        """Commit ``offsets`` (each the next offset to consume) synchronously.

        Raises:
            KafkaError: the commit failed, for the whole request or for one partition.
        """
        if not offsets:
            return
        try:
            result = self._consumer.commit(offsets=to_confluent(offsets), asynchronous=False)
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "commit") from exc
        _raise_partition_errors(result, "commit")

    def committed(
        self, partitions: Sequence[TopicPartition], timeout: float = 10.0
    ) -> list[TopicPartitionOffset]:
        """The group's committed offsets (``OFFSET_INVALID`` where none)."""
        try:
            result = self._consumer.committed(to_confluent(partitions), timeout=timeout)
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "committed") from exc
        _raise_partition_errors(result, "committed")
        return offsets_from_confluent(result)

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop fetching from ``partitions`` (the assignment is kept)."""
        try:
            self._consumer.pause(to_confluent(partitions))
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "pause") from exc

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        """Fetch from paused ``partitions`` again."""
        try:
            self._consumer.resume(to_confluent(partitions))
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "resume") from exc

    def seek(self, offset: TopicPartitionOffset) -> None:
        """Read ``offset.partition`` from ``offset.offset`` on (the partition must be assigned)."""
        (tp,) = to_confluent([offset])
        try:
            self._consumer.seek(tp)
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "seek") from exc

    def assign(self, partitions: Sequence[TopicPartition | TopicPartitionOffset]) -> None:
        """Set the assignment; with offsets, reading starts there (in ``on_assign`` too)."""
        try:
            self._consumer.assign(to_confluent(partitions))
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "assign") from exc

    def unassign(self) -> None:
        """Drop the whole assignment."""
        try:
            self._consumer.unassign()
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "unassign") from exc

    def assignment(self) -> list[TopicPartition]:
        """The partitions currently assigned to this consumer."""
        try:
            return partitions_from_confluent(self._consumer.assignment())
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "assignment") from exc

    def position(self, partitions: Sequence[TopicPartition]) -> list[TopicPartitionOffset]:
        """The next offset to be read per partition (``OFFSET_INVALID`` if not known yet)."""
        try:
            result = self._consumer.position(to_confluent(partitions))
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "position") from exc
        return offsets_from_confluent(result)

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = 10.0, *, cached: bool = False
    ) -> tuple[int, int]:
        """``(low, high)`` of ``partition``; high is the offset the next record will get."""
        (tp,) = to_confluent([partition])
        try:
            low, high = self._consumer.get_watermark_offsets(tp, timeout=timeout, cached=cached)
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "get_watermark_offsets") from exc
        return low, high

    def offsets_for_times(
        self, partitions: Sequence[TopicPartition], timestamp_ms: int, timeout: float = 10.0
    ) -> list[TopicPartitionOffset]:
        """Per partition, the first offset whose record timestamp is at or after
        ``timestamp_ms``; ``OFFSET_END`` (-1) where every record is older."""
        query = [
            confluent_kafka.TopicPartition(tp.topic, tp.partition, timestamp_ms)
            for tp in partitions
        ]
        try:
            result = self._consumer.offsets_for_times(query, timeout=timeout)
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "offsets_for_times") from exc
        for tp in result:
            if tp.error is not None:  # -1 would otherwise read as "every record is older"
                raise wrap(tp.error, f"offsets_for_times {tp.topic}[{tp.partition}]")
        return offsets_from_confluent(result)

    def group_metadata(self) -> GroupMetadata:
        """The group's current generation, for ``TransactionalProducer.send_offsets``."""
        try:
            return GroupMetadata(self._consumer.consumer_group_metadata())
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "consumer_group_metadata") from exc

    def close(self) -> None:
        """Leave the group (revoke callbacks run) and release the client. Idempotent."""
        try:
            self._consumer.close()
        except RuntimeError:
            return  # already closed
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "close") from exc

    def __enter__(self) -> KafkaConsumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _adapt(
    callback: RebalanceCallback,
) -> Callable[[confluent_kafka.Consumer, list[confluent_kafka.TopicPartition]], None]:
    def call(_: confluent_kafka.Consumer, partitions: list[confluent_kafka.TopicPartition]) -> None:
        callback(partitions_from_confluent(partitions))

    return call


def _raise_partition_errors(result: Sequence[confluent_kafka.TopicPartition], what: str) -> None:
    for tp in result:
        if tp.error is not None:
            raise wrap(tp.error, f"{what} {tp.topic}[{tp.partition}]")
