"""Return Created and Return Created Item: every seed property, skips and dead-letters."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from consumer.derive import DeadLetterCode, SkipReason, derive_return
from consumer.outbox.operations import Profile
from tests.unit.derive.records import (
    CONFIG,
    MERCHANT,
    NOW,
    at,
    events,
    merchant,
    return_item,
    return_record,
)

EXCHANGE = return_item(
    item_id="ri_2",
    type="EXCHANGE",
    sku="JEANS-32",
    new_sku="JEANS-34",
    product_name="Slim Jeans",
    new_product_name="Slim Jeans Relaxed",
    variant_name="32",
    new_variant_name="34",
    quantity=2,
    value=Decimal("79.50"),
)
RECORD = return_record(
    new_order_name="#1001-EX1",
    items=[return_item(), EXCHANGE],
    total_value=Decimal("108.50"),
)
PROFILE = Profile(
    email="jane.doe@example.com",
    phone_number="+14155550100",
    external_id="cust_42",
    first_name="Jane",
    last_name="Doe",
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ReturnId", "ret_1001_a"),
        ("OrderRef", "#1001"),
        ("NewOrderRef", "#1001-EX1"),
        ("Coverage", "covered"),
        ("Delivery", "label"),
        ("Quantity", 3),
    ],
)
def test_return_created_property_has_seed_value(name: str, expected: Any) -> None:
    (event,) = events(derive_return(RECORD, MERCHANT, NOW, CONFIG).operations, "Return Created")
    assert event.properties[name] == expected


def test_return_created_event_has_exactly_the_seed_properties() -> None:
    (event,) = events(derive_return(RECORD, MERCHANT, NOW, CONFIG).operations, "Return Created")
    assert set(event.properties) == {
        "ReturnId",
        "OrderRef",
        "NewOrderRef",
        "Coverage",
        "Delivery",
        "Quantity",
    }
    assert event.value == Decimal("108.50")
    assert event.value_currency == "USD"
    assert event.time == at("2026-11-27T14:03:00Z")
    assert event.unique_id == "return-created:ret_1001_a"
    assert event.profile == PROFILE
    assert event.merchant_id == "merchant-acme"
    assert event.backfill is False


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ReturnId", "ret_1001_a"),
        ("Type", "exchange"),
        ("OrderRef", "#1001"),
        ("NewOrderRef", "#1001-EX1"),
        ("Coverage", "covered"),
        ("SKU", "JEANS-32"),
        ("NewSKU", "JEANS-34"),
        ("ProductName", "Slim Jeans"),
        ("NewProductName", "Slim Jeans Relaxed"),
        ("VariantName", "32"),
        ("NewVariantName", "34"),
        ("Quantity", 2),
    ],
)
def test_return_created_item_property_has_seed_value(name: str, expected: Any) -> None:
    items = events(derive_return(RECORD, MERCHANT, NOW, CONFIG).operations, "Return Created Item")
    assert items[1].properties[name] == expected


def test_return_created_item_one_event_per_item_with_item_value() -> None:
    items = events(derive_return(RECORD, MERCHANT, NOW, CONFIG).operations, "Return Created Item")
    assert [i.unique_id for i in items] == [
        "return-item:ret_1001_a:ri_1",
        "return-item:ret_1001_a:ri_2",
    ]
    assert [i.value for i in items] == [Decimal("29.00"), Decimal("79.50")]
    assert {i.value_currency for i in items} == {"USD"}
    assert [i.properties["Type"] for i in items] == ["refund", "exchange"]


def test_return_created_item_absent_new_fields_are_omitted() -> None:
    items = events(derive_return(RECORD, MERCHANT, NOW, CONFIG).operations, "Return Created Item")
    refund = items[0].properties
    assert not {"NewSKU", "NewProductName", "NewVariantName"} & set(refund)
    assert refund["SKU"] == "TSHIRT-BLU-M"


def test_return_created_no_new_order_omits_new_order_ref_everywhere() -> None:
    result = derive_return(return_record(new_order_name=None), MERCHANT, NOW, CONFIG)
    assert result.operations
    assert all(
        "NewOrderRef" not in op.properties
        for op in events(result.operations, "Return Created")
        + events(result.operations, "Return Created Item")
    )


@pytest.mark.parametrize(
    ("field", "symbol", "expected"),
    [
        ("coverage", "NOT_COVERED", "not covered"),
        ("delivery_method", "PICKUP", "pickup"),
        ("delivery_method", "NONE", "none"),
    ],
)
def test_return_created_enum_symbol_maps_to_seed_text(
    field: str, symbol: str, expected: str
) -> None:
    result = derive_return(return_record(**{field: symbol}), MERCHANT, NOW, CONFIG)
    (event,) = events(result.operations, "Return Created")
    assert expected in event.properties.values()


def test_return_created_item_store_credit_type_maps_to_store_credit() -> None:
    record = return_record(items=[return_item(type="STORE_CREDIT")])
    (item,) = events(derive_return(record, MERCHANT, NOW, CONFIG).operations, "Return Created Item")
    assert item.properties["Type"] == "store_credit"


def test_return_updated_change_is_counted_skip() -> None:
    result = derive_return(return_record(change="UPDATED"), MERCHANT, NOW, CONFIG)
    assert result.operations == ()
    assert result.skip_reasons == (SkipReason.RETURN_UPDATED,)
    assert result.dead_letter is None


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (None, SkipReason.MERCHANT_NOT_INTEGRATED),
        (merchant(enabled=False), SkipReason.INTEGRATION_DISABLED),
    ],
)
def test_return_unserved_merchant_is_counted_skip(settings: Any, reason: SkipReason) -> None:
    result = derive_return(RECORD, settings, NOW, CONFIG)
    assert result.operations == ()
    assert result.skip_reasons == (reason,)


def test_return_old_submission_is_backfilled() -> None:
    old = return_record(created_at=NOW - CONFIG.backfill_after - timedelta(seconds=1))
    result = derive_return(old, MERCHANT, NOW, CONFIG)
    assert result.operations
    assert all(
        op.backfill
        for op in events(result.operations, "Return Created")
        + events(result.operations, "Return Created Item")
    )


def test_return_without_currency_uses_merchant_default() -> None:
    result = derive_return(
        return_record(currency=""), merchant(default_currency="eur"), NOW, CONFIG
    )
    (event,) = events(result.operations, "Return Created")
    assert event.value_currency == "EUR"


def test_return_same_record_twice_yields_same_operations() -> None:
    assert derive_return(RECORD, MERCHANT, NOW, CONFIG) == derive_return(
        RECORD, MERCHANT, NOW, CONFIG
    )


@pytest.mark.parametrize(
    ("record", "code"),
    [
        (return_record(items=[return_item(quantity=0)]), DeadLetterCode.INVALID_VALUE),
        (return_record(items=[return_item(value=Decimal("-1"))]), DeadLetterCode.INVALID_VALUE),
        (return_record(total_value=Decimal("-0.01")), DeadLetterCode.INVALID_VALUE),
        (return_record(items=[]), DeadLetterCode.INVALID_VALUE),
        (return_record(items=[return_item(), return_item()]), DeadLetterCode.INVALID_VALUE),
        (return_record(coverage="PARTIAL"), DeadLetterCode.INVALID_VALUE),
        (return_record(currency="dollars"), DeadLetterCode.INVALID_VALUE),
        (return_record(order_name=None), DeadLetterCode.MISSING_FIELD),
        (return_record(items=[return_item(product_name="  ")]), DeadLetterCode.MISSING_FIELD),
        (return_record(created_at=None), DeadLetterCode.MISSING_FIELD),
        (return_record(customer={"email": None, "phone": None}), DeadLetterCode.NO_IDENTIFIER),
    ],
)
def test_return_contract_breach_is_dead_lettered(
    record: dict[str, Any], code: DeadLetterCode
) -> None:
    result = derive_return(record, MERCHANT, NOW, CONFIG)
    assert result.dead_letter is not None
    assert result.dead_letter.code == code
    assert result.operations == ()
    assert result.skips == ()


def test_return_dead_letter_message_names_field_not_customer_data() -> None:
    result = derive_return(return_record(items=[return_item(quantity=-2)]), MERCHANT, NOW, CONFIG)
    assert result.dead_letter is not None
    assert "items/0/quantity" in result.dead_letter.message
    assert "jane" not in result.dead_letter.message.lower()
