"""One derive checkpoint = one Kafka transaction (exactly-once v2).

Outbox, dead-letter and changelog records produced since ``begin`` commit atomically with the
input offsets, or not at all. The commit runs in four named steps, in this order:

1. ``_write_changelog``: each state key changed in this transaction, once, newest value;
2. ``_send_offsets``: the next input offsets, with the consumer's group metadata (fences
   zombies of an older generation);
3. ``_commit_transaction``: flush and commit;
4. ``_publish``: state overlays fold in, counted outcomes reach the metrics.

``abort`` undoes everything since ``begin``: the transaction, the state overlay, and the
consumer position (seek back to the first offset read in this transaction).
All methods block; the derive stage calls them from its worker thread.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from consumer.kafka import (
    ConsumedMessage,
    KafkaConsumer,
    RetriableKafkaError,
    TopicPartition,
    TopicPartitionOffset,
    TransactionalProducer,
)
from consumer.observability import Metrics
from consumer.state.store import StateStore

__all__ = ["Checkpoint"]

log = logging.getLogger(__name__)

_RETRY_PAUSE_SECONDS = 0.5


class Checkpoint:
    """The open transaction of the derive stage and what it has done so far."""

    def __init__(
        self,
        producer: TransactionalProducer,
        consumer: KafkaConsumer,
        store: StateStore[Any],
        changelog_topic: str,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
        retry_seconds: float = 120.0,
        on_committed: Callable[[list[TopicPartitionOffset]], None] | None = None,
    ) -> None:
        self._on_committed = on_committed
        self._producer = producer
        self._retry_seconds = retry_seconds
        self._consumer = consumer
        self._store = store
        self._changelog_topic = changelog_topic
        self._metrics = metrics
        self._clock = clock
        self._open = False
        self._started_at = 0.0
        self._first: dict[TopicPartition, int] = {}
        self._next: dict[TopicPartition, int] = {}
        self.outcomes: Counter[tuple[str, ...]] = Counter()
        """Counted outcomes of this transaction, e.g. ``("skipped", reason)``; see ``_publish``."""

    @property
    def is_open(self) -> bool:
        """Whether a transaction is in progress."""
        return self._open

    @property
    def records(self) -> int:
        """Input records processed in the open transaction."""
        return sum(self._next[tp] - self._first[tp] for tp in self._next)

    def begin(self) -> None:
        """Start a transaction unless one is open."""
        if not self._open:
            self._producer.begin()
            self._open = True
            self._started_at = self._clock()

    def processed(self, message: ConsumedMessage) -> None:
        """Record that ``message`` was fully processed inside the open transaction."""
        tp = message.topic_partition
        self._first.setdefault(tp, message.offset)
        self._next[tp] = message.offset + 1
        self.outcomes[("consumed", message.topic)] += 1

    def due(self, interval_seconds: float, max_records: int) -> bool:
        """Whether the open transaction should commit now."""
        if not self._open:
            return False
        return self.records >= max_records or self._clock() - self._started_at >= interval_seconds

    def seconds_until_due(self, interval_seconds: float) -> float:
        """How long until the open transaction is due by time (``inf`` when none is open)."""
        if not self._open:
            return math.inf
        return self._started_at + interval_seconds - self._clock()

    def commit(self) -> None:
        """Commit the open transaction (steps 1 to 4). A no-op when none is open.

        Raises:
            KafkaError: the commit failed; the caller aborts (abortable) or exits (fatal).
        """
        if not self._open:
            return
        started = self._clock()
        changelog = self._write_changelog()
        self._send_offsets()
        self._commit_transaction()
        records, partitions = self.records, len(self._next)
        self._publish()
        duration = self._clock() - started
        self._metrics.checkpoint_duration.observe(duration)
        log.info(
            "checkpoint committed",
            extra={
                "records": records,
                "partitions": partitions,
                "changelog": changelog,
                "seconds": round(duration, 4),
            },
        )

    def _write_changelog(self) -> int:
        count = 0
        for partition, key, value in self._store.changelog_records():
            self._producer.produce(self._changelog_topic, key, value, partition=partition)
            count += 1
        return count

    def _offsets(self) -> list[TopicPartitionOffset]:
        return [TopicPartitionOffset(tp.topic, tp.partition, n) for tp, n in self._next.items()]

    def _send_offsets(self) -> None:
        offsets = self._offsets()
        if offsets:
            # Not retried: a timed-out call stays in progress inside librdkafka and refuses
            # retries; the stage is rebuilt with new clients instead (runtime/supervisor.py).
            self._producer.send_offsets(offsets, self._consumer.group_metadata())

    def _commit_transaction(self) -> None:
        self._retrying("commit_transaction", self._producer.commit)
        self._open = False

    def _retrying(self, step: str, call: Callable[[], None]) -> None:
        """Call a transaction step again after a retriable error (e.g. a timeout while the
        coordinator moves), as librdkafka requires: the step is still in progress inside the
        client, and anything else (abort included) would be refused until it finishes.
        """
        deadline = self._clock() + self._retry_seconds
        while True:
            try:
                call()
            except RetriableKafkaError as exc:
                if self._clock() >= deadline:
                    raise
                log.warning(
                    "transaction step will be retried", extra={"step": step, "error": str(exc)}
                )
            else:
                return

    def _publish(self) -> None:
        self._store.commit()
        for outcome, count in self.outcomes.items():
            kind, *labels = outcome
            if kind == "consumed":
                self._metrics.records_consumed.labels("derive", *labels).inc(count)
            elif kind == "derived":
                self._metrics.operations_derived.labels(*labels).inc(count)
            elif kind == "skipped":
                self._metrics.records_skipped.labels(*labels).inc(count)
            elif kind == "dead_letter":
                self._metrics.dead_letters.labels("derive", *labels).inc(count)
        self._metrics.transactions.labels("committed").inc()
        if self._on_committed is not None:
            self._on_committed(self._offsets())
        self._reset()

    def abort(self) -> None:
        """Abort the open transaction and rewind state and consumer positions to its start.

        Raises:
            KafkaError: the abort itself failed (fatal for this producer).
        """
        if self._open:
            self._retrying("abort_transaction", self._producer.abort)
            self._metrics.transactions.labels("aborted").inc()
        self._store.abort()
        assigned = set(self._consumer.assignment())
        for tp, first in self._first.items():
            if tp in assigned:
                self._consumer.seek(TopicPartitionOffset(tp.topic, tp.partition, first))
        log.warning("checkpoint aborted", extra={"records": self.records})
        self._reset()

    def forget(self, partitions: list[TopicPartition]) -> None:
        """Stop tracking offsets of partitions this process no longer owns."""
        for tp in partitions:
            self._first.pop(tp, None)
            self._next.pop(tp, None)

    def _reset(self) -> None:
        self._open = False
        self._first.clear()
        self._next.clear()
        self.outcomes.clear()
