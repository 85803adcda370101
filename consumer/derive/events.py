"""Building event operations the same way for every metric.

- Property values that are ``None`` are left out, never sent as null: Klaviyo flow filters
  read "is set" / "is not set" naturally, and one rule covers every optional property.
- ``time`` is when the fact happened; ``backfill`` is set when that is longer ago than the
  configured ``backfill_after`` relative to the ``now`` the caller passes in.
- Dates inside properties are ISO-8601 strings in UTC with a ``Z`` suffix; the same rendering
  is used inside ``unique_id`` values, so an id never depends on the host's time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from consumer.derive.config import DeriveConfig
from consumer.outbox.operations import EventOperation, Profile, PropertyValue

__all__ = ["Metric", "build_event", "is_backfill", "iso"]


class Metric(StrEnum):
    """The Klaviyo metric names of the product spec (exact and case-sensitive)."""

    RETURN_CREATED = "Return Created"
    RETURN_CREATED_ITEM = "Return Created Item"
    ORDER_TRACKING_UPDATE = "Order Tracking Update"
    ORDER_TRACKING_UPDATE_ITEM = "Order Tracking Update Item"
    CUSTOMER_ACCOUNT_CREATED = "Customer Account Created"
    PRODUCT_ADDED_TO_WISHLIST = "Product Added to Wishlist"


def iso(moment: datetime) -> str:
    """``moment`` in UTC as ISO-8601 with ``Z`` (microseconds only when there are any)."""
    if moment.tzinfo is not UTC:  # decoded times are already in UTC: no conversion to pay for
        moment = moment.astimezone(UTC)
    return moment.isoformat()[:-6] + "Z"  # "+00:00" is always last


def is_backfill(moment: datetime, now: datetime, config: DeriveConfig) -> bool:
    """Whether an event at ``moment`` is old enough that flows must not fire on it again."""
    return moment < now - config.backfill_after


def build_event(
    *,
    merchant_id: str,
    metric: Metric,
    profile: Profile,
    properties: Mapping[str, PropertyValue],
    time: datetime,
    unique_id: str,
    now: datetime,
    config: DeriveConfig,
    value: Decimal | None = None,
    value_currency: str | None = None,
) -> EventOperation:
    """One event operation; ``None`` properties are dropped (see the module docstring)."""
    return EventOperation(
        merchant_id=merchant_id,
        metric=metric.value,
        profile=profile,
        properties={name: v for name, v in properties.items() if v is not None},
        time=time,
        unique_id=unique_id,
        value=value,
        value_currency=value_currency if value is not None else None,
        backfill=is_backfill(time, now, config),
    )
