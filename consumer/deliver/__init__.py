"""Delivery: outbox operations to Klaviyo, per merchant, within Klaviyo's limits.

Split along a request's path (as aiokafka splits its producer): ``request_builder`` (bodies),
``batcher`` (queues and batches), ``rate_limiter`` (pacing), ``http_client`` (the POST),
``responses`` (what an answer means), ``retry`` (when to retry or park), ``parking``
(who is parked), ``sender`` (the ``Sink`` that drives them),
``offsets`` (what may be committed), ``outcomes`` and ``errors``.
"""

from consumer.deliver.batcher import Batch, Batcher, Pending
from consumer.deliver.errors import (
    DeliveryError,
    EdgeRejected,
    InvalidOperations,
    KlaviyoUnavailable,
    MerchantDisabled,
    MerchantNotIntegrated,
    MerchantUnavailable,
    MissingScope,
    OperationTooLarge,
    RequestRejected,
    SinkClosed,
    Throttled,
    UnattributedRejection,
    Unauthorized,
)
from consumer.deliver.http_client import KlaviyoClient, KlaviyoResponse
from consumer.deliver.offsets import OffsetTracker
from consumer.deliver.outcomes import (
    SHUTDOWN,
    Accepted,
    DeadLettered,
    DeliveryStats,
    Outcome,
    Parked,
)
from consumer.deliver.rate_limiter import EndpointLimits, RateLimiter, Window, limits_from_settings
from consumer.deliver.request_builder import (
    BuiltRequest,
    body_size,
    build_event_batch,
    build_event_bulk_request,
    build_subscription_batch,
    build_subscription_request,
    serialize_alone,
)
from consumer.deliver.responses import classify, rate_limit_headers
from consumer.deliver.retry import RetryBudget, RetryPolicy
from consumer.deliver.sender import MerchantLookup, OutcomeCallback, Sink

__all__ = [
    "SHUTDOWN",
    "Accepted",
    "Batch",
    "Batcher",
    "BuiltRequest",
    "DeadLettered",
    "DeliveryError",
    "DeliveryStats",
    "EdgeRejected",
    "EndpointLimits",
    "InvalidOperations",
    "KlaviyoClient",
    "KlaviyoResponse",
    "KlaviyoUnavailable",
    "MerchantDisabled",
    "MerchantLookup",
    "MerchantNotIntegrated",
    "MerchantUnavailable",
    "MissingScope",
    "OffsetTracker",
    "OperationTooLarge",
    "Outcome",
    "OutcomeCallback",
    "Parked",
    "Pending",
    "RateLimiter",
    "RequestRejected",
    "RetryBudget",
    "RetryPolicy",
    "Sink",
    "SinkClosed",
    "Throttled",
    "UnattributedRejection",
    "Unauthorized",
    "Window",
    "body_size",
    "build_event_batch",
    "build_event_bulk_request",
    "build_subscription_batch",
    "build_subscription_request",
    "classify",
    "limits_from_settings",
    "rate_limit_headers",
    "serialize_alone",
]
