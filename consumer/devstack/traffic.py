"""Realistic sample input for demos, end-to-end tests, crash tests and benchmarks.

Deterministic for a seed: every merchant gets orders whose shipments walk through one of the
tracking scenarios (together they cover all 14 triggers), returns for some of those orders,
and storefront actions (accounts, wishlists, sign-ups with and without consent).
Times are relative to ``now`` (orders placed in the last day, one scenario step every two
hours) so nothing is old enough to be sent as backfill, except the stalled scenario, whose last
scan is weeks old: older than any stall threshold.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

__all__ = ["SCENARIOS", "InputRecord", "sample_traffic"]

Subject = Literal["returns", "orders", "storefront-events"]


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One record to publish: which contract, its key, and Avro-ready values."""

    subject: Subject
    key: str
    value: dict[str, Any]


# A step: (carrier status, status detail, ETA shift in days vs. first promise, steps after order).
Step = tuple[str, str | None, int, float]
SCENARIOS: dict[str, list[Step]] = {
    "delivered": [
        ("PRE_TRANSIT", None, 0, 0.2),
        ("IN_TRANSIT", None, 0, 1),
        ("OUT_FOR_DELIVERY", None, 0, 3),
        ("DELIVERED", None, 0, 3.3),
    ],
    "delayed": [("IN_TRANSIT", None, 0, 1), ("IN_TRANSIT", None, 2, 2), ("DELIVERED", None, 2, 5)],
    "early": [
        ("IN_TRANSIT", None, 0, 1),
        ("IN_TRANSIT", None, -1, 1.5),
        ("DELIVERED", None, -1, 2),
    ],
    "attempted": [
        ("OUT_FOR_DELIVERY", None, 0, 2),
        ("OUT_FOR_DELIVERY", "delivery_attempted", 0, 2.4),
        ("AVAILABLE_FOR_PICKUP", None, 0, 3),
    ],
    "returned": [("IN_TRANSIT", None, 0, 1), ("RETURN_TO_SENDER", None, 0, 4)],
    "failed": [("IN_TRANSIT", None, 0, 1), ("FAILURE", None, 0, 2)],
    "cancelled": [("PRE_TRANSIT", None, 0, 0.5), ("CANCELLED", None, 0, 0.8)],
    "error": [("ERROR", None, 0, 0.5)],
    "stalled": [("IN_TRANSIT", None, 0, 30)],
}
_STEP = timedelta(hours=2)
_PRODUCTS = [
    ("TSHIRT-BLU-M", "Organic T-Shirt", "Blue / M", "29.00"),
    ("JEANS-32", "Slim Jeans", "32", "79.50"),
    ("CAP-RED", "Baseball Cap", "Red", "19.00"),
    ("MUG-01", "Ceramic Mug", None, "12.00"),
]


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _customer(merchant: str, n: int, rng: random.Random) -> dict[str, Any]:
    return {
        "email": f"customer{n}.{merchant}@example.com",
        "phone": f"+1415555{rng.randrange(10_000):04d}" if n % 3 else None,
        "external_id": f"{merchant}-cust-{n}",
        "first_name": f"Customer{n}",
        "last_name": "Example",
    }


def _order_records(
    merchant: str, n: int, scenario: str, now: datetime, rng: random.Random
) -> Iterator[InputRecord]:
    order_id = f"{merchant}-ord-{n}"
    created = _ms(now - timedelta(hours=12, minutes=n % 600))
    if scenario == "stalled":
        created = _ms(now - timedelta(days=40, minutes=n % 600))
    lines = [
        {
            "line_item_id": f"li_{i}",
            "sku": sku,
            "product_name": name,
            "variant_name": variant,
            "quantity": 1 + i,
        }
        for i, (sku, name, variant, _) in enumerate(rng.sample(_PRODUCTS, 2))
    ]
    base = {
        "order_id": order_id,
        "order_name": f"#{n + 1000}",
        "merchant_id": merchant,
        "customer": _customer(merchant, n, rng),
        "created_at": created,
        "line_items": lines,
        "cancelled_at": None,
    }
    yield InputRecord("orders", order_id, {**base, "shipments": [], "updated_at": created})
    promised = created + timedelta(days=4)
    shipped: datetime | None = None
    for status, detail, shift, steps in SCENARIOS[scenario]:
        at = _ms(created + _STEP * abs(steps))
        if status in ("IN_TRANSIT", "OUT_FOR_DELIVERY") and shipped is None:
            shipped = at
        shipment = {
            "shipment_id": f"{order_id}-s1",
            "carrier": "ups",
            "tracking_number": f"1Z{n:012d}",
            "carrier_status": status,
            "status_detail": detail,
            "carrier_event_at": at,
            "first_estimated_delivery_at": promised,
            "estimated_delivery_at": promised + timedelta(days=shift),
            "shipped_at": shipped,
            "delivered_at": at if status == "DELIVERED" else None,
            "items": [
                {"line_item_id": line["line_item_id"], "quantity": line["quantity"]}
                for line in lines
            ],
        }
        yield InputRecord("orders", order_id, {**base, "shipments": [shipment], "updated_at": at})


