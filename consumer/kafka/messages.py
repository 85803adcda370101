"""Our own types for what crosses the facade: partitions, offsets and consumed messages.

Conversion from and to confluent-kafka types happens only in this module, so nothing past
``consumer.kafka`` needs confluent types.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import confluent_kafka

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "OFFSET_STORED",
    "ConsumedMessage",
    "Header",
    "TopicPartition",
    "TopicPartitionOffset",
]

OFFSET_BEGINNING: Final[int] = confluent_kafka.OFFSET_BEGINNING
"""Logical offset: the earliest offset still in the log."""
OFFSET_END: Final[int] = confluent_kafka.OFFSET_END
"""Logical offset: the next offset to be written (only new messages)."""
OFFSET_STORED: Final[int] = confluent_kafka.OFFSET_STORED
"""Logical offset: the group's committed offset (``auto.offset.reset`` when none)."""
OFFSET_INVALID: Final[int] = confluent_kafka.OFFSET_INVALID
"""No offset: nothing committed yet, or the position is not known yet."""

Header = tuple[str, bytes]
"""One record header: name and value (a header sent without a value reads as ``b""``)."""


@dataclass(frozen=True, slots=True, order=True)
class TopicPartition:
    """One partition of one topic."""

    topic: str
    partition: int


@dataclass(frozen=True, slots=True, order=True)
class TopicPartitionOffset:
    """An offset in one partition.

    For commits and ``send_offsets`` the offset is the *next* one to consume: the offset of
    the last processed message plus one. May be one of the logical ``OFFSET_*`` values.
    """

    topic: str
    partition: int
    offset: int

    @property
    def topic_partition(self) -> TopicPartition:
        """The partition, without the offset."""
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class ConsumedMessage:
    """One record read from Kafka, detached from the client that read it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    timestamp_ms: int
    """Record timestamp in epoch milliseconds, ``-1`` when the record has none."""

    @property
    def topic_partition(self) -> TopicPartition:
        """The partition the record was read from."""
        return TopicPartition(self.topic, self.partition)

    def next_offset(self) -> TopicPartitionOffset:
        """The offset to commit once this record is processed (its own offset plus one)."""
        return TopicPartitionOffset(self.topic, self.partition, self.offset + 1)

    def header(self, name: str) -> bytes | None:
        """The value of the last header called ``name``, or ``None`` if there is none."""
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return None


def message_from_confluent(message: confluent_kafka.Message) -> ConsumedMessage:
    """Copy a polled confluent message (which must carry no error) into a ``ConsumedMessage``."""
    topic = message.topic()
    partition = message.partition()
    offset = message.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("not a consumed record: topic, partition or offset missing")
    raw_headers = message.headers() or ()
    headers = tuple(
        (name, _header_bytes(value))
        for name, value in (raw_headers.items() if isinstance(raw_headers, dict) else raw_headers)
    )
    _, timestamp = message.timestamp()
    return ConsumedMessage(
        topic=topic,
        partition=partition,
        offset=offset,
        key=message.key(),
        value=message.value(),
        headers=headers,
        timestamp_ms=timestamp if timestamp >= 0 else -1,
    )


def _header_bytes(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value


def to_confluent(
    partitions: Iterable[TopicPartition | TopicPartitionOffset],
) -> list[confluent_kafka.TopicPartition]:
    """Our partitions (with or without offsets) as confluent ``TopicPartition`` objects."""
    converted = []
    for item in partitions:
        if isinstance(item, TopicPartitionOffset):
            converted.append(
                confluent_kafka.TopicPartition(item.topic, item.partition, item.offset)
            )
        else:
            converted.append(confluent_kafka.TopicPartition(item.topic, item.partition))
    return converted


def partitions_from_confluent(
    partitions: Sequence[confluent_kafka.TopicPartition],
) -> list[TopicPartition]:
    """Confluent ``TopicPartition`` objects as our ``TopicPartition`` (offsets dropped)."""
    return [TopicPartition(tp.topic, tp.partition) for tp in partitions]


def offsets_from_confluent(
    partitions: Sequence[confluent_kafka.TopicPartition],
) -> list[TopicPartitionOffset]:
    """Confluent ``TopicPartition`` objects as ``TopicPartitionOffset`` (errors not checked)."""
    return [TopicPartitionOffset(tp.topic, tp.partition, tp.offset) for tp in partitions]
