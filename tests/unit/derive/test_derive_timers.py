"""stalled_in_transit: next_timer_at and due_timers driven by the caller's clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from consumer.derive import SkipReason, derive_order, due_timers, expires_at, next_timer_at
from consumer.merchant import MerchantSettings
from consumer.state.shipments import OrderState
from tests.unit.derive.records import (
    CONFIG,
    ITEM,
    MERCHANT,
    NOW,
    UPDATE,
    at,
    events,
    merchant,
    order_record,
    shipment,
)

SCAN = at("2026-11-26T08:00:00Z")
STALL = SCAN + CONFIG.stall_threshold


def in_transit(**changes: object) -> OrderState:
    """Order #1001 whose shipment was last scanned in transit at SCAN."""
    result = derive_order(
        order_record(shipment(carrier_event_at=SCAN), **changes), MERCHANT, None, NOW, CONFIG
    )
    assert result.state is not None
    return result.state


def test_next_timer_at_in_transit_is_last_scan_plus_default_threshold() -> None:
    assert next_timer_at(in_transit(), MERCHANT, CONFIG) == STALL


def test_next_timer_at_merchant_threshold_overrides_default() -> None:
    assert next_timer_at(
        in_transit(), merchant(stall_threshold_hours=24), CONFIG
    ) == SCAN + timedelta(hours=24)


def test_next_timer_at_pre_transit_shipment_has_no_timer() -> None:
    result = derive_order(
        order_record(shipment(carrier_status="PRE_TRANSIT", carrier_event_at=SCAN)),
        MERCHANT,
        None,
        NOW,
        CONFIG,
    )
    assert result.state is not None
    assert next_timer_at(result.state, MERCHANT, CONFIG) is None


def test_next_timer_at_cancelled_order_has_no_timer() -> None:
    state = in_transit(cancelled_at=at("2026-11-27T00:00:00Z"))
    assert next_timer_at(state, MERCHANT, CONFIG) is None
    assert (
        due_timers("ord_1001", state, MERCHANT, STALL + timedelta(days=1), CONFIG).operations == ()
    )


def test_due_timers_before_threshold_returns_nothing() -> None:
    result = due_timers("ord_1001", in_transit(), MERCHANT, STALL - timedelta(seconds=1), CONFIG)
    assert result.operations == ()
    assert result.skips == ()
    assert result.state is None


def test_due_timers_at_threshold_sends_stalled_dated_at_stall_moment() -> None:
    result = due_timers("ord_1001", in_transit(), MERCHANT, STALL, CONFIG)
    (event,) = events(result.operations, UPDATE)
    assert event.properties == {
        "Trigger": "stalled_in_transit",
        "OrderRef": "#1001",
        "Date": "2026-11-29T08:00:00Z",
        "TrackingPageLink": "https://track.example.com/%231001/1Z999AA10123456784",
        "OrderCreatedDate": "2026-11-25T10:00:00Z",
        "OrderShippedDate": "2026-11-25T08:00:00Z",
        "EstimatedDeliveryDate": "2026-11-30T18:00:00Z",
    }
    assert event.time == STALL
    assert event.unique_id == "tracking:shp_1:stalled_in_transit:2026-11-29T08:00:00Z"
    assert len(events(result.operations, ITEM)) == 2
    assert result.state is not None
    assert next_timer_at(result.state, MERCHANT, CONFIG) is None


def test_due_timers_late_sweep_yields_same_unique_id_and_backfill() -> None:
    on_time = due_timers("ord_1001", in_transit(), MERCHANT, STALL, CONFIG)
    late_now = STALL + timedelta(days=10)
    late = due_timers("ord_1001", in_transit(), MERCHANT, late_now, CONFIG)
    assert [op.unique_id for op in late.operations] == [op.unique_id for op in on_time.operations]
    assert all(op.backfill for op in events(late.operations, UPDATE))
    assert not any(op.backfill for op in events(on_time.operations, UPDATE))


def test_due_timers_twice_sends_stall_once() -> None:
    first = due_timers("ord_1001", in_transit(), MERCHANT, STALL, CONFIG)
    assert first.state is not None
    again = due_timers("ord_1001", first.state, MERCHANT, STALL + timedelta(days=5), CONFIG)
    assert again.operations == ()


def test_due_timers_new_scan_after_stall_sends_in_transit_and_rearms() -> None:
    stalled = due_timers("ord_1001", in_transit(), MERCHANT, STALL, CONFIG).state
    later = STALL + timedelta(hours=2)
    result = derive_order(
        order_record(shipment(carrier_event_at=later)), MERCHANT, stalled, NOW, CONFIG
    )
    assert [e.properties["Trigger"] for e in events(result.operations, UPDATE)] == ["in_transit"]
    assert result.state is not None
    assert next_timer_at(result.state, MERCHANT, CONFIG) == later + CONFIG.stall_threshold


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (None, SkipReason.MERCHANT_NOT_INTEGRATED),
        (merchant(enabled=False), SkipReason.INTEGRATION_DISABLED),
        (merchant(order_tracking_enabled=False), SkipReason.ORDER_TRACKING_DISABLED),
    ],
)
def test_due_timers_unserved_merchant_consumes_timer_with_skip(
    settings: MerchantSettings | None, reason: SkipReason
) -> None:
    result = due_timers("ord_1001", in_transit(), settings, STALL, CONFIG)
    assert result.operations == ()
    assert result.skip_reasons == (reason,)
    assert result.state is not None
    assert next_timer_at(result.state, settings, CONFIG) is None


def test_due_timers_state_of_another_order_is_caller_error() -> None:
    with pytest.raises(ValueError, match="another order"):
        due_timers("ord_other", in_transit(), MERCHANT, STALL, CONFIG)


def test_derived_state_is_touched_at_now_and_expires_idle_after_idle_retention() -> None:
    state = in_transit()
    assert state.touched_at == NOW
    assert expires_at(state, CONFIG) == NOW + CONFIG.idle_retention


@pytest.mark.parametrize("status", ["DELIVERED", "RETURN_TO_SENDER", "CANCELLED", "FAILURE"])
def test_expires_at_order_whose_shipments_all_ended_keeps_finished_retention(status: str) -> None:
    ended = shipment(carrier_status=status, carrier_event_at=SCAN)
    result = derive_order(order_record(ended), MERCHANT, None, NOW, CONFIG)
    assert result.state is not None
    assert expires_at(result.state, CONFIG) == NOW + CONFIG.finished_retention


def test_expires_at_one_live_shipment_keeps_the_order_idle_retention() -> None:
    ended = shipment(carrier_status="DELIVERED", carrier_event_at=SCAN)
    live = shipment(shipment_id="shp_2", carrier_status="IN_TRANSIT", carrier_event_at=SCAN)
    result = derive_order(order_record(ended, live), MERCHANT, None, NOW, CONFIG)
    assert result.state is not None
    assert expires_at(result.state, CONFIG) == NOW + CONFIG.idle_retention


def test_expires_at_cancelled_order_keeps_finished_retention() -> None:
    state = in_transit(cancelled_at=SCAN)
    assert expires_at(state, CONFIG) == NOW + CONFIG.finished_retention


def test_due_timers_touches_the_state_it_marks_stalled() -> None:
    later = STALL + timedelta(hours=1)
    result = due_timers("ord_1001", in_transit(), MERCHANT, later, CONFIG)
    assert result.state is not None and result.state.touched_at == later
