"""Stage "deliver": outbox → Klaviyo, committing only what is finished.

One asyncio task owns the outbox consumer. It feeds every operation to the ``Sink`` with the
record's (partition, offset) as token; the sink reports one outcome per token. Accepted ones
are finished at once; dead-lettered and parked ones once the broker acknowledged their record
on the dead-letter or parked topic. Offsets are committed per partition up to the contiguous
prefix of finished operations, so a crash re-sends at most the in-flight window, which
Klaviyo deduplicates by ``unique_id``. A partition with too much work *waiting* (unfinished
operations not in a request, failure records not yet acknowledged included) is paused until
it drains. Operations in a request (each lane's batch in hand, at most one request's worth
per merchant lane) are left out of that count: a merchant's operations all sit in one outbox
partition, and each of its lanes needs one batch in flight while the next one fills, so
counting those would starve the batches of every merchant sharing the partition.

The sink is told when a backlog waits upstream, so its lanes wait for full requests: from
when a partition is paused or further behind its end than half the in-flight bound, until a
poll with nothing paused comes back short (the stage read all there was). A full poll alone is no
backlog: at steady load each derive checkpoint makes a burst visible at once, and lingering
longer then only adds latency (seen as p99 7.8 s at half load in make bench). Otherwise an
operation's linger counts from its outbox record's timestamp, when derive produced it. A
paused partition is resumed below half the bound, or below the bound once nothing of it is
in a request (its lanes hold partial batches that only more input fills). One still paused
with nothing in a request is *stalled* (more merchant lanes in the partition than the bound
holds full batches for): waiting for more could only end by the linger, so its fullest lane
sends what it has at once, one request at a time (see ``Sink.set_backlog``).

librdkafka drops what it fetched for a partition when it is paused, and the partition's
records fetched after the resume queue behind everything fetched for the others meanwhile,
so the consumer reads ahead only about the bound per partition, in small fetches
(``_read_ahead``): at librdkafka's defaults a resumed partition's lanes went without input
for 10 s and more in the bench's backlog and sent partial batches at their backlog linger.

On a clean stop the sink sends what it may send at once and parks the rest (see
``Sink.close``); the finished prefix is committed and the rest resent by the next owner.

One owner per structure: the tracker, the in-flight records, the paused set and the sink
belong to the event loop. Kafka calls run in worker threads, and rebalance callbacks run
inside ``consume`` on such a thread, so a callback hands its change to the loop and waits
for it (``_on_loop``): the loop stops the partitions' lanes, forgets their work and returns
what may still be committed, which the callback commits before the partitions go. Failure
records are written by a ``BackgroundProducer``: nothing on the loop waits on librdkafka.
A lost assignment (the session expired, e.g. while the coordinator was unreachable) is
dropped without a commit; commit failures of an outage are retried by the next commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Coroutine, Hashable
from datetime import UTC, datetime
from typing import Any, cast

from consumer.deliver import (
    SHUTDOWN,
    Accepted,
    DeadLettered,
    KlaviyoClient,
    OffsetTracker,
    Outcome,
    Parked,
    Sink,
    serialize_alone,
)
from consumer.kafka import (
    ConfigValue,
    ConsumedMessage,
    KafkaError,
    RetriableKafkaError,
    TopicPartition,
    TopicPartitionOffset,
)
from consumer.merchant import MerchantSettings
from consumer.observability import Health, LagMonitor, Metrics
from consumer.outbox import OutboxFormatError, decode_operation
from consumer.runtime.clients import KafkaClients
from consumer.runtime.dead_letter import FailedRecord, FailureRecord, failure_record, record_budget
from consumer.runtime.record_errors import RecordErrors
from consumer.settings import Settings

__all__ = ["DeliverStage"]

log = logging.getLogger(__name__)

_BATCH = 1000
_POLL_SECONDS = 0.1
_COMMIT_SECONDS = 1.0
_REBALANCE_WAIT_SECONDS = 30.0
"""How long a rebalance callback waits for the loop (which never blocks: a safety bound)."""
_FETCH_BYTES = 256 * 1024
_WRITE_RETRY_SECONDS = 1.0
_WRITE_RETRY_MAX_SECONDS = 30.0


class DeliverStage:
    """Outbox consumer + Klaviyo sink + per-partition commit of finished work."""

    def __init__(
        self,
        settings: Settings,
        merchants: Callable[[str], MerchantSettings | None],
        metrics: Metrics,
        health: Health,
        instance_id: str,
        *,
        clients: KafkaClients,
    ) -> None:
        self._settings = settings
        self._topics = settings.topics
        self._metrics = metrics
        self._health = health
        health.set_ready("deliver", False)  # until partitions are assigned (and restored)
        self._lag = LagMonitor(
            metrics, f"{settings.kafka.group_id}-deliver", backlog_topic=settings.topics.outbox
        )
        self._consumer = clients.consumer(
            f"{settings.kafka.group_id}-deliver",
            group_instance_id=f"{instance_id}-deliver",
            on_stats=self._lag.on_stats,
            extra=_read_ahead(settings.delivery.max_in_flight_per_partition),
        )
        self._producer = clients.producer()
        # Owned by the event loop (see the module docstring).
        self._tracker = OffsetTracker()
        self._messages: dict[tuple[int, int], ConsumedMessage] = {}  # submitted, unfinished
        self._sink = Sink(
            settings.delivery,
            KlaviyoClient(settings.klaviyo),
            merchants,
            self._on_outcome,
            metrics=metrics,
            token_group=_partition_of,
        )
        self._paused: set[TopicPartition] = set()
        self._backlog = False  # see the module docstring
        self._committed: dict[int, int] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._last_commit = time.monotonic()
        self._abandoned = False
        self._budget = record_budget(settings.kafka.max_message_bytes)
        self._errors = RecordErrors(
            "deliver",
            "delivery",
            (OutboxFormatError,),
            settings.delivery.error_breaker_percent,
            settings.delivery.error_breaker_window,
            metrics,
        )
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, shutdown_seconds: float) -> None:
        """Deliver until ``stop`` is set; then send what may go out at once and commit what
        finished.

        Operations unfinished then (queued behind a rate limit or a retry's backoff, or in a
        request still open at the deadline) are not committed: the next owner of the
        partition sends them again (Klaviyo keeps one per ``unique_id``).
        """
        self._loop = asyncio.get_running_loop()
        self._consumer.subscribe(
            [self._topics.outbox],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        clean = False
        try:
            while not stop.is_set():
                messages, behind = await self._consume()
                self._lag.read(messages)
                for message in messages:
                    self._submit(message)
                if behind or self._paused:
                    self._backlog = True
                elif len(messages) < _BATCH:
                    self._backlog = False
                await self._maybe_commit()
                await self._apply_backpressure()
                self._sink.set_backlog(self._backlog, self._stalled())
                self._report_metrics()
                self._health.beat("deliver")
                self._metrics.consume_loop_last_turn.labels("deliver").set_to_current_time()
            clean = True
        finally:
            await self._sink.close(time.monotonic() + shutdown_seconds * 0.6)
            # After a failure the consumer may be unusable (fenced): commit nothing; the
            # next owner resends what is uncommitted and Klaviyo keeps one per unique_id.
            self._abandoned = not clean
            if clean and self._writes:
                await asyncio.wait(self._writes, timeout=shutdown_seconds * 0.2)
            if clean:
                await self._commit()
            for write in list(self._writes):
                write.cancel()
            self._report_metrics()
            try:
                await asyncio.to_thread(self._consumer.close)
            finally:
                await asyncio.to_thread(self._producer.close, shutdown_seconds * 0.2)

    async def _consume(self) -> tuple[list[ConsumedMessage], bool]:
        """One poll, and whether a partition is further behind its end than half the
        in-flight bound (a backlog upstream)."""
        read = set(cast(list[int], self._tracker.partitions()))
        try:
            return await asyncio.to_thread(self._poll, read)
        except RetriableKafkaError as exc:  # the broker or coordinator away: ride it out
            log.warning("consume failed, will retry", extra={"error": str(exc)})
            return [], False

    def _poll(self, read: set[int]) -> tuple[list[ConsumedMessage], bool]:
        # Blocking calls, off the loop. Positions and end offsets are the client's own (the
        # ends from its last fetch): no round trip, nor a wait on librdkafka's main thread as
        # ``assignment()`` has. Under read_committed the ends include derive's open
        # transaction, at most one checkpoint's worth (about 1,150 operations a partition at
        # the bench's half load), far below half the default bound; a backlog smaller than
        # the bound (a few seconds' worth) still fills its requests. ``read``: the
        # partitions read before (one revoked meanwhile has no position and is skipped).
        messages = self._consumer.consume(_BATCH, _POLL_SECONDS)
        behind = self._settings.delivery.max_in_flight_per_partition // 2
        read = read | {m.partition for m in messages}
        partitions = [TopicPartition(self._topics.outbox, p) for p in sorted(read)]
        for position in self._consumer.position(partitions):
            if position.offset < 0:
                continue  # not read yet
            _, end = self._consumer.get_watermark_offsets(position.topic_partition, cached=True)
            if end - position.offset >= behind:
                return messages, True
        return messages, False

    # -- operations in, outcomes out ---------------------------------------------------------

    def _submit(self, message: ConsumedMessage) -> None:
        self._tracker.submit(message.partition, message.offset)
        self._messages[(message.partition, message.offset)] = message
        self._metrics.records_consumed.labels("deliver", message.topic).inc()
        try:
            operation = decode_operation(message.value or b"")
            # Serialising it alone here means no request the lanes build can fail over it.
            serialize_alone(operation)
        except Exception as exc:  # noqa: BLE001 -- the record boundary (record_errors)
            failure = self._errors.failure(exc, message)
            self._write_failure(message, self._topics.dead_letter, failure, "dead_lettered")
            return
        self._errors.passed()
        self._sink.submit(operation, (message.partition, message.offset), _produced_at(message))

    def _on_outcome(self, outcome: Outcome) -> None:
        # Every outcome's message is here: the sink reports none for revoked tokens.
        message = self._messages[cast(tuple[int, int], outcome.token)]
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
        record = failure_record(message, "deliver", failure, self._budget)
        write = asyncio.create_task(self._write(message, topic, record, outcome, failure.reason))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    async def _write(
        self,
        message: ConsumedMessage,
        topic: str,
        record: FailureRecord,
        outcome: str,
        reason: str,
    ) -> None:
        """Write one failure record until the broker has it, then finish its offset.

        Only while its partition is still ours: after a revocation the next owner writes it.
        """
        delay = _WRITE_RETRY_SECONDS
        while self._owns(message):
            try:
                await self._producer.send(topic, record.key, record.value, record.headers)
            except KafkaError as exc:
                log.warning(
                    "failure record not written, will retry",
                    extra={"topic": topic, "error": str(exc), "retry_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _WRITE_RETRY_MAX_SECONDS)
                continue
            if self._owns(message):
                if outcome == "dead_lettered":
                    self._metrics.dead_letters.labels("deliver", reason).inc()
                else:
                    self._metrics.parked_operations.labels(reason).inc()
                self._finish(message, outcome)
            return

    def _owns(self, message: ConsumedMessage) -> bool:
        """Whether ``message`` is still unfinished work of a partition we own."""
        return self._messages.get((message.partition, message.offset)) is message

    def _finish(self, message: ConsumedMessage, outcome: str) -> None:
        del self._messages[(message.partition, message.offset)]
        self._tracker.finish(message.partition, message.offset)
        self._metrics.operations_delivered.labels(outcome).inc()

    # -- commits and back-pressure -------------------------------------------------------------

    async def _maybe_commit(self) -> None:
        if time.monotonic() - self._last_commit >= _COMMIT_SECONDS:
            await self._commit()

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        offsets = self._committable(cast(list[int], self._tracker.partitions()))
        if not offsets:
            return
        if await asyncio.to_thread(self._commit_offsets, offsets):
            self._committed.update((o.partition, o.offset) for o in offsets)

    def _committable(self, partitions: Collection[int]) -> list[TopicPartitionOffset]:
        """Each partition's finished prefix not yet committed (nothing once abandoned)."""
        if self._abandoned:
            return []
        return [
            TopicPartitionOffset(self._topics.outbox, p, n)
            for p in partitions
            if (n := self._tracker.committable(p)) is not None and self._committed.get(p) != n
        ]

    def _commit_offsets(self, offsets: list[TopicPartitionOffset]) -> bool:
        """Commit (a blocking call, off the loop); False if it failed for now.

        A commit that fails for now (the coordinator away or moving, the group rebalancing)
        is left to the next one: until then, a crash only means resending a little more.
        """
        try:
            self._consumer.commit(offsets)
            self._lag.committed(offsets)
        except RetriableKafkaError as exc:
            log.warning("commit failed, will retry", extra={"error": str(exc)})
            return False
        return True

    async def _apply_backpressure(self) -> None:
        limit = self._settings.delivery.max_in_flight_per_partition
        pause: list[TopicPartition] = []
        resume: list[TopicPartition] = []
        for partition in cast(list[int], self._tracker.partitions()):
            tp = TopicPartition(self._topics.outbox, partition)
            in_requests = self._sink.in_requests(partition)
            waiting = self._tracker.in_flight(partition) - in_requests
            if waiting >= limit and tp not in self._paused:
                pause.append(tp)
            elif tp in self._paused and (
                waiting < limit // 2 or (waiting < limit and not in_requests)
            ):
                # Nothing in a request: its lanes hold partial batches only more input fills.
                resume.append(tp)
        if pause or resume:
            await asyncio.to_thread(self._pause_resume, pause, resume)
            self._paused.update(pause)
            self._paused.difference_update(resume)
        self._metrics.operations_in_flight.set(self._tracker.total_in_flight())

    def _stalled(self) -> list[int]:
        """Paused partitions with nothing in a request: only their lanes sending frees room."""
        paused = (tp.partition for tp in self._paused)
        return [p for p in paused if not self._sink.in_requests(p)]

    def _pause_resume(self, pause: list[TopicPartition], resume: list[TopicPartition]) -> None:
        if pause:
            self._consumer.pause(pause)
        if resume:
            self._consumer.resume(resume)

    def _report_metrics(self) -> None:
        self._metrics.merchants_parked.set(len({p[0] for p in self._sink.parks()}))

    # -- rebalancing (inside consume, on the worker thread) --------------------------------

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        self._metrics.partitions_assigned.labels("deliver").set(len(partitions))
        self._metrics.rebalances.labels("deliver", "assign").inc()
        self._health.set_ready("deliver", True)
        log.info("partitions assigned", extra={"partitions": len(partitions)})

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        # Commit the finished prefix; unfinished operations are resent by the next owner.
        offsets = self._on_loop(self._release(partitions, commit=True))
        if offsets:
            self._commit_offsets(offsets)
        self._metrics.partitions_assigned.labels("deliver").set(0)
        self._metrics.rebalances.labels("deliver", "revoke").inc()
        log.info("partitions revoked", extra={"partitions": len(partitions)})

    def _on_lost(self, partitions: list[TopicPartition]) -> None:
        # Another member may own these already: committing would be wrong (and would fail).
        self._on_loop(self._release(partitions, commit=False))
        self._metrics.partitions_assigned.labels("deliver").set(0)
        log.warning("partitions lost", extra={"partitions": len(partitions)})

    def _on_loop(
        self, change: Coroutine[Any, Any, list[TopicPartitionOffset]]
    ) -> list[TopicPartitionOffset]:
        """Run ``change`` on the event loop and wait for its result (from a callback).

        The loop is free meanwhile: it awaits this very ``consume`` call. Should it not
        answer in time anyway, nothing is committed; the change still runs, in order.
        """
        loop = cast(asyncio.AbstractEventLoop, self._loop)  # set before subscribing
        answer = asyncio.run_coroutine_threadsafe(change, loop)
        try:
            return answer.result(_REBALANCE_WAIT_SECONDS)
        except TimeoutError:
            log.warning("event loop did not take the rebalance in time; committing nothing")
            return []

    async def _release(
        self, partitions: list[TopicPartition], *, commit: bool
    ) -> list[TopicPartitionOffset]:
        """Give partitions up (on the loop): their lanes stop and their work is forgotten.

        Returns their finished offsets not yet committed, if ``commit``.
        """
        gone = {tp.partition for tp in partitions if tp.topic == self._topics.outbox}
        offsets = self._committable(gone) if commit else []
        dropped = sum(self._tracker.in_flight(partition) for partition in gone)
        self._sink.revoke(lambda token: cast(tuple[int, int], token)[0] in gone)
        for partition in gone:
            self._tracker.revoke(partition)
            self._committed.pop(partition, None)
        self._paused.difference_update(partitions)
        self._messages = {k: m for k, m in self._messages.items() if k[0] not in gone}
        if dropped:
            cause = "revoked" if commit else "lost"
            self._metrics.operations_dropped.labels(cause).inc(dropped)
            log.info("unfinished operations dropped", extra={"operations": dropped, "cause": cause})
        return offsets

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


