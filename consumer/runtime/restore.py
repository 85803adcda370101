"""Read partitions from the beginning to their current end (state restore, replays)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from consumer.kafka import (
    CatchUp,
    ConsumedMessage,
    KafkaConsumer,
    RetriableKafkaError,
    TopicPartition,
)
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

    Reads with read_committed up to the end offsets seen at the start (``CatchUp``).

    Raises:
        RetriableKafkaError: the end was not reached within ``timeout_seconds``.
    """
    records: dict[int, list[ConsumedMessage]] = {p: [] for p in partitions}
    if not partitions:
        return records
    # Never commits, so the group id only names the client in broker logs.
    consumer = KafkaConsumer(settings, group_id)
    try:
        catch_up = CatchUp.start(consumer, [TopicPartition(topic, p) for p in partitions])
        deadline = time.monotonic() + timeout_seconds
        while not catch_up.done:
            if time.monotonic() > deadline:
                raise RetriableKafkaError(
                    f"restoring {topic}: end not reached in {timeout_seconds} s"
                )
            for message in consumer.consume(1000, 0.2):
                records[message.partition].append(message)
            catch_up.advance()
    finally:
        consumer.close()
    return records
