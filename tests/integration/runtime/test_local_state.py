"""The local state store: a clean stop writes snapshots, a restart reads only the changelog's tail.

State records are produced straight to the changelog (what a derive stage would have written),
so each test costs seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumer.kafka import KafkaConsumer, TopicPartition
from consumer.observability import Metrics
from consumer.outbox import decode_operation
from consumer.runtime.topics import ensure_service_topics
from consumer.state import encode_order_state
from consumer.state.arena import Arena
from consumer.state.snapshot import SnapshotReader, snapshot_path, write_snapshot
from tests.helpers.kafka import Record, drain, produce_records
from tests.integration.runtime.conftest import ServiceProcess, Stack, inputs_caught_up
from tests.integration.runtime.test_state_lifecycle import (
    T0,
    derive_stage,
    order_record,
    order_state,
    state_entries,
    wait_until,
    write_changelog,
)

ORDERS = 3_000  # spread over the 3 partitions


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(f"klaviyo_consumer_{name}", labels) or 0.0


def restored(metrics: Metrics) -> bool:
    return sample(metrics, "state_restoring_partitions") == 0 and state_entries(metrics) > 0


def snapshot_file(stack: Stack, directory: Path, partition: int) -> Path:
    return snapshot_path(directory, stack.settings.topics.tracking_state, partition)


def changelog_state(stack: Stack) -> dict[int, dict[bytes, bytes]]:
    """Partition → key → value: what the committed changelog folds to."""
    state: dict[int, dict[bytes, bytes]] = {p: {} for p in range(3)}
    for message in drain(stack.settings.kafka, stack.settings.topics.tracking_state):
        key = message.key or b""
        if message.value is None:
            state[message.partition].pop(key, None)
        else:
            state[message.partition][key] = message.value
    return state


def snapshot_state(stack: Stack, directory: Path) -> dict[int, dict[bytes, bytes]]:
    """Partition → key → value as the snapshot files hold them (only keys the changelog has
    are compared, plus the counts)."""
    expected = changelog_state(stack)
    found: dict[int, dict[bytes, bytes]] = {}
    for partition, entries in expected.items():
        arena: Arena = SnapshotReader(snapshot_file(stack, directory, partition)).load()
        assert len(arena) == len(entries), f"partition {partition}"
        found[partition] = {key: arena.get(key) or b"" for key in entries}
    return found


async def seed(stack: Stack, touched: datetime = T0) -> None:
    await asyncio.to_thread(ensure_service_topics, stack.settings)
    states = ((n % 3, order_state(f"ord-{n}", "pre_transit", touched)) for n in range(ORDERS))
    await asyncio.to_thread(write_changelog, stack, states)


def changelog_ends(stack: Stack) -> dict[int, int]:
    topic = stack.settings.topics.tracking_state
    with KafkaConsumer(stack.settings.kafka, "watermarks") as consumer:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in range(3)}


async def test_a_restart_loads_the_snapshot_and_reads_only_the_changelog_tail(
    stack: Stack, tmp_path: Path
) -> None:
    await seed(stack)
    # In the snapshot: an order in transit, its stall timer due 71 h after T0.
    stuck = iter([(0, order_state("stuck-1", "in_transit", T0))])
    await asyncio.to_thread(write_changelog, stack, stuck)
    directory = tmp_path / "state"
    async with derive_stage(stack, lambda: T0, local_state_dir=str(directory)) as metrics:
        await wait_until(lambda: restored(metrics), 60, "restore")
        assert sample(metrics, "state_restored_entries_total") == ORDERS + 1
    assert sample(metrics, "state_snapshots_total", event="written") == 3
    assert snapshot_state(stack, directory) == changelog_state(stack)

    # Written after the snapshots (as another owner of the partitions would have): the tail.
    tail = [
        Record(b"ord-0", None, partition=0),  # a tombstone: the order must stay deleted
        Record(b"new-1", order_state_bytes("new-1"), partition=1),
        Record(b"ord-2", order_state_bytes("ord-2"), partition=2),
    ]
    await asyncio.to_thread(
        produce_records, stack.settings.kafka, stack.settings.topics.tracking_state, tail
    )
    at = T0 + timedelta(hours=1)
    news = [Record(b"ord-4", order_record("ord-4", "IN_TRANSIT", at), partition=1)]
    await asyncio.to_thread(
        produce_records, stack.settings.kafka, stack.settings.topics.orders, news
    )

    def outbox_ids() -> set[str]:
        outbox = drain(stack.settings.kafka, stack.settings.topics.outbox)
        return {decode_operation(m.value or b"").unique_id for m in outbox}

    def stalled() -> set[str]:
        return {uid.split(":")[1] for uid in outbox_ids() if "stalled_in_transit" in uid}

    # 72 h on: the stall timers of the in-transit orders (from the snapshot and the tail) are due.
    later = T0 + timedelta(hours=72)
    async with derive_stage(
        stack, lambda: later, local_state_dir=str(directory), checkpoint_interval_seconds=0.05
    ) as metrics:
        await wait_until(lambda: restored(metrics), 60, "restore from snapshots")
        assert sample(metrics, "state_snapshots_total", event="loaded") == 3
        assert sample(metrics, "state_restored_entries_total") == len(tail)
        assert state_entries(metrics) == ORDERS + 1  # one deleted, one new
        wanted = {"stuck-1-s1", "new-1-s1", "ord-2-s1"}
        await wait_until(lambda: stalled() == wanted, 30, "the timers, indexed after the load")
        await wait_until(lambda: inputs_caught_up(stack.settings), 30, "the news")
    # ord-4 was derived against its restored state: news of its shipment, no order_created.
    assert {uid for uid in outbox_ids() if "ord-4" in uid} == {
        "tracking:ord-4-s1:in_transit:2026-03-01T01:00:00Z",
        "tracking-item:ord-4-s1:li_0:in_transit:2026-03-01T01:00:00Z",
    }
    # The stop wrote the state again: equal to what the changelog folds to, ord-4 included.
    state = snapshot_state(stack, directory)
    assert state == changelog_state(stack)
    assert b"ord-0" not in state[0] and b"new-1" in state[1]


def order_state_bytes(order_id: str) -> bytes:
    return encode_order_state(order_state(order_id, "in_transit", T0))


async def test_a_corrupt_snapshot_or_one_past_the_changelog_end_is_ignored(
    stack: Stack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(stack)
    directory = tmp_path / "state"
    async with derive_stage(stack, lambda: T0, local_state_dir=str(directory)) as metrics:
        await wait_until(lambda: restored(metrics), 60, "restore")
    corrupt = snapshot_file(stack, directory, 0)
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    ahead = snapshot_file(stack, directory, 1)
    reader = SnapshotReader(ahead)
    header, arena = reader.header, reader.load()
    arena.put(b"ghost", b"never on the changelog")
    write_snapshot(ahead, header.topic, header.topic_id, 1, header.offset + 500, arena.dump())

    caplog.set_level(logging.WARNING, "consumer.runtime.local_state")
    async with derive_stage(stack, lambda: T0, local_state_dir=str(directory)) as metrics:
        await wait_until(lambda: restored(metrics), 60, "restore")
        assert sample(metrics, "state_snapshots_total", event="rejected") == 2
        assert sample(metrics, "state_snapshots_total", event="loaded") == 1
        # Partitions 0 and 1 were read from the beginning; 2 from its snapshot (no tail).
        assert sample(metrics, "state_restored_entries_total") == 2 * ORDERS / 3
        assert state_entries(metrics) == ORDERS
    reasons = Counter(
        (r.__dict__["partition"], r.__dict__["reason"].split(" ")[0])
        for r in caplog.records
        if r.getMessage().startswith("state snapshot ignored")
    )
    assert reasons == {(0, "checksum"): 1, (1, "offset"): 1}
    assert snapshot_state(stack, directory) == changelog_state(stack)  # no ghost


async def test_after_kill_9_of_a_snapshot_started_stage_the_next_start_is_right(
    stack: Stack, tmp_path: Path
) -> None:
    # Touched now: the child runs on the real clock, and must not expire them all.
    await seed(stack, touched=datetime.now(UTC))
    directory = tmp_path / "state"
    async with derive_stage(stack, lambda: T0, local_state_dir=str(directory)) as metrics:
        await wait_until(lambda: restored(metrics), 60, "restore")
    starts = {}
    for partition in range(3):
        with SnapshotReader(snapshot_file(stack, directory, partition)) as reader:
            starts[partition] = reader.header.offset

    at = T0 + timedelta(hours=1)

    def news(status: str, numbers: range) -> list[Record]:
        return [
            Record(f"ord-{n}".encode(), order_record(f"ord-{n}", status, at), partition=n % 3)
            for n in numbers
        ]

    orders = stack.settings.topics.orders
    await asyncio.to_thread(
        produce_records, stack.settings.kafka, orders, news("IN_TRANSIT", range(30))
    )
    stack.overrides["derive"] = {**stack.overrides["derive"], "local_state_dir": str(directory)}
    child = ServiceProcess(stack, "a", stage="derive")
    child.start()
    try:
        await wait_until(lambda: inputs_caught_up(stack.settings), 60, "the child's progress")
        later = news("DELIVERED", range(30, 60))
        await asyncio.to_thread(produce_records, stack.settings.kafka, orders, later)
    finally:
        child.kill()  # maybe mid-transaction: its open writes must never count
    assert "state snapshot loaded" in child.log.read_text(), child.tail()
    ends = await asyncio.to_thread(changelog_ends, stack)

    async with derive_stage(stack, lambda: at, local_state_dir=str(directory)) as metrics:
        await wait_until(lambda: restored(metrics), 60, "restore after kill -9")
        # The snapshots stay valid after an unclean stop: only their tail is replayed.
        assert sample(metrics, "state_snapshots_total", event="loaded") == 3
        replayed = sample(metrics, "state_restored_entries_total")
        await wait_until(lambda: inputs_caught_up(stack.settings), 30, "the rest")
    committed = await asyncio.to_thread(
        drain, stack.settings.kafka, stack.settings.topics.tracking_state
    )
    # What the child committed after the snapshots (its aborted writes are not delivered).
    tail = sum(1 for m in committed if starts[m.partition] <= m.offset < ends[m.partition])
    assert tail >= 30 and replayed == tail
    assert snapshot_state(stack, directory) == changelog_state(stack)
