"""Klaviyo's API contract: the vendored OpenAPI subset, request validation and limits.

Used by the sender (to build bodies Klaviyo accepts), by the sandbox (to reject what Klaviyo
would reject) and by tests. Nothing here does I/O beyond reading the vendored file once.
"""

from consumer.klaviyo.contract import (
    BASE_URL,
    BULK_CREATE_EVENTS,
    BULK_SUBSCRIBE_PROFILES,
    CREATE_EVENT,
    GET_ACCOUNTS,
    JSONAPI_MEDIA_TYPE,
    REVISION,
    SPEC_SHA256,
    Operation,
    RateLimit,
    find_operation,
    operation,
    operations,
    subset,
    validate_request,
    validate_response,
)
from consumer.klaviyo.errors import ContractError
from consumer.klaviyo.events import (
    EventKey,
    EventView,
    effective_unique_id,
    iter_events,
    profile_identity,
)
from consumer.klaviyo.limits import (
    MAX_EVENT_PROPERTIES,
    MAX_EVENTS_PER_REQUEST,
    MAX_METRIC_NAME_CHARS,
    MAX_PAYLOAD_BYTES,
    MAX_PROFILES_PER_SUBSCRIPTION_REQUEST,
    MAX_STRING_BYTES,
)
from consumer.klaviyo.violations import ContractViolation, Rule, to_pointer

__all__ = [
    "BASE_URL",
    "BULK_CREATE_EVENTS",
    "BULK_SUBSCRIBE_PROFILES",
    "CREATE_EVENT",
    "GET_ACCOUNTS",
    "JSONAPI_MEDIA_TYPE",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_EVENT_PROPERTIES",
    "MAX_METRIC_NAME_CHARS",
    "MAX_PAYLOAD_BYTES",
    "MAX_PROFILES_PER_SUBSCRIPTION_REQUEST",
    "MAX_STRING_BYTES",
    "REVISION",
    "SPEC_SHA256",
    "ContractError",
    "ContractViolation",
    "EventKey",
    "EventView",
    "Operation",
    "RateLimit",
    "Rule",
    "effective_unique_id",
    "find_operation",
    "iter_events",
    "operation",
    "operations",
    "profile_identity",
    "subset",
    "to_pointer",
    "validate_request",
    "validate_response",
]
