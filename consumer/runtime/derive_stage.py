"""Stage "derive": input topics → outbox, changelog and dead-letter, in Kafka transactions.

One asyncio task owns the consumer and the transactional producer. Each turn of the loop
consumes a batch (in a worker thread), learns unknown Confluent schema ids (async HTTP), then
processes the batch, fires due timers and commits the checkpoint when due (in a worker thread:
every Kafka call blocks). Rebalance callbacks run inside ``consume`` on that same thread, so
state is only ever touched by one thread at a time.

State restore happens in the loop, not in the assignment callback: a newly assigned orders
partition is paused while each turn reads the next batch of its changelog, and resumed once
its state is complete. Every other partition is processed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from consumer.decode import (
    DecodeError,
    RecordDecoder,
    SchemaCatalog,
    SchemaRegistryClient,
    SchemaRegistryUnavailable,
)
from consumer.derive import (
    Derivation,
    DeriveConfig,
    derive_order,
    derive_return,
    derive_storefront_event,
)
from consumer.kafka import (
    AbortableKafkaError,
    ConsumedMessage,
    TopicPartition,
    TransactionalProducer,
)
from consumer.merchant import MerchantSettings
from consumer.observability import Health, LagMonitor, Metrics
from consumer.outbox import EventOperation, Operation, encode_operation
from consumer.runtime.checkpoint import Checkpoint
from consumer.runtime.clients import KafkaClients
from consumer.runtime.dead_letter import FailedRecord, failure_record, record_budget, record_size
from consumer.runtime.local_state import LocalState
from consumer.runtime.record_errors import OutputTooLarge, RecordErrors
from consumer.runtime.restore import ChangelogRestore
from consumer.runtime.timers import TimerFailure, TimerIndex
from consumer.settings import Settings
from consumer.state.shipments import OrderState, decode_order_state, encode_order_state
from consumer.state.store import StateStore

__all__ = ["DeriveStage", "MerchantLookup"]

log = logging.getLogger(__name__)

MerchantLookup = Callable[[str], MerchantSettings | None]
_BATCH = 500
_POLL_SECONDS = 0.2
_TIMER_SWEEP_SECONDS = 1.0
_RESTORE_BATCH = 10_000
_RESTORE_WAIT_SECONDS = 0.05
_SCAN_BUDGET = 2_000  # state keys examined per turn by a retention or indexing scan


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One input record decoded, derived and encoded, not yet written."""

    merchant_id: str
    result: Derivation
    outbox: list[tuple[Operation, bytes]]
    order_id: str | None
    state: bytes | None  # the new order state, encoded (checked to fit, then written as is)


