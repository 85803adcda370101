"""Return Created and Return Created Item events from the ``returns`` topic.

One record with ``change = CREATED`` becomes one **Return Created** event (value = the total
return value) and one **Return Created Item** event per returned item (value = that item's
value), all in the record's currency and timed at ``created_at`` (when the customer submitted
the return). ``UPDATED`` changes are counted skips: the submission is the event.

Properties are named exactly as the product spec names them. Optional ones (``NewOrderRef``,
``SKU``, ``NewSKU``, ``NewProductName``, ``VariantName``, ``NewVariantName``) are **omitted**
when the record has no value for them (null, empty or blank), never sent as null or "": a
flow filter "NewSKU is set" then means "this item was exchanged", for every item alike.

unique_ids: ``return-created:{return_id}`` and ``return-item:{return_id}:{item_id}`` — stable
facts only, so a re-published or replayed return is recorded once by Klaviyo.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from consumer.derive import fields
from consumer.derive.config import DeriveConfig
from consumer.derive.errors import InvalidRecord
from consumer.derive.events import Metric, build_event
from consumer.derive.gating import gate
from consumer.derive.limits import checked
from consumer.derive.outcome import Derivation, SkipReason
from consumer.derive.profiles import profile_from_customer
from consumer.merchant import MerchantSettings
from consumer.outbox.operations import EventOperation, Operation, PropertyValue

__all__ = ["derive_return"]

_CHANGE = {"CREATED": True, "UPDATED": False}
_COVERAGE = {"COVERED": "covered", "NOT_COVERED": "not covered"}
_DELIVERY = {"LABEL": "label", "PICKUP": "pickup", "NONE": "none"}
_TYPE = {"REFUND": "refund", "STORE_CREDIT": "store_credit", "EXCHANGE": "exchange"}


def derive_return(
    record: Mapping[str, Any],
    merchant: MerchantSettings | None,
    now: datetime,
    config: DeriveConfig,
) -> Derivation:
    """The operations of one ``returns`` record (see the module docstring).

    Never raises for bad input: contract breaches come back as ``dead_letter``.
    """
    try:
        return _derive(record, merchant, now, config)
    except InvalidRecord as exc:
        return Derivation(dead_letter=exc.reason)


def _derive(
    record: Mapping[str, Any],
    merchant: MerchantSettings | None,
    now: datetime,
    config: DeriveConfig,
) -> Derivation:
    return_id = fields.text(record, "return_id")
    merchant_id = fields.text(record, "merchant_id")
    served = gate(merchant)
    if isinstance(served, SkipReason):
        return Derivation.skipped(served, return_id)
    if not fields.symbol(record, "change", _CHANGE):
        return Derivation.skipped(SkipReason.RETURN_UPDATED, return_id)

    profile = profile_from_customer(fields.child(record, "customer"), served.default_country)
    created_at = fields.moment(record, "created_at")
    currency = fields.currency(record, "currency", served.default_currency)
    shared: dict[str, PropertyValue] = {
        "ReturnId": return_id,
        "OrderRef": fields.text(record, "order_name"),
        "NewOrderRef": fields.optional_text(record, "new_order_name"),
        "Coverage": fields.symbol(record, "coverage", _COVERAGE),
    }
    items = fields.children(record, "items")
    if not items:
        raise InvalidRecord.invalid("items", "is empty; a return has at least one item")

    def event(
        metric: Metric, properties: dict[str, PropertyValue], unique_id: str, value: Decimal
    ) -> EventOperation:
        """One event of this return: same profile, time and currency for all of them."""
        return build_event(
            merchant_id=merchant_id,
            metric=metric,
            profile=profile,
            properties=properties,
            time=created_at,
            unique_id=unique_id,
            now=now,
            config=config,
            value_currency=currency,
            value=value,
        )

    item_events: list[EventOperation] = []
    seen: set[str] = set()
    total_quantity = 0
    for where, item in items:
        item_id = fields.text(item, "item_id", where)
        if item_id in seen:
            # Two events with one unique_id would make Klaviyo reject the whole request.
            raise InvalidRecord.invalid(f"{where}/item_id", "repeats an earlier item's id")
        seen.add(item_id)
        quantity = fields.count(item, "quantity", where)
        total_quantity += quantity
        value = fields.money(item, "value", where)
        properties: dict[str, PropertyValue] = {
            "ReturnId": return_id,
            "Type": fields.symbol(item, "type", _TYPE, where),
            "OrderRef": shared["OrderRef"],
            "NewOrderRef": shared["NewOrderRef"],
            "Coverage": shared["Coverage"],
            "SKU": fields.optional_text(item, "sku", where),
            "NewSKU": fields.optional_text(item, "new_sku", where),
            "ProductName": fields.text(item, "product_name", where),
            "NewProductName": fields.optional_text(item, "new_product_name", where),
            "VariantName": fields.optional_text(item, "variant_name", where),
            "NewVariantName": fields.optional_text(item, "new_variant_name", where),
            "Quantity": quantity,
        }
        unique_id = f"return-item:{return_id}:{item_id}"
        item_events.append(event(Metric.RETURN_CREATED_ITEM, properties, unique_id, value))

    total_value = fields.money(record, "total_value")
    summary = {
        **shared,
        "Delivery": fields.symbol(record, "delivery_method", _DELIVERY),
        "Quantity": total_quantity,
    }
    operations: list[Operation] = [
        event(Metric.RETURN_CREATED, summary, f"return-created:{return_id}", total_value),
        *item_events,
    ]
    return checked(operations, now)
