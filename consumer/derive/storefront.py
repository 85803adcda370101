"""Events from the ``storefront-events`` topic: accounts, wishlists and sign-ups.

- ACCOUNT_CREATED → **Customer Account Created**, timed at ``occurred_at``, no properties; the
  profile carries the customer's first and last name so the new account's profile is named.
- WISHLIST_ADD (from the order tracking page) → **Product Added to Wishlist** with
  ``ProductName``, ``SKU``, ``VariantName``, ``ProductId``, ``Price``, ``ProductUrl``,
  ``ImageUrl``; optional ones are omitted when unknown (``ProductUrl``/``ImageUrl`` only exist
  from contract v2 on). ``value`` = price, in the item's currency or the merchant's default;
  ``Price`` is the same amount as an exact number.
- MARKETING_SIGNUP → a subscription, see ``consent``.
- UNKNOWN → the counted skip ``unknown_event_type`` (a newer upstream type).

unique_ids: ``account-created:{event_id}``, ``wishlist-add:{event_id}`` — the event id is the
stable fact, so a re-published action is recorded once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from consumer.derive import fields
from consumer.derive.config import DeriveConfig
from consumer.derive.consent import derive_signup
from consumer.derive.errors import InvalidRecord
from consumer.derive.events import Metric, build_event
from consumer.derive.gating import gate
from consumer.derive.limits import checked
from consumer.derive.outcome import Derivation, SkipReason
from consumer.derive.profiles import profile_from_customer
from consumer.merchant import MerchantSettings
from consumer.outbox.operations import EventOperation, PropertyValue

__all__ = ["StorefrontEventType", "derive_storefront_event"]


class StorefrontEventType(Enum):
    """The contract's ``StorefrontEventType`` symbols."""

    UNKNOWN = "UNKNOWN"
    ACCOUNT_CREATED = "ACCOUNT_CREATED"
    WISHLIST_ADD = "WISHLIST_ADD"
    MARKETING_SIGNUP = "MARKETING_SIGNUP"


_TYPES = {kind.value: kind for kind in StorefrontEventType}


def derive_storefront_event(
    record: Mapping[str, Any],
    merchant: MerchantSettings | None,
    now: datetime,
    config: DeriveConfig,
) -> Derivation:
    """The operations of one ``storefront-events`` record (see the module docstring).

    Never raises for bad input: contract breaches come back as ``dead_letter``.
    """
    try:
        event_id = fields.text(record, "event_id")
        fields.text(record, "merchant_id")
        served = gate(merchant)
        if isinstance(served, SkipReason):
            return Derivation.skipped(served, event_id)
        kind = fields.symbol(record, "event_type", _TYPES)
        if kind is StorefrontEventType.UNKNOWN:
            return Derivation.skipped(SkipReason.UNKNOWN_EVENT_TYPE, event_id)
        if kind is StorefrontEventType.MARKETING_SIGNUP:
            return derive_signup(record, served, now, config)
        event = _event(kind, record, served, now, config)
    except InvalidRecord as exc:
        return Derivation(dead_letter=exc.reason)
    return checked([event], now)


def _event(
    kind: StorefrontEventType,
    record: Mapping[str, Any],
    merchant: MerchantSettings,
    now: datetime,
    config: DeriveConfig,
) -> EventOperation:
    event_id = fields.text(record, "event_id")
    merchant_id = fields.text(record, "merchant_id")
    profile = profile_from_customer(fields.child(record, "customer"), merchant.default_country)
    occurred_at = fields.moment(record, "occurred_at")
    if kind is StorefrontEventType.ACCOUNT_CREATED:
        return build_event(
            merchant_id=merchant_id,
            metric=Metric.CUSTOMER_ACCOUNT_CREATED,
            profile=profile,
            properties={},
            time=occurred_at,
            unique_id=f"account-created:{event_id}",
            now=now,
            config=config,
        )
    wishlist = fields.child(record, "wishlist")
    price = fields.optional_money(wishlist, "price", "wishlist")
    properties: dict[str, PropertyValue] = {
        "ProductName": fields.text(wishlist, "product_name", "wishlist"),
        "SKU": fields.optional_text(wishlist, "sku", "wishlist"),
        "VariantName": fields.optional_text(wishlist, "variant_name", "wishlist"),
        "ProductId": fields.text(wishlist, "product_id", "wishlist"),
        "Price": price,
        "ProductUrl": fields.optional_text(wishlist, "product_url", "wishlist"),
        "ImageUrl": fields.optional_text(wishlist, "image_url", "wishlist"),
    }
    currency = (
        fields.currency(wishlist, "currency", merchant.default_currency, "wishlist")
        if price is not None
        else None
    )
    return build_event(
        merchant_id=merchant_id,
        metric=Metric.PRODUCT_ADDED_TO_WISHLIST,
        profile=profile,
        properties=properties,
        time=occurred_at,
        unique_id=f"wishlist-add:{event_id}",
        now=now,
        config=config,
        value=price,
        value_currency=currency,
    )
