"""Realistic input records for derivation tests, shaped as ``RecordDecoder`` returns them.

Every builder starts from a complete, valid record (close to ``schemas/examples``) and takes
keyword overrides, so a test states only what it is about.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from consumer.derive import DeriveConfig
from consumer.merchant import MerchantSettings
from consumer.outbox.operations import EventOperation, Operation, SubscriptionOperation

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
UPDATE = "Order Tracking Update"  # the seed's metric names, spelled out on purpose
ITEM = "Order Tracking Update Item"
CONFIG = DeriveConfig(stall_threshold=timedelta(hours=72), backfill_after=timedelta(hours=72))
MERCHANT = MerchantSettings(
    merchant_id="merchant-acme",
    api_key=SecretStr("pk_test_not_a_real_key"),
    enabled=True,
    order_tracking_enabled=True,
    marketing_enabled=True,
    email_list_id="EMAIL_LIST",
    sms_list_id="SMS_LIST",
    tracking_page_url_template="https://track.example.com/{order_name}/{tracking_number}",
    default_currency="USD",
    default_country="US",
)


def merchant(**changes: Any) -> MerchantSettings:
    """The demo merchant with ``changes`` applied."""
    return replace(MERCHANT, **changes)


def at(text: str) -> datetime:
    """An aware UTC datetime from ISO text (``Z`` allowed)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def customer(**changes: Any) -> dict[str, Any]:
    """A customer with every identifier set."""
    base: dict[str, Any] = {
        "email": " Jane.Doe@Example.com ",
        "phone": "(415) 555-0100",
        "external_id": "cust_42",
        "first_name": "Jane",
        "last_name": "Doe",
    }
    return base | changes


def return_item(**changes: Any) -> dict[str, Any]:
    """A returned item (a refund, no exchange product)."""
    base: dict[str, Any] = {
        "item_id": "ri_1",
        "type": "REFUND",
        "sku": "TSHIRT-BLU-M",
        "new_sku": None,
        "product_name": "Organic T-Shirt",
        "new_product_name": None,
        "variant_name": "Blue / M",
        "new_variant_name": None,
        "quantity": 1,
        "value": Decimal("29.00"),
    }
    return base | changes


def return_record(**changes: Any) -> dict[str, Any]:
    """A CREATED return with one refund item."""
    base: dict[str, Any] = {
        "return_id": "ret_1001_a",
        "merchant_id": "merchant-acme",
        "change": "CREATED",
        "order_name": "#1001",
        "new_order_name": None,
        "coverage": "COVERED",
        "delivery_method": "LABEL",
        "items": [return_item()],
        "total_value": Decimal("29.00"),
        "currency": "USD",
        "customer": customer(),
        "created_at": at("2026-11-27T14:03:00Z"),
        "updated_at": at("2026-11-27T14:03:00Z"),
    }
    return base | changes


def line_items() -> list[dict[str, Any]]:
    """The two lines of order #1001."""
    return [
        {
            "line_item_id": "li_1",
            "sku": "TSHIRT-BLU-M",
            "product_name": "Organic T-Shirt",
            "variant_name": "Blue / M",
            "quantity": 1,
        },
        {
            "line_item_id": "li_2",
            "sku": "CAP-RED",
            "product_name": "Baseball Cap",
            "variant_name": "Red",
            "quantity": 2,
        },
    ]


def shipment(**changes: Any) -> dict[str, Any]:
    """Shipment shp_1 in transit, with both lines."""
    base: dict[str, Any] = {
        "shipment_id": "shp_1",
        "carrier": "ups",
        "tracking_number": "1Z999AA10123456784",
        "carrier_status": "IN_TRANSIT",
        "status_detail": None,
        "carrier_event_at": at("2026-11-26T08:00:00Z"),
        "first_estimated_delivery_at": at("2026-11-30T18:00:00Z"),
        "estimated_delivery_at": at("2026-11-30T18:00:00Z"),
        "shipped_at": at("2026-11-25T08:00:00Z"),
        "delivered_at": None,
        "items": [
            {"line_item_id": "li_1", "quantity": 1},
            {"line_item_id": "li_2", "quantity": 2},
        ],
    }
    return base | changes


def order_record(*shipments: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Order ord_1001 with the given shipments (none = just created)."""
    base: dict[str, Any] = {
        "order_id": "ord_1001",
        "order_name": "#1001",
        "merchant_id": "merchant-acme",
        "customer": customer(),
        "created_at": at("2026-11-25T10:00:00Z"),
        "line_items": line_items(),
        "shipments": list(shipments),
        "cancelled_at": None,
        "updated_at": at("2026-11-26T08:00:05Z"),
    }
    return base | changes


def storefront_record(event_type: str, **changes: Any) -> dict[str, Any]:
    """A storefront event of ``event_type`` with no detail record."""
    base: dict[str, Any] = {
        "event_id": "evt_1",
        "merchant_id": "merchant-acme",
        "event_type": event_type,
        "occurred_at": at("2026-11-27T20:15:00Z"),
        "customer": customer(),
        "wishlist": None,
        "signup": None,
    }
    return base | changes


def wishlist(**changes: Any) -> dict[str, Any]:
    """A wishlist item with every field set (contract v2)."""
    base: dict[str, Any] = {
        "product_id": "prod_77",
        "product_name": "Rain Jacket",
        "sku": "JACKET-GRN-L",
        "variant_name": "Green / L",
        "price": Decimal("129.00"),
        "currency": "USD",
        "product_url": "https://shop.example.com/products/rain-jacket",
        "image_url": "https://cdn.example.com/rain-jacket.jpg",
    }
    return base | changes


def signup(**changes: Any) -> dict[str, Any]:
    """An SMS sign-up on the tracking page with the consent box ticked."""
    base: dict[str, Any] = {
        "channel": "SMS",
        "source": "TRACKING_PAGE",
        "marketing_consent": True,
        "email": None,
        "phone": "+14155550100",
    }
    return base | changes


def events(operations: tuple[Operation, ...], metric: str) -> list[EventOperation]:
    """The event operations of ``metric``, in order."""
    return [op for op in operations if isinstance(op, EventOperation) and op.metric == metric]


def subscriptions(operations: tuple[Operation, ...]) -> list[SubscriptionOperation]:
    """The subscription operations, in order."""
    return [op for op in operations if isinstance(op, SubscriptionOperation)]
