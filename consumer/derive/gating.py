"""Whether a merchant is served at all, and which products it has switched on.

Gating comes before reading the rest of a record: a merchant that is not integrated gets a
counted skip, not a dead-letter, even if its records would not parse (we do not judge data we
were never asked to send).
"""

from __future__ import annotations

from enum import Enum

from consumer.derive.outcome import SkipReason
from consumer.merchant import MerchantSettings

__all__ = ["Feature", "gate"]


class Feature(Enum):
    """A product a merchant may have enabled on top of the integration itself."""

    NONE = "none"
    ORDER_TRACKING = "order_tracking"
    MARKETING = "marketing"


def gate(
    merchant: MerchantSettings | None, feature: Feature = Feature.NONE
) -> MerchantSettings | SkipReason:
    """The skip reason when ``merchant`` must not get operations for ``feature``.

    Otherwise the merchant itself, narrowed to "present", so callers need no second check.
    """
    if merchant is None:
        return SkipReason.MERCHANT_NOT_INTEGRATED
    if not merchant.enabled:
        return SkipReason.INTEGRATION_DISABLED
    if feature is Feature.ORDER_TRACKING and not merchant.order_tracking_enabled:
        return SkipReason.ORDER_TRACKING_DISABLED
    if feature is Feature.MARKETING and not merchant.marketing_enabled:
        return SkipReason.MARKETING_DISABLED
    return merchant
