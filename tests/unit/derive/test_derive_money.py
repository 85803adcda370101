"""Amounts: exact and within the contract's decimal(18, 4), else dead-lettered by field."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from consumer.derive import DeadLetterCode, derive_return, derive_storefront_event
from consumer.derive.fields import MONEY_PRECISION, MONEY_SCALE
from consumer.paths import schemas_dir
from tests.unit.derive.records import (
    CONFIG,
    MERCHANT,
    NOW,
    events,
    return_item,
    return_record,
    storefront_record,
    wishlist,
)


def _decimals(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("logicalType") == "decimal" else []
        return found + [d for value in node.values() for d in _decimals(value)]
    if isinstance(node, list):
        return [d for value in node for d in _decimals(value)]
    return []


def test_every_amount_in_the_contracts_is_the_decimal_derivation_bounds() -> None:
    found = [
        _decimals(json.loads(path.read_text())) for path in sorted(schemas_dir().glob("*/v*.avsc"))
    ]
    decimals = [d for per_file in found for d in per_file]
    assert len(decimals) >= 3
    assert {(d["precision"], d["scale"]) for d in decimals} == {(MONEY_PRECISION, MONEY_SCALE)}


@pytest.mark.parametrize(
    "amount",
    [Decimal("99999999999999.9999"), Decimal("0.0001"), Decimal("12.50000"), Decimal(0), 7],
)
def test_amounts_within_the_contract_are_kept_exactly(amount: Decimal | int) -> None:
    record = return_record(items=[return_item(value=amount)], total_value=amount)
    result = derive_return(record, MERCHANT, NOW, CONFIG)
    assert result.dead_letter is None
    (summary,) = events(result.operations, "Return Created")
    assert summary.value == amount


@pytest.mark.parametrize(
    ("field", "amount", "why"),
    [
        ("total_value", Decimal(10) ** 15, "more than 14 integer digits"),
        ("total_value", Decimal(10) ** 14, "more than 14 integer digits"),
        ("total_value", Decimal(10) ** 70 + Decimal("0.5"), "more than 14 integer digits"),
        ("items/0/value", Decimal("1.00001"), "more than 4 decimal places"),
        ("items/0/value", 10**15, "more than 14 integer digits"),
    ],
)
def test_amounts_beyond_the_contract_are_dead_lettered_naming_the_field(
    field: str, amount: Decimal | int, why: str
) -> None:
    if field == "total_value":
        record = return_record(total_value=amount)
    else:
        record = return_record(items=[return_item(value=amount)])
    result = derive_return(record, MERCHANT, NOW, CONFIG)
    assert result.operations == ()
    assert result.dead_letter is not None
    assert result.dead_letter.code is DeadLetterCode.AMOUNT_OUT_OF_RANGE
    assert result.dead_letter.message.startswith(f"{field} has {why}")


def test_wishlist_price_is_an_exact_decimal_property() -> None:
    price = Decimal("99999999999999.9999")
    record = storefront_record("WISHLIST_ADD", wishlist=wishlist(price=price))
    (event,) = events(
        derive_storefront_event(record, MERCHANT, NOW, CONFIG).operations,
        "Product Added to Wishlist",
    )
    assert event.properties["Price"] == price
    assert isinstance(event.properties["Price"], Decimal)
    assert event.value == price
