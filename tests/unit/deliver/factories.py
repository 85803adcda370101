"""Operations for delivery tests: small, valid by default, varied by index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from consumer.merchant import MerchantSettings
from consumer.outbox.operations import Channel, EventOperation, Profile, SubscriptionOperation

MERCHANT = "merchant-a"
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def profile(n: int = 0, **fields: Any) -> Profile:
    """Shopper ``n``: an e-mail profile unless fields say otherwise."""
    fields.setdefault("email", f"shopper{n}@example.com")
    return Profile(**fields)


def event(
    n: int = 0,
    *,
    merchant: str = MERCHANT,
    shopper: int | None = None,
    metric: str = "Return Created",
    unique_id: str | None = None,
    **fields: Any,
) -> EventOperation:
    """Event ``n`` (unique id ``ret-n``) for shopper ``shopper`` (default: one per 10 events)."""
    values: dict[str, Any] = {
        "merchant_id": merchant,
        "metric": metric,
        "profile": profile(n // 10 if shopper is None else shopper),
        "properties": {"return_id": f"ret-{n}", "items": 2, "reason": "too small"},
        "time": WHEN + timedelta(seconds=n),
        "unique_id": unique_id or f"ret-{n}",
        "value": Decimal("19.99"),
        "value_currency": "EUR",
    }
    values.update(fields)
    return EventOperation(**values)


def subscription(
    n: int = 0,
    *,
    merchant: str = MERCHANT,
    channel: Channel = Channel.EMAIL,
    list_id: str = "LIST01",
    **fields: Any,
) -> SubscriptionOperation:
    """Shopper ``n`` subscribing on ``channel`` to ``list_id``."""
    shopper = (
        profile(n) if channel is Channel.EMAIL else profile(n, phone_number=f"+1500555{n:04d}")
    )
    values: dict[str, Any] = {
        "merchant_id": merchant,
        "channel": channel,
        "list_id": list_id,
        "profile": shopper,
        "custom_source": "Tracking page",
        "consented_at": WHEN,
        "unique_id": f"signup-{n}-{channel.value}",
    }
    values.update(fields)
    return SubscriptionOperation(**values)


def merchant(
    merchant_id: str = MERCHANT, key: str = "pk_test_merchant_a_0001", **fields: Any
) -> MerchantSettings:
    """Settings of an enabled merchant with ``key``."""
    return MerchantSettings(merchant_id=merchant_id, api_key=SecretStr(key), **fields)
