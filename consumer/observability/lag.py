"""Consumer lag of one group, in records and in seconds, from librdkafka's statistics.

librdkafka calls ``on_stats`` every ``statistics.interval.ms`` (inside ``consume``, on the
stage's worker thread) with a JSON document holding each assigned partition's high
watermark (``ls_offset`` under read_committed) and fetch position. Its own
``committed_offset`` is only what the consumer itself committed or found at assignment, not
what a transaction committed for it, so the stages also report every commit here and the
newer of the two counts.

Lag in records = last stable offset - committed, summed over the topic's partitions. A
transactional topic ends in a commit marker that the consumer skips but never commits past,
so a partition whose records were all handed out (``app_offset`` at the end) and committed
(up to the last record read) counts 0.
Lag in seconds = now - timestamp of the newest record read, on partitions with records not
yet committed; 0 when caught up; the max over the topic's partitions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from consumer.kafka import ConsumedMessage, TopicPartitionOffset
from consumer.observability.metrics import Metrics

__all__ = ["LagMonitor"]

log = logging.getLogger(__name__)


class LagMonitor:
    """Turns statistics, reads and commits of one consumer group into lag gauges.

    Args:
        metrics: where the gauges live.
        group: the consumer group (a label value).
        backlog_topic: a topic whose lag is also the outbox backlog (the deliver stage's).
        clock: wall clock in seconds (record timestamps are wall-clock milliseconds).
    """

    def __init__(
        self,
        metrics: Metrics,
        group: str,
        backlog_topic: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics
        self._group = group
        self._backlog_topic = backlog_topic
        self._clock = clock
        self._read_at: dict[tuple[str, int], int] = {}
        self._read_next: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}

    def read(self, messages: Iterable[ConsumedMessage]) -> None:
        """Note the timestamps of records just consumed."""
        for message in messages:
            key = (message.topic, message.partition)
            self._read_next[key] = message.offset + 1
            if message.timestamp_ms >= 0:
                self._read_at[key] = message.timestamp_ms

    def committed(self, offsets: Iterable[TopicPartitionOffset]) -> None:
        """Note offsets the group has just committed (next offset to consume)."""
        for offset in offsets:
            key = (offset.topic, offset.partition)
            self._committed[key] = max(offset.offset, self._committed.get(key, -1))

    def on_stats(self, document: str) -> None:
        """librdkafka's ``stats_cb``: update the lag gauges from one statistics document."""
        try:
            stats = orjson.loads(document)
        except orjson.JSONDecodeError:
            log.warning("unreadable librdkafka statistics", extra={"group": self._group})
            return
        now_ms = self._clock() * 1000
        for topic, view in (stats.get("topics") or {}).items():
            records, seconds = 0, 0.0
            for key, partition in (view.get("partitions") or {}).items():
                lag = self._partition_lag(topic, int(key), partition)
                records += lag
                read_at = self._read_at.get((topic, int(key)))
                if lag and read_at is not None:
                    seconds = max(seconds, (now_ms - read_at) / 1000)
            self._metrics.lag_records.labels(self._group, topic).set(records)
            self._metrics.lag_seconds.labels(self._group, topic).set(max(0.0, seconds))
            if topic == self._backlog_topic:
                self._metrics.outbox_backlog.set(records)

    def _partition_lag(self, topic: str, partition: int, view: dict[str, Any]) -> int:
        if partition < 0 or not view.get("desired", False):
            return 0  # the internal "-1" partition, or one not assigned to us
        end = int(view.get("ls_offset", -1))
        committed = max(
            int(view.get("committed_offset", -1)), self._committed.get((topic, partition), -1)
        )
        if committed < 0:  # nothing committed yet: reading starts at the log start
            committed = int(view.get("lo_offset", -1))
        if end < 0 or committed < 0:
            return 0  # not known yet (partition just assigned)
        handed_out = int(view.get("app_offset", -1)) >= end
        if handed_out and committed >= self._read_next.get((topic, partition), committed):
            return 0  # everything read is committed; what may remain is a commit marker
        return max(0, end - committed)
