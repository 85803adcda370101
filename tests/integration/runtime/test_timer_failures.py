"""A timer sweep that fails for one order dead-letters that order and fires the others'.

Tracking state is produced straight to the changelog (as in ``test_state_lifecycle``): one
order's value is corrupt, one decodes but is stored under another order's key (its timer
derivation refuses it), one is healthy; all three are in transit with a stall timer due.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from consumer.kafka import ConsumedMessage
from consumer.outbox import decode_operation
from consumer.runtime.dead_letter import H_MERCHANT, H_REASON
from consumer.runtime.topics import ensure_service_topics
from consumer.state import encode_order_state
from tests.helpers.kafka import Record, drain, produce_records
from tests.integration.runtime.conftest import Stack
from tests.integration.runtime.test_state_lifecycle import (
    MERCHANT,
    T0,
    derive_stage,
    order_record,
    order_state,
    wait_until,
)

CORRUPT = b"\x01this is not a state value"


def header(message: ConsumedMessage, name: str) -> str | None:
    value = message.header(name)
    return None if value is None else value.decode()


async def test_failing_timers_are_dead_lettered_and_the_others_fire(stack: Stack) -> None:
    await asyncio.to_thread(ensure_service_topics, stack.settings)
    topics = stack.settings.topics
    misfiled = replace(order_state("moved-1", "in_transit", T0), order_id="other-order")
    values = [
        Record(b"corrupt-1", CORRUPT, partition=0),
        Record(b"moved-1", encode_order_state(misfiled), partition=0),
        Record(b"good-1", encode_order_state(order_state("good-1", "in_transit", T0)), partition=0),
    ]
    await asyncio.to_thread(produce_records, stack.settings.kafka, topics.tracking_state, values)
    now = T0 + timedelta(days=3)  # the stall threshold (72 h) after the last scan has passed

    def stalled(order_id: str) -> bool:
        prefix = f"tracking:{order_id}-s1:stalled_in_transit:"
        return any(
            decode_operation(m.value or b"").unique_id.startswith(prefix)
            for m in drain(stack.settings.kafka, topics.outbox)
        )

    async with derive_stage(stack, lambda: now) as metrics:
        await wait_until(lambda: stalled("good-1"), 60, "the healthy order's stall event")
        assert not stalled("moved-1")
        dead = await asyncio.to_thread(drain, stack.settings.kafka, topics.dead_letter)
        by_key = {m.key: m for m in dead}
        assert set(by_key) == {b"corrupt-1", b"moved-1"}
        corrupt, moved = by_key[b"corrupt-1"], by_key[b"moved-1"]
        assert corrupt.value == CORRUPT  # the stored bytes, for inspection or a replay
        assert header(corrupt, "__connect.errors.topic") == topics.tracking_state
        assert header(corrupt, "__connect.errors.partition") == "0"
        assert header(corrupt, "__connect.errors.exception.class.name") == "StateFormatError"
        assert "not zstd" in (header(corrupt, "__connect.errors.exception.message") or "")
        assert header(corrupt, H_REASON) == "internal_error"
        assert header(moved, "__connect.errors.exception.class.name") == "ValueError"
        assert header(moved, H_MERCHANT) == MERCHANT
        samples = metrics.registry.get_sample_value
        for error in ("StateFormatError", "ValueError"):
            labels = {"stage": "derive", "error": error}
            assert samples("klaviyo_consumer_record_errors_total", labels) == 1.0

        # The stage carries on: a later input record is derived as usual.
        later = now + timedelta(minutes=1)
        record = Record(b"next-1", order_record("next-1", "IN_TRANSIT", later), partition=1)
        await asyncio.to_thread(produce_records, stack.settings.kafka, topics.orders, [record])

        def derived_next() -> bool:
            return any(
                decode_operation(m.value or b"").unique_id.startswith("order-tracking:next-1")
                for m in drain(stack.settings.kafka, topics.outbox)
            )

        await wait_until(derived_next, 60, "the next input record's events")

    changelog = await asyncio.to_thread(drain, stack.settings.kafka, topics.tracking_state)
    latest = {m.key: m.value for m in changelog}
    assert latest[b"corrupt-1"] is None  # removed: it could never be read
    assert latest[b"moved-1"] == encode_order_state(misfiled)  # decodes: kept
