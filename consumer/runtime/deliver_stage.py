"""Stage "deliver": outbox → Klaviyo, committing only what is finished.

One asyncio task owns the outbox consumer. It feeds every operation to the ``Sink`` with the
record's (partition, offset) as token; the sink reports one outcome per token. Accepted ones
are finished at once; dead-lettered and parked ones are finished once their record is written
to the dead-letter or parked topic (flushed before the commit that covers them). Offsets are
committed per partition up to the contiguous prefix of finished operations, so a crash
re-sends at most the in-flight window, which Klaviyo deduplicates by ``unique_id``.
A partition with too much unfinished work is paused until it drains.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast

from consumer.deliver import (
    SHUTDOWN,
    Accepted,
    DeadLettered,
    KlaviyoClient,
    OffsetTracker,
    Outcome,
    Parked,
    Sink,
)
from consumer.kafka import (
    ConsumedMessage,
    KafkaConsumer,
    Producer,
    RetriableKafkaError,
    TopicPartition,
    TopicPartitionOffset,
)
from consumer.merchant import MerchantSettings
from consumer.observability import Health, Metrics
from consumer.outbox import OutboxFormatError, decode_operation
from consumer.runtime.dead_letter import FailedRecord, failure_headers
from consumer.settings import Settings

__all__ = ["DeliverStage"]

log = logging.getLogger(__name__)

_BATCH = 1000
_POLL_SECONDS = 0.1
_COMMIT_SECONDS = 1.0


class DeliverStage:
    """Outbox consumer + Klaviyo sink + per-partition commit of finished work."""

    def __init__(
        self,
        settings: Settings,
        merchants: Callable[[str], MerchantSettings | None],
        metrics: Metrics,
        health: Health,
        instance_id: str,
    ) -> None:
        self._settings = settings
        self._topics = settings.topics
        self._metrics = metrics
        self._health = health
        health.set_ready("deliver", False)  # until partitions are assigned (and restored)
        self._consumer = KafkaConsumer(
            settings.kafka,
            f"{settings.kafka.group_id}-deliver",
            group_instance_id=f"{instance_id}-deliver",
        )
        self._producer = Producer(settings.kafka)
        self._tracker = OffsetTracker()
        self._messages: dict[tuple[int, int], ConsumedMessage] = {}
        self._sink = Sink(
            settings.delivery, KlaviyoClient(settings.klaviyo), merchants, self._on_outcome
        )
        self._paused: set[TopicPartition] = set()
        self._last_commit = time.monotonic()
        self._reported: dict[str, int] = {}
        self._abandoned = False

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, shutdown_seconds: float) -> None:
        """Deliver until ``stop`` is set; then finish in-flight work and commit it.

        Operations still unfinished at the deadline are not committed: the next owner of the
        partition sends them again (Klaviyo keeps one per ``unique_id``).
        """
        self._consumer.subscribe(
            [self._topics.outbox], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        clean = False
        try:
            while not stop.is_set():
                messages = await asyncio.to_thread(self._consumer.consume, _BATCH, _POLL_SECONDS)
                for message in messages:
                    self._submit(message)
                # A full batch (or a paused partition) means more input is waiting.
                self._sink.set_backlog(len(messages) >= _BATCH or bool(self._paused))
                await self._maybe_commit()
                await asyncio.to_thread(self._apply_backpressure)
                self._report_metrics()
                self._health.beat("deliver")
                self._metrics.consume_loop_last_turn.labels("deliver").set_to_current_time()
            clean = True
        finally:
            await self._sink.close(time.monotonic() + shutdown_seconds * 0.6)
            # After a failure the consumer may be unusable (fenced): commit nothing; the
            # next owner resends what is uncommitted and Klaviyo keeps one per unique_id.
            self._abandoned = not clean
            if clean:
                await self._commit()
            self._report_metrics()
            try:
                await asyncio.to_thread(self._consumer.close)
            finally:
                await asyncio.to_thread(self._producer.close)

    # -- operations in, outcomes out ---------------------------------------------------------

    def _submit(self, message: ConsumedMessage) -> None:
        self._tracker.submit(message.partition, message.offset)
        self._metrics.records_consumed.labels("deliver", message.topic).inc()
        try:
            operation = decode_operation(message.value or b"")
        except OutboxFormatError as exc:
            failure = FailedRecord(exc.reason, type(exc).__name__, str(exc))
            self._write_failure(message, self._topics.dead_letter, failure, "dead_lettered")
            return
        self._messages[(message.partition, message.offset)] = message
        self._sink.submit(operation, (message.partition, message.offset))

    def _on_outcome(self, outcome: Outcome) -> None:
        partition, offset = cast(tuple[int, int], outcome.token)
        message = self._messages.pop((partition, offset), None)
        if message is None:
            return  # the partition was revoked meanwhile; its new owner resends
        if isinstance(outcome, Accepted):
            self._finish(message, "accepted")
        elif isinstance(outcome, Parked) and outcome.reason == SHUTDOWN:
            return  # left unfinished on purpose: not committed, resent after restart
        else:
            failure = FailedRecord(
                outcome.reason,
                type(outcome).__name__,
                outcome.detail or outcome.reason,
                merchant_id=outcome.operation.merchant_id,
            )
            if isinstance(outcome, DeadLettered):
                self._write_failure(message, self._topics.dead_letter, failure, "dead_lettered")
            else:
                self._write_failure(message, self._topics.parked, failure, "parked")

    def _write_failure(
        self, message: ConsumedMessage, topic: str, failure: FailedRecord, outcome: str
    ) -> None:
        headers = failure_headers(message, "deliver", failure)
        # Produce is asynchronous; the commit that covers this offset flushes it first.
        self._producer.produce(topic, message.key, message.value, headers)
        if outcome == "dead_lettered":
            self._metrics.dead_letters.labels("deliver", failure.reason).inc()
        else:
            self._metrics.parked_operations.labels(failure.reason).inc()
        self._finish(message, outcome)

    def _finish(self, message: ConsumedMessage, outcome: str) -> None:
        self._tracker.finish(message.partition, message.offset)
        self._metrics.operations_delivered.labels(outcome).inc()

    # -- commits and back-pressure -------------------------------------------------------------

    async def _maybe_commit(self) -> None:
        if time.monotonic() - self._last_commit >= _COMMIT_SECONDS:
            await self._commit()

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        partitions = [cast(int, p) for p in self._tracker.partitions()]
        await asyncio.to_thread(self._commit_finished, partitions)

    def _commit_finished(self, partitions: list[int]) -> None:
        """Commit each partition's finished prefix; failure records are flushed first.

        A commit that fails for now (e.g. the coordinator moving) is left to the next one:
        until then, a crash only means resending a little more.
        """
        offsets = [
            TopicPartitionOffset(self._topics.outbox, p, n)
            for p in partitions
            if (n := self._tracker.committable(p)) is not None
        ]
        if not offsets or self._abandoned:
            return
        try:
            self._producer.flush()
            self._consumer.commit(offsets)
        except RetriableKafkaError as exc:
            log.warning("commit failed, will retry", extra={"error": str(exc)})

    def _apply_backpressure(self) -> None:
        limit = self._settings.delivery.max_in_flight_per_partition
        for partition in self._tracker.partitions():
            tp = TopicPartition(self._topics.outbox, cast(int, partition))
            busy = self._tracker.in_flight(partition)
            if busy >= limit and tp not in self._paused:
                self._consumer.pause([tp])
                self._paused.add(tp)
            elif busy < limit // 2 and tp in self._paused:
                self._consumer.resume([tp])
                self._paused.discard(tp)
        self._metrics.operations_in_flight.set(self._tracker.total_in_flight())

    def _report_metrics(self) -> None:
        stats = self._sink.stats
        for status, count in stats.responses.items():
            delta = count - self._reported.get(status, 0)
            if delta:
                self._metrics.klaviyo_requests.labels(status).inc(delta)
                self._reported[status] = count
        self._metrics.merchants_parked.set(len({p[0] for p in self._sink.parks()}))

    # -- rebalancing (inside consume, on the worker thread) --------------------------------

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        self._metrics.partitions_assigned.labels("deliver").set(len(partitions))
        self._health.set_ready("deliver", True)
        log.info("partitions assigned", extra={"partitions": len(partitions)})

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        # Commit the finished prefix; unfinished operations are resent by the next owner.
        self._commit_finished([tp.partition for tp in partitions])
        for tp in partitions:
            self._tracker.revoke(tp.partition)
            self._paused.discard(tp)
        self._messages = {
            k: m for k, m in self._messages.items() if m.topic_partition not in partitions
        }
        self._metrics.partitions_assigned.labels("deliver").set(0)
        log.info("partitions revoked", extra={"partitions": len(partitions)})

    def debug(self) -> dict[str, object]:
        """Per-merchant detail for ``/debug/merchants`` (parks), never keys."""
        return {
            "parks": [
                {"merchant": m, "endpoint": e, "reason": r, "seconds_left": round(s, 1)}
                for m, e, r, s in self._sink.parks()
            ],
            "in_flight": self._tracker.total_in_flight(),
            "at": datetime.now(UTC).isoformat(),
        }
