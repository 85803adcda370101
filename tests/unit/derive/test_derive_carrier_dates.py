"""OrderShippedDate / OrderDeliveredDate from the carrier when upstream leaves them out."""

from __future__ import annotations

from typing import Any

from consumer.derive import derive_order
from consumer.outbox.operations import EventOperation
from consumer.state.shipments import OrderState
from tests.unit.derive.records import (
    CONFIG,
    MERCHANT,
    NOW,
    UPDATE,
    at,
    events,
    order_record,
    shipment,
)

LABEL = at("2026-11-25T16:00:00Z")  # pre_transit
FIRST_SCAN = at("2026-11-26T08:00:00Z")  # first in transit
SECOND_SCAN = at("2026-11-26T20:00:00Z")
HANDED_OVER = at("2026-11-27T09:00:00Z")  # delivered
UPSTREAM_SHIPPED = at("2026-11-25T18:30:00Z")
UPSTREAM_DELIVERED = at("2026-11-27T09:05:00Z")


def updates(*shipments: dict[str, Any]) -> list[EventOperation]:
    """The Order Tracking Update events of one order record per shipment dict, in order."""
    state: OrderState | None = None
    found: list[EventOperation] = []
    for number, item in enumerate(shipments):
        record = order_record(item, updated_at=at("2026-11-25T10:00:00Z").replace(minute=number))
        result = derive_order(record, MERCHANT, state, NOW, CONFIG)
        state = result.state or state
        found += [
            e
            for e in events(result.operations, UPDATE)
            if e.properties["Trigger"] != "order_created"
        ]
    return found


def scan(status: str, when: Any, **upstream: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"shipped_at": None, "delivered_at": None} | upstream
    return shipment(carrier_status=status, carrier_event_at=when, **fields)


def test_without_upstream_dates_the_carrier_moments_are_used() -> None:
    pre, first, second, delivered = updates(
        scan("PRE_TRANSIT", LABEL),
        scan("IN_TRANSIT", FIRST_SCAN),
        scan("OUT_FOR_DELIVERY", SECOND_SCAN),
        scan("DELIVERED", HANDED_OVER),
    )
    assert "OrderShippedDate" not in pre.properties  # a label is not a shipment yet
    assert first.properties["OrderShippedDate"] == "2026-11-26T08:00:00Z"
    assert second.properties["OrderShippedDate"] == "2026-11-26T08:00:00Z"  # the first one
    assert "OrderDeliveredDate" not in second.properties
    assert delivered.properties["OrderShippedDate"] == "2026-11-26T08:00:00Z"
    assert delivered.properties["OrderDeliveredDate"] == "2026-11-27T09:00:00Z"


def test_delivered_without_any_earlier_scan_is_shipped_and_delivered_then() -> None:
    [delivered] = updates(scan("DELIVERED", HANDED_OVER))
    assert delivered.properties["OrderShippedDate"] == "2026-11-27T09:00:00Z"
    assert delivered.properties["OrderDeliveredDate"] == "2026-11-27T09:00:00Z"


def test_upstream_dates_win_over_the_carrier() -> None:
    first, delivered = updates(
        scan("IN_TRANSIT", FIRST_SCAN, shipped_at=UPSTREAM_SHIPPED),
        scan("DELIVERED", HANDED_OVER, delivered_at=UPSTREAM_DELIVERED),
    )
    assert first.properties["OrderShippedDate"] == "2026-11-25T18:30:00Z"
    assert delivered.properties["OrderShippedDate"] == "2026-11-25T18:30:00Z"  # kept
    assert delivered.properties["OrderDeliveredDate"] == "2026-11-27T09:05:00Z"


def test_upstream_date_arriving_later_replaces_the_carrier_one() -> None:
    first, delivered = updates(
        scan("IN_TRANSIT", FIRST_SCAN),
        scan("DELIVERED", HANDED_OVER, shipped_at=UPSTREAM_SHIPPED),
    )
    assert first.properties["OrderShippedDate"] == "2026-11-26T08:00:00Z"
    assert delivered.properties["OrderShippedDate"] == "2026-11-25T18:30:00Z"


def test_a_stale_scan_sets_no_date() -> None:
    first, *rest = updates(
        scan("PRE_TRANSIT", SECOND_SCAN),
        scan("IN_TRANSIT", FIRST_SCAN),  # older than what was applied: stale, not applied
        scan("IN_TRANSIT", HANDED_OVER),
    )
    assert "OrderShippedDate" not in first.properties
    [in_transit] = rest
    assert in_transit.properties["OrderShippedDate"] == "2026-11-27T09:00:00Z"
