"""An ``orders`` record, read and checked against its contract in one place.

The record is the full state of an order and all its shipments, published on every change, so
most shipments in a record are unchanged; ``consumer.derive.orders`` decides what is new.
Contract breaches raise ``InvalidRecord`` (the whole record is dead-lettered):

- missing required fields, quantities below 1, unknown enum symbols;
- a line item id or shipment id that appears twice (their ids are part of unique_ids);
- a shipment item naming a line item the order does not have.

Two entries for the same line within one shipment are merged (quantities added): the parcel
holds that many units, and one line must be one Order Tracking Update Item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consumer.derive import fields
from consumer.derive.errors import InvalidRecord
from consumer.derive.triggers import CARRIER_STATUSES, CarrierUpdate, status_trigger
from consumer.state.shipments import ShipmentState, TrackedItem

__all__ = ["OrderRecord", "ShipmentRecord", "read_order"]


@dataclass(frozen=True, slots=True)
class ShipmentRecord:
    """One shipment of the record: its facts (as a fresh state) and its carrier update."""

    facts: ShipmentState
    update: CarrierUpdate


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """The checked content of one ``orders`` record (the customer is read separately)."""

    order_id: str
    merchant_id: str
    order_name: str
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None
    lines: tuple[TrackedItem, ...]
    shipments: tuple[ShipmentRecord, ...]
    customer: Mapping[str, Any]


def _read_lines(record: Mapping[str, Any]) -> dict[str, TrackedItem]:
    lines: dict[str, TrackedItem] = {}
    for where, line in fields.children(record, "line_items"):
        line_id = fields.text(line, "line_item_id", where)
        if line_id in lines:
            raise InvalidRecord.invalid(f"{where}/line_item_id", "repeats an earlier line's id")
        lines[line_id] = TrackedItem(
            line_item_id=line_id,
            product_name=fields.text(line, "product_name", where),
            quantity=fields.count(line, "quantity", where),
            sku=fields.optional_text(line, "sku", where),
            variant_name=fields.optional_text(line, "variant_name", where),
        )
    return lines


def _read_items(
    shipment: Mapping[str, Any], where: str, lines: Mapping[str, TrackedItem]
) -> tuple[TrackedItem, ...]:
    quantities: dict[str, int] = {}
    for item_where, item in fields.children(shipment, "items", where):
        line_id = fields.text(item, "line_item_id", item_where)
        if line_id not in lines:
            raise InvalidRecord.invalid(
                f"{item_where}/line_item_id", "names a line item the order does not have"
            )
        quantity = fields.count(item, "quantity", item_where)
        quantities[line_id] = quantities.get(line_id, 0) + quantity
    return tuple(
        TrackedItem(
            line_item_id=line_id,
            product_name=lines[line_id].product_name,
            quantity=quantity,
            sku=lines[line_id].sku,
            variant_name=lines[line_id].variant_name,
        )
        for line_id, quantity in quantities.items()
    )


def _read_shipment(
    shipment: Mapping[str, Any], where: str, lines: Mapping[str, TrackedItem]
) -> ShipmentRecord:
    status = fields.symbol(shipment, "carrier_status", CARRIER_STATUSES, where)
    facts = ShipmentState(
        shipment_id=fields.text(shipment, "shipment_id", where),
        tracking_number=fields.text(shipment, "tracking_number", where),
        items=_read_items(shipment, where, lines),
        shipped_at=fields.optional_moment(shipment, "shipped_at", where),
        delivered_at=fields.optional_moment(shipment, "delivered_at", where),
    )
    update = CarrierUpdate(
        status=status_trigger(status, fields.optional_text(shipment, "status_detail", where)),
        event_at=fields.optional_moment(shipment, "carrier_event_at", where),
        first_eta=fields.optional_moment(shipment, "first_estimated_delivery_at", where),
        eta=fields.optional_moment(shipment, "estimated_delivery_at", where),
    )
    return ShipmentRecord(facts, update)


def read_order(record: Mapping[str, Any]) -> OrderRecord:
    """Read and check one ``orders`` record.

    Raises:
        InvalidRecord: the record breaks its contract (see the module docstring).
    """
    lines = _read_lines(record)
    shipments: list[ShipmentRecord] = []
    seen: set[str] = set()
    for where, raw in fields.children(record, "shipments"):
        shipment = _read_shipment(raw, where, lines)
        if shipment.facts.shipment_id in seen:
            raise InvalidRecord.invalid(f"{where}/shipment_id", "repeats an earlier shipment's id")
        seen.add(shipment.facts.shipment_id)
        shipments.append(shipment)
    return OrderRecord(
        order_id=fields.text(record, "order_id"),
        merchant_id=fields.text(record, "merchant_id"),
        order_name=fields.text(record, "order_name"),
        created_at=fields.moment(record, "created_at"),
        updated_at=fields.moment(record, "updated_at"),
        cancelled_at=fields.optional_moment(record, "cancelled_at"),
        lines=tuple(lines.values()),
        shipments=tuple(shipments),
        customer=fields.child(record, "customer"),
    )
