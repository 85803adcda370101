"""Read partitions from the beginning to their current end (state restore, replays)."""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Sequence
from typing import Any

from consumer.kafka import (
    CatchUp,
    ConsumedMessage,
    KafkaConsumer,
    RetriableKafkaError,
    TopicPartition,
)
from consumer.runtime.local_state import ChangelogFacts, LocalState
from consumer.settings import KafkaSettings
from consumer.state.store import PartitionStore, StateStore

__all__ = ["ChangelogRestore", "read_partitions_to_end"]


def _heap_trimmer() -> Any:
    """glibc's ``malloc_trim``, or None where the C library has none (e.g. musl)."""
    name = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None


# A restore frees a lot (the consumer's fetch buffers, every record's message object) in a
# worker thread, and glibc keeps those pages in its per-thread arenas: measured, RSS stays at
# 2.2 x the restored state's size until it is trimmed.
_MALLOC_TRIM = _heap_trimmer()


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


class ChangelogRestore:
    """Restores state partitions from their changelog a batch at a time, in the stage loop.

    ``restart`` (from the rebalance callbacks) only notes which partitions to restore; ``step``
    (once per turn) reads the next batch into stores of their own and, once a partition has
    reached the end its changelog had when the restore began, installs its store in the
    ``StateStore`` and reports it. Until then the partition is not owned by the ``StateStore``:
    nothing can read or write its half-restored state. Values are stored as the changelog
    holds them (``StateStore`` decodes on access), so a step costs little more than the
    consume. With a ``LocalState``, a step first loads one partition's valid snapshot (a file
    a step) and its changelog is then read from the snapshot's offset only. Not thread-safe:
    one caller.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        store: StateStore[Any],
        group_id: str,
        local: LocalState | None = None,
    ) -> None:
        self._settings = settings
        self._topic = topic
        self._store = store
        self._group_id = group_id
        self._local = local
        self._consumer: KafkaConsumer | None = None
        self._catch_up: CatchUp | None = None
        self._facts: ChangelogFacts | None = None
        self._pending: dict[int, PartitionStore[Any]] = {}
        self._unjudged: list[int] = []  # partitions whose snapshot is still to be looked at
        self._starts: dict[TopicPartition, int] = {}
        self._records: dict[int, int] = {}

    @property
    def restoring(self) -> list[int]:
        """Partitions whose restore is not finished."""
        return sorted(self._pending)

    def restart(self, partitions: Sequence[int]) -> None:
        """Restore exactly ``partitions`` (their stores start empty, or from a snapshot)."""
        self.close()
        self._pending = {p: self._store.empty() for p in partitions}
        self._records = dict.fromkeys(partitions, 0)
        local = self._local
        self._unjudged = [p for p in partitions if local is not None and local.has(p)]

    def step(self, max_records: int, timeout: float) -> dict[int, int]:
        """Read up to ``max_records`` (or load one snapshot); returns finished partitions →
        changelog records read.

        Raises:
            KafkaError: reading the changelog failed (the stage is rebuilt and restores again).
        """
        if not self._pending:
            return {}
        if self._consumer is None:
            # Created here, not in ``restart``: the assignment callback stays short.
            self._consumer = KafkaConsumer(self._settings, self._group_id)
        consumer = self._consumer
        if self._unjudged:
            self._load_snapshot(consumer, self._unjudged.pop(0))
            return {}
        if self._catch_up is None:
            tps = [TopicPartition(self._topic, p) for p in sorted(self._pending)]
            self._catch_up = CatchUp.start(consumer, tps, starts=self._starts)
        catch_up = self._catch_up
        for partition, key, value in consumer.consume_entries(max_records, timeout):
            store = self._pending.get(partition)
            if key is not None and store is not None:
                store.restore(key, value)
                self._records[partition] += 1
        catch_up.advance()
        finished = sorted(self._pending.keys() - {tp.partition for tp in catch_up.pending})
        if finished:
            consumer.pause([TopicPartition(self._topic, p) for p in finished])
            for partition in finished:
                self._store.install(partition, self._pending.pop(partition))
            if not self._pending:
                self.close()
                if _MALLOC_TRIM is not None:
                    _MALLOC_TRIM(0)
        return {p: self._records.pop(p) for p in finished}

    def _load_snapshot(self, consumer: KafkaConsumer, partition: int) -> None:
        if self._local is None:
            return
        if self._facts is None:
            self._facts = ChangelogFacts.read(self._settings, self._topic)
        tp = TopicPartition(self._topic, partition)
        loaded = self._local.load(partition, consumer.get_watermark_offsets(tp), self._facts)
        if loaded is not None:
            arena, offset = loaded
            self._pending[partition].load(arena)
            self._starts[tp] = offset

    def save_snapshots(self, consumer: KafkaConsumer) -> None:
        """Write a snapshot of every installed partition (after the stage's last commit);
        ``consumer`` (the stage's own, still open) tells the changelog's end offsets."""
        if self._local is not None:
            self._local.save(self._store, consumer)

    def close(self) -> None:
        """Stop reading (restores in progress are abandoned) and release the consumer."""
        if self._consumer is not None:
            self._consumer.close()
        self._consumer = None
        self._catch_up = None
        self._facts = None
        self._pending = {}
        self._unjudged = []
        self._starts = {}
