"""One merchant's history, derived again and written to the outbox as Klaviyo backfill.

``Backfill(settings, request).run(report)``:

1. plan (first start only): per input partition, the range from the first offset at or after
   ``since`` (``offsets_for_times``) to the first at or after ``until``, or to the end when
   the run starts; records that arrive later are live traffic, the running service's;
2. read the ranges, keep the merchant's records, derive them with the service's derivation
   and the run's **own** order state (the live service's state is never touched);
3. every ``chunk_records`` records read (or ``chunk_seconds``), one Kafka transaction holds
   the outbox records, the changed order states and the progress (see ``checkpoint``):
   killed at any point, the run restarts from its last transaction with nothing lost and
   nothing written twice; a finished run started again writes nothing.

Events go out with ``backfill=true`` (Klaviyo records them without firing flows) and
subscriptions with ``historical_import=true`` (no double opt-in mail, no "added to list"
flow). unique_ids are the live derivation's, so Klaviyo deduplicates whatever a live run
already sent. In the deliver stage, backfilled operations queue behind live ones of the
merchant (``consumer.deliver.batcher``), so live traffic never waits for a backfill.
After the last record, stall timers due by then are swept over the run's orders, so a
parcel that stalled in the window gets its ``stalled_in_transit`` as the live service would
have sent it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consumer.backfill.checkpoint import (
    Progress,
    ensure_checkpoint_topic,
    load_checkpoint,
    order_key,
    progress_key,
)
from consumer.decode import DecodeError, RecordDecoder, SchemaCatalog, SchemaRegistryClient
from consumer.derive import (
    Derivation,
    DeriveConfig,
    derive_order,
    derive_return,
    derive_storefront_event,
    due_timers,
    next_timer_at,
)
from consumer.kafka import (
    OFFSET_END,
    ConsumedMessage,
    KafkaConsumer,
    KafkaError,
    TopicPartition,
    TopicPartitionOffset,
    TransactionalProducer,
    partition_count,
)
from consumer.merchant import MerchantSettings
from consumer.outbox import EventOperation, Operation, encode_operation
from consumer.runtime.dead_letter import FailedRecord, failure_headers
from consumer.settings import Settings
from consumer.state.shipments import OrderState, encode_order_state

__all__ = ["Backfill", "BackfillRequest", "ProgressCallback", "as_history"]

ProgressCallback = Callable[[Progress, bool], None]
"""Told the progress after each chunk; the flag says whether it was committed (not dry run)."""

_POLL_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class BackfillRequest:
    """Whose history, which window, and how big a transaction may grow."""

    merchant: MerchantSettings
    since: datetime
    until: datetime | None = None
    chunk_records: int = 1000
    chunk_seconds: float = 2.0

    @property
    def run_id(self) -> str:
        """Names the run's checkpoint: the same request resumes (or finds it done)."""
        until = self.until.isoformat() if self.until else "open"
        return f"{self.merchant.merchant_id}|{self.since.isoformat()}|{until}"