class DeriveStage:
    """Consume-transform-produce with exactly-once semantics for one process."""

    def __init__(
        self,
        settings: Settings,
        merchants: MerchantLookup,
        metrics: Metrics,
        health: Health,
        instance_id: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        clients: KafkaClients,
    ) -> None:
        self._settings = settings
        self._clients = clients
        self._topics = settings.topics
        self._merchants = merchants
        self._metrics = metrics
        self._health = health
        health.set_ready("derive", False)  # until partitions are assigned (and restored)
        self._clock = clock
        self._config = DeriveConfig.from_settings(settings.derive)
        catalog = SchemaCatalog()
        max_bytes = settings.derive.max_record_bytes
        self._decoders = {
            settings.topics.returns: RecordDecoder(catalog, "returns", max_bytes),
            settings.topics.orders: RecordDecoder(catalog, "orders", max_bytes),
            settings.topics.storefront_events: RecordDecoder(
                catalog, "storefront-events", max_bytes
            ),
        }
        self._registry = (
            SchemaRegistryClient(settings.schema_registry) if settings.schema_registry.url else None
        )
        group = f"{settings.kafka.group_id}-derive"
        self._lag = LagMonitor(metrics, group)
        self._consumer = clients.consumer(
            group, group_instance_id=f"{instance_id}-derive", on_stats=self._lag.on_stats
        )
        self._instance = instance_id
        self._producer = self._new_producer()
        self._store: StateStore[OrderState] = StateStore(decode_order_state, encode_order_state)
        self._timers = TimerIndex(
            self._store, self._config, merchants, settings.derive.retention_sweep_seconds
        )
        directory = settings.derive.local_state_dir
        local = (
            None
            if directory is None
            else LocalState(directory, settings.kafka, self._topics.tracking_state, metrics)
        )
        self._restore = ChangelogRestore(
            settings.kafka, self._topics.tracking_state, self._store, f"{group}-restore", local
        )
        self._restore_started = 0.0
        self._checkpoint = Checkpoint(
            self._producer,
            self._consumer,
            self._store,
            self._topics.tracking_state,
            metrics,
            on_committed=self._lag.committed,
        )
        self._last_sweep = 0.0
        self._abandoned = False
        self._budget = record_budget(settings.kafka.max_message_bytes)
        self._errors = RecordErrors(
            "derive",
            "derive",
            (DecodeError, OutputTooLarge),
            settings.derive.error_breaker_percent,
            settings.derive.error_breaker_window,
            metrics,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set, then commit and leave the group.

        Raises:
            KafkaError: a fatal error; the process should exit non-zero and be restarted.
        """
        await asyncio.to_thread(self._producer.init_transactions)
        self._consumer.subscribe(
            [self._topics.returns, self._topics.orders, self._topics.storefront_events],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        clean = False
        try:
            while not stop.is_set():
                messages = await asyncio.to_thread(
                    self._consumer.consume, _BATCH, self._poll_seconds()
                )
                self._lag.read(messages)
                await self._learn_schemas(messages)
                await asyncio.to_thread(self._turn, messages)
                self._health.beat("derive")
                self._metrics.consume_loop_last_turn.labels("derive").set_to_current_time()
            clean = True
        finally:
            await asyncio.to_thread(self._close, clean)

    def _poll_seconds(self) -> float:
        """How long a turn may wait for input: not at all while restoring or scanning, and
        never past the open transaction's checkpoint (its records become visible then)."""
        if self._restore.restoring or self._timers.scanning:
            return 0.0
        interval = self._settings.derive.checkpoint_interval_seconds
        return max(0.0, min(_POLL_SECONDS, self._checkpoint.seconds_until_due(interval)))

    def _new_producer(self) -> TransactionalProducer:
        group = f"{self._settings.kafka.group_id}-derive"
        return self._clients.transactional_producer(f"{group}-{self._instance}")

    def _close(self, clean: bool) -> None:
        # After a failure nothing is committed: the next start resumes from the last commit
        # (init_transactions with the same transactional id aborts what was left open).
        self._abandoned = not clean
        self._restore.close()
        if clean:
            try:
                self._checkpoint.commit()
            except AbortableKafkaError:
                self._checkpoint.abort()
            # Committed (or rewound to the last commit): the state is the changelog's as of now.
            self._restore.save_snapshots(self._consumer)
        try:
            self._consumer.close()  # leaves the group; on_revoke has nothing left to commit
        finally:
            self._producer.close()

    # -- one turn ----------------------------------------------------------------------------

    def _turn(self, messages: list[ConsumedMessage]) -> None:
        self._restore_step()
        try:
            if messages:
                self._checkpoint.begin()
                for message in messages:
                    self._process(message)
            self._sweep_timers()
            self._scan_state()
            derive = self._settings.derive
            if self._checkpoint.due(
                derive.checkpoint_interval_seconds, derive.checkpoint_max_records
            ):
                self._checkpoint.commit()
        except AbortableKafkaError as exc:
            log.warning("transaction failed, aborting", extra={"error": str(exc)})
            self._checkpoint.abort()
            self._timers.rebuild()
        self._report_state()

    async def _learn_schemas(self, messages: list[ConsumedMessage]) -> None:
        for topic, decoder in self._decoders.items():
            unknown = decoder.unknown_schema_ids(m.value for m in messages if m.topic == topic)
            for schema_id in unknown:
                schema = await self._fetch_schema(schema_id)
                decoder.learn_schema(schema_id, schema)

    async def _fetch_schema(self, schema_id: int) -> Any | None:
        if self._registry is None:
            return None  # no registry configured: the id is unknown, records dead-letter
        delay = 1.0
        while True:
            try:
                return await self._registry.fetch(schema_id)
            except SchemaRegistryUnavailable as exc:
                # Holding the batch (uncommitted) is right: these records are fine, the
                # registry is not; dead-lettering them would lose good data.
                log.warning(
                    "schema registry unavailable", extra={"error": str(exc), "retry_s": delay}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _process(self, message: ConsumedMessage) -> None:
        try:
            prepared = self._prepare(message)
        except Exception as exc:  # noqa: BLE001 -- the record boundary (record_errors)
            self._dead_letter(message, self._errors.failure(exc, message))
        else:
            self._errors.passed()
            if prepared.order_id is not None and prepared.result.state is not None:
                store = self._store.partition(message.partition)
                store.put(prepared.order_id, prepared.result.state, prepared.state)
                self._timers.schedule(message.partition, prepared.order_id, prepared.result.state)
            self._apply(message, prepared.merchant_id, prepared.result, prepared.outbox)
        self._checkpoint.processed(message)

    def _prepare(self, message: ConsumedMessage) -> _Prepared:
        """Decode, derive and encode one record, writing nothing (it may still fail whole)."""
        record = self._decoders[message.topic].decode(message.value)
        result = self.derive_record(message, record)
        merchant_id = str(record.get("merchant_id") or "")
        outbox = [self._encoded(op) for op in result.operations]
        order_id = state = None
        if message.topic == self._topics.orders:
            order_id = str(record.get("order_id") or "")
            if result.state is not None:
                state = encode_order_state(result.state)
                self._fits("tracking state", order_id.encode(), state)
        return _Prepared(merchant_id, result, outbox, order_id, state)

    def derive_record(self, message: ConsumedMessage, record: dict[str, Any]) -> Derivation:
        """The one call into derivation for an input record (tests override it to inject
        faults); reads the order's tracking state but stores nothing."""
        merchant = self._merchants(str(record.get("merchant_id") or ""))
        now = self._clock()
        if message.topic == self._topics.orders:
            store = self._store.partition(message.partition)
            state = store.get(str(record.get("order_id") or ""))
            return derive_order(record, merchant, state, now, self._config)
        if message.topic == self._topics.returns:
            return derive_return(record, merchant, now, self._config)
        return derive_storefront_event(record, merchant, now, self._config)

    def _encoded(self, op: Operation) -> tuple[Operation, bytes]:
        value = encode_operation(op)
        self._fits("outbox operation", op.merchant_id.encode(), value)
        return op, value

    def _fits(self, what: str, key: bytes, value: bytes) -> None:
        size = record_size(key, value)
        if size > self._budget:
            raise OutputTooLarge(
                f"its {what} needs {size} bytes; kafka.max_message_bytes leaves {self._budget}"
            )

    def _apply(
        self,
        source: ConsumedMessage | None,
        merchant_id: str,
        result: Derivation,
        outbox: list[tuple[Operation, bytes]],
    ) -> None:
        outcomes = self._checkpoint.outcomes
        for skip in result.skips:
            outcomes[("skipped", skip.reason.value)] += 1
        if result.dead_letter is not None and source is not None:
            reason = result.dead_letter
            failure = FailedRecord(
                reason.code.value, "DerivationError", reason.message, merchant_id
            )
            self._dead_letter(source, failure)
        for op, value in outbox:
            self._producer.produce(self._topics.outbox, op.merchant_id.encode(), value)
            if isinstance(op, EventOperation):
                outcomes[("derived", "event", op.metric)] += 1
            else:
                outcomes[("derived", "subscription", op.channel.value)] += 1

    def _dead_letter(self, source: ConsumedMessage, failure: FailedRecord) -> None:
        record = failure_record(source, "derive", failure, self._budget)
        self._producer.produce(self._topics.dead_letter, record.key, record.value, record.headers)
        self._checkpoint.outcomes[("dead_letter", failure.reason)] += 1

    def _sweep_timers(self) -> None:
        monotonic = time.monotonic()
        if monotonic - self._last_sweep < _TIMER_SWEEP_SECONDS:
            return
        self._last_sweep = monotonic
        fired, failures = self._timers.fire(self._clock())
        if fired or failures:
            self._checkpoint.begin()
        self._timer_failed(failures)
        for merchant_id, result in fired:
            self._errors.passed()
            # Timer operations come from stored state, which was checked when it was stored.
            outbox = [(op, encode_operation(op)) for op in result.operations]
            self._apply(None, merchant_id, result, outbox)

    def _scan_state(self) -> None:
        removed, failures = self._timers.scan(self._clock(), _SCAN_BUDGET)
        if removed or failures:
            self._checkpoint.begin()  # the deletions are written to the changelog as tombstones
        self._timer_failed(failures)
        if removed:
            log.info("expired tracking state removed", extra={"orders": removed})

    def _timer_failed(self, failures: list[TimerFailure]) -> None:
        """Dead-letter the orders a sweep or scan failed on, as the record errors they are.

        There is no input record: the dead letter names the order's state instead (changelog
        topic and partition, key = order id, value = the stored state, no offset).
        """
        for failure in failures:
            source = ConsumedMessage(
                self._topics.tracking_state,
                failure.partition,
                -1,
                failure.order_id.encode(),
                failure.state,
                (),
                -1,
            )
            failed = self._errors.failure(failure.error, source)
            self._dead_letter(source, replace(failed, merchant_id=failure.merchant_id))

    def _restore_step(self) -> None:
        finished = self._restore.step(_RESTORE_BATCH, _RESTORE_WAIT_SECONDS)
        if not finished:
            return
        orders = self._topics.orders
        self._consumer.resume([TopicPartition(orders, p) for p in finished])
        self._timers.reindex(list(finished))
        seconds = time.monotonic() - self._restore_started
        if not self._restore.restoring:
            self._health.set_ready("derive", True)
            self._metrics.state_restore_duration.observe(seconds)
        for partition, records in finished.items():
            self._metrics.state_restored_entries.inc(records)
            log.info(
                "partition restored",
                extra={
                    "partition": partition,
                    "changelog_records": records,
                    "orders": len(self._store.partition(partition)),
                    "seconds": round(seconds, 3),
                },
            )

    def _report_state(self) -> None:
        for partition in self._store.owned():
            store = self._store.partition(partition)
            self._metrics.state_entries.labels(str(partition)).set(len(store))
            self._metrics.state_bytes.labels(str(partition)).set(store.committed_bytes)
        self._metrics.state_restoring.set(len(self._restore.restoring))

    def _forget_state(self, partitions: list[int]) -> None:
        self._store.drop(partitions)
        self._timers.drop(partitions)
        for partition in partitions:
            for gauge in (self._metrics.state_entries, self._metrics.state_bytes):
                gauge.remove(str(partition))  # a label never set is ignored

    # -- rebalancing (called inside consume, on the worker thread) ---------------------------

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        orders = {tp.partition for tp in partitions if tp.topic == self._topics.orders}
        # State of partitions kept across this rebalance is current (we committed on revoke
        # and nobody else owned them in between); only new partitions are read back, in the
        # stage loop, while their input waits paused.
        kept = set(self._store.owned())
        self._forget_state(sorted(kept - orders))
        restore = sorted(orders - kept)
        self._restore.restart(restore)
        self._restore_started = time.monotonic()
        # Assigned here rather than by the client after this callback, so that the pause
        # applies to the assignment.
        self._consumer.assign(partitions)
        self._consumer.pause([TopicPartition(self._topics.orders, p) for p in restore])
        self._metrics.partitions_assigned.labels("derive").set(len(partitions))
        self._metrics.rebalances.labels("derive", "assign").inc()
        # Ready once every partition's state is complete (the others are processed meanwhile).
        self._health.set_ready("derive", not restore)
        log.info(
            "partitions assigned",
            extra={"partitions": len(partitions), "restoring": len(restore)},
        )

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        # Commit what was processed so the next owner starts exactly where we stopped
        # (unless the stage failed: then its open transaction is left to be aborted).
        if not self._abandoned:
            try:
                self._checkpoint.commit()
            except AbortableKafkaError:
                self._checkpoint.abort()
        self._checkpoint.forget(partitions)
        self._restore.close()  # half-restored partitions start again if assigned again
        self._metrics.partitions_assigned.labels("derive").set(0)
        self._metrics.rebalances.labels("derive", "revoke").inc()
        log.info("partitions revoked", extra={"partitions": len(partitions)})

    def _on_lost(self, partitions: list[TopicPartition]) -> None:
        # Another member may own these already: committing would be wrong, and our state of
        # them may be stale by now, so drop it all (a failed stage drops everything anyway).
        if not self._abandoned:
            self._checkpoint.abort()
        self._checkpoint.forget(partitions)
        self._restore.close()
        self._forget_state([tp.partition for tp in partitions if tp.topic == self._topics.orders])
        self._metrics.partitions_assigned.labels("derive").set(0)
        self._metrics.rebalances.labels("derive", "lost").inc()
        log.warning("partitions lost", extra={"partitions": len(partitions)})
