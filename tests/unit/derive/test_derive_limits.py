"""Klaviyo limits are checked before an operation leaves derivation: violations dead-letter."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.derive import DeadLetterCode, check_operation, derive_order, derive_return
from consumer.derive.limits import MAX_PROPERTIES, MAX_STRING_BYTES
from consumer.outbox.operations import Channel, EventOperation, Profile, SubscriptionOperation
from tests.unit.derive.records import (
    CONFIG,
    MERCHANT,
    NOW,
    order_record,
    return_item,
    return_record,
)

EVENT = EventOperation(
    merchant_id="m",
    metric="Return Created",
    profile=Profile(email="a@b.co"),
    properties={"ReturnId": "r"},
    time=NOW,
    unique_id="return-created:r",
    value=Decimal(1),
    value_currency="USD",
)


def test_check_operation_within_limits_is_none() -> None:
    assert check_operation(EVENT, NOW) is None


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (replace(EVENT, metric="M" * 128), DeadLetterCode.METRIC_NAME_TOO_LONG),
        (
            replace(EVENT, properties={f"P{i}": i for i in range(MAX_PROPERTIES + 1)}),
            DeadLetterCode.TOO_MANY_PROPERTIES,
        ),
        (
            replace(EVENT, properties={"Note": "x" * (MAX_STRING_BYTES + 1)}),
            DeadLetterCode.STRING_TOO_LONG,
        ),
        (
            replace(EVENT, properties={"Note": "é" * (MAX_STRING_BYTES // 2 + 1)}),
            DeadLetterCode.STRING_TOO_LONG,
        ),
        (
            replace(EVENT, profile=Profile(external_id="x" * (MAX_STRING_BYTES + 1))),
            DeadLetterCode.STRING_TOO_LONG,
        ),
        (
            replace(EVENT, time=datetime(1999, 12, 31, 23, 59, tzinfo=UTC)),
            DeadLetterCode.TIME_OUT_OF_RANGE,
        ),
        (
            replace(EVENT, time=NOW + timedelta(days=365, seconds=1)),
            DeadLetterCode.TIME_OUT_OF_RANGE,
        ),
    ],
)
def test_check_operation_limit_violation_is_dead_letter_reason(
    event: EventOperation, code: DeadLetterCode
) -> None:
    found = check_operation(event, NOW)
    assert found is not None
    assert found.code == code


def test_check_operation_exactly_at_limits_is_none() -> None:
    event = replace(
        EVENT,
        metric="M" * 127,
        properties={f"P{i}": "x" * 10 for i in range(MAX_PROPERTIES)},
        time=NOW + timedelta(days=365),
    )
    assert check_operation(event, NOW) is None
    assert check_operation(replace(EVENT, time=datetime(2000, 1, 1, tzinfo=UTC)), NOW) is None


def test_check_operation_subscription_long_source_is_dead_letter_reason() -> None:
    subscription = SubscriptionOperation(
        merchant_id="m",
        channel=Channel.SMS,
        list_id="L",
        profile=Profile(phone_number="+14155550100"),
        custom_source="s" * (MAX_STRING_BYTES + 1),
        consented_at=NOW,
        unique_id="signup:e:sms",
    )
    found = check_operation(subscription, NOW)
    assert found is not None and found.code == DeadLetterCode.STRING_TOO_LONG


def test_return_with_huge_product_name_is_dead_lettered_whole() -> None:
    record = return_record(items=[return_item(product_name="x" * (MAX_STRING_BYTES + 1))])
    result = derive_return(record, MERCHANT, NOW, CONFIG)
    assert result.dead_letter is not None
    assert result.dead_letter.code == DeadLetterCode.STRING_TOO_LONG
    assert result.operations == ()
    assert "x" * 100 not in result.dead_letter.message


@pytest.mark.parametrize(
    "created_at",
    [datetime(1999, 6, 1, tzinfo=UTC), NOW + timedelta(days=400)],
)
def test_return_time_out_of_range_is_dead_lettered(created_at: datetime) -> None:
    result = derive_return(return_record(created_at=created_at), MERCHANT, NOW, CONFIG)
    assert result.dead_letter is not None
    assert result.dead_letter.code == DeadLetterCode.TIME_OUT_OF_RANGE


def test_order_time_out_of_range_is_dead_lettered_without_state() -> None:
    record = order_record(created_at=datetime(1995, 1, 1, tzinfo=UTC))
    result = derive_order(record, MERCHANT, None, NOW, CONFIG)
    assert result.dead_letter is not None
    assert result.dead_letter.code == DeadLetterCode.TIME_OUT_OF_RANGE
    assert result.state is None


@given(size=st.integers(0, 3 * MAX_STRING_BYTES))
def test_return_any_product_name_length_never_raises(size: int) -> None:
    record = return_record(items=[return_item(product_name="n" * size or None)])
    result = derive_return(record, MERCHANT, NOW, CONFIG)
    assert (result.dead_letter is None) == (0 < size <= MAX_STRING_BYTES)
