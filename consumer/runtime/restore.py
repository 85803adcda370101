"""Read partitions from the beginning to their current end (state restore, replays)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from consumer.kafka import (
    OFFSET_BEGINNING,
    ConsumedMessage,
    KafkaConsumer,
    TopicPartition,
    TopicPartitionOffset,
)
from consumer.kafka.errors import RetriableKafkaError
from consumer.settings import KafkaSettings

__all__ = ["read_partitions_to_end"]


def read_partitions_to_end(
    settings: KafkaSettings,
    topic: str,
    partitions: Sequence[int],
    group_id: str,
    timeout_seconds: float = 120.0,
) -> dict[int, list[ConsumedMessage]]:
    """Every committed record of ``partitions``, in offset order.

    Reads with read_committed up to the end offset seen at the start; aborted records and
    transaction markers are skipped by the client, so the position is compared, not counts.

    Raises:
        RetriableKafkaError: the end was not reached within ``timeout_seconds``.
    """
    records: dict[int, list[ConsumedMessage]] = {p: [] for p in partitions}
    if not partitions:
        return records
    # Never commits, so the group id only names the client in broker logs.
    consumer = KafkaConsumer(settings, group_id)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = {tp: consumer.get_watermark_offsets(tp)[1] for tp in tps}
        pending = {tp for tp, end in ends.items() if end > 0}
        consumer.assign(
            [TopicPartitionOffset(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in tps]
        )
        deadline = time.monotonic() + timeout_seconds
        while pending:
            if time.monotonic() > deadline:
                raise RetriableKafkaError(
                    f"restoring {topic}: end not reached in {timeout_seconds} s"
                )
            for message in consumer.consume(1000, 0.2):
                records[message.partition].append(message)
            for position in consumer.position(sorted(pending)):
                if position.offset >= ends[position.topic_partition]:
                    pending.discard(position.topic_partition)
    finally:
        consumer.close()
    return records
