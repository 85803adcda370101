"""The outbox codec keeps amounts exact and refuses decimals no request could carry."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from consumer.outbox import EventOperation, OutboxFormatError, decode_operation, encode_operation
from tests.unit.deliver import factories


def test_decimal_value_and_properties_round_trip_exactly() -> None:
    op = factories.event(
        0,
        value=Decimal("99999999999999.9999"),
        properties={"Price": Decimal("12.3400"), "Quantity": 2, "SKU": "12.34"},
    )
    decoded = decode_operation(encode_operation(op))
    assert isinstance(decoded, EventOperation)
    assert decoded.value == Decimal("99999999999999.9999")
    assert dict(decoded.properties) == {"Price": Decimal("12.3400"), "Quantity": 2, "SKU": "12.34"}
    assert isinstance(decoded.properties["Price"], Decimal)
    assert isinstance(decoded.properties["SKU"], str)  # a string that looks like a number
    assert list(decoded.properties) == ["Price", "Quantity", "SKU"]


@pytest.mark.parametrize(
    ("field", "text"),
    [("val", "NaN"), ("val", "Infinity"), ("val", "1E+99"), ("val", "1E-99"), ("prd", "sNaN")],
)
def test_a_decimal_no_request_can_carry_makes_the_record_unreadable(field: str, text: str) -> None:
    doc = orjson.loads(encode_operation(factories.event(0, properties={"Price": Decimal(1)})))
    if field == "val":
        doc["val"] = text
    else:
        doc["pr"]["Price"] = text
    with pytest.raises(OutboxFormatError):
        decode_operation(orjson.dumps(doc))


def test_a_decimal_property_named_but_missing_is_unreadable() -> None:
    doc = orjson.loads(encode_operation(factories.event(0)))
    doc["prd"] = ["Price"]
    with pytest.raises(OutboxFormatError):
        decode_operation(orjson.dumps(doc))
