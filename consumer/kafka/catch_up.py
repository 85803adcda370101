"""Reading partitions from the beginning up to the end they had when reading began.

Both the state restore of the derive stage and the integrations table need "everything
committed so far, then stop (or go on live)". The end is the high watermark seen at the start;
arrival is judged by the consumer's position, not by the offsets of records seen: compaction
gaps and transaction markers mean the record at ``high - 1`` may never be delivered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from consumer.kafka.consumer import KafkaConsumer
from consumer.kafka.messages import (
    OFFSET_BEGINNING,
    ConsumedMessage,
    TopicPartition,
    TopicPartitionOffset,
)

__all__ = ["CatchUp"]


class CatchUp:
    """Which of a consumer's partitions still have records written before ``start``.

    Usage: ``catch_up = CatchUp.start(consumer, partitions)``, then consume and call
    ``advance()`` after each batch until ``done``. All calls block.
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        watermarks: dict[TopicPartition, tuple[int, int]],
        starts: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        self._consumer = consumer
        self._ends = {tp: high for tp, (_, high) in watermarks.items()}
        # An empty partition (even one whose records all expired), or one read from its end,
        # has nothing to wait for.
        starts = starts or {}
        self._pending = {
            tp for tp, (low, high) in watermarks.items() if high > max(low, starts.get(tp, low))
        }

    @classmethod
    def start(
        cls,
        consumer: KafkaConsumer,
        partitions: Sequence[TopicPartition],
        timeout: float = 10.0,
        starts: Mapping[TopicPartition, int] | None = None,
    ) -> CatchUp:
        """Assign ``partitions`` from their beginning (or the offset ``starts`` gives) and
        note their current ends."""
        starts = starts or {}
        consumer.assign(
            [
                TopicPartitionOffset(tp.topic, tp.partition, starts.get(tp, OFFSET_BEGINNING))
                for tp in partitions
            ]
        )
        watermarks = {tp: consumer.get_watermark_offsets(tp, timeout) for tp in partitions}
        return cls(consumer, watermarks, starts)

    @property
    def done(self) -> bool:
        """Whether every partition has been read up to its end."""
        return not self._pending

    @property
    def pending(self) -> list[TopicPartition]:
        """Partitions not read up to their end yet."""
        return sorted(self._pending)

    def written_before_start(self, message: ConsumedMessage) -> bool:
        """Whether ``message`` was already in its partition when catching up started."""
        return message.offset < self._ends.get(message.topic_partition, 0)

    def advance(self) -> None:
        """Drop partitions whose position has reached their end."""
        if not self._pending:
            return
        for position in self._consumer.position(sorted(self._pending)):
            if position.offset >= self._ends[position.topic_partition]:
                self._pending.discard(position.topic_partition)
