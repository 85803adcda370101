"""Tracking state at scale: retention tombstones it, restores run without stalling the stage.

State records are produced straight to the changelog in bulk (what the derive stage would have
written for orders in those states), so the tests cost seconds, not a derivation each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consumer.decode import SchemaCatalog, encode_single_object
from consumer.observability import Health, Metrics
from consumer.outbox import decode_operation
from consumer.outbox.operations import Profile
from consumer.runtime.clients import BrokerClients
from consumer.runtime.derive_stage import DeriveStage
from consumer.runtime.topics import ensure_service_topics
from consumer.settings import Settings
from consumer.state import OrderState, ShipmentState, TrackedItem, encode_order_state
from tests.helpers.kafka import Record, drain, produce_records
from tests.integration.runtime.conftest import Stack

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MERCHANT = "merchant-1"  # integrated, order tracking on


def order_state(order_id: str, status: str, touched: datetime) -> OrderState:
    """An order with one shipment whose carrier last said ``status``; last changed ``touched``."""
    return OrderState(
        order_id=order_id,
        merchant_id=MERCHANT,
        order_name=f"#{order_id}",
        profile=Profile(email=f"{order_id}@example.com"),
        created_at=T0 - timedelta(days=3),
        updated_at=T0 - timedelta(hours=1),
        order_created_sent=True,
        shipments=(
            ShipmentState(
                shipment_id=f"{order_id}-s1",
                tracking_number=f"1Z{order_id}",
                items=(TrackedItem("li_0", "Slim Jeans", 1, "JEANS-32", "32"),),
                last_trigger=status,
                last_status=status,
                last_event_at=T0 - timedelta(hours=1),
                last_scan_at=T0 - timedelta(hours=1),
            ),
        ),
        touched_at=touched,
    )


def write_changelog(stack: Stack, states: Iterator[tuple[int, OrderState]]) -> None:
    records = (
        Record(state.order_id.encode(), encode_order_state(state), partition=partition)
        for partition, state in states
    )
    produce_records(stack.settings.kafka, stack.settings.topics.tracking_state, records)


class Events(logging.Handler):
    """What the derive stage logs, in order: (message, partition, records)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[tuple[str, Any, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = record.__dict__
        self.seen.append((record.getMessage(), fields.get("partition"), fields.get("records")))

    def restored(self, partition: int) -> bool:
        return ("partition restored", partition, None) in self.seen


@pytest.fixture
def events() -> Iterator[Events]:
    handler = Events()
    logger = logging.getLogger("consumer.runtime")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


@asynccontextmanager
async def derive_stage(
    stack: Stack, clock: Callable[[], datetime], **derive: Any
) -> AsyncIterator[Metrics]:
    """The derive stage alone, on ``clock``; stopped cleanly (commit, leave) on exit."""
    overrides = {**stack.overrides, "derive": {**stack.overrides["derive"], **derive}}
    settings = Settings(**overrides)
    metrics = Metrics()
    clients = BrokerClients(settings.kafka)
    stage = DeriveStage(
        settings, stack.integrated.get, metrics, Health(), "a", clock, clients=clients
    )
    stop = asyncio.Event()
    task = asyncio.create_task(stage.run(stop))
    try:
        yield metrics
    finally:
        stop.set()
        async with asyncio.timeout(40):
            await task


def state_entries(metrics: Metrics) -> float:
    samples = metrics.registry.get_sample_value
    return sum(
        samples("klaviyo_consumer_state_entries", {"partition": str(p)}) or 0.0 for p in range(3)
    )


async def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    try:
        async with asyncio.timeout(seconds):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.05)  # polling a condition with a deadline
    except TimeoutError:
        raise AssertionError(f"timed out after {seconds} s waiting for {what}") from None


async def test_finished_orders_expire_to_tombstones_and_a_restart_restores_only_live_ones(
    stack: Stack,
) -> None:
    await asyncio.to_thread(ensure_service_topics, stack.settings)
    finished = [order_state(f"done-{n}", "delivered", T0) for n in range(50_000)]
    live = [order_state(f"live-{n}", "pre_transit", T0) for n in range(30)]
    await asyncio.to_thread(
        write_changelog, stack, ((n % 3, s) for n, s in enumerate(finished + live))
    )
    now = [T0]
    async with derive_stage(stack, lambda: now[0], retention_sweep_seconds=0.2) as metrics:
        await wait_until(lambda: state_entries(metrics) == 50_030, 60, "restore")
        now[0] = T0 + timedelta(days=30, seconds=1)  # the finished ones' retention is over
        await wait_until(lambda: state_entries(metrics) == 30, 60, "expiry")

    changelog = await asyncio.to_thread(
        drain, stack.settings.kafka, stack.settings.topics.tracking_state
    )
    tombstones = {m.key for m in changelog if m.value is None}
    assert tombstones == {s.order_id.encode() for s in finished}

    # At the original time nothing expires by itself: only the tombstones keep them away.
    async with derive_stage(stack, lambda: T0) as metrics:
        await wait_until(lambda: metrics.registry.get_sample_value(
            "klaviyo_consumer_state_restoring_partitions") == 0 and state_entries(metrics) > 0,
            60, "restore after restart")  # fmt: skip
        assert state_entries(metrics) == 30


def order_record(order_id: str, status: str, at: datetime) -> bytes:
    """An orders payload: the order of ``order_state`` with its shipment's carrier at ``status``."""
    value = {
        "order_id": order_id,
        "order_name": f"#{order_id}",
        "merchant_id": MERCHANT,
        "customer": {"email": f"{order_id}@example.com"},
        "created_at": T0 - timedelta(days=3),
        "updated_at": at,
        "cancelled_at": None,
        "line_items": [
            {"line_item_id": "li_0", "sku": "JEANS-32", "product_name": "Slim Jeans",
             "variant_name": "32", "quantity": 1},
        ],
        "shipments": [
            {"shipment_id": f"{order_id}-s1", "carrier": "ups", "tracking_number": f"1Z{order_id}",
             "carrier_status": status, "status_detail": None, "carrier_event_at": at,
             "first_estimated_delivery_at": None, "estimated_delivery_at": None,
             "shipped_at": None, "delivered_at": None,
             "items": [{"line_item_id": "li_0", "quantity": 1}]},
        ],
    }  # fmt: skip
    return encode_single_object(SchemaCatalog().latest("orders").schema, value)


async def test_slow_restore_of_one_partition_does_not_hold_up_another(
    stack: Stack, events: Events
) -> None:
    await asyncio.to_thread(ensure_service_topics, stack.settings)
    slow, fast = 0, 1
    # The order that will get news on the slow partition is among its 100k restored states.
    states = (order_state(f"slow-{n}", "pre_transit", T0) for n in range(100_000))
    await asyncio.to_thread(write_changelog, stack, ((slow, s) for s in states))
    at = T0 + timedelta(hours=1)
    inputs = [
        Record(b"slow-7", order_record("slow-7", "IN_TRANSIT", at), partition=slow),
        Record(b"fast-1", order_record("fast-1", "IN_TRANSIT", at), partition=fast),
    ]
    await asyncio.to_thread(
        produce_records, stack.settings.kafka, stack.settings.topics.orders, inputs
    )

    async with derive_stage(stack, lambda: at, checkpoint_interval_seconds=0.05):
        await wait_until(lambda: events.restored(slow) and events.restored(fast), 60, "restores")
        outbox = await asyncio.to_thread(drain, stack.settings.kafka, stack.settings.topics.outbox)
    restored_slow = events.seen.index(("partition restored", slow, None))
    first_commit = next(
        i for i, (message, _, records) in enumerate(events.seen)
        if message == "checkpoint committed" and records
    )  # fmt: skip
    assert first_commit < restored_slow, "nothing was processed while partition 0 restored"
    # The slow partition's record waited for its state: news of the shipment, and no second
    # order_created (which it would have been, derived against an empty state).
    unique_ids = {decode_operation(m.value or b"").unique_id for m in outbox}
    stamp = "in_transit:2026-03-01T01:00:00Z"
    assert unique_ids == {
        "order-tracking:fast-1:order_created",
        "order-tracking-item:fast-1:li_0:order_created",
        f"tracking:fast-1-s1:{stamp}",
        f"tracking-item:fast-1-s1:li_0:{stamp}",
        f"tracking:slow-7-s1:{stamp}",
        f"tracking-item:slow-7-s1:li_0:{stamp}",
    }
