"""Order Tracking Update and Order Tracking Update Item events.

Both carrier-driven updates (from an order record) and timer-driven ones (``stalled_in_transit``,
from ``timers``) are built here from ``OrderState``/``ShipmentState``, so the two paths cannot
drift apart.

Properties, exactly as the product spec names them:

- Update: ``Trigger``, ``OrderRef``, ``Date`` (when it happened), ``TrackingPageLink``,
  ``OrderCreatedDate``, ``OrderShippedDate``, ``OrderDeliveredDate``, ``EstimatedDeliveryDate``;
- Item (one per shipment line): ``Trigger``, ``OrderRef``, ``SKU``, ``ProductName``,
  ``VariantName``, ``Quantity``.

Dates are ISO-8601 UTC strings; a date that is not known (not shipped yet, no ETA, no
template) is **omitted**, never sent as null. Upstream's ``shipped_at``/``delivered_at`` win;
without them the carrier's own moments fill in (``with_carrier_dates``): shipped = the first
applied carrier event in transit or later, delivered = the ``DELIVERED`` event. Order-level
triggers (``order_created``, ``cancelled`` of the whole order) have no shipment: their items
are the order's lines and they carry no shipped/delivered/ETA dates.

``TrackingPageLink`` fills the merchant's template: ``{order_name}``, ``{order_id}``,
``{shipment_id}``, ``{tracking_number}``, each URL-encoded (``#1001`` → ``%231001``). Other
braces are left alone. When the template needs a shipment placeholder and there is no
shipment, the link is omitted rather than sent broken.

unique_ids: ``tracking:{shipment_id}:{trigger}:{Date}`` and
``tracking-item:{shipment_id}:{line_item_id}:{trigger}:{Date}`` for shipments;
``order-tracking:{order_id}:{trigger}`` and ``order-tracking-item:{order_id}:{line_item_id}:
{trigger}`` for the once-per-order triggers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from urllib.parse import quote

from consumer.derive.config import DeriveConfig
from consumer.derive.events import Metric, build_event, iso
from consumer.derive.triggers import CarrierUpdate, Trigger
from consumer.merchant import MerchantSettings
from consumer.outbox.operations import EventOperation, PropertyValue
from consumer.state.shipments import OrderState, ShipmentState, TrackedItem

__all__ = ["TrackingContext", "tracking_link", "with_carrier_dates"]

_ORDER_PLACEHOLDERS = ("order_name", "order_id")
_SHIPMENT_PLACEHOLDERS = ("shipment_id", "tracking_number")
# Carrier statuses that mean the parcel has left the merchant: in transit or any later stage.
_SHIPPED_STATUSES = frozenset(
    {
        Trigger.IN_TRANSIT,
        Trigger.OUT_FOR_DELIVERY,
        Trigger.DELIVERED,
        Trigger.AVAILABLE_FOR_PICKUP,
        Trigger.RETURN_TO_SENDER,
        Trigger.FAILURE,
    }
)


def with_carrier_dates(
    before: ShipmentState, after: ShipmentState, update: CarrierUpdate
) -> ShipmentState:
    """``after`` (``update`` applied to ``before``) with the dates upstream did not give
    taken from the carrier: shipped at the first applied event in transit or later, delivered
    at the ``DELIVERED`` event. A date already known (from upstream, or an earlier scan) stays;
    an update that was not applied (stale, repeated, no event time) changes nothing.
    """
    at = update.event_at
    if after is before or at is None or update.status not in _SHIPPED_STATUSES:
        return after
    delivered = at if update.status is Trigger.DELIVERED else None
    return replace(
        after,
        shipped_at=after.shipped_at or at,
        delivered_at=after.delivered_at or delivered,
    )


@lru_cache(maxsize=65_536)
def _url_part(value: str) -> str:
    # safe="" so "/", "#", "?" and "&" inside an order name cannot change the URL's shape.
    # Cached: an order's name and ids come back with every update (urllib's quote is slow).
    return quote(value, safe="")


def tracking_link(
    template: str | None,
    *,
    order_name: str,
    order_id: str,
    shipment_id: str | None = None,
    tracking_number: str | None = None,
) -> str | None:
    """The merchant's tracking page URL for an order (and shipment), or None (see module doc)."""
    if not template:
        return None
    values = {
        "order_name": order_name,
        "order_id": order_id,
        "shipment_id": shipment_id,
        "tracking_number": tracking_number,
    }
    link = template
    for name in (*_ORDER_PLACEHOLDERS, *_SHIPMENT_PLACEHOLDERS):
        placeholder = "{" + name + "}"
        if placeholder not in link:
            continue
        value = values[name]
        if value is None:
            return None
        link = link.replace(placeholder, _url_part(value))
    return link


