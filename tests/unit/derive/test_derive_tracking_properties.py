"""Property tests: random carrier update sequences for one shipment, duplicated and reordered."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.derive import Derivation, derive_order
from consumer.outbox.operations import EventOperation
from consumer.state.shipments import OrderState, decode_order_state, encode_order_state
from tests.unit.derive.records import CONFIG, MERCHANT, NOW, at, order_record, shipment

BASE = at("2026-11-25T12:00:00Z")
PROMISED = at("2026-11-30T18:00:00Z")
STATUSES = [
    "UNKNOWN",
    "PRE_TRANSIT",
    "IN_TRANSIT",
    "OUT_FOR_DELIVERY",
    "DELIVERED",
    "AVAILABLE_FOR_PICKUP",
    "RETURN_TO_SENDER",
    "FAILURE",
    "CANCELLED",
    "ERROR",
]


@st.composite
def carrier_update(draw: st.DrawFn) -> dict[str, Any]:
    """One order record whose only shipment carries a random carrier update."""
    # Few distinct hours, so equal event times (duplicates) are common.
    event_at = BASE + timedelta(hours=draw(st.integers(0, 12)))
    eta_days = draw(st.one_of(st.none(), st.integers(-3, 3)))
    eta = None if eta_days is None else PROMISED + timedelta(days=eta_days)
    return order_record(
        shipment(
            carrier_status=draw(st.sampled_from(STATUSES)),
            status_detail=draw(st.sampled_from([None, None, "delivery_attempted", "other"])),
            carrier_event_at=event_at,
            first_estimated_delivery_at=draw(st.sampled_from([PROMISED, None])),
            estimated_delivery_at=eta,
        ),
        updated_at=event_at + timedelta(seconds=5),
    )


@st.composite
def update_sequence(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Distinct updates, then a random order with repeats of some of them."""
    distinct = draw(st.lists(carrier_update(), min_size=1, max_size=10))
    return draw(st.lists(st.sampled_from(distinct), min_size=1, max_size=25))


def run(records: list[dict[str, Any]], *, via_changelog: bool = False) -> list[Derivation]:
    """Derive ``records`` in order; optionally pass the state through its bytes every time."""
    state: OrderState | None = None
    results = []
    for record in records:
        result = derive_order(record, MERCHANT, state, NOW, CONFIG)
        results.append(result)
        state = result.state or state
        if via_changelog and state is not None:
            state = decode_order_state(encode_order_state(state))
    return results


def shipment_events(result: Derivation) -> list[EventOperation]:
    """The Order Tracking Update events of shipment shp_1 (not the order-level ones)."""
    return [
        op
        for op in result.operations
        if isinstance(op, EventOperation)
        and op.metric == "Order Tracking Update"
        and op.unique_id.startswith("tracking:shp_1:")
    ]


@settings(deadline=None)
@given(update_sequence())
def test_tracking_sequence_never_emits_same_trigger_for_same_carrier_event_twice(
    records: list[dict[str, Any]],
) -> None:
    results = run(records)
    ids = Counter(op.unique_id for result in results for op in result.operations)
    assert [uid for uid, n in ids.items() if n > 1] == []
    emitted = [(e.properties["Trigger"], e.time) for r in results for e in shipment_events(r)]
    assert len(emitted) == len(set(emitted))


@settings(deadline=None)
@given(update_sequence())
def test_tracking_sequence_never_emits_older_than_last_applied(
    records: list[dict[str, Any]],
) -> None:
    state: OrderState | None = None
    for record in records:
        previous = state.shipment("shp_1") if state is not None else None
        last_applied: datetime | None = previous.last_event_at if previous else None
        result = derive_order(record, MERCHANT, state, NOW, CONFIG)
        for event in shipment_events(result):
            assert last_applied is None or event.time > last_applied
        state = result.state or state


@settings(deadline=None)
@given(update_sequence())
def test_tracking_sequence_twice_yields_same_operations_and_unique_ids(
    records: list[dict[str, Any]],
) -> None:
    first = run(records)
    assert run(records) == first
    # Restoring the state from the changelog between records changes nothing either.
    assert [r.operations for r in run(records, via_changelog=True)] == [r.operations for r in first]


@settings(deadline=None)
@given(update_sequence())
def test_tracking_sequence_every_record_accounted_for(records: list[dict[str, Any]]) -> None:
    results = run(records)
    for result in results:
        assert result.dead_letter is None
        assert result.operations or result.skips
    order_created = [
        op
        for r in results
        for op in r.operations
        if op.unique_id == "order-tracking:ord_1001:order_created"
    ]
    assert len(order_created) == 1


@settings(deadline=None)
@given(update_sequence())
def test_tracking_sequence_repeat_of_applied_record_emits_nothing(
    records: list[dict[str, Any]],
) -> None:
    state: OrderState | None = None
    for record in records:
        result = derive_order(record, MERCHANT, state, NOW, CONFIG)
        state = result.state or state
        again = derive_order(record, MERCHANT, state, NOW, CONFIG)
        assert again.operations == ()
        assert again.state is None