def as_history(operation: Operation) -> Operation:
    """The operation flagged so Klaviyo fires no flow for it."""
    if isinstance(operation, EventOperation):
        return dataclasses.replace(operation, backfill=True)
    return dataclasses.replace(operation, historical_import=True)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Backfill:
    """One backfill run (blocking; run it in a thread from asyncio code)."""

    def __init__(
        self,
        settings: Settings,
        request: BackfillRequest,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._request = request
        self._clock = clock
        self._config = DeriveConfig.from_settings(settings.derive)
        topics = settings.topics
        catalog = SchemaCatalog()
        limit = settings.derive.max_record_bytes
        self._decoders = {
            topics.returns: RecordDecoder(catalog, "returns", limit),
            topics.orders: RecordDecoder(catalog, "orders", limit),
            topics.storefront_events: RecordDecoder(catalog, "storefront-events", limit),
        }
        registry = settings.schema_registry
        self._registry = SchemaRegistryClient(registry) if registry.url else None
        self._states: dict[str, OrderState] = {}
        self._changed: set[str] = set()
        self._outbox: list[Operation] = []
        self._dead: list[tuple[ConsumedMessage, FailedRecord]] = []

    # -- the run ---------------------------------------------------------------------------

    def run(self, report: ProgressCallback, *, dry_run: bool = False) -> Progress:
        """Run (or resume) to the end of the plan; a dry run writes nothing, reads from the
        start and only counts.

        Raises:
            KafkaError: the broker failed; run again to resume from the last transaction.
        """
        settings, request = self._settings, self._request
        kafka = settings.kafka
        merchant_id = request.merchant.merchant_id
        progress: Progress | None = None
        if not dry_run:
            ensure_checkpoint_topic(settings)
            progress, self._states = load_checkpoint(settings, request.run_id)
        if progress is not None and progress.done:
            report(progress, True)
            return progress
        consumer = KafkaConsumer(kafka, f"{kafka.group_id}-backfill-{merchant_id}")
        producer = None
        try:
            if progress is None:
                progress = self._plan(consumer)
            if not dry_run:
                # One id per merchant: a restarted run fences a stuck predecessor.
                producer = TransactionalProducer(kafka, f"{kafka.group_id}-backfill-{merchant_id}")
                producer.init_transactions()
            self._read(consumer, producer, progress, report)
        finally:
            consumer.close()
            if producer is not None:
                producer.close()
        return progress

    def _plan(self, consumer: KafkaConsumer) -> Progress:
        topics = self._settings.topics
        partitions = [
            TopicPartition(topic, p)
            for topic in (topics.returns, topics.orders, topics.storefront_events)
            for p in range(partition_count(self._settings.kafka, topic))
        ]
        ends = {tp: consumer.get_watermark_offsets(tp)[1] for tp in partitions}
        starts = self._offsets(consumer, partitions, self._request.since, ends)
        until = self._request.until
        if until is not None:
            ends = self._offsets(consumer, partitions, until, ends)
        return Progress.planned({tp: (starts[tp], max(starts[tp], ends[tp])) for tp in partitions})

    @staticmethod
    def _offsets(
        consumer: KafkaConsumer,
        partitions: list[TopicPartition],
        moment: datetime,
        ends: dict[TopicPartition, int],
    ) -> dict[TopicPartition, int]:
        found = consumer.offsets_for_times(partitions, _ms(moment))
        # Every record older than ``moment``: the range starts (or stops) at the end.
        return {
            o.topic_partition: ends[o.topic_partition] if o.offset == OFFSET_END else o.offset
            for o in found
        }

    def _read(
        self,
        consumer: KafkaConsumer,
        producer: TransactionalProducer | None,
        progress: Progress,
        report: ProgressCallback,
    ) -> None:
        pending = progress.pending()
        if not pending:  # nothing in the window
            progress.done = True
            self._commit(producer, progress)
            report(progress, producer is not None)
            return
        consumer.assign(
            [TopicPartitionOffset(tp.topic, tp.partition, progress.positions[tp]) for tp in pending]
        )
        since_commit, last_commit = 0, time.monotonic()
        while pending:
            for message in consumer.consume(1000, _POLL_SECONDS):
                tp = message.topic_partition
                if message.offset < progress.ranges[tp][1]:
                    self._process(message, progress)
                    since_commit += 1
            for position in consumer.position(pending):
                if position.offset >= 0:
                    progress.advance(position.topic_partition, position.offset)
            finished = [tp for tp in pending if tp not in progress.pending()]
            if finished:
                consumer.pause(finished)  # what follows is live traffic
            pending = progress.pending()
            request = self._request
            due = since_commit >= request.chunk_records
            due = due or time.monotonic() - last_commit >= request.chunk_seconds
            if due or not pending:
                if not pending:
                    self._sweep_timers(progress)
                progress.done = not pending
                self._commit(producer, progress)
                report(progress, producer is not None)
                since_commit, last_commit = 0, time.monotonic()

    # -- one record ------------------------------------------------------------------------

    def _process(self, message: ConsumedMessage, progress: Progress) -> None:
        decoder = self._decoders[message.topic]
        try:
            self._learn(decoder, message.value)
            record = decoder.decode(message.value)
        except DecodeError:
            progress.undecodable += 1  # the live derive stage dead-lettered it already
            return
        merchant = self._request.merchant
        if str(record.get("merchant_id") or "") != merchant.merchant_id:
            progress.other_merchants += 1
            return
        progress.kept += 1
        now = self._clock()
        topics = self._settings.topics
        if message.topic == topics.orders:
            order_id = str(record.get("order_id") or "")
            result = derive_order(record, merchant, self._states.get(order_id), now, self._config)
            if result.state is not None:
                self._states[order_id] = result.state
                self._changed.add(order_id)
        elif message.topic == topics.returns:
            result = derive_return(record, merchant, now, self._config)
        else:
            result = derive_storefront_event(record, merchant, now, self._config)
        self._collect(message, result, progress)

    def _sweep_timers(self, progress: Progress) -> None:
        merchant, now = self._request.merchant, self._clock()
        for order_id, state in sorted(self._states.items()):
            due = next_timer_at(state, merchant, self._config)
            if due is None or due > now:
                continue
            result = due_timers(order_id, state, merchant, now, self._config)
            if result.state is not None:
                self._states[order_id] = result.state
                self._changed.add(order_id)
            for op in result.operations:
                self._emit(op, progress)

    def _learn(self, decoder: RecordDecoder, payload: bytes | None) -> None:
        for schema_id in decoder.unknown_schema_ids([payload]):
            schema = asyncio.run(self._registry.fetch(schema_id)) if self._registry else None
            decoder.learn_schema(schema_id, schema)

    def _collect(self, message: ConsumedMessage, result: Derivation, progress: Progress) -> None:
        for op in result.operations:
            self._emit(op, progress)
        if result.dead_letter is not None:
            reason = result.dead_letter
            failure = FailedRecord(
                reason.code.value,
                "DerivationError",
                reason.message,
                self._request.merchant.merchant_id,
            )
            self._dead.append((message, failure))
            progress.dead_letters += 1

    def _emit(self, op: Operation, progress: Progress) -> None:
        self._outbox.append(as_history(op))
        if isinstance(op, EventOperation):
            progress.derived[f"event:{op.metric}"] += 1
        else:
            progress.derived[f"subscription:{op.channel.value}"] += 1

    def _commit(self, producer: TransactionalProducer | None, progress: Progress) -> None:
        """Write the chunk in one transaction (a dry run just forgets it)."""
        outbox, dead, changed = self._outbox, self._dead, self._changed
        self._outbox, self._dead, self._changed = [], [], set()
        if producer is None:
            return
        topics = self._settings.topics
        run_id = self._request.run_id
        producer.begin()
        try:
            for op in outbox:
                producer.produce(topics.outbox, op.merchant_id.encode(), encode_operation(op))
            for message, failure in dead:
                headers = failure_headers(message, "backfill", failure)
                producer.produce(topics.dead_letter, message.key, message.value, headers)
            for order_id in sorted(changed):
                value = encode_order_state(self._states[order_id])
                producer.produce(topics.backfill_checkpoints, order_key(run_id, order_id), value)
            producer.produce(topics.backfill_checkpoints, progress_key(run_id), progress.encode())
            producer.commit()
        except KafkaError:
            # The first error is the one to report; the broker aborts on timeout anyway.
            with contextlib.suppress(KafkaError):
                producer.abort()
            raise

    def describe(self) -> dict[str, Any]:
        """The request, for summaries."""
        request = self._request
        return {
            "merchant_id": request.merchant.merchant_id,
            "since": request.since.isoformat(),
            "until": request.until.isoformat() if request.until else None,
        }