def _read_ahead(bound: int) -> dict[str, ConfigValue]:
    """librdkafka's read-ahead for the outbox consumer: about the bound, in small fetches.

    It hands records out in fetch order, and a fetch brings up to
    ``max.partition.fetch.bytes`` of lz4 batches per partition: at the default 1 MiB, runs
    of 13k to 24k operations of one partition at the stage's pace in the bench, seconds
    while the other partitions' lanes get nothing (256 KiB: about 3k). The default
    read-ahead (100k records a partition; its byte bound counts compressed bytes) queued a
    resumed partition's records behind as many of the others'.
    """
    return {
        "queued.min.messages": bound,
        "max.partition.fetch.bytes": _FETCH_BYTES,
        # With so small a read-ahead, the default 1 s before fetching again once it is
        # reached left the stage without input (30k records/s where 165k were possible).
        "fetch.queue.backoff.ms": 50,
    }


def _partition_of(token: Hashable) -> Hashable:
    return cast(tuple[int, int], token)[0]


def _produced_at(message: ConsumedMessage) -> float | None:
    """When the operation was produced, on ``time.monotonic()`` (from the record timestamp).

    A timestamp ahead of this host's clock counts as now; one far behind only means the
    operation is sent without lingering, as under any backlog.
    """
    if message.timestamp_ms < 0:
        return None
    age = time.time() - message.timestamp_ms / 1000
    return time.monotonic() - max(0.0, age)