def _return_record(merchant: str, n: int, now: datetime) -> InputRecord:
    sku, name, variant, price = _PRODUCTS[n % len(_PRODUCTS)]
    exchange = n % 2 == 0
    created = _ms(now - timedelta(hours=5, minutes=n % 300))
    value = Decimal(price)
    item = {
        "item_id": "ri_1",
        "type": "EXCHANGE" if exchange else "REFUND",
        "sku": sku,
        "new_sku": f"{sku}-X" if exchange else None,
        "product_name": name,
        "new_product_name": name if exchange else None,
        "variant_name": variant,
        "new_variant_name": "Other" if exchange else None,
        "quantity": 1,
        "value": value,
    }
    return InputRecord(
        "returns",
        f"{merchant}-ret-{n}",
        {
            "return_id": f"{merchant}-ret-{n}",
            "merchant_id": merchant,
            "change": "CREATED",
            "order_name": f"#{n + 1000}",
            "new_order_name": f"#{n + 1000}-EX" if exchange else None,
            "coverage": "COVERED" if n % 3 == 0 else "NOT_COVERED",
            "delivery_method": ("LABEL", "PICKUP", "NONE")[n % 3],
            "items": [item],
            "total_value": value,
            "currency": "USD",
            "customer": {
                "email": f"customer{n}.{merchant}@example.com",
                "phone": None,
                "external_id": None,
                "first_name": None,
                "last_name": None,
            },
            "created_at": created,
            "updated_at": created,
        },
    )


def _storefront_records(
    merchant: str, n: int, now: datetime, rng: random.Random
) -> Iterator[InputRecord]:
    customer = _customer(merchant, n, rng)
    at = _ms(now - timedelta(hours=3, minutes=n % 120))
    common = {
        "merchant_id": merchant,
        "occurred_at": at,
        "customer": customer,
        "wishlist": None,
        "signup": None,
    }
    yield InputRecord(
        "storefront-events",
        f"{merchant}-acct-{n}",
        {**common, "event_id": f"{merchant}-acct-{n}", "event_type": "ACCOUNT_CREATED"},
    )
    sku, name, variant, price = _PRODUCTS[n % len(_PRODUCTS)]
    wish = {
        "product_id": f"prod-{sku}",
        "product_name": name,
        "sku": sku,
        "variant_name": variant,
        "price": Decimal(price),
        "currency": "USD",
        "product_url": f"https://shop.example.com/p/{sku}",
        "image_url": None,
    }
    yield InputRecord(
        "storefront-events",
        f"{merchant}-wish-{n}",
        {
            **common,
            "event_id": f"{merchant}-wish-{n}",
            "event_type": "WISHLIST_ADD",
            "wishlist": wish,
        },
    )
    phone = f"+1415556{n % 10_000:04d}"
    consent = n % 2 == 0  # every other sign-up leaves the box unticked: no subscription
    signup = {
        "channel": "SMS",
        "source": "TRACKING_PAGE",
        "marketing_consent": consent,
        "email": None,
        "phone": phone,
    }
    yield InputRecord(
        "storefront-events",
        f"{merchant}-sms-{n}",
        {
            **common,
            "event_id": f"{merchant}-sms-{n}",
            "event_type": "MARKETING_SIGNUP",
            "signup": signup,
        },
    )
    email_signup = {
        "channel": "EMAIL",
        "source": "MARKETING",
        "marketing_consent": True,
        "email": customer["email"],
        "phone": None,
    }
    yield InputRecord(
        "storefront-events",
        f"{merchant}-news-{n}",
        {
            **common,
            "event_id": f"{merchant}-news-{n}",
            "event_type": "MARKETING_SIGNUP",
            "signup": email_signup,
        },
    )


def sample_traffic(
    merchants: Sequence[str], orders_per_merchant: int, now: datetime, seed: int = 7
) -> list[InputRecord]:
    """Records for ``merchants``: orders cycling through every scenario, returns, storefront.

    Records of one key keep their order; merchants are interleaved as real traffic would be.
    """
    rng = random.Random(seed)  # noqa: S311 -- sample data, not security
    scenarios = list(SCENARIOS)
    streams: list[list[InputRecord]] = []
    for merchant in merchants:
        for n in range(orders_per_merchant):
            stream = list(_order_records(merchant, n, scenarios[n % len(scenarios)], now, rng))
            if n % 4 == 0:
                stream.append(_return_record(merchant, n, now))
            if n % 5 == 0:
                stream.extend(_storefront_records(merchant, n, now, rng))
            streams.append(stream)
    rng.shuffle(streams)
    # Round-robin over streams: interleaved, yet in order within each stream.
    out: list[InputRecord] = []
    while streams:
        streams = [s for s in streams if s]
        for stream in streams:
            out.append(stream.pop(0))
    return out