@dataclass(frozen=True, slots=True)
class TrackingContext:
    """What every tracking event of one order shares while one record (or sweep) is derived."""

    merchant: MerchantSettings
    order: OrderState
    now: datetime
    config: DeriveConfig

    def _event(
        self, metric: Metric, properties: dict[str, PropertyValue], at: datetime, unique_id: str
    ) -> EventOperation:
        return build_event(
            merchant_id=self.order.merchant_id,
            metric=metric,
            profile=self.order.profile,
            properties=properties,
            time=at,
            unique_id=unique_id,
            now=self.now,
            config=self.config,
        )

    def _items(
        self,
        trigger: Trigger,
        items: Sequence[TrackedItem],
        at: datetime,
        unique_id: Callable[[str], str],
    ) -> list[EventOperation]:
        return [
            self._event(
                Metric.ORDER_TRACKING_UPDATE_ITEM,
                {
                    "Trigger": trigger.value,
                    "OrderRef": self.order.order_name,
                    "SKU": item.sku,
                    "ProductName": item.product_name,
                    "VariantName": item.variant_name,
                    "Quantity": item.quantity,
                },
                at,
                unique_id(item.line_item_id),
            )
            for item in items
        ]

    def _update_properties(
        self, trigger: Trigger, date: str, **link: str
    ) -> dict[str, PropertyValue]:
        """Properties every Order Tracking Update has (``date``: when, as ``iso`` renders
        it); ``link`` adds shipment placeholders."""
        order = self.order
        return {
            "Trigger": trigger.value,
            "OrderRef": order.order_name,
            "Date": date,
            "TrackingPageLink": tracking_link(
                self.merchant.tracking_page_url_template,
                order_name=order.order_name,
                order_id=order.order_id,
                **link,
            ),
            "OrderCreatedDate": iso(order.created_at),
        }

    def order_events(
        self, trigger: Trigger, at: datetime, lines: Sequence[TrackedItem]
    ) -> list[EventOperation]:
        """An order-level update (``order_created``, order ``cancelled``) and its line items."""
        order = self.order
        properties = self._update_properties(trigger, iso(at))
        unique_id = f"order-tracking:{order.order_id}:{trigger.value}"
        return [
            self._event(Metric.ORDER_TRACKING_UPDATE, properties, at, unique_id),
            *self._items(
                trigger,
                lines,
                at,
                lambda line: f"order-tracking-item:{order.order_id}:{line}:{trigger.value}",
            ),
        ]

    def shipment_events(
        self, trigger: Trigger, at: datetime, shipment: ShipmentState
    ) -> list[EventOperation]:
        """A shipment's update at carrier event time ``at`` and one item event per line."""
        date = iso(at)
        properties = {
            **self._update_properties(
                trigger,
                date,
                shipment_id=shipment.shipment_id,
                tracking_number=shipment.tracking_number,
            ),
            "OrderShippedDate": iso(shipment.shipped_at) if shipment.shipped_at else None,
            "OrderDeliveredDate": iso(shipment.delivered_at) if shipment.delivered_at else None,
            "EstimatedDeliveryDate": iso(shipment.current_eta) if shipment.current_eta else None,
        }
        stamp = f"{trigger.value}:{date}"
        unique_id = f"tracking:{shipment.shipment_id}:{stamp}"
        return [
            self._event(Metric.ORDER_TRACKING_UPDATE, properties, at, unique_id),
            *self._items(
                trigger,
                shipment.items,
                at,
                lambda line: f"tracking-item:{shipment.shipment_id}:{line}:{stamp}",
            ),
        ]
