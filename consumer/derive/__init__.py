"""Derivation: input records (+ merchant settings, tracking state, ``now``) → Klaviyo operations.

Pure functions: no I/O, no clock (the caller passes ``now``), no Kafka or HTTP imports (an
import-linter contract enforces it). Each entry point returns a ``Derivation``: operations for
the outbox, counted skips, or a dead-letter reason, plus the new tracking state for orders.

Entry points, one per input topic, plus the timer sweep:

- ``derive_return(record, merchant, now, config)``
- ``derive_order(record, merchant, state, now, config)``
- ``derive_storefront_event(record, merchant, now, config)``
- ``due_timers(order_id, state, merchant, now, config)`` and ``next_timer_at(...)``;
  ``expires_at(state, config)``: when an order's tracking state is removed

``docs/events.md`` describes every event, property and rule in prose.
"""

from consumer.derive.config import DeriveConfig
from consumer.derive.consent import MARKETING_FORM_SOURCE, TRACKING_PAGE_SOURCE
from consumer.derive.events import Metric
from consumer.derive.limits import check_operation
from consumer.derive.orders import derive_order
from consumer.derive.outcome import DeadLetterCode, DeadLetterReason, Derivation, Skip, SkipReason
from consumer.derive.profiles import normalize_email, normalize_phone
from consumer.derive.returns import derive_return
from consumer.derive.storefront import derive_storefront_event
from consumer.derive.timers import due_timers, expires_at, next_timer_at
from consumer.derive.tracking import tracking_link
from consumer.derive.triggers import PRECEDENCE, Trigger

__all__ = [
    "MARKETING_FORM_SOURCE",
    "PRECEDENCE",
    "TRACKING_PAGE_SOURCE",
    "DeadLetterCode",
    "DeadLetterReason",
    "Derivation",
    "DeriveConfig",
    "Metric",
    "Skip",
    "SkipReason",
    "Trigger",
    "check_operation",
    "derive_order",
    "derive_return",
    "derive_storefront_event",
    "due_timers",
    "expires_at",
    "next_timer_at",
    "normalize_email",
    "normalize_phone",
    "tracking_link",
]
