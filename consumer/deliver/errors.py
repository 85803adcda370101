"""Delivery errors, with the policy the sender needs on the class.

Ask the error, not a status table:

- ``retriable``: send the same operations again after a wait (``retry_after`` when Klaviyo
  named one, else the sender's jittered backoff), within the retry budget.
- ``parks_merchant``: the merchant cannot be served now (key revoked, not integrated):
  park every operation of the merchant, on every endpoint, for a cool-down.
- ``parks_endpoint``: only this endpoint cannot be served for the merchant (a key without
  subscription scopes keeps sending events).
- ``splits``: Klaviyo rejected the request without saying which operation is at fault:
  split the batch in halves to isolate it; a single operation is dead-lettered.

``InvalidOperations`` names the rejected operations (from ``source.pointer``): those are
dead-lettered with Klaviyo's detail and the rest are sent again. Every ``reason`` is a short
stable string, safe as a metric label; ``detail`` is Klaviyo's own text (never the API key:
the HTTP client scrubs it from response bodies).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from consumer.errors import ConsumerError

__all__ = [
    "DeliveryError",
    "EdgeRejected",
    "InvalidOperations",
    "KlaviyoUnavailable",
    "MerchantDisabled",
    "MerchantNotIntegrated",
    "MerchantUnavailable",
    "MissingScope",
    "OperationTooLarge",
    "RequestRejected",
    "SinkClosed",
    "Throttled",
    "UnattributedRejection",
    "Unauthorized",
]


class DeliveryError(ConsumerError):
    """Root of delivery errors; ``reason`` is stable, ``detail`` is Klaviyo's text if any."""

    reason: ClassVar[str] = "delivery_failed"
    retriable: ClassVar[bool] = False
    parks_merchant: ClassVar[bool] = False
    parks_endpoint: ClassVar[bool] = False
    splits: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class Throttled(DeliveryError):
    """429: wait ``retry_after`` seconds (nothing else goes to this endpoint meanwhile)."""

    reason = "throttled"
    retriable = True

    def __init__(self, message: str, *, retry_after: float, detail: str = "") -> None:
        super().__init__(message, status=429, detail=detail)
        self.retry_after = retry_after


class KlaviyoUnavailable(DeliveryError):
    """5xx, a reset connection, a timeout or an edge challenge: transient, back off and retry."""

    reason = "klaviyo_unavailable"
    retriable = True


class Unauthorized(DeliveryError):
    """401: the key is invalid or revoked, so nothing of this merchant can be sent."""

    reason = "unauthorized"
    parks_merchant = True


class MissingScope(DeliveryError):
    """403: the key lacks this endpoint's scopes; other endpoints may still work."""

    reason = "missing_scope"
    parks_endpoint = True


class EdgeRejected(DeliveryError):
    """A non-JSON 4xx from an edge proxy: the request never reached Klaviyo's API.

    It says nothing about the operations, so none is dead-lettered; the endpoint is parked
    (typically a wrong auth scheme or blocked egress, which need a person).
    """

    reason = "edge_rejected"
    parks_endpoint = True


class RequestRejected(DeliveryError):
    """A 4xx about the request rather than its content (unknown revision, 404, 415...).

    Our configuration or code is wrong, not the data: park, never dead-letter.
    """

    reason = "request_rejected"
    parks_endpoint = True


class UnattributedRejection(DeliveryError):
    """400 (or 413) naming no operation: split the batch to find the culprit."""

    reason = "klaviyo_rejected"
    splits = True


class InvalidOperations(DeliveryError):
    """400 naming operations by ``source.pointer``: ``details`` maps pointer → Klaviyo detail."""

    reason = "klaviyo_rejected"

    def __init__(self, message: str, *, status: int, details: Mapping[str, str]) -> None:
        super().__init__(message, status=status, detail="; ".join(details.values()))
        self.details = dict(details)


class OperationTooLarge(DeliveryError):
    """One operation alone exceeds the request size limit; it can never be sent."""

    reason = "too_large"


class MerchantUnavailable(DeliveryError):
    """The merchant cannot be served by its settings (no integration, or disabled)."""

    reason = "merchant_unavailable"
    parks_merchant = True


class MerchantNotIntegrated(MerchantUnavailable):
    """No Klaviyo integration is known for the merchant."""

    reason = "merchant_not_integrated"


class MerchantDisabled(MerchantUnavailable):
    """The merchant's integration exists but is disabled."""

    reason = "merchant_disabled"


class SinkClosed(DeliveryError):
    """``submit`` was called after ``close``: a runtime bug, the operation was not taken."""

    reason = "sink_closed"
